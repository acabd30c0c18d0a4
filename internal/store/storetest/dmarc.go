package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// DMARC aggregate reports and their rollups, failure reports.

// dmarcReport is a test report: its header, and its rows replayed by Rows,
// whose content digest is the SHA-256 of the rows and header (as the
// decoder's would differ with any field). fail, when set, makes Rows stop
// after emitting every row with that reason (a report broken at its end).
type dmarcReport struct {
	org, id, domain string
	begin           time.Time
	rows            []store.DMARCRow
	warnings        []string
	fail            string
	raw             string // default: made from the fields
	calls           int    // Rows calls
}

func (d *dmarcReport) report() *store.DMARCReport {
	raw := d.raw
	if raw == "" {
		raw = fmt.Sprintf("<feedback org=%q id=%q domain=%q begin=%d rows=%d fail=%q/>", d.org, d.id, d.domain, d.begin.Unix(), len(d.rows), d.fail)
		if len(d.rows) > 0 {
			raw += fmt.Sprintf("%v", d.rows[0])
		}
	}
	r := &store.DMARCReport{
		ReceivedAt: baseTime(), Source: "import", SourceDetail: "test", Raw: []byte(raw), MediaType: "text/xml",
		Status: store.ReportOK, OrgName: d.org, OrgEmail: "dmarc@" + d.org, ReportID: d.id, Domain: d.domain, P: "none", Pct: -1,
		Warnings: d.warnings,
	}
	if len(d.warnings) > 0 {
		r.Status = store.ReportWarnings
	}
	if !d.begin.IsZero() {
		r.StartTime, r.EndTime = d.begin, d.begin.Add(24*time.Hour-time.Second)
	}
	r.Rows = func(emit func(*store.DMARCRow) error) (store.DMARCEnd, error) {
		d.calls++
		h := sha256.New()
		fmt.Fprintf(h, "%s|%s|%s|%d\n", d.org, d.id, d.domain, d.begin.Unix())
		end := store.DMARCEnd{Warnings: d.warnings}
		for i := range d.rows {
			row := d.rows[i]
			fmt.Fprintf(h, "%+v\n", row)
			if err := emit(&row); err != nil {
				return store.DMARCEnd{}, err
			}
			end.Records++
			end.Messages += row.Messages
		}
		if d.fail != "" {
			return store.DMARCEnd{Warnings: d.warnings, Error: d.fail}, nil
		}
		end.ContentDigest = hex.EncodeToString(h.Sum(nil))
		return end, nil
	}
	return r
}

// dmarcRow is a record row from ip with n messages, passing DKIM aligned
// when pass is set, failing both otherwise.
func dmarcRow(ip string, n int64, pass bool) store.DMARCRow {
	r := store.DMARCRow{SourceIP: ip, HeaderFrom: "example.com", EnvelopeFrom: "example.com", Disposition: "none",
		DKIM: "fail", SPF: "fail", DKIMDomain: "example.com", DKIMSelector: "s1", DKIMResult: "fail",
		SPFDomain: "example.com", SPFResult: "softfail", Messages: n}
	if pass {
		r.DKIM, r.DKIMResult, r.DKIMAligned = "pass", "pass", true
	}
	return r
}

func insertDMARC(t *testing.T, s store.DMARCStore, reports ...*store.DMARCReport) []store.DMARCResult {
	t.Helper()
	res, err := s.InsertDMARC(t.Context(), store.DMARCBatch{Reports: reports})
	if err != nil {
		t.Fatalf("InsertDMARC: %v", err)
	}
	if len(res.Reports) != len(reports) {
		t.Fatalf("InsertDMARC: %d results for %d reports", len(res.Reports), len(reports))
	}
	return res.Reports
}

// dmarcTotal sums the messages of the rollups of q.
func dmarcTotal(t *testing.T, s store.DMARCReader, q store.DMARCRollupQuery) int64 {
	t.Helper()
	rows, err := s.DMARCRollups(t.Context(), q)
	if err != nil {
		t.Fatalf("DMARCRollups(%+v): %v", q, err)
	}
	var n int64
	for _, r := range rows {
		n += r.Messages
	}
	return n
}

