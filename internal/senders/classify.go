package senders

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/store"
)

// Class is what a source (or some of its messages) is to the domain.
type Class string

// Classes, from the most to the least severe when a source's messages are
// split evenly.
const (
	// Misconfigured: a known sending service (the catalogue recognized
	// it by forward-confirmed reverse DNS, a passing DKIM signature of its
	// own or a passing SPF check of its own envelope domain) or a source
	// the domain's own SPF record authorizes, failing DMARC: legitimate
	// mail that enforcement would block until it is fixed.
	Misconfigured Class = "misconfigured"
	// Unknown: failing DMARC, and neither known nor authorized: possibly
	// spoofing.
	Unknown Class = "unknown"
	// Forwarded: the reporter gave a forwarded, mailing_list or
	// trusted_forwarder override, or the mail passed DKIM aligned while
	// SPF failed (the envelope kept through a forwarder that is not in
	// the SPF record).
	Forwarded Class = "forwarded"
	// Compliant: DMARC passes (aligned DKIM or SPF).
	Compliant Class = "compliant"
)

// Classes lists the classes in severity order.
var Classes = []Class{Misconfigured, Unknown, Forwarded, Compliant}

// Counts are message counts per class.
type Counts struct {
	Compliant     int64 `json:"compliant"`
	Forwarded     int64 `json:"forwarded"`
	Misconfigured int64 `json:"misconfigured"`
	Unknown       int64 `json:"unknown"`
}

func (c *Counts) ptr(cl Class) *int64 {
	switch cl {
	case Compliant:
		return &c.Compliant
	case Forwarded:
		return &c.Forwarded
	case Misconfigured:
		return &c.Misconfigured
	}
	return &c.Unknown
}

// Of returns the count of cl.
func (c Counts) Of(cl Class) int64 { return *c.ptr(cl) }

func (c *Counts) add(cl Class, n int64) { *c.ptr(cl) += n }

// Total is the sum over the classes.
func (c Counts) Total() int64 { return c.Compliant + c.Forwarded + c.Misconfigured + c.Unknown }

// Facts are what DNS said about the sources, by source address: reverse
// DNS, and the result of the domain's own SPF record. A source missing
// from a map is not known there.
type Facts struct {
	PTR map[string]store.PTRRecord
	SPF map[string]store.SPFAuth
}

// Source is one sending address of a domain over a period.
type Source struct {
	IP string `json:"ip"`
	// PTR is the forward-confirmed reverse DNS name, else the first PTR
	// name found (PTRConfirmed false: anyone can publish such a name for
	// their own addresses, so it never names a service).
	PTR          string `json:"ptr,omitempty"`
	PTRConfirmed bool   `json:"ptr_confirmed"`
	// PTRError is why there is no name ("nxdomain", "timeout", ...);
	// "unresolved" when reverse DNS was not looked up.
	PTRError  string `json:"ptr_error,omitempty"`
	OrgDomain string `json:"org_domain,omitempty"` // the organizational domain of a confirmed PTR
	// Service is the catalogue's sending service, found by ServiceBy:
	// "ptr" (forward-confirmed reverse DNS), "dkim" (a passing signature
	// of its own domain) or "spf" (a passing SPF check of its own
	// envelope domain); nil when none matched.
	Service   *Service `json:"service,omitempty"`
	ServiceBy string   `json:"service_by,omitempty"`
	// SPF is the result of the domain's own SPF record for this address
	// (check_host() for postmaster@domain, RFC 7208 §2.6); "" when not
	// evaluated. SPFAuthorized: it is "pass".
	SPF           string `json:"spf,omitempty"`
	SPFAuthorized bool   `json:"spf_authorized"`
	// Class is the class of most of its messages (ties go to the more
	// severe class).
	Class    Class `json:"class"`
	Messages int64 `json:"messages"`
	// Passing counts the messages that passed DMARC.
	Passing int64 `json:"dmarc_pass"`
	// ByClass counts every message by class; Failing the DMARC-failing
	// ones (so Failing.Compliant is 0).
	ByClass Counts `json:"by_class"`
	Failing Counts `json:"failing"`
	// The header-from, envelope-from and DKIM signing domains seen, each
	// sorted and at most maxNames.
	HeaderFrom   []string `json:"header_from"`
	EnvelopeFrom []string `json:"envelope_from"`
	DKIMDomains  []string `json:"dkim_domains"`
	// FirstSeen is the first day the source appears in the rollups (set by
	// Analyzer.NewSources).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Fixes make its misconfigured messages pass.
	Fixes []Fix `json:"fixes,omitempty"`
}

// maxNames bounds the domains listed per source.
const maxNames = 10

// overrideForwarded reports whether an override reason list (comma-
// separated) holds one that says the mail was forwarded (RFC 7489
// appendix C: forwarded, trusted_forwarder, mailing_list).
func overrideForwarded(reason string) bool {
	for reason != "" {
		var r string
		r, reason, _ = strings.Cut(reason, ",")
		switch strings.TrimSpace(r) {
		case "forwarded", "mailing_list", "trusted_forwarder":
			return true
		}
	}
	return false
}

// rowClass classifies the messages of one rollup row of a source that is
// known (a catalogue service) or authorized (by the domain's own SPF
// record).
func rowClass(r *store.DMARCRow, known, authorized bool) (Class, bool) {
	// RFC 7489 §3: DMARC passes when an aligned identifier passes.
	pass := r.DKIM == "pass" || r.SPF == "pass"
	switch {
	case overrideForwarded(r.Reason):
		return Forwarded, pass
	case r.DKIMAligned && r.DKIMResult == "pass" && r.SPFResult != "" && r.SPFResult != "pass" && !authorized:
		return Forwarded, pass
	case pass:
		return Compliant, true
	case known || authorized:
		return Misconfigured, false
	}
	return Unknown, false
}

