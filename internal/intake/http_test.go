package intake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// startHTTP serves the intake handler on 127.0.0.1 over a real SQLite
// store.
func startHTTP(t *testing.T, iopts IngestOpts, hopts HTTPOpts) (*httptest.Server, testStore) {
	t.Helper()
	st := openStore(t)
	ing := startIngester(t, st, nil, iopts)
	srv := httptest.NewServer(NewHTTPHandler(testLogger(t), ing, hopts))
	t.Cleanup(srv.Close)
	return srv, st
}

// post sends one request and returns the status and body.
func post(t *testing.T, c *http.Client, method, url, ctype string, body io.Reader, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// onlyReader hides the length of a body, forcing chunked encoding.
type onlyReader struct{ io.Reader }

func TestHTTPAnswers(t *testing.T) {
	t.Parallel()
	srv, st := startHTTP(t, IngestOpts{MaxDecompressed: 64 << 10}, HTTPOpts{MaxBody: 32 << 10, RatePerIP: -1})
	n := 0
	report := func() []byte {
		n++
		return reportJSON("Org", fmt.Sprint("http-", n), "a.example", 10, 2)
	}
	big := bytes.Repeat([]byte("x"), 40<<10)
	bomb := gzipped(t, append([]byte(`{"report-id":"`), bytes.Repeat([]byte("A"), 1<<20)...))
	tests := []struct {
		name     string
		method   string
		path     string
		ctype    string
		body     io.Reader
		want     int
		wantText string
	}{
		{"tlsrpt+json", "POST", ReportPath, "application/tlsrpt+json", bytes.NewReader(report()), 200, "report stored"},
		{"tlsrpt+gzip", "POST", ReportPath, "application/tlsrpt+gzip", bytes.NewReader(gzipped(t, report())), 200, "report stored"},
		{"gzip sniffed under octet-stream", "POST", ReportPath, "application/octet-stream", bytes.NewReader(gzipped(t, report())), 200, "report stored"},
		{"JSON sniffed under text/plain", "POST", ReportPath, "text/plain; charset=utf-8", bytes.NewReader(report()), 200, "report stored"},
		{"JSON without content type", "POST", ReportPath, "", bytes.NewReader(report()), 200, "report stored"},
		{"JSON mislabelled as gzip", "POST", ReportPath, "application/tlsrpt+gzip", bytes.NewReader(report()), 200, "report stored"},
		{"chunked body", "POST", ReportPath, "application/tlsrpt+json", onlyReader{bytes.NewReader(report())}, 200, "report stored"},
		{"not a report", "POST", ReportPath, "application/tlsrpt+json", strings.NewReader("hello"), 400, "invalid report (kept as report"},
		{"JSON object that is no report", "POST", ReportPath, "application/tlsrpt+json", strings.NewReader(`{"hello":"world"}`), 400, "not a TLS-RPT report"},
		{"empty body", "POST", ReportPath, "application/tlsrpt+json", nil, 400, "empty body"},
		{"GET", "GET", ReportPath, "", nil, 405, "POST"},
		{"PUT", "PUT", ReportPath, "application/tlsrpt+json", bytes.NewReader(report()), 405, "POST"},
		{"other path", "POST", "/v1/tlsrpt/x", "application/tlsrpt+json", bytes.NewReader(report()), 404, ReportPath},
		{"root", "GET", "/", "", nil, 404, ReportPath},
		{"body too large", "POST", ReportPath, "application/tlsrpt+json", bytes.NewReader(big), 413, "exceeds the limit of 32768 bytes"},
		{"chunked body too large", "POST", ReportPath, "application/tlsrpt+json", onlyReader{bytes.NewReader(big)}, 413, "exceeds the limit"},
		{"gzip bomb", "POST", ReportPath, "application/tlsrpt+gzip", bytes.NewReader(bomb), 413, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, text, hdr := post(t, srv.Client(), tc.method, srv.URL+tc.path, tc.ctype, tc.body)
			if code != tc.want || !strings.Contains(text, tc.wantText) {
				t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, code, text, tc.want, tc.wantText)
			}
			if code == 405 && hdr.Get("Allow") != "POST" {
				t.Errorf("405 without Allow: POST (Allow %q)", hdr.Get("Allow"))
			}
		})
	}
	// Nine reports were stored (two of them invalid, kept), and neither the
	// bomb nor the oversized bodies.
	ctx := context.Background()
	if got, err := st.CountTLSRPTReports(ctx, store.ReportFilter{}); err != nil || got != 9 {
		t.Errorf("stored %d reports (%v), want 9", got, err)
	}
	if got, err := st.CountTLSRPTReports(ctx, store.ReportFilter{Status: store.ReportInvalid}); err != nil || got != 2 {
		t.Errorf("stored %d invalid reports (%v), want 2", got, err)
	}
}

