package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// The rollups of many domains: whatever table the store answers a
// RollupQuery from, the answer is that of tlsrpt_daily, the sums of the
// stored reports' rollups of the domains hosted in the scope at the time
// of the query (expectRollups over the visible rollups). Also for the
// domains whose hosting changed after their reports arrived: one hosted
// late, one deleted, one deleted and hosted again by another organization.

// derivedReports returns varied reports: domains of two organizations and
// of nobody, days from before 1970 to 2026 (blocks of every length, days
// numbered below 0), three policy types, result types, reporters, sending
// IPs and MXs. Report ids start with prefix.
func derivedReports(prefix string, domains []string) []*store.TLSRPTReport {
	days := []time.Time{
		time.Date(1969, 12, 20, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1970, 1, 9, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC),
	}
	for d := time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC); d.Before(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 3) {
		days = append(days, d)
	}
	days = append(days, day(1), day(22))
	reporters := []string{"Google Inc.", "Microsoft", "Yahoo"}
	policies := []string{"sts", "sts", "tlsa", "no-policy-found"}
	results := []string{"certificate-expired", "starttls-not-supported", "validation-failure", "sts-policy-fetch-error"}
	var l []*store.TLSRPTReport
	n := 0
	for di, d := range days {
		for i, domain := range domains {
			if (di+i)%4 == 3 {
				continue // not every domain every day
			}
			n++
			var fails []fail
			for j := range n % 3 {
				mx := fmt.Sprintf("mx%d.%s", j, domain)
				if (n+j)%4 == 0 {
					mx = "" // failures without an MX
				}
				fails = append(fails, fail{results[(n+j)%len(results)], fmt.Sprintf("192.0.2.%d", (n*7+j)%5), mx, int64(1 + (n+j)%6)})
			}
			l = append(l, newReport(reporters[n%len(reporters)], fmt.Sprintf("%s-%d", prefix, n), domain,
				d.Add(time.Duration(n%3)*time.Hour), policies[n%len(policies)], int64(10+n%40), fails...))
		}
	}
	return l
}

