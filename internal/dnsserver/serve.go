package dnsserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxMsg is the largest DNS message: TCP frames carry a 16-bit length (RFC
// 1035 §4.2.2), and no UDP datagram is larger.
const maxMsg = 65535

// Listeners are the sockets of one address: one or more UDP sockets (one
// per reader on Linux, with SO_REUSEPORT) and a TCP listener on the same
// port.
type Listeners struct {
	udp []net.PacketConn
	tcp net.Listener
}

// Addr is the address the listeners got ("127.0.0.1:5353").
func (ls *Listeners) Addr() string { return ls.udp[0].LocalAddr().String() }

// Close closes every socket; for listeners that will not be served.
func (ls *Listeners) Close() error {
	var errs []error
	for _, pc := range ls.udp {
		errs = append(errs, pc.Close())
	}
	errs = append(errs, ls.tcp.Close())
	return errors.Join(errs...)
}

// Listen opens the sockets ListenAndServe serves, so that a caller learns
// the address (port 0) before serving them with ServeListeners. UDP and
// TCP share the port (RFC 7766 §5: TCP support is required). On Linux it
// opens one SO_REUSEPORT UDP socket per UDP reader, so that the kernel
// spreads queries over them.
func (s *Server) Listen(ctx context.Context, addr string) (*Listeners, error) {
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pcs, err := listenUDP(ctx, addr, s.udpReaders)
		if err != nil {
			return nil, fmt.Errorf("%w: udp %s: %w", ErrListen, addr, err)
		}
		l, err := lc.Listen(ctx, "tcp", pcs[0].LocalAddr().String())
		if err == nil {
			return &Listeners{udp: pcs, tcp: l}, nil
		}
		for _, pc := range pcs {
			_ = pc.Close()
		}
		if _, port, _ := net.SplitHostPort(addr); port != "0" || attempt >= 10 {
			return nil, fmt.Errorf("%w: tcp %s: %w", ErrListen, addr, err)
		}
		// Port 0: the UDP port is taken over TCP; try another one.
	}
}

// ServeListeners serves the sockets of Listen, like Serve.
func (s *Server) ServeListeners(ctx context.Context, ls *Listeners) error {
	return s.serve(ctx, ls.udp, (s.udpReaders+len(ls.udp)-1)/len(ls.udp), ls.tcp)
}

// ListenAndServe listens on addr ("host:port") over UDP and TCP (see
// Listen) and serves until ctx is done or Shutdown is called, like Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ls, err := s.Listen(ctx, addr)
	if err != nil {
		return err
	}
	return s.ServeListeners(ctx, ls)
}

// Serve answers queries on pc (UDP, read by Options.UDPReaders goroutines)
// and l (TCP); either may be nil. It blocks until ctx is done or Shutdown
// is called, then closes pc and l, waits for its goroutines and returns
// nil, or ErrServerClosed after Shutdown. Socket errors other than closing
// are logged and retried with a backoff. Serve may be called several
// times, e.g. for IPv4 and IPv6.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, l net.Listener) error {
	if pc == nil && l == nil {
		return fmt.Errorf("%w: Serve needs a packet conn or a listener", ErrOptions)
	}
	var pcs []net.PacketConn
	if pc != nil {
		pcs = append(pcs, pc)
	}
	return s.serve(ctx, pcs, s.udpReaders, l)
}

// serve runs readers goroutines on each of pcs, and the TCP listener l.
func (s *Server) serve(ctx context.Context, pcs []net.PacketConn, readers int, l net.Listener) error {
	closeAll := func() {
		for _, pc := range pcs {
			_ = pc.Close()
		}
		if l != nil {
			_ = l.Close()
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closeAll()
		return ErrServerClosed
	}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	conns := &connSet{m: map[net.Conn]struct{}{}}
	var attrs []any
	if len(pcs) > 0 {
		attrs = append(attrs, "udp", pcs[0].LocalAddr().String(), "udp_sockets", len(pcs), "udp_readers", len(pcs)*readers)
	}
	for _, pc := range pcs {
		for range readers {
			wg.Go(func() { s.readUDP(ctx, pc) })
		}
	}
	if l != nil {
		attrs = append(attrs, "tcp", l.Addr().String())
		wg.Go(func() { s.acceptTCP(ctx, l, conns, &wg) })
	}
	s.log.Info("dns: serving", append(attrs, "zone", s.zone)...)

	stopped := false
	select {
	case <-ctx.Done():
	case <-s.done:
		stopped = true
	}
	cancel() // before conns.stop: handlers check ctx after moving deadlines
	closeAll()
	conns.stop() // connections finish the query in hand, then close
	wg.Wait()
	s.log.Info("dns: stopped", attrs...)
	if stopped {
		return ErrServerClosed
	}
	return nil
}

// Shutdown stops every Serve: sockets are closed, TCP connections finish
// the query they are answering. It waits until all goroutines have
// returned or ctx is done, then returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		s.serving.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		// The waiter above ends with the last Serve, which is bounded by
		// TCPIOTimeout.
		return ctx.Err()
	}
}

