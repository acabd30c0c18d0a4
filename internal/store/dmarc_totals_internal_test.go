package store

import (
	"cmp"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestDMARCTotals: on both databases, dmarc_totals holds exactly the sums
// of dmarc_daily by day and domain (messages, DKIM, SPF and DMARC passes),
// as InsertDMARC writes them (a conflict and a duplicate counting for
// nothing, a report's rows flushed in several parts adding up), as
// migrations 10 and 12 fill it from an existing dmarc_daily, and after retention took days of both; DMARCTotals
// answers what dmarc_daily answers.
func TestDMARCTotals(t *testing.T) {
	t.Parallel()
	onEachDatabase(t, func(t *testing.T, s *sqlStore) {
		ctx := t.Context()
		now := time.Now().UTC()
		report := func(id, domain string, end time.Time, records int, seed string) *DMARCReport {
			return &DMARCReport{Source: "import", Raw: []byte(id + domain + end.String() + seed), Status: ReportOK, Pct: -1,
				OrgName: "Receiver", ReportID: id, StartTime: end.Add(-24 * time.Hour), EndTime: end, Domain: domain, P: "none",
				Rows: func(emit func(*DMARCRow) error) (DMARCEnd, error) {
					var n int64
					for i := range records {
						r := &DMARCRow{SourceIP: fmt.Sprintf("192.0.2.%d", i%250), HeaderFrom: domain, Disposition: "none",
							DKIM: []string{"pass", "fail"}[i%2], SPF: []string{"pass", "fail", "pass"}[i%3], Messages: int64(1 + i%7)}
						n += r.Messages
						if err := emit(r); err != nil {
							return DMARCEnd{}, err
						}
					}
					return DMARCEnd{Records: int64(records), Messages: n, ContentDigest: seed}, nil
				}}
		}
		var reps []*DMARCReport
		for d, domain := range []string{"a.example", "b.example", "c.example"} {
			for day := range 5 {
				end := now.AddDate(0, 0, -1000+day*300).Truncate(24 * time.Hour).Add(-time.Second)
				reps = append(reps, report(fmt.Sprint("r", d, day), domain, end, 3+day, "1"))
			}
		}
		// Rows enough to be flushed in parts; then a conflict.
		reps = append(reps, report("big", "a.example", now.AddDate(0, 0, -2), dmarcFlushRows*2+17, "1"),
			report("big", "a.example", now.AddDate(0, 0, -2), 5, "other content"))
		if _, err := s.InsertDMARC(ctx, DMARCBatch{Reports: reps}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InsertDMARC(ctx, DMARCBatch{Reports: reps[:2]}); err != nil { // duplicates
			t.Fatal(err)
		}

		same := func(when string) {
			t.Helper()
			// dmarc_totals against dmarc_daily summed by the same rule.
			read := func(text string) []DMARCTotalsRow {
				rows, err := s.r.QueryContext(ctx, text)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []DMARCTotalsRow
				for rows.Next() {
					var x DMARCTotalsRow
					if err := rows.Scan(timeCol{&x.Day}, &x.Domain, &x.Messages, &x.DKIMPass, &x.SPFPass, &x.DMARCPass); err != nil {
						t.Fatal(err)
					}
					out = append(out, x)
				}
				return out
			}
			daily := read(`SELECT day, domain, SUM(messages), SUM(CASE WHEN dkim = 'pass' THEN messages ELSE 0 END),
				SUM(CASE WHEN spf = 'pass' THEN messages ELSE 0 END),
				SUM(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN messages ELSE 0 END)
				FROM dmarc_daily GROUP BY day, domain ORDER BY day, domain`)
			totals := read(`SELECT day, domain, messages, dkim_pass, spf_pass, dmarc_pass FROM dmarc_totals ORDER BY day, domain`)
			eq := func(a, b DMARCTotalsRow) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
			if len(daily) == 0 || !slices.EqualFunc(daily, totals, eq) {
				t.Errorf("%s: dmarc_totals %v\n is not dmarc_daily summed %v", when, totals, daily)
			}
			// DMARCTotals, in all, by day and by domain, against the
			// same sums of dmarc_daily.
			since := dayOf(now.AddDate(0, 0, -800))
			for _, by := range []string{"", "day", "domain"} {
				got, err := s.DMARCTotals(ctx, DMARCTotalsQuery{Since: since, By: by})
				if err != nil {
					t.Fatal(err)
				}
				index := map[string]int{}
				var want []DMARCTotalsRow
				for _, r := range daily {
					if r.Day.Before(since) {
						continue
					}
					var g DMARCTotalsRow
					switch by {
					case "day":
						g.Day = r.Day
					case "domain":
						g.Domain = r.Domain
					}
					key := fmt.Sprint(g.Day.Unix(), g.Domain)
					i, ok := index[key]
					if !ok {
						i = len(want)
						index[key] = i
						want = append(want, g)
					}
					want[i].Messages += r.Messages
					want[i].DKIMPass += r.DKIMPass
					want[i].SPFPass += r.SPFPass
					want[i].DMARCPass += r.DMARCPass
				}
				slices.SortFunc(want, func(a, b DMARCTotalsRow) int {
					return cmp.Or(a.Day.Compare(b.Day), strings.Compare(a.Domain, b.Domain))
				})
				if len(want) == 0 || !slices.EqualFunc(got, want, eq) {
					t.Errorf("%s, DMARCTotals by %q: %v, dmarc_daily says %v", when, by, got, want)
				}
			}
		}
		same("after intake")

		// Migrations 10 and 12 fill the table from dmarc_daily (12 from
		// dmarc_by_day, which 10 filled).
		fsys, err := fs.Sub(migrations, "migrations/"+s.d.name)
		if err != nil {
			t.Fatal(err)
		}
		dia := goose.DialectSQLite3
		if s.d.name == "postgres" {
			dia = goose.DialectPostgres
		}
		p, err := goose.NewProvider(dia, s.w, fsys, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 9); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Up(ctx); err != nil { // 10 and those after it
			t.Fatal(err)
		}
		same("after migrations 10 to 12")

		if _, err := s.Prune(ctx, Retention{Raw: 90 * 24 * time.Hour, Reports: 400 * 24 * time.Hour, Rollups: 500 * 24 * time.Hour},
			PruneOptions{Batch: 3, Pause: -1}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, `SELECT count(*) FROM dmarc_totals WHERE day < $1`, s.d.timeArg(dayOf(now.AddDate(0, 0, -500)))); n != 0 {
			t.Errorf("%d dmarc_totals rows older than retention.rollups left", n)
		}
		same("after retention")
	})
}
