package tlsrptstats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/pgtest"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// TestMain stops the throwaway PostgreSQL server, if a test started one.
func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn on a fresh SQLite store and a fresh PostgreSQL store;
// the PostgreSQL subtest skips, saying why, when PostgreSQL is not
// installed.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for _, db := range []struct {
		name string
		opts func(t *testing.T) store.Options
	}{
		{"sqlite", func(t *testing.T) store.Options { return store.Options{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) store.Options { return store.Options{URL: pgtest.NewDatabase(t)} }},
	} {
		t.Run(db.name, func(t *testing.T) {
			st, err := store.Open(t.Context(), slog.New(slog.DiscardHandler), db.opts(t))
			if err != nil {
				t.Fatalf("store.Open: %v", err)
			}
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			fn(t, st)
		})
	}
}

// failure is one failure detail of a test report.
type failure struct {
	result, ip, mx string
	n              int64
}

func day(dd int) time.Time { return time.Date(2026, 11, dd, 0, 0, 0, 0, time.UTC) }

// report builds a parsed report of one policy, with the rollups the intake
// would compute: the successful sessions (no IP, no MX) and one rollup per
// failure detail. Raw is a stand-in: the store only keeps it.
func report(org string, d time.Time, domain, policyType string, ok int64, fails ...failure) *store.TLSRPTReport {
	id := fmt.Sprintf("%s/%s/%s/%s/%d/%v", org, d.Format(time.DateOnly), domain, policyType, ok, fails)
	r := &store.TLSRPTReport{
		Source: "import", Raw: []byte(`{"report-id":` + fmt.Sprintf("%q", id) + `}`), Status: store.ReportOK,
		OrganizationName: org, ReportID: id, StartTime: d, EndTime: d.Add(24*time.Hour - time.Second),
		Domains: []string{domain}, Successful: ok,
	}
	p := store.TLSRPTPolicy{Type: policyType, Domain: domain, Successful: ok}
	if ok > 0 {
		r.Rollups = append(r.Rollups, store.TLSRPTRollup{Day: d, Domain: domain, PolicyType: policyType,
			ResultType: "success", Organization: org, Sessions: ok})
	}
	for _, f := range fails {
		p.Failed += f.n
		p.Failures = append(p.Failures, store.TLSRPTFailure{ResultType: f.result, SendingMTAIP: f.ip, ReceivingMX: f.mx, Sessions: f.n})
		r.Rollups = append(r.Rollups, store.TLSRPTRollup{Day: d, Domain: domain, PolicyType: policyType,
			ResultType: f.result, Organization: org, SendingIP: f.ip, ReceivingMX: f.mx, Sessions: f.n})
	}
	r.Failed = p.Failed
	r.Policies = []store.TLSRPTPolicy{p}
	return r
}

func insert(t *testing.T, st store.ReportStore, reports ...*store.TLSRPTReport) {
	t.Helper()
	res, err := st.InsertTLSRPT(t.Context(), reports)
	if err != nil {
		t.Fatalf("InsertTLSRPT: %v", err)
	}
	for i, r := range res {
		if r.Duplicate {
			t.Fatalf("test report %d is a duplicate", i)
		}
	}
}

// summaryReports: two domains, three days, three senders.
func summaryReports() []*store.TLSRPTReport {
	return []*store.TLSRPTReport{
		report("Google Inc.", day(10), "example.com", "sts", 1000,
			failure{"certificate-expired", "192.0.2.1", "mx1.example.com", 3},
			failure{"sts-webpki-invalid", "192.0.2.2", "", 2}),
		report("Google Inc.", day(11), "example.com", "sts", 500,
			failure{"certificate-expired", "192.0.2.1", "mx1.example.com", 4}),
		report("Microsoft", day(11), "example.com", "sts", 300,
			failure{"starttls-not-supported", "198.51.100.1", "mx2.example.com", 10}),
		report("Microsoft", day(12), "example.net", "sts", 50,
			failure{"certificate-host-mismatch", "198.51.100.1", "mx.example.net", 1}),
		report("Yahoo", day(12), "example.com", "no-policy-found", 20),
	}
}

