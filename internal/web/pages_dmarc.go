package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/dmarcstats"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// The DMARC pages: the messages of the aggregate reports (RFC 7489 §7.2,
// RFC 9990) over a period from the daily rollups (package dmarcstats, as
// `moat reports dmarc summary`), a domain's sources by sending service
// and class (package senders, as `moat reports dmarc senders`), and what
// p=quarantine or p=reject would block (as `moat reports dmarc impact`).
// The pages read rollups and the DNS facts cached in the store; they ask
// DNS nothing (senders.Options.CachedOnly).

// dmarcDays is the default period of the DMARC pages, in days.
const dmarcDays = 30

// dmarcPeriods are the periods the pages offer.
var dmarcPeriods = []string{"7d", "30d", "90d", "365d"}

// dmarcSince reads the period ?since= as the CLI's --since does (30d, 2w,
// or a date) and returns its first day, a UTC midnight: the summary and
// the senders then count the same days. msg is set for a value it
// cannot read (the default is used).
func dmarcSince(r *http.Request, now time.Time) (since time.Time, value, msg string) {
	value = r.URL.Query().Get("since")
	def := day(now).AddDate(0, 0, -dmarcDays)
	if value == "" {
		return def, strconv.Itoa(dmarcDays) + "d", ""
	}
	if t, err := time.Parse(time.DateOnly, value); err == nil {
		return t, value, ""
	}
	units := map[byte]int{'d': 1, 'w': 7}
	if u, ok := units[value[len(value)-1]]; ok {
		if n, err := strconv.Atoi(value[:len(value)-1]); err == nil && n > 0 && n*u <= 3660 {
			return day(now).AddDate(0, 0, -n*u), value, ""
		}
	}
	return def, strconv.Itoa(dmarcDays) + "d", "The period " + strconv.Quote(clip(value, 40)) + " is not one: write 30d, 2w or a date (YYYY-MM-DD). Showing the last 30 days."
}

// dmarcNav is the sub-navigation of the DMARC pages.
type dmarcNav struct {
	Current string // "summary", "reports", "failures", "impact"
	Domain  string // the domain of the page, or ""
	Range   string // the period's query, for the links
}

type dmarcData struct {
	Nav    dmarcNav
	Domain *store.Domain // nil for every domain of the scope
	Base   string        // "/dmarc" or "/domains/x/dmarc"
	Since  string        // the period as asked (30d, a date)
	From   string        // its first day
	// Periods are the offered periods, with Since among them when not.
	Periods []string
	Totals  *dmarcstats.Summary
	Days    []dmarcDay
	Chart   template.URL
	// Every domain: the domains with the most failing messages.
	ByDomain    []dmarcDomainRow
	DomainTotal int
	// One domain: its senders (nil for every domain).
	Senders  *senders.Report
	Services []serviceRow
	Tabs     []classTab
	Class    string // the tab shown; "" for every class
	Sources  []sourceRow
	// SourcesTotal is the number of sources of the tab before the cut to
	// tableRows.
	SourcesTotal int
	AllLink      string
	ImpactLink   string
	Upload       *uploadData
}

// dmarcDay is one day of the DMARC chart.
type dmarcDay struct {
	Day                         time.Time
	Messages, Passing, Failing  int64
	PassText, FailText, MsgText string
}

type dmarcDomainRow struct {
	dmarcstats.Row
	Link, Rate string
}

type serviceRow struct {
	senders.ServiceSummary
	Rate string
}

// classTab is one tab of the sources table.
type classTab struct {
	Class   string // "" for every class
	Label   string
	Sources int
	Link    string
	Current bool
}

// sourceRow is one source of a domain with its rates written out.
type sourceRow struct {
	*senders.Source
	Service                   string // the service's name, or "unknown"
	DMARCRate, DKIMRate, SPFR string
	SPFText                   string // what the domain's SPF record says of it
	Fixes                     []string
}

// analyzer returns a senders.Analyzer over the tenant's rollups and the
// store's cache of DNS facts (public answers, shared by every
// organization), asking DNS nothing.
func (pg *pages) analyzer(p *auth.Principal) (*senders.Analyzer, error) {
	cat, err := pg.catalog()
	if err != nil {
		return nil, err
	}
	cache, ok := pg.deps.Store.(store.SenderCache)
	if !ok {
		cache = noSenderCache{}
	}
	return senders.NewAnalyzer(p.Tenant, cache, nil, cat, senders.Options{CachedOnly: true, SPF: senders.SPFOptions{Now: pg.deps.Now}}), nil
}

