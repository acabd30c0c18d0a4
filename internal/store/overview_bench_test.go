package store

import (
	"fmt"
	"testing"
	"time"
)

// Overview benchmark sizes: 10,000 domains in 10 organizations, a year of
// daily rollups (a success row every tenth day of each domain and a
// failure row every thirtieth: about 490,000 rows), checks, certificates
// and newest reports for most domains.
const (
	benchDomains = 10000
	benchOrgs    = 10
	benchDays    = 365
)

// benchOverviewStore fills a SQLite store for BenchmarkOverview with bulk
// SQL and returns it with the end of its year.
func benchOverviewStore(b *testing.B) (*sqlStore, time.Time) {
	b.Helper()
	ctx := b.Context()
	st, err := Open(ctx, nil, Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // a benchmark's temporary database
	s := st.(*sqlStore)
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := day0.AddDate(0, 0, benchDays)
	const nsDay = int64(24 * time.Hour)
	for _, q := range []string{
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO orgs (name, display_name, accent, logo, logo_type, created_at)
			SELECT 'org' || i, 'Org ' || i, '', x'', '', %d FROM n`, benchOrgs, day0.UnixNano()),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version, created_at, updated_at, org_id)
			SELECT 'd' || i || '.example', CASE i %% 3 WHEN 0 THEN 'testing' WHEN 1 THEN 'enforce' ELSE 'none' END,
				'["mx.example"]', 86400, '[]', 'id1', 1, %d, %d, 1 + i %% %d FROM n`,
			benchDomains, day0.UnixNano(), day0.UnixNano(), benchOrgs),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d),
			dd(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM dd WHERE j < %d)
			INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx, sessions)
			SELECT 'd' || i || '.example', %d + j * %d, 'sts', 'success', 'Google Inc.', '', '', 100 + i %% 50
			FROM n, dd WHERE (i + j) %% 10 = 0`, benchDomains, benchDays-1, day0.UnixNano(), nsDay),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d),
			dd(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM dd WHERE j < %d)
			INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx, sessions)
			SELECT 'd' || i || '.example', %d + j * %d, 'sts', 'certificate-expired', 'Google Inc.', '209.85.220.1',
				'mx1.d' || i || '.example', 1 + i %% 7
			FROM n, dd WHERE (i + j) %% 30 = 0`, benchDomains, benchDays-1, day0.UnixNano(), nsDay),
		fmt.Sprintf(`INSERT INTO tlsrpt_last (domain, received_at)
			SELECT name, %d + (rowid %% %d) * %d FROM domains WHERE rowid %% 10 <> 0`, day0.UnixNano(), benchDays, nsDay),
		fmt.Sprintf(`INSERT INTO checks (org_id, domain, checked_at, score, grade, report, report_size)
			SELECT org_id, name, %d + (rowid %% 300) * %d, rowid %% 101, 'C', x'1f8b', 2 FROM domains WHERE rowid %% 2 = 0`,
			day0.UnixNano(), nsDay),
		fmt.Sprintf(`INSERT INTO checks (org_id, domain, checked_at, score, grade, report, report_size)
			SELECT org_id, name, %d + (rowid %% 300 + 1) * %d, (rowid * 7) %% 101, 'B', x'1f8b', 2 FROM domains WHERE rowid %% 2 = 0`,
			day0.UnixNano(), nsDay),
		fmt.Sprintf(`INSERT INTO certificates (domain, issued_at, expires, detail)
			SELECT name, %d + (rowid %% 90) * %d, %d + (rowid %% 90 + 90) * %d, 'issued' FROM domains WHERE rowid %% 5 <> 0`,
			end.AddDate(0, 0, -90).UnixNano(), nsDay, end.AddDate(0, 0, -90).UnixNano(), nsDay),
		`ANALYZE`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	var rollups int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM tlsrpt_daily`).Scan(&rollups); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d domains, %d rollup rows", benchDomains, rollups)
	return s, end
}

// BenchmarkOverview measures one page (100 domains) of the domain
// overview on SQLite with 10,000 domains and a year of rollups, for each
// sort key: the first page, and a page further on (after the cursor of the
// first), for the operator and for one organization (1,000 domains).
//
//	go test -run '^$' -bench BenchmarkOverview ./internal/store
func BenchmarkOverview(b *testing.B) {
	s, end := benchOverviewStore(b)
	scopes := []struct {
		name string
		t    *tenant
	}{
		{"operator", s.op()},
		{"org", s.Scoped(Scope{Orgs: []int64{3}}).(*tenant)},
	}
	for _, sc := range scopes {
		for _, sort := range []string{"name", "mode", "failure_rate", "last_report", "grade", "expiry"} {
			for _, desc := range []bool{false, true} {
				q := OverviewQuery{Sort: sort, Desc: desc, Now: end}
				first, err := sc.t.Overview(b.Context(), q)
				if err != nil {
					b.Fatal(err)
				}
				if len(first) != defaultOverview {
					b.Fatalf("%s %s: first page of %d domains", sc.name, sort, len(first))
				}
				for _, page := range []string{"first", "next"} {
					q := q
					if page == "next" {
						q.After = first[len(first)-1].Cursor
					}
					b.Run(fmt.Sprintf("%s/%s/desc=%v/%s", sc.name, sort, desc, page), func(b *testing.B) {
						for b.Loop() {
							if _, err := sc.t.Overview(b.Context(), q); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		}
		b.Run(sc.name+"/match", func(b *testing.B) {
			for b.Loop() {
				if _, err := sc.t.Overview(b.Context(), OverviewQuery{Match: "d12", Now: end}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sc.name+"/count", func(b *testing.B) {
			for b.Loop() {
				if _, err := sc.t.CountDomains(b.Context(), OverviewQuery{Mode: "enforce"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