// wantRow is a row in the compact form the tests write expectations in.
type wantRow struct {
	key        string // the grouping's key fields joined by "|"
	ok, failed int64
	failures   string // "type=n,type=n", most first
}

func rowKey(by string, r tlsrptstats.Row) string {
	switch by {
	case tlsrptstats.ByResult:
		return r.ResultType
	case tlsrptstats.BySource:
		return r.Organization + "|" + r.SendingIP
	case tlsrptstats.ByMX:
		return r.ReceivingMX
	case tlsrptstats.ByDay:
		return r.Day.Format(time.DateOnly)
	case tlsrptstats.ByDomain:
		return r.Domain
	}
	return "?"
}

func compact(by string, rows []tlsrptstats.Row) []wantRow {
	out := []wantRow{}
	for _, r := range rows {
		var fs []string
		for _, f := range r.Failures {
			fs = append(fs, fmt.Sprintf("%s=%d", f.ResultType, f.Sessions))
		}
		out = append(out, wantRow{rowKey(by, r), r.Successful, r.Failed, strings.Join(fs, ",")})
	}
	return out
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		reports := summaryReports()
		insert(t, st, reports[:2]...)
		insert(t, st, reports[2:]...)
		tests := []struct {
			name         string
			q            tlsrptstats.Query
			ok, failed   int64
			rows         []wantRow
			since, until time.Time
		}{
			{"totals", tlsrptstats.Query{}, 1870, 20, []wantRow{}, time.Time{}, time.Time{}},
			{"result", tlsrptstats.Query{By: "result"}, 1870, 20, []wantRow{
				{"starttls-not-supported", 0, 10, ""},
				{"certificate-expired", 0, 7, ""},
				{"sts-webpki-invalid", 0, 2, ""},
				{"certificate-host-mismatch", 0, 1, ""},
				{"success", 1870, 0, ""},
			}, time.Time{}, time.Time{}},
			{"source", tlsrptstats.Query{By: "source"}, 1870, 20, []wantRow{
				{"Microsoft|198.51.100.1", 0, 11, "starttls-not-supported=10,certificate-host-mismatch=1"},
				{"Google Inc.|192.0.2.1", 0, 7, "certificate-expired=7"},
				{"Google Inc.|192.0.2.2", 0, 2, "sts-webpki-invalid=2"},
				{"Google Inc.|", 1500, 0, ""},
				{"Microsoft|", 350, 0, ""},
				{"Yahoo|", 20, 0, ""},
			}, time.Time{}, time.Time{}},
			{"mx of one domain", tlsrptstats.Query{Domain: "Example.COM.", By: "mx"}, 1820, 19, []wantRow{
				{"mx2.example.com", 0, 10, "starttls-not-supported=10"},
				{"mx1.example.com", 0, 7, "certificate-expired=7"},
				{"", 1820, 2, "sts-webpki-invalid=2"},
			}, time.Time{}, time.Time{}},
			{"day", tlsrptstats.Query{By: "day"}, 1870, 20, []wantRow{
				{"2026-11-10", 1000, 5, "certificate-expired=3,sts-webpki-invalid=2"},
				{"2026-11-11", 800, 14, "starttls-not-supported=10,certificate-expired=4"},
				{"2026-11-12", 70, 1, "certificate-host-mismatch=1"},
			}, time.Time{}, time.Time{}},
			{"domain", tlsrptstats.Query{By: "domain"}, 1870, 20, []wantRow{
				{"example.com", 1820, 19, "starttls-not-supported=10,certificate-expired=7,sts-webpki-invalid=2"},
				{"example.net", 50, 1, "certificate-host-mismatch=1"},
			}, time.Time{}, time.Time{}},
			// Bounds widen to whole UTC days.
			{"within one day", tlsrptstats.Query{Since: day(11).Add(5 * time.Hour), Until: day(11).Add(6 * time.Hour), By: "domain"},
				800, 14, []wantRow{{"example.com", 800, 14, "starttls-not-supported=10,certificate-expired=4"}},
				day(11), day(12)},
			{"from a day on", tlsrptstats.Query{Since: day(12), By: "day"}, 70, 1,
				[]wantRow{{"2026-11-12", 70, 1, "certificate-host-mismatch=1"}}, day(12), time.Time{}},
			{"until midnight excludes that day", tlsrptstats.Query{Until: day(11)}, 1000, 5, []wantRow{}, time.Time{}, day(11)},
			{"nothing there", tlsrptstats.Query{Domain: "nothing.example", By: "source"}, 0, 0, []wantRow{}, time.Time{}, time.Time{}},
		}
		for _, tc := range tests {
			sum, err := tlsrptstats.Summarize(t.Context(), st, tc.q)
			if err != nil {
				t.Fatalf("%s: Summarize: %v", tc.name, err)
			}
			if sum.TotalSuccessful != tc.ok || sum.TotalFailed != tc.failed {
				t.Errorf("%s: totals %d successful, %d failed; want %d, %d", tc.name, sum.TotalSuccessful, sum.TotalFailed, tc.ok, tc.failed)
			}
			if got := compact(tc.q.By, sum.Rows); !slices.Equal(got, tc.rows) {
				t.Errorf("%s: rows\n%+v\nwant\n%+v", tc.name, got, tc.rows)
			}
			if !sum.Since.Equal(tc.since) || !sum.Until.Equal(tc.until) {
				t.Errorf("%s: period [%v, %v), want [%v, %v)", tc.name, sum.Since, sum.Until, tc.since, tc.until)
			}
			// The rows add up to the totals, and the shares to 1.
			var ok, failed int64
			var share float64
			for _, r := range sum.Rows {
				ok, failed, share = ok+r.Successful, failed+r.Failed, share+r.FailureShare
				var byType int64
				for _, f := range r.Failures {
					byType += f.Sessions
				}
				if tc.q.By != "result" && byType != r.Failed {
					t.Errorf("%s: row %s: failures by type sum to %d, want %d", tc.name, rowKey(tc.q.By, r), byType, r.Failed)
				}
				if n := r.Successful + r.Failed; n > 0 && r.FailureRate != float64(r.Failed)/float64(n) {
					t.Errorf("%s: row %s: failure rate %v, want %d/%d", tc.name, rowKey(tc.q.By, r), r.FailureRate, r.Failed, n)
				}
			}
			if len(sum.Rows) > 0 && (ok != sum.TotalSuccessful || failed != sum.TotalFailed) {
				t.Errorf("%s: rows sum to %d/%d, totals are %d/%d", tc.name, ok, failed, sum.TotalSuccessful, sum.TotalFailed)
			}
			if sum.TotalFailed > 0 && len(sum.Rows) > 0 && (share < 0.999999 || share > 1.000001) {
				t.Errorf("%s: failure shares sum to %v, want 1", tc.name, share)
			}
		}
	})
}

