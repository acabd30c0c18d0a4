package storetest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// The TLS-RPT part of the suite: store.ReportStore. Reports are built by
// hand here (the suite does not depend on the decoder): newReport writes
// the RFC 8460 JSON of a report with one policy and derives the stored
// fields and rollups from the same numbers.

// reportStore opens a fresh store for the report tests.
func reportStore(t *testing.T, fresh func(t *testing.T) store.Options) store.ReportStore {
	t.Helper()
	return openFresh(t, fresh)
}

// fail is one failure detail of a test report.
type fail struct {
	result, ip, mx string
	n              int64
}

// day returns UTC midnight of 2026-11-dd.
func day(dd int) time.Time { return time.Date(2026, 11, dd, 0, 0, 0, 0, time.UTC) }

// rfcReport is the RFC 8460 §4.4 JSON shape, enough of it for test reports.
type rfcReport struct {
	Org       string `json:"organization-name"`
	DateRange struct {
		Start time.Time `json:"start-datetime"`
		End   time.Time `json:"end-datetime"`
	} `json:"date-range"`
	Contact  string      `json:"contact-info"`
	ReportID string      `json:"report-id"`
	Policies []rfcPolicy `json:"policies"`
}

type rfcPolicy struct {
	Policy struct {
		Type   string   `json:"policy-type"`
		String []string `json:"policy-string"`
		Domain string   `json:"policy-domain"`
		MXHost []string `json:"mx-host"`
	} `json:"policy"`
	Summary struct {
		OK   int64 `json:"total-successful-session-count"`
		Fail int64 `json:"total-failure-session-count"`
	} `json:"summary"`
	Failures []rfcFailure `json:"failure-details"`
}

type rfcFailure struct {
	Result string `json:"result-type"`
	IP     string `json:"sending-mta-ip"`
	MX     string `json:"receiving-mx-hostname"`
	N      int64  `json:"failed-session-count"`
}

// newReport returns a parsed report of org with report id id for one day
// and one policy of domain: ok successful sessions and the failures given.
func newReport(org, id, domain string, d time.Time, policyType string, ok int64, fails ...fail) *store.TLSRPTReport {
	var j rfcReport
	j.Org, j.ReportID, j.Contact = org, id, "tlsrpt@"+strings.ToLower(strings.ReplaceAll(org, " ", ""))+".example"
	j.DateRange.Start, j.DateRange.End = d, d.Add(24*time.Hour-time.Second)
	j.Policies = make([]rfcPolicy, 1)
	p := &j.Policies[0]
	p.Policy.Type, p.Policy.Domain = policyType, domain
	p.Policy.String = []string{"version: STSv1", "mode: testing", "mx: mx1." + domain, "max_age: 86400"}
	p.Policy.MXHost = []string{"mx1." + domain}
	p.Summary.OK = ok

	r := &store.TLSRPTReport{
		Source:           "https",
		SourceDetail:     "192.0.2.1",
		MediaType:        "application/tlsrpt+json",
		Status:           store.ReportOK,
		OrganizationName: org,
		ReportID:         id,
		ContactInfo:      j.Contact,
		StartTime:        j.DateRange.Start,
		EndTime:          j.DateRange.End,
		Domains:          []string{domain},
		Hosted:           true,
		Successful:       ok,
	}
	sp := store.TLSRPTPolicy{Type: policyType, Domain: domain, Strings: p.Policy.String, MXHosts: p.Policy.MXHost, Successful: ok}
	if ok > 0 {
		r.Rollups = append(r.Rollups, store.TLSRPTRollup{Day: d, Domain: domain, PolicyType: policyType,
			ResultType: "success", Organization: org, Sessions: ok})
	}
	for _, f := range fails {
		p.Failures = append(p.Failures, rfcFailure{f.result, f.ip, f.mx, f.n})
		p.Summary.Fail += f.n
		sp.Failures = append(sp.Failures, store.TLSRPTFailure{ResultType: f.result, SendingMTAIP: f.ip,
			ReceivingMX: f.mx, Sessions: f.n})
		r.Rollups = append(r.Rollups, store.TLSRPTRollup{Day: d, Domain: domain, PolicyType: policyType,
			ResultType: f.result, Organization: org, SendingIP: f.ip, ReceivingMX: f.mx, Sessions: f.n})
	}
	sp.Failed, r.Failed = p.Summary.Fail, p.Summary.Fail
	r.Policies = []store.TLSRPTPolicy{sp}
	raw, err := json.Marshal(j)
	if err != nil {
		panic(err) // a struct of strings, numbers and times always marshals
	}
	r.Raw, r.Normalized = raw, raw
	return r
}

