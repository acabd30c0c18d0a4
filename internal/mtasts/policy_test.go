package mtasts_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

// TestPolicyFixtures parses each testdata/policy/<quirk>.txt and compares
// with <quirk>.golden (the policy as JSON, or the error message); a
// mismatch writes <quirk>.got beside it.
func TestPolicyFixtures(t *testing.T) {
	t.Parallel()
	runGolden(t, "testdata/policy", func(t *testing.T, in []byte) string {
		p, err := mtasts.ParsePolicy(in)
		if err != nil {
			var pe *mtasts.PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *PolicyError", err)
			}
			return "error: " + err.Error() + "\n"
		}
		checkPolicyRoundTrip(t, p)
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	})
}

func checkPolicyRoundTrip(t *testing.T, p *mtasts.Policy) {
	t.Helper()
	out := p.Format()
	again, err := mtasts.ParsePolicy(out)
	if err != nil {
		t.Fatalf("Format() = %q does not parse: %v", out, err)
	}
	if !reflect.DeepEqual(p, again) {
		t.Errorf("round trip:\n%+v\n%q\n%+v", p, out, again)
	}
}

func TestPolicyFormat(t *testing.T) {
	t.Parallel()
	p := &mtasts.Policy{
		Mode:   mtasts.ModeEnforce,
		MX:     []string{"mail.example.com", "*.example.net", "backupmx.example.com"},
		MaxAge: 604800,
	}
	want := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n" +
		"mx: backupmx.example.com\r\nmax_age: 604800\r\n"
	if got := string(p.Format()); got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}
	p = &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeNone, MaxAge: 86400, Extensions: []mtasts.Pair{{Key: "x-owner", Value: "ops team"}}}
	want = "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\nx-owner: ops team\r\n"
	if got := string(p.Format()); got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}
}

func TestParsePolicyErrorFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		body     string
		sentinel error
		line     int
		key      string
		value    string
	}{
		{"mode", "version: STSv1\nmode: doubt\nmx: a.example\nmax_age: 1\n", mtasts.ErrPolicyMode, 2, "mode", "doubt"},
		{"max_age", "version: STSv1\r\nmode: enforce\r\nmx: a.example\r\nmax_age: xxx\r\n", mtasts.ErrPolicyMaxAge, 4, "max_age", "xxx"},
		{"mx", "version: STSv1\nmode: enforce\nmx: a.example\nmx: -bad.example\nmax_age: 1\n", mtasts.ErrPolicyMX, 4, "mx", "-bad.example"},
		{"version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", mtasts.ErrPolicyVersion, 1, "version", "STSv2"},
		{"syntax", "version: STSv1\nmode enforce\n", mtasts.ErrPolicySyntax, 2, "", "mode enforce"},
		{"missing mx", "version: STSv1\nmode: testing\nmax_age: 1\n", mtasts.ErrPolicyMX, 0, "mx", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mtasts.ParsePolicy([]byte(tc.body))
			var pe *mtasts.PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("got %v, want a *PolicyError wrapping %v", err, tc.sentinel)
			}
			if pe.Line != tc.line || pe.Key != tc.key || pe.Value != tc.value {
				t.Errorf("line %d key %q value %q, want %d %q %q", pe.Line, pe.Key, pe.Value, tc.line, tc.key, tc.value)
			}
			if tc.value != "" && !strings.Contains(err.Error(), tc.value) {
				t.Errorf("message %q does not name the value", err)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	good := mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"mx1.example.com", "*.mail.example.net"}, MaxAge: 604800}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid policy: %v", err)
	}
	none := mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeNone, MaxAge: 0}
	if err := none.Validate(); err != nil {
		t.Fatalf("mode none without mx: %v", err)
	}
	type fieldErr struct {
		sentinel   error
		key, value string
	}
	for _, tc := range []struct {
		name   string
		policy mtasts.Policy
		want   []fieldErr
	}{
		{"bad version", mtasts.Policy{Version: "STSv2", Mode: mtasts.ModeTesting, MX: []string{"a.example.com"}},
			[]fieldErr{{mtasts.ErrPolicyVersion, "version", "STSv2"}}},
		{"bad mode", mtasts.Policy{Mode: "Enforce", MX: []string{"a.example.com"}},
			[]fieldErr{{mtasts.ErrPolicyMode, "mode", "Enforce"}}},
		{"empty mode", mtasts.Policy{MX: []string{"a.example.com"}},
			[]fieldErr{{mtasts.ErrPolicyMode, "mode", ""}}},
		{"max_age high", mtasts.Policy{Mode: mtasts.ModeTesting, MX: []string{"a.example.com"}, MaxAge: 31557601},
			[]fieldErr{{mtasts.ErrPolicyMaxAge, "max_age", "31557601"}}},
		{"max_age negative", mtasts.Policy{Mode: mtasts.ModeTesting, MX: []string{"a.example.com"}, MaxAge: -1},
			[]fieldErr{{mtasts.ErrPolicyMaxAge, "max_age", "-1"}}},
		{"no mx", mtasts.Policy{Mode: mtasts.ModeEnforce, MaxAge: 10},
			[]fieldErr{{mtasts.ErrPolicyMX, "mx", ""}}},
		{"bad mx patterns", mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"ok.example.com", "192.0.2.1", "*.com", "mx.example.com."}},
			[]fieldErr{{mtasts.ErrPolicyMX, "mx", "192.0.2.1"}, {mtasts.ErrPolicyMX, "mx", "*.com"}, {mtasts.ErrPolicyMX, "mx", "mx.example.com."}}},
		{"extensions", mtasts.Policy{Mode: mtasts.ModeNone, Extensions: []mtasts.Pair{
			{Key: "mode", Value: "enforce"}, {Key: "x y", Value: "1"}, {Key: "note", Value: " padded"},
			{Key: "ok", Value: "1"}, {Key: "ok", Value: "2"}}},
			[]fieldErr{{mtasts.ErrPolicyExtension, "mode", "enforce"}, {mtasts.ErrPolicyExtension, "x y", "1"},
				{mtasts.ErrPolicyExtension, "note", " padded"}, {mtasts.ErrPolicyExtension, "ok", "2"}}},
		{"everything", mtasts.Policy{Version: "1", Mode: "strict", MX: []string{"bad_mx.example.com"}, MaxAge: -5},
			[]fieldErr{{mtasts.ErrPolicyVersion, "version", "1"}, {mtasts.ErrPolicyMode, "mode", "strict"},
				{mtasts.ErrPolicyMaxAge, "max_age", "-5"}, {mtasts.ErrPolicyMX, "mx", "bad_mx.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not joined", err)
			}
			errs := joined.Unwrap()
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				var pe *mtasts.PolicyError
				if !errors.As(errs[i], &pe) || !errors.Is(errs[i], w.sentinel) || pe.Key != w.key || pe.Value != w.value {
					t.Errorf("error %d = %v, want %v for %s=%q", i, errs[i], w.sentinel, w.key, w.value)
					continue
				}
				if !strings.Contains(pe.Error(), `"`+w.key+`"`) {
					t.Errorf("message %q does not name the field", pe)
				}
			}
		})
	}
}

// A validated policy always formats to text that parses back to itself.
func TestValidatedPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	p := &mtasts.Policy{
		Version: "STSv1", Mode: mtasts.ModeTesting, MaxAge: 1296000,
		MX:         []string{"mx1.example.com", "*.Backup-Example.com", "xn--bcher-kva.example"},
		Extensions: []mtasts.Pair{{Key: "x-contact", Value: "postmaster@example.com"}, {Key: "note", Value: "Grüße aus Köln"}},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	checkPolicyRoundTrip(t, p)
}

func TestPolicyMatch(t *testing.T) {
	t.Parallel()
	p := &mtasts.Policy{Mode: mtasts.ModeEnforce, MX: []string{"mail.example.com", "*.example.net"}}
	for host, want := range map[string]bool{
		"mail.example.com": true, "MAIL.example.com.": true, "a.example.net": true,
		"example.net": false, "a.b.example.net": false, "mail2.example.com": false, "": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
	if (&mtasts.Policy{Mode: mtasts.ModeNone}).Match("mail.example.com") {
		t.Error("a policy without mx matched")
	}
}

func TestModeValid(t *testing.T) {
	t.Parallel()
	for m, want := range map[mtasts.Mode]bool{"enforce": true, "testing": true, "none": true, "": false, "NONE": false, "report": false} {
		if m.Valid() != want {
			t.Errorf("Mode(%q).Valid() = %v", m, !want)
		}
	}
}
