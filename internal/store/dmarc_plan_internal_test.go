package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDMARCQueryPlans checks on SQLite that the DMARC list, rollup and
// deduplication queries are index ranges: no step of their plans scans a
// whole table or index.
func TestDMARCQueryPlans(t *testing.T) {
	t.Parallel()
	st, err := Open(t.Context(), nil, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	type query struct {
		name string
		text string
		args []any
	}
	var queries []query
	for _, tn := range []struct {
		name string
		t    *tenant
	}{
		{"operator", s.op()},
		{"tenant", s.Scoped(Scope{Orgs: []int64{1, 2}}).(*tenant)},
	} {
		for _, f := range []DMARCFilter{
			{Domain: "example.com", Since: since, Until: until},
			{Since: since, Until: until},
			{Status: ReportInvalid, Since: since},
		} {
			text, args, err := tn.t.dmarcListQuery(f, 100)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{fmt.Sprintf("%s list %+v", tn.name, f), text, args})
		}
		for _, q := range []DMARCRollupQuery{
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"disposition", "dkim", "spf"}},
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"day", "dkim", "spf"}},
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"source_ip", "dkim_domain", "spf_domain"}},
			{Since: since, Until: until, GroupBy: []string{"domain", "dkim", "spf"}},
		} {
			text, args, _, err := tn.t.dmarcRollupQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{fmt.Sprintf("%s rollups %+v", tn.name, q), text, args})
		}
		for _, by := range []string{"", "day", "domain"} {
			q := DMARCTotalsQuery{Since: since, Until: until, By: by}
			text, args, err := tn.t.dmarcTotalsQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{fmt.Sprintf("%s totals %+v", tn.name, q), text, args})
		}
	}
	queries = append(queries,
		query{"duplicate by digest", dmarcByDigestSQL, []any{"00"}},
		query{"identity", dmarcByIdentitySQL, []any{"Org", "id", 1, 2}},
		query{"same content", dmarcByContentSQL, []any{"Org", "id", 1, 2, "00"}})
	for _, q := range queries {
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.text, q.args...)
		if err != nil {
			t.Fatalf("%s: EXPLAIN: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatalf("%s: EXPLAIN: %v", q.name, err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("%s: plan scans: %q\nquery: %s", q.name, plan, q.text)
				break
			}
		}
	}
}
