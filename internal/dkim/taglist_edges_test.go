package dkim

import (
	"errors"
	"strings"
	"testing"
)

// TestParseKeyTagListEdges pins how ParseKey reads the tag-list syntax of
// RFC 6376 §3.2 at its edges: duplicates, case, empty values, empty
// tag-specs, white space and folding, tags without "=", non-ASCII bytes and
// invalid tag names. A key record is valid with an empty p= (revoked), so
// most cases use one.
func TestParseKeyTagListEdges(t *testing.T) {
	t.Parallel()
	type want struct {
		// For a valid record: the version, notes and warnings (one
		// substring per warning, in order; nil for none).
		version, notes string
		warns          []string
		// For an invalid record: the *TagError's tag and value, and a
		// substring of its reason.
		err               bool
		tag, value, cause string
	}
	for _, tc := range []struct {
		name, txt string
		want      want
	}{
		// Duplicates: the whole tag-list is invalid (RFC 6376 §3.2).
		{"duplicate p", "v=DKIM1; p=; p=", want{err: true, tag: "p", value: "", cause: "duplicate"}},
		{"duplicate n", "v=DKIM1; n=a; n=b; p=", want{err: true, tag: "n", value: "b", cause: "duplicate"}},
		{"duplicate unknown tag", "v=DKIM1; x=1; x=2; p=", want{err: true, tag: "x", value: "2", cause: "duplicate"}},
		// Tag names are case-sensitive: "P" is another (unknown) tag.
		{"upper-case P beside p", "v=DKIM1; P=x; p=", want{version: "DKIM1"}},
		{"upper-case V", "V=DKIM1; p=", want{version: ""}},
		{"upper-case N", "v=DKIM1; N=x; p=", want{version: "DKIM1"}},
		// Empty values.
		{"empty n", "v=DKIM1; n=; p=", want{version: "DKIM1"}},
		{"empty unknown tag", "v=DKIM1; x=; p=", want{version: "DKIM1"}},
		// Empty tag-specs are tolerated with a warning; one trailing ";"
		// is allowed.
		{"double semicolon", "v=DKIM1;; p=", want{version: "DKIM1", warns: []string{"empty tag-spec"}}},
		{"leading semicolon", "; v=DKIM1; p=", want{version: "DKIM1", warns: []string{"empty tag-spec"}}},
		{"trailing semicolon", "v=DKIM1; p=;", want{version: "DKIM1"}},
		{"two trailing semicolons", "v=DKIM1; p=;;", want{version: "DKIM1", warns: []string{"empty tag-spec"}}},
		{"blank tag-spec", "v=DKIM1; p=; ;", want{version: "DKIM1", warns: []string{"empty tag-spec"}}},
		{"three empty tag-specs", ";v=DKIM1;;p=;;", want{version: "DKIM1", warns: []string{"empty tag-spec", "empty tag-spec", "empty tag-spec"}}},
		{"empty", "", want{err: true, cause: "empty record"}},
		{"only a semicolon", ";", want{err: true, cause: "empty record"}},
		{"only white space", " \t ", want{err: true, cause: "empty record"}},
		// White space around tags, "=" and ";".
		{"spaces everywhere", "  v = DKIM1 ;  n = a  b ;  p =  ;  ", want{version: "DKIM1", notes: "a  b"}},
		{"tabs", "\tv\t=\tDKIM1\t;\tp\t=\t", want{version: "DKIM1"}},
		// Folding white space (CRLF followed by white space) and bare
		// line breaks, which the key records of some providers carry.
		{"folded before a tag", "v=DKIM1;\r\n p=", want{version: "DKIM1"}},
		{"folded inside a value", "v=DKIM1; n=a\r\n\tb; p=", want{version: "DKIM1", notes: "a\r\n\tb"}},
		{"folded around =", "v=DKIM1; n\r\n =\r\n x; p=", want{version: "DKIM1", notes: "x"}},
		{"CRLF at the end", "v=DKIM1; p=\r\n", want{version: "DKIM1"}},
		{"bare LF", "v=DKIM1;\np=", want{version: "DKIM1"}},
		{"bare CR inside a value", "v=DKIM1; n=a\rb; p=", want{version: "DKIM1", notes: "a\rb"}},
		// A tag without "=".
		{"no equals", "v=DKIM1; junk; p=", want{err: true, tag: "", value: "junk", cause: `no "="`}},
		{"no equals at the end", "v=DKIM1; p", want{err: true, tag: "", value: "p", cause: `no "="`}},
		{"equals in a value", "v=DKIM1; n=a=b; p=", want{version: "DKIM1", notes: "a=b"}},
		// Non-ASCII bytes: a warning in values, an error in names.
		{"non-ASCII value", "v=DKIM1; n=caf\u00e9; p=", want{version: "DKIM1", notes: "caf\u00e9", warns: []string{"n= holds non-ASCII"}}},
		{"non-ASCII name", "v=DKIM1; caf\u00e9=1; p=", want{err: true, tag: "caf\u00e9", value: "1", cause: "invalid tag name"}},
		{"non-ASCII then control", "v=DKIM1; n=\u00e9\x01; p=", want{err: true, tag: "n", value: "\u00e9\x01", cause: "control character 0x01 at offset 2"}},
		{"control", "v=DKIM1; n=a\x01; p=", want{err: true, tag: "n", value: "a\x01", cause: "control character 0x01"}},
		{"DEL", "v=DKIM1; n=a\x7f; p=", want{err: true, tag: "n", value: "a\x7f", cause: "control character 0x7f"}},
		// Tag names: ALPHA *(ALPHA / DIGIT / "_").
		{"underscore and digit", "v=DKIM1; x_1=2; p=", want{version: "DKIM1"}},
		{"leading digit", "v=DKIM1; 1x=2; p=", want{err: true, tag: "1x", value: "2", cause: "invalid tag name"}},
		{"hyphen", "v=DKIM1; x-y=2; p=", want{err: true, tag: "x-y", value: "2", cause: "invalid tag name"}},
		{"leading underscore", "v=DKIM1; _x=2; p=", want{err: true, tag: "_x", value: "2", cause: "invalid tag name"}},
		{"space inside a name", "v=DKIM1; k r=1; p=", want{err: true, tag: "k r", value: "1", cause: "invalid tag name"}},
		{"empty name", "v=DKIM1; =x; p=", want{err: true, tag: "", value: "x", cause: "invalid tag name"}},
		// The first error in the record wins.
		{"two errors", "v=DKIM1; 1x=2; junk; p=", want{err: true, tag: "1x", value: "2", cause: "invalid tag name"}},
		{"warning then error", "v=DKIM1;; junk; p=", want{err: true, tag: "", value: "junk", cause: `no "="`}},
		// Length limit: no TXT record is longer than a DNS message.
		{"too long", "v=DKIM1; n=" + strings.Repeat("a", 65535) + "; p=", want{err: true, cause: "over the 65535 byte limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.txt)
			if tc.want.err {
				var te *TagError
				if !errors.As(err, &te) || !errors.Is(err, ErrSyntax) {
					t.Fatalf("ParseKey(%q) = %+v, %v; want a *TagError", tc.txt, k, err)
				}
				if te.Tag != tc.want.tag || te.Value != tc.want.value || !strings.Contains(te.Reason, tc.want.cause) {
					t.Errorf("ParseKey(%q): tag %q value %q reason %q; want %q %q %q", tc.txt, te.Tag, te.Value, te.Reason, tc.want.tag, tc.want.value, tc.want.cause)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tc.txt, err)
			}
			if k.Version != tc.want.version || k.Notes != tc.want.notes || !k.Revoked {
				t.Errorf("ParseKey(%q) = %+v; want version %q notes %q, revoked", tc.txt, k, tc.want.version, tc.want.notes)
			}
			if len(k.Warnings) != len(tc.want.warns) {
				t.Fatalf("ParseKey(%q): warnings %q; want %q", tc.txt, k.Warnings, tc.want.warns)
			}
			for i, w := range tc.want.warns {
				if !strings.Contains(k.Warnings[i], w) {
					t.Errorf("ParseKey(%q): warning %d %q; want %q", tc.txt, i, k.Warnings[i], w)
				}
			}
		})
	}
}
