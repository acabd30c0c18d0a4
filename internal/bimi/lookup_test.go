package bimi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/dnstest"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	zone := `
default._bimi.example.com.       TXT "v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem"
default._bimi.example.com.       TXT "v=spf1 -all"
brand._bimi.example.com.         TXT "v=BIMI1; l=https://example.com/brand.svg"
default._bimi.decline.example.com. TXT "v=BIMI1; l=; a=;"
default._bimi.two.example.        TXT "v=BIMI1; l=https://two.example/a.svg"
default._bimi.two.example.        TXT "v=BIMI1; l=https://two.example/b.svg"
default._bimi.bad.example.        TXT "v=BIMI1; l=http://bad.example/a.svg"
default._bimi.near.example.       TXT "v=BIMI1 garbage"
default._bimi.case.example.       TXT "V=BIMI1; l=https://case.example/a.svg"
default._bimi.case.example.       A   192.0.2.1
`
	srv := dnstest.Start(t, zone, nil)
	r := srv.Resolver()
	ctx := context.Background()

	tests := []struct {
		selector, domain string
		name             string // where found, "" for an error
		fallback         bool
		logo             string
		err              error
		errText          string
	}{
		{"", "example.com", "default._bimi.example.com", false, "https://example.com/logo.svg", nil, ""},
		{"default", "Mail.Example.com.", "default._bimi.example.com", true, "https://example.com/logo.svg", nil, ""},
		{"brand", "news.example.com", "brand._bimi.example.com", true, "https://example.com/brand.svg", nil, ""},
		// A subdomain that declines is not overridden by its
		// organizational domain's record (§4.2.1).
		{"", "decline.example.com", "default._bimi.decline.example.com", false, "", nil, ""},
		{"", "two.example", "", false, "", ErrMultipleRecords, "2 records at default._bimi.two.example"},
		{"", "none.example", "", false, "", ErrNoRecord, "default._bimi.none.example"},
		{"other", "sub.none.example", "", false, "", ErrNoRecord, "other._bimi.sub.none.example or other._bimi.none.example"},
		{"", "near.example", "", false, "", ErrNoRecord, "exactly BIMI1"},
		{"", "case.example", "", false, "", ErrNoRecord, "first tag"},
		{"", "bad..example", "", false, "", ErrBadName, ""},
		{"a b", "example.com", "", false, "", ErrBadName, ""},
	}
	for _, tc := range tests {
		f, err := Lookup(ctx, r, tc.selector, tc.domain)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("%s %s: got %v, want %v containing %q", tc.selector, tc.domain, err, tc.err, tc.errText)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tc.selector, tc.domain, err)
			continue
		}
		if f.Name != tc.name || f.Fallback != tc.fallback || f.Record == nil || f.Record.Logo != tc.logo {
			t.Errorf("%s %s: got %+v", tc.selector, tc.domain, f)
		}
	}

	// One v=BIMI1 record that does not parse: Found and the parse error.
	f, err := Lookup(ctx, r, "", "bad.example")
	var te *TagError
	if !errors.As(err, &te) || te.Tag != "l" || f == nil || f.Name != "default._bimi.bad.example" || f.Record != nil || !strings.Contains(f.TXT, "http://") {
		t.Errorf("bad.example: got %+v, %v", f, err)
	}

	// A failed query is not an absent record: no fallback.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Lookup(cancelled, r, "", "sub.example.com"); !errors.Is(err, ErrLookup) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestStartsBIMI1(t *testing.T) {
	t.Parallel()
	for txt, want := range map[string]bool{
		"v=BIMI1":         true,
		"v=BIMI1;":        true,
		" v = BIMI1 ; l=": true,
		"v=BIMI10; l=":    false,
		"v=BIMI1 x; l=":   false,
		"V=BIMI1; l=":     false,
		"l=; v=BIMI1":     false,
		"v=bimi1; l=":     false,
		"":                false,
		"v":               false,
		"v=":              false,
	} {
		if got := startsBIMI1(txt); got != want {
			t.Errorf("startsBIMI1(%q) = %v", txt, got)
		}
	}
}
