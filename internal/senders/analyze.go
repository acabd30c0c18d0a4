package senders

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Reader is the DMARC data an Analyzer reads: store.Store for the
// operator, or a store.Tenant.
type Reader interface {
	DMARCRollups(ctx context.Context, q store.DMARCRollupQuery) ([]store.DMARCRollupRow, error)
	DMARCReports(ctx context.Context, f store.DMARCFilter) ([]*store.DMARCReport, error)
}

// Options tunes an Analyzer. The zero value means the defaults.
type Options struct {
	RDNS RDNSOptions
	SPF  SPFOptions
	// CachedOnly makes the Analyzer use only what the cache holds,
	// asking DNS nothing: for request paths, while the lookups run
	// elsewhere (the CLI, a background task).
	CachedOnly bool
}

// Analyzer answers who sends as a domain and what enforcement would do,
// from the rollups, reverse DNS, the domain's SPF record and the
// catalogue. It is safe for concurrent use.
type Analyzer struct {
	rd   Reader
	cat  *Catalog
	rdns *ReverseDNS
	spf  *SPFChecker
	o    Options
}

// NewAnalyzer returns an Analyzer reading rd, caching DNS facts in cache
// and asking r.
func NewAnalyzer(rd Reader, cache store.SenderCache, r Resolver, cat *Catalog, o Options) *Analyzer {
	return &Analyzer{rd: rd, cat: cat, rdns: NewReverseDNS(r, cache, o.RDNS), spf: NewSPFChecker(r, cache, o.SPF), o: o}
}

// Query selects a domain's rollups: days with Since <= day < Until (zero:
// no bound).
type Query struct {
	Domain string
	Since  time.Time
	Until  time.Time
}

// Report is who sent as a domain over a period.
type Report struct {
	Domain string    `json:"domain"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	// Published is the policy of the latest report about the domain; nil
	// when there is none.
	Published *Published `json:"published,omitempty"`
	Messages  int64      `json:"messages"`
	Passing   int64      `json:"dmarc_pass"`
	// ByClass counts messages by class; Sources counts sources by their
	// class.
	ByClass        Counts           `json:"by_class"`
	SourcesByClass map[Class]int    `json:"sources_by_class"`
	Services       []ServiceSummary `json:"services"`
	Sources        []*Source        `json:"sources"`
	// Fixes are those of the misconfigured sources, merged.
	Fixes []Fix `json:"fixes"`
}

// Published is a DMARC policy as a report states it.
type Published struct {
	P        string    `json:"p"`
	SP       string    `json:"sp,omitempty"`
	Pct      int       `json:"pct"` // -1 when absent
	Testing  string    `json:"testing,omitempty"`
	Reporter string    `json:"reporter"`
	End      time.Time `json:"end"`
}

// ServiceSummary is one service's (or, with ID "", the unrecognized
// sources') share of the mail.
type ServiceSummary struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name"`
	Sources  int    `json:"sources"`
	Messages int64  `json:"messages"`
	Passing  int64  `json:"dmarc_pass"`
	ByClass  Counts `json:"by_class"`
}

// classifyGroupBy is every rollup column but day and reporter.
var classifyGroupBy = []string{"source_ip", "header_from", "envelope_from", "disposition", "dkim", "spf", "reason",
	"dkim_domain", "dkim_selector", "dkim_result", "dkim_aligned", "spf_domain", "spf_result", "spf_aligned"}

// facts looks up (or, CachedOnly, reads from the cache) the reverse DNS
// and SPF results of the sources of rows.
func (a *Analyzer) facts(ctx context.Context, domain string, rows []store.DMARCRollupRow) (Facts, error) {
	seen := map[string]bool{}
	var ips []string
	for i := range rows {
		if ip := rows[i].SourceIP; !seen[ip] {
			seen[ip] = true
			ips = append(ips, ip)
		}
	}
	ptr, err := a.rdns.Resolve(ctx, ips, !a.o.CachedOnly)
	if err != nil {
		return Facts{}, fmt.Errorf("senders: reverse DNS of the sources of %s: %w", domain, err)
	}
	auth, err := a.spf.Check(ctx, domain, ips, !a.o.CachedOnly)
	if err != nil {
		return Facts{}, fmt.Errorf("senders: SPF of %s for its sources: %w", domain, err)
	}
	return Facts{PTR: ptr, SPF: auth}, nil
}

func normQuery(q Query) Query {
	q.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(q.Domain)), ".")
	return q
}

