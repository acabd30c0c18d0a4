package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// serveAs calls the API's handler directly, as package web would with p
// in the context.
func serveAs(h http.Handler, p *auth.Principal, method, path, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if p != nil {
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) api.ErrorBody {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body (%v): %s", err, w.Body.Bytes())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e.Error
}

// TestStoreFailure: when the store fails the API answers 503 unavailable,
// logs the cause and does not show it.
func TestStoreFailure(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), nil, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o := &store.Org{Name: "acme"}
	if err := st.CreateOrg(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	h := api.New(api.Deps{Log: slog.New(slog.NewTextHandler(&logged, nil)), Store: st})
	p := &auth.Principal{Org: o, Role: store.RoleOwner, Tenant: st.Scoped(store.Scope{Orgs: []int64{o.ID}})}
	for _, path := range []string{"/api/v1/domains", "/api/v1/tokens", "/api/v1/reports/tlsrpt/summary", "/api/v1/domains/example.com"} {
		w := serveAs(h, p, "GET", path, "", "")
		e := errorOf(t, w)
		if w.Code != http.StatusServiceUnavailable || e.Code != "unavailable" || strings.Contains(e.Message, "sql") || strings.Contains(e.Message, "closed") {
			t.Errorf("GET %s on a closed store: %d %+v", path, w.Code, e)
		}
	}
	if !strings.Contains(logged.String(), "api request failed") || !strings.Contains(logged.String(), "closed") {
		t.Errorf("the cause is not logged:\n%s", logged.String())
	}
}

// TestHandlerErrors covers what package web never lets through (no
// principal at all) and the principal without an organization.
func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	st, err := store.Open(t.Context(), nil, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	h := api.New(api.Deps{Store: st})
	spec := newSpec(t, mustRead(t, "openapi.json"))
	check := func(p *auth.Principal, method, path, ctype, body string, want int, code string) {
		t.Helper()
		w := serveAs(h, p, method, path, ctype, body)
		if w.Code != want {
			t.Errorf("%s %s: %d, want %d: %s", method, path, w.Code, want, w.Body.Bytes())
			return
		}
		if code != "" {
			if e := errorOf(t, w); e.Code != code {
				t.Errorf("%s %s: code %q, want %q", method, path, e.Code, code)
			}
		}
		r := httptest.NewRequest(method, path, nil)
		if err := spec.validate(r, resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
		}
	}
	// No principal: 401 everywhere but the description.
	for _, rt := range api.Routes() {
		path := strings.NewReplacer("{name}", "example.com", "{id}", "1").Replace(rt.Pattern)
		if rt.Perm == "" {
			check(nil, rt.Method, path, "", "", 200, "")
			continue
		}
		check(nil, rt.Method, path, "", "", 401, "unauthorized")
	}
	// An operator before any organization exists acts in none.
	op := &auth.Principal{User: &store.User{ID: 1, Email: "op@moat.test", Operator: true}, Role: store.RoleOwner,
		Tenant: st.Scoped(store.Scope{Operator: true})}
	check(op, "GET", "/api/v1/tokens", "", "", 409, "no_org")
	check(op, "POST", "/api/v1/tokens", "application/json", `{"name":"x","scope":"read"}`, 409, "no_org")
	check(op, "GET", "/api/v1/users", "", "", 409, "no_org")
	check(op, "GET", "/api/v1/invitations", "", "", 409, "no_org")
	check(op, "GET", "/api/v1/me", "", "", 200, "")
	check(op, "GET", "/api/v1/domains", "", "", 200, "")
	// Dependencies that are not configured.
	check(op, "POST", "/api/v1/checks", "application/json", `{"domain":"example.com"}`, 409, "no_org")
	check(op, "POST", "/api/v1/reports/tlsrpt", "application/json", `{}`, 503, "unavailable")
	// Bodies.
	check(op, "POST", "/api/v1/orgs", "application/json; charset=utf-8", `{"name":"x","extra":1}`, 400, "invalid")
	check(op, "POST", "/api/v1/orgs", "", `{"name":"x"}`, 415, "unsupported_media_type")
	check(op, "POST", "/api/v1/orgs", "application/json", `[1]`, 400, "invalid")
	check(op, "POST", "/api/v1/orgs", "application/json", ``, 400, "invalid")
	check(op, "DELETE", "/api/v1/orgs", "", "", 405, "method_not_allowed")
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoutes: the table has each method and path once, every path under
// /api/v1, and every write route a permission above read.
func TestRoutes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Pattern
		if seen[key] {
			t.Errorf("%s twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(rt.Pattern, api.Prefix+"/") {
			t.Errorf("%s is not under %s", key, api.Prefix)
		}
		if rt.Method != "GET" && (rt.Perm == "" || rt.Perm == auth.PermRead) {
			t.Errorf("%s changes something with permission %q", key, rt.Perm)
		}
	}
}