// invalidReport is a report that could not be parsed: raw bytes only.
func invalidReport(raw string) *store.TLSRPTReport {
	return &store.TLSRPTReport{
		Source:       "smtp",
		SourceDetail: "reports@sender.example 198.51.100.7",
		Raw:          []byte(raw),
		MediaType:    "application/octet-stream",
		DKIM:         "none",
		Status:       store.ReportInvalid,
		Error:        "line 1, column 1: invalid character 'n' looking for beginning of value",
	}
}

// gzipped returns r with its Raw gzip-compressed, as a sender would send it.
func gzipped(r *store.TLSRPTReport) *store.TLSRPTReport {
	c := *r
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(r.Raw); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	c.Raw = b.Bytes()
	c.MediaType = "application/tlsrpt+gzip"
	return &c
}

func insert(t *testing.T, s store.ReportStore, reports ...*store.TLSRPTReport) []store.InsertResult {
	t.Helper()
	res, err := s.InsertTLSRPT(t.Context(), reports)
	if err != nil {
		t.Fatalf("InsertTLSRPT: %v", err)
	}
	if len(res) != len(reports) {
		t.Fatalf("InsertTLSRPT returned %d results for %d reports", len(res), len(reports))
	}
	return res
}

func count(t *testing.T, s store.ReportStore, f store.ReportFilter) int64 {
	t.Helper()
	n, err := s.CountTLSRPTReports(t.Context(), f)
	if err != nil {
		t.Fatalf("CountTLSRPTReports(%+v): %v", f, err)
	}
	return n
}

// totalSessions is the sum of all rollups.
func totalSessions(t *testing.T, s store.ReportStore) int64 {
	t.Helper()
	rows, err := s.TLSRPTRollups(t.Context(), store.RollupQuery{})
	if err != nil {
		t.Fatalf("TLSRPTRollups: %v", err)
	}
	if len(rows) != 1 {
		t.Fatalf("TLSRPTRollups without GroupBy returned %d rows, want 1", len(rows))
	}
	return rows[0].Sessions
}

// sessionsOf sums the rollups of reports.
func sessionsOf(reports ...*store.TLSRPTReport) int64 {
	var n int64
	for _, r := range reports {
		for _, ru := range r.Rollups {
			n += ru.Sessions
		}
	}
	return n
}