func testRollupsDerived(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	a, b := newOrg(t, s, "a-org", 0), newOrg(t, s, "b-org", 0)
	hostFor(t, s, "a1.example", a.ID, "testing")
	hostFor(t, s, "a2.example", a.ID, "enforce")
	hostFor(t, s, "b1.example", b.ID, "testing")
	hostFor(t, s, "gone.example", a.ID, "testing")
	domains := []string{"a1.example", "a2.example", "b1.example", "gone.example", "late.example", "nobody.example"}

	hosted := map[string]int64{"a1.example": a.ID, "a2.example": a.ID, "b1.example": b.ID, "gone.example": a.ID}
	scopes := []struct {
		name string
		t    store.ReportReader
		orgs []int64 // nil: the operator
	}{
		{"operator", s, nil},
		{"{A}", s.Scoped(store.Scope{Orgs: []int64{a.ID}}), []int64{a.ID}},
		{"{B}", s.Scoped(store.Scope{Orgs: []int64{b.ID}}), []int64{b.ID}},
		{"{A,B}", s.Scoped(store.Scope{Orgs: []int64{a.ID, b.ID}}), []int64{a.ID, b.ID}},
		{"{}", s.Scoped(store.Scope{}), []int64{}},
	}
	groupings := [][]string{
		nil,
		// tlsrptstats: totals and by result, source, MX, day, domain.
		{"result_type"}, {"organization", "sending_ip", "result_type"}, {"receiving_mx", "result_type"},
		{"day", "result_type"}, {"domain", "result_type"},
		// The dashboard's drill-down and intake ledger.
		{"result_type", "receiving_mx"}, {"result_type", "organization", "sending_ip"}, {"organization", "day"},
		// Others, some for tlsrpt_daily only.
		{"day"}, {"domain", "day", "result_type"}, {"policy_type", "result_type", "organization"},
		{"receiving_mx", "sending_ip", "organization", "result_type", "policy_type", "domain", "day"},
	}
	noon := 12 * time.Hour
	filters := []store.RollupQuery{
		{},
		{Since: time.Date(2025, 11, 21, 0, 0, 0, 0, time.UTC).Add(noon), Until: day(2).Add(time.Second)}, // about a year, unaligned
		{Until: time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)},
		{Since: time.Date(1969, 12, 25, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Since: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Since: time.Date(2025, 12, 5, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 12, 6, 0, 0, 0, 0, time.UTC)},
		{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)}, // empty
		{Since: day(1)},
		{PolicyType: "sts", Since: time.Date(2025, 11, 29, 0, 0, 0, 0, time.UTC)},
		{Domain: "a1.example", Since: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)},
	}
	var stored []*store.TLSRPTReport
	// check compares every grouping with the first n filters.
	check := func(phase string, n int) {
		t.Helper()
		for _, sc := range scopes {
			visible := func(domain string) bool {
				if sc.orgs == nil {
					return true
				}
				org, ok := hosted[domain]
				return ok && slices.Contains(sc.orgs, org)
			}
			var mine []*store.TLSRPTReport
			for _, r := range stored {
				v := *r
				v.Rollups = nil
				for _, ru := range r.Rollups {
					if visible(ru.Domain) {
						v.Rollups = append(v.Rollups, ru)
					}
				}
				mine = append(mine, &v)
			}
			for _, f := range filters[:n] {
				for _, g := range groupings {
					q := f
					q.GroupBy = g
					got, err := sc.t.TLSRPTRollups(ctx, q)
					if err != nil {
						t.Fatalf("%s: %s TLSRPTRollups(%+v): %v", phase, sc.name, q, err)
					}
					if want := expectRollups(mine, q); !sameRollups(got, want) {
						t.Errorf("%s: %s TLSRPTRollups(%+v) =\n%s\nwant\n%s", phase, sc.name, q, rollupText(got), rollupText(want))
					}
				}
			}
		}
	}

	// Reports of hosted domains, of one hosted later and of one nobody
	// hosts, in batches.
	l := derivedReports("one", domains)
	for i := 0; i < len(l); i += 50 {
		insert(t, s, l[i:min(i+50, len(l))]...)
	}
	stored = append(stored, l...)
	check("first reports", len(filters))

	// Hosting changes: late.example hosted by B, gone.example deleted.
	hostFor(t, s, "late.example", b.ID, "testing")
	hosted["late.example"] = b.ID
	if err := s.DeleteDomain(ctx, "gone.example"); err != nil {
		t.Fatal(err)
	}
	delete(hosted, "gone.example")
	check("after hosting changes", 2)

	// More reports; then gone.example comes back, hosted by B.
	l = derivedReports("two", domains)
	insert(t, s, l...)
	stored = append(stored, l...)
	hostFor(t, s, "gone.example", b.ID, "testing")
	hosted["gone.example"] = b.ID
	check("after it moved to B", 2)

	// Deleted again with everything of A: nothing of A remains.
	for _, d := range []string{"a1.example", "a2.example", "gone.example"} {
		if err := s.DeleteDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
		delete(hosted, d)
	}
	check("after deleting A's domains", 2)
	for _, g := range groupings {
		rows, err := s.Scoped(store.Scope{Orgs: []int64{a.ID}}).TLSRPTRollups(ctx, store.RollupQuery{GroupBy: g})
		if err != nil {
			t.Fatal(err)
		}
		if len(g) > 0 && len(rows) > 0 || len(g) == 0 && rows[0].Sessions != 0 {
			t.Errorf("{A} without domains: TLSRPTRollups by %q = %s, want nothing", g, rollupText(rows))
		}
	}
}

// rollupText shows rows one per line.
func rollupText(rows []store.RollupRow) string {
	var b strings.Builder
	for _, r := range rows {
		day := ""
		if !r.Day.IsZero() {
			day = r.Day.Format(time.DateOnly)
		}
		fmt.Fprintf(&b, "  %s %s %s %s %s %s %s: %d\n", day, r.Domain, r.PolicyType, r.ResultType, r.Organization,
			r.SendingIP, r.ReceivingMX, r.Sessions)
	}
	return b.String()
}
