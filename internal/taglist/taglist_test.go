package taglist

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// describe is the compact form of a Parse result that the tests compare:
// "name=value" for each tag (with "(key)" when the key differs), then
// "note:<kind>@<offset>" for each note, or "error:<problem>@<offset>
// tag=<tag>" for each error.
func describe(tags []Tag, notes []Note, err error) string {
	var parts []string
	for _, t := range tags {
		s := t.Name + "=" + t.Value
		if t.Key != t.Name {
			s += "(" + t.Key + ")"
		}
		parts = append(parts, s)
	}
	for _, n := range notes {
		parts = append(parts, fmt.Sprintf("note:%d@%d", n.Kind, n.Offset))
	}
	for _, e := range SyntaxErrors(err) {
		parts = append(parts, fmt.Sprintf("error:%d@%d tag=%s", e.Problem, e.Offset, e.Tag))
	}
	return strings.Join(parts, " | ")
}

func TestParse(t *testing.T) {
	t.Parallel()
	strict := Options{}
	dkim := Options{SkipEmptySpecs: true, Values: ValuesNonASCII, LooseNewlines: true}
	dmarc := Options{FoldCase: true, Duplicates: DuplicateAllow, SkipEmptySpecs: true, Values: ValuesAny, LooseNewlines: true, KeepGoing: true}
	for _, tc := range []struct {
		name string
		in   string
		opts Options
		want string
	}{
		// RFC 6376 §3.6.1 and appendix C style records.
		{"plain", "v=DKIM1; k=rsa; p=MIGf", strict, "v=DKIM1 | k=rsa | p=MIGf"},
		{"no spaces, trailing semicolon", "a=1;b=2;", strict, "a=1 | b=2"},
		{"empty value", "a=; b=", strict, "a= | b="},
		{"space after the last semicolon", "a=1; \t", strict, "a=1"},
		{"white space around everything", " \t a \t = \t 1  2 \t ; b=2", strict, "a=1  2 | b=2"},
		{"value with =", "p=YWJj==; q==", strict, "p=YWJj== | q=="},
		{"name chars", "a_1=x; Z9=y", strict, "a_1=x | Z9=y"},

		// Folding white space (RFC 6376 §2.8).
		{"fold before a name", "a=1;\r\n b=2", strict, "a=1 | b=2"},
		{"fold around =", "a\r\n\t=\r\n 1", strict, "a=1"},
		{"fold inside a value", "p=abc\r\n def", strict, "p=abc\r\n def"},
		{"two folds", "p=a \r\n \r\n\tb", strict, "p=a \r\n \r\n\tb"},
		{"fold at the start", "\r\n a=1", strict, "a=1"},
		{"CRLF without WSP", "a=1\r\n", strict, "error:6@3 tag=a"},
		{"CRLF before ;", "a=1\r\n;b=2", strict, "error:6@3 tag=a"},
		{"bare LF", "a=1;\nb=2", strict, "error:6@4 tag=b"},
		{"bare CR in a value", "a=x\ry", strict, "error:6@3 tag=a"},
		{"CRCRLF", "a=x\r\r\n y", strict, "error:6@3 tag=a"},
		{"bare LF after the last ;", "a=1;\n", strict, "error:6@4 tag="},
		{"bare LF in an empty spec", "a=1;\n;b=2", strict, "error:6@4 tag="},
		{"loose newlines", "a=1;\nb=x\ry\n", Options{LooseNewlines: true}, "a=1 | b=x\ry"},

		// Empty tag-specs.
		{"double semicolon", "a=1;;b=2", strict, "error:3@4 tag="},
		{"leading semicolon", ";a=1", strict, "error:3@0 tag="},
		{"two trailing semicolons", "a=1;;", strict, "error:3@4 tag="},
		{"blank spec", "a=1; ;b=2", strict, "error:3@4 tag="},
		{"skipped", ";a=1;; ;b=2;;", Options{SkipEmptySpecs: true}, "a=1 | b=2 | note:1@0 | note:1@5 | note:1@6 | note:1@12"},
		{"empty", "", strict, "error:2@0 tag="},
		{"blank", " \t ", strict, "error:2@3 tag="},
		{"only semicolon", ";", strict, "error:3@0 tag="},
		{"only semicolons skipped", ";;", Options{SkipEmptySpecs: true}, "error:2@2 tag="},

		// Tags without "=", and bad names.
		{"no =", "a=1; junk", strict, "error:4@5 tag="},
		{"no = alone", "junk", strict, "error:4@0 tag="},
		{"empty name", "=1", strict, "error:5@0 tag="},
		{"digit first", "1a=1", strict, "error:5@0 tag=1a"},
		{"underscore first", "_a=1", strict, "error:5@0 tag=_a"},
		{"hyphen", "a-b=1", strict, "error:5@0 tag=a-b"},
		{"space inside", "a b=1", strict, "error:5@0 tag=a b"},
		{"non-ASCII name", "\u00e9=1", strict, "error:5@0 tag=\u00e9"},
		{"name error before newline error", "a\nb=1", strict, "error:5@0 tag=a\nb"},

		// Values.
		{"non-ASCII value strict", "a=caf\u00e9", strict, "error:7@5 tag=a"},
		{"control strict", "a=x\x00", strict, "error:7@3 tag=a"},
		{"DEL strict", "a=\x7f", strict, "error:7@2 tag=a"},
		{"non-ASCII noted once", "a=\u00e9\u00e9; b=\u00e9", Options{Values: ValuesNonASCII}, "a=\u00e9\u00e9 | b=\u00e9 | note:2@2 | note:2@10"},
		{"control after non-ASCII", "a=\u00e9\x01", Options{Values: ValuesNonASCII}, "error:7@4 tag=a"},
		{"any value", "a=\x00\u00e9\x7f=", Options{Values: ValuesAny}, "a=\x00\u00e9\x7f="},
		{"empty value refused", "a=1; b= ; c=3", Options{NoEmptyValues: true}, "error:8@7 tag=b"},

		// Duplicates and case.
		{"duplicate", "a=1; a=2", strict, "error:9@5 tag=a"},
		{"case-sensitive", "a=1; A=2", strict, "a=1 | A=2"},
		{"folded duplicate", "a=1; A=2", Options{FoldCase: true}, "error:9@5 tag=A"},
		{"folded keys", "V=1; aBc=2", Options{FoldCase: true}, "V=1(v) | aBc=2(abc)"},
		{"keep first", "a=1; b=2; a=3; a=4", Options{Duplicates: DuplicateKeepFirst}, "a=1 | b=2 | note:3@10 | note:3@15"},
		{"keep last", "a=1; b=2; a=3; a=4", Options{Duplicates: DuplicateKeepLast}, "b=2 | a=4 | note:3@0 | note:3@10"},
		{"allow", "a=1; a=2", Options{Duplicates: DuplicateAllow}, "a=1 | a=2"},
		{"keep last folded", "P=1; p=2", Options{Duplicates: DuplicateKeepLast, FoldCase: true}, "p=2 | note:3@0"},

		// Length.
		{"at the limit", "a=1", Options{MaxLen: 3}, "a=1"},
		{"over the limit", "a=12", Options{MaxLen: 3}, "error:1@3 tag="},

		// KeepGoing reports every bad tag-spec and keeps the others.
		{"keep going", "a=1; junk; 1x=2; a=3; b=\u00e9; c=4", Options{KeepGoing: true}, "a=1 | c=4 | error:4@5 tag= | error:5@11 tag=1x | error:9@17 tag=a | error:7@24 tag=b"},
		{"keep going, nothing good", "junk", Options{KeepGoing: true}, "error:4@0 tag="},
		{"keep going, empty", " ", Options{KeepGoing: true}, "error:2@1 tag="},

		// The callers' option sets.
		{"DKIM", "v=DKIM1;; n=caf\u00e9;\np=abc\r\n def", dkim, "v=DKIM1 | n=caf\u00e9 | p=abc\r\n def | note:1@8 | note:2@15"},
		{"DKIM control", "n=a\x01", dkim, "error:7@3 tag=n"},
		{"DMARC", "V=DMARC1;; P=none; junk; foo=1; foo=2; r-a=x", dmarc, "V=DMARC1(v) | P=none(p) | foo=1 | foo=2 | note:1@9 | error:4@19 tag= | error:5@39 tag=r-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tags, notes, err := Parse(tc.in, tc.opts)
			if got := describe(tags, notes, err); got != tc.want {
				t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if err != nil && !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q): error %v does not wrap ErrSyntax", tc.in, err)
			}
			checkOffsets(t, tc.in, tags, notes, err)
		})
	}
}

