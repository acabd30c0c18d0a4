package store

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestDMARCByDay: on both databases, dmarc_by_day holds exactly the sums
// of dmarc_daily by day, domain and DMARC result, as InsertDMARC writes
// them (a conflict and a duplicate counting for nothing, a report's rows
// flushed in several parts adding up), as migration 10 fills it from an
// existing dmarc_daily, and after retention took days of both; the
// summaries of many domains read it and answer what dmarc_daily answers.
func TestDMARCByDay(t *testing.T) {
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
			type sum struct {
				day            int64
				domain, dk, sp string
				n              int64
			}
			read := func(table string) []sum {
				rows, err := s.r.QueryContext(ctx, `SELECT day, domain, dkim, spf, SUM(messages) FROM `+table+` GROUP BY day, domain, dkim, spf ORDER BY day, domain, dkim, spf`)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []sum
				for rows.Next() {
					var x sum
					var day time.Time
					if err := rows.Scan(timeCol{&day}, &x.domain, &x.dk, &x.sp, &x.n); err != nil {
						t.Fatal(err)
					}
					x.day = day.Unix()
					out = append(out, x)
				}
				return out
			}
			daily, byDay := read("dmarc_daily"), read("dmarc_by_day")
			if len(daily) == 0 || !slices.Equal(daily, byDay) {
				t.Errorf("%s: dmarc_by_day %v\n is not dmarc_daily summed %v", when, byDay, daily)
			}
			for _, g := range [][]string{nil, {"day"}, {"domain"}, {"dkim", "spf"}, {"day", "dkim", "spf"}, {"domain", "dkim", "spf"}} {
				q := DMARCRollupQuery{GroupBy: g, Since: now.AddDate(0, 0, -800)}
				if dmarcRollupTable(q) != "dmarc_by_day" {
					t.Fatalf("%v: not read from dmarc_by_day", g)
				}
				got, err := s.DMARCRollups(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var want []DMARCRollupRow
				text, args, _, err := s.op().dmarcRollupQuery(q)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := s.r.QueryContext(ctx, strings.Replace(text, "FROM dmarc_by_day", "FROM dmarc_daily", 1), args...)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var r DMARCRollupRow
					dest := []any{}
					for _, c := range g {
						dest = append(dest, dmarcRollupDest(c, &r))
					}
					if err := rows.Scan(append(dest, &r.Messages)...); err != nil {
						t.Fatal(err)
					}
					want = append(want, r)
				}
				rows.Close()
				if !slices.EqualFunc(got, want, func(a, b DMARCRollupRow) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
					t.Errorf("%s, by %v: %v, dmarc_daily says %v", when, g, got, want)
				}
			}
		}
		same("after intake")

		// Migration 10 fills the table from dmarc_daily.
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
		same("after migration 10")

		if _, err := s.Prune(ctx, Retention{Raw: 90 * 24 * time.Hour, Reports: 400 * 24 * time.Hour, Rollups: 500 * 24 * time.Hour},
			PruneOptions{Batch: 3, Pause: -1}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, `SELECT count(*) FROM dmarc_by_day WHERE day < $1`, s.d.timeArg(dayOf(now.AddDate(0, 0, -500)))); n != 0 {
			t.Errorf("%d dmarc_by_day rows older than retention.rollups left", n)
		}
		same("after retention")
	})
}
