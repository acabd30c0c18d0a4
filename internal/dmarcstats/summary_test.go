package dmarcstats

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// rollups is a Reader over fixed rows that groups them as the store does.
type rollups struct {
	rows       []store.DMARCRollupRow
	last       store.DMARCRollupQuery
	lastTotals *store.DMARCTotalsQuery
}

// DMARCTotals sums the rows per day and domain as dmarc_totals holds
// them, grouped as the store groups them.
func (r *rollups) DMARCTotals(_ context.Context, q store.DMARCTotalsQuery) ([]store.DMARCTotalsRow, error) {
	r.lastTotals = &q
	index := map[string]int{}
	var out []store.DMARCTotalsRow
	for _, row := range r.rows {
		if row.Day.Before(q.Since) {
			continue
		}
		var key string
		var g store.DMARCTotalsRow
		switch q.By {
		case "day":
			key, g.Day = row.Day.String(), row.Day
		case "domain":
			key, g.Domain = row.Domain, row.Domain
		}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, g)
		}
		o := &out[i]
		o.Messages += row.Messages
		if row.DKIM == "pass" {
			o.DKIMPass += row.Messages
		}
		if row.SPF == "pass" {
			o.SPFPass += row.Messages
		}
		if row.DKIM == "pass" || row.SPF == "pass" {
			o.DMARCPass += row.Messages
		}
	}
	slices.SortFunc(out, func(a, b store.DMARCTotalsRow) int {
		return cmp.Or(a.Day.Compare(b.Day), strings.Compare(a.Domain, b.Domain))
	})
	return out, nil
}

