package intake

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/testpki"
)

// testStore is what the tests store reports in and read them from: a real
// store, or a fakeStore.
type testStore interface {
	Store
	store.ReportStore
}

// openStore opens a real SQLite store in a temporary directory.
func openStore(t testing.TB) store.Store {
	t.Helper()
	return openStoreAt(t, t.TempDir())
}

func openStoreAt(t testing.TB, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), nil, store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open store in %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startIngester runs an Ingester on st until the test ends.
func startIngester(t testing.TB, st testStore, hosted func(string) bool, opts IngestOpts) *Ingester {
	t.Helper()
	ing := NewIngester(testLogger(t), st, hosted, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ing
}

// reportJSON returns a small RFC 8460 report.
func reportJSON(org, id, domain string, successful, failed int64) []byte {
	details := ""
	if failed > 0 {
		details = fmt.Sprintf(`,"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1",`+
			`"receiving-mx-hostname":"mx1.%s","failed-session-count":%d}]`, domain, failed)
	}
	return []byte(fmt.Sprintf(`{"organization-name":%q,"date-range":{"start-datetime":"2026-11-01T00:00:00Z",`+
		`"end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"tlsrpt@%s","report-id":%q,"policies":[{"policy":`+
		`{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.%s","max_age: 86400"],`+
		`"policy-domain":%q,"mx-host":["mx1.%s"]},"summary":{"total-successful-session-count":%d,`+
		`"total-failure-session-count":%d}%s}]}`,
		org, "sender.example", id, domain, domain, domain, successful, failed, details))
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testTLS returns a server configuration with a certificate for 127.0.0.1
// and localhost from a fresh test CA, and a client configuration trusting
// that CA.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t, "intake test CA")
	now := time.Now()
	leaf := ca.Sign(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	server = &tls.Config{Certificates: []tls.Certificate{*leaf}}
	client = &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	return server, client
}

// fakeStore is an in-memory ReportStore for failure injection: it can fail
// or hold its InsertTLSRPT calls. Only InsertTLSRPT does real work.
type fakeStore struct {
	mu      sync.Mutex
	reports []*store.TLSRPTReport
	byKey   map[string]int64
	batches []int // size of each committed batch

	// fail, when set, decides the error of an InsertTLSRPT call.
	fail func(batch []*store.TLSRPTReport) error
	// gate, when set, is received from before each InsertTLSRPT.
	gate chan struct{}
	// entered, when set, receives the batch size as each call starts.
	entered chan int
}

func (f *fakeStore) InsertTLSRPT(ctx context.Context, reps []*store.TLSRPTReport) ([]store.InsertResult, error) {
	if f.entered != nil {
		f.entered <- len(reps)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(reps); err != nil {
			return nil, err
		}
	}
	if f.byKey == nil {
		f.byKey = make(map[string]int64)
	}
	res := make([]store.InsertResult, len(reps))
	for i, r := range reps {
		key := "digest:" + r.Digest
		if r.OrganizationName != "" && r.ReportID != "" {
			key = "id:" + r.OrganizationName + "\x00" + r.ReportID
		}
		if id, ok := f.byKey[key]; ok {
			res[i] = store.InsertResult{ID: id, Duplicate: true}
			continue
		}
		f.reports = append(f.reports, r)
		id := int64(len(f.reports))
		f.byKey[key] = id
		res[i] = store.InsertResult{ID: id}
	}
	f.batches = append(f.batches, len(reps))
	return res, nil
}

var errNotFake = errors.New("fakeStore: not implemented")

func (f *fakeStore) TLSRPTReports(context.Context, store.ReportFilter) ([]*store.TLSRPTReport, error) {
	return nil, errNotFake
}

func (f *fakeStore) TLSRPTReportByID(_ context.Context, id int64) (*store.TLSRPTReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || id > int64(len(f.reports)) {
		return nil, store.ErrNotFound
	}
	return f.reports[id-1], nil
}

func (f *fakeStore) CountTLSRPTReports(context.Context, store.ReportFilter) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.reports)), nil
}

func (f *fakeStore) TLSRPTRollups(context.Context, store.RollupQuery) ([]store.RollupRow, error) {
	return nil, errNotFake
}

func (f *fakeStore) InsertDMARC(context.Context, store.DMARCBatch) (store.DMARCBatchResult, error) {
	return store.DMARCBatchResult{}, errNotFake
}

var _ store.ReportStore = (*fakeStore)(nil)
