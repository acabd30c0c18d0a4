package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

func TestRollups(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	received := time.Date(2026, 11, 5, 13, 4, 5, 0, time.UTC)
	sts := func(domain string, succ, fail int64, details ...tlsrpt.FailureDetail) tlsrpt.PolicyResult {
		return tlsrpt.PolicyResult{
			Policy:         tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: domain},
			Summary:        tlsrpt.Summary{Successful: succ, Failure: fail},
			FailureDetails: details,
		}
	}
	fd := func(result, ip, mx string, n int64) tlsrpt.FailureDetail {
		return tlsrpt.FailureDetail{ResultType: result, SendingMTAIP: ip, ReceivingMXHostname: mx, FailedSessionCount: n}
	}
	row := func(d time.Time, domain, result, ip, mx string, n int64) store.TLSRPTRollup {
		return store.TLSRPTRollup{Day: d, Domain: domain, PolicyType: "sts", ResultType: result,
			Organization: "Org", SendingIP: ip, ReceivingMX: mx, Sessions: n}
	}
	tests := []struct {
		name     string
		start    time.Time
		policies []tlsrpt.PolicyResult
		want     []store.TLSRPTRollup
		warnings int
	}{{
		name:  "RFC 8460 example: details add up",
		start: day.Add(5 * time.Hour),
		policies: []tlsrpt.PolicyResult{sts("company-y.example", 5326, 303,
			fd("certificate-expired", "2001:db8:abcd:12::1", "mx1.mail.company-y.example", 100),
			fd("starttls-not-supported", "2001:db8:abcd:13::1", "mx2.mail.company-y.example", 200),
			fd("validation-failure", "198.51.100.62", "mx-backup.mail.company-y.example", 3))},
		want: []store.TLSRPTRollup{
			row(day, "company-y.example", "certificate-expired", "2001:db8:abcd:12::1", "mx1.mail.company-y.example", 100),
			row(day, "company-y.example", "starttls-not-supported", "2001:db8:abcd:13::1", "mx2.mail.company-y.example", 200),
			row(day, "company-y.example", "success", "", "", 5326),
			row(day, "company-y.example", "validation-failure", "198.51.100.62", "mx-backup.mail.company-y.example", 3),
		},
	}, {
		name:     "summary counts more than the details: remainder unspecified",
		start:    day,
		policies: []tlsrpt.PolicyResult{sts("a.example", 0, 10, fd("certificate-expired", "192.0.2.1", "mx.a.example", 4))},
		want: []store.TLSRPTRollup{
			row(day, "a.example", "certificate-expired", "192.0.2.1", "mx.a.example", 4),
			row(day, "a.example", tlsrpt.ResultUnspecified, "", "", 6),
		},
	}, {
		name:  "details count more than the summary (Mail.ru): details counted, merged, excess recorded, warned",
		start: day,
		policies: []tlsrpt.PolicyResult{sts("example.com", 0, 1,
			fd("sts-policy-fetch-error", "", "", 1), fd("sts-policy-fetch-error", "", "", 1))},
		want: []store.TLSRPTRollup{
			row(day, "example.com", tlsrpt.ResultDetailExcess, "", "", 1),
			row(day, "example.com", "sts-policy-fetch-error", "", "", 2),
		},
		warnings: 1,
	}, {
		name:     "no start: the day received; zero counts omitted",
		policies: []tlsrpt.PolicyResult{sts("b.example", 0, 0), sts("c.example", 7, 0)},
		want:     []store.TLSRPTRollup{row(time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), "c.example", "success", "", "", 7)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &tlsrpt.Report{OrganizationName: "Org", DateRange: tlsrpt.DateRange{Start: tc.start}, Policies: tc.policies}
			got, warnings := Rollups(r, received)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rollups:\n got %+v\nwant %+v", got, tc.want)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings %q, want %d", warnings, tc.warnings)
			}
		})
	}
}