func testDMARCStore(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	a := &dmarcReport{org: "google.com", id: "r1", domain: "example.com", begin: day(3),
		rows: []store.DMARCRow{dmarcRow("192.0.2.1", 10, true), dmarcRow("192.0.2.2", 3, false), dmarcRow("192.0.2.1", 5, true)}}
	res := insertDMARC(t, s, a.report())
	if r := res[0]; r.ID == 0 || r.Duplicate || r.ConflictOf != 0 || r.Status != store.ReportOK || r.Records != 3 || r.Messages != 18 {
		t.Fatalf("first insert: %+v", r)
	}
	got, err := s.DMARCReportByID(ctx, res[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := a.report()
	if string(got.Raw) != string(want.Raw) || got.OrgName != "google.com" || got.ReportID != "r1" || got.Domain != "example.com" ||
		got.Records != 3 || got.Messages != 18 || got.ContentDigest == "" || got.Pct != -1 || got.P != "none" || got.Hosted {
		t.Errorf("DMARCReportByID = %+v", got)
	}
	checkTime(t, "StartTime", got.StartTime, day(3))
	checkTime(t, "ReceivedAt", got.ReceivedAt, baseTime())

	// Rollups: summed by key, on the day of the middle of the period.
	rows, err := s.DMARCRollups(ctx, store.DMARCRollupQuery{GroupBy: []string{"day", "domain", "reporter", "source_ip", "dkim", "dkim_aligned"}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s %v %d", r.Day.Format(time.DateOnly), r.Domain, r.Reporter, r.SourceIP, r.DKIM, r.DKIMAligned, r.Messages))
	}
	wantLines := []string{"2026-11-03 example.com google.com 192.0.2.1 pass true 15", "2026-11-03 example.com google.com 192.0.2.2 fail false 3"}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("rollups = %q, want %q", lines, wantLines)
	}

	// The same bytes: a duplicate, its records not even read.
	calls := a.calls
	res = insertDMARC(t, s, a.report())
	if !res[0].Duplicate || res[0].ID != got.ID || res[0].Messages != 18 || a.calls != calls {
		t.Errorf("same bytes again: %+v, %d more Rows calls", res[0], a.calls-calls)
	}
	// The same content in other bytes (gzip instead of XML, say): a
	// duplicate.
	again := *a
	again.raw = "other bytes, same report"
	res = insertDMARC(t, s, again.report())
	if !res[0].Duplicate || res[0].ID != got.ID {
		t.Errorf("same content again: %+v", res[0])
	}
	// Another content under the same identity: kept aside, flagged, not
	// counted; its copy is a duplicate of it.
	changed := *a
	changed.rows = []store.DMARCRow{dmarcRow("198.51.100.7", 1000, false)}
	res = insertDMARC(t, s, changed.report())
	conflict := res[0]
	if conflict.Duplicate || conflict.ConflictOf != got.ID || conflict.ID == got.ID || conflict.Messages != 1000 {
		t.Errorf("conflicting report: %+v, want stored aside as a conflict of %d", conflict, got.ID)
	}
	if n := dmarcTotal(t, s, store.DMARCRollupQuery{}); n != 18 {
		t.Errorf("total messages after a conflict = %d, want 18 (the conflict not counted)", n)
	}
	changed.raw = "the conflicting report in other bytes"
	if res = insertDMARC(t, s, changed.report()); !res[0].Duplicate || res[0].ID != conflict.ID {
		t.Errorf("the conflicting report again: %+v, want a duplicate of %d", res[0], conflict.ID)
	}
	l, err := s.DMARCReports(ctx, store.DMARCFilter{Status: store.DMARCConflict})
	if err != nil || len(l) != 1 || l[0].ID != conflict.ID || l[0].ConflictOf != got.ID {
		t.Errorf("DMARCReports(conflict) = %v, %v", l, err)
	}
	if n, err := s.CountDMARCReports(ctx, store.DMARCFilter{}); err != nil || n != 2 {
		t.Errorf("CountDMARCReports = %d, %v; want 2", n, err)
	}
	if n, err := s.CountDMARCReports(ctx, store.DMARCFilter{Status: store.ReportOK}); err != nil || n != 1 {
		t.Errorf("CountDMARCReports(ok) = %d, %v; want 1 (conflicts apart)", n, err)
	}

	// Two copies in one batch: the first is stored, the second a
	// duplicate of it.
	b := &dmarcReport{org: "yahoo.com", id: "y1", domain: "example.org", begin: day(4), rows: []store.DMARCRow{dmarcRow("192.0.2.9", 7, true)}}
	res = insertDMARC(t, s, b.report(), b.report())
	if res[0].Duplicate || !res[1].Duplicate || res[1].ID != res[0].ID {
		t.Errorf("two copies in a batch: %+v", res)
	}
	if n := dmarcTotal(t, s, store.DMARCRollupQuery{Domain: "EXAMPLE.org."}); n != 7 {
		t.Errorf("messages of example.org = %d, want 7", n)
	}
	if n := dmarcTotal(t, s, store.DMARCRollupQuery{Since: day(4), Until: day(5)}); n != 7 {
		t.Errorf("messages of day 4 = %d, want 7", n)
	}
	if _, err := s.DMARCRollups(ctx, store.DMARCRollupQuery{GroupBy: []string{"nope"}}); !errors.Is(err, store.ErrInvalidArg) {
		t.Errorf("unknown group-by: %v", err)
	}

	// Lists: newest period first; by domain.
	l, err = s.DMARCReports(ctx, store.DMARCFilter{})
	if err != nil || len(l) != 3 || l[0].OrgName != "yahoo.com" {
		t.Errorf("DMARCReports = %v, %v", l, err)
	}
	l, err = s.DMARCReports(ctx, store.DMARCFilter{Domain: "example.org"})
	if err != nil || len(l) != 1 || l[0].Raw != nil {
		t.Errorf("DMARCReports(example.org) = %v, %v", l, err)
	}
	if _, err := s.DMARCReportByID(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DMARCReportByID(9999): %v", err)
	}
}

func testDMARCInvalid(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	// A header that could not be read: kept with its reason.
	bad := &store.DMARCReport{Source: "smtp", Raw: []byte("<html>"), Status: store.ReportInvalid, Error: "no <feedback> element", Pct: -1}
	res := insertDMARC(t, s, bad)
	if res[0].Status != store.ReportInvalid || res[0].Error != "no <feedback> element" {
		t.Errorf("invalid header: %+v", res[0])
	}
	if res = insertDMARC(t, s, bad); !res[0].Duplicate {
		t.Errorf("invalid header again: %+v, want a duplicate (same bytes)", res[0])
	}
	// Records that cannot be read, after more rows than are summed in
	// memory: nothing of it counts, and its identity stays free.
	var rows []store.DMARCRow
	for i := range 25000 {
		rows = append(rows, dmarcRow(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), 1, i%2 == 0))
	}
	broken := &dmarcReport{org: "big", id: "b1", domain: "example.com", begin: day(5), rows: rows, fail: "record[25000]: count missing"}
	res = insertDMARC(t, s, broken.report())
	if res[0].Status != store.ReportInvalid || res[0].Error != broken.fail || res[0].Records != 0 || res[0].Messages != 0 {
		t.Errorf("broken records: %+v", res[0])
	}
	if n := dmarcTotal(t, s, store.DMARCRollupQuery{}); n != 0 {
		t.Errorf("messages counted of a broken report: %d", n)
	}
	// The same report whole: stored and counted across several flushes,
	// the rows of one key summed.
	whole := *broken
	whole.fail = ""
	whole.rows = append(slices.Clone(rows), rows[:100]...)
	res = insertDMARC(t, s, whole.report())
	if res[0].Status != store.ReportOK || res[0].Duplicate || res[0].ConflictOf != 0 || res[0].Messages != 25100 || res[0].Records != 25100 {
		t.Errorf("the report whole: %+v", res[0])
	}
	if n := dmarcTotal(t, s, store.DMARCRollupQuery{}); n != 25100 {
		t.Errorf("messages = %d, want 25100", n)
	}
	keys, err := s.DMARCRollups(ctx, store.DMARCRollupQuery{GroupBy: []string{"source_ip"}})
	if err != nil || len(keys) != 25000 || keys[0].Messages != 2 {
		t.Errorf("rollups by source: %d rows (first %+v), %v; want 25000, the first with 2", len(keys), keys[0], err)
	}
	l, err := s.DMARCReports(ctx, store.DMARCFilter{Status: store.ReportInvalid})
	if err != nil || len(l) != 2 {
		t.Errorf("invalid reports: %v, %v", l, err)
	}
	// An error of Rows fails the batch: nothing of it is stored.
	errRows := errors.New("input went away")
	gone := (&dmarcReport{org: "gone", id: "g1", domain: "example.net", begin: day(6), rows: rows[:10]}).report()
	gone.Rows = func(emit func(*store.DMARCRow) error) (store.DMARCEnd, error) { return store.DMARCEnd{}, errRows }
	ok := (&dmarcReport{org: "fine", id: "f1", domain: "example.net", begin: day(6), rows: rows[:10]}).report()
	if _, err := s.InsertDMARC(ctx, store.DMARCBatch{Reports: []*store.DMARCReport{ok, gone}}); !errors.Is(err, errRows) {
		t.Errorf("InsertDMARC with a failing Rows: %v", err)
	}
	if n, _ := s.CountDMARCReports(ctx, store.DMARCFilter{Domain: "example.net"}); n != 0 {
		t.Errorf("%d reports of a failed batch stored", n)
	}
	// Invalid input fails the batch before anything is written.
	for name, r := range map[string]*store.DMARCReport{
		"status":       {Status: "fine", Raw: []byte("x")},
		"no rows":      {Status: store.ReportOK, Raw: []byte("x")},
		"upper case":   {Status: store.ReportInvalid, Raw: []byte("x"), Domain: "Example.com"},
		"pct":          {Status: store.ReportInvalid, Raw: []byte("x"), Pct: 101},
		"wrong digest": {Status: store.ReportInvalid, Raw: []byte("x"), Digest: "00"},
	} {
		if _, err := s.InsertDMARC(ctx, store.DMARCBatch{Reports: []*store.DMARCReport{r}}); err == nil {
			t.Errorf("%s: InsertDMARC accepted %+v", name, r)
		}
	}
	neg := (&dmarcReport{org: "neg", id: "n", domain: "example.net", rows: []store.DMARCRow{dmarcRow("192.0.2.1", -1, true)}}).report()
	if _, err := s.InsertDMARC(ctx, store.DMARCBatch{Reports: []*store.DMARCReport{neg}}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative count: %v", err)
	}
}

func testDMARCFailures(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	f := &store.DMARCFailure{ReceivedAt: baseTime(), Source: "smtp", SourceDetail: "from=<a@b>", Raw: []byte("From: x\r\n\r\nbody"),
		Status: store.ReportWarnings, Warnings: []string{"feedback-report/Version: 1.0"}, Domain: "example.com", Reporter: "google.com",
		FeedbackType: "auth-failure", AuthFailure: "dmarc", SourceIP: "192.0.2.1", ArrivalDate: day(2), Incidents: 1,
		IdentityAlignment: []string{"none"}, Parsed: []byte(`{"original":{"subject":"secret"}}`)}
	agg := (&dmarcReport{org: "o", id: "1", domain: "example.com", begin: day(2), rows: []store.DMARCRow{dmarcRow("192.0.2.1", 1, true)}}).report()
	res, err := s.InsertDMARC(ctx, store.DMARCBatch{Reports: []*store.DMARCReport{agg}, Failures: []*store.DMARCFailure{f, f}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 2 || res.Failures[0].Duplicate || !res.Failures[1].Duplicate || res.Failures[0].ID != res.Failures[1].ID {
		t.Errorf("failure results = %+v", res.Failures)
	}
	l, err := s.DMARCFailures(ctx, store.DMARCFilter{Domain: "example.com"})
	if err != nil || len(l) != 1 || l[0].Raw != nil || l[0].Parsed != nil || l[0].AuthFailure != "dmarc" || l[0].Reporter != "google.com" {
		t.Fatalf("DMARCFailures = %+v, %v", l, err)
	}
	checkTime(t, "ArrivalDate", l[0].ArrivalDate, day(2))
	got, err := s.DMARCFailureByID(ctx, l[0].ID)
	if err != nil || string(got.Raw) != string(f.Raw) || string(got.Parsed) != string(f.Parsed) || got.Sealed != "" ||
		!slices.Equal(got.IdentityAlignment, []string{"none"}) || !slices.Equal(got.Warnings, f.Warnings) {
		t.Errorf("DMARCFailureByID = %+v, %v", got, err)
	}
	if l, _ := s.DMARCFailures(ctx, store.DMARCFilter{Domain: "other.example"}); len(l) != 0 {
		t.Errorf("failures of another domain: %v", l)
	}

	// The intake log has a row per submission, with its kind.
	log, err := s.Scoped(store.Scope{Operator: true}).IntakeLog(ctx, store.IntakeQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got2 []string
	for _, e := range log {
		got2 = append(got2, fmt.Sprintf("%s %s %s", e.Kind, e.Outcome, strings.Join(e.Domains, ",")))
	}
	want := []string{"dmarc-failure duplicate example.com", "dmarc-failure stored example.com", "dmarc stored example.com"}
	if !slices.Equal(got2, want) {
		t.Errorf("intake log = %q, want %q", got2, want)
	}
	if log, _ := s.Scoped(store.Scope{Operator: true}).IntakeLog(ctx, store.IntakeQuery{Kind: store.KindDMARC}); len(log) != 1 || log[0].ReportID != res.Reports[0].ID {
		t.Errorf("intake log of kind dmarc = %+v", log)
	}
}
