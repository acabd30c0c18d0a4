package store

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// BenchmarkPrune measures prune throughput on both databases: the rows of
// MOAT_PRUNE_ROWS (default 20,000) old reports (each with a policy domain,
// a policy, a failure detail and an intake log line) and as many daily
// rollup rows, all older than the retention periods, pruned with the
// default batches and pauses. It reports rows per second of each table.
// For the figures of the README: MOAT_PRUNE_ROWS=1000000 go test -run '^$'
// -bench BenchmarkPrune -benchtime 1x ./internal/store
func BenchmarkPrune(b *testing.B) {
	n := 20000
	if v := os.Getenv("MOAT_PRUNE_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("MOAT_PRUNE_ROWS=%q: %v", v, err)
		}
	}
	for _, db := range []struct {
		name string
		opts func(b *testing.B) Options
	}{
		{"sqlite", func(b *testing.B) Options { return Options{DataDir: b.TempDir()} }},
		{"postgres", func(b *testing.B) Options { return Options{URL: pgtest.NewDatabase(b)} }},
	} {
		b.Run(db.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st, err := Open(b.Context(), nil, db.opts(b))
				if err != nil {
					b.Fatal(err)
				}
				s := st.(*sqlStore)
				now := time.Now()
				start := time.Now()
				// Every row older than the periods: the daily rows take
				// n/1000 days from day0.
				fillOld(b, s, now.AddDate(0, 0, -900-n/1000), n, n, 100)
				b.Logf("filled %d reports and %d daily rows in %v", n, n, time.Since(start).Round(time.Millisecond))
				b.StartTimer()
				res, err := s.Prune(b.Context(), Retention{Raw: 90 * day, Reports: 400 * day, Rollups: 800 * day}, PruneOptions{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for _, c := range res.Counts {
					if c.Rows > 0 {
						b.Logf("%s %s: %d rows in %v, %.0f rows/s", c.Action, c.Table, c.Rows, c.Took.Round(time.Millisecond), float64(c.Rows)/c.Took.Seconds())
						b.ReportMetric(float64(c.Rows)/c.Took.Seconds(), c.Table+"-rows/s")
					}
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
