package smtpprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/dnstest"
)

// startValidator starts a DNS server on 127.0.0.1 that plays a validating
// resolver: names under secure.test. are answered with AD set when the
// query asked for DNSSEC (DO), names under bogus.test. get SERVFAIL, and
// many.secure.test. has enough TLSA records to need TCP.
func startValidator(t *testing.T) *validator {
	t.Helper()
	v := &validator{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		q := req.Question[0]
		opt := req.IsEdns0()
		v.mu.Lock()
		v.do = opt != nil && opt.Do()
		if _, isTCP := w.RemoteAddr().(*net.TCPAddr); isTCP {
			v.tcp++
		}
		v.mu.Unlock()
		switch {
		case dns.IsSubDomain("bogus.test.", q.Name):
			m.Rcode = dns.RcodeServerFailure
		case q.Name == "_25._tcp.mx1.secure.test." && q.Qtype == dns.TypeTLSA,
			q.Name == "_25._tcp.mx1.insecure.test." && q.Qtype == dns.TypeTLSA:
			rr, _ := dns.NewRR(q.Name + " 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
			m.Answer = append(m.Answer, rr)
		case q.Name == "_25._tcp.many.secure.test." && q.Qtype == dns.TypeTLSA:
			for i := 0; i < 40; i++ {
				rr, _ := dns.NewRR(fmt.Sprintf("%s 300 IN TLSA 3 1 1 %064x", q.Name, i))
				m.Answer = append(m.Answer, rr)
			}
		case q.Name == "secure.test." && q.Qtype == dns.TypeMX:
			rr, _ := dns.NewRR("secure.test. 300 IN MX 10 mx1.secure.test.")
			m.Answer = append(m.Answer, rr)
		default:
			m.Rcode = dns.RcodeNameError
		}
		m.AuthenticatedData = opt != nil && opt.Do() && dns.IsSubDomain("secure.test.", q.Name)
		if opt != nil {
			m.SetEdns0(opt.UDPSize(), opt.Do())
		}
		if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
			size := 512
			if opt != nil {
				size = max(int(opt.UDPSize()), 512)
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	pc, l := dnstest.Listen(t)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: l, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	udp.NotifyStartedFunc = started.Done
	tcp.NotifyStartedFunc = started.Done
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	started.Wait()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	v.addr = pc.LocalAddr().String()
	return v
}

type validator struct {
	addr string
	mu   sync.Mutex
	do   bool // the last query had the DO bit
	tcp  int  // queries over TCP
}

func (v *validator) stats() (do bool, tcp int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.do, v.tcp
}

func TestLookupTLSA(t *testing.T) {
	t.Parallel()
	v := startValidator(t)
	addr := v.addr
	ctx := context.Background()

	d, err := LookupTLSA(ctx, addr, "MX1.secure.test.", 0)
	if err != nil {
		t.Fatal(err)
	}
	if do, tcp := v.stats(); !do || tcp != 0 {
		t.Errorf("query: DO %v, %d over TCP", do, tcp)
	}
	if d.Name != "_25._tcp.mx1.secure.test." || !d.AD || d.Rcode != dns.RcodeSuccess || len(d.Records) != 1 {
		t.Fatalf("got %+v", d)
	}
	if r := d.Records[0]; r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || !strings.HasPrefix(r.Data, "0123") {
		t.Errorf("record %+v", r)
	}

	d, err = LookupTLSA(ctx, addr, "mx1.insecure.test", 25)
	if err != nil || d.AD || len(d.Records) != 1 {
		t.Errorf("insecure: %+v, %v", d, err)
	}
	d, err = LookupTLSA(ctx, addr, "many.secure.test", 25)
	if _, tcp := v.stats(); err != nil || len(d.Records) != 40 || !d.AD || tcp != 1 {
		t.Errorf("truncated then TCP: %d records, %d TCP queries, %v", len(d.Records), tcp, err)
	}
	d, err = LookupTLSA(ctx, addr, "none.secure.test", 25)
	if err != nil || d.Rcode != dns.RcodeNameError || len(d.Records) != 0 || !d.AD {
		t.Errorf("NXDOMAIN: %+v, %v", d, err)
	}
	d, err = LookupTLSA(ctx, addr, "mx.bogus.test", 25)
	if !errors.Is(err, ErrDNS) || d == nil || d.Rcode != dns.RcodeServerFailure || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("SERVFAIL: %+v, %v", d, err)
	}
	if _, err := LookupTLSA(ctx, addr, "bad..name", 25); !errors.Is(err, ErrDNS) {
		t.Errorf("bad name: %v", err)
	}
}

func TestAuthenticatedData(t *testing.T) {
	t.Parallel()
	addr := startValidator(t).addr
	ctx := context.Background()
	tests := []struct {
		name  string
		qtype uint16
		ad    bool
		err   bool
	}{
		{"secure.test", dns.TypeMX, true, false},
		{"insecure.test", dns.TypeMX, false, false},
		{"x.bogus.test", dns.TypeA, false, true},
	}
	for _, tc := range tests {
		ad, err := AuthenticatedData(ctx, addr, tc.name, tc.qtype)
		if ad != tc.ad || (err != nil) != tc.err || err != nil && !errors.Is(err, ErrDNS) {
			t.Errorf("%s: ad %v, err %v", tc.name, ad, err)
		}
	}
	// No server: the exchange fails within the context's deadline.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := AuthenticatedData(cctx, addr, "secure.test", dns.TypeMX); !errors.Is(err, ErrDNS) {
		t.Errorf("cancelled: %v", err)
	}
}
