package store

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// intakeDuring stores a fresh TLS report for f1.example every 2 ms (when
// the last one is stored) until stop is called, and stop returns how long
// each took to store, sorted.
func intakeDuring(tb testing.TB, s *sqlStore, now time.Time) (stop func() []time.Duration) {
	tb.Helper()
	var (
		wg        sync.WaitGroup
		done      = make(chan struct{})
		latencies []time.Duration
		ierr      error
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			r := &TLSRPTReport{Source: "https", Raw: fmt.Appendf(nil, "fresh %d", i), Status: ReportOK,
				OrganizationName: "Google", ReportID: fmt.Sprint("fresh-", i), StartTime: now.Add(-day), EndTime: now,
				Domains: []string{"f1.example"}, Rollups: []TLSRPTRollup{{Day: now, Domain: "f1.example",
					PolicyType: "sts", ResultType: "success", Organization: "Google", Sessions: 3}}}
			start := time.Now()
			if _, err := s.InsertTLSRPT(tb.Context(), []*TLSRPTReport{r}); err != nil {
				ierr = err
				return
			}
			latencies = append(latencies, time.Since(start))
			time.Sleep(2 * time.Millisecond) // reports arrive; they do not queue
		}
	})
	return func() []time.Duration {
		close(done)
		wg.Wait()
		if ierr != nil {
			tb.Fatalf("store a report during the prune: %v", ierr)
		}
		slices.Sort(latencies)
		return latencies
	}
}

// fillOld fills s by bulk SQL, fast, with old data for retention to prune:
// reports reports (each with a policy domain, a policy, a failure detail,
// 256 raw bytes and an intake log line) whose periods end evenly over the
// days from day0, and daily rollup rows, a thousand domains a day from
// day0 on, with the derived tables filled from them by the backfill of
// their migration (so s must hold no rollups before).
func fillOld(tb testing.TB, s *sqlStore, day0 time.Time, reports, daily, days int) {
	tb.Helper()
	ctx := tb.Context()
	pg := s.d.name == "postgres"
	// seq is a source of rows x = 1..n; at the time x steps of step after
	// day0.
	seq := func(n int) string {
		if pg {
			return fmt.Sprintf("generate_series(1, %d) AS g(x)", n)
		}
		return fmt.Sprintf("(WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < %d) SELECT x FROM g) AS g", n)
	}
	var at func(step time.Duration, x string) string
	from := func(base time.Time) {
		at = func(step time.Duration, x string) string {
			if pg {
				return fmt.Sprintf("('%s'::timestamptz + (%s)::bigint * %d * interval '1 microsecond')", base.Format(time.RFC3339Nano), x, step.Microseconds())
			}
			return fmt.Sprintf("(%d + (%s) * %d)", base.UnixNano(), x, step.Nanoseconds())
		}
	}
	from(day0)
	raw, blank, no := "randomblob(256)", "x''", "0"
	if pg {
		raw, blank, no = "decode(repeat(md5(x::text), 16), 'hex')", `'\x'::bytea`, "false"
	}
	var queries []string
	if reports > 0 {
		step := time.Duration(days) * 24 * time.Hour / time.Duration(reports)
		queries = append(queries,
			fmt.Sprintf(`INSERT INTO tlsrpt_reports (received_at, source, source_detail, raw, raw_gzip, raw_size,
				digest, media_type, dkim, status, error, warnings, organization, report_id, contact, dated,
				start_time, end_time, domains, hosted, successful, failed, normalized)
				SELECT %[1]s, 'import', '', %[2]s, %[3]s, 256, 'fill-' || x, '', '', 'ok', '', '[]', 'Fill',
				'fill-' || x, '', 3, %[4]s, %[1]s, '["fill.example"]', %[3]s, 10, 1, %[5]s FROM %[6]s`,
				at(step, "x"), raw, no, at(step, "x - 1"), blank, seq(reports)),
			`INSERT INTO tlsrpt_report_domains (domain, end_time, report, start_time)
				SELECT 'fill.example', end_time, id, start_time FROM tlsrpt_reports WHERE organization = 'Fill'`,
			`INSERT INTO tlsrpt_policies (report, idx, policy_type, domain, strings, mx_hosts, successful, failed)
				SELECT id, 0, 'sts', 'fill.example', '[]', '[]', 10, 1 FROM tlsrpt_reports WHERE organization = 'Fill'`,
			`INSERT INTO tlsrpt_failures (report, policy, idx, result_type, sending_ip, receiving_mx, receiving_helo,
				receiving_ip, sessions, reason_code, additional_info)
				SELECT id, 0, 0, 'certificate-expired', '192.0.2.1', 'mx.fill.example', '', '', 1, '', ''
				FROM tlsrpt_reports WHERE organization = 'Fill'`,
			`INSERT INTO intake_log (at, source, detail, outcome, report, reason, reporter, report_name, domains)
				SELECT end_time, 'import', '', 'stored', id, '', 'Fill', report_id, '["fill.example"]'
				FROM tlsrpt_reports WHERE organization = 'Fill'`)
	}
	if daily > 0 {
		from(dayOf(day0)) // rollups are of UTC days
		queries = append(queries, fmt.Sprintf(`INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type,
			organization, sending_ip, receiving_mx, sessions)
			SELECT 'f' || ((x - 1) %% 1000) || '.example', %s, 'sts', 'success', 'Google Inc.', '', '', 1 + x %% 7
			FROM %s`, at(24*time.Hour, "(x - 1) / 1000"), seq(daily)))
		// The derived tables as migration 4 fills them.
		m, err := fs.ReadFile(migrations, "migrations/"+s.d.name+"/00004_rollups.sql")
		if err != nil {
			tb.Fatal(err)
		}
		text := string(m)
		text = text[strings.Index(text, "-- Backfill"):strings.Index(text, "-- +goose Down")]
		for _, q := range strings.Split(text, ";\n") {
			if strings.Contains(q, "INSERT") {
				queries = append(queries, q)
			}
		}
	}
	for _, q := range append(queries, `ANALYZE`) {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}
