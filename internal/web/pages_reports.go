package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// reportsDays is the default period of the reports pages.
const reportsDays = 30

// tableRows is how many rows the tables of sources, MXs and domains show
// unless all are asked for (?all=1): the ones with the most failures.
// Over a year an MSP's organization has thousands of each, a page of
// megabytes nobody reads whole; the API gives every row.
const tableRows = 100

type reportsData struct {
	Domain       *store.Domain // nil for every domain of the scope
	Base         string        // "/reports" or "/domains/x/reports"
	Since, Until string        // the form's values (until inclusive)
	Range        string        // the query of the period, for links
	AllLink      string        // this page with every row
	// The number of rows of each table before the cut to tableRows.
	SourcesTotal, MXTotal, DomainsTotal int64
	Totals                              *tlsrptstats.Summary
	ByResult                            []resultRow
	BySource                            []statRow
	ByMX                                []statRow
	ByDomain                            []statRow
	Days                                []dailyPoint
	Chart                               template.URL
	Events                              []chartEvent
	Reports                             []*store.TLSRPTReport
	Drill                               *drillDown
}

type resultRow struct {
	tlsrptstats.Row
	Link string // the drill-down, for failure types
}

// statRow is a row of a breakdown with its numbers written out: over a
// year the tables of sources and domains hold thousands of rows, and
// formatting in Go costs a fraction of a template function call per cell.
type statRow struct {
	tlsrptstats.Row
	SuccessfulText, FailedText string // formatInt
	RateText                   string // the failure rate, as the percent function writes it
	FailuresText               string // the failures by type: "type n; " each
	Link                       string // the row's own page, where it has one
}

// statRows writes out rows.
func statRows(rows []tlsrptstats.Row) []statRow {
	out := make([]statRow, len(rows))
	var b strings.Builder
	for i, r := range rows {
		b.Reset()
		for _, f := range r.Failures {
			b.WriteString(f.ResultType)
			b.WriteString(" ")
			b.WriteString(formatInt(f.Sessions))
			b.WriteString("; ")
		}
		out[i] = statRow{Row: r, SuccessfulText: formatInt(r.Successful), FailedText: formatInt(r.Failed),
			RateText: percent(r.FailureRate), FailuresText: b.String()}
	}
	return out
}

// drillDown is one failure type of the period: where it happened, from
// whom, and why.
type drillDown struct {
	Result  string
	Total   int64
	MX      []countRow
	Sources []countRow
	Reasons []reasonRow
	Sampled int // reports read for the reasons
}

type countRow struct {
	Key, Sub string
	Sessions int64
}

type reasonRow struct {
	Code, Info, MX, IP string
	Sessions           int64
	ReportID           int64
}

