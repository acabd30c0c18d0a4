package mtasts

import (
	"strings"

	"github.com/moatmail/moat/internal/txtrecord"
)

// Version is the only version of the TXT record and policy defined by
// RFC 8461 §3.1 and §3.2.
const Version = "STSv1"

// Pair is an extension field: a key and its value as written.
type Pair struct {
	Key, Value string
}

// Record is a parsed "_mta-sts" TXT record (RFC 8461 §3.1).
type Record struct {
	Version string // always "STSv1" once parsed
	ID      string // 1 to 32 letters or digits
	// Extensions are the other fields in order of appearance, without
	// repeats of a name: only the first occurrence of a field is kept.
	Extensions []Pair
}

// String formats the record as served in DNS: "v=STSv1; id=<id>" followed
// by "; name=value" for each extension. An empty Version is written as
// "STSv1".
func (r *Record) String() string {
	var b strings.Builder
	v := r.Version
	if v == "" {
		v = Version
	}
	b.WriteString("v=")
	b.WriteString(v)
	b.WriteString("; id=")
	b.WriteString(r.ID)
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// ValidID reports whether id matches RFC 8461 §3.1: 1*32(ALPHA / DIGIT).
func ValidID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isAlnum(id[i]) {
			return false
		}
	}
	return true
}

// ParseRecord parses an MTA-STS TXT record. The record must match the ABNF
// of RFC 8461 §3.1 exactly; every error is a *ParseError wrapping
// ErrRecordSyntax.
//
// Decisions where the RFC leaves room:
//   - Whitespace before the first ";" ("v=STSv1  ;  id=foo") is accepted:
//     sts-field-delim is *WSP ";" *WSP. The prose of §3.1 speaks of records
//     beginning with "v=STSv1;", but the ABNF is normative and allows it.
//   - Only one trailing ";" is allowed ("id=a;;" is invalid), and trailing
//     whitespace is allowed only around a ";" ("id=a ;" is valid, "id=a "
//     is not).
//   - A repeated field ("id=foo; id=bar") keeps the first value: the last
//     paragraph of §3.2 covers "TXT records and policy files". A repeat need
//     only be a syntactically valid field.
//   - Field names and "v=STSv1" are case-sensitive (%s in the ABNF, RFC 7405).
func ParseRecord(txt string) (*Record, error) {
	p := recordParser{sc: txtrecord.Scanner{Text: txt, Quote: quote, Describe: describeByte}}
	return p.parse()
}

type recordParser struct {
	sc     txtrecord.Scanner
	haveID bool // the first id field has been read
}

func (p *recordParser) fail(field string, off int, value, reason string) error {
	return &ParseError{Field: field, Offset: off, Value: value, Reason: reason, Err: ErrRecordSyntax}
}

// failField turns a syntax problem found by the scanner into a *ParseError.
func (p *recordParser) failField(e *txtrecord.FieldError) error {
	return p.fail(e.Field, e.Offset, e.Value, e.Reason)
}

func (p *recordParser) parse() (*Record, error) {
	// RFC 8461 §3.1: the TXT record MUST begin with the sts-version field.
	if e := p.sc.Version(Version); e != nil {
		return nil, p.failField(e)
	}
	r := &Record{Version: Version}
	seen := map[string]bool{"v": true}
	prev := "v"
	for {
		// sts-field-delim = *WSP ";" *WSP; one may end the record.
		more, e := p.sc.Next(prev)
		if e != nil {
			return nil, p.failField(e)
		}
		if !more {
			break
		}
		name, value, err := p.field()
		if err != nil {
			return nil, err
		}
		prev = name
		// RFC 8461 §3.2: for every field but mx, entries after the first
		// SHALL be ignored.
		if seen[name] {
			continue
		}
		seen[name] = true
		if name == "id" {
			r.ID = value
			p.haveID = true
		} else {
			r.Extensions = append(r.Extensions, Pair{Key: name, Value: value})
		}
	}
	if r.ID == "" {
		reason := `missing required field "id"`
		for _, e := range r.Extensions {
			if strings.EqualFold(e.Key, "id") {
				reason += " (found " + quote(e.Key) + "; field names are case-sensitive)"
				break
			}
		}
		return nil, p.fail("id", len(p.sc.Text), "", reason)
	}
	return r, nil
}

// field parses one sts-field at the scanner's position: sts-id or
// sts-extension.
func (p *recordParser) field() (name, value string, err error) {
	name, e := p.sc.Name(`empty field: only one ";" may end the record`)
	if e != nil {
		return "", "", p.failField(e)
	}
	if name == "id" && !p.haveID {
		// sts-id = %s"id=" 1*32(ALPHA / DIGIT)
		vstart := p.sc.Pos
		value = p.sc.Take()
		for i := 0; i < len(value); i++ {
			if !isAlnum(value[i]) {
				return "", "", p.fail(name, vstart+i, value, "id must be 1 to 32 letters or digits; "+describeByte(value[i])+" is not allowed")
			}
		}
		if len(value) == 0 || len(value) > 32 {
			return "", "", p.fail(name, vstart, value, "id must be 1 to 32 letters or digits, not "+itoa(len(value)))
		}
		return name, value, nil
	}
	// sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
	value, e = p.sc.ExtValue(name)
	if e != nil {
		return "", "", p.failField(e)
	}
	return name, value, nil
}

// checkFieldName checks sts-ext-name and sts-policy-ext-name. It returns a
// reason or "".
func checkFieldName(name string) string { return txtrecord.CheckExtName(name, describeByte) }
