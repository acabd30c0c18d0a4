package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/snapshot"
)

const validName = "customer.com._mta-sts.sts.example.net."

// checkValid asserts that the server still answers a valid query over UDP.
func (e *testEnv) checkValid(t *testing.T) {
	t.Helper()
	r := e.exchange(t, "udp", question(validName, dns.TypeTXT, false))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("valid query: %v", r)
	}
}

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func readFrame(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("reading the length: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading the message: %v", err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	return &m
}

// expectClosed waits for the server to close c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(4 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("read a byte, want the connection closed")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// RFC 7766 §6.2.1: several queries on one connection, pipelined.
func TestTCPPipelined(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	c, err := net.Dial("tcp", env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := []string{validName, "sts.example.net.", "nothing.sts.example.net.", "huge.example._smtp._tls.sts.example.net."}
	var all []byte
	for i, n := range names {
		m := question(n, dns.TypeTXT, i%2 == 0)
		m.Id = uint16(1000 + i)
		all = append(all, frame(pack(t, m))...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		r := readFrame(t, c)
		if r.Id != uint16(1000+i) || r.Question[0].Name != n {
			t.Errorf("response %d: id %d for %s, want %d for %s", i, r.Id, r.Question[0].Name, 1000+i, n)
		}
	}
	// A frame too short to be a query ends the connection.
	if _, err := c.Write([]byte{0, 3, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	env.checkValid(t)
}

// Garbage over UDP gets no answer, or FORMERR when the header parses, and
// never stops the server. One reader keeps the order of the replies.
func TestHostileUDP(t *testing.T) {
	t.Parallel()
	for _, path := range []string{pathBatch, pathUDPConn, pathPacketConn} {
		t.Run(path, func(t *testing.T) { testHostileUDP(t, path) })
	}
}

func testHostileUDP(t *testing.T, path string) {
	opts := testOptions()
	opts.UDPReaders = 1
	env := startPath(t, &opts, path)
	c, err := net.Dial("udp", env.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	valid := pack(t, question(validName, dns.TypeTXT, false))
	resp := append([]byte{}, valid...)
	resp[0], resp[1], resp[2] = 0xEE, 0xEE, resp[2]|0x80 // a response: never answered
	garbage := [][]byte{
		{}, {0}, valid[:5], valid[:11], resp,
		{0xFF, 0xFE, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, // pointer loop
		{0xFF, 0xFD, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		make([]byte, 1500),
		make([]byte, 5000), // over the batched path's 4096: dropped there
	}
	for i := range 200 {
		// Odd ones are responses (dropped), even ones arbitrary queries.
		b := make([]byte, i%40+3)
		for j := range b {
			b[j] = byte(i*31 + j*17)
		}
		if i%2 == 1 {
			b[0], b[1] = 0xEE, 0xEE
			b[2] |= 0x80
		} else {
			b[0], b[1] = 0x11, 0x11
			b[2] &^= 0x80
		}
		garbage = append(garbage, b)
	}
	for _, g := range garbage {
		if _, err := c.Write(g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(valid); err != nil {
		t.Fatal(err)
	}
	want := binary.BigEndian.Uint16(valid)
	buf := make([]byte, 65535)
	for {
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to the valid query: %v", err)
		}
		var m dns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("a reply does not parse: %v", err)
		}
		if m.Id == 0xEEEE {
			t.Fatalf("answered a response: %v", &m)
		}
		if m.Id == want {
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Fatalf("valid query: %v", &m)
			}
			break
		}
		if m.Id != 0x1111 && m.Rcode != dns.RcodeFormatError || len(m.Answer) != 0 {
			t.Errorf("reply to garbage: %v", &m)
		}
	}
}

// A huge length prefix followed by nothing, and a query trickled in a byte
// at a time, are cut off after TCPIOTimeout; meanwhile others get answers.
func TestHostileTCP(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.TCPIOTimeout = 200 * time.Millisecond
	env := start(t, &opts)

	huge, err := net.Dial("tcp", env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer huge.Close()
	if _, err := huge.Write([]byte{0xFF, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}); err != nil {
		t.Fatal(err)
	}

	slow, err := net.Dial("tcp", env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	q := frame(pack(t, question(validName, dns.TypeTXT, false)))
	if _, err := slow.Write(q[:3]); err != nil {
		t.Fatal(err)
	}

	// Others are served in the meantime.
	env.checkValid(t)
	if r := env.exchange(t, "tcp", question(validName, dns.TypeTXT, false)); len(r.Answer) != 1 {
		t.Fatalf("TCP query: %v", r)
	}
	expectClosed(t, huge)
	expectClosed(t, slow)
	env.checkValid(t)
}

// Idle connections beyond MaxTCPConns are shed; the idle ones time out and
// TCP service resumes. UDP is unaffected throughout.
func TestTCPConnLimit(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.MaxTCPConns = 3
	opts.TCPIdleTimeout = 300 * time.Millisecond
	env := start(t, &opts)
	var idle []net.Conn
	for range opts.MaxTCPConns {
		c, err := net.Dial("tcp", env.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// Make sure the server has registered them: one query on each.
	for _, c := range idle {
		if _, err := c.Write(frame(pack(t, question(validName, dns.TypeTXT, false)))); err != nil {
			t.Fatal(err)
		}
		readFrame(t, c)
	}
	over, err := net.Dial("tcp", env.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	expectClosed(t, over)
	env.checkValid(t)
	for _, c := range idle {
		expectClosed(t, c)
	}
	if r := env.exchange(t, "tcp", question(validName, dns.TypeTXT, false)); len(r.Answer) != 1 {
		t.Fatalf("TCP after the idle ones left: %v", r)
	}
}

// Shutdown closes idle TCP connections at once (without waiting for the
// idle timeout), and Serve returns ErrServerClosed; a later Serve too.
func TestShutdown(t *testing.T) {
	t.Parallel()
	var h snapshot.Holder
	opts := testOptions()
	opts.TCPIdleTimeout = time.Hour
	srv, err := New(slog.New(slog.DiscardHandler), &h, opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), pc, l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(frame(pack(t, question("sts.example.net.", dns.TypeSOA, false)))); err != nil {
		t.Fatal(err)
	}
	readFrame(t, c) // the connection is being served

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	expectClosed(t, c)
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Errorf("the listener still accepts")
	}
	pc2, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), pc2, nil); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := pc2.WriteTo([]byte{1}, pc2.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Shutdown left its socket open: %v", err)
	}
}

// Cancelling the context stops ListenAndServe, which serves UDP and TCP on
// one port, and it returns nil.
func TestListenAndServe(t *testing.T) {
	// Not parallel: it frees a port and binds it again, which a parallel
	// test could take in between.
	var h snapshot.Holder
	h.Store(snapshot.New(testSerial, time.Unix(0, 0), testDomains()))
	srv, err := New(slog.New(slog.DiscardHandler), &h, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	// Find a port free for both protocols.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe(ctx, addr) }()

	env := &testEnv{udp: addr, tcp: addr}
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		r, _, err := c.Exchange(question(validName, dns.TypeTXT, false), addr)
		if err == nil && len(r.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListenAndServe(%s) does not answer over TCP: %v", addr, err)
		}
		select {
		case err := <-errc:
			t.Fatalf("ListenAndServe: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	env.checkValid(t)
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("ListenAndServe after cancel: %v, want nil", err)
	}
}