func (pg *pages) reports(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	data := &reportsData{Base: "/reports"}
	name := ""
	if r.PathValue("name") != "" {
		d, ok := pg.domain(w, r, p)
		if !ok {
			return
		}
		data.Domain, name = d, d.Name
		data.Base = "/domains/" + d.Name + "/reports"
	}
	since, until, msg := dateRange(r, pg.now(), reportsDays)
	data.Since, data.Until = since.Format(time.DateOnly), until.AddDate(0, 0, -1).Format(time.DateOnly)
	data.Range = url.Values{"since": {data.Since}, "until": {data.Until}}.Encode()
	all := r.URL.Query().Get("all") == "1" // every row of the tables, not tableRows
	data.AllLink = data.Base + "?" + data.Range + "&all=1"
	bys := []string{tlsrptstats.ByResult, tlsrptstats.BySource, tlsrptstats.ByMX, tlsrptstats.ByDay}
	if name == "" {
		bys = append(bys, tlsrptstats.ByDomain)
	}
	l, err := tlsrptstats.SummarizeBy(ctx, p.Tenant, tlsrptstats.Query{Domain: name, Since: since, Until: until}, bys...)
	if err != nil {
		pg.storeFail(w, r, p, "reports", err)
		return
	}
	sums := map[string]*tlsrptstats.Summary{}
	for i, by := range bys {
		sums[by] = l[i]
	}
	byResult, byDay := sums[tlsrptstats.ByResult], sums[tlsrptstats.ByDay]
	data.Totals = byResult
	for _, row := range byResult.Rows {
		rr := resultRow{Row: row}
		if row.ResultType != "success" {
			rr.Link = data.Base + "?" + data.Range + "&result=" + url.QueryEscape(row.ResultType) + "#drill"
		}
		data.ByResult = append(data.ByResult, rr)
	}
	cut := func(rows []tlsrptstats.Row) ([]statRow, int64) {
		n := len(rows)
		if !all && n > tableRows {
			rows = rows[:tableRows]
		}
		return statRows(rows), int64(n)
	}
	data.BySource, data.SourcesTotal = cut(sums[tlsrptstats.BySource].Rows)
	data.ByMX, data.MXTotal = cut(sums[tlsrptstats.ByMX].Rows)
	if s := sums[tlsrptstats.ByDomain]; s != nil {
		data.ByDomain, data.DomainsTotal = cut(s.Rows)
		for i := range data.ByDomain {
			// Built here: in a template, the query would be escaped as
			// one value ("since%3d...").
			data.ByDomain[i].Link = "/domains/" + url.PathEscape(data.ByDomain[i].Domain) + "/reports?" + data.Range
		}
	}
	if name != "" {
		events, err := pg.events(r, p, name, since, until)
		if err != nil {
			pg.storeFail(w, r, p, "domain "+name, err)
			return
		}
		data.Events = events
	}
	data.Days = fillDays(since, until, byDay.Rows, data.Events)
	chart, err := sessionsChart(data.Days)
	if err != nil {
		pg.s.log.Error("dashboard: chart", "err", err)
	}
	data.Chart = chart
	reports, err := p.Tenant.TLSRPTReports(ctx, store.ReportFilter{Domain: name, Since: since, Until: until, Limit: 25})
	if err != nil {
		pg.storeFail(w, r, p, "reports", err)
		return
	}
	data.Reports = reports
	if res := r.URL.Query().Get("result"); res != "" && res != "success" {
		if data.Drill, err = pg.drill(r, p, name, clip(res, 64), since, until); err != nil {
			pg.storeFail(w, r, p, "reports", err)
			return
		}
	}
	title := "TLS reports"
	if name != "" {
		title = "TLS reports of " + name
	}
	pg.render(w, r, p, http.StatusOK, "reports", "reports", title, data, msg)
}

// events returns the policy versions and certificate events of a domain
// in [since, until), oldest first.
func (pg *pages) events(r *http.Request, p *auth.Principal, name string, since, until time.Time) ([]chartEvent, error) {
	ctx := r.Context()
	var out []chartEvent
	vs, err := p.Tenant.PolicyVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if !v.CreatedAt.Before(since) && v.CreatedAt.Before(until) {
			out = append(out, chartEvent{At: v.CreatedAt, Kind: "policy",
				Detail: "version " + itoa(v.Version) + ", id " + v.PolicyID + ", mode " + v.Mode + ", mx " + strings.Join(v.MX, " ")})
		}
	}
	des, err := p.Tenant.DomainEvents(ctx, name, since, until)
	if err != nil {
		return nil, err
	}
	for _, e := range des {
		out = append(out, chartEvent{At: e.At, Kind: e.Kind, Detail: e.Detail})
	}
	slices.SortStableFunc(out, func(a, b chartEvent) int { return a.At.Compare(b.At) })
	return out, nil
}

// fillDays makes one point per day of [since, until), zero where no
// report counted sessions, with the events of each day.
func fillDays(since, until time.Time, rows []tlsrptstats.Row, events []chartEvent) []dailyPoint {
	var out []dailyPoint
	idx := map[time.Time]int{}
	for d := since; d.Before(until); d = d.AddDate(0, 0, 1) {
		idx[d] = len(out)
		out = append(out, dailyPoint{Day: d})
	}
	for _, row := range rows {
		if i, ok := idx[day(row.Day)]; ok {
			out[i].Successful += row.Successful
			out[i].Failed += row.Failed
		}
	}
	for _, e := range events {
		if i, ok := idx[day(e.At)]; ok {
			out[i].Events = append(out[i].Events, e)
		}
	}
	return out
}

