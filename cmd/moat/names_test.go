package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/dnstest"
)

// TestDomainNamesAgree: "moat domains add" and "moat check" accept,
// normalize and refuse the same names, with the same reasons (both go
// through dnsname at the Domain level).
func TestDomainNamesAgree(t *testing.T) {
	t.Parallel()
	data := t.TempDir()

	// Refused by both, for the same reason.
	for _, name := range []string{"a_b.example", "co.uk", "xn--zz.example", "192.0.2.1", "localhost"} {
		code, _, addErr := moat(t, "domains", "add", name, "--mx", "mx.a_b.example", "--data", data)
		if code != exitError {
			t.Fatalf("domains add %s: exit %d, want %d", name, code, exitError)
		}
		code, _, checkErr := moat(t, "check", name, "--data", data)
		if code != exitError {
			t.Fatalf("check %s: exit %d, want %d", name, code, exitError)
		}
		addReason, checkReason := reasonOf(t, addErr, name), reasonOf(t, checkErr, name)
		if addReason == "" || addReason != checkReason {
			t.Errorf("%s: domains add says %q, check says %q; want the same reason", name, addErr, checkErr)
		}
		if addErr != checkErr {
			t.Errorf("%s: domains add says %q, check says %q; want the same message", name, addErr, checkErr)
		}
	}
	_, _, stderr := moat(t, "check", "a_b.example")
	if want := `label "a_b" has the character '_' (host names are letters, digits and hyphens, RFC 1123 §2.1)`; !strings.Contains(stderr, want) {
		t.Errorf("check a_b.example: stderr %q lacks %q", stderr, want)
	}

	// Accepted by both: a valid A-label, and the U-label it stands for,
	// normalize to the same name.
	out := mustMoat(t, "domains", "add", "xn--ber-goa.example", "--mx", "mx.xn--ber-goa.example", "--data", data, "--json")
	var d domainView
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Domain != "xn--ber-goa.example" {
		t.Fatalf("domains add xn--ber-goa.example = %q, %v", out, err)
	}
	if code, _, stderr := moat(t, "domains", "add", "ÜBER.example", "--mx", "MX.Über.example", "--data", data); code != exitError || !strings.Contains(stderr, `domain "xn--ber-goa.example" is already hosted`) {
		t.Errorf("domains add ÜBER.example: exit %d, stderr %q; want it refused as the same domain", code, stderr)
	}
	res := dnstest.Start(t, `xn--ber-goa.example. MX 10 mx.xn--ber-goa.example.`, nil)
	for _, name := range []string{"xn--ber-goa.example", "ÜBER.example", "Xn--Ber-Goa.Example."} {
		code, out, stderr := moat(t, "check", name, "--json", "--resolver", res.Addr, "--timeout", "5s", "--data", data)
		if code != exitOK {
			t.Fatalf("check %s: exit %d: %s", name, code, stderr)
		}
		var rep struct {
			Domain   string `json:"domain"`
			Findings []struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			} `json:"findings"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("check %s: %v\n%s", name, err, out)
		}
		if rep.Domain != "xn--ber-goa.example" {
			t.Errorf("check %s: domain %q, want xn--ber-goa.example", name, rep.Domain)
		}
		// The checker finds the domain hosted: it looked it up by the
		// name "domains add" stored.
		hosted := false
		for _, f := range rep.Findings {
			if f.ID == "mta-sts.hosted" && strings.Contains(f.Message, "This Moat hosts") {
				hosted = true
			}
		}
		if !hosted {
			t.Errorf("check %s: no mta-sts.hosted finding saying the domain is hosted: %+v", name, rep.Findings)
		}
	}
}

// reasonOf returns what stderr says after `"name": `.
func reasonOf(t *testing.T, stderr, name string) string {
	t.Helper()
	_, reason, ok := strings.Cut(stderr, `"`+name+`": `)
	if !ok {
		t.Errorf("stderr %q does not quote %q", stderr, name)
	}
	return strings.TrimSpace(reason)
}
