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

type reportsData struct {
	Domain       *store.Domain // nil for every domain of the scope
	Base         string        // "/reports" or "/domains/x/reports"
	Since, Until string        // the form's values (until inclusive)
	Range        string        // the query of the period, for links
	Totals       *tlsrptstats.Summary
	ByResult     []resultRow
	BySource     []tlsrptstats.Row
	ByMX         []tlsrptstats.Row
	ByDomain     []tlsrptstats.Row
	Days         []dailyPoint
	Chart        template.URL
	Events       []chartEvent
	Reports      []*store.TLSRPTReport
	Drill        *drillDown
}

type resultRow struct {
	tlsrptstats.Row
	Link string // the drill-down, for failure types
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
	bys := []string{tlsrptstats.ByResult, tlsrptstats.BySource, tlsrptstats.ByMX, tlsrptstats.ByDay}
	if name == "" {
		bys = append(bys, tlsrptstats.ByDomain)
	}
	sums := map[string]*tlsrptstats.Summary{}
	for _, by := range bys {
		s, err := tlsrptstats.Summarize(ctx, p.Tenant, tlsrptstats.Query{Domain: name, Since: since, Until: until, By: by})
		if err != nil {
			pg.storeFail(w, r, p, "reports", err)
			return
		}
		sums[by] = s
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
	data.BySource, data.ByMX = sums[tlsrptstats.BySource].Rows, sums[tlsrptstats.ByMX].Rows
	if s := sums[tlsrptstats.ByDomain]; s != nil {
		data.ByDomain = s.Rows
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
	rows, err := p.Tenant.TLSRPTRollups(ctx, store.RollupQuery{Domain: domain, Since: since, Until: until,
		GroupBy: []string{"result_type", "receiving_mx", "organization", "sending_ip"}})
	if err != nil {
		return nil, err
	}
	mx, src := map[string]int64{}, map[[2]string]int64{}
	for _, row := range rows {
		if row.ResultType != result {
			continue
		}
		dd.Total += row.Sessions
		mx[row.ReceivingMX] += row.Sessions
		src[[2]string{row.Organization, row.SendingIP}] += row.Sessions
	}
	for k, n := range mx {
		dd.MX = append(dd.MX, countRow{Key: k, Sessions: n})
	}
	for k, n := range src {
		dd.Sources = append(dd.Sources, countRow{Key: k[0], Sub: k[1], Sessions: n})
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