func TestSummarizeJSON(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		insert(t, st, summaryReports()...)
		sum, err := tlsrptstats.Summarize(t.Context(), st, tlsrptstats.Query{Domain: "example.net", Since: day(12), Until: day(13), By: "source"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sum)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"domain":"example.net","since":"2026-11-12T00:00:00Z","until":"2026-11-13T00:00:00Z","by":"source",` +
			`"total_successful_sessions":50,"total_failed_sessions":1,"rows":[` +
			`{"organization":"Microsoft","sending_ip":"198.51.100.1","successful_sessions":0,"failed_sessions":1,` +
			`"failure_rate":1,"failure_share":1,"failures_by_result":[{"result_type":"certificate-host-mismatch","sessions":1}]},` +
			`{"organization":"Microsoft","successful_sessions":50,"failed_sessions":0,"failure_rate":0,"failure_share":0}]}`
		if string(b) != want {
			t.Errorf("JSON =\n%s\nwant\n%s", b, want)
		}
	})
}

func TestSummarizeInvalid(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		for _, tc := range []struct {
			q       tlsrptstats.Query
			mention string
		}{
			{tlsrptstats.Query{By: "sender"}, `"sender"`},
			{tlsrptstats.Query{Since: day(12), Until: day(12)}, "2026-11-12"},
			{tlsrptstats.Query{Since: day(12), Until: day(11)}, "2026-11-11"},
		} {
			_, err := tlsrptstats.Summarize(t.Context(), st, tc.q)
			if !errors.Is(err, tlsrptstats.ErrInvalidQuery) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Summarize(%+v): error %v, want ErrInvalidQuery naming %s", tc.q, err, tc.mention)
			}
		}
	})
}

// TestSummarizeBy: the summaries side by side are those of Summarize, in
// the order asked; an invalid grouping fails them all.
func TestSummarizeBy(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		insert(t, st, summaryReports()...)
		q := tlsrptstats.Query{Since: day(1), Until: day(30), By: tlsrptstats.ByMX}
		bys := []string{tlsrptstats.ByDomain, tlsrptstats.ByResult, tlsrptstats.BySource, tlsrptstats.ByDay, tlsrptstats.ByNone}
		got, err := tlsrptstats.SummarizeBy(t.Context(), st, q, bys...)
		if err != nil {
			t.Fatal(err)
		}
		for i, by := range bys {
			qq := q
			qq.By = by
			want, err := tlsrptstats.Summarize(t.Context(), st, qq)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("SummarizeBy, %q: %s\nwant %s", by, g, w)
			}
		}
		if _, err := tlsrptstats.SummarizeBy(t.Context(), st, q, tlsrptstats.ByResult, "sender"); !errors.Is(err, tlsrptstats.ErrInvalidQuery) {
			t.Errorf("SummarizeBy(result, sender): error %v, want ErrInvalidQuery", err)
		}
	})
}

// TestSummarizeDetailExcess: a report whose failure details add up to more
// than its total (Mail.ru) counts its total in the totals and its details
// in the rows.
func TestSummarizeDetailExcess(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) { testDetailExcess(t, st) })
}

func testDetailExcess(t *testing.T, st store.Store) {
	day := time.Date(2024, 2, 22, 0, 0, 0, 0, time.UTC)
	rep := &store.TLSRPTReport{
		Source: "import", Raw: []byte(`{"report":"excess"}`), Status: store.ReportWarnings,
		OrganizationName: "Mail.ru", ReportID: "excess-1", StartTime: day, EndTime: day.Add(24 * time.Hour),
		Domains: []string{"example.com"}, Failed: 1,
		Rollups: []store.TLSRPTRollup{
			{Day: day, Domain: "example.com", PolicyType: "sts", ResultType: "sts-policy-fetch-error", Organization: "Mail.ru", Sessions: 2},
			{Day: day, Domain: "example.com", PolicyType: "sts", ResultType: "detail-excess", Organization: "Mail.ru", Sessions: 1},
		},
	}
	if _, err := st.InsertTLSRPT(context.Background(), []*store.TLSRPTReport{rep}); err != nil {
		t.Fatal(err)
	}
	sum, err := tlsrptstats.Summarize(context.Background(), st, tlsrptstats.Query{By: tlsrptstats.ByResult})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalFailed != 1 || sum.DetailExcess != 1 || len(sum.Rows) != 1 || sum.Rows[0].Failed != 2 {
		t.Fatalf("summary %+v, want total 1, excess 1, one row of 2 detailed failures", sum)
	}
}
