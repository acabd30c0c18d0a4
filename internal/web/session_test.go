package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/store"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// authEnv is the dashboard without pages, over a real store, with a clock
// the test moves, one organization and one user.
type authEnv struct {
	t     *testing.T
	st    store.Store
	h     http.Handler
	clock *clock
	cfg   *config.Config
	org   *store.Org
}

func newAuthEnv(t *testing.T, dev bool) *authEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := config.Default()
	if dev {
		c = config.DevDefault()
	}
	c.Web.Listen = ""
	e := &authEnv{t: t, st: st, clock: &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}, cfg: &c}
	srv, err := New(slog.New(slog.DiscardHandler), &c, st, Options{Now: e.clock.now, Password: testParams,
		Pages: func(mux *http.ServeMux, _ *Server) {
			mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
				p := auth.FromContext(r.Context())
				if p == nil {
					http.Redirect(w, r, "/login", http.StatusSeeOther)
					return
				}
				_, _ = w.Write([]byte("hello " + p.Name() + " in " + p.Org.Name))
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.h = srv.Handler()
	e.org = &store.Org{Name: "acme"}
	if err := st.CreateOrg(ctx, e.org); err != nil {
		t.Fatal(err)
	}
	e.user("owner@acme.example", store.RoleOwner)
	return e
}

func (e *authEnv) user(email, role string) *store.User {
	e.t.Helper()
	h, err := auth.HashPassword(testPassword, testParams)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &store.User{Email: email, PasswordHash: h}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.SetMembership(context.Background(), u.ID, e.org.ID, role); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// answer is a response, read whole.
type answer struct {
	StatusCode int
	Header     http.Header
	Body       string
	cookies    []*http.Cookie
}

func (a *answer) Cookies() []*http.Cookie { return a.cookies }

// do sends a request from client address ip with the cookie, and returns
// the answer.
func (e *authEnv) do(method, path, cookie, ip string, form url.Values, hdr map[string]string) *answer {
	e.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "http://moat.test"+path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "http://moat.test"+path, nil)
	}
	if ip != "" {
		r.RemoteAddr = ip + ":4321"
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return &answer{StatusCode: w.Code, Header: w.Header(), Body: w.Body.String(), cookies: w.Result().Cookies()} //nolint:bodyclose // a recorder's body needs no closing
}

// login signs in and returns the session cookie ("name=value").
func (e *authEnv) login(email, password, ip string) (*answer, string) {
	e.t.Helper()
	resp := e.do("POST", "/login", "", ip, url.Values{"email": {email}, "password": {password}, "next": {"/"}}, nil)
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "moat_session") && c.Value != "" {
			return resp, c.Name + "=" + c.Value
		}
	}
	return resp, ""
}

func TestSignInCookies(t *testing.T) {
	t.Parallel()
	for _, dev := range []bool{false, true} {
		e := newAuthEnv(t, dev)
		resp, cookie := e.login("Owner@ACME.example", testPassword, "192.0.2.1")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || cookie == "" {
			t.Fatalf("dev %v: sign-in: %d %q cookie %q", dev, resp.StatusCode, resp.Header.Get("Location"), cookie)
		}
		c := resp.Cookies()[0]
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure == dev ||
			(c.Name == "__Host-moat_session") == dev {
			t.Errorf("dev %v: cookie %+v: want HttpOnly, SameSite=Lax, Secure and __Host- except under --dev", dev, c)
		}
		// The store keeps the hash of the secret, never the secret.
		secret := strings.SplitN(cookie, "=", 2)[1]
		if _, err := e.st.SessionByID(context.Background(), secret, e.clock.now()); err == nil {
			t.Error("a session is found by the cookie's secret itself")
		}
		if body := readBody(t, e.do("GET", "/", cookie, "192.0.2.1", nil, nil)); body != "hello owner@acme.example in acme" {
			t.Errorf("dev %v: signed-in page: %q", dev, body)
		}
	}
}

