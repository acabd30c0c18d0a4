package taglist

import (
	"errors"
	"strings"
	"testing"
)

// fuzzOptions builds Options from the bits of b, so that the fuzzer tries
// every combination.
func fuzzOptions(b uint16) Options {
	return Options{
		Duplicates:     Duplicates(b & 3),
		FoldCase:       b&4 != 0,
		NoEmptyValues:  b&8 != 0,
		SkipEmptySpecs: b&16 != 0,
		Values:         Values((b >> 5 & 3) % 3),
		LooseNewlines:  b&128 != 0,
		KeepGoing:      b&256 != 0,
	}
}

// FuzzParse: Parse never panics, its errors are *SyntaxErrors wrapping
// ErrSyntax with offsets inside the input, its tags point into the input,
// and tags it returns, formatted and parsed again, are the same tags.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		// RFC 6376 §3.6.1 and appendix C.
		"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB",
		// RFC 6376 §3.5: a DKIM-Signature with folds.
		"v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n c=simple; q=dns/txt; i=@eng.example.net;\r\n t=1117574938; x=1118006938;\r\n h=from:to:subject:date;\r\n bh=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=;\r\n b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZ\r\n \t VoG4ZHRNiYzR",
		// RFC 7489 appendix B.
		"v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net; pct=25",
		// BIMI draft §4.2.1.
		"v=BIMI1; l=; a=;",
		"V=DMARC1;; P=none; junk; foo=1; foo=2; r-a=x;;",
		"n=caf\u00e9\x01; p=\r\n; q=a\r\nb; =; ;",
	} {
		for _, b := range []uint16{0, 0x1ff, 0x0d0, 0x1d6} {
			f.Add(s, b)
		}
	}
	f.Fuzz(func(t *testing.T, s string, b uint16) {
		opts := fuzzOptions(b)
		tags, notes, err := Parse(s, opts)
		for _, e := range SyntaxErrors(err) {
			if e.Offset < 0 || e.Offset > len(s) || e.Reason == "" {
				t.Fatalf("Parse(%q, %+v): error %+v", s, opts, e)
			}
		}
		if err != nil && (!errors.Is(err, ErrSyntax) || len(SyntaxErrors(err)) == 0) {
			t.Fatalf("Parse(%q, %+v): error %v is not a *SyntaxError", s, opts, err)
		}
		if err != nil && !opts.KeepGoing && (tags != nil || notes != nil) {
			t.Fatalf("Parse(%q, %+v): tags %v with error %v", s, opts, tags, err)
		}
		for _, n := range notes {
			if n.Offset < 0 || n.Offset > len(s) || n.Text == "" {
				t.Fatalf("Parse(%q, %+v): note %+v", s, opts, n)
			}
		}
		for _, tag := range tags {
			if s[tag.Offset:tag.Offset+len(tag.Name)] != tag.Name || s[tag.ValueOffset:tag.ValueOffset+len(tag.Value)] != tag.Value {
				t.Fatalf("Parse(%q, %+v): tag %+v does not point into the input", s, opts, tag)
			}
			if opts.FoldCase && tag.Key != strings.ToLower(tag.Name) || !opts.FoldCase && tag.Key != tag.Name {
				t.Fatalf("Parse(%q, %+v): key of %+v", s, opts, tag)
			}
		}
		if tags == nil {
			return
		}
		out := Format(tags)
		again, _, err := Parse(out, opts)
		if err != nil {
			t.Fatalf("Parse(%q, %+v) -> %q: %v", s, opts, out, err)
		}
		if len(again) != len(tags) {
			t.Fatalf("Parse(%q, %+v) -> %q: %d tags, then %d", s, opts, out, len(tags), len(again))
		}
		for i := range tags {
			if again[i].Name != tags[i].Name || again[i].Key != tags[i].Key || again[i].Value != tags[i].Value {
				t.Fatalf("Parse(%q, %+v) -> %q: tag %+v, then %+v", s, opts, out, tags[i], again[i])
			}
		}
	})
}
