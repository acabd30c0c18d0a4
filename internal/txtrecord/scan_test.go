package txtrecord

import (
	"fmt"
	"strings"
	"testing"
)

// scanAll reads a record of version "X1" with the Scanner alone, every
// field an ext-value, and describes the result: the fields, or the error.
func scanAll(txt string) string {
	sc := Scanner{Text: txt}
	if e := sc.Version("X1"); e != nil {
		return fmt.Sprintf("error: %q@%d %q: %s", e.Field, e.Offset, e.Value, e.Reason)
	}
	var fields []string
	prev := "v"
	for {
		more, e := sc.Next(prev)
		if e == nil && !more {
			return "ok: " + strings.Join(fields, " ")
		}
		var name, value string
		if e == nil {
			name, e = sc.Name("empty field")
		}
		if e == nil {
			value, e = sc.ExtValue(name)
		}
		if e != nil {
			return fmt.Sprintf("error: %q@%d %q: %s", e.Field, e.Offset, e.Value, e.Reason)
		}
		fields = append(fields, name+"="+value)
		prev = name
	}
}

func TestScanner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ txt, want string }{
		{"v=X1", "ok: "},
		{"v=X1;", "ok: "},
		{"v=X1; ", "ok: "},
		{"v=X1;a=1;b.c-d_e=2", "ok: a=1 b.c-d_e=2"},
		{"v=X1 \t; a=1 ;\tb=2\t;\t", "ok: a=1 b=2"},
		{"v=X1; a=1; a=2", "ok: a=1 a=2"},
		{"v=X1; " + strings.Repeat("n", 32) + "=1", "ok: " + strings.Repeat("n", 32) + "=1"},

		// Version.
		{"", `error: "v"@0 "": record must begin with "v=X1"`},
		{" v=X1", `error: "v"@0 " ": record begins with whitespace; it must begin with "v=X1"`},
		{"v=X10; a=1", `error: "v"@0 "v=X10": version must be X1, not "X10"`},
		{"v=x1", `error: "v"@0 "v=x1": version must be X1, not "x1"`},
		{"V=X1", `error: "v"@0 "V=X1": record must begin with "v=X1"`},
		{"a=1; v=X1", `error: "v"@0 "a=1": record must begin with "v=X1"`},

		// Delimiters and white space.
		{"v=X1 ", `error: "v"@4 " ": trailing whitespace is only allowed around ";"`},
		{"v=X1; a=1\t", `error: "a"@9 "\t": trailing whitespace is only allowed around ";"`},
		{"v=X1; a=1 b=2", `error: "a"@10 "b=2": unexpected "b=2" after field "a"; fields are separated by ";"`},
		{"v=X1;;a=1", `error: ""@5 "": empty field`},
		{"v=X1; a=1; ;", `error: ""@11 "": empty field`},
		{"v=X1;\r\n a=1", `error: ""@5 "\r\n": field "\r\n" has no "="`},

		// Names.
		{"v=X1; a", `error: ""@6 "a": field "a" has no "="`},
		{"v=X1; a =1", `error: ""@6 "a": field "a" has no "="`},
		{"v=X1; =1", `error: ""@6 "": empty field name`},
		{"v=X1; _a=1", `error: "_a"@6 "_a": field name must begin with a letter or digit, not '_'`},
		{"v=X1; a+b=1", `error: "a+b"@6 "a+b": field name contains '+'; only letters, digits, "_", "-" and "." are allowed`},
		{"v=X1; a\u00e9=1", `error: "aé"@6 "aé": field name contains byte 0xc3; only letters, digits, "_", "-" and "." are allowed`},
		{"v=X1; " + strings.Repeat("n", 33) + "=1", `error: "` + strings.Repeat("n", 33) + `"@6 "` + strings.Repeat("n", 33) + `": field name is 33 characters long; at most 32 are allowed`},

		// Values.
		{"v=X1; a=", `error: "a"@8 "": field "a" has an empty value`},
		{"v=X1; a= 1", `error: "a"@8 "": field "a" has an empty value`},
		{"v=X1; a=1=2", `error: "a"@9 "1=2": value of "a" contains '='; "=", ";", space and control or non-ASCII characters are not allowed`},
		{"v=X1; a=\x7f", `error: "a"@8 "\x7f": value of "a" contains byte 0x7f; "=", ";", space and control or non-ASCII characters are not allowed`},
		{"v=X1; a=caf\u00e9", `error: "a"@11 "café": value of "a" contains byte 0xc3; "=", ";", space and control or non-ASCII characters are not allowed`},
	} {
		if got := scanAll(tc.txt); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.txt, got, tc.want)
		}
	}
}