func TestSubmitStoresReport(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, func(d string) bool { return d == "hosted.example" }, IngestOpts{})
	ctx := context.Background()
	raw := gzipped(t, reportJSON("Sender Inc.", "r-1", "hosted.example", 90, 10))
	res, err := ing.Submit(ctx, Submission{Source: SourceHTTPS, SourceDetail: "192.0.2.9", MediaType: "application/tlsrpt+gzip", Data: raw})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if res.ID == 0 || res.Duplicate || res.Status != store.ReportOK || res.Error != "" {
		t.Fatalf("Submit = %+v, want a new ok report", res)
	}
	got, err := st.TLSRPTReportByID(ctx, res.ID)
	if err != nil {
		t.Fatalf("TLSRPTReportByID(%d): %v", res.ID, err)
	}
	sum := sha256.Sum256(raw)
	checks := []struct {
		what      string
		got, want any
	}{
		{"raw", bytes.Equal(got.Raw, raw), true},
		{"digest", got.Digest, hex.EncodeToString(sum[:])},
		{"source", got.Source, SourceHTTPS},
		{"source detail", got.SourceDetail, "192.0.2.9"},
		{"media type", got.MediaType, "application/tlsrpt+gzip"},
		{"organization", got.OrganizationName, "Sender Inc."},
		{"report id", got.ReportID, "r-1"},
		{"domains", got.Domains, []string{"hosted.example"}},
		{"hosted", got.Hosted, true},
		{"successful", got.Successful, int64(90)},
		{"failed", got.Failed, int64(10)},
		{"start", got.StartTime, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"policies", len(got.Policies), 1},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("stored %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	rows, err := st.TLSRPTRollups(ctx, store.RollupQuery{GroupBy: []string{"result_type"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"success": 90, "certificate-expired": 10}
	for _, r := range rows {
		if want[r.ResultType] != r.Sessions {
			t.Errorf("rollup %s = %d, want %d", r.ResultType, r.Sessions, want[r.ResultType])
		}
		delete(want, r.ResultType)
	}
	if len(want) != 0 {
		t.Errorf("rollups missing %v (got %+v)", want, rows)
	}
}

func TestSubmitInvalidIsKept(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	ctx := context.Background()
	for _, tc := range []struct{ name, data, wantErr string }{
		{"not JSON", "this is not a report", ""},
		{"truncated JSON", `{"organization-name":"X","date-range":`, ""},
		{"broken gzip", "\x1f\x8b\x08\x00garbage", ""},
		{"JSON array", `[1,2,3]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ing.Submit(ctx, Submission{Source: SourceHTTPS, Data: []byte(tc.data)})
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if res.Status != store.ReportInvalid || res.Error == "" || res.ID == 0 || res.Duplicate {
				t.Fatalf("Submit = %+v, want a new invalid report with its reason", res)
			}
			got, err := st.TLSRPTReportByID(ctx, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.ReportInvalid || got.Error != res.Error || string(got.Raw) != tc.data {
				t.Errorf("stored status %q error %q raw %q; want invalid, %q, %q", got.Status, got.Error, got.Raw, res.Error, tc.data)
			}
			again, err := ing.Submit(ctx, Submission{Source: SourceHTTPS, Data: []byte(tc.data)})
			if err != nil || !again.Duplicate || again.ID != res.ID {
				t.Errorf("second Submit = %+v, %v; want a duplicate of %d (same digest)", again, err, res.ID)
			}
		})
	}
}

func TestSubmitDuplicateAcrossEncodings(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	ctx := context.Background()
	js := reportJSON("Org", "dup-1", "a.example", 5, 0)
	first, err := ing.Submit(ctx, Submission{Source: SourceHTTPS, Data: js})
	if err != nil || first.Duplicate {
		t.Fatalf("first Submit = %+v, %v", first, err)
	}
	second, err := ing.Submit(ctx, Submission{Source: SourceSMTP, Data: gzipped(t, js)})
	if err != nil || !second.Duplicate || second.ID != first.ID {
		t.Fatalf("gzipped copy = %+v, %v; want duplicate of %d", second, err, first.ID)
	}
	n, err := st.CountTLSRPTReports(ctx, store.ReportFilter{})
	if err != nil || n != 1 {
		t.Errorf("stored reports = %d, %v; want 1", n, err)
	}
	rows, err := st.TLSRPTRollups(ctx, store.RollupQuery{})
	if err != nil || len(rows) != 1 || rows[0].Sessions != 5 {
		t.Errorf("rollup total = %+v, %v; want 5 sessions (the duplicate not counted)", rows, err)
	}
}

func TestSubmitTooLarge(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{MaxDecompressed: 4096})
	bomb := gzipped(t, append([]byte(`{"organization-name":"`), bytes.Repeat([]byte("A"), 1<<20)...))
	_, err := ing.Submit(context.Background(), Submission{Source: SourceHTTPS, Data: bomb})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Submit of a gzip bomb: %v, want ErrTooLarge", err)
	}
	if n, _ := st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); n != 0 {
		t.Errorf("%d reports stored, want none", n)
	}
}

// queueDirect puts prepared reports into the writer's queue, as Submit
// does, and returns their pendings.
func queueDirect(t *testing.T, ing *Ingester, reps ...[]byte) []*pending {
	t.Helper()
	var ps []*pending
	for _, data := range reps {
		rep, err := ing.prepare(Submission{Source: SourceImport, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		p := &pending{rep: rep, done: make(chan outcome, 1)}
		ing.queue <- p
		ps = append(ps, p)
	}
	return ps
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxBatch int
		want     []int
	}{{0, []int{1, 10}}, {4, []int{1, 4, 4, 2}}} {
		t.Run(fmt.Sprintf("MaxBatch=%d", tc.maxBatch), func(t *testing.T) {
			fs := &fakeStore{gate: make(chan struct{}), entered: make(chan int, 10)}
			ing := startIngester(t, fs, nil, IngestOpts{MaxBatch: tc.maxBatch})
			// The first report is taken alone (no waiting when idle) and
			// its commit is held while ten more arrive.
			first := make(chan error, 1)
			go func() {
				_, err := ing.Submit(context.Background(), Submission{Data: reportJSON("O", "first", "a.example", 1, 0)})
				first <- err
			}()
			if n := <-fs.entered; n != 1 {
				t.Fatalf("first batch has %d reports, want 1", n)
			}
			var more [][]byte
			for i := range 10 {
				more = append(more, reportJSON("O", fmt.Sprint("r", i), "a.example", 1, 0))
			}
			ps := queueDirect(t, ing, more...)
			close(fs.gate)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			ids := make(map[int64]bool)
			for _, p := range ps {
				o := <-p.done
				if o.err != nil || o.res.Duplicate || ids[o.res.ID] {
					t.Fatalf("outcome %+v", o)
				}
				ids[o.res.ID] = true
			}
			fs.mu.Lock()
			defer fs.mu.Unlock()
			if !reflect.DeepEqual(fs.batches, tc.want) {
				t.Errorf("batches %v, want %v", fs.batches, tc.want)
			}
		})
	}
}

func TestBatchFailureRetriedOneByOne(t *testing.T) {
	t.Parallel()
	fs := &fakeStore{gate: make(chan struct{}), entered: make(chan int, 10)}
	fs.fail = func(batch []*store.TLSRPTReport) error {
		for _, r := range batch {
			if r.OrganizationName == "Bad" {
				return errors.New("constraint violated")
			}
		}
		return nil
	}
	ing := startIngester(t, fs, nil, IngestOpts{})
	blocker := make(chan error, 1)
	go func() {
		_, err := ing.Submit(context.Background(), Submission{Data: reportJSON("O", "blocker", "a.example", 1, 0)})
		blocker <- err
	}()
	<-fs.entered
	ps := queueDirect(t, ing, reportJSON("O", "ok-1", "a.example", 1, 0),
		reportJSON("Bad", "bad", "a.example", 1, 0), reportJSON("O", "ok-2", "a.example", 1, 0))
	close(fs.gate)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		o := <-p.done
		if bad := p.rep.OrganizationName == "Bad"; bad != (o.err != nil) {
			t.Errorf("report %d (%s): err %v", i, p.rep.OrganizationName, o.err)
		} else if bad && !errors.Is(o.err, ErrStore) {
			t.Errorf("report %d: err %v, want ErrStore", i, o.err)
		}
	}
	if st := ing.Stats(); st.Failures != 1 || st.Reports != 3 {
		t.Errorf("stats %+v, want 3 reports and 1 failure", st)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	fs := &fakeStore{gate: make(chan struct{}), entered: make(chan int, 10)}
	ing := NewIngester(nil, fs, nil, IngestOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- ing.Run(ctx) }()

	// A report being committed when Run is cancelled is finished.
	inFlight := make(chan error, 1)
	go func() {
		_, err := ing.Submit(context.Background(), Submission{Data: reportJSON("O", "in-flight", "a.example", 1, 0)})
		inFlight <- err
	}()
	<-fs.entered
	queued := queueDirect(t, ing, reportJSON("O", "queued", "a.example", 1, 0))
	cancel()
	close(fs.gate)
	if err := <-inFlight; err != nil {
		t.Errorf("report in flight at stop: %v, want committed", err)
	}
	if err := <-runDone; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	// The report still queued was not committed (unless Run took it before
	// seeing the cancel) and every later Submit fails with ErrClosed.
	if o := <-queued[0].done; o.err != nil && !errors.Is(o.err, ErrClosed) {
		t.Errorf("queued report: %v, want ErrClosed or committed", o.err)
	}
	if _, err := ing.Submit(context.Background(), Submission{Data: reportJSON("O", "late", "a.example", 1, 0)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after stop: %v, want ErrClosed", err)
	}
	if err := ing.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func TestSubmitContextEnds(t *testing.T) {
	t.Parallel()
	fs := &fakeStore{gate: make(chan struct{})}
	ing := startIngester(t, fs, nil, IngestOpts{})
	defer close(fs.gate)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ing.Submit(ctx, Submission{Data: reportJSON("O", "x", "a.example", 1, 0)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestSubmitPartsChoosesReport(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	ctx := context.Background()
	report := reportJSON("Org", "parts-1", "a.example", 3, 0)
	dmarc := []byte(`<?xml version="1.0"?><feedback><report_metadata></report_metadata></feedback>`)
	tests := []struct {
		name       string
		parts      []tlsrpt.Part
		wantStatus string
		wantErr    error
		wantIn     string
	}{
		{"report after an HTML part", []tlsrpt.Part{{MediaType: "text/html", Data: []byte("<html>hi</html>")},
			{MediaType: "application/tlsrpt+json", Data: report}}, store.ReportOK, nil, ""},
		{"damaged JSON kept as invalid", []tlsrpt.Part{{MediaType: "application/tlsrpt+json", Data: []byte(`{"organization-name": 12`)}},
			store.ReportInvalid, nil, ""},
		{"DMARC report refused", []tlsrpt.Part{{MediaType: "application/gzip", Filename: "x.xml.gz", Data: gzipped(t, dmarc)}},
			"", ErrNotReport, "DMARC"},
		{"no parts", nil, "", ErrNotReport, "no attachment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ing.SubmitParts(ctx, Submission{Source: SourceSMTP, DKIM: DKIMNone}, tc.parts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) {
					t.Fatalf("SubmitParts: %v, want %v naming %q", err, tc.wantErr, tc.wantIn)
				}
				return
			}
			if err != nil || res.Status != tc.wantStatus {
				t.Fatalf("SubmitParts = %+v, %v; want status %s", res, err, tc.wantStatus)
			}
			got, err := st.TLSRPTReportByID(ctx, res.ID)
			if err != nil || got.DKIM != DKIMNone || got.Source != SourceSMTP {
				t.Errorf("stored %+v, %v", got, err)
			}
		})
	}
}

func TestSubmitterMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		submitter, contact string
		warn               bool
	}{
		{"google.com", "smtp-tls-reporting@google.com", false},
		{"Google.COM.", "SMTP-TLS-Reporting@google.com", false},
		{"mail.sender.example.com", "sts-reporting@company-x.example", true},
		{"example.com", "https://example.com/tlsrpt", false},
		{"example.com", "mailto:tls@example.com", false},
		{"", "x@example.com", false}, // no header: nothing to compare
		{"example.com", "", false},   // no contact-info: Validate says so
	}
	for _, tc := range tests {
		if w := submitterMismatch(tc.submitter, tc.contact); (w != "") != tc.warn {
			t.Errorf("submitterMismatch(%q, %q) = %q, want warning %v", tc.submitter, tc.contact, w, tc.warn)
		}
	}
}