// sourceBuilder gathers the rows of one source.
type sourceBuilder struct {
	src  *Source
	rows []*store.DMARCRollupRow
}

// Classify classifies the sources of domain (the policy domain) from its
// rollup rows over a period, which may be grouped by any columns that
// include source_ip (those Analyzer uses: every column but day and
// reporter). It reads no database and no DNS: facts holds what DNS said.
// Sources are ordered by messages, most first, then by address.
func Classify(domain string, rows []store.DMARCRollupRow, facts Facts, cat *Catalog) []*Source {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	byIP := map[string]*sourceBuilder{}
	var order []*sourceBuilder
	for i := range rows {
		r := &rows[i]
		b := byIP[r.SourceIP]
		if b == nil {
			b = &sourceBuilder{src: &Source{IP: r.SourceIP}}
			byIP[r.SourceIP] = b
			order = append(order, b)
		}
		b.rows = append(b.rows, r)
	}
	fx := newFixer(domain)
	m := newMemo(cat)
	out := make([]*Source, 0, len(order))
	for _, b := range order {
		s := b.src
		// Lists, never null in JSON, even when no row names a domain.
		s.HeaderFrom, s.EnvelopeFrom, s.DKIMDomains = []string{}, []string{}, []string{}
		identify(s, b.rows, facts, m)
		known := s.Service != nil
		for _, r := range b.rows {
			cl, pass := rowClass(&r.DMARCRow, known, s.SPFAuthorized)
			s.Messages += r.Messages
			s.ByClass.add(cl, r.Messages)
			if pass {
				s.Passing += r.Messages
			} else {
				s.Failing.add(cl, r.Messages)
			}
			if cl == Misconfigured {
				s.Fixes = fx.add(s.Fixes, &r.DMARCRow, s, r.Messages)
			}
			s.HeaderFrom = addName(s.HeaderFrom, r.HeaderFrom)
			s.EnvelopeFrom = addName(s.EnvelopeFrom, r.EnvelopeFrom)
			s.DKIMDomains = addName(s.DKIMDomains, r.DKIMDomain)
		}
		s.Class = Compliant
		for _, cl := range Classes {
			if n := s.ByClass.Of(cl); n > s.ByClass.Of(s.Class) || n > 0 && n == s.ByClass.Of(s.Class) && severer(cl, s.Class) {
				s.Class = cl
			}
		}
		slices.Sort(s.HeaderFrom)
		slices.Sort(s.EnvelopeFrom)
		slices.Sort(s.DKIMDomains)
		sortFixes(s.Fixes)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Source) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), strings.Compare(a.IP, b.IP))
	})
	return out
}

func severer(a, b Class) bool { return slices.Index(Classes, a) < slices.Index(Classes, b) }

// addName adds name to the set l (kept small: at most maxNames).
func addName(l []string, name string) []string {
	if name == "" || len(l) >= maxNames || slices.Contains(l, name) {
		return l
	}
	return append(l, name)
}

// identify sets what DNS and the catalogue say about s: its reverse DNS,
// the SPF result of the domain's record, and its service.
func identify(s *Source, rows []*store.DMARCRollupRow, facts Facts, m *memo) {
	if p, ok := facts.PTR[s.IP]; ok {
		s.PTRError = p.Error
		switch {
		case p.Confirmed != "":
			s.PTR, s.PTRConfirmed = p.Confirmed, true
			s.OrgDomain = dnsname.OrgDomain(p.Confirmed)
		case len(p.Names) > 0:
			s.PTR = p.Names[0]
		}
	} else {
		s.PTRError = "unresolved"
	}
	if a, ok := facts.SPF[s.IP]; ok {
		s.SPF = a.Result
		s.SPFAuthorized = a.Result == "pass"
	}
	if m.cat == nil {
		return
	}
	if s.PTRConfirmed {
		if svc := m.cat.ByPTR(s.PTR); svc != nil {
			s.Service, s.ServiceBy = svc, "ptr"
			return
		}
	}
	// Evidence a spoofer cannot forge: a passing signature of the
	// service's own domain, or a passing SPF check of its own envelope
	// domain. The one with the most messages wins.
	var best int64
	for _, r := range rows {
		if r.Messages <= best && s.Service != nil {
			continue
		}
		if r.DKIMResult == "pass" {
			if svc := m.by(m.dkim, m.cat.ByDKIM, r.DKIMDomain); svc != nil {
				s.Service, s.ServiceBy, best = svc, "dkim", r.Messages
				continue
			}
		}
		if r.SPFResult == "pass" {
			if svc := m.by(m.envelope, m.cat.ByEnvelope, r.SPFDomain); svc != nil {
				s.Service, s.ServiceBy, best = svc, "spf", r.Messages
			}
		}
	}
}

// memo remembers the catalogue's answers for the names rows repeat.
type memo struct {
	cat            *Catalog
	dkim, envelope map[string]*Service
}

func newMemo(cat *Catalog) *memo {
	return &memo{cat: cat, dkim: map[string]*Service{}, envelope: map[string]*Service{}}
}

func (m *memo) by(cache map[string]*Service, find func(string) *Service, name string) *Service {
	svc, ok := cache[name]
	if !ok {
		svc = find(name)
		cache[name] = svc
	}
	return svc
}
