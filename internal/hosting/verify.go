package hosting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/store"
)

// Verification statuses.
const (
	StatusOK        = "ok"         // delegated by CNAME and answering what Moat serves
	StatusSelf      = "self"       // published by the owner and current
	StatusStale     = "stale"      // published by the owner, but out of date
	StatusWrong     = "wrong"      // points somewhere else
	StatusMissing   = "missing"    // no record
	StatusUpstream  = "unanswered" // delegated, but Moat's zone does not answer as expected
	StatusLookupErr = "error"      // the lookup itself failed
)

// Check is the verdict for one of the three names.
type Check struct {
	Name   string   `json:"name"`
	Status string   `json:"status"`
	Found  []string `json:"found"`            // what DNS answered, as zone-file lines
	Want   string   `json:"want"`             // the record that delegates it
	Fix    string   `json:"fix,omitempty"`    // the exact change to make, if any
	Detail string   `json:"detail,omitempty"` // why
}

// OK reports whether the name needs no change.
func (c Check) OK() bool { return c.Status == StatusOK || c.Status == StatusSelf }

// Resolver sends one query (with recursion desired) and returns the answer.
type Resolver interface {
	Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// DNSResolver asks one recursive resolver over UDP, retrying over TCP when
// the answer is truncated.
type DNSResolver struct {
	Addr    string        // host:port
	Timeout time.Duration // per query; 0 means 5s
}

// Exchange implements Resolver.
func (r DNSResolver) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", name, dns.TypeToString[qtype], r.Addr, err)
	}
	return in, nil
}

// SystemResolver returns the first resolver of /etc/resolv.conf.
func SystemResolver() (string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("read /etc/resolv.conf: %w (pass --resolver)", err)
	}
	if len(cc.Servers) == 0 {
		return "", errors.New("no nameserver in /etc/resolv.conf (pass --resolver)")
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// Verify looks up the three names of d and says, for each, whether it is
// delegated correctly and, if not, the exact fix.
func (s Settings) Verify(ctx context.Context, r Resolver, d *store.Domain) []Check {
	want := s.Delegation(d.Name)
	checks := make([]Check, 3)
	var wg sync.WaitGroup
	wg.Go(func() { checks[0] = s.verifyPolicyHost(ctx, r, want[0]) })
	wg.Go(func() {
		checks[1] = s.verifyTXT(ctx, r, want[1], STSRecord(d.PolicyID), func(found []string) (string, string) {
			return compareSTS(found, d.PolicyID)
		})
	})
	wg.Go(func() {
		wantTXT := s.TLSRPTRecord(d)
		checks[2] = s.verifyTXT(ctx, r, want[2], wantTXT, func(found []string) (string, string) {
			return compareTLSRPT(found, wantTXT)
		})
	})
	wg.Wait()
	return checks
}

func delegateFix(want Record) string {
	return "publish " + want.Zone()
}

// cnameOf returns the CNAME target of owner in the answer section, or "".
func cnameOf(m *dns.Msg, owner string) string {
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, owner) {
			return strings.ToLower(c.Target)
		}
	}
	return ""
}