func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, true)
	wrong := readBody(t, e.do("POST", "/login", "", "192.0.2.1", url.Values{"email": {"owner@acme.example"}, "password": {"nope, not it"}}, nil))
	unknown := readBody(t, e.do("POST", "/login", "", "192.0.2.2", url.Values{"email": {"ghost@acme.example"}, "password": {"nope, not it"}}, nil))
	for _, body := range []string{wrong, unknown} {
		if !strings.Contains(body, "Wrong email or password.") {
			t.Errorf("refused sign-in says %.300q", body)
		}
	}
	// A user in no organization cannot sign in, and is told why.
	u := &store.User{Email: "orphan@acme.example"}
	u.PasswordHash, _ = auth.HashPassword(testPassword, testParams)
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if resp, cookie := e.login("orphan@acme.example", testPassword, "192.0.2.3"); resp.StatusCode != http.StatusForbidden || cookie != "" ||
		!strings.Contains(readBody(t, resp), "belongs to no organization") {
		t.Errorf("user of no organization: %d, cookie %q", resp.StatusCode, cookie)
	}
	// Only local paths are followed after sign-in.
	for next, want := range map[string]string{"/settings?x=1": "/settings?x=1", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
		resp := e.do("POST", "/login", "", "192.0.2.4", url.Values{"email": {"owner@acme.example"}, "password": {testPassword}, "next": {next}}, nil)
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirected to %q, want %q", next, got, want)
		}
	}
}