// catalog is the built-in catalogue of sending services, parsed once.
func (pg *pages) catalog() (*senders.Catalog, error) {
	pg.catOnce.Do(func() { pg.cat, pg.catErr = senders.Builtin() })
	return pg.cat, pg.catErr
}

// dmarcCatalog holds the parsed catalogue of a pages.
type dmarcCatalog struct {
	catOnce sync.Once
	cat     *senders.Catalog
	catErr  error
}

func (pg *pages) dmarc(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	data := &dmarcData{Base: "/dmarc"}
	name := ""
	if r.PathValue("name") != "" {
		d, ok := pg.domain(w, r, p)
		if !ok {
			return
		}
		data.Domain, name = d, d.Name
		data.Base = "/domains/" + d.Name + "/dmarc"
	}
	now := pg.now()
	since, value, msg := dmarcSince(r, now)
	data.Since, data.From = value, since.Format(time.DateOnly)
	data.Periods = dmarcPeriods
	if !slices.Contains(data.Periods, value) {
		data.Periods = append(slices.Clone(dmarcPeriods), value)
	}
	rng := url.Values{"since": {value}}.Encode()
	data.Nav = dmarcNav{Current: "summary", Domain: name, Range: rng}
	all := r.URL.Query().Get("all") == "1"
	q := dmarcstats.Query{Domain: name, Since: since, Now: now, By: "day"}
	// The sums by day and by domain (or the senders) are separate scans
	// of the rollups: run side by side.
	var (
		byDomain  *dmarcstats.Summary
		domainErr error
		sendersCh = make(chan error, 1)
		wg        sync.WaitGroup
	)
	if name == "" {
		wg.Go(func() {
			byDomain, domainErr = dmarcstats.Summarize(ctx, p.Tenant, dmarcstats.Query{Since: since, Now: now, By: "domain"})
		})
	} else {
		go func() {
			sendersCh <- pg.dmarcSenders(ctx, p, data, name, since, now, r.URL.Query().Get("class"), all)
		}()
	}
	byDay, err := dmarcstats.Summarize(ctx, p.Tenant, q)
	wg.Wait()
	if name != "" {
		err = errors.Join(err, <-sendersCh)
	}
	if err = errors.Join(err, domainErr); err != nil {
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	}
	data.Totals = byDay
	data.Days = dmarcFillDays(since, day(now).AddDate(0, 0, 1), byDay.Rows)
	if data.Chart, err = dmarcChart(data.Days); err != nil {
		pg.s.log.Error("dashboard: chart", "err", err)
	}
	if name == "" {
		rows := byDomain.Rows
		data.DomainTotal = len(rows)
		if !all && len(rows) > tableRows {
			rows = rows[:tableRows]
		}
		for _, row := range rows {
			data.ByDomain = append(data.ByDomain, dmarcDomainRow{Row: row, Rate: percent(row.PassRate()),
				Link: "/domains/" + url.PathEscape(row.Key) + "/dmarc?" + rng})
		}
		data.AllLink = data.Base + "?" + rng + "&all=1"
		data.Upload = pg.uploadForm(p, "")
		pg.render(w, r, p, http.StatusOK, "dmarc", "dmarc", "DMARC", data, msg)
		return
	}
	data.ImpactLink = data.Base + "/impact?" + rng + "&policy=reject&pct=100"
	data.Upload = pg.uploadForm(p, data.Base+"?"+rng)
	pg.render(w, r, p, http.StatusOK, "dmarc", "dmarc", "DMARC of "+name, data, msg)
}

