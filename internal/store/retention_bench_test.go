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
// default batches and pauses while a report is stored every 2 ms. It
// reports rows per second of each table, and the p99 and longest time a
// report took to be stored meanwhile (intake-p99-ms, intake-max-ms).
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
				stop := intakeDuring(b, s, now)
				b.StartTimer()
				res, err := s.Prune(b.Context(), Retention{Raw: 90 * day, Reports: 400 * day, Rollups: 800 * day}, PruneOptions{})
				b.StopTimer()
				lat := stop()
				if err != nil {
					b.Fatal(err)
				}
				if len(lat) > 0 {
					ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
					b.ReportMetric(ms(lat[(len(lat)-1)*99/100]), "intake-p99-ms")
					b.ReportMetric(ms(lat[len(lat)-1]), "intake-max-ms")
					b.Logf("%d reports stored during the prune: p50 %v, p99 %v, max %v", len(lat),
						lat[len(lat)/2], lat[(len(lat)-1)*99/100], lat[len(lat)-1])
				}
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