func testReportDedup(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := reportStore(t, fresh)
	google := newReport("Google Inc.", "2026-11-12T00:00:00Z_example.com", "example.com", day(12), "sts", 100,
		fail{"certificate-expired", "209.85.220.41", "mx1.example.com", 3})
	microsoft := newReport("Microsoft Corporation", "133.2026-11-12", "example.com", day(12), "sts", 40)

	if res := insert(t, s); len(res) != 0 {
		t.Errorf("an empty batch returned %d results", len(res))
	}
	first := insert(t, s, google)[0]
	if first.Duplicate || first.ID <= 0 {
		t.Fatalf("first insert = %+v, want a new positive id", first)
	}
	// The same bytes again, then the same report (organization and id)
	// arriving gzip-compressed, by another channel, at another time.
	again := insert(t, s, google)[0]
	other := gzipped(google)
	other.Source, other.ReceivedAt = "smtp", baseTime().Add(time.Hour)
	viaSMTP := insert(t, s, other)[0]
	for _, got := range []store.InsertResult{again, viaSMTP} {
		if got != (store.InsertResult{ID: first.ID, Duplicate: true}) {
			t.Errorf("second insert = %+v, want duplicate of id %d", got, first.ID)
		}
	}
	// An unparsable report: deduplicated by its bytes only.
	junk := insert(t, s, invalidReport("not json"))[0]
	if junk.Duplicate || junk.ID == first.ID {
		t.Fatalf("invalid report = %+v, want a new id", junk)
	}
	if got := insert(t, s, invalidReport("not json"))[0]; got != (store.InsertResult{ID: junk.ID, Duplicate: true}) {
		t.Errorf("same invalid bytes again = %+v, want duplicate of %d", got, junk.ID)
	}
	// Two parsed reports missing an identity are told apart by digest too.
	anon1 := newReport("", "", "example.com", day(13), "sts", 5)
	anon2 := newReport("", "", "example.com", day(14), "sts", 6)

	// Duplicates inside one batch, and of earlier batches: the first copy
	// in the batch is stored.
	ms2 := gzipped(microsoft)
	batch := []*store.TLSRPTReport{microsoft, invalidReport("garbage"), ms2, google, invalidReport("garbage"),
		microsoft, anon1, anon2, anon1}
	res := insert(t, s, batch...)
	want := []struct {
		dup  bool
		same int // index in batch whose id this one has, or -1
	}{{false, -1}, {false, -1}, {true, 0}, {true, -1}, {true, 1}, {true, 0}, {false, -1}, {false, -1}, {true, 6}}
	for i, w := range want {
		if res[i].Duplicate != w.dup {
			t.Errorf("batch report %d: Duplicate = %v, want %v", i, res[i].Duplicate, w.dup)
		}
		if w.same >= 0 && res[i].ID != res[w.same].ID {
			t.Errorf("batch report %d: id %d, want %d (report %d's)", i, res[i].ID, res[w.same].ID, w.same)
		}
	}
	if res[3].ID != first.ID {
		t.Errorf("batch copy of the first report: id %d, want %d", res[3].ID, first.ID)
	}
	ids := map[int64]bool{first.ID: true, junk.ID: true}
	for _, i := range []int{0, 1, 6, 7} {
		if ids[res[i].ID] {
			t.Errorf("batch report %d got id %d, which another report has", i, res[i].ID)
		}
		ids[res[i].ID] = true
	}

	if n := count(t, s, store.ReportFilter{}); n != 6 {
		t.Errorf("%d reports stored, want 6 (google, microsoft, two invalid, two without identity)", n)
	}
	if got, want := totalSessions(t, s), sessionsOf(google, microsoft, anon1, anon2); got != want {
		t.Errorf("rollups sum to %d sessions, want %d: duplicates were counted", got, want)
	}
}