func (r *rollups) DMARCRollups(_ context.Context, q store.DMARCRollupQuery) ([]store.DMARCRollupRow, error) {
	r.last = q
	var out []store.DMARCRollupRow
	for _, row := range r.rows {
		if (q.Domain == "" || row.Domain == q.Domain) && !row.Day.Before(q.Since) {
			out = append(out, row)
		}
	}
	return out, nil
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	rd := &rollups{rows: []store.DMARCRollupRow{
		{Day: day("2026-11-02"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.1", DKIM: "pass", SPF: "pass", Messages: 10}},
		{Day: day("2026-11-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.2", DKIM: "fail", SPF: "pass", Messages: 5}},
		{Day: day("2026-11-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.3", DKIM: "fail", SPF: "fail", Messages: 7}},
		{Day: day("2026-11-02"), Domain: "b.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.3", DKIM: "fail", SPF: "softfail", Messages: 2}},
		{Day: day("2026-10-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.9", DKIM: "fail", SPF: "fail", Messages: 100}},
	}}
	now := day("2026-11-03").Add(15 * time.Hour)
	sum, err := Summarize(t.Context(), rd, Query{Since: day("2026-10-20").Add(9 * time.Hour), Now: now, By: "source"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rd.last.GroupBy, []string{"source_ip", "dkim", "spf"}) || !rd.last.Since.Equal(day("2026-10-20")) {
		t.Errorf("asked the store for %+v", rd.last)
	}
	want := Counts{DMARCPass: 15, DMARCFail: 9, DKIMPass: 10, SPFPass: 15}
	if sum.TotalMessages != 24 || sum.Counts != want || sum.Since != "2026-10-20" || sum.Until != "2026-11-03" {
		t.Errorf("summary %+v, want 24 messages, %+v, since 2026-10-20 until 2026-11-03", sum, want)
	}
	// The most failing first, then the most messages.
	var keys []string
	for _, r := range sum.Rows {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{"192.0.2.3", "192.0.2.1", "192.0.2.2"}) || sum.Rows[0].DMARCFail != 9 {
		t.Errorf("rows %+v", sum.Rows)
	}
	if got := sum.PassRate(); got != 15.0/24 {
		t.Errorf("pass rate %v", got)
	}

	byDay, err := Summarize(t.Context(), rd, Query{Domain: "a.example", Now: now, By: "day"})
	if err != nil {
		t.Fatal(err)
	}
	keys = keys[:0]
	for _, r := range byDay.Rows {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{"2026-10-01", "2026-11-01", "2026-11-02"}) || byDay.Since != "" || byDay.TotalMessages != 122 {
		t.Errorf("by day: %+v", byDay)
	}
	if (Counts{}).PassRate() != 0 {
		t.Error("the pass rate of nothing is not 0")
	}
}

// TestSummarizeTotals: the summaries of every domain, in all, by day and
// by domain, read the counts per day and domain and answer what the rows
// per source would; one domain's and other groupings read those rows.
func TestSummarizeTotals(t *testing.T) {
	t.Parallel()
	rows := []store.DMARCRollupRow{
		{Day: day("2026-11-02"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.1", DKIM: "pass", SPF: "pass", Messages: 10}},
		{Day: day("2026-11-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.2", DKIM: "fail", SPF: "pass", Messages: 5}},
		{Day: day("2026-11-01"), Domain: "b.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.3", DKIM: "pass", SPF: "fail", Messages: 4}},
		{Day: day("2026-11-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.3", DKIM: "fail", SPF: "fail", Messages: 7}},
		{Day: day("2026-11-02"), Domain: "b.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.3", DKIM: "fail", SPF: "softfail", Messages: 2}},
		{Day: day("2026-11-03"), Domain: "c.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.4", DKIM: "pass", SPF: "pass", Messages: 1}},
		{Day: day("2026-10-01"), Domain: "a.example", DMARCRow: store.DMARCRow{SourceIP: "192.0.2.9", DKIM: "fail", SPF: "fail", Messages: 100}},
	}
	now := day("2026-11-03").Add(15 * time.Hour)
	type row struct {
		key string
		n   int64
		c   Counts
	}
	for _, tc := range []struct {
		by        string
		wantTotal Counts
		want      []row
	}{
		{"", Counts{DMARCPass: 20, DMARCFail: 9, DKIMPass: 15, SPFPass: 16}, nil},
		{"day", Counts{DMARCPass: 20, DMARCFail: 9, DKIMPass: 15, SPFPass: 16}, []row{
			{"2026-11-01", 16, Counts{DMARCPass: 9, DMARCFail: 7, DKIMPass: 4, SPFPass: 5}},
			{"2026-11-02", 12, Counts{DMARCPass: 10, DMARCFail: 2, DKIMPass: 10, SPFPass: 10}},
			{"2026-11-03", 1, Counts{DMARCPass: 1, DKIMPass: 1, SPFPass: 1}},
		}},
		{"domain", Counts{DMARCPass: 20, DMARCFail: 9, DKIMPass: 15, SPFPass: 16}, []row{
			{"a.example", 22, Counts{DMARCPass: 15, DMARCFail: 7, DKIMPass: 10, SPFPass: 15}},
			{"b.example", 6, Counts{DMARCPass: 4, DMARCFail: 2, DKIMPass: 4}},
			{"c.example", 1, Counts{DMARCPass: 1, DKIMPass: 1, SPFPass: 1}},
		}},
	} {
		rd := &rollups{rows: rows}
		sum, err := Summarize(t.Context(), rd, Query{Since: day("2026-10-20"), Now: now, By: tc.by})
		if err != nil {
			t.Fatal(err)
		}
		if rd.lastTotals == nil || rd.lastTotals.By != tc.by || !rd.lastTotals.Since.Equal(day("2026-10-20")) || rd.last.GroupBy != nil {
			t.Errorf("by %q: asked the store for totals %+v, rollups %+v; want the totals only", tc.by, rd.lastTotals, rd.last)
		}
		var got []row
		for _, r := range sum.Rows {
			got = append(got, row{r.Key, r.Messages, r.Counts})
		}
		if sum.TotalMessages != 29 || sum.Counts != tc.wantTotal || !slices.Equal(got, tc.want) || sum.Since != "2026-10-20" {
			t.Errorf("by %q: %d messages, %+v, rows %+v; want 29, %+v, rows %+v", tc.by, sum.TotalMessages, sum.Counts, got, tc.wantTotal, tc.want)
		}
	}
	// One domain reads the rows per source.
	rd := &rollups{rows: rows}
	if _, err := Summarize(t.Context(), rd, Query{Domain: "a.example", Now: now, By: "day"}); err != nil {
		t.Fatal(err)
	}
	if rd.lastTotals != nil || !slices.Equal(rd.last.GroupBy, []string{"day", "dkim", "spf"}) {
		t.Errorf("one domain by day asked for totals %+v, rollups %+v", rd.lastTotals, rd.last)
	}
}

func TestCheckBy(t *testing.T) {
	t.Parallel()
	for _, by := range append([]string{""}, ByNames...) {
		if err := CheckBy(by); err != nil {
			t.Errorf("CheckBy(%q): %v", by, err)
		}
	}
	err := CheckBy("week")
	if err == nil || !strings.Contains(err.Error(), `"week"`) || !strings.Contains(err.Error(), "header-from") {
		t.Errorf("CheckBy(week): %v, want an error naming the value and the choices", err)
	}
	if _, err := Summarize(t.Context(), &rollups{}, Query{By: "week"}); err == nil {
		t.Error("Summarize took by=week")
	}
}
