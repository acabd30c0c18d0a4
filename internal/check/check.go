package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/bimi"
	"github.com/moatmail/moat/internal/dnsname"
)

// Sentinel errors of Check. DNS answers such as "no record" are findings,
// never errors.
var (
	// ErrInvalidDomain: the argument is not a mail domain
	// (dnsname.Domain). It is dnsname.ErrInvalid: the error is a
	// *dnsname.Error, worded as every other command words it.
	ErrInvalidDomain = dnsname.ErrInvalid
	// ErrDNSUnavailable: every basic lookup (MX, SPF, DMARC) failed with
	// something other than "no such record": the resolver is unreachable
	// or the domain's DNS is down, so no report would mean anything.
	// Retry, or pass another resolver.
	ErrDNSUnavailable = errors.New("check: DNS unavailable")
)

// Options configures a Checker. The zero value of every field means its
// default.
type Options struct {
	// Resolver answers every DNS lookup. Default: a net.Resolver with the
	// system configuration.
	Resolver Resolver
	// DNSAddr is the host:port of the recursive resolver that raw queries
	// go to: the DNSSEC AD bit and DANE TLSA records. Default (""): those
	// informational checks are skipped, with a finding saying so.
	DNSAddr string
	// RootCAs are the trusted roots for MX hosts, policy hosts and logo
	// hosts. Default (nil): the system roots.
	RootCAs *x509.CertPool
	// SMTPPort is the port probed on MX hosts. Default: 25. Only tests
	// change it.
	SMTPPort int
	// HTTPSPort is the port of the MTA-STS policy host and the BIMI logo
	// host. Default: 443. Only tests change it.
	HTTPSPort int
	// AllowPrivate lets the checker fetch policies and logos from, and
	// probe MX hosts at, private, loopback and link-local addresses. By
	// default they are refused, so that a checker run on behalf of others
	// cannot be used to reach internal networks.
	AllowPrivate bool
	// Timeout bounds the whole check. Default: 20 seconds.
	Timeout time.Duration
	// StepTimeout bounds each SMTP step (connect, banner, EHLO, STARTTLS,
	// handshake), the policy fetch and the logo fetch. Default: 10
	// seconds. Timeout still bounds them all.
	StepTimeout time.Duration
	// DKIMSelectors are DKIM selectors to look up in addition to a list of
	// common ones (dkim.CommonSelectors). A named selector without a key
	// is an error; a common one without a key is ignored.
	DKIMSelectors []string
	// Hosted reports whether this Moat hosts the domain's MTA-STS policy.
	// Default (nil): unknown, and no finding is made.
	Hosted func(ctx context.Context, domain string) (bool, error)
	// Now is the clock (certificate expiry, policy ids in fixes,
	// CheckedAt). Default: time.Now.
	Now func() time.Time
	// MaxMXProbes bounds the MX hosts probed at once. Default: 4.
	MaxMXProbes int
	// MaxMXHosts is the most MX hosts probed per domain (the most
	// preferred ones). Default: 10.
	MaxMXHosts int
	// MaxParallelLookups bounds the DNS queries in flight per check.
	// Default: 32.
	MaxParallelLookups int
	// HelloName is the EHLO name of the SMTP probes. Default: the probe's
	// ("moat.invalid").
	HelloName string
}

// Checker checks domains. It is safe for concurrent use: each Check has its
// own state.
type Checker struct {
	opts  Options
	rules map[string]Rule
}

// New returns a Checker with opts, defaults applied.
func New(opts Options) *Checker {
	if opts.Resolver == nil {
		opts.Resolver = &net.Resolver{}
	}
	if opts.SMTPPort <= 0 {
		opts.SMTPPort = 25
	}
	if opts.HTTPSPort <= 0 {
		opts.HTTPSPort = 443
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Second
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxMXProbes <= 0 {
		opts.MaxMXProbes = 4
	}
	if opts.MaxMXHosts <= 0 {
		opts.MaxMXHosts = 10
	}
	if opts.MaxParallelLookups <= 0 {
		opts.MaxParallelLookups = 32
	}
	rules := map[string]Rule{}
	for _, r := range Rules() {
		rules[r.ID] = r
	}
	return &Checker{opts: opts, rules: rules}
}

// Check checks domain and returns its report. domain is normalized by
// dnsname.Parse at the dnsname.Domain level (U-labels, case, a trailing
// dot). The error is ErrInvalidDomain, ErrDNSUnavailable, or the context's
// error when ctx ends before the check; a check that runs out of
// Options.Timeout still returns a report, whose unfinished checks say they
// timed out.
func (c *Checker) Check(ctx context.Context, domain string) (*Report, error) {
	name, err := dnsname.Parse(domain, dnsname.Domain)
	if err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	r := &run{
		c:      c,
		opts:   &c.opts,
		domain: name,
		start:  time.Now(),
		res:    newCachingResolver(c.opts.Resolver, c.opts.MaxParallelLookups),
	}
	r.gather(ctx)
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("check %s: %w", name, err)
	}
	if err := r.unavailable(); err != nil {
		return nil, err
	}
	return r.report(), nil
}