// checkOffsets checks that offsets point where they say.
func checkOffsets(t *testing.T, in string, tags []Tag, notes []Note, err error) {
	t.Helper()
	for _, tag := range tags {
		if !strings.HasPrefix(in[tag.Offset:], tag.Name) || !strings.HasPrefix(in[tag.ValueOffset:], tag.Value) {
			t.Errorf("Parse(%q): tag %+v: offsets do not point at the name and value", in, tag)
		}
	}
	for _, n := range notes {
		if n.Offset < 0 || n.Offset > len(in) || n.Text == "" {
			t.Errorf("Parse(%q): note %+v", in, n)
		}
	}
	for _, e := range SyntaxErrors(err) {
		if e.Offset < 0 || e.Offset > len(in) || e.Reason == "" || !strings.Contains(e.Error(), e.Reason) {
			t.Errorf("Parse(%q): error %+v", in, e)
		}
		if (e.Problem == BadName || e.Problem == Duplicate) && !strings.HasPrefix(in[e.Offset:], e.Tag) {
			t.Errorf("Parse(%q): error %+v: offset does not point at the tag", in, e)
		}
	}
}

func TestSyntaxErrorFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         string
		opts       Options
		spec       int
		tag, value string
		reason     string
	}{
		{"a=1;;", Options{}, 1, "", "", `empty tag-spec at position 2 (";;" or a leading ";")`},
		{"a=1; junk ", Options{}, 1, "", "junk", `tag-spec 2 "junk" has no "="`},
		{"a=1; b c = x y ", Options{}, 1, "b c", "x y", "invalid tag name"},
		{"a=1; b= x\x01y", Options{}, 1, "b", "x\x01y", "byte 0x01 at offset 1 of the value is not allowed"},
		{"a=1; b= x\x01y", Options{Values: ValuesNonASCII}, 1, "b", "x\x01y", "control character 0x01 at offset 1 of the value"},
		{"a=1; b=x\ny", Options{}, 1, "b", "x\ny", "byte 0x0a at byte 8 is a line break"},
		{"a=1; b=2; a=3", Options{}, 2, "a", "3", "duplicate tag"},
		{"a=1; b=", Options{NoEmptyValues: true}, 1, "b", "", "b= has an empty value"},
		{"", Options{}, 0, "", "", "empty tag-list"},
		{"a=1;b=2", Options{MaxLen: 5}, 0, "", "", "tag-list is 7 bytes, over the 5 byte limit"},
	} {
		_, _, err := Parse(tc.in, tc.opts)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", tc.in, err)
			continue
		}
		if se.Spec != tc.spec || se.Tag != tc.tag || se.Value != tc.value || !strings.Contains(se.Reason, tc.reason) {
			t.Errorf("Parse(%q) = %+v, want spec %d tag %q value %q reason %q", tc.in, se, tc.spec, tc.tag, tc.value, tc.reason)
		}
	}
}

