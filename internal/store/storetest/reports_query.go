package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func testReportList(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := reportStore(t, fresh)
	a := newReport("A", "a", "example.com", day(10), "sts", 1)
	b := newReport("B", "b", "example.com", day(11), "sts", 2)
	b.Domains = []string{"example.com", "example.net"}
	c := newReport("C", "c", "example.net", day(12), "sts", 3)
	c.Status, c.Warnings = store.ReportWarnings, []string{"contact-info: missing"}
	d := newReport("D", "d", "example.org", day(12), "sts", 4)
	e := invalidReport("{") // undated: filed under its arrival, 2026-11-22 10:15 UTC
	e.ReceivedAt = baseTime()
	f := newReport("F", "f", "example.com", day(13), "sts", 5)
	f.EndTime = day(15) // a three-day period
	reports := map[string]*store.TLSRPTReport{"a": a, "b": b, "c": c, "d": d, "e": e, "f": f}
	ids := map[string]int64{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} { // one batch each: ids in this order
		ids[name] = insert(t, s, reports[name])[0].ID
	}

	tests := []struct {
		f    store.ReportFilter
		want string // the reports in the order listed
	}{
		{store.ReportFilter{}, "efdcba"},
		{store.ReportFilter{Domain: "example.com"}, "fba"},
		{store.ReportFilter{Domain: "Example.COM."}, "fba"},
		{store.ReportFilter{Domain: "example.net"}, "cb"},
		{store.ReportFilter{Domain: "nothing.example"}, ""},
		{store.ReportFilter{Since: day(12)}, "efdc"},
		{store.ReportFilter{Until: day(12)}, "ba"},
		{store.ReportFilter{Since: day(12), Until: day(13)}, "dc"},
		{store.ReportFilter{Since: day(14), Until: day(15)}, "f"}, // overlap with the middle of f's period
		{store.ReportFilter{Since: day(15).Add(time.Second)}, "e"},
		{store.ReportFilter{Since: day(22), Until: day(23)}, "e"},
		{store.ReportFilter{Status: store.ReportInvalid}, "e"},
		{store.ReportFilter{Status: store.ReportWarnings}, "c"},
		{store.ReportFilter{Status: store.ReportOK, Since: day(11)}, "fdb"},
		{store.ReportFilter{Domain: "example.com", Since: day(12)}, "f"},
		{store.ReportFilter{Domain: "example.com", Until: day(11)}, "a"},
		{store.ReportFilter{Domain: "example.net", Status: store.ReportWarnings}, "c"},
		{store.ReportFilter{Limit: 2}, "ef"},
		{store.ReportFilter{Limit: 2, Offset: 2}, "dc"},
		{store.ReportFilter{Offset: 5}, "a"},
		{store.ReportFilter{Offset: 10}, ""},
		{store.ReportFilter{Domain: "example.com", Limit: 1, Offset: 1}, "b"},
	}
	for _, tc := range tests {
		got, err := s.TLSRPTReports(t.Context(), tc.f)
		if err != nil {
			t.Fatalf("TLSRPTReports(%+v): %v", tc.f, err)
		}
		var names strings.Builder
		for _, r := range got {
			for name, id := range ids {
				if r.ID == id {
					names.WriteString(name)
					checkReport(t, "listed report "+name, r, reports[name], id, false)
				}
			}
		}
		if names.String() != tc.want || len(got) != len(tc.want) {
			t.Errorf("TLSRPTReports(%+v) = %q (%d reports), want %q", tc.f, names.String(), len(got), tc.want)
		}
		if tc.f.Limit != 0 || tc.f.Offset != 0 {
			continue
		}
		if n := count(t, s, tc.f); n != int64(len(tc.want)) {
			t.Errorf("CountTLSRPTReports(%+v) = %d, want %d", tc.f, n, len(tc.want))
		}
	}
	// Count ignores Limit, After and Offset.
	if n := count(t, s, store.ReportFilter{Limit: 1, Offset: 3, After: store.ReportKey{End: day(12), ID: ids["d"]}}); n != 6 {
		t.Errorf("CountTLSRPTReports with limit, after and offset = %d, want 6", n)
	}

	// Keyset pages: each continues after the Key of the previous page's
	// last report, for every filter and page size; the undated report's
	// key is its arrival.
	list := func(f store.ReportFilter) []*store.TLSRPTReport {
		t.Helper()
		got, err := s.TLSRPTReports(t.Context(), f)
		if err != nil {
			t.Fatalf("TLSRPTReports(%+v): %v", f, err)
		}
		return got
	}
	nameOf := func(r *store.TLSRPTReport) string {
		for name, id := range ids {
			if r.ID == id {
				return name
			}
		}
		return "?"
	}
	for _, tc := range tests {
		if tc.f.Limit != 0 || tc.f.Offset != 0 {
			continue
		}
		for _, size := range []int{1, 2, 4} {
			f := tc.f
			f.Limit = size
			var got strings.Builder
			for range 10 {
				page := list(f)
				for _, r := range page {
					got.WriteString(nameOf(r))
				}
				if len(page) < size {
					break
				}
				f.After = page[len(page)-1].Key
			}
			if got.String() != tc.want {
				t.Errorf("TLSRPTReports(%+v) by pages of %d = %q, want %q", tc.f, size, got.String(), tc.want)
			}
		}
	}
	if l := list(store.ReportFilter{Limit: 1}); len(l) != 1 || l[0].Key != (store.ReportKey{End: baseTime().UTC().Truncate(time.Microsecond), ID: ids["e"]}) {
		t.Errorf("the undated report's Key = %+v, want its arrival %v and id %d", l, baseTime(), ids["e"])
	}
	// A report stored between pages, newer than the cursor, is not on the
	// following pages; one older is.
	first := list(store.ReportFilter{Limit: 3}) // e f d
	late := newReport("G", "g", "example.com", day(14), "sts", 1)
	old := newReport("H", "h", "example.com", day(1), "sts", 1)
	ids["g"], ids["h"] = insert(t, s, late)[0].ID, insert(t, s, old)[0].ID
	var rest strings.Builder
	for _, r := range list(store.ReportFilter{After: first[2].Key}) {
		rest.WriteString(nameOf(r))
	}
	if rest.String() != "cbah" {
		t.Errorf("the page after %q, once g (newer) and h (older) were stored = %q, want \"cbah\"", "efd", rest.String())
	}
	if _, err := s.TLSRPTReports(t.Context(), store.ReportFilter{Limit: -1}); err == nil {
		t.Error("TLSRPTReports with a negative limit succeeded")
	}
	// The default page is 100 reports.
	var many []*store.TLSRPTReport
	for i := range 101 {
		many = append(many, newReport("Many", fmt.Sprint(i), "many.example", day(1), "sts", 1))
	}
	insert(t, s, many...)
	if got, err := s.TLSRPTReports(t.Context(), store.ReportFilter{Domain: "many.example"}); err != nil || len(got) != 100 {
		t.Errorf("TLSRPTReports without a limit = %d reports, %v; want 100", len(got), err)
	}
}

