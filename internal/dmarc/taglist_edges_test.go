package dmarc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestParseRecordTagListEdges pins how ParseRecord reads the tag-list
// syntax (RFC 7489 §6.4, after RFC 6376 §3.2) at its edges: duplicates,
// case, empty values, empty tags, white space and folding, tags without
// "=", non-ASCII bytes and invalid tag names.
func TestParseRecordTagListEdges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, txt string
		// tags is the record's Tags as "name=value"; nil when no record
		// is returned.
		tags []string
		// warns are the tags of the warnings, in order.
		warns []string
		// errs are the *TagErrors as "tag=value: reason substring", in
		// order.
		errs []string
	}{
		{"plain", "v=DMARC1; p=none", []string{"v=DMARC1", "p=none"}, nil, nil},
		// Duplicates: an error for known tags (the first is kept), a
		// warning per occurrence for unknown ones.
		{"duplicate p", "v=DMARC1; p=none; p=reject", []string{"v=DMARC1", "p=none"}, nil, []string{"p=reject: more than once"}},
		{"duplicate p in other case", "v=DMARC1; p=none; P=reject", []string{"v=DMARC1", "p=none"}, nil, []string{"p=reject: more than once"}},
		{"duplicate unknown tag", "v=DMARC1; p=none; foo=1; foo=2", []string{"v=DMARC1", "p=none"}, []string{"foo", "foo"}, nil},
		{"duplicate v", "v=DMARC1; p=none; v=DMARC1", []string{"v=DMARC1", "p=none"}, nil, []string{"v=DMARC1: first tag only"}},
		// Upper case names are folded, with a warning.
		{"upper-case names", "V=DMARC1; P=none; RUA=mailto:a@example.com", []string{"v=DMARC1", "p=none", "rua=mailto:a@example.com"}, []string{"v", "p", "rua"}, nil},
		{"upper-case name and value", "v=DMARC1; P=NONE", []string{"v=DMARC1", "p=NONE"}, []string{"p", "p"}, nil},
		{"upper-case unknown tag", "v=DMARC1; p=none; FOO=1", []string{"v=DMARC1", "p=none"}, []string{"FOO"}, nil},
		// Empty values go to each tag's own check.
		{"empty p", "v=DMARC1; p=", []string{"v=DMARC1", "p="}, nil, []string{`p=: "none"`}},
		{"empty sp", "v=DMARC1; p=none; sp=", []string{"v=DMARC1", "p=none", "sp="}, nil, []string{`sp=: "none"`}},
		{"empty rua", "v=DMARC1; p=none; rua=", []string{"v=DMARC1", "p=none", "rua="}, nil, []string{"rua=: empty URI"}},
		{"empty unknown", "v=DMARC1; p=none; foo=", []string{"v=DMARC1", "p=none"}, []string{"foo"}, nil},
		// Empty tags between semicolons warn; one trailing ";" is fine.
		{"double semicolon", "v=DMARC1;; p=none", []string{"v=DMARC1", "p=none"}, []string{"", "p"}, nil},
		{"two trailing semicolons", "v=DMARC1; p=none;;", []string{"v=DMARC1", "p=none"}, []string{""}, nil},
		{"blank tag", "v=DMARC1; p=none; ;", []string{"v=DMARC1", "p=none"}, []string{""}, nil},
		{"empty tags around a bad tag", "v=DMARC1; p=none;; junk;; sp=x", []string{"v=DMARC1", "p=none", "sp=x"}, []string{"", ""}, []string{"junk=: no \"=\"", "sp=x: quarantine"}},
		{"trailing semicolon", "v=DMARC1; p=none;", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"trailing semicolon and space", "v=DMARC1; p=none; \t", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"leading semicolon", ";v=DMARC1; p=none", nil, nil, []string{"v=: must start"}},
		{"empty", "", nil, nil, []string{"v=: must start"}},
		// White space and folding around tags, "=" and ";".
		{"leading white space", " \tv=DMARC1; p=none", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"spaces everywhere", " v = DMARC1 ;  p = none  ; rua = mailto:a@example.com ", []string{"v=DMARC1", "p=none", "rua=mailto:a@example.com"}, nil, nil},
		{"folded", "v=DMARC1;\r\n p=none;\r\n\trua=mailto:a@example.com", []string{"v=DMARC1", "p=none", "rua=mailto:a@example.com"}, nil, nil},
		{"leading CRLF", "\r\n v=DMARC1; p=none", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"CRLF at the end", "v=DMARC1; p=none\r\n", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"bare LF", "v=DMARC1;\np=none", []string{"v=DMARC1", "p=none"}, nil, nil},
		{"folded inside a value", "v=DMARC1; p=none; rua=mailto:a@example.com,\r\n mailto:b@example.com", []string{"v=DMARC1", "p=none", "rua=mailto:a@example.com,\r\n mailto:b@example.com"}, nil, nil},
		// Tags without "=": an error naming the text; the other tags
		// still apply, in order.
		{"no equals", "v=DMARC1; p=none; junk; sp=reject", []string{"v=DMARC1", "p=none", "sp=reject"}, nil, []string{`junk=: no "="`}},
		{"no equals first", "v=DMARC1; junk; p=none", []string{"v=DMARC1", "p=none"}, []string{"p"}, []string{`junk=: no "="`}},
		{"errors in order", "v=DMARC1; p=bad; junk; adkim=q; 1x=2", []string{"v=DMARC1", "p=bad", "adkim=q"}, nil, []string{`p=bad: "none"`, `junk=: no "="`, "adkim=q: relaxed", "1x=2: letters only"}},
		{"version without equals", "DMARC1; p=none", nil, nil, []string{"v=DMARC1: must start"}},
		{"equals in a value", "v=DMARC1; p=none; foo=a=b", []string{"v=DMARC1", "p=none"}, []string{"foo"}, nil},
		// Non-ASCII bytes: values are left to each tag's check; names
		// must be ASCII letters, even U+212A KELVIN SIGN, which
		// strings.ToLower maps to "k".
		{"non-ASCII policy", "v=DMARC1; p=n\u00f6ne", []string{"v=DMARC1", "p=n\u00f6ne"}, nil, []string{"p=n\u00f6ne: \"none\""}},
		{"non-ASCII unknown value", "v=DMARC1; p=none; foo=caf\u00e9", []string{"v=DMARC1", "p=none"}, []string{"foo"}, nil},
		{"non-ASCII name", "v=DMARC1; p=none; f\u00f6=1", []string{"v=DMARC1", "p=none"}, nil, []string{"f\u00f6=1: letters only"}},
		{"Kelvin sign name", "v=DMARC1; p=none; AD\u212aIM=s", []string{"v=DMARC1", "p=none"}, nil, []string{"AD\u212aIM=s: letters only"}},
		{"control in an unknown value", "v=DMARC1; p=none; foo=\x01", []string{"v=DMARC1", "p=none"}, []string{"foo"}, nil},
		{"control in a policy", "v=DMARC1; p=none\x01", []string{"v=DMARC1", "p=none\x01"}, nil, []string{"p=none\x01: \"none\""}},
		// Tag names: letters only (RFC 7489 §6.4).
		{"hyphen", "v=DMARC1; p=none; r-a=x", []string{"v=DMARC1", "p=none"}, nil, []string{"r-a=x: letters only"}},
		{"digit", "v=DMARC1; p=none; a1=x", []string{"v=DMARC1", "p=none"}, nil, []string{"a1=x: letters only"}},
		{"underscore", "v=DMARC1; p=none; _x=1", []string{"v=DMARC1", "p=none"}, nil, []string{"_x=1: letters only"}},
		{"space inside a name", "v=DMARC1; p=none; r a=x", []string{"v=DMARC1", "p=none"}, nil, []string{"r a=x: letters only"}},
		{"empty name", "v=DMARC1; p=none; =x", []string{"v=DMARC1", "p=none"}, nil, []string{"=x: letters only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, warns, err := ParseRecord(tc.txt)
			if (r == nil) != (tc.tags == nil) {
				t.Fatalf("ParseRecord(%q) = %+v, %v; want a record %v", tc.txt, r, err, tc.tags != nil)
			}
			if r != nil {
				var tags []string
				for _, tag := range r.Tags {
					tags = append(tags, tag.Name+"="+tag.Value)
				}
				if !slices.Equal(tags, tc.tags) {
					t.Errorf("ParseRecord(%q): tags %q; want %q", tc.txt, tags, tc.tags)
				}
			}
			var wtags []string
			for _, w := range warns {
				wtags = append(wtags, w.Tag)
			}
			if !slices.Equal(wtags, tc.warns) {
				t.Errorf("ParseRecord(%q): warnings %q; want tags %q", tc.txt, warns, tc.warns)
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else if err != nil {
				errs = []error{err}
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("ParseRecord(%q): errors %v; want %q", tc.txt, err, tc.errs)
			}
			for i, e := range errs {
				var te *TagError
				if !errors.As(e, &te) || !errors.Is(e, ErrSyntax) {
					t.Fatalf("ParseRecord(%q): error %v is not a *TagError", tc.txt, e)
				}
				prefix, cause, _ := strings.Cut(tc.errs[i], ": ")
				if got := fmt.Sprintf("%s=%s", te.Tag, te.Value); got != prefix || !strings.Contains(te.Reason, cause) {
					t.Errorf("ParseRecord(%q): error %d %s: %q; want %q", tc.txt, i, got, te.Reason, tc.errs[i])
				}
			}
		})
	}
}