// run is the state of one check: what was gathered, then the findings.
type run struct {
	c      *Checker
	opts   *Options
	domain string
	start  time.Time
	res    *cachingResolver

	mu    sync.Mutex
	steps []Step

	// Gathered data; each field is written by one goroutine of gather and
	// read after they all end.
	mx     mxData
	sts    stsData
	tlsrpt tlsrptData
	spf    spfData
	dmarc  dmarcData
	dkim   []dkimData
	bimi   bimiData
	dnssec dnssecData
	hosted hostedData

	findings []Finding
}

// timed records a step from now until the returned function is called.
func (r *run) timed(name, after string) func() {
	start := time.Since(r.start)
	return func() {
		end := time.Since(r.start)
		r.mu.Lock()
		r.steps = append(r.steps, Step{Name: name, After: after, Start: start, Duration: end - start})
		r.mu.Unlock()
	}
}

// gather runs every lookup, fetch and probe, each independent one in
// parallel, and returns when all have ended.
func (r *run) gather(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.gatherMX(ctx) })
	wg.Go(func() { r.gatherSTSRecord(ctx) })
	wg.Go(func() { r.gatherSTSPolicy(ctx) })
	wg.Go(func() { r.gatherTLSRPT(ctx) })
	wg.Go(func() { r.gatherSPF(ctx) })
	wg.Go(func() { r.gatherDMARC(ctx) })
	wg.Go(func() { r.gatherDKIM(ctx) })
	wg.Go(func() { r.gatherBIMI(ctx) })
	wg.Go(func() { r.gatherDNSSEC(ctx) })
	wg.Go(func() { r.gatherHosted(ctx) })
	wg.Wait()
}

// unavailable returns ErrDNSUnavailable when the MX, SPF and DMARC lookups
// all failed for reasons other than "no record".
func (r *run) unavailable() error {
	if r.mx.err == nil || r.spf.lookupErr == nil || r.dmarc.lookupErr == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: MX lookup: %w", ErrDNSUnavailable, r.domain, r.mx.err)
}

// allowAddr is the address guard of fetches and probes: nil (everything
// allowed) with AllowPrivate, otherwise public unicast addresses only.
func (r *run) allowAddr() func(netip.Addr) error {
	if r.opts.AllowPrivate {
		return func(netip.Addr) error { return nil }
	}
	return bimi.PublicOnly
}

// add records a finding of rule id. An unknown id is a programmer error.
func (r *run) add(id, message, fix string, details any) {
	rule, ok := r.c.rules[id]
	if !ok {
		panic("check: finding " + id + " has no rule")
	}
	r.findings = append(r.findings, Finding{
		ID: id, Pillar: rule.Pillar, Component: rule.Component, Severity: rule.Severity,
		Penalty: rule.Penalty, Message: message, Why: rule.Why, Fix: fix, Details: details,
	})
}

// report evaluates what was gathered.
func (r *run) report() *Report {
	r.evalMX()
	r.evalTransport()
	r.evalSTS()
	r.evalTLSRPT()
	r.evalSPF()
	r.evalDMARC()
	r.evalDKIM()
	r.evalBIMI()
	r.evalDNSSEC()
	sortFindings(r.findings)
	if r.findings == nil {
		r.findings = []Finding{}
	}
	rep := &Report{
		Domain:    r.domain,
		Findings:  r.findings,
		NullMX:    r.mx.null,
		CheckedAt: r.opts.Now().UTC(),
	}
	rep.score(func(pillar string) bool { return !r.mx.null || pillar == Impersonation })
	rep.Timings = r.timings()
	return rep
}

func (r *run) timings() Timings {
	r.mu.Lock()
	steps := append([]Step(nil), r.steps...)
	r.mu.Unlock()
	sortSteps(steps)
	q, hits, spent := r.res.stats()
	return Timings{
		Total:        time.Since(r.start),
		Steps:        steps,
		CriticalPath: criticalPath(steps),
		DNSQueries:   q,
		DNSCacheHits: hits,
		DNSTime:      spent,
	}
}
