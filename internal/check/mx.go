package check

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/smtpprobe"
)

// mxData is what the MX lookup and the probes found.
type mxData struct {
	records  []mxRecord
	err      error // the lookup failed (not "no record")
	null     bool  // exactly one MX, ".": RFC 7505 null MX
	mixed    bool  // a "." among other MX records
	implicit bool  // no MX records, but the domain has addresses
	addrs    []netip.Addr
	skipped  int // MX hosts beyond Options.MaxMXHosts, not probed
	hosts    []*mxHost
}

type mxRecord struct {
	Host string `json:"host"`
	Pref uint16 `json:"preference"`
}

// mxHost is one MX host and what the probe found there.
type mxHost struct {
	name    string
	addrs   []netip.Addr
	addrErr error
	refused bool // every address refused by the address guard
	probe   *smtpprobe.Result
	dane    *smtpprobe.DANE
	daneErr error
}

// hostNames returns the names of the MX hosts, in preference order.
func (m *mxData) hostNames() []string {
	var out []string
	for _, h := range m.hosts {
		out = append(out, h.name)
	}
	return out
}

func (r *run) gatherMX(ctx context.Context) {
	done := r.timed("mx", "")
	mxs, err := r.res.LookupMX(ctx, r.domain)
	done()
	if err != nil && !dnsname.IsNotFound(err) {
		r.mx.err = err
		return
	}
	seen := map[string]bool{}
	var names []string
	for _, m := range mxs {
		host := strings.ToLower(strings.TrimSuffix(m.Host, "."))
		r.mx.records = append(r.mx.records, mxRecord{Host: m.Host, Pref: m.Pref})
		if host == "" {
			r.mx.mixed = true
			continue
		}
		if !seen[host] {
			seen[host] = true
			names = append(names, host)
		}
	}
	slices.SortStableFunc(r.mx.records, func(a, b mxRecord) int { return cmp.Compare(a.Pref, b.Pref) })
	if len(mxs) == 1 && r.mx.mixed {
		// RFC 7505 §3: a null MX is a single MX record with preference 0
		// and the root as exchange.
		r.mx.null, r.mx.mixed = true, false
		return
	}
	if len(mxs) == 0 {
		// RFC 5321 §5.1: without MX records the domain itself is the
		// implicit MX host, if it has an address.
		done := r.timed("mx implicit", "mx")
		addrs, err := r.res.LookupNetIP(ctx, "ip", r.domain)
		done()
		if err != nil || len(addrs) == 0 {
			return
		}
		r.mx.implicit, r.mx.addrs = true, addrs
		names = []string{r.domain}
	}
	if len(names) > r.opts.MaxMXHosts {
		r.mx.skipped = len(names) - r.opts.MaxMXHosts
		names = names[:r.opts.MaxMXHosts]
	}
	sem := make(chan struct{}, r.opts.MaxMXProbes)
	var wg sync.WaitGroup
	for _, name := range names {
		h := &mxHost{name: name}
		r.mx.hosts = append(r.mx.hosts, h)
		wg.Go(func() { r.probeHost(ctx, h, sem) })
		if r.opts.DNSAddr != "" {
			wg.Go(func() {
				done := r.timed("tlsa "+h.name, "mx")
				h.dane, h.daneErr = smtpprobe.LookupTLSA(ctx, r.opts.DNSAddr, h.name, 25)
				done()
			})
		}
	}
	wg.Wait()
}

// probeHost resolves an MX host and, unless its addresses are refused,
// probes it, at most Options.MaxMXProbes at once.
func (r *run) probeHost(ctx context.Context, h *mxHost, sem chan struct{}) {
	resolved := "resolve " + h.name
	done := r.timed(resolved, "mx")
	h.addrs, h.addrErr = r.res.LookupNetIP(ctx, "ip", h.name)
	done()
	if h.addrErr == nil && len(h.addrs) == 0 {
		h.addrErr = fmt.Errorf("%s has no A or AAAA record", h.name)
	}
	if h.addrErr != nil {
		return
	}
	guard := r.allowAddr()
	allowed := 0
	for _, a := range h.addrs {
		if guard(a) == nil {
			allowed++
		}
	}
	if allowed == 0 {
		h.refused = true
		return
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		h.probe = &smtpprobe.Result{Host: h.name, Err: fmt.Errorf("%w: %w", smtpprobe.ErrTimeout, ctx.Err()), Reason: "the check ran out of time before this host was probed"}
		return
	}
	defer func() { <-sem }()
	done = r.timed("probe "+h.name, resolved)
	h.probe = smtpprobe.Probe(ctx, h.name, smtpprobe.Opts{
		Resolver:  r.res,
		Port:      r.opts.SMTPPort,
		Timeout:   r.opts.StepTimeout,
		HelloName: r.opts.HelloName,
		RootCAs:   r.opts.RootCAs,
		Now:       r.opts.Now,
		AllowAddr: guard,
	})
	done()
}

// evalMX makes the findings about the MX records themselves.
func (r *run) evalMX() {
	m := &r.mx
	switch {
	case m.err != nil:
		r.add("mx.dns-error", fmt.Sprintf("MX lookup for %s failed: %v", r.domain, m.err), "Check that the domain's name servers answer MX queries.", nil)
		return
	case m.null:
		r.add("mx.null", fmt.Sprintf("%s publishes a null MX (0 .): it accepts no mail.", r.domain), "", m.records)
		return
	case m.implicit:
		r.add("mx.implicit", fmt.Sprintf("%s has no MX record; senders deliver to its address %s (implicit MX).", r.domain, joinAddrs(m.addrs)),
			fmt.Sprintf("%s. MX 10 mail.%s.  (a host that runs your mail server), or %s. MX 0 .  if the domain receives no mail", r.domain, r.domain, r.domain), nil)
	case len(m.hosts) == 0:
		r.add("mx.none", fmt.Sprintf("%s has no MX record and no A or AAAA record: it cannot receive mail.", r.domain),
			fmt.Sprintf("%s. MX 10 mail.%s.  (a host that runs your mail server), or %s. MX 0 .  if the domain receives no mail (RFC 7505)", r.domain, r.domain, r.domain), nil)
		return
	}
	if m.mixed {
		var keep []string
		for _, rec := range m.records {
			if rec.Host != "." {
				keep = append(keep, fmt.Sprintf("%s. MX %d %s", r.domain, rec.Pref, absolute(rec.Host)))
			}
		}
		r.add("mx.null-mixed", fmt.Sprintf("%s publishes a null MX (.) together with %s.", r.domain, plural(len(keep), "other MX record", "other MX records")),
			fmt.Sprintf("Delete the record %s. MX 0 .  and keep: %s", r.domain, strings.Join(keep, "; ")), m.records)
	}
	if !m.implicit {
		var list []string
		for _, rec := range m.records {
			if rec.Host != "." {
				list = append(list, fmt.Sprintf("%d %s", rec.Pref, strings.TrimSuffix(rec.Host, ".")))
			}
		}
		msg := fmt.Sprintf("%s: %s", plural(len(list), "MX record", "MX records"), strings.Join(list, ", "))
		if m.skipped > 0 {
			msg += fmt.Sprintf(" (only the %d most preferred hosts were probed; %d were not)", len(m.hosts), m.skipped)
		}
		r.add("mx.ok", msg, "", m.records)
	}
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
