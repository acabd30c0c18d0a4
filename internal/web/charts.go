package web

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"time"

	"github.com/go-analyze/charts"
)

// Charts are SVG drawn by go-analyze/charts and shown as images
// (data: URLs): the SVG carries inline style attributes, which the page's
// Content-Security-Policy would refuse inline but which an image may
// have, as it runs nothing. Every chart has its numbers in a table beside
// it, for screen readers and for copying.

// chartEvent is something marked on a daily chart: a policy version or a
// certificate event.
type chartEvent struct {
	At     time.Time
	Kind   string // "policy" or "certificate"
	Detail string
}

// dailyPoint is one day of a sessions chart.
type dailyPoint struct {
	Day        time.Time
	Successful int64
	Failed     int64
	Events     []chartEvent
}

// sessionsChart draws the successful and failed sessions per day
// (failures on a second axis, as they are usually far fewer), with the
// days of policy changes and certificate events marked by bars of their
// own series, which the legend names.
func sessionsChart(days []dailyPoint) (template.URL, error) {
	if len(days) == 0 {
		return "", nil
	}
	labels := make([]string, len(days))
	ok := make([]float64, len(days))
	failed := make([]float64, len(days))
	policy := make([]float64, len(days))
	cert := make([]float64, len(days))
	var top float64 = 1
	var havePolicy, haveCert bool
	for i, d := range days {
		labels[i] = d.Day.Format("01-02")
		ok[i], failed[i] = float64(d.Successful), float64(d.Failed)
		top = max(top, ok[i])
		policy[i], cert[i] = charts.GetNullValue(), charts.GetNullValue()
	}
	for i, d := range days {
		for _, e := range d.Events {
			switch e.Kind {
			case "policy":
				policy[i], havePolicy = top, true
			default:
				cert[i], haveCert = top, true
			}
		}
	}
	series := charts.GenericSeriesList{
		{Type: charts.ChartTypeLine, Values: ok, Name: "Successful sessions"},
		{Type: charts.ChartTypeLine, Values: failed, Name: "Failed sessions", YAxisIndex: 1},
	}
	if havePolicy {
		series = append(series, charts.GenericSeries{Type: charts.ChartTypeBar, Values: policy, Name: "Policy change"})
	}
	if haveCert {
		series = append(series, charts.GenericSeries{Type: charts.ChartTypeBar, Values: cert, Name: "Certificate"})
	}
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	opt := charts.ChartOption{
		OutputFormat: charts.ChartOutputSVG,
		Width:        900,
		Height:       340,
		XAxis:        charts.XAxisOption{Labels: labels},
		YAxis: []charts.YAxisOption{
			{Title: "successful", Min: charts.Ptr(0.0)},
			{Title: "failed", Min: charts.Ptr(0.0)},
		},
		Legend:     charts.LegendOption{SeriesNames: names},
		SeriesList: series,
		BarSize:    0.15,
		Symbol:     charts.Symbol{Shape: charts.SymbolCircle},
	}
	return renderChart(opt)
}

// gradePoint is one stored check for the grade chart.
type gradePoint struct {
	At    time.Time
	Score int
	Grade string
}

// scoreChart draws the scores of checks, oldest first.
func scoreChart(points []gradePoint) (template.URL, error) {
	if len(points) < 2 {
		return "", nil
	}
	labels := make([]string, len(points))
	scores := make([]float64, len(points))
	for i, pt := range points {
		labels[i] = pt.At.UTC().Format("01-02 15:04")
		scores[i] = float64(pt.Score)
	}
	opt := charts.ChartOption{
		OutputFormat: charts.ChartOutputSVG,
		Width:        900,
		Height:       300,
		XAxis:        charts.XAxisOption{Labels: labels},
		YAxis:        []charts.YAxisOption{{Title: "score", Min: charts.Ptr(0.0), Max: charts.Ptr(100.0)}},
		Legend:       charts.LegendOption{SeriesNames: []string{"Score (A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, E ≥ 50)"}},
		SeriesList:   charts.GenericSeriesList{{Type: charts.ChartTypeLine, Values: scores, Name: "Score"}},
	}
	return renderChart(opt)
}

func renderChart(opt charts.ChartOption) (template.URL, error) {
	p, err := charts.Render(opt)
	if err != nil {
		return "", fmt.Errorf("web: chart: %w", err)
	}
	svg, err := p.Bytes()
	if err != nil {
		return "", fmt.Errorf("web: chart: %w", err)
	}
	// The URL is built here from our own SVG only; nothing a user typed
	// is in it but labels and numbers that the library escapes.
	return template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg)), nil //nolint:gosec // our own SVG, see above
}