// rollupReports returns reports whose rollups vary every key column: two
// domains, three days, three policy types, several result types,
// organizations, sending IPs and MXs.
func rollupReports() []*store.TLSRPTReport {
	g := func(id, domain string, d time.Time, pt string, ok int64, fails ...fail) *store.TLSRPTReport {
		return newReport("Google Inc.", id, domain, d, pt, ok, fails...)
	}
	m := func(id, domain string, d time.Time, pt string, ok int64, fails ...fail) *store.TLSRPTReport {
		return newReport("Microsoft", id, domain, d, pt, ok, fails...)
	}
	l := []*store.TLSRPTReport{
		g("g10", "example.com", day(10), "sts", 100, fail{"certificate-expired", "192.0.2.1", "mx1.example.com", 3},
			fail{"sts-webpki-invalid", "192.0.2.2", "", 2}),
		g("g11", "example.com", day(11), "sts", 200, fail{"certificate-expired", "192.0.2.1", "mx1.example.com", 5}),
		g("g12", "example.com", day(12), "sts", 50),
		m("m10", "example.com", day(10), "sts", 30, fail{"starttls-not-supported", "198.51.100.1", "mx2.example.com", 7}),
		m("m11", "example.com", day(11), "no-policy-found", 40, fail{"validation-failure", "198.51.100.1", "mx2.example.com", 1}),
		m("m12", "example.net", day(12), "tlsa", 9, fail{"tlsa-invalid", "198.51.100.2", "mx.example.net", 4},
			fail{"dnssec-invalid", "198.51.100.2", "mx.example.net", 6}),
		g("g11n", "example.net", day(11), "sts", 11, fail{"certificate-expired", "192.0.2.1", "mx.example.net", 2}),
	}
	// A rollup day given at noon counts for its UTC day; one of zero
	// sessions adds nothing.
	x := newReport("X", "x", "example.net", day(12).Add(12*time.Hour), "sts", 8)
	x.Rollups = append(x.Rollups, store.TLSRPTRollup{Day: day(12), Domain: "example.net", PolicyType: "sts",
		ResultType: "sts-policy-fetch-error", Organization: "X"})
	return append(l, x)
}