func TestNotes(t *testing.T) {
	t.Parallel()
	_, notes, err := Parse("a=1;; b=\u00e9; a=2", Options{SkipEmptySpecs: true, Values: ValuesNonASCII, Duplicates: DuplicateKeepFirst})
	if err != nil {
		t.Fatal(err)
	}
	want := []Note{
		{Kind: NoteEmptySpec, Offset: 4, Spec: 1, Text: `empty tag-spec at position 2 (";;" or a leading ";"): RFC 6376 §3.2 does not allow it`},
		{Kind: NoteNonASCII, Offset: 8, Spec: 2, Tag: "b", Text: "b= holds non-ASCII bytes, which RFC 6376 §3.2 does not allow"},
		{Kind: NoteDuplicate, Offset: 12, Spec: 3, Tag: "a", Text: "a= is repeated at byte 12; the first one is kept"},
	}
	if fmt.Sprint(notes) != fmt.Sprint(want) {
		t.Errorf("notes\n%+v\nwant\n%+v", notes, want)
	}
}

func TestTagFields(t *testing.T) {
	t.Parallel()
	tags, _, err := Parse(" ;V = DKIM1 ;\r\n p=", Options{FoldCase: true, SkipEmptySpecs: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{
		{Name: "V", Key: "v", Value: "DKIM1", Offset: 2, ValueOffset: 6, Spec: 1},
		{Name: "p", Key: "p", Value: "", Offset: 16, ValueOffset: 18, Spec: 2},
	}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("tags %+v, want %+v", tags, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	if got := SyntaxErrors(nil); got != nil {
		t.Errorf("SyntaxErrors(nil) = %v", got)
	}
	if got := SyntaxErrors(errors.New("other")); got != nil {
		t.Errorf("SyntaxErrors(other) = %v", got)
	}
	_, _, err := Parse("a", Options{})
	if got := SyntaxErrors(err); len(got) != 1 || got[0] != err { //nolint:errorlint // identity is the point
		t.Errorf("SyntaxErrors(%v) = %v", err, got)
	}
	_, _, err = Parse("a; b; c=1", Options{KeepGoing: true})
	if got := SyntaxErrors(err); len(got) != 2 || got[0].Value != "a" || got[1].Value != "b" {
		t.Errorf("SyntaxErrors(%v) = %v", err, got)
	}
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), `tag-spec 2 "b"`) {
		t.Errorf("joined error %q", err)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tags, _, err := Parse("v=DKIM1 ;k=rsa;\r\n p=a\r\n b; n=", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Format(tags), "v=DKIM1; k=rsa; p=a\r\n b; n="; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	if got := Format(nil); got != "" {
		t.Errorf("Format(nil) = %q", got)
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	t.Parallel()
	_, _, err := Parse("a=1; 1x=2", Options{})
	if got, want := err.Error(), `taglist: syntax error at byte 5: tag "1x": invalid tag name (RFC 6376 §3.2: ALPHA *(ALPHA / DIGIT / "_"))`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, _, err = Parse("", Options{})
	if got, want := err.Error(), "taglist: syntax error at byte 0: empty tag-list (RFC 6376 §3.2: at least one tag=value)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