// readUDP is one reader of a UDP socket. It returns when pc is closed or
// ctx is done; other errors are logged and retried.
func (s *Server) readUDP(ctx context.Context, pc net.PacketConn) {
	if uc, ok := pc.(*net.UDPConn); ok && !s.noBatch {
		if s.readUDPBatch(ctx, uc) {
			return
		}
	}
	rbuf := make([]byte, maxMsg)
	wbuf := make([]byte, maxMsg)
	var backoff time.Duration
	if uc, ok := pc.(*net.UDPConn); ok {
		// Fast path: netip addresses do not allocate.
		for {
			n, addr, err := uc.ReadFromUDPAddrPort(rbuf)
			if err != nil {
				if s.readFailed(ctx, err, &backoff) {
					return
				}
				continue
			}
			backoff = 0
			if resp := s.appendResponse(wbuf[:0], rbuf[:n], UDP, addr); resp != nil {
				// Send errors concern one client (unreachable, filtered):
				// nothing to do but carry on.
				_, _ = uc.WriteToUDPAddrPort(resp, addr)
			}
		}
	}
	for {
		n, addr, err := pc.ReadFrom(rbuf)
		if err != nil {
			if s.readFailed(ctx, err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		var from netip.AddrPort
		if ua, ok := addr.(*net.UDPAddr); ok {
			from = ua.AddrPort()
		}
		if resp := s.appendResponse(wbuf[:0], rbuf[:n], UDP, from); resp != nil {
			_, _ = pc.WriteTo(resp, addr)
		}
	}
}

// readFailed decides what a read or accept error means: stop cleanly (the
// socket was closed), or wait a little and go on (a transient error such
// as running out of file descriptors), logging once per run of errors.
func (s *Server) readFailed(ctx context.Context, err error, backoff *time.Duration) bool {
	if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		return true
	}
	if *backoff == 0 {
		s.log.Warn("dns: socket error, retrying", "err", err)
		*backoff = 5 * time.Millisecond
	} else if *backoff *= 2; *backoff > time.Second {
		*backoff = time.Second
	}
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// connSet tracks the TCP connections of one Serve.
type connSet struct {
	mu      sync.Mutex
	m       map[net.Conn]struct{}
	stopped bool
}

// add registers c, or reports false when the set is stopped or full.
func (cs *connSet) add(c net.Conn, limit int) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stopped || len(cs.m) >= limit {
		return false
	}
	cs.m[c] = struct{}{}
	return true
}

func (cs *connSet) remove(c net.Conn) {
	cs.mu.Lock()
	delete(cs.m, c)
	cs.mu.Unlock()
}

// stop makes every connection's pending read fail at once; the handler
// then closes it.
func (cs *connSet) stop() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.stopped = true
	for c := range cs.m {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
}

// acceptTCP accepts connections until l is closed or ctx is done.
func (s *Server) acceptTCP(ctx context.Context, l net.Listener, conns *connSet, wg *sync.WaitGroup) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.readFailed(ctx, err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		if !conns.add(c, s.tcpMax) {
			// Over the limit (or stopping): shed the connection rather
			// than queue it (RFC 7766 §6.2.2 lets servers close).
			_ = c.Close()
			continue
		}
		wg.Go(func() {
			defer conns.remove(c)
			defer c.Close()
			s.serveTCPConn(ctx, c)
		})
	}
}

// serveTCPConn answers the queries of one TCP connection in order (RFC
// 7766 §6.2.1: several queries per connection, each framed by a 2-byte
// length) until the client closes it, stays idle for TCPIdleTimeout, is
// too slow, or sends something that cannot be answered.
func (s *Server) serveTCPConn(ctx context.Context, c net.Conn) {
	var from netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = ta.AddrPort()
	}
	r := bufio.NewReaderSize(c, 4096)
	var msg []byte
	wbuf := make([]byte, 2, 1024)
	var lenb [2]byte
	for {
		if c.SetReadDeadline(time.Now().Add(s.tcpIdle)) != nil || ctx.Err() != nil {
			return
		}
		if _, err := io.ReadFull(r, lenb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenb[:]))
		if n < headerLen {
			return // cannot be a query
		}
		// A slow client gets TCPIOTimeout for the rest of the message,
		// however it trickles it in.
		if c.SetReadDeadline(time.Now().Add(s.tcpIO)) != nil {
			return
		}
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		resp := s.appendResponse(wbuf[:2], msg, TCP, from)
		if resp == nil {
			return
		}
		binary.BigEndian.PutUint16(resp, uint16(len(resp)-2))
		if c.SetWriteDeadline(time.Now().Add(s.tcpIO)) != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
		wbuf = resp[:2]
	}
}
