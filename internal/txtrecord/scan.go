package txtrecord

import (
	"fmt"
	"strconv"
	"strings"
)

// Scanner reads the fields of the versioned TXT records of MTA-STS (RFC
// 8461 §3.1) and TLSRPT (RFC 8460 §3), which share their syntax:
//
//	record      = version *(field-delim field) [field-delim]
//	version     = "v=" <the protocol's version>
//	field-delim = *WSP ";" *WSP
//	field       = name "=" value
//	ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//
// (sts-field-delim, sts-ext-name and sts-ext-value in RFC 8461;
// field-delim, tlsrpt-ext-name and tlsrpt-ext-value in RFC 8460.) A record
// parser calls Version, then, while Next reports another field, Name, and
// reads the value itself (MTA-STS's id, TLSRPT's rua) or with ExtValue.
// Problems are *FieldError values, which the parser turns into its own
// error type. A Scanner is not safe for concurrent use.
type Scanner struct {
	Text string // the record
	Pos  int    // the byte offset in Text of the next byte to read
	// Quote and Describe put text and single bytes into the reasons of
	// errors, so that each record parser keeps its own wording. Nil means
	// strconv.Quote, and a quoted character or "byte 0xNN".
	Quote    func(string) string
	Describe func(byte) string
}

// FieldError is a record that does not match the syntax, as found by a
// Scanner.
type FieldError struct {
	Field  string // the field concerned; "" when no field name was read
	Offset int    // byte offset in the record of the offending text
	Value  string // the offending text as written
	Reason string // what is wrong, in words
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %q at byte %d: %s", e.Field, e.Offset, e.Reason)
}

// Token returns the text of the record from off up to the next ";" or
// white space (SP, HTAB).
func (sc *Scanner) Token(off int) string {
	end := off
	for end < len(sc.Text) && sc.Text[end] != ';' && !isWSP(sc.Text[end]) {
		end++
	}
	return sc.Text[off:end]
}

// Take returns the token at Pos (see Token) and moves past it.
func (sc *Scanner) Take() string {
	tok := sc.Token(sc.Pos)
	sc.Pos += len(tok)
	return tok
}

// SkipWSP moves Pos past spaces and tabs.
func (sc *Scanner) SkipWSP() {
	for sc.Pos < len(sc.Text) && isWSP(sc.Text[sc.Pos]) {
		sc.Pos++
	}
}

// Version checks that the record begins with "v=" and version, followed
// by ";", white space or the end of the record (both RFCs: the TXT record
// MUST begin with the version field), and moves past it.
func (sc *Scanner) Version(version string) *FieldError {
	field := "v=" + version
	if rest, ok := strings.CutPrefix(sc.Text, field); ok && (rest == "" || rest[0] == ';' || isWSP(rest[0])) {
		sc.Pos = len(field)
		return nil
	}
	tok := sc.Token(0)
	reason := `record must begin with "` + field + `"`
	switch {
	case sc.Text != "" && isWSP(sc.Text[0]):
		tok = sc.Text[:len(sc.Text)-len(strings.TrimLeft(sc.Text, " \t"))]
		reason = `record begins with whitespace; it must begin with "` + field + `"`
	case strings.HasPrefix(tok, "v="):
		reason = "version must be " + version + ", not " + sc.quote(tok[2:])
	}
	return &FieldError{Field: "v", Offset: 0, Value: tok, Reason: reason}
}

// Next moves past the field-delim after the field named prev. It reports
// whether a field follows, at Pos; at the end of the record, which may end
// with one field-delim, it reports false. White space is only allowed
// around ";".
func (sc *Scanner) Next(prev string) (bool, *FieldError) {
	start := sc.Pos
	sc.SkipWSP()
	if sc.Pos == len(sc.Text) {
		if sc.Pos > start {
			return false, &FieldError{Field: prev, Offset: start, Value: sc.Text[start:], Reason: `trailing whitespace is only allowed around ";"`}
		}
		return false, nil
	}
	if sc.Text[sc.Pos] != ';' {
		tok := sc.Token(sc.Pos)
		return false, &FieldError{Field: prev, Offset: sc.Pos, Value: tok,
			Reason: "unexpected " + sc.quote(tok) + " after field " + sc.quote(prev) + `; fields are separated by ";"`}
	}
	sc.Pos++
	sc.SkipWSP()
	return sc.Pos < len(sc.Text), nil
}

// Name reads a field name and the "=" after it, checks the name against
// ext-name, and leaves Pos at the value. emptyField is the reason given
// for an empty field (a second ";").
func (sc *Scanner) Name(emptyField string) (string, *FieldError) {
	start := sc.Pos
	eq := -1
	for i := start; i < len(sc.Text) && sc.Text[i] != ';' && !isWSP(sc.Text[i]); i++ {
		if sc.Text[i] == '=' {
			eq = i
			break
		}
	}
	if eq < 0 {
		tok := sc.Token(start)
		if tok == "" {
			return "", &FieldError{Offset: start, Value: tok, Reason: emptyField}
		}
		return "", &FieldError{Offset: start, Value: tok, Reason: "field " + sc.quote(tok) + ` has no "="`}
	}
	name := sc.Text[start:eq]
	if reason := sc.checkName(name); reason != "" {
		return "", &FieldError{Field: name, Offset: start, Value: name, Reason: reason}
	}
	sc.Pos = eq + 1
	return name, nil
}

// CheckExtName checks name against ext-name, which the names the RFCs
// define ("id", "rua") also satisfy, as do the extension keys of an
// MTA-STS policy file (sts-policy-ext-name, RFC 8461 §3.2). It returns
// what is wrong, with describe naming a byte (nil as for Scanner), or "".
func CheckExtName(name string, describe func(byte) string) string {
	sc := Scanner{Describe: describe}
	return sc.checkName(name)
}

func (sc *Scanner) checkName(name string) string {
	if name == "" {
		return "empty field name"
	}
	if !isAlnum(name[0]) {
		return "field name must begin with a letter or digit, not " + sc.describe(name[0])
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return "field name contains " + sc.describe(c) + `; only letters, digits, "_", "-" and "." are allowed`
		}
	}
	if len(name) > 32 {
		return "field name is " + strconv.Itoa(len(name)) + " characters long; at most 32 are allowed"
	}
	return ""
}

// ExtValue reads the ext-value of the field name at Pos.
func (sc *Scanner) ExtValue(name string) (string, *FieldError) {
	start := sc.Pos
	value := sc.Take()
	if value == "" {
		return "", &FieldError{Field: name, Offset: start, Value: value, Reason: "field " + sc.quote(name) + " has an empty value"}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x21 || c > 0x7e || c == '=' {
			return "", &FieldError{Field: name, Offset: start + i, Value: value,
				Reason: "value of " + sc.quote(name) + " contains " + sc.describe(c) + `; "=", ";", space and control or non-ASCII characters are not allowed`}
		}
	}
	return value, nil
}

func (sc *Scanner) quote(s string) string {
	if sc.Quote == nil {
		return strconv.Quote(s)
	}
	return sc.Quote(s)
}

func (sc *Scanner) describe(c byte) string {
	switch {
	case sc.Describe != nil:
		return sc.Describe(c)
	case c > 0x20 && c < 0x7f:
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
