package store

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// Rollup benchmark sizes: an organization of 1,000 domains and a year of
// daily rollups shaped like `moat seed`'s (two or three reporters a day
// per domain, failures from a pool of sending IPs to one of two MXs now
// and then: about 840,000 rows), beside a second organization of 100.
const (
	benchRollupDomains = 1000
	benchRollupDays    = 365
)

// benchRollupStore fills a SQLite store for BenchmarkRollups with bulk SQL,
// the derived tables by the backfill of their migration, and returns it
// with the end of its year.
func benchRollupStore(b *testing.B) (*sqlStore, time.Time) {
	b.Helper()
	ctx := b.Context()
	st, err := Open(ctx, nil, Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // a benchmark's temporary database
	s := st.(*sqlStore)
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const nsDay = int64(24 * time.Hour)
	n := benchRollupDomains + benchRollupDomains/10
	queries := []string{
		fmt.Sprintf(`INSERT INTO orgs (name, display_name, accent, logo, logo_type, created_at)
			VALUES ('bench', 'Bench', '', x'', '', %[1]d), ('other', 'Other', '', x'', '', %[1]d)`, day0.UnixNano()),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version, created_at, updated_at, org_id)
			SELECT 'd' || i || '.example', 'testing', '["mx.example"]', 86400, '[]', 'id1', 1, %d, %d,
				CASE WHEN i <= %d THEN 1 ELSE 2 END FROM n`, n, day0.UnixNano(), day0.UnixNano(), benchRollupDomains),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d),
			dd(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM dd WHERE j < %d),
			r(k, org) AS (VALUES (0, 'Google Inc.'), (1, 'Microsoft Corporation'), (2, 'Yahoo'))
			INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx, sessions)
			SELECT 'd' || i || '.example', %d + j * %d, 'sts', 'success', r.org, '', '', 20 + (i * j) %% 50
			FROM n, dd, r WHERE (i + j + k) %% 4 <> 0`, n, benchRollupDays-1, day0.UnixNano(), nsDay),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d),
			dd(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM dd WHERE j < %d)
			INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx, sessions)
			SELECT 'd' || i || '.example', %d + j * %d, 'sts',
				CASE (i + j) %% 3 WHEN 0 THEN 'certificate-expired' WHEN 1 THEN 'validation-failure' ELSE 'starttls-not-supported' END,
				'Google Inc.', '192.0.2.' || ((i * j) %% 250), 'mx' || (j %% 2) || '.d' || i || '.example', 1 + i %% 7
			FROM n, dd WHERE (i * 7 + j) %% 20 = 0`, n, benchRollupDays-1, day0.UnixNano(), nsDay),
	}
	// The derived tables as migration 4 fills them.
	m, err := fs.ReadFile(migrations, "migrations/sqlite/00004_rollups.sql")
	if err != nil {
		b.Fatal(err)
	}
	text := string(m)
	text = text[strings.Index(text, "INSERT INTO"):strings.Index(text, "-- +goose Down")]
	for _, q := range strings.Split(text, ";\n") {
		if strings.TrimSpace(q) != "" {
			queries = append(queries, q)
		}
	}
	for _, q := range append(queries, `ANALYZE`) {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	var rollups int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM tlsrpt_daily`).Scan(&rollups); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d domains, %d rollup rows", n, rollups)
	return s, day0.AddDate(0, 0, benchRollupDays)
}

// BenchmarkRollups measures the rollups of tlsrptstats' groupings over
// every domain of the organization of 1,000 domains, on SQLite, over the
// last 30 days and the whole year: from the derived table TLSRPTRollups
// chooses, and from tlsrpt_daily (what it read before there were derived
// tables), for the comparison.
func BenchmarkRollups(b *testing.B) {
	s, end := benchRollupStore(b)
	ten := &tenant{s: s, sc: Scope{Orgs: []int64{1}}}
	for _, days := range []int{30, 365} {
		for _, cols := range [][]string{{"result_type"}, {"organization", "sending_ip", "result_type"},
			{"receiving_mx", "result_type"}, {"day", "result_type"}, {"domain", "result_type"}} {
			q := RollupQuery{Since: end.AddDate(0, 0, -days), Until: end, GroupBy: cols}
			dt, ok := rollupTableFor(q, cols)
			if !ok {
				b.Fatalf("no derived table for %q", cols)
			}
			var dests []func(*RollupRow) any
			for _, c := range cols {
				dests = append(dests, rollupDest(c))
			}
			for _, from := range []string{"derived", "daily"} {
				b.Run(fmt.Sprintf("days=%d/by=%s/%s", days, strings.Join(cols, ","), from), func(b *testing.B) {
					text, args := ten.dailyQuery(q, cols)
					if from == "derived" {
						text, args = ten.derivedQuery(dt, q, cols)
					}
					for b.Loop() {
						if _, err := s.rollupRows(b.Context(), cols, text, args, dests); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
