// Package dnstest runs a real DNS server on 127.0.0.1 for tests. It answers
// like a recursive resolver would: from records written as zone-file text,
// following CNAME chains, and forwarding names under chosen zones to other
// servers (for example a customer zone whose CNAMEs lead into Moat's own
// authoritative server). It listens on UDP and TCP, as resolvers and ACME
// validators use both.
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a test DNS server. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the host:port it listens on, UDP and TCP.
	Addr string

	mu      sync.RWMutex
	records map[string][]dns.RR // by lower-case FQDN
	forward map[string]string   // zone FQDN → server address
	delay   time.Duration
	queries int

	udp, tcp *dns.Server
}

// Start starts a server with the records of zone (zone-file text, absolute
// names or relative to "."), forwarding names at or under each key of
// forward (a zone name) to the server address it maps to. It stops when
// the test ends.
func Start(t testing.TB, zone string, forward map[string]string) *Server {
	t.Helper()
	s := &Server{forward: map[string]string{}}
	for z, addr := range forward {
		s.forward[dns.CanonicalName(z)] = addr
	}
	if err := s.Set(zone); err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	pc, l := Listen(t)
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc = started.Done
	s.tcp.NotifyStartedFunc = started.Done
	served := make(chan error, 2)
	go func() { served <- s.udp.ActivateAndServe() }()
	go func() { served <- s.tcp.ActivateAndServe() }()
	started.Wait()
	t.Cleanup(func() {
		if err := errors.Join(s.udp.Shutdown(), s.tcp.Shutdown()); err != nil {
			t.Errorf("dnstest: shutdown: %v", err)
		}
		for range 2 {
			if err := <-served; err != nil {
				t.Errorf("dnstest: serve: %v", err)
			}
		}
	})
	return s
}

// Listen opens a UDP socket and a TCP listener on the same free port of
// 127.0.0.1, retrying when the port the UDP socket got is taken over TCP.
func Listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("dnstest: no port free over both UDP and TCP")
	return nil, nil
}

// Set replaces the records with those of zone.
func (s *Server) Set(zone string) error {
	recs := map[string][]dns.RR{}
	zp := dns.NewZoneParser(strings.NewReader(zone), ".", "dnstest")
	zp.SetDefaultTTL(60)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := dns.CanonicalName(rr.Header().Name)
		recs[name] = append(recs[name], rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("zone: %w", err)
	}
	s.mu.Lock()
	s.records = recs
	s.mu.Unlock()
	return nil
}

// SetDelay makes every answer wait d, to simulate network latency.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Queries returns how many queries the server has answered.
func (s *Server) Queries() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queries
}

// Resolver returns a *net.Resolver that sends every query to s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr)
		},
	}
}

func (s *Server) forwardFor(name string) string {
	for zone, addr := range s.forward {
		if dns.IsSubDomain(zone, name) {
			return addr
		}
	}
	return ""
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	s.queries++
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m) // a client that went away: nothing to do
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for hops := 0; hops < 10; hops++ {
		if addr := s.forwardFor(name); addr != "" {
			fq := new(dns.Msg)
			fq.SetQuestion(name, q.Qtype)
			c := &dns.Client{Timeout: 3 * time.Second}
			in, _, err := c.Exchange(fq, addr)
			if err == nil && in.Truncated {
				c.Net = "tcp"
				in, _, err = c.Exchange(fq, addr)
			}
			if err != nil {
				m.Rcode = dns.RcodeServerFailure
				break
			}
			m.Answer = append(m.Answer, in.Answer...)
			m.Rcode = in.Rcode
			// Like a recursive resolver, chase a CNAME chain that leaves
			// the forwarded zone.
			next := chainEnd(in.Answer, name)
			if next == name || answered(in.Answer, next, q.Qtype) {
				break
			}
			name = next
			continue
		}
		rrs, exists := s.records[name]
		var cname *dns.CNAME
		matched := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
				m.Answer = append(m.Answer, rr)
				matched = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if matched || cname == nil {
			if !exists {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		m.Answer = append(m.Answer, cname)
		name = dns.CanonicalName(cname.Target)
	}
	_ = w.WriteMsg(m) // a client that went away: nothing to do
}

// chainEnd follows the CNAMEs of rrs from name and returns the last target.
func chainEnd(rrs []dns.RR, name string) string {
	for hops := 0; hops < 10; hops++ {
		next := ""
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == name {
				next = dns.CanonicalName(c.Target)
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	return name
}

// answered reports whether rrs hold a record of type qtype for name.
func answered(rrs []dns.RR, name string, qtype uint16) bool {
	for _, rr := range rrs {
		if dns.CanonicalName(rr.Header().Name) == name && rr.Header().Rrtype == qtype {
			return true
		}
	}
	return false
}