func answerLines(m *dns.Msg) []string {
	out := []string{}
	for _, rr := range m.Answer {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func (s Settings) verifyPolicyHost(ctx context.Context, r Resolver, want Record) Check {
	c := Check{Name: want.Name, Want: want.Zone()}
	m, err := r.Exchange(ctx, want.Name, dns.TypeA)
	if err != nil {
		c.Status, c.Detail = StatusLookupErr, err.Error()
		return c
	}
	c.Found = answerLines(m)
	if target := cnameOf(m, want.Name); target != "" {
		if target == want.Value {
			c.Status = StatusOK
			if !hasType(m, dns.TypeA) {
				c.Status = StatusUpstream
				c.Detail = "the CNAME is right, but " + want.Value + " has no address: point it at Moat's HTTPS listener"
			}
			return c
		}
		c.Status = StatusWrong
		c.Detail = "CNAME points to " + target
		c.Fix = "change the CNAME: " + want.Zone()
		return c
	}
	if !hasType(m, dns.TypeA) {
		c.Status = StatusMissing
		c.Detail = rcodeDetail(m)
		c.Fix = delegateFix(want)
		return c
	}
	// Address records published directly: fine if they are the policy
	// host's addresses.
	host, err := r.Exchange(ctx, want.Value, dns.TypeA)
	if err != nil {
		c.Status, c.Detail = StatusLookupErr, err.Error()
		return c
	}
	if a, b := addrs(m), addrs(host); len(b) > 0 && slices.Equal(a, b) {
		c.Status = StatusSelf
		c.Detail = "address records equal to " + want.Value + "'s; a CNAME would follow its changes"
		return c
	}
	c.Status = StatusWrong
	c.Detail = "address records differ from " + want.Value + "'s"
	c.Fix = "replace the address records with " + want.Zone()
	return c
}

func (s Settings) verifyTXT(ctx context.Context, r Resolver, want Record, wantTXT string, compare func([]string) (string, string)) Check {
	c := Check{Name: want.Name, Want: want.Zone()}
	m, err := r.Exchange(ctx, want.Name, dns.TypeTXT)
	if err != nil {
		c.Status, c.Detail = StatusLookupErr, err.Error()
		return c
	}
	c.Found = answerLines(m)
	txts := txtValues(m)
	if target := cnameOf(m, want.Name); target != "" {
		if target != want.Value {
			c.Status = StatusWrong
			c.Detail = "CNAME points to " + target
			c.Fix = "change the CNAME: " + want.Zone()
			return c
		}
		if wantTXT == "" {
			c.Status = StatusUpstream
			c.Detail = "delegated, but Moat publishes no TLS-RPT record: configure tlsrpt.rua or give the domain --rua"
			return c
		}
		if len(txts) == 1 && txts[0] == wantTXT {
			c.Status = StatusOK
			return c
		}
		c.Status = StatusUpstream
		c.Detail = fmt.Sprintf("the CNAME is right, but %s answers %q instead of %q: check that the zone %s is delegated (NS) to Moat's DNS server", want.Value, txts, wantTXT, s.Zone)
		return c
	}
	if len(txts) == 0 {
		c.Status = StatusMissing
		c.Detail = rcodeDetail(m)
		c.Fix = delegateFix(want)
		return c
	}
	c.Status, c.Detail = compare(txts)
	if c.Status != StatusSelf {
		c.Fix = delegateFix(want) + " (replacing the TXT record), or publish the TXT record " + strconv.Quote(wantTXT)
	}
	return c
}

// compareSTS judges self-published _mta-sts TXT records.
func compareSTS(found []string, id string) (string, string) {
	var recs []*mtasts.Record
	for _, t := range found {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue // RFC 8461 §3.1: other records are ignored
		}
		rec, err := mtasts.ParseRecord(t)
		if err != nil {
			return StatusWrong, fmt.Sprintf("invalid record %q: %v", t, err)
		}
		recs = append(recs, rec)
	}
	switch {
	case len(recs) == 0:
		return StatusWrong, "no v=STSv1 record among the TXT records"
	case len(recs) > 1:
		// RFC 8461 §3.1: several records mean no policy for senders.
		return StatusWrong, fmt.Sprintf("%d v=STSv1 records: senders treat that as no policy", len(recs))
	case recs[0].ID != id:
		return StatusStale, fmt.Sprintf("self-published id %s is stale: the policy served now has id %s, senders keep using their cached policy", recs[0].ID, id)
	}
	return StatusSelf, "self-published and current; a CNAME would follow policy changes automatically"
}

// compareTLSRPT judges self-published _smtp._tls TXT records.
func compareTLSRPT(found []string, want string) (string, string) {
	var recs []string
	for _, t := range found {
		if strings.HasPrefix(t, "v=TLSRPTv1") {
			recs = append(recs, t)
		}
	}
	switch {
	case len(recs) == 0:
		return StatusWrong, "no v=TLSRPTv1 record among the TXT records"
	case len(recs) > 1:
		return StatusWrong, fmt.Sprintf("%d v=TLSRPTv1 records: RFC 8460 §3 allows one", len(recs))
	case want != "" && recs[0] != want:
		return StatusStale, fmt.Sprintf("self-published record %q differs from Moat's %q: reports may not reach Moat", recs[0], want)
	}
	return StatusSelf, "self-published and current"
}

func hasType(m *dns.Msg, t uint16) bool {
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func addrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

func txtValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

func rcodeDetail(m *dns.Msg) string {
	if m.Rcode == dns.RcodeNameError {
		return "the name does not exist (NXDOMAIN)"
	}
	if m.Rcode != dns.RcodeSuccess {
		return "the resolver answered " + dns.RcodeToString[m.Rcode]
	}
	return "no record of that type"
}