// Senders classifies the sources of q.Domain over the period.
func (a *Analyzer) Senders(ctx context.Context, q Query) (*Report, error) {
	q = normQuery(q)
	if q.Domain == "" {
		return nil, errNoDomain
	}
	rows, err := a.rd.DMARCRollups(ctx, store.DMARCRollupQuery{Domain: q.Domain, Since: q.Since, Until: q.Until, GroupBy: classifyGroupBy})
	if err != nil {
		return nil, err
	}
	facts, err := a.facts(ctx, q.Domain, rows)
	if err != nil {
		return nil, err
	}
	rep := summarize(q, Classify(q.Domain, rows, facts, a.cat))
	if rep.Published, err = a.published(ctx, q.Domain); err != nil {
		return nil, err
	}
	return rep, nil
}

// summarize adds up sources into a report.
func summarize(q Query, sources []*Source) *Report {
	rep := &Report{Domain: q.Domain, Since: q.Since, Until: q.Until, Sources: sources, SourcesByClass: map[Class]int{},
		Services: []ServiceSummary{}}
	if rep.Sources == nil {
		rep.Sources = []*Source{}
	}
	svcs := map[string]*ServiceSummary{}
	for _, s := range sources {
		rep.Messages += s.Messages
		rep.Passing += s.Passing
		for _, cl := range Classes {
			rep.ByClass.add(cl, s.ByClass.Of(cl))
		}
		rep.SourcesByClass[s.Class]++
		id, name := "", "unrecognized"
		if s.Service != nil {
			id, name = s.Service.ID, s.Service.Name
		}
		sv := svcs[id]
		if sv == nil {
			sv = &ServiceSummary{ID: id, Name: name}
			svcs[id] = sv
		}
		sv.Sources++
		sv.Messages += s.Messages
		sv.Passing += s.Passing
		for _, cl := range Classes {
			sv.ByClass.add(cl, s.ByClass.Of(cl))
		}
	}
	for _, sv := range svcs {
		rep.Services = append(rep.Services, *sv)
	}
	slices.SortFunc(rep.Services, func(a, b ServiceSummary) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), strings.Compare(a.ID, b.ID))
	})
	rep.Fixes = mergeFixes(sources, func(*Source) bool { return true })
	if rep.Fixes == nil {
		rep.Fixes = []Fix{}
	}
	return rep
}

// published returns the policy of the latest report about domain.
func (a *Analyzer) published(ctx context.Context, domain string) (*Published, error) {
	l, err := a.rd.DMARCReports(ctx, store.DMARCFilter{Domain: domain, Limit: 10})
	if err != nil {
		return nil, err
	}
	for _, r := range l {
		if r.P != "" && r.ConflictOf == 0 {
			return &Published{P: r.P, SP: r.SP, Pct: r.Pct, Testing: r.Testing, Reporter: r.OrgName, End: r.EndTime}, nil
		}
	}
	return nil, nil
}

// Impact computes what pol would do to q.Domain's mail over the period.
func (a *Analyzer) Impact(ctx context.Context, q Query, pol Policy) (*Impact, error) {
	rep, err := a.Senders(ctx, q)
	if err != nil {
		return nil, err
	}
	im, err := ComputeImpact(rep.Domain, rep.Sources, pol)
	if err != nil {
		return nil, err
	}
	im.Since, im.Until = rep.Since, rep.Until
	return im, nil
}

// NewSources returns the sources of q.Domain first seen (in the rollups
// of all time before q.Until) on or after q.Since, classified over
// [q.Since, q.Until), with FirstSeen set; the earliest first.
func (a *Analyzer) NewSources(ctx context.Context, q Query) ([]*Source, error) {
	q = normQuery(q)
	if q.Domain == "" {
		return nil, errNoDomain
	}
	days, err := a.rd.DMARCRollups(ctx, store.DMARCRollupQuery{Domain: q.Domain, Until: q.Until, GroupBy: []string{"source_ip", "day"}})
	if err != nil {
		return nil, err
	}
	first := map[string]time.Time{}
	for _, r := range days {
		if f, ok := first[r.SourceIP]; !ok || r.Day.Before(f) {
			first[r.SourceIP] = r.Day
		}
	}
	rep, err := a.Senders(ctx, q)
	if err != nil {
		return nil, err
	}
	out := []*Source{}
	for _, s := range rep.Sources {
		f := first[s.IP]
		if !f.Before(q.Since) {
			s.FirstSeen = f
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b *Source) int { return a.FirstSeen.Compare(b.FirstSeen) })
	return out, nil
}

var errNoDomain = errors.New("senders: no domain given")
