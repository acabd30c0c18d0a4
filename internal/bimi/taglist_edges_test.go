package bimi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestParseRecordTagListEdges pins how ParseRecord reads the tag-list
// syntax (draft §4.2, after RFC 6376 §3.2) at its edges: duplicates, case,
// empty values, empty tag-specs, white space and folding, tags without
// "=", non-ASCII bytes and invalid tag names. BIMI is strict: receivers
// MUST NOT fix syntax errors (draft §4.2).
func TestParseRecordTagListEdges(t *testing.T) {
	t.Parallel()
	type want struct {
		// For a valid record: l=, a= and the extensions as "name=value".
		logo, auth string
		ext        []string
		// For an invalid record: the *TagError's tag and value, and a
		// substring of its reason.
		err               bool
		tag, value, cause string
	}
	const logo = "https://example.com/l.svg"
	for _, tc := range []struct {
		name, txt string
		want      want
	}{
		{"plain", "v=BIMI1; l=" + logo, want{logo: logo}},
		// Duplicates make the record invalid (RFC 6376 §3.2).
		{"duplicate l", "v=BIMI1; l=; l=" + logo, want{err: true, tag: "l", value: logo, cause: "duplicate"}},
		{"duplicate unknown tag", "v=BIMI1; l=; x=1; x=2", want{err: true, tag: "x", value: "2", cause: "duplicate"}},
		// Tag names are case-sensitive.
		{"upper-case L beside l", "v=BIMI1; l=; L=x", want{ext: []string{"L=x"}}},
		{"upper-case A", "v=BIMI1; l=" + logo + "; A=x", want{logo: logo, ext: []string{"A=x"}}},
		{"upper-case V", "V=BIMI1; l=", want{err: true, tag: "V", value: "BIMI1", cause: "first tag"}},
		// Empty values.
		{"empty l and a", "v=BIMI1; l=; a=", want{}},
		{"empty unknown tag", "v=BIMI1; l=; x=", want{ext: []string{"x="}}},
		{"empty version", "v=; l=", want{err: true, tag: "v", value: "", cause: "exactly BIMI1"}},
		// Empty tag-specs are errors; one trailing ";" is allowed.
		{"trailing semicolon", "v=BIMI1; l=;", want{}},
		{"trailing semicolon and space", "v=BIMI1; l=; \t", want{}},
		{"double semicolon", "v=BIMI1;; l=", want{err: true, cause: "empty tag-spec at position 2"}},
		{"two trailing semicolons", "v=BIMI1; l=;;", want{err: true, cause: "empty tag-spec at position 3"}},
		{"blank tag-spec", "v=BIMI1; l=; ;", want{err: true, cause: "empty tag-spec at position 3"}},
		{"leading semicolon", ";v=BIMI1; l=", want{err: true, cause: "empty tag-spec at position 1"}},
		{"only a semicolon", ";", want{err: true, cause: "empty tag-spec at position 1"}},
		{"only white space", " \t", want{err: true, cause: "empty record"}},
		// White space around tags, "=" and ";".
		{"spaces everywhere", "  v = BIMI1 ;  l = " + logo + "  ;  x = a  b ", want{logo: logo, ext: []string{"x=a  b"}}},
		{"tabs", "\tv\t=\tBIMI1\t;\tl\t=\t", want{}},
		// Folding white space is CRLF followed by white space; other line
		// breaks are errors (RFC 6376 §2.8).
		{"folded before a tag", "v=BIMI1;\r\n l=" + logo, want{logo: logo}},
		{"folded before a URI", "v=BIMI1; l=\r\n\t" + logo, want{logo: logo}},
		{"folded after a URI", "v=BIMI1; l=" + logo + "\r\n ;", want{logo: logo}},
		{"folded inside a value", "v=BIMI1; l=; x=a\r\n b", want{ext: []string{"x=a\r\n b"}}},
		{"CRLF at the end", "v=BIMI1; l=\r\n", want{err: true, tag: "l", value: "", cause: "byte 0x0d"}},
		{"bare LF", "v=BIMI1;\nl=", want{err: true, tag: "l", value: "", cause: "byte 0x0a"}},
		{"bare LF inside a value", "v=BIMI1; l=; x=a\nb", want{err: true, tag: "x", value: "a\nb", cause: "byte 0x0a"}},
		// A tag without "=".
		{"no equals", "v=BIMI1; l=; junk", want{err: true, tag: "", value: "junk", cause: `no "="`}},
		{"no equals first", "BIMI1; l=", want{err: true, tag: "", value: "BIMI1", cause: `no "="`}},
		{"equals in a value", "v=BIMI1; l=; x=a=b", want{ext: []string{"x=a=b"}}},
		// Non-ASCII and control bytes are errors, in names and values.
		{"non-ASCII value", "v=BIMI1; l=; x=caf\u00e9", want{err: true, tag: "x", value: "caf\u00e9", cause: "byte 0xc3"}},
		{"non-ASCII name", "v=BIMI1; l=; caf\u00e9=1", want{err: true, tag: "caf\u00e9", value: "1", cause: "invalid tag name"}},
		{"control", "v=BIMI1; l=; x=a\x01", want{err: true, tag: "x", value: "a\x01", cause: "byte 0x01"}},
		{"DEL", "v=BIMI1; l=; x=\x7f", want{err: true, tag: "x", value: "\x7f", cause: "byte 0x7f"}},
		// Tag names: ALPHA *(ALPHA / DIGIT / "_").
		{"underscore and digit", "v=BIMI1; l=; x_1=2", want{ext: []string{"x_1=2"}}},
		{"hyphen", "v=BIMI1; l=; x-y=1", want{err: true, tag: "x-y", value: "1", cause: "invalid tag name"}},
		{"leading underscore", "v=BIMI1; l=; _x=1", want{err: true, tag: "_x", value: "1", cause: "invalid tag name"}},
		{"space inside a name", "v=BIMI1; l=; x y=1", want{err: true, tag: "x y", value: "1", cause: "invalid tag name"}},
		{"empty name", "v=BIMI1; l=; =1", want{err: true, tag: "", value: "1", cause: "invalid tag name"}},
		// The first error in the record wins.
		{"two errors", "v=BIMI1; l=; 1x=2; junk", want{err: true, tag: "1x", value: "2", cause: "invalid tag name"}},
		// Length limit.
		{"too long", "v=BIMI1; l=; x=" + strings.Repeat("a", 65535), want{err: true, cause: "over the 65535 byte limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := ParseRecord(tc.txt)
			if tc.want.err {
				var te *TagError
				if !errors.As(err, &te) || !errors.Is(err, ErrSyntax) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want a *TagError", tc.txt, rec, err)
				}
				if te.Tag != tc.want.tag || te.Value != tc.want.value || !strings.Contains(te.Reason, tc.want.cause) {
					t.Errorf("ParseRecord(%q): tag %q value %q reason %q; want %q %q %q", tc.txt, te.Tag, te.Value, te.Reason, tc.want.tag, tc.want.value, tc.want.cause)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRecord(%q): %v", tc.txt, err)
			}
			var ext []string
			for _, p := range rec.Extensions {
				ext = append(ext, fmt.Sprintf("%s=%s", p.Tag, p.Value))
			}
			if rec.Logo != tc.want.logo || rec.Authority != tc.want.auth || !slices.Equal(ext, tc.want.ext) {
				t.Errorf("ParseRecord(%q) = l=%q a=%q extensions %q; want %q %q %q", tc.txt, rec.Logo, rec.Authority, ext, tc.want.logo, tc.want.auth, tc.want.ext)
			}
		})
	}
}