func testReportInvalidInput(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := reportStore(t, fresh)
	good := func() *store.TLSRPTReport {
		return newReport("Org", "r1", "example.com", day(12), "sts", 10, fail{"starttls-not-supported", "192.0.2.9", "mx1.example.com", 2})
	}
	tests := []struct {
		name    string
		change  func(r *store.TLSRPTReport)
		mention string
	}{
		{"status", func(r *store.TLSRPTReport) { r.Status = "fine" }, `"fine"`},
		{"negative summary", func(r *store.TLSRPTReport) { r.Failed = -1 }, "-1"},
		{"negative policy count", func(r *store.TLSRPTReport) { r.Policies[0].Successful = -4 }, "-4"},
		{"negative failure", func(r *store.TLSRPTReport) { r.Policies[0].Failures[0].Sessions = -5 }, "-5"},
		{"negative rollup", func(r *store.TLSRPTReport) { r.Rollups[0].Sessions = -6 }, "-6"},
		{"rollup without day", func(r *store.TLSRPTReport) { r.Rollups[1].Day = time.Time{} }, "rollup 1"},
		{"upper-case domain", func(r *store.TLSRPTReport) { r.Domains = []string{"Example.COM"} }, "Example.COM"},
		{"trailing dot", func(r *store.TLSRPTReport) { r.Domains = []string{"example.com."} }, "example.com."},
		{"digest", func(r *store.TLSRPTReport) { r.Digest = "00ff" }, "00ff"},
	}
	for _, tc := range tests {
		bad := good()
		tc.change(bad)
		other := newReport("Other", "r2", "example.org", day(12), "sts", 1)
		_, err := s.InsertTLSRPT(t.Context(), []*store.TLSRPTReport{other, bad})
		if err == nil {
			t.Errorf("%s: InsertTLSRPT succeeded", tc.name)
			continue
		}
		for _, m := range []string{tc.mention, "report 1", `"Org"`} {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not name %s", tc.name, err, m)
			}
		}
	}
	if _, err := s.InsertTLSRPT(t.Context(), []*store.TLSRPTReport{good(), nil}); err == nil || !strings.Contains(err.Error(), "report 1") {
		t.Errorf("nil report: error %v, want one naming report 1", err)
	}
	// Nothing of a failed batch was written.
	if n := count(t, s, store.ReportFilter{}); n != 0 {
		t.Errorf("%d reports stored after failed batches, want 0", n)
	}
	if n := totalSessions(t, s); n != 0 {
		t.Errorf("rollups hold %d sessions after failed batches, want 0", n)
	}
	// A correct digest is accepted.
	r := good()
	sum := sha256.Sum256(r.Raw)
	r.Digest = hex.EncodeToString(sum[:])
	insert(t, s, r)
}

func testReportByID(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := reportStore(t, fresh)
	ctx := t.Context()
	full := newReport("Google Inc.", "abc", "example.com", day(12), "sts", 1000,
		fail{"certificate-host-mismatch", "209.85.220.41", "mx2.example.com", 7},
		fail{"sts-webpki-invalid", "209.85.220.42", "", 1})
	full.ReceivedAt = baseTime()
	full.SourceDetail = "203.0.113.5:44321"
	full.DKIM = "pass"
	full.Status = store.ReportWarnings
	full.Warnings = []string{`policies[0].policy.mx-host: "MX1.example.com" lower-cased`, "date-range: end before start"}
	full.Domains = []string{"example.com", "example.net"}
	full.Hosted = false
	// A second policy, for another domain, with two failures of its own.
	full.Policies = append(full.Policies, store.TLSRPTPolicy{
		Type: "tlsa", Domain: "example.net", Strings: []string{"3 1 1 abcdef"}, MXHosts: nil,
		Successful: 3, Failed: 4, Failures: []store.TLSRPTFailure{
			{ResultType: "tlsa-invalid", SendingMTAIP: "2001:db8::1", ReceivingMX: "mx.example.net",
				ReceivingHelo: "mx.example.net", ReceivingIP: "2001:db8::25", Sessions: 3,
				ReasonCode: "X509_V_ERR", AdditionalInfo: "https://sender.example/why"},
			{ResultType: "dnssec-invalid", Sessions: 1},
		}})
	full.Policies[0].Failures[0].ReasonCode = "hostname mismatch"
	full.Normalized = []byte(`{"normalized":true}`)

	incompressible := make([]byte, 4096)
	for i := range incompressible {
		incompressible[i] = byte((i * 2654435761) >> 13) //nolint:gosec // truncation intended: no short repeats
	}
	empty := invalidReport("")
	empty.ReceivedAt = baseTime()
	tests := []*store.TLSRPTReport{
		full,
		gzipped(newReport("Org", "gz", "example.com", day(12), "sts", 5)), // stored as received
		invalidReport(string(incompressible)),
		empty,
	}
	res := insert(t, s, tests...)
	for i, want := range tests {
		got, err := s.TLSRPTReportByID(ctx, res[i].ID)
		if err != nil {
			t.Fatalf("TLSRPTReportByID(%d): %v", res[i].ID, err)
		}
		checkReport(t, fmt.Sprintf("report %d", i), got, want, res[i].ID, true)
	}
	_, err := s.TLSRPTReportByID(ctx, 987654)
	wantErr(t, "TLSRPTReportByID(987654)", err, store.ErrNotFound, "987654")
}

