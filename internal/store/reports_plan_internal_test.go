package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReportQueryPlans checks on SQLite that the report and rollup queries
// the dashboard will run are index ranges: no step of their plans scans a
// whole table or index. (The queries are the ones the methods build.)
func TestReportQueryPlans(t *testing.T) {
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
		after := ReportKey{End: until, ID: 7}
		for _, f := range []ReportFilter{
			{Domain: "example.com", Since: since, Until: until},
			{Domain: "example.com", Since: since},
			{Since: since, Until: until},
			{Status: ReportInvalid, Since: since},
		} {
			text, args := tn.t.listQuery(f, 100)
			queries = append(queries, query{fmt.Sprintf("%s list %+v", tn.name, f), text, args})
			q := tn.t.reportQuery(f)
			queries = append(queries, query{fmt.Sprintf("%s count %+v", tn.name, f), `SELECT count(*) FROM ` + q.from + q.where, q.args})
			f.After = after
			text, args = tn.t.listQuery(f, 100)
			queries = append(queries, query{fmt.Sprintf("%s list %+v", tn.name, f), text, args})
		}
		// Lists without a period: the whole index in its order, read until
		// the page is full.
		for _, f := range []ReportFilter{{}, {After: after}, {Domain: "example.com"}, {Domain: "example.com", After: after}} {
			text, args := tn.t.listQuery(f, 100)
			queries = append(queries, query{fmt.Sprintf("%s list %+v", tn.name, f), text, args})
		}
		for _, q := range []RollupQuery{
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"result_type"}},
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"day", "result_type"}},
			{Domain: "example.com", Since: since, Until: until, GroupBy: []string{"organization", "sending_ip", "result_type"}},
			{Domain: "example.com", PolicyType: "sts", Since: since, GroupBy: []string{"receiving_mx", "result_type"}},
			{Since: since, Until: until, GroupBy: []string{"domain", "result_type"}},
			// The derived tables: tlsrptstats' groupings over all domains.
			{Since: since, Until: until, GroupBy: []string{"result_type"}},
			{Since: since, GroupBy: []string{"day", "result_type"}},
			{Until: until, GroupBy: []string{"organization", "sending_ip", "result_type"}},
			{PolicyType: "sts", GroupBy: []string{"receiving_mx", "result_type"}},
			{Since: since, Until: until, GroupBy: []string{"organization", "day"}},
		} {
			text, args, _, err := tn.t.rollupQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{fmt.Sprintf("%s rollups %+v", tn.name, q), text, args})
		}
	}
	queries = append(queries, query{"duplicate by identity", reportByIdentitySQL, []any{"Org", "id"}},
		query{"duplicate by digest", reportByDigestSQL, []any{"00"}})

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
		ordered := strings.Contains(q.name, " list ")
		for _, step := range plan {
			// A list without a period reads its index in order and stops
			// when the page is full: never sorted.
			if ordered && strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("%s: plan sorts: %q\nquery: %s", q.name, plan, q.text)
				break
			}
			if ordered && (strings.HasPrefix(step, "SCAN r USING INDEX tlsrpt_reports_end") ||
				strings.HasPrefix(step, "SCAN d USING PRIMARY KEY")) {
				continue
			}
			// The union of ranges of blocks is scanned as it comes; the
			// operator's derived rollups list the organizations.
			ok := step == "SCAN blocks" || step == "SCAN CONSTANT ROW" || strings.HasPrefix(step, "SCAN orgs USING COVERING INDEX")
			if strings.HasPrefix(step, "SCAN") && !ok {
				t.Errorf("%s: plan scans: %q\nquery: %s", q.name, plan, q.text)
				break
			}
		}
	}
}
