package intake

import (
	"net"
	"sync"
)

// smtpConn is an accepted SMTP connection as go-smtp sees it. It gives its
// connection slot back once, when closed; it sends the lines of a
// multi-line reply in one write; and it reads the socket in large pieces.
//
// go-smtp writes each reply line through net/textproto, which flushes
// every line: the answer to EHLO would be seven writes, seven TCP
// segments on a connection without Nagle's algorithm, and as many
// wake-ups of the client reading them. RFC 5321 §4.2.1 lets a reply span
// lines "NNN-text" ended by one "NNN text": smtpConn holds the
// continuation lines and writes them with the reply's last line. Bytes
// that are not a whole continuation line (the last line of a reply, the
// TLS records after STARTTLS, which never start with three digits and a
// hyphen) are written at once, after what is held.
//
// go-smtp reads through a 4 KiB buffer: a 20 KB message would take five
// reads or more. smtpConn reads up to readAhead bytes at a time and hands
// them out in order; the buffer is borrowed from a pool and given back
// once emptied.
type smtpConn struct {
	net.Conn
	once    sync.Once
	release func()

	mu   sync.Mutex
	held []byte // continuation lines of a reply, not yet written

	rmu   sync.Mutex // held by Read: a net.Conn may be read from two goroutines
	ahead []byte     // read from the socket, not yet handed out
	buf   *[]byte    // the pooled buffer ahead is in
	err   error      // the error of the read that filled ahead, for after it
}

// readAhead is the size of smtpConn's read buffer.
const readAhead = 32 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

// maxHeld bounds the bytes of continuation lines held back: a reply longer
// than this is written in pieces.
const maxHeld = 4096

func (c *smtpConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isContinuation(p) && len(c.held)+len(p) <= maxHeld {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	held := len(c.held)
	c.held = append(c.held, p...)
	n, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	// The held lines were reported written when they were given.
	return max(n-held, 0), err
}

// Read hands out what was read ahead; when there is none it writes what
// is held (a reply is never left unsent while the connection waits for
// the peer: go-smtp never reads in the middle of a reply, this only makes
// it certain) and reads the socket.
func (c *smtpConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		if len(c.ahead) == 0 {
			c.giveBack()
		}
		return n, nil
	}
	if err := c.err; err != nil {
		c.err = nil
		return 0, err
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	if len(p) >= readAhead {
		return c.Conn.Read(p)
	}
	c.buf = readBufs.Get().(*[]byte)
	n, err := c.Conn.Read(*c.buf)
	k := copy(p, (*c.buf)[:n])
	if k == n {
		c.giveBack()
		return k, err
	}
	c.ahead, c.err = (*c.buf)[k:n], err
	return k, nil
}

func (c *smtpConn) giveBack() {
	c.ahead = nil
	readBufs.Put(c.buf)
	c.buf = nil
}

func (c *smtpConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}

func (c *smtpConn) Close() error {
	// The slot is free before the peer can see the connection end. What
	// is held is dropped: a reply cut in its middle, on a connection cut.
	c.once.Do(c.release)
	return c.Conn.Close()
}

// isContinuation reports whether p is one whole continuation line of a
// reply: three digits, a hyphen, text without CR or LF, and CRLF.
func isContinuation(p []byte) bool {
	if len(p) < 6 || p[3] != '-' || p[len(p)-2] != '\r' || p[len(p)-1] != '\n' {
		return false
	}
	for _, b := range p[:3] {
		if b < '0' || b > '9' {
			return false
		}
	}
	for _, b := range p[4 : len(p)-2] {
		if b == '\r' || b == '\n' {
			return false
		}
	}
	return true
}
