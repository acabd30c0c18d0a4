package intake

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// recConn is a net.Conn that records each Write and reads from chunks,
// one chunk per Read, the last with err.
type recConn struct {
	net.Conn
	writes []string
	chunks [][]byte
	err    error
	reads  int
}

func (c *recConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return n, c.err
	}
	return n, nil
}

func (c *recConn) Close() error { return nil }

func TestSMTPConnWrites(t *testing.T) {
	t.Parallel()
	rc := &recConn{}
	c := &smtpConn{Conn: rc, release: func() {}}
	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	// An EHLO answer: one write.
	for _, l := range []string{"250-moat.example\r\n", "250-PIPELINING\r\n", "250-8BITMIME\r\n", "250 CHUNKING\r\n"} {
		write(l)
	}
	// A one-line reply, and bytes that are not SMTP lines (TLS records).
	write("220 2.0.0 Ready to start TLS\r\n")
	write("\x16\x03\x01\x00\x05hello")
	write("25-x\r\n") // two digits: not a continuation
	want := []string{"250-moat.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
		"220 2.0.0 Ready to start TLS\r\n", "\x16\x03\x01\x00\x05hello", "25-x\r\n"}
	if strings.Join(rc.writes, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want %q", rc.writes, want)
	}
	// A continuation line is written before the connection is read.
	rc.writes, rc.err = nil, io.EOF
	write("250-held\r\n")
	if len(rc.writes) != 0 {
		t.Fatalf("continuation line written at once: %q", rc.writes)
	}
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("Read: %v", err)
	}
	if len(rc.writes) != 1 || rc.writes[0] != "250-held\r\n" {
		t.Fatalf("held line not written before the read: %q", rc.writes)
	}
	// A reply longer than maxHeld goes out in pieces, none lost.
	rc.writes = nil
	line := "250-" + strings.Repeat("x", 500) + "\r\n"
	var all strings.Builder
	for range 20 {
		write(line)
		all.WriteString(line)
	}
	write("250 end\r\n")
	all.WriteString("250 end\r\n")
	if len(rc.writes) < 2 || strings.Join(rc.writes, "") != all.String() {
		t.Fatalf("long reply in %d writes; equal: %v", len(rc.writes), strings.Join(rc.writes, "") == all.String())
	}
	for _, w := range rc.writes {
		if len(w) > maxHeld+len(line) {
			t.Fatalf("a write of %d bytes", len(w))
		}
	}
}

func TestSMTPConnReads(t *testing.T) {
	t.Parallel()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1300) // 20,800 bytes
	rc := &recConn{chunks: [][]byte{bytes.Clone(msg), []byte("QUIT\r\n")}, err: io.EOF}
	c := &smtpConn{Conn: rc, release: func() {}}
	// go-smtp reads through a 4 KiB buffer: the message is one read of
	// the socket, handed out in order; the error comes after the data.
	var got []byte
	buf := make([]byte, 4096)
	var err error
	for err == nil {
		var n int
		n, err = c.Read(buf)
		got = append(got, buf[:n]...)
	}
	if !errors.Is(err, io.EOF) || !bytes.Equal(got, append(bytes.Clone(msg), "QUIT\r\n"...)) {
		t.Fatalf("read %d bytes, %v; want the %d bytes sent and EOF", len(got), err, len(msg)+6)
	}
	if rc.reads != 2 {
		t.Fatalf("%d reads of the connection, want 2", rc.reads)
	}
	if c.buf != nil || len(c.ahead) != 0 {
		t.Fatal("the read buffer was not given back")
	}
	// A read of readAhead bytes or more goes straight to the connection.
	rc = &recConn{chunks: [][]byte{bytes.Clone(msg)}, err: io.EOF}
	c = &smtpConn{Conn: rc, release: func() {}}
	big := make([]byte, readAhead)
	if n, _ := c.Read(big); n != len(msg) || c.buf != nil {
		t.Fatalf("large read: %d bytes, buffer %v", n, c.buf != nil)
	}
}

func TestIsContinuation(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"250-PIPELINING\r\n": true, "250-\r\n": true, "250 OK\r\n": false, "250-x\n": false, "250-a\r\nb\r\n": false,
		"2a0-x\r\n": false, "250-x": false, "\x17\x03\x03-\x00\r\n": false, "": false,
	} {
		if got := isContinuation([]byte(in)); got != want {
			t.Errorf("isContinuation(%q) = %v, want %v", in, got, want)
		}
	}
}