func TestHTTPDuplicate(t *testing.T) {
	t.Parallel()
	srv, st := startHTTP(t, IngestOpts{}, HTTPOpts{})
	js := reportJSON("Org", "dup", "a.example", 1, 0)
	var ids []string
	for i, body := range [][]byte{js, js, gzipped(t, js)} {
		code, text, _ := post(t, srv.Client(), "POST", srv.URL+ReportPath, "application/tlsrpt+json", bytes.NewReader(body))
		if code != 200 {
			t.Fatalf("POST %d: %d %q, want 200", i, code, text)
		}
		if i > 0 && !strings.Contains(text, "already received") {
			t.Errorf("POST %d: %q, want it called a duplicate", i, text)
		}
		ids = append(ids, text[strings.LastIndex(text, "report "):])
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("ids %q, want one report", ids)
	}
	if n, err := st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); err != nil || n != 1 {
		t.Errorf("stored %d reports (%v), want 1", n, err)
	}
}

func TestHTTPRateLimit(t *testing.T) {
	t.Parallel()
	// A rate so low that no token comes back during the test.
	srv, st := startHTTP(t, IngestOpts{}, HTTPOpts{RatePerIP: 0.001, RateBurst: 2})
	for i := range 3 {
		code, text, hdr := post(t, srv.Client(), "POST", srv.URL+ReportPath, "application/tlsrpt+json",
			bytes.NewReader(reportJSON("Org", fmt.Sprint("rate-", i), "a.example", 1, 0)))
		want := 200
		if i == 2 {
			want = 429
		}
		if code != want {
			t.Fatalf("POST %d: %d %q, want %d", i, code, text, want)
		}
		if code == 429 {
			ra, err := strconv.Atoi(hdr.Get("Retry-After"))
			if err != nil || ra < 1 {
				t.Errorf("Retry-After %q, want a positive number of seconds", hdr.Get("Retry-After"))
			}
		}
	}
	if n, _ := st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); n != 2 {
		t.Errorf("stored %d reports, want 2", n)
	}
}

func TestHTTPTrustedProxy(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	h := NewHTTPHandler(nil, ing, HTTPOpts{RatePerIP: 0.001, RateBurst: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	send := func(id string, xff ...string) (int, string) {
		var hdr []string
		for _, x := range xff {
			hdr = append(hdr, "X-Forwarded-For", x)
		}
		code, text, _ := post(t, srv.Client(), "POST", srv.URL+ReportPath, "application/tlsrpt+json",
			bytes.NewReader(reportJSON("Org", id, "a.example", 1, 0)), hdr...)
		return code, text
	}
	// Each forwarded client has its own bucket of one.
	if code, text := send("p1", "198.51.100.7, 10.1.2.3"); code != 200 {
		t.Fatalf("first client: %d %q", code, text)
	}
	if code, text := send("p2", "203.0.113.5"); code != 200 {
		t.Fatalf("second client: %d %q", code, text)
	}
	if code, _ := send("p3", "198.51.100.7"); code != 429 {
		t.Errorf("first client again: %d, want 429", code)
	}
	list, err := st.TLSRPTReports(context.Background(), store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range list {
		got[r.SourceDetail] = true
	}
	if !got["198.51.100.7"] || !got["203.0.113.5"] {
		t.Errorf("source details %v, want the forwarded client addresses", got)
	}
}

// newTestHTTPServer serves the intake handler of ing on 127.0.0.1 without
// a rate limit.
func newTestHTTPServer(t *testing.T, ing *Ingester) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHTTPHandler(testLogger(t), ing, HTTPOpts{RatePerIP: -1}))
	t.Cleanup(srv.Close)
	return srv
}