// drillSample is how many of the newest reports with failures are read
// for the reasons of a failure type: the rollups do not keep reason
// codes.
const drillSample = 10

// drill breaks one failure type down by receiving MX and sending source
// (from the rollups) and lists the reasons the newest reports give.
func (pg *pages) drill(r *http.Request, p *auth.Principal, domain, result string, since, until time.Time) (*drillDown, error) {
	ctx := r.Context()
	dd := &drillDown{Result: result}
	// By MX and by source apart: over all domains, each is one of the
	// smaller rollups (the store has none with both).
	byMX, err := p.Tenant.TLSRPTRollups(ctx, store.RollupQuery{Domain: domain, Since: since, Until: until,
		GroupBy: []string{"result_type", "receiving_mx"}})
	if err != nil {
		return nil, err
	}
	bySource, err := p.Tenant.TLSRPTRollups(ctx, store.RollupQuery{Domain: domain, Since: since, Until: until,
		GroupBy: []string{"result_type", "organization", "sending_ip"}})
	if err != nil {
		return nil, err
	}
	for _, row := range byMX {
		if row.ResultType == result {
			dd.Total += row.Sessions
			dd.MX = append(dd.MX, countRow{Key: row.ReceivingMX, Sessions: row.Sessions})
		}
	}
	for _, row := range bySource {
		if row.ResultType == result {
			dd.Sources = append(dd.Sources, countRow{Key: row.Organization, Sub: row.SendingIP, Sessions: row.Sessions})
		}
	}
	byCount := func(a, b countRow) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.Key, b.Key), strings.Compare(a.Sub, b.Sub))
	}
	slices.SortFunc(dd.MX, byCount)
	slices.SortFunc(dd.Sources, byCount)
	if dd.Total == 0 {
		return dd, nil
	}
	list, err := p.Tenant.TLSRPTReports(ctx, store.ReportFilter{Domain: domain, Since: since, Until: until, Limit: 200})
	if err != nil {
		return nil, err
	}
	for _, rep := range list {
		if rep.Failed == 0 {
			continue
		}
		if dd.Sampled == drillSample {
			break
		}
		full, err := p.Tenant.TLSRPTReportByID(ctx, rep.ID)
		if err != nil {
			return nil, err
		}
		dd.Sampled++
		for _, pol := range full.Policies {
			if domain != "" && pol.Domain != domain {
				continue
			}
			for _, f := range pol.Failures {
				if f.ResultType == result {
					dd.Reasons = append(dd.Reasons, reasonRow{Code: f.ReasonCode, Info: f.AdditionalInfo, MX: f.ReceivingMX,
						IP: f.SendingMTAIP, Sessions: f.Sessions, ReportID: rep.ID})
				}
			}
		}
	}
	return dd, nil
}

type reportData struct {
	Report *store.TLSRPTReport
	Raw    string // pretty-printed when it is JSON
	Cut    bool   // Raw is shortened
}

// maxRawShown bounds the raw report shown on the page.
const maxRawShown = 1 << 20

func (pg *pages) reportPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such report")
	if !ok {
		return
	}
	rep, err := p.Tenant.TLSRPTReportByID(r.Context(), id)
	if err != nil {
		pg.storeFail(w, r, p, "such report", err)
		return
	}
	data := &reportData{Report: rep}
	raw := rep.Raw
	var buf bytes.Buffer
	if json.Valid(raw) && json.Indent(&buf, raw, "", "  ") == nil {
		raw = buf.Bytes()
	}
	if len(raw) > maxRawShown {
		raw, data.Cut = raw[:maxRawShown], true
	}
	if utf8.Valid(raw) {
		data.Raw = string(raw)
	} else {
		data.Raw = strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	pg.render(w, r, p, http.StatusOK, "report", "reports", "Report "+itoa(rep.ID), data)
}