func TestScannerWording(t *testing.T) {
	t.Parallel()
	sc := Scanner{
		Text:     "v=X1; a=1 " + strings.Repeat("b", 10),
		Quote:    func(s string) string { return "<" + s + ">" },
		Describe: func(c byte) string { return "[" + string(c) + "]" },
	}
	if e := sc.Version("X1"); e != nil {
		t.Fatal(e)
	}
	if _, e := sc.Next("v"); e != nil {
		t.Fatal(e)
	}
	name, e := sc.Name("empty")
	if e != nil || name != "a" {
		t.Fatalf("Name = %q, %v", name, e)
	}
	if v, e := sc.ExtValue(name); e != nil || v != "1" || sc.Pos != 9 {
		t.Fatalf("ExtValue = %q, %v at %d", v, e, sc.Pos)
	}
	_, e = sc.Next(name)
	if e == nil || e.Reason != `unexpected <bbbbbbbbbb> after field <a>; fields are separated by ";"` {
		t.Errorf("Next: %v", e)
	}
	if got := CheckExtName("-x", sc.Describe); got != "field name must begin with a letter or digit, not [-]" {
		t.Errorf("CheckExtName = %q", got)
	}
	if got := CheckExtName("x-1.y_z", nil); got != "" {
		t.Errorf("CheckExtName = %q", got)
	}
	if got := (&FieldError{Field: "a", Offset: 3, Reason: "bad"}).Error(); got != `field "a" at byte 3: bad` {
		t.Errorf("Error() = %q", got)
	}
}

func TestScannerTakeToken(t *testing.T) {
	t.Parallel()
	sc := Scanner{Text: "ab cd;ef"}
	if got := sc.Take(); got != "ab" || sc.Pos != 2 {
		t.Errorf("Take = %q at %d", got, sc.Pos)
	}
	sc.SkipWSP()
	if got := sc.Token(sc.Pos); got != "cd" || sc.Pos != 3 {
		t.Errorf("Token = %q at %d", got, sc.Pos)
	}
	if got := sc.Token(5); got != "" {
		t.Errorf("Token at ; = %q", got)
	}
}

// FuzzScanner: reading any text field by field ends, without a panic, in
// fields or in an error with an offset inside the text; fields read back
// the same when written in the usual form.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{"v=X1; a=1;", "v=X1  ;\tid=foo; ext=1", "v=X1; a=1;;", "v=X10", " v=X1", "v=X1; a=b=c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := scanAll(s)
		if rest, ok := strings.CutPrefix(got, "error: "); ok {
			var field string
			var off int
			if _, err := fmt.Sscanf(rest, "%q@%d", &field, &off); err != nil || off < 0 || off > len(s) {
				t.Fatalf("%q: %s", s, got)
			}
			return
		}
		fields := strings.TrimPrefix(got, "ok: ")
		again := "v=X1"
		if fields != "" {
			again += "; " + strings.ReplaceAll(fields, " ", "; ")
		}
		if got2 := scanAll(again); got2 != got {
			t.Fatalf("%q: %s, then %q: %s", s, got, again, got2)
		}
	})
}
