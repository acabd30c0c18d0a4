package mtasts_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// dnsZone is the data of the test DNS server, which acts as a recursive
// resolver would: it follows CNAMEs within its data, answers NODATA with an
// SOA for names it knows without the asked type, and NXDOMAIN otherwise.
type dnsZone struct {
	rrs map[string][]dns.RR // by lower-case FQDN
	// addrs holds dnsmasq "address=/suffix/ip" rules: the suffix and every
	// name below it have an A record.
	addrs map[string]net.IP
	// blackhole holds suffixes for which no answer is ever sent.
	blackhole []string
	// servfail holds names answered with SERVFAIL.
	servfail map[string]bool
	// tcpQueries counts the queries received over TCP.
	tcpQueries atomic.Int64
}

func newZone() *dnsZone {
	return &dnsZone{rrs: map[string][]dns.RR{}, addrs: map[string]net.IP{}, servfail: map[string]bool{}}
}

// add adds records written in zone-file syntax, one per line.
func (z *dnsZone) add(t *testing.T, zone string) {
	t.Helper()
	for _, line := range strings.Split(zone, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		name := strings.ToLower(rr.Header().Name)
		z.rrs[name] = append(z.rrs[name], rr)
	}
}

func (z *dnsZone) addrFor(name string) net.IP {
	name = strings.TrimSuffix(name, ".")
	for suffix, ip := range z.addrs {
		if name == suffix || strings.HasSuffix(name, "."+suffix) {
			return ip
		}
	}
	return nil
}

func (z *dnsZone) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	qname := strings.ToLower(q.Name)
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		z.tcpQueries.Add(1)
	}
	for _, s := range z.blackhole {
		if qname == s+"." || strings.HasSuffix(qname, "."+s+".") {
			return // never answer: the client times out
		}
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if z.servfail[qname] {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	name := qname
	for range 8 {
		var cname *dns.CNAME
		for _, rr := range z.rrs[name] {
			if c, ok := rr.(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
				cname = c
			}
		}
		if cname == nil {
			break
		}
		m.Answer = append(m.Answer, cname)
		name = strings.ToLower(cname.Target)
	}
	for _, rr := range z.rrs[name] {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	ip := z.addrFor(name)
	if q.Qtype == dns.TypeA && ip != nil && len(m.Answer) == 0 {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip})
	}
	if len(m.Answer) == 0 {
		if len(z.rrs[name]) == 0 && ip == nil {
			m.Rcode = dns.RcodeNameError
		}
		soa, _ := dns.NewRR(". 60 IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60")
		m.Ns = append(m.Ns, soa)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// startDNS serves z over UDP and TCP on the same 127.0.0.1 port and returns
// the address.
func startDNS(t *testing.T, z *dnsZone) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no free port for UDP and TCP")
	}
	h := dns.HandlerFunc(z.serveDNS)
	var wg sync.WaitGroup
	wg.Add(2)
	udp := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: wg.Done}
	tcp := &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: wg.Done}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	wg.Wait()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return pc.LocalAddr().String()
}

// newResolver returns a real Go resolver that sends every query to the test
// DNS server at addr; with forceTCP it uses TCP for every query.
func newResolver(addr string, forceTCP bool) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if forceTCP {
				network = "tcp"
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// vhost is one name served by the test HTTPS server.
type vhost struct {
	cert    *tls.Certificate
	handler http.Handler
}

// httpsServer is one TLS listener on 127.0.0.1 serving several Policy
// Hosts, like nginx with one server block per name: the certificate is
// chosen by SNI and the content by the Host header. An unknown SNI gets the
// certificate of the default host.
type httpsServer struct {
	srv   *httptest.Server
	hosts map[string]*vhost
	def   string
	port  int

	mu   sync.Mutex
	snis []string // ServerName of every handshake
}

// newHTTPSServer starts the server; hosts must not change afterwards.
func newHTTPSServer(t *testing.T, hosts map[string]*vhost, def string, tlsCfg *tls.Config) *httpsServer {
	t.Helper()
	s := &httpsServer{hosts: hosts, def: def}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h := s.hosts[host]; h != nil && h.handler != nil {
			h.handler.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	tlsCfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		s.snis = append(s.snis, hello.ServerName)
		s.mu.Unlock()
		if h := s.hosts[strings.ToLower(hello.ServerName)]; h != nil && h.cert != nil {
			return h.cert, nil
		}
		return s.hosts[s.def].cert, nil
	}
	s.srv.TLS = tlsCfg
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	_, port, err := net.SplitHostPort(s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.port, _ = strconv.Atoi(port)
	return s
}

func (s *httpsServer) serverNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.snis...)
}

// policyHandler serves body as text/plain with status 200.
func policyHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	})
}
