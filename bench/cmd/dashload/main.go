// Command dashload measures the server time of every dashboard page and
// API list endpoint of a running `moat serve`: it signs in (pages) and
// sends a token (API), requests each URL -n times one after the other, and
// reads the time the server took from the Server-Timing header Moat sets
// (app;dur=ms), so that the client and the loopback are not counted. It
// prints p50, p95 and the maximum per URL, and exits 1 when a p95 reaches
// -limit. bench/dashboard.sh runs it against SQLite and PostgreSQL.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dashload:", err)
		os.Exit(1)
	}
}

type target struct {
	name, path string
	api        bool
}

func run() error {
	base := flag.String("base", "", "dashboard URL, http://127.0.0.1:PORT (required)")
	email := flag.String("email", "", "user to sign in as (required)")
	password := flag.String("password", "", "its password (required)")
	token := flag.String("token", "", "an API token of the same organization (required)")
	n := flag.Int("n", 30, "requests per URL")
	warm := flag.Int("warm", 2, "requests per URL before measuring")
	limit := flag.Duration("limit", 100*time.Millisecond, "the p95 every URL must stay under")
	flag.Parse()
	if *base == "" || *email == "" || *password == "" || *token == "" {
		return errors.New("-base, -email, -password and -token are required")
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := c.PostForm(*base+"/login", url.Values{"email": {*email}, "password": {*password}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.Request.URL.Path == "/login" {
		return fmt.Errorf("sign-in as %s failed (%s)", *email, resp.Status)
	}
	api := func(path string, v any) error {
		req, _ := http.NewRequest("GET", *base+path, nil)
		req.Header.Set("Authorization", "Bearer "+*token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	// The busiest domain (most failures over 7 days), and a report of it.
	var list struct {
		Domains []struct {
			Name string `json:"domain"`
		} `json:"domains"`
	}
	if err := api("/api/v1/domains?limit=1&sort=-failure_rate", &list); err != nil {
		return err
	}
	if len(list.Domains) == 0 {
		return errors.New("no domains: seed first (moat seed)")
	}
	d := list.Domains[0].Name
	var reps struct {
		Reports []struct {
			ID int64 `json:"id"`
		} `json:"reports"`
	}
	if err := api("/api/v1/reports/tlsrpt?limit=1&domain="+d, &reps); err != nil {
		return err
	}
	if len(reps.Reports) == 0 {
		return fmt.Errorf("no reports for %s: seed with --days", d)
	}
	id := strconv.FormatInt(reps.Reports[0].ID, 10)
	year := time.Now().UTC().AddDate(-1, 0, 0).Format("2006-01-02")
	targets := []target{
		{"overview", "/", false},
		{"overview by failure rate", "/?sort=failure_rate&desc=1", false},
		{"overview by grade", "/?sort=grade", false},
		{"overview filtered", "/?q=acme", false},
		{"domain (policy)", "/domains/" + d, false},
		{"domain setup", "/domains/" + d + "/setup", false},
		{"domain TLS reports, 30 days", "/domains/" + d + "/reports", false},
		{"domain TLS reports, a year", "/domains/" + d + "/reports?since=" + year, false},
		{"domain drill-down", "/domains/" + d + "/reports?result=certificate-expired&since=" + year, false},
		{"TLS reports, all domains, 30 days", "/reports", false},
		{"TLS reports, all domains, a year", "/reports?since=" + year, false},
		{"one report", "/reports/" + id, false},
		{"intake ledger", "/intake", false},
		{"DMARC, all domains, 30 days", "/dmarc", false},
		{"DMARC, all domains, a year", "/dmarc?since=365d", false},
		{"domain DMARC senders, 30 days", "/domains/" + d + "/dmarc", false},
		{"domain DMARC impact of p=reject", "/domains/" + d + "/dmarc/impact?policy=reject&pct=100", false},
		{"DMARC report list", "/dmarc/reports", false},
		{"checks", "/checks", false},
		{"domain checks", "/domains/" + d + "/checks", false},
		{"settings", "/settings", false},
		{"GET /api/v1/domains", "/api/v1/domains", true},
		{"GET /api/v1/domains (by failure rate)", "/api/v1/domains?sort=-failure_rate", true},
		{"GET /api/v1/reports/tlsrpt", "/api/v1/reports/tlsrpt", true},
		{"GET /api/v1/reports/tlsrpt (a domain)", "/api/v1/reports/tlsrpt?domain=" + d, true},
		{"GET /api/v1/reports/tlsrpt/summary (by result, a year)", "/api/v1/reports/tlsrpt/summary?since=365d&by=result", true},
		{"GET /api/v1/reports/tlsrpt/summary (by source, a year)", "/api/v1/reports/tlsrpt/summary?since=365d&by=source", true},
		{"GET /api/v1/reports/tlsrpt/summary (by day, a year)", "/api/v1/reports/tlsrpt/summary?since=365d&by=day", true},
		{"GET /api/v1/reports/tlsrpt/summary (by domain, a year)", "/api/v1/reports/tlsrpt/summary?since=365d&by=domain", true},
		{"GET /api/v1/domains/{name}/versions", "/api/v1/domains/" + d + "/versions", true},
		{"GET /api/v1/domains/{name}/events", "/api/v1/domains/" + d + "/events", true},
		{"GET /api/v1/domains/{name}/checks", "/api/v1/domains/" + d + "/checks", true},
		{"GET /api/v1/tokens", "/api/v1/tokens", true},
		{"GET /api/v1/users", "/api/v1/users", true},
		{"GET /api/v1/invitations", "/api/v1/invitations", true},
		{"GET /api/v1/orgs", "/api/v1/orgs", true},
	}
	fmt.Printf("%-58s %9s %9s %9s\n", "server time (ms), "+strconv.Itoa(*n)+" requests each", "p50", "p95", "max")
	over := 0
	for _, t := range targets {
		var ms []float64
		for i := 0; i < *warm+*n; i++ {
			req, _ := http.NewRequest("GET", *base+t.path, nil)
			if t.api {
				req.Header.Set("Authorization", "Bearer "+*token)
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", t.path, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("GET %s: %s", t.path, resp.Status)
			}
			if i < *warm {
				continue
			}
			v, ok := serverTime(resp.Header.Get("Server-Timing"))
			if !ok {
				return fmt.Errorf("GET %s: no Server-Timing header", t.path)
			}
			ms = append(ms, v)
		}
		slices.Sort(ms)
		p50, p95, top := ms[len(ms)/2], ms[(len(ms)*95+99)/100-1], ms[len(ms)-1]
		mark := ""
		if p95 >= float64(limit.Milliseconds()) {
			mark = "  OVER " + limit.String()
			over++
		}
		fmt.Printf("%-58s %9.2f %9.2f %9.2f%s\n", t.name, p50, p95, top, mark)
	}
	if over > 0 {
		return fmt.Errorf("%d URLs over %v at the 95th percentile", over, *limit)
	}
	fmt.Printf("every URL under %v at the 95th percentile\n", *limit)
	return nil
}

// serverTime reads app;dur=MS from a Server-Timing header.
func serverTime(h string) (float64, bool) {
	for _, m := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(m), ";")
		if name != "app" {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "dur="); ok {
				f, err := strconv.ParseFloat(v, 64)
				return f, err == nil
			}
		}
	}
	return 0, false
}