func TestSignInRateLimits(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, true)
	// Per client address: a burst of 10, then 429 with Retry-After, also
	// for other accounts from that address.
	for i := range 10 {
		if resp := e.do("POST", "/login", "", "198.51.100.7", url.Values{"email": {"x" + string(rune('a'+i)) + "@acme.example"}, "password": {"wrong password"}}, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := e.login("owner@acme.example", testPassword, "198.51.100.7")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(readBody(t, resp), "from your address") {
		t.Errorf("11th attempt from one address: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Per account: from many addresses, a burst of 10.
	for i := range 10 {
		e.do("POST", "/login", "", "203.0.113."+string(rune('1'+i)), url.Values{"email": {"owner@acme.example"}, "password": {"wrong password"}}, nil)
	}
	resp, _ = e.login("owner@acme.example", testPassword, "203.0.113.200")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(readBody(t, resp), "for this account") {
		t.Errorf("11th attempt on one account: %d", resp.StatusCode)
	}
	// Time refills the buckets.
	e.clock.add(10 * time.Minute)
	if resp, cookie := e.login("owner@acme.example", testPassword, "203.0.113.200"); cookie == "" {
		t.Errorf("after waiting: %d", resp.StatusCode)
	}
}

func TestSessionEnds(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, true)
	signedIn := func(cookie string) bool {
		return e.do("GET", "/", cookie, "192.0.2.1", nil, nil).StatusCode == http.StatusOK
	}
	// Sign-out ends the session in the store, not only the cookie.
	_, c1 := e.login("owner@acme.example", testPassword, "192.0.2.1")
	if resp := e.do("POST", "/logout", c1, "192.0.2.1", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if signedIn(c1) {
		t.Error("the cookie still works after sign-out")
	}
	// Idle: a session unused for web.session_idle ends; used, it slides.
	_, c2 := e.login("owner@acme.example", testPassword, "192.0.2.1")
	e.clock.add(e.cfg.Web.SessionIdle - time.Hour)
	if !signedIn(c2) {
		t.Fatal("ended before the idle time")
	}
	e.clock.add(e.cfg.Web.SessionIdle - time.Hour)
	if !signedIn(c2) {
		t.Fatal("a used session did not slide")
	}
	e.clock.add(e.cfg.Web.SessionIdle + time.Minute)
	if signedIn(c2) {
		t.Error("a session unused for longer than web.session_idle still works")
	}
	// Lifetime: however active, a session ends after web.session_lifetime.
	_, c3 := e.login("owner@acme.example", testPassword, "192.0.2.1")
	for d := time.Duration(0); d < e.cfg.Web.SessionLifetime-e.cfg.Web.SessionIdle; d += e.cfg.Web.SessionIdle / 2 {
		e.clock.add(e.cfg.Web.SessionIdle / 2)
		if !signedIn(c3) {
			t.Fatalf("an active session ended after %v", d)
		}
	}
	e.clock.add(e.cfg.Web.SessionIdle)
	if signedIn(c3) {
		t.Error("a session outlived web.session_lifetime")
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, true)
	_, mine := e.login("owner@acme.example", testPassword, "192.0.2.1")
	_, other := e.login("owner@acme.example", testPassword, "192.0.2.2")
	change := func(cur, next, again string) *answer {
		return e.do("POST", "/account/password", mine, "192.0.2.1", url.Values{"current": {cur}, "new": {next}, "again": {again}}, nil)
	}
	for _, tc := range []struct{ cur, next, again, want string }{
		{"wrong one", "a brand new password", "a brand new password", "current password is not right"},
		{testPassword, "a brand new password", "another one entirely", "differ"},
		{testPassword, "short", "short", "at least 10"},
	} {
		if resp := change(tc.cur, tc.next, tc.again); resp.StatusCode != http.StatusBadRequest || !strings.Contains(readBody(t, resp), tc.want) {
			t.Errorf("change %+v: %d", tc, resp.StatusCode)
		}
	}
	if resp := change(testPassword, "a brand new password", "a brand new password"); resp.StatusCode != http.StatusOK {
		t.Fatalf("change: %d", resp.StatusCode)
	}
	if e.do("GET", "/", mine, "192.0.2.1", nil, nil).StatusCode != http.StatusOK {
		t.Error("the session that changed the password ended")
	}
	if e.do("GET", "/", other, "192.0.2.2", nil, nil).StatusCode == http.StatusOK {
		t.Error("another session survived the password change")
	}
	if _, c := e.login("owner@acme.example", "a brand new password", "192.0.2.3"); c == "" {
		t.Error("the new password does not sign in")
	}
}

func TestInvitation(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, true)
	ctx := context.Background()
	invite := func(expires time.Duration) string {
		secret, hash, err := auth.NewSecret(auth.KindInvitation)
		if err != nil {
			t.Fatal(err)
		}
		inv := &store.Invitation{OrgID: e.org.ID, Email: "new@acme.example", Role: store.RoleViewer, Hash: hash, ExpiresAt: e.clock.now().Add(expires)}
		if err := e.st.Scoped(store.Scope{Operator: true}).CreateInvitation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	secret := invite(24 * time.Hour)
	if body := readBody(t, e.do("GET", "/invite/"+secret, "", "", nil, nil)); !strings.Contains(body, "acme") || !strings.Contains(body, "Viewer") {
		t.Errorf("invitation page: %.400q", body)
	}
	form := url.Values{"email": {"new@acme.example"}, "password": {"my own password"}, "again": {"my own password"}}
	resp := e.do("POST", "/invite/"+secret, "", "", form, nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("accept: %d", resp.StatusCode)
	}
	u, err := e.st.UserByEmail(ctx, "new@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := e.st.Memberships(ctx, u.ID)
	if len(ms) != 1 || ms[0].Role != store.RoleViewer {
		t.Errorf("memberships after accepting: %+v", ms)
	}
	// Once only, and not after expiry.
	if resp := e.do("POST", "/invite/"+secret, "", "", form, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second use: %d", resp.StatusCode)
	}
	late := invite(time.Hour)
	e.clock.add(2 * time.Hour)
	if resp := e.do("GET", "/invite/"+late, "", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("expired invitation: %d", resp.StatusCode)
	}
}

func TestSecurityHeadersAndCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, false)
	_, cookie := e.login("owner@acme.example", testPassword, "192.0.2.1")
	for _, path := range []string{"/login", "/", "/api/v1/nothing"} {
		h := e.do("GET", path, cookie, "192.0.2.1", nil, nil).Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" || h.Get("X-Request-Id") == "" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	// A state-changing request from another site is refused, cookie or not.
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		if resp := e.do("POST", "/logout", cookie, "192.0.2.1", url.Values{}, hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin sign-out %v: %d", hdr, resp.StatusCode)
		}
	}
	if e.do("GET", "/", cookie, "192.0.2.1", nil, nil).StatusCode != http.StatusOK {
		t.Error("the refused cross-origin sign-out ended the session")
	}
	// Same-origin passes.
	if resp := e.do("POST", "/logout", cookie, "192.0.2.1", url.Values{}, map[string]string{"Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin sign-out: %d", resp.StatusCode)
	}
	// A bad bearer token is refused whatever it asks for, in JSON.
	resp := e.do("GET", "/api/v1/domains", "", "192.0.2.1", nil, map[string]string{"Authorization": "Bearer moat_t_forged"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(readBody(t, resp), `"code":"unauthorized"`) {
		t.Errorf("forged token: %d", resp.StatusCode)
	}
}

func readBody(t *testing.T, a *answer) string {
	t.Helper()
	return a.Body
}
