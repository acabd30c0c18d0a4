package imapintake

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// cutProxy forwards TCP connections from a listener on 127.0.0.1 to a
// server, and cuts them where a test says: in the server's answer, a
// number of bytes after the nth occurrence of a marker (in the middle of
// a FETCH literal), or in the client's commands, just before the nth
// occurrence of a marker is forwarded (a MOVE never reaching the server).
type cutProxy struct {
	l      net.Listener
	target string

	mu        sync.Mutex
	rule      *cutRule
	cuts      int
	lastAfter int // the after of the rule that triggered last
	conns     map[net.Conn]bool
	wg        sync.WaitGroup
}

// cutRule is one cut; it is disarmed once done.
type cutRule struct {
	down   bool   // in the server's answers; false: in the client's commands
	marker []byte // what to look for
	nth    int    // its occurrence that triggers the cut, counted from arming
	after  int    // down: bytes forwarded after the marker before the cut
	seen   int
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

// arm sets the next cut.
func (p *cutProxy) arm(r cutRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = &r
}

// done says how many cuts happened, and whether a rule is still armed.
func (p *cutProxy) done() (cuts int, armed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts, p.rule != nil
}

// cutAll closes every connection now.
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *cutProxy) accept() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		closeBoth := func() {
			_ = client.Close()
			_ = server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		}
		p.wg.Go(func() { p.pipe(client, server, true); closeBoth() })
		p.wg.Go(func() { p.pipe(server, client, false); closeBoth() })
	}
}

// pipe copies src to dst until either ends or the armed rule cuts.
func (p *cutProxy) pipe(dst, src net.Conn, down bool) {
	buf := make([]byte, 16<<10)
	var tail []byte // the last bytes seen, for a marker across two reads
	remaining := -1 // after a trigger (down): bytes still to forward
	for {
		n, err := src.Read(buf)
		chunk := buf[:n]
		if remaining >= 0 {
			if n >= remaining {
				_, _ = dst.Write(chunk[:remaining])
				return
			}
			remaining -= n
		} else if n > 0 {
			if pos, ok := p.match(&tail, chunk, down); ok {
				if !down {
					_, _ = dst.Write(chunk[:pos])
					return
				}
				_, _ = dst.Write(chunk[:pos])
				remaining = p.afterOf()
				chunk = chunk[pos:]
				if len(chunk) >= remaining {
					_, _ = dst.Write(chunk[:remaining])
					return
				}
				remaining -= len(chunk)
			}
		}
		if len(chunk) > 0 {
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// afterOf is the number of bytes to forward after a down trigger; the
// rule is disarmed by match, so the value is kept there.
func (p *cutProxy) afterOf() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAfter
}

// match looks for the armed rule's marker in chunk (with the tail of the
// previous reads). On its nth occurrence it disarms the rule and returns
// where to cut in chunk: the end of the marker (down) or its start (up).
func (p *cutProxy) match(tail *[]byte, chunk []byte, down bool) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rule
	if r == nil || r.down != down {
		*tail = nil
		return 0, false
	}
	window := append(append([]byte{}, *tail...), chunk...)
	defer func() {
		keep := min(len(window), len(r.marker)-1)
		*tail = append((*tail)[:0], window[len(window)-keep:]...)
	}()
	for off := 0; ; {
		i := bytes.Index(window[off:], r.marker)
		if i < 0 {
			return 0, false
		}
		start := off + i
		off = start + 1
		r.seen++
		if r.seen < r.nth {
			continue
		}
		p.rule = nil
		p.cuts++
		p.lastAfter = r.after
		pos := start + len(r.marker)
		if !down {
			pos = start
		}
		return max(pos-len(*tail), 0), true
	}
}
