package intake

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/moatmail/moat/internal/testlog"
)

// TestHTTPRequestID: every answer of the HTTPS intake carries
// X-Request-Id, and the lines logged about the request carry the same id;
// an id set by the listener's request log before is kept.
func TestHTTPRequestID(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	ing := startIngester(t, openStore(t), nil, IngestOpts{})
	h := NewHTTPHandler(out.Logger(slog.LevelInfo), ing, HTTPOpts{RatePerIP: -1})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("Test-Outer-Id"); id != "" {
			w.Header().Set("X-Request-Id", id) // as policyserver's request log does
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := srv.Client()
	code, _, hdr := post(t, c, "POST", srv.URL+ReportPath, "application/tlsrpt+json", bytes.NewReader(reportJSON("Org", "rid-1", "a.example", 3, 1)))
	id := hdr.Get("X-Request-Id")
	if code != 200 || id == "" {
		t.Fatalf("POST: %d, X-Request-Id %q", code, id)
	}
	code, _, hdr = post(t, c, "POST", srv.URL+ReportPath, "application/tlsrpt+json", strings.NewReader(`{"report-id": 7}`))
	bad := hdr.Get("X-Request-Id")
	if code != 400 || bad == "" || bad == id {
		t.Fatalf("invalid report: %d, X-Request-Id %q (the first: %q)", code, bad, id)
	}
	code, _, hdr = post(t, c, "POST", srv.URL+ReportPath, "application/tlsrpt+json", bytes.NewReader(reportJSON("Org", "rid-2", "a.example", 3, 1)),
		"Test-Outer-Id", "outer-7")
	if code != 200 || hdr.Get("X-Request-Id") != "outer-7" {
		t.Errorf("with an id set before: %d, X-Request-Id %q, want outer-7", code, hdr.Get("X-Request-Id"))
	}
	for _, want := range []string{
		`msg="tlsrpt report received" req=` + id + ` `,
		`msg="tlsrpt invalid report kept" req=` + bad + ` `,
		`msg="tlsrpt report received" req=outer-7 `,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSMTPRequestID: each message of an SMTP connection is logged under
// the connection's id and its number on it; another connection has
// another id.
func TestSMTPRequestID(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	e := startSMTPLogged(t, nil, nil, SMTPOpts{Resolver: mapResolver{}}, out.Logger(slog.LevelInfo))
	n := 0
	deliver := func(c *smtp.Client) {
		t.Helper()
		n++
		msg := reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", fmt.Sprint("smtp-id-", n), "a.example", 2, 1)))
		if err := c.SendMail("tlsrpt@sender.example", []string{testRcpt}, bytes.NewReader(msg)); err != nil {
			t.Fatalf("delivery %d: %v", n, err)
		}
	}
	for range 2 {
		c, err := smtp.Dial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		deliver(c)
		deliver(c)
		_ = c.Quit()
	}
	re := regexp.MustCompile(`msg="report received" req=(\S+)\.(\d) `)
	var conns []string
	for _, m := range re.FindAllStringSubmatch(out.String(), -1) {
		if want := fmt.Sprint(len(conns)%2 + 1); m[2] != want {
			t.Errorf("message number %s, want %s", m[2], want)
		}
		conns = append(conns, m[1])
	}
	if len(conns) != 4 || conns[0] != conns[1] || conns[2] != conns[3] || conns[0] == conns[2] {
		t.Errorf("connection ids of the four messages: %q, want two of one, two of another:\n%s", conns, out.String())
	}
}
