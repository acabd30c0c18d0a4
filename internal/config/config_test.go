package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
zone: file.example.net
dns:
  listen: 127.0.0.1:1053
  ttl: 10m
https:
  listen: 127.0.0.1:1443
tlsrpt:
  rua: [mailto:a@example.net]
`)
	c, err := Load(Source{
		File:    file,
		Environ: []string{"MOAT_DNS_LISTEN=127.0.0.1:2053", "MOAT_TLSRPT_RUA=mailto:b@example.net,https://r.example.net/v1/tlsrpt", "PATH=/bin"},
		Flags:   map[string]string{"dns-listen": "127.0.0.1:3053"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Zone != "file.example.net" {
		t.Errorf("zone = %q, want the file's", c.Zone)
	}
	if c.DNS.Listen != "127.0.0.1:3053" {
		t.Errorf("dns.listen = %q, want the flag's (flags beat env beat file)", c.DNS.Listen)
	}
	if c.HTTPS.Listen != "127.0.0.1:1443" {
		t.Errorf("https.listen = %q, want the file's", c.HTTPS.Listen)
	}
	if c.DNS.TTL != 10*time.Minute {
		t.Errorf("dns.ttl = %v, want 10m", c.DNS.TTL)
	}
	if got := strings.Join(c.TLSRPT.RUA, " "); got != "mailto:b@example.net https://r.example.net/v1/tlsrpt" {
		t.Errorf("tlsrpt.rua = %q, want the environment's list", got)
	}
	if c.HTTP.Listen != ":80" || c.DataDir != DefaultDataDir || c.ACME.CA != DefaultACMECA {
		t.Errorf("defaults not kept: %+v", c)
	}
	if c.PolicyHost != "mta-sts.file.example.net" || c.DNS.Nameservers[0] != "ns1.file.example.net" || c.DNS.Hostmaster != "hostmaster@file.example.net" {
		t.Errorf("derived defaults wrong: policy host %q, ns %v, hostmaster %q", c.PolicyHost, c.DNS.Nameservers, c.DNS.Hostmaster)
	}
}

func TestDevDefaultsAndOverrides(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{Flags: map[string]string{"dev": "true", "https-listen": "127.0.0.1:9443"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Dev || c.Zone != DevZone || c.DNS.Listen != "127.0.0.1:5353" || c.HTTP.Listen != "127.0.0.1:8080" {
		t.Errorf("dev defaults not applied: %+v", c)
	}
	if c.HTTPS.Listen != "127.0.0.1:9443" {
		t.Errorf("https.listen = %q, want the flag to beat the dev default", c.HTTPS.Listen)
	}
	// --dev from the environment switches the defaults too.
	c, err = Load(Source{Environ: []string{"MOAT_DEV=true"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Zone != DevZone {
		t.Errorf("MOAT_DEV=true: zone %q, want %q", c.Zone, DevZone)
	}
}

func TestErrorsNameFieldAndValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  Source
		want []string
	}{
		{"unknown key", Source{File: "-"}, []string{"line 3", "nonsense"}},
		{"bad level", Source{Flags: map[string]string{"log-level": "loud"}}, []string{"log.level", `"loud"`}},
		{"bad listen", Source{Flags: map[string]string{"zone": "sts.example.net", "dns-listen": "nowhere"}}, []string{"dns.listen", `"nowhere"`}},
		{"bad port", Source{Flags: map[string]string{"zone": "sts.example.net", "https-listen": ":99999"}}, []string{"https.listen", "99999"}},
		{"bad zone", Source{Flags: map[string]string{"zone": "bad_zone..net"}}, []string{"zone", "bad_zone..net", "empty label"}},
		{"underscore zone", Source{Flags: map[string]string{"zone": "sts_x.example.net"}}, []string{"zone", "sts_x.example.net", `label "sts_x" has the character '_'`}},
		{"U-label zone", Source{Flags: map[string]string{"zone": "sts.bücher.example"}}, []string{"zone", `write it as the A-label "xn--bcher-kva"`}},
		{"single-label policy host", Source{Flags: map[string]string{"zone": "sts.example.net", "policy-host": "mta-sts"}}, []string{"policy_host", "not a fully qualified host name"}},
		{"IP intake host", Source{Flags: map[string]string{"zone": "sts.example.net"}, Environ: []string{"MOAT_INTAKE_HOST=192.0.2.1"}}, []string{"intake.host", "IP address"}},
		{"bad database", Source{Flags: map[string]string{"database": "mysql://x"}}, []string{"database", "mysql://x"}},
		{"bad acme", Source{Flags: map[string]string{"acme-ca": "http://ca.example/dir"}}, []string{"acme.ca", "http://ca.example/dir"}},
		{"bad rua", Source{Environ: []string{"MOAT_TLSRPT_RUA=ftp://x"}}, []string{"tlsrpt.rua", "ftp://x", "mailto"}},
		{"bad env duration", Source{Environ: []string{"MOAT_DNS_TTL=forever"}}, []string{"environment", "MOAT_DNS_TTL"}},
		{"bad flag bool", Source{Flags: map[string]string{"dev": "maybe"}}, []string{"--dev", "maybe"}},
		{"host outside zone", Source{File: "hosts"}, []string{"dns.hosts", "ns1.elsewhere.net", "outside"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.src.File {
			case "-":
				tc.src.File = writeFile(t, "zone: sts.example.net\ndns:\n  nonsense: 1\n")
			case "hosts":
				tc.src.File = writeFile(t, "zone: sts.example.net\ndns:\n  hosts:\n    ns1.elsewhere.net: [192.0.2.1]\n")
			}
			_, err := Load(tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestDNSListenNeedsZoneOnlyForServe(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{})
	if err != nil {
		t.Fatalf("defaults must load for data commands: %v", err)
	}
	if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "zone") {
		t.Fatalf("ValidateServe without a zone = %v, want an error naming zone", err)
	}
}

func TestReferenceCoversSchema(t *testing.T) {
	t.Parallel()
	ref := Reference()
	for _, f := range Fields() {
		if !strings.Contains(ref, "`"+f.Key+"`") {
			t.Errorf("reference misses %s", f.Key)
		}
		if f.Doc == "" {
			t.Errorf("field %s has no documentation", f.Key)
		}
	}
	if !strings.Contains(ref, "`MOAT_DNS_LISTEN`") || !strings.Contains(ref, "`--dns-listen`") {
		t.Errorf("reference lacks env or flag names:\n%s", ref)
	}
}

// TestREADMEReference keeps the README's configuration table generated
// from the schema: run `make gen` after changing config.go.
func TestREADMEReference(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if !strings.Contains(string(data), Reference()) {
		t.Fatal("README.md's configuration reference is out of date: run `make gen`")
	}
}

func TestPublishedRUADerivedFromIntake(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{Flags: map[string]string{"zone": "sts.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PublishedRUA(), ","); got != "mailto:tlsrpt@reports.sts.example.net,https://reports.sts.example.net/v1/tlsrpt" {
		t.Errorf("derived rua %q", got)
	}
	c, err = Load(Source{Flags: map[string]string{"zone": "sts.example.net"}, Environ: []string{
		"MOAT_INTAKE_HOST=Reports.Example.NET", "MOAT_INTAKE_ADDRESSES=TLS@reports.example.net,b@reports.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PublishedRUA(), ","); got != "mailto:tls@reports.example.net,mailto:b@reports.example.net,https://reports.example.net/v1/tlsrpt" {
		t.Errorf("rua from intake settings %q", got)
	}
	c, err = Load(Source{Flags: map[string]string{"zone": "sts.example.net"}, Environ: []string{"MOAT_TLSRPT_RUA=mailto:x@y.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.PublishedRUA(), ","); got != "mailto:x@y.example" {
		t.Errorf("explicit rua %q", got)
	}
	if _, err := Load(Source{Environ: []string{"MOAT_INTAKE_MAX_REPORT_SIZE=12x"}}); err == nil || !strings.Contains(err.Error(), "MOAT_INTAKE_MAX_REPORT_SIZE") {
		t.Errorf("bad size: %v", err)
	}
	if _, err := Load(Source{Flags: map[string]string{"smtp-listen": "25"}}); err == nil || !strings.Contains(err.Error(), "intake.smtp_listen") {
		t.Errorf("bad smtp listen: %v", err)
	}
}

// TestRetention: periods in days or as durations, from the file and the
// environment, and their nesting checked with a message naming the key.
func TestRetention(t *testing.T) {
	t.Parallel()
	c, err := Load(Source{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Retention.Raw, c.Retention.Reports, c.Retention.Rollups); got != "90d 400d 800d" {
		t.Errorf("default retention %s, want 90d 400d 800d", got)
	}
	file := writeFile(t, "retention:\n  raw: 30d\n  reports: 2160h\n  rollups: 0\n")
	c, err = Load(Source{File: file, Environ: []string{"MOAT_RETENTION_RAW=7d"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Raw != Period(7*24*time.Hour) || c.Retention.Reports != Period(90*24*time.Hour) || c.Retention.Rollups != 0 {
		t.Errorf("retention %+v, want 7d (environment), 90d, 0", c.Retention)
	}
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{Environ: []string{"MOAT_RETENTION_RAW=90 days"}}, `MOAT_RETENTION_RAW`},
		{Source{File: writeFile(t, "retention:\n  raw: 9x\n")}, `"9x" is not a period such as 90d or 2160h`},
		{Source{File: writeFile(t, "retention:\n  raw: 500d\n")}, `retention.raw "500d": longer than retention.reports (400d)`},
		{Source{File: writeFile(t, "retention:\n  reports: 0\n")}, `retention.reports "0": longer than retention.rollups (800d)`},
		{Source{File: writeFile(t, "retention:\n  raw: 12h\n")}, `retention.raw "12h0m0s": want 0 (keep forever) or at least 1d`},
		{Source{File: writeFile(t, "store:\n  lease_ttl: 1s\n")}, "store.lease_ttl"},
	} {
		if _, err := Load(tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.src, err, tc.want)
		}
	}
}
