package web

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/go-analyze/charts"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/senders"
)

type impactData struct {
	Nav     dmarcNav
	Domain  string
	Base    string // the impact page
	Since   string
	From    string
	Periods []string
	Policy  string
	Pct     int
	Testing bool
	Impact  *senders.Impact
	// Sources are the failing sources, cut to tableRows unless all.
	Sources      []impactSourceRow
	SourcesTotal int
	AllLink      string
	// Legitimate are the failing messages of misconfigured sources: the
	// ones the fixes make pass.
	Legitimate int64
	Unknown    int64
}

type impactSourceRow struct {
	senders.ImpactSource
	Failing string
}

// dmarcImpact shows what p=quarantine or p=reject (with pct, or t=y)
// would have done to a domain's mail over the period: senders.Impact, as
// `moat reports dmarc impact` prints it.
func (pg *pages) dmarcImpact(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	now := pg.now()
	since, value, msg := dmarcSince(r, now)
	v := r.URL.Query()
	data := &impactData{Domain: d.Name, Base: "/domains/" + d.Name + "/dmarc/impact", Since: value, From: since.Format("2006-01-02"),
		Policy: "reject", Pct: 100, Testing: v.Get("testing") == "1"}
	data.Periods = dmarcPeriods
	if !slices.Contains(data.Periods, value) {
		data.Periods = append(slices.Clone(dmarcPeriods), value)
	}
	data.Nav = dmarcNav{Current: "impact", Domain: d.Name, Range: url.Values{"since": {value}}.Encode()}
	if pol := v.Get("policy"); pol != "" {
		if pol != "reject" && pol != "quarantine" {
			msg = "The policy " + strconv.Quote(clip(pol, 40)) + " is not one: choose quarantine or reject. Showing reject."
		} else {
			data.Policy = pol
		}
	}
	if s := v.Get("pct"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 0 || n > 100:
			msg = "pct must be a whole number from 1 to 100. Showing 100."
		case n == 0:
			// RFC 9989 removed pct; its pct=0 became t=y.
			msg = "pct=0 would apply the policy to no message; RFC 9989 replaced it with t=y (testing). Showing 100."
		default:
			data.Pct = n
		}
	}
	a, err := pg.analyzer(p)
	if err != nil {
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	}
	im, err := a.Impact(r.Context(), senders.Query{Domain: d.Name, Since: since}, senders.Policy{P: data.Policy, Pct: data.Pct, Testing: data.Testing})
	if errors.Is(err, senders.ErrPolicy) {
		pg.fail(w, r, p, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if err != nil {
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	}
	data.Impact = im
	for _, g := range im.Groups {
		switch g.Class {
		case senders.Misconfigured:
			data.Legitimate += g.Failing
		case senders.Unknown:
			data.Unknown += g.Failing
		}
	}
	rows := im.Sources
	data.SourcesTotal = len(rows)
	if r.URL.Query().Get("all") != "1" && len(rows) > tableRows {
		rows = rows[:tableRows]
	}
	for _, s := range rows {
		data.Sources = append(data.Sources, impactSourceRow{ImpactSource: s, Failing: formatInt(s.Failing.Total())})
	}
	q := url.Values{"since": {value}, "policy": {data.Policy}, "pct": {strconv.Itoa(data.Pct)}}
	if data.Testing {
		q.Set("testing", "1")
	}
	data.AllLink = data.Base + "?" + q.Encode() + "&all=1#impact-sources"
	pg.render(w, r, p, http.StatusOK, "dmarc_impact", "dmarc", "Impact of p="+data.Policy+" on "+d.Name, data, msg)
}

// dmarcChart draws the messages passing and failing DMARC per day.
func dmarcChart(days []dmarcDay) (template.URL, error) {
	if len(days) == 0 {
		return "", nil
	}
	labels := make([]string, len(days))
	pass := make([]float64, len(days))
	fail := make([]float64, len(days))
	for i, d := range days {
		labels[i] = d.Day.Format("01-02")
		pass[i], fail[i] = float64(d.Passing), float64(d.Failing)
	}
	opt := charts.ChartOption{
		OutputFormat: charts.ChartOutputSVG,
		Width:        900,
		Height:       340,
		XAxis:        charts.XAxisOption{Labels: labels},
		YAxis:        []charts.YAxisOption{{Title: "messages", Min: charts.Ptr(0.0)}},
		Legend:       charts.LegendOption{SeriesNames: []string{"Passing DMARC", "Failing DMARC"}},
		SeriesList: charts.GenericSeriesList{
			{Type: charts.ChartTypeLine, Values: pass, Name: "Passing DMARC"},
			{Type: charts.ChartTypeLine, Values: fail, Name: "Failing DMARC"},
		},
		Symbol: charts.Symbol{Shape: charts.SymbolCircle},
	}
	return renderChart(opt)
}
