package policyserver

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/testlog"
)

// TestRequestLog: at debug level every HTTPS request is logged under a
// request id that X-Request-Id carries back, and a service host's handler
// finds that id already set (so the intake and the dashboard log under
// the same one); at info level nothing is logged and no id is added.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	service := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "id "+w.Header().Get("X-Request-Id"))
	})
	opts := Options{Services: map[string]http.Handler{"reports.example.net": service}}
	var out testlog.Buffer
	r, roots := startDevLogged(t, testHolder("example.test"), opts, out.Logger(slog.LevelDebug))
	c := client(r.httpsAddr, roots)
	code, hdr, _ := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt")
	id := hdr.Get("X-Request-Id")
	if code != 200 || id == "" {
		t.Fatalf("GET policy: %d, X-Request-Id %q", code, id)
	}
	_, hdr2, body := get(t, c, "POST", "https://reports.example.net/v1/tlsrpt")
	id2 := hdr2.Get("X-Request-Id")
	if id2 == "" || id2 == id || body != "id "+id2 {
		t.Errorf("service host: X-Request-Id %q (the policy's %q), the handler saw %q", id2, id, body)
	}
	for _, want := range []string{
		`msg="https request" req=` + id + ` remote=127.0.0.1:`, `method=GET host=mta-sts.example.test path=/.well-known/mta-sts.txt status=200`,
		`msg="https request" req=` + id2 + ` `, `method=POST host=reports.example.net path=/v1/tlsrpt status=200`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}

	var quiet testlog.Buffer
	r, roots = startDevLogged(t, testHolder("example.test"), opts, quiet.Logger(slog.LevelInfo))
	c = client(r.httpsAddr, roots)
	if code, hdr, _ := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt"); code != 200 || hdr.Get("X-Request-Id") != "" {
		t.Errorf("at info level: %d, X-Request-Id %q", code, hdr.Get("X-Request-Id"))
	}
	if strings.Contains(quiet.String(), "https request") {
		t.Errorf("request logged at info level:\n%s", quiet.String())
	}
}
