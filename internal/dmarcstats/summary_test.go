package dmarcstats

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// rollups is a Reader over fixed rows that groups them as the store does.
type rollups struct {
	rows []store.DMARCRollupRow
	last store.DMARCRollupQuery
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
