package smtpprobe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TLSA is one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          string // certificate association data, hex
}

// DANE is the TLSA answer for an MX host (RFC 7672 §2.2). It is
// information for the checker, never a verdict: without the AD bit the
// records cannot be trusted (RFC 7672 §2.1.1).
type DANE struct {
	Name    string // _25._tcp.<host>.
	Records []TLSA
	AD      bool // the resolver set Authenticated Data: it validated the answer with DNSSEC
	Rcode   int  // dns.RcodeSuccess, dns.RcodeNameError, ...
}

// dnsTimeout bounds a DNS exchange when ctx has no deadline.
const dnsTimeout = 5 * time.Second

// LookupTLSA asks the recursive resolver at dnsAddr (host:port) for the
// TLSA records of _<port>._tcp.<host> (RFC 7672 §2.2; port 0 means 25),
// with the DO bit and the AD bit set in the query (RFC 6840 §5.7), over
// UDP and again over TCP when truncated. NOERROR and NXDOMAIN answers
// return a *DANE and no error; other rcodes return the *DANE and an error
// wrapping ErrDNS (SERVFAIL from a validating resolver can mean a DNSSEC
// failure). A failed exchange returns only the error.
func LookupTLSA(ctx context.Context, dnsAddr string, host string, port int) (*DANE, error) {
	if port == 0 {
		port = 25
	}
	name := dns.Fqdn("_" + strconv.Itoa(port) + "._tcp." + strings.TrimSuffix(strings.ToLower(host), "."))
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("%w: invalid name %q", ErrDNS, name)
	}
	resp, err := exchange(ctx, dnsAddr, name, dns.TypeTLSA)
	if err != nil {
		return nil, err
	}
	d := &DANE{Name: name, AD: resp.AuthenticatedData, Rcode: resp.Rcode}
	for _, rr := range resp.Answer {
		if t, ok := rr.(*dns.TLSA); ok {
			d.Records = append(d.Records, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: t.Certificate})
		}
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return d, fmt.Errorf("%w: %s TLSA: %s", ErrDNS, name, dns.RcodeToString[resp.Rcode])
	}
	return d, nil
}

// AuthenticatedData reports whether the recursive resolver at dnsAddr
// sets the AD bit (RFC 4035 §3.2.3) on its answer for name and qtype,
// that is whether it validated the answer with DNSSEC. It is only as
// trustworthy as the path to that resolver.
func AuthenticatedData(ctx context.Context, dnsAddr, name string, qtype uint16) (bool, error) {
	resp, err := exchange(ctx, dnsAddr, dns.Fqdn(name), qtype)
	if err != nil {
		return false, err
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return false, fmt.Errorf("%w: %s %s: %s", ErrDNS, name, dns.TypeToString[qtype], dns.RcodeToString[resp.Rcode])
	}
	return resp.AuthenticatedData, nil
}

// exchange sends one query with DO and AD set, retrying over TCP when the
// UDP answer is truncated.
func exchange(ctx context.Context, dnsAddr, name string, qtype uint16) (*dns.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dnsTimeout)
		defer cancel()
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	// RFC 6840 §5.7: setting AD in a query asks for the AD bit back.
	m.AuthenticatedData = true
	// RFC 4035 §3.2.1: the DO bit asks for DNSSEC records.
	m.SetEdns0(1232, true)
	c := &dns.Client{Net: "udp", UDPSize: 1232}
	resp, _, err := c.ExchangeContext(ctx, m, dnsAddr)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, dnsAddr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s at %s: %w", ErrDNS, name, dns.TypeToString[qtype], dnsAddr, err)
	}
	return resp, nil
}