// dmarcSenders fills the senders of one domain: services, class tabs and
// the sources of the tab class.
func (pg *pages) dmarcSenders(ctx context.Context, p *auth.Principal, data *dmarcData, name string, since, now time.Time, class string, all bool) error {
	a, err := pg.analyzer(p)
	if err != nil {
		return err
	}
	// The DKIM and SPF passes per source come from the summary by source,
	// of the same rollups and days: a scan of its own, side by side.
	var (
		bySource  *dmarcstats.Summary
		sourceErr error
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		bySource, sourceErr = dmarcstats.Summarize(ctx, p.Tenant, dmarcstats.Query{Domain: name, Since: since, Now: now, By: "source"})
	})
	rep, err := a.Senders(ctx, senders.Query{Domain: name, Since: since})
	wg.Wait()
	if err = errors.Join(err, sourceErr); err != nil {
		return err
	}
	data.Senders = rep
	for _, sv := range rep.Services {
		data.Services = append(data.Services, serviceRow{ServiceSummary: sv, Rate: rate(sv.Passing, sv.Messages)})
	}
	counts := make(map[string]dmarcstats.Row, len(bySource.Rows))
	for _, row := range bySource.Rows {
		counts[row.Key] = row
	}
	known := false
	for _, cl := range senders.Classes {
		known = known || string(cl) == class
	}
	if !known {
		class = ""
	}
	data.Class = class
	rng := url.Values{"since": {data.Since}}.Encode()
	data.Tabs = append(data.Tabs, classTab{Label: "All", Sources: len(rep.Sources), Link: data.Base + "?" + rng + "#sources", Current: class == ""})
	for _, cl := range []senders.Class{senders.Compliant, senders.Forwarded, senders.Misconfigured, senders.Unknown} {
		data.Tabs = append(data.Tabs, classTab{Class: string(cl), Label: strings.ToUpper(string(cl[:1])) + string(cl[1:]),
			Sources: rep.SourcesByClass[cl], Link: data.Base + "?" + rng + "&class=" + string(cl) + "#sources", Current: class == string(cl)})
	}
	var shown []*senders.Source
	for _, s := range rep.Sources {
		if class == "" || string(s.Class) == class {
			shown = append(shown, s)
		}
	}
	data.SourcesTotal = len(shown)
	if !all && len(shown) > tableRows {
		shown = shown[:tableRows]
	}
	for _, s := range shown {
		row := sourceRow{Source: s, Service: "unknown", DMARCRate: rate(s.Passing, s.Messages)}
		if s.Service != nil {
			row.Service = s.Service.Name
		}
		c := counts[s.IP]
		row.DKIMRate, row.SPFR = rate(c.DKIMPass, c.Messages), rate(c.SPFPass, c.Messages)
		switch {
		case s.SPFAuthorized:
			row.SPFText = "yes (pass)"
		case s.SPF == "":
			row.SPFText = "not evaluated yet"
		default:
			row.SPFText = "no (" + s.SPF + ")"
		}
		for _, f := range s.Fixes {
			row.Fixes = append(row.Fixes, f.Text)
		}
		data.Sources = append(data.Sources, row)
	}
	q := url.Values{"since": {data.Since}}
	if class != "" {
		q.Set("class", class)
	}
	data.AllLink = data.Base + "?" + q.Encode() + "&all=1#sources"
	return nil
}

// rate writes part of whole as a percentage, "—" of nothing.
func rate(part, whole int64) string {
	if whole == 0 {
		return "—"
	}
	return percent(float64(part) / float64(whole))
}

// dmarcFillDays makes one point per day of [since, until), zero where no
// report counted messages.
func dmarcFillDays(since, until time.Time, rows []dmarcstats.Row) []dmarcDay {
	var out []dmarcDay
	idx := map[string]int{}
	for d := since; d.Before(until); d = d.AddDate(0, 0, 1) {
		idx[d.Format(time.DateOnly)] = len(out)
		out = append(out, dmarcDay{Day: d})
	}
	for _, row := range rows {
		if i, ok := idx[row.Key]; ok {
			out[i].Messages += row.Messages
			out[i].Passing += row.DMARCPass
			out[i].Failing += row.DMARCFail
		}
	}
	for i := range out {
		out[i].MsgText, out[i].PassText, out[i].FailText = formatInt(out[i].Messages), formatInt(out[i].Passing), formatInt(out[i].Failing)
	}
	return out
}

// noSenderCache is an empty cache of DNS facts: every source is shown as
// not looked up yet.
type noSenderCache struct{}

func (noSenderCache) PTRs(context.Context, []string) (map[string]store.PTRRecord, error) {
	return map[string]store.PTRRecord{}, nil
}
func (noSenderCache) PutPTRs(context.Context, []store.PTRRecord) error { return nil }
func (noSenderCache) SPFAuths(context.Context, string, time.Time, []string) (map[string]store.SPFAuth, error) {
	return map[string]store.SPFAuth{}, nil
}
func (noSenderCache) PutSPFAuths(context.Context, []store.SPFAuth) error         { return nil }
func (noSenderCache) PruneSenderCache(context.Context, time.Time) (int64, error) { return 0, nil }
