package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/check/fakenet"
)

// checkWorld is a fake internet with good.test (MX with STARTTLS, SPF,
// DMARC reject, MTA-STS enforce, TLS-RPT) and bare.test (an MX and nothing
// else).
func checkWorld(t *testing.T) (*fakenet.Net, []string) {
	t.Helper()
	const zone = `
good.test. 60 IN MX 10 mx.good.test.
good.test. 60 IN TXT "v=spf1 mx -all"
_dmarc.good.test. 60 IN TXT "v=DMARC1; p=reject; rua=mailto:d@good.test"
_mta-sts.good.test. 60 IN TXT "v=STSv1; id=1"
_smtp._tls.good.test. 60 IN TXT "v=TLSRPTv1; rua=mailto:t@good.test"
mta-sts.good.test. 60 IN A 127.0.84.50
mx.good.test. 60 IN A 127.0.84.10
bare.test. 60 IN MX 10 mx.good.test.
`
	policy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 604800\n"))
	})
	n := fakenet.Start(t, fakenet.Spec{
		Zone:  zone,
		SMTP:  []fakenet.SMTPHost{{Addr: "127.0.84.10", Hostname: "mx.good.test"}},
		HTTPS: []fakenet.HTTPSHost{{Addr: "127.0.84.50", Names: []string{"mta-sts.good.test"}, Handler: policy}},
	})
	flags := []string{"--resolver", n.DNS.Addr, "--ca-file", n.CAFile, "--smtp-port", strconv.Itoa(n.SMTPPort),
		"--https-port", strconv.Itoa(n.HTTPSPort), "--allow-private", "--data", filepath.Join(t.TempDir(), "none")}
	return n, flags
}

func TestCheckCLIJSON(t *testing.T) {
	t.Parallel()
	_, flags := checkWorld(t)
	code, out, errs := moat(t, append([]string{"check", "good.test", "--json"}, flags...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"domain", "score", "grade", "findings", "pillars", "timings", "checked_at"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("top level lacks %q", k)
		}
	}
	if obj["domain"] != "good.test" {
		t.Errorf("domain = %v", obj["domain"])
	}
	findings, _ := obj["findings"].([]any)
	if len(findings) == 0 {
		t.Fatal("no findings")
	}
	ids := map[string]bool{}
	for _, f := range findings {
		m := f.(map[string]any)
		for _, k := range []string{"id", "severity", "message", "fix", "penalty", "pillar", "component", "why"} {
			if _, ok := m[k]; !ok {
				t.Errorf("finding %v lacks %q", m["id"], k)
			}
		}
		ids[m["id"].(string)] = true
	}
	for _, id := range []string{"mta-sts.ok", "starttls.ok", "dmarc.ok", "spf.ok", "dkim.not-found", "bimi.missing"} {
		if !ids[id] {
			t.Errorf("no finding %s in %v", id, ids)
		}
	}
	// 100 - DKIM not found (5) - BIMI missing (10).
	if obj["score"] != float64(85) || obj["grade"] != "B" {
		t.Errorf("score %v grade %v, want 85 B", obj["score"], obj["grade"])
	}
}

