package tlsrptstats

import (
	"strings"
	"testing"
)

// TestHints checks that every result type of RFC 8460 §4.3 has a hint of its
// own, naming the MX host or the policy host it is about.
func TestHints(t *testing.T) {
	t.Parallel()
	mxs := []string{"mx1.example.com"}
	for _, tc := range []struct {
		result, mention string
	}{
		{"starttls-not-supported", "mx1.example.com"},
		{"certificate-host-mismatch", "the certificate of MX mx1.example.com does not name mx1.example.com"},
		{"certificate-expired", "mx1.example.com"},
		{"certificate-not-trusted", "mx1.example.com"},
		{"validation-failure", "mx1.example.com"},
		{"tlsa-invalid", "mx1.example.com"},
		{"dnssec-invalid", "mx1.example.com"},
		{"dane-required", "mx1.example.com"},
		{"sts-policy-fetch-error", "https://mta-sts.example.com/.well-known/mta-sts.txt"},
		{"sts-policy-invalid", "https://mta-sts.example.com/.well-known/mta-sts.txt"},
		{"sts-webpki-invalid", "mta-sts.example.com"},
		{"unspecified", "without detailing"},
		{"x-new-type", `"x-new-type"`},
	} {
		meaning, fix := hint(tc.result, "example.com", mxs)
		if !strings.Contains(meaning, tc.mention) || fix == "" {
			t.Errorf("hint(%s) = %q; %q: want a meaning naming %q and a fix", tc.result, meaning, fix, tc.mention)
		}
		if tc.result != "x-new-type" && strings.Contains(meaning, "reported failures of type") {
			t.Errorf("hint(%s) is the generic one", tc.result)
		}
	}
	if m, _ := hint("certificate-expired", "example.com", nil); !strings.Contains(m, "an MX host") {
		t.Errorf("hint without MX = %q, want it to say an MX host", m)
	}
}

func TestMXPhrase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mxs  []string
		want string
	}{
		{nil, "an MX host"},
		{[]string{"a"}, "MX a"},
		{[]string{"a", "b"}, "MX a and b"},
		{[]string{"a", "b", "c", "d"}, "MX a, b and 2 more"},
	} {
		if got := mxPhrase(tc.mxs); got != tc.want {
			t.Errorf("mxPhrase(%q) = %q, want %q", tc.mxs, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 sessions"}, {1, "1 session"}, {7, "7 sessions"}, {999, "999 sessions"}, {1000, "1,000 sessions"},
		{1234567, "1,234,567 sessions"}, {-1234, "-1,234 sessions"},
	} {
		if got := plural(tc.n, "session"); got != tc.want {
			t.Errorf("plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
