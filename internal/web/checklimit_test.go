package web

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	xrate "golang.org/x/time/rate"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/store"
)

// TestCheckPageRateLimit: the Check page shares the organization's check
// allowance (api.Deps.CheckLimit) with the API: past it, the page says so
// with 429 and Retry-After, and runs nothing.
func TestCheckPageRateLimit(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	e.deps.CheckLimit = ratelimit.New[int64](xrate.Every(time.Hour), 1, 100)
	c := *e.srv.cfg
	srv, err := New(e.srv.log, &c, e.st, Options{Now: e.srv.opts.Now, Password: testParams, Pages: Pages(e.deps), API: api.New(e.deps)})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.h = srv, srv.Handler()
	if r := e.do(admin, "POST", "/domains/acme.example/checks", url.Values{}); r.Code != http.StatusSeeOther {
		t.Fatalf("first check: %d %s", r.Code, r.Body)
	}
	r := e.do(admin, "POST", "/checks", url.Values{"domain": {"acme.example"}})
	if r.Code != http.StatusTooManyRequests {
		t.Fatalf("second check: %d, want 429", r.Code)
	}
	r.has(t, "The check of acme.example was not run: too many domain checks for this organization")
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if cs, err := e.st.Scoped(store.Scope{Operator: true}).Checks(t.Context(), "acme.example", 10); err != nil || len(cs) != 1 {
		t.Errorf("%d checks stored (%v), want the first only", len(cs), err)
	}
}
