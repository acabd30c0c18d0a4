package dmarc

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRecordValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		txt   string
		check func(t *testing.T, r *Record)
		warns []string // tags with a warning, in order
	}{
		// RFC 7489 Appendix B.2.1.
		{"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com", func(t *testing.T, r *Record) {
			if r.Policy != PolicyNone || len(r.RUA) != 1 || r.RUA[0].Address != "dmarc-feedback@example.com" ||
				r.RUA[0].Domain != "example.com" || r.RUA[0].Scheme != "mailto" || r.ADKIM != AlignRelaxed ||
				r.Percent != 100 || r.ReportInterval != 86400 || r.PSD != "u" || r.Testing != "n" {
				t.Errorf("record = %+v", r)
			}
		}, nil},
		// RFC 7489 Appendix B.2.2: external reporting.
		{"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net", func(t *testing.T, r *Record) {
			if len(r.RUF) != 1 || r.RUF[0].Domain != "thirdparty.example.net" {
				t.Errorf("RUF = %+v", r.RUF)
			}
		}, nil},
		// RFC 7489 Appendix B.2.3: pct and quarantine.
		{"v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net; pct=25", func(t *testing.T, r *Record) {
			if r.Policy != PolicyQuarantine || r.Percent != 25 {
				t.Errorf("record = %+v", r)
			}
		}, []string{"pct"}},
		// RFC 7489 Appendix B.2.4: sp.
		{"v=DMARC1; p=reject; sp=none; adkim=s; aspf=s", func(t *testing.T, r *Record) {
			if r.SubdomainPolicy != PolicyNone || r.EffectiveSubdomainPolicy() != PolicyNone || r.EffectiveNonexistentPolicy() != PolicyNone ||
				r.ADKIM != AlignStrict || r.ASPF != AlignStrict {
				t.Errorf("record = %+v", r)
			}
		}, nil},
		// Size limits (RFC 7489 §6.4), several URIs with spaces.
		{"v=DMARC1;p=reject;rua=mailto:a@example.com!10m , mailto:b@example.net!2048;ruf=mailto:c@example.com!1k", func(t *testing.T, r *Record) {
			if len(r.RUA) != 2 || r.RUA[0].MaxSize != 10<<20 || r.RUA[0].Size != "10m" || r.RUA[0].URI != "mailto:a@example.com" ||
				r.RUA[1].MaxSize != 2048 || r.RUF[0].MaxSize != 1024 {
				t.Errorf("RUA = %+v RUF = %+v", r.RUA, r.RUF)
			}
		}, []string{"rua", "rua", "ruf"}},
		// DMARCbis tags.
		{"v=DMARC1; p=reject; np=quarantine; psd=n; t=y", func(t *testing.T, r *Record) {
			if r.NonexistentPolicy != PolicyQuarantine || r.EffectiveNonexistentPolicy() != PolicyQuarantine || r.PSD != "n" || r.Testing != "y" {
				t.Errorf("record = %+v", r)
			}
		}, nil},
		{"v=DMARC1; p=reject; sp=quarantine", func(t *testing.T, r *Record) {
			if r.EffectiveNonexistentPolicy() != PolicyQuarantine {
				t.Errorf("np falls back to sp: %q", r.EffectiveNonexistentPolicy())
			}
		}, nil},
		// fo, rf, ri; whitespace around "=" and ":"; trailing ";".
		{"v = DMARC1 ;\tp = none ; ruf=mailto:f@example.com; fo = 1 : d:s ; rf=afrf; ri=3600;", func(t *testing.T, r *Record) {
			if !slices.Equal(r.FailureOptions, []string{"1", "d", "s"}) || r.ReportInterval != 3600 || !slices.Equal(r.ReportFormat, []string{"afrf"}) {
				t.Errorf("record = %+v", r)
			}
			if len(r.Tags) != 6 || r.Tags[3] != (Tag{"fo", "1 : d:s"}) {
				t.Errorf("Tags = %q", r.Tags)
			}
		}, nil},
		// Leniencies that warn.
		{"v=DMARC1; p=Reject; SP=NONE; foo=bar", func(t *testing.T, r *Record) {
			if r.Policy != PolicyReject || r.SubdomainPolicy != PolicyNone || !r.Has("sp") || r.Has("foo") {
				t.Errorf("record = %+v", r)
			}
		}, []string{"p", "sp", "sp", "foo"}},
		{"v=DMARC1; rua=mailto:a@example.com; p=none", nil, []string{"p"}},
		{"v=DMARC1; p=none;; fo=1", nil, []string{"", "fo"}},
		{"v=DMARC1; p=none; fo=0:1:0", nil, []string{"fo", "fo", "fo"}},
		{"v=DMARC1; p=none; rua=https://reports.example.com/dmarc", func(t *testing.T, r *Record) {
			if r.RUA[0].Scheme != "https" || r.RUA[0].Domain != "reports.example.com" {
				t.Errorf("RUA = %+v", r.RUA)
			}
		}, []string{"rua"}},
		{"v=DMARC1; p=none; rua=mailto:d%40x@Example.COM?subject=dmarc", func(t *testing.T, r *Record) {
			if r.RUA[0].Address != "d@x@Example.COM" || r.RUA[0].Domain != "example.com" {
				t.Errorf("RUA = %+v", r.RUA)
			}
		}, nil},
		{"v=DMARC1; p=none; pct=100", nil, []string{"pct"}},
		{"v=DMARC1; p=none; rua=mailto:a@example.com!18446744073709551615", func(t *testing.T, r *Record) {
			if r.RUA[0].MaxSize != 1<<64-1 {
				t.Errorf("MaxSize = %d", r.RUA[0].MaxSize)
			}
		}, []string{"rua"}},
	} {
		r, warns, err := ParseRecord(tc.txt)
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tc.txt, err)
			continue
		}
		var tags []string
		for _, w := range warns {
			tags = append(tags, w.Tag)
			if w.Message == "" {
				t.Errorf("ParseRecord(%q): empty warning for %q", tc.txt, w.Tag)
			}
		}
		if !slices.Equal(tags, tc.warns) {
			t.Errorf("ParseRecord(%q): warnings %v, want tags %q", tc.txt, warns, tc.warns)
		}
		if tc.check != nil {
			tc.check(t, r)
		}
	}
}

func TestParseRecordErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		txt, tag, value, reason string
		partial                 bool // a record is returned with the error
	}{
		{"", "v", "", "must start", false},
		{"p=none; v=DMARC1", "v", "p=none", "must start", false},
		{"v=DMARC2; p=none", "v", "DMARC2", "exactly", false},
		{"v=dmarc1; p=none", "v", "dmarc1", "exactly", false},
		{"v=spf1 -all", "v", "spf1 -all", "exactly", false},
		{"v=DMARC1", "p", "", "missing", true},
		{"v=DMARC1; rua=mailto:a@example.com", "p", "", "DMARCbis", true},
		{"v=DMARC1; p=rejected", "p", "rejected", `"none", "quarantine" or "reject"`, true},
		{"v=DMARC1; p=", "p", "", `"none"`, true},
		{"v=DMARC1; p=none; sp=block", "sp", "block", "quarantine", true},
		{"v=DMARC1; p=none; np=no", "np", "no", "quarantine", true},
		{"v=DMARC1; p=none; adkim=x", "adkim", "x", "relaxed", true},
		{"v=DMARC1; p=none; aspf=relaxed", "aspf", "relaxed", "relaxed", true},
		{"v=DMARC1; p=none; pct=101", "pct", "101", "0 to 100", true},
		{"v=DMARC1; p=none; pct=-1", "pct", "-1", "0 to 100", true},
		{"v=DMARC1; p=none; pct=50%", "pct", "50%", "0 to 100", true},
		{"v=DMARC1; p=none; ri=4294967296", "ri", "4294967296", "32-bit", true},
		{"v=DMARC1; p=none; ri=1d", "ri", "1d", "seconds", true},
		{"v=DMARC1; p=none; fo=2", "fo", "2", `"2"`, true},
		{"v=DMARC1; p=none; rf=iodef", "rf", "iodef", "afrf", true},
		{"v=DMARC1; p=none; psd=x", "psd", "x", `"u"`, true},
		{"v=DMARC1; p=none; t=yes", "t", "yes", `"y" or "n"`, true},
		{"v=DMARC1; p=none; rua=dmarc@example.com", "rua", "dmarc@example.com", "no scheme", true},
		{"v=DMARC1; p=none; rua=mailto:dmarc.example.com", "rua", "mailto:dmarc.example.com", "not an email address", true},
		{"v=DMARC1; p=none; rua=mailto:a@localhost", "rua", "mailto:a@localhost", "mail domain", true},
		{"v=DMARC1; p=none; rua=mailto:a@example.com!", "rua", "mailto:a@example.com!", "size limit", true},
		{"v=DMARC1; p=none; rua=mailto:a@example.com!10x", "rua", "mailto:a@example.com!10x", "size limit", true},
		{"v=DMARC1; p=none; rua=mailto:a@example.com!18446744073709551615k", "rua", "mailto:a@example.com!18446744073709551615k", "64 bits", true},
		{"v=DMARC1; p=none; rua=mailto:a@example.com,", "rua", "mailto:a@example.com,", "empty URI", true},
		{"v=DMARC1; p=none; ruf=", "ruf", "", "empty URI", true},
		{"v=DMARC1; p=none; rua=https://:443/x", "rua", "https://:443/x", "no host", true},
		{"v=DMARC1; p=none; p=reject", "p", "reject", "more than once", true},
		{"v=DMARC1; p=none; v=DMARC1", "v", "DMARC1", "first tag only", true},
		{"v=DMARC1; p=none; rua", "rua", "", `no "="`, true},
		{"v=DMARC1; p=none; r-a=x", "r-a", "x", "letters only", true},
	} {
		r, _, err := ParseRecord(tc.txt)
		var te *TagError
		if !errors.As(err, &te) || !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseRecord(%q) = %v, want a *TagError", tc.txt, err)
			continue
		}
		if te.Tag != tc.tag || te.Value != tc.value || !strings.Contains(te.Reason, tc.reason) {
			t.Errorf("ParseRecord(%q): %+v, want tag %q value %q reason containing %q", tc.txt, te, tc.tag, tc.value, tc.reason)
		}
		if (r != nil) != tc.partial {
			t.Errorf("ParseRecord(%q): record %v, want partial %v", tc.txt, r, tc.partial)
		}
		if !strings.Contains(err.Error(), tc.tag) {
			t.Errorf("error %q does not name the tag", err)
		}
	}
	// Several bad tags: one error each, the good tags still applied.
	r, _, err := ParseRecord("v=DMARC1; p=bad; sp=reject; adkim=q; rua=mailto:a@example.com")
	var tags []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var te *TagError
		if errors.As(e, &te) {
			tags = append(tags, te.Tag)
		}
	}
	if !slices.Equal(tags, []string{"p", "adkim"}) {
		t.Errorf("error tags = %v (%v)", tags, err)
	}
	if r.SubdomainPolicy != PolicyReject || len(r.RUA) != 1 || r.Policy != "" {
		t.Errorf("partial record = %+v", r)
	}
}

func TestIsRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		txt       string
		is, looks bool
	}{
		{"v=DMARC1; p=none", true, false},
		{"v=DMARC1", true, false},
		{" v = DMARC1 ;p=none", true, false},
		{"V=DMARC1; p=none", true, false},
		{"v=dmarc1; p=none", false, true},
		{"v=DMARC2; p=none", false, true},
		{"v=DMARC10; p=none", false, true},
		{"p=none; v=DMARC1", false, false},
		{"v=spf1 -all", false, false},
		{"", false, false},
	} {
		if IsRecord(tc.txt) != tc.is || LooksLikeRecord(tc.txt) != tc.looks {
			t.Errorf("%q: IsRecord %v LooksLikeRecord %v", tc.txt, IsRecord(tc.txt), LooksLikeRecord(tc.txt))
		}
	}
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
		"v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net; pct=25",
		"v=DMARC1; p=reject; sp=none; np=quarantine; psd=n; t=y; adkim=s; aspf=r",
		"v=DMARC1;p=reject;rua=mailto:a@example.com!10m,mailto:b@example.net!2048;fo=1:d:s;rf=afrf;ri=3600",
		"v=DMARC1; p=none; rua=https://reports.example.com/x; foo=bar;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, warns, err := ParseRecord(s)
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("ParseRecord(%q): error %v does not wrap ErrSyntax", s, err)
		}
		if r == nil {
			if err == nil {
				t.Fatalf("ParseRecord(%q): nil record without error", s)
			}
			return
		}
		if IsRecord(s) != true {
			t.Fatalf("ParseRecord(%q) returned a record but IsRecord is false", s)
		}
		for _, w := range warns {
			if w.Message == "" {
				t.Fatalf("ParseRecord(%q): empty warning", s)
			}
		}
		if r.Percent < 0 || r.Percent > 100 {
			t.Fatalf("ParseRecord(%q): pct %d", s, r.Percent)
		}
		for _, u := range append(slices.Clone(r.RUA), r.RUF...) {
			if u.Scheme == "" || u.Domain == "" || !strings.HasPrefix(u.Raw, u.URI) {
				t.Fatalf("ParseRecord(%q): URI %+v", s, u)
			}
		}
		if err == nil && r.Policy == "" {
			t.Fatalf("ParseRecord(%q): no policy without error", s)
		}
	})
}
