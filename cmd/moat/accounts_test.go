package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccountsCLI: organizations, users and tokens from the command line.
func TestAccountsCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	out := mustMoat(t, "users", "create", "Owner@Acme.example", "--org", "acme", "--role", "owner", "--data", data)
	if !strings.Contains(out, "created user owner@acme.example, owner of acme") || !strings.Contains(out, "password (shown once): ") {
		t.Errorf("users create: %q", out)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("a long enough password\n"), 0o600)
	mustMoat(t, "users", "create", "viewer@acme.example", "--org", "acme", "--role", "viewer", "--password-file", pw, "--data", data)
	mustMoat(t, "orgs", "create", "cust", "--parent", "acme", "--display-name", "A Customer", "--data", data)
	var orgs []orgView
	json.Unmarshal([]byte(mustMoat(t, "orgs", "list", "--json", "--data", data)), &orgs)
	if len(orgs) != 2 || orgs[1].Name != "cust" || orgs[1].Parent != "acme" || orgs[1].DisplayName != "A Customer" {
		t.Errorf("orgs list: %+v", orgs)
	}
	var users []userView
	json.Unmarshal([]byte(mustMoat(t, "users", "list", "--org", "acme", "--json", "--data", data)), &users)
	if len(users) != 2 || users[0].Orgs["acme"] != "owner" || users[1].Orgs["acme"] != "viewer" {
		t.Errorf("users list: %+v", users)
	}

	// A token is the last word of the last line.
	out = mustMoat(t, "tokens", "create", "--org", "acme", "--scope", "write", "--name", "ci", "--data", data)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	words := strings.Fields(lines[len(lines)-1])
	if tok := words[len(words)-1]; !strings.HasPrefix(tok, "moat_t_") || len(tok) < 40 {
		t.Errorf("tokens create: last word %q of %q", tok, out)
	}
	list := mustMoat(t, "tokens", "list", "--org", "acme", "--data", data)
	if !strings.Contains(list, "ci") || !strings.Contains(list, "write") {
		t.Errorf("tokens list: %q", list)
	}
	// A token is revoked only within its organization.
	if code, _, errs := moat(t, "tokens", "revoke", "1", "--org", "cust", "--data", data); code != exitError || !strings.Contains(errs, "cust has no active token 1") {
		t.Errorf("revoke in another org: exit %d, %q", code, errs)
	}
	mustMoat(t, "tokens", "revoke", "1", "--org", "acme", "--data", data)

	// Two organizations: domains add must be told which.
	if code, _, errs := moat(t, "domains", "add", "x.example", "--mx", "mx.x.example", "--data", data); code != exitError || !strings.Contains(errs, "choose one with --org NAME") {
		t.Errorf("domains add without --org: exit %d, %q", code, errs)
	}
	mustMoat(t, "domains", "add", "x.example", "--mx", "mx.x.example", "--org", "cust", "--data", data)

	// Passwords: refused when weak, reset ends sessions.
	os.WriteFile(pw, []byte("short\n"), 0o600)
	if code, _, errs := moat(t, "users", "reset-password", "viewer@acme.example", "--password-file", pw, "--data", data); code != exitError || !strings.Contains(errs, "at least 10") {
		t.Errorf("weak password: exit %d, %q", code, errs)
	}
	if out := mustMoat(t, "users", "reset-password", "viewer@acme.example", "--data", data); !strings.Contains(out, "password (shown once): ") {
		t.Errorf("reset-password: %q", out)
	}
	mustMoat(t, "users", "rm", "viewer@acme.example", "--data", data)
	if code, _, errs := moat(t, "users", "rm", "viewer@acme.example", "--data", data); code != exitError || !strings.Contains(errs, `no user "viewer@acme.example"`) {
		t.Errorf("rm twice: exit %d, %q", code, errs)
	}

	// Seeding is repeatable without duplicates.
	var s1, s2 map[string]any
	json.Unmarshal([]byte(mustMoat(t, "seed", "--org", "acme", "--domains", "3", "--days", "5", "--json", "--data", data)), &s1)
	json.Unmarshal([]byte(mustMoat(t, "seed", "--org", "acme", "--domains", "3", "--days", "5", "--json", "--data", data)), &s2)
	if s1["domains_added"] != 3.0 || s1["reports"] == 0.0 || s2["reports"] != 0.0 || s2["duplicates"] != s1["reports"] {
		t.Errorf("seed twice: %v then %v", s1, s2)
	}
}

// TestServeDashboard: `moat serve --dev` serves the dashboard; the demo
// user signs in with the password in the data directory, and a token
// made with the CLI reads the API.
func TestServeDashboard(t *testing.T) {
	t.Parallel()
	addrs, data := devServe(t)
	base := "http://" + addrs["web"]
	pw, err := os.ReadFile(filepath.Join(data, "dev-password"))
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"email": {DemoUser}, "password": {strings.TrimSpace(string(pw))}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), DemoDomain) || !strings.Contains(string(body), ".example") {
		t.Fatalf("after sign-in: %d, the overview lacks the demo domains:\n%.2000s", resp.StatusCode, body)
	}
	out := mustMoat(t, "tokens", "create", "--org", DemoOrg, "--scope", "read", "--data", data)
	words := strings.Fields(out)
	req, _ := http.NewRequest("GET", base+"/api/v1/reports/tlsrpt/summary?since=", nil)
	req.Header.Set("Authorization", "Bearer "+words[len(words)-1])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum summaryJSON
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil || resp.StatusCode != 200 || sum.TotalFailed == 0 || sum.TotalSuccessful == 0 {
		t.Errorf("API summary: %d %+v %v; want the demo's reports, some failing", resp.StatusCode, sum, err)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var b buildInfo
	if err := json.Unmarshal([]byte(mustMoat(t, "version", "--json")), &b); err != nil || b.Version == "" || b.Commit == "" || !strings.HasPrefix(b.Go, "go") {
		t.Errorf("version --json: %+v, %v", b, err)
	}
}
