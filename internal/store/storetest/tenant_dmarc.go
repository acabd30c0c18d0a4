package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// The isolation of DMARC reports between tenants: aggregate and failure
// reports of A's domain, of B's, of a domain nobody hosts, and one that
// could not be read. Each scope sees those of the domains it hosts; the
// operator sees all.

// dmarcIsolation holds the ids of the fixture's DMARC reports.
type dmarcIsolation struct {
	reports  map[string]int64 // "a", "b", "u", "bad"
	failures map[string]int64 // "a", "b", "u"
}

func newDMARCIsolation(t *testing.T, s store.Store) *dmarcIsolation {
	x := &dmarcIsolation{reports: map[string]int64{}, failures: map[string]int64{}}
	var (
		reps  []*store.DMARCReport
		fails []*store.DMARCFailure
		names = []string{"a", "b", "u"}
	)
	for i, name := range names {
		r := &dmarcReport{org: "reporter", id: "dmarc-" + name, domain: name + ".example", begin: day(20),
			rows: []store.DMARCRow{dmarcRow("192.0.2.1", int64(10*(i+1)), true)}}
		reps = append(reps, r.report())
		fails = append(fails, &store.DMARCFailure{Source: "smtp", Raw: []byte("failure of " + name), Status: store.ReportOK,
			Domain: name + ".example", FeedbackType: "auth-failure", Incidents: 1, Parsed: []byte("{}")})
	}
	reps = append(reps, &store.DMARCReport{ReceivedAt: baseTime(), Source: "smtp", Raw: []byte("not xml"), Status: store.ReportInvalid,
		Error: "not XML", Pct: -1})
	res, err := s.InsertDMARC(t.Context(), store.DMARCBatch{Reports: reps, Failures: fails})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range append(names, "bad") {
		x.reports[name] = res.Reports[i].ID
	}
	for i, name := range names {
		x.failures[name] = res.Failures[i].ID
	}
	return x
}

func testDMARCIsolation(t *testing.T, x *isolation, d *dmarcIsolation) {
	ctx := t.Context()
	want := map[string][]string{"operator": {"a", "b", "u", "bad"}, "{A}": {"a"}, "{P,A}": {"a"}, "{B}": {"b"}, "{}": nil}
	wantFailures := map[string][]string{"operator": {"a", "b", "u"}, "{A}": {"a"}, "{P,A}": {"a"}, "{B}": {"b"}, "{}": nil}
	names := func(ids map[string]int64, got []int64) []string {
		var out []string
		for _, name := range []string{"a", "b", "u", "bad"} {
			if id, ok := ids[name]; ok && slices.Contains(got, id) {
				out = append(out, name)
			}
		}
		return out
	}
	for _, tn := range x.allScopes {
		for _, f := range []store.DMARCFilter{{}, {Domain: "b.example"}, {Since: day(1)}} {
			l, err := tn.t.DMARCReports(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range l {
				ids = append(ids, r.ID)
			}
			var wantHere []string
			for _, name := range want[tn.name] {
				if f.Domain == "" || name == "b" {
					wantHere = append(wantHere, name)
				}
			}
			same(t, fmt.Sprintf("%s DMARCReports(%+v)", tn.name, f), names(d.reports, ids), wantHere...)
			if n, err := tn.t.CountDMARCReports(ctx, f); err != nil || n != int64(len(wantHere)) {
				t.Errorf("%s CountDMARCReports(%+v) = %d, %v; want %d", tn.name, f, n, err, len(wantHere))
			}
		}
		for name, id := range d.reports {
			_, err := tn.t.DMARCReportByID(ctx, id)
			if slices.Contains(want[tn.name], name) {
				if err != nil {
					t.Errorf("%s DMARCReportByID(%s): %v", tn.name, name, err)
				}
			} else {
				notFound(t, fmt.Sprintf("%s DMARCReportByID(%s)", tn.name, name), err)
			}
		}
		l, err := tn.t.DMARCFailures(ctx, store.DMARCFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, f := range l {
			ids = append(ids, f.ID)
		}
		same(t, tn.name+" DMARCFailures", names(d.failures, ids), wantFailures[tn.name]...)
		for name, id := range d.failures {
			_, err := tn.t.DMARCFailureByID(ctx, id)
			if slices.Contains(wantFailures[tn.name], name) {
				if err != nil {
					t.Errorf("%s DMARCFailureByID(%s): %v", tn.name, name, err)
				}
			} else {
				notFound(t, fmt.Sprintf("%s DMARCFailureByID(%s)", tn.name, name), err)
			}
		}

		// Rollups: of the domains of the scope only.
		rows, err := tn.t.DMARCRollups(ctx, store.DMARCRollupQuery{GroupBy: []string{"domain"}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s:%d", r.Domain, r.Messages))
		}
		wantRollups := map[string]string{"operator": "a.example:10 b.example:20 u.example:30", "{A}": "a.example:10",
			"{P,A}": "a.example:10", "{B}": "b.example:20", "{}": ""}
		if g := strings.Join(got, " "); g != wantRollups[tn.name] {
			t.Errorf("%s DMARCRollups by domain = %q, want %q", tn.name, g, wantRollups[tn.name])
		}
		totals, err := tn.t.DMARCTotals(ctx, store.DMARCTotalsQuery{By: "domain"})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, r := range totals {
			got = append(got, fmt.Sprintf("%s:%d", r.Domain, r.Messages))
		}
		if g := strings.Join(got, " "); g != wantRollups[tn.name] {
			t.Errorf("%s DMARCTotals by domain = %q, want %q", tn.name, g, wantRollups[tn.name])
		}

		// The intake log: each kind's submissions of the scope's domains.
		for kind, ids := range map[string]map[string]int64{store.KindDMARC: d.reports, store.KindDMARCFailure: d.failures} {
			log, err := tn.t.IntakeLog(ctx, store.IntakeQuery{Kind: kind})
			if err != nil {
				t.Fatal(err)
			}
			var logged []int64
			for _, e := range log {
				logged = append(logged, e.ReportID)
			}
			w := want[tn.name]
			if kind == store.KindDMARCFailure {
				w = wantFailures[tn.name]
			}
			same(t, fmt.Sprintf("%s IntakeLog(%s)", tn.name, kind), names(ids, logged), w...)
		}
	}
}