// expectRollups computes what TLSRPTRollups should return for q from the
// rollups of the stored reports.
func expectRollups(reports []*store.TLSRPTReport, q store.RollupQuery) []store.RollupRow {
	sums := map[store.RollupRow]int64{}
	for _, r := range reports {
		for _, ru := range r.Rollups {
			d := ru.Day.UTC().Truncate(24 * time.Hour)
			if q.Domain != "" && ru.Domain != q.Domain || q.PolicyType != "" && ru.PolicyType != q.PolicyType ||
				!q.Since.IsZero() && d.Before(q.Since) || !q.Until.IsZero() && !d.Before(q.Until) || ru.Sessions == 0 {
				continue
			}
			var k store.RollupRow
			for _, g := range q.GroupBy {
				switch g {
				case "day":
					k.Day = d
				case "domain":
					k.Domain = ru.Domain
				case "policy_type":
					k.PolicyType = ru.PolicyType
				case "result_type":
					k.ResultType = ru.ResultType
				case "organization":
					k.Organization = ru.Organization
				case "sending_ip":
					k.SendingIP = ru.SendingIP
				case "receiving_mx":
					k.ReceivingMX = ru.ReceivingMX
				}
			}
			sums[k] += ru.Sessions
		}
	}
	if len(q.GroupBy) == 0 {
		return []store.RollupRow{{Sessions: sums[store.RollupRow{}]}}
	}
	out := []store.RollupRow{}
	for k, n := range sums {
		k.Sessions = n
		out = append(out, k)
	}
	sortRollups(out, q.GroupBy)
	return out
}

func sortRollups(rows []store.RollupRow, groupBy []string) {
	slices.SortFunc(rows, func(a, b store.RollupRow) int {
		for _, g := range groupBy {
			var c int
			switch g {
			case "day":
				c = a.Day.Compare(b.Day)
			case "domain":
				c = strings.Compare(a.Domain, b.Domain)
			case "policy_type":
				c = strings.Compare(a.PolicyType, b.PolicyType)
			case "result_type":
				c = strings.Compare(a.ResultType, b.ResultType)
			case "organization":
				c = strings.Compare(a.Organization, b.Organization)
			case "sending_ip":
				c = strings.Compare(a.SendingIP, b.SendingIP)
			case "receiving_mx":
				c = strings.Compare(a.ReceivingMX, b.ReceivingMX)
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func sameRollups(got, want []store.RollupRow) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Day.Equal(w.Day) || !g.Day.IsZero() && g.Day.Location() != time.UTC {
			return false
		}
		g.Day, w.Day = time.Time{}, time.Time{}
		if g != w {
			return false
		}
	}
	return true
}

func testReportRollups(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := reportStore(t, fresh)
	reports := rollupReports()
	insert(t, s, reports[:3]...)
	insert(t, s, reports[3:]...)
	insert(t, s, reports[1], reports[5]) // duplicates add nothing

	groupings := [][]string{
		nil,
		{"day"}, {"domain"}, {"policy_type"}, {"result_type"}, {"organization"}, {"sending_ip"}, {"receiving_mx"},
		{"organization", "sending_ip"}, {"day", "result_type"}, {"result_type", "day"},
		{"domain", "day", "result_type"}, {"receiving_mx", "result_type"},
		{"receiving_mx", "sending_ip", "organization", "result_type", "policy_type", "domain", "day"},
	}
	filters := []store.RollupQuery{
		{},
		{Domain: "example.com"},
		{Domain: "EXAMPLE.NET"},
		{Domain: "example.com", PolicyType: "sts"},
		{PolicyType: "tlsa"},
		{Since: day(11)},
		{Until: day(12)},
		{Domain: "example.com", Since: day(11), Until: day(12)},
		{Domain: "nothing.example"},
		{Since: day(20)},
	}
	for _, f := range filters {
		for _, g := range groupings {
			q := f
			q.GroupBy = g
			got, err := s.TLSRPTRollups(t.Context(), q)
			if err != nil {
				t.Fatalf("TLSRPTRollups(%+v): %v", q, err)
			}
			eq := q
			eq.Domain = strings.ToLower(q.Domain)
			want := expectRollups(reports, eq)
			if !sameRollups(got, want) {
				t.Errorf("TLSRPTRollups(%+v) =\n%+v\nwant\n%+v", q, got, want)
			}
		}
	}
	// The zero-session rollup made no row.
	rows, err := s.TLSRPTRollups(t.Context(), store.RollupQuery{GroupBy: []string{"result_type"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ResultType == "sts-policy-fetch-error" {
			t.Errorf("a rollup of zero sessions shows up: %+v", r)
		}
	}

	for _, tc := range []struct {
		groupBy []string
		mention string
	}{
		{[]string{"day", "bogus"}, `"bogus"`},
		{[]string{"Day"}, `"Day"`},
		{[]string{"sessions"}, `"sessions"`},
		{[]string{"domain; DROP TABLE tlsrpt_daily"}, "DROP"},
		{[]string{"result_type", "day", "result_type"}, `"result_type" listed twice`},
	} {
		_, err := s.TLSRPTRollups(t.Context(), store.RollupQuery{GroupBy: tc.groupBy})
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("TLSRPTRollups(GroupBy %q): error %v, want one naming %s", tc.groupBy, err, tc.mention)
		}
	}
	if got, want := totalSessions(t, s), sessionsOf(reports...); got != want {
		t.Errorf("total sessions %d, want %d", got, want)
	}
}