// checkReport compares a report read back with the one inserted; full says
// whether Raw, Normalized and Policies are expected.
func checkReport(t *testing.T, what string, got, want *store.TLSRPTReport, id int64, full bool) {
	t.Helper()
	sum := sha256.Sum256(want.Raw)
	if got.ID != id || got.Source != want.Source || got.SourceDetail != want.SourceDetail ||
		got.Digest != hex.EncodeToString(sum[:]) || got.MediaType != want.MediaType || got.DKIM != want.DKIM ||
		got.Status != want.Status || got.Error != want.Error ||
		got.OrganizationName != want.OrganizationName || got.ReportID != want.ReportID ||
		got.ContactInfo != want.ContactInfo || got.Hosted != want.Hosted ||
		got.Successful != want.Successful || got.Failed != want.Failed {
		t.Errorf("%s =\n%+v\nwant\n%+v", what, *got, *want)
	}
	if !slices.Equal(got.Warnings, normStrings(want.Warnings)) || !slices.Equal(got.Domains, normStrings(want.Domains)) {
		t.Errorf("%s: warnings %q domains %q, want %q %q", what, got.Warnings, got.Domains, want.Warnings, want.Domains)
	}
	if !want.ReceivedAt.IsZero() {
		checkTime(t, what+" ReceivedAt", got.ReceivedAt, want.ReceivedAt)
	} else if got.ReceivedAt.IsZero() {
		t.Errorf("%s: ReceivedAt is zero, want the time of insertion", what)
	}
	for _, p := range []struct {
		name      string
		got, want time.Time
	}{{"StartTime", got.StartTime, want.StartTime}, {"EndTime", got.EndTime, want.EndTime}} {
		if p.want.IsZero() != p.got.IsZero() {
			t.Errorf("%s %s = %v, want %v", what, p.name, p.got, p.want)
		} else if !p.want.IsZero() {
			checkTime(t, what+" "+p.name, p.got, p.want)
		}
	}
	if !full {
		if got.Raw != nil || got.Normalized != nil || got.Policies != nil || got.Rollups != nil {
			t.Errorf("%s: listed report carries Raw (%d bytes), Normalized (%d), Policies (%d) or Rollups (%d)",
				what, len(got.Raw), len(got.Normalized), len(got.Policies), len(got.Rollups))
		}
		return
	}
	if !bytes.Equal(got.Raw, want.Raw) || got.Raw == nil {
		t.Errorf("%s: Raw = %d bytes %.40q, want the %d bytes received %.40q", what, len(got.Raw), got.Raw, len(want.Raw), want.Raw)
	}
	if !bytes.Equal(got.Normalized, want.Normalized) {
		t.Errorf("%s: Normalized = %q, want %q", what, got.Normalized, want.Normalized)
	}
	if len(got.Policies) != len(want.Policies) {
		t.Fatalf("%s: %d policies, want %d", what, len(got.Policies), len(want.Policies))
	}
	for i, gp := range got.Policies {
		wp := want.Policies[i]
		if gp.Type != wp.Type || gp.Domain != wp.Domain || !slices.Equal(gp.Strings, normStrings(wp.Strings)) ||
			!slices.Equal(gp.MXHosts, normStrings(wp.MXHosts)) || gp.Successful != wp.Successful ||
			gp.Failed != wp.Failed || !slices.Equal(gp.Failures, wp.Failures) {
			t.Errorf("%s: policy %d =\n%+v\nwant\n%+v", what, i, gp, wp)
		}
	}
}

// normStrings is what a stored string list reads back as: nil becomes empty.
func normStrings(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