func TestCheckCLISeveral(t *testing.T) {
	t.Parallel()
	_, flags := checkWorld(t)
	code, out, errs := moat(t, append([]string{"check", "good.test", "BARE.test.", "--json"}, flags...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var arr []struct {
		Domain string `json:"domain"`
		Grade  string `json:"grade"`
	}
	if err := json.Unmarshal([]byte(out), &arr); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(arr) != 2 || arr[0].Domain != "good.test" || arr[1].Domain != "bare.test" || arr[1].Grade != "F" {
		t.Errorf("reports = %+v", arr)
	}

	// --fail-under: exit 2 when a domain is below, naming it.
	code, _, errs = moat(t, append([]string{"check", "good.test", "bare.test", "--json", "--fail-under", "c"}, flags...)...)
	if code != exitNotGreen || !strings.Contains(errs, "bare.test has grade F") || strings.Contains(errs, "good.test has") {
		t.Errorf("--fail-under c: exit %d, stderr %q", code, errs)
	}
	code, _, errs = moat(t, append([]string{"check", "good.test", "--fail-under", "B"}, flags...)...)
	if code != exitOK {
		t.Errorf("--fail-under B on a B: exit %d, %s", code, errs)
	}
	code, _, _ = moat(t, append([]string{"check", "good.test", "--fail-under", "A"}, flags...)...)
	if code != exitNotGreen {
		t.Errorf("--fail-under A on a B: exit %d", code)
	}
}

func TestCheckCLIText(t *testing.T) {
	t.Parallel()
	_, flags := checkWorld(t)
	code, out, errs := moat(t, append([]string{"check", "good.test"}, flags...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"good.test  score 85/100  grade B",
		"Impersonation (SPF, DKIM, DMARC)  45/50",
		"Transport privacy (MTA-STS, TLS-RPT, STARTTLS)  40/40",
		"Brand (BIMI)  0/10",
		"[warning -10] No \"v=BIMI1\" record at default._bimi.good.test.",
		"fix: publish an SVG Tiny PS logo",
		"[ok] _mta-sts.good.test: id 1; policy mode enforce",
		"longest chain:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colors written to a buffer")
	}
}

func TestCheckCLIErrors(t *testing.T) {
	t.Parallel()
	_, flags := checkWorld(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "not a domain"}, "invalid domain"},
		{[]string{"check", "good.test", "--fail-under", "Z"}, "--fail-under"},
		{[]string{"check", "good.test", "--ca-file", "/nonexistent.pem"}, "--ca-file"},
	} {
		code, _, errs := moat(t, append(tc.args, flags[:2]...)...)
		if code != exitError || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, errs, tc.want)
		}
	}

	// A resolver where nothing listens: the check cannot run.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	code, out, errs := moat(t, "check", "good.test", "--resolver", dead, "--timeout", "3s", "--json", "--data", filepath.Join(t.TempDir(), "none"))
	if code != exitError || !strings.Contains(errs, "DNS unavailable") || out != "" {
		t.Errorf("dead resolver: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestCheckCLIHosted: with an existing data directory the check says
// whether Moat hosts the domain; without one it creates none.
func TestCheckCLIHosted(t *testing.T) {
	t.Parallel()
	_, flags := checkWorld(t)
	base := flags[:len(flags)-2] // without --data
	missing := filepath.Join(t.TempDir(), "missing")
	code, out, errs := moat(t, append([]string{"check", "good.test", "--json", "--data", missing}, base...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, "mta-sts.hosted") {
		t.Error("hosting reported without a data directory")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("data directory created: %v", err)
	}

	data := t.TempDir()
	mustMoat(t, "domains", "add", "good.test", "--mx", "mx.good.test", "--data", data)
	out = mustMoat(t, append([]string{"check", "good.test", "bare.test", "--json", "--data", data}, base...)...)
	var reps []struct {
		Domain   string `json:"domain"`
		Findings []struct {
			ID, Message string
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"good.test": "This Moat hosts", "bare.test": "This Moat does not host"}
	for _, r := range reps {
		found := false
		for _, f := range r.Findings {
			if f.ID == "mta-sts.hosted" && strings.Contains(f.Message, want[r.Domain]) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no mta-sts.hosted finding saying %q", r.Domain, want[r.Domain])
		}
	}
}

func TestSetResolver(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"9.9.9.9":          "9.9.9.9:53",
		"9.9.9.9:5353":     "9.9.9.9:5353",
		"::1":              "[::1]:53",
		"[::1]":            "[::1]:53",
		"[::1]:5353":       "[::1]:5353",
		"dns.example":      "dns.example:53",
		"dns.example:5353": "dns.example:5353",
	} {
		var opts check.Options
		if err := setResolver(&opts, in); err != nil || opts.DNSAddr != want || opts.Resolver == nil {
			t.Errorf("setResolver(%q): DNSAddr %q, %v; want %q", in, opts.DNSAddr, err, want)
		}
	}
}
