// Package dmarcstats sums the daily rollups of DMARC aggregate reports
// (RFC 7489 §7.2, RFC 9990) over a period: the messages that passed and
// failed DMARC, DKIM and SPF as the reporters evaluated them, in total and
// per day, domain, source, reporter, disposition or header From. The CLI
// (moat reports dmarc summary), the API and the dashboard all answer from
// it, so that they agree.
package dmarcstats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Reader is the DMARC data a summary reads: store.Store for the operator,
// or a store.Tenant.
type Reader interface {
	DMARCRollups(ctx context.Context, q store.DMARCRollupQuery) ([]store.DMARCRollupRow, error)
	DMARCTotals(ctx context.Context, q store.DMARCTotalsQuery) ([]store.DMARCTotalsRow, error)
}

// ByNames are the groupings of a summary, in the order they are offered.
var ByNames = []string{"day", "domain", "source", "reporter", "disposition", "header-from"}

// byColumn maps a grouping to the rollup column grouped by.
var byColumn = map[string]string{
	"day": "day", "domain": "domain", "source": "source_ip", "reporter": "reporter",
	"disposition": "disposition", "header-from": "header_from",
}

// Query is what to sum.
type Query struct {
	// Domain is the policy domain; "" for every domain the reader sees.
	Domain string
	// Since is the first day (UTC, truncated to the day); zero: all time.
	Since time.Time
	// Now is the moment the summary is made; zero: now.
	Now time.Time
	// By is one of ByNames for a row per value, or "" for the totals only.
	By string
}

// Summary is the JSON of moat reports dmarc summary --json and of GET
// /api/v1/reports/dmarc/summary: message counts of the daily rollups over
// a period.
type Summary struct {
	Domain string `json:"domain,omitempty"`
	Since  string `json:"since,omitempty"` // first day, UTC
	Until  string `json:"until"`           // last day included, UTC
	By     string `json:"by,omitempty"`
	// TotalMessages is the sum of the records' count over the period.
	TotalMessages int64 `json:"total_messages"`
	Counts              // the totals' pass counts
	Rows          []Row `json:"rows"`
}

// Counts are the messages that passed DMARC (an aligned DKIM or SPF pass
// as the reporter evaluated it), that failed it, and that passed each of
// the two.
type Counts struct {
	DMARCPass int64 `json:"dmarc_pass"`
	DMARCFail int64 `json:"dmarc_fail"`
	DKIMPass  int64 `json:"dkim_pass"`
	SPFPass   int64 `json:"spf_pass"`
}

// Row is the counts of one value of the grouping.
type Row struct {
	Key      string `json:"key"`
	Messages int64  `json:"messages"`
	Counts
}

// PassRate is the share of messages that passed DMARC, 0 to 1; 0 without
// messages.
func (c Counts) PassRate() float64 {
	if n := c.DMARCPass + c.DMARCFail; n > 0 {
		return float64(c.DMARCPass) / float64(n)
	}
	return 0
}

func (c *Counts) add(r *store.DMARCRollupRow) {
	dkim, spf := r.DKIM == "pass", r.SPF == "pass"
	if dkim || spf {
		c.DMARCPass += r.Messages
	} else {
		c.DMARCFail += r.Messages
	}
	if dkim {
		c.DKIMPass += r.Messages
	}
	if spf {
		c.SPFPass += r.Messages
	}
}

// CheckBy returns an error naming the choices when by is not "" or one of
// ByNames.
func CheckBy(by string) error {
	if _, ok := byColumn[by]; by != "" && !ok {
		return fmt.Errorf("by %q: want day, domain, source, reporter, disposition or header-from", by)
	}
	return nil
}

// Summarize sums the rollups of rd that q selects. Rows by day are in the
// order of the days; other rows the most failing first, then the most
// messages.
func Summarize(ctx context.Context, rd Reader, q Query) (*Summary, error) {
	if err := CheckBy(q.By); err != nil {
		return nil, err
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	col := byColumn[q.By]
	var since time.Time
	if !q.Since.IsZero() {
		since = q.Since.UTC().Truncate(24 * time.Hour)
	}
	sum := &Summary{Domain: q.Domain, By: q.By, Until: now.UTC().Format(time.DateOnly), Rows: []Row{}}
	if !since.IsZero() {
		sum.Since = since.Format(time.DateOnly)
	}
	if q.Domain == "" && (col == "" || col == "day" || col == "domain") {
		// Every domain, in all, by day or by domain: the narrow counts
		// per day and domain, not the rows per source.
		return sum, summarizeTotals(ctx, rd, sum, since, col)
	}
	rq := store.DMARCRollupQuery{Domain: q.Domain, Since: since, GroupBy: []string{"dkim", "spf"}}
	if col != "" {
		rq.GroupBy = append([]string{col}, rq.GroupBy...)
	}
	rows, err := rd.DMARCRollups(ctx, rq)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i := range rows {
		r := &rows[i]
		sum.TotalMessages += r.Messages
		sum.add(r)
		if col == "" {
			continue
		}
		key := keyOf(col, r)
		j, ok := index[key]
		if !ok {
			j = len(sum.Rows)
			index[key] = j
			sum.Rows = append(sum.Rows, Row{Key: key})
		}
		sum.Rows[j].Messages += r.Messages
		sum.Rows[j].add(r)
	}
	sortRows(sum, col)
	return sum, nil
}

// sortRows puts rows by day in the order of the days, others the most
// failing first, then the most messages.
func sortRows(sum *Summary, col string) {
	if col == "day" {
		slices.SortStableFunc(sum.Rows, func(a, b Row) int { return cmp.Compare(a.Key, b.Key) })
	} else {
		slices.SortStableFunc(sum.Rows, func(a, b Row) int {
			return cmp.Or(cmp.Compare(b.DMARCFail, a.DMARCFail), cmp.Compare(b.Messages, a.Messages))
		})
	}
}

// summarizeTotals fills sum from the counts per day and domain of every
// domain rd sees, since the day since (zero: all time), grouped by col
// ("", "day" or "domain").
func summarizeTotals(ctx context.Context, rd Reader, sum *Summary, since time.Time, col string) error {
	rows, err := rd.DMARCTotals(ctx, store.DMARCTotalsQuery{Since: since, By: col})
	if err != nil {
		return err
	}
	for i := range rows {
		r := &rows[i]
		c := Counts{DMARCPass: r.DMARCPass, DMARCFail: r.Messages - r.DMARCPass, DKIMPass: r.DKIMPass, SPFPass: r.SPFPass}
		sum.TotalMessages += r.Messages
		sum.plus(c)
		if col == "" {
			continue
		}
		key := r.Domain
		if col == "day" {
			key = r.Day.UTC().Format(time.DateOnly)
		}
		sum.Rows = append(sum.Rows, Row{Key: key, Messages: r.Messages, Counts: c})
	}
	sortRows(sum, col)
	return nil
}

func (c *Counts) plus(d Counts) {
	c.DMARCPass += d.DMARCPass
	c.DMARCFail += d.DMARCFail
	c.DKIMPass += d.DKIMPass
	c.SPFPass += d.SPFPass
}

// keyOf is the value of col in r, as text.
func keyOf(col string, r *store.DMARCRollupRow) string {
	switch col {
	case "day":
		return r.Day.UTC().Format(time.DateOnly)
	case "domain":
		return r.Domain
	case "source_ip":
		return r.SourceIP
	case "reporter":
		return r.Reporter
	case "disposition":
		return r.Disposition
	default:
		return r.HeaderFrom
	}
}
