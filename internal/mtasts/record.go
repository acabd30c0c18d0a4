package mtasts

import (
	"strings"
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
	p := recordParser{s: txt}
	return p.parse()
}

type recordParser struct {
	s      string
	pos    int
	haveID bool // the first id field has been read
}

func (p *recordParser) fail(field string, off int, value, reason string) error {
	return &ParseError{Field: field, Offset: off, Value: value, Reason: reason, Err: ErrRecordSyntax}
}

// token returns the text from off up to the next ";" or whitespace, for
// error messages.
func (p *recordParser) token(off int) string {
	end := off
	for end < len(p.s) && p.s[end] != ';' && !isWSP(p.s[end]) {
		end++
	}
	return p.s[off:end]
}

func (p *recordParser) skipWSP() {
	for p.pos < len(p.s) && isWSP(p.s[p.pos]) {
		p.pos++
	}
}

func (p *recordParser) parse() (*Record, error) {
	// RFC 8461 §3.1: the TXT record MUST begin with the sts-version field.
	const vfield = "v=" + Version
	if !strings.HasPrefix(p.s, vfield) {
		tok := p.token(0)
		reason := `record must begin with "v=STSv1"`
		if p.s != "" && isWSP(p.s[0]) {
			tok = p.s[:len(p.s)-len(strings.TrimLeft(p.s, " \t"))]
			reason = `record begins with whitespace; it must begin with "v=STSv1"`
		} else if v, ok := strings.CutPrefix(tok, "v="); ok {
			reason = "version must be STSv1, not " + quote(v)
		}
		return nil, p.fail("v", 0, tok, reason)
	}
	p.pos = len(vfield)
	if p.pos < len(p.s) && p.s[p.pos] != ';' && !isWSP(p.s[p.pos]) {
		tok := p.token(0)
		return nil, p.fail("v", 0, tok, "version must be STSv1, not "+quote(strings.TrimPrefix(tok, "v=")))
	}

	r := &Record{Version: Version}
	seen := map[string]bool{"v": true}
	prev := "v"
	for {
		// sts-field-delim = *WSP ";" *WSP
		start := p.pos
		p.skipWSP()
		if p.pos == len(p.s) {
			if p.pos > start {
				return nil, p.fail(prev, start, p.s[start:], `trailing whitespace is only allowed around ";"`)
			}
			break
		}
		if p.s[p.pos] != ';' {
			tok := p.token(p.pos)
			return nil, p.fail(prev, p.pos, tok, `unexpected `+quote(tok)+` after field `+quote(prev)+`; fields are separated by ";"`)
		}
		p.pos++
		p.skipWSP()
		if p.pos == len(p.s) {
			break // [sts-field-delim] at the end
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
		return nil, p.fail("id", len(p.s), "", reason)
	}
	return r, nil
}

// field parses one sts-field at p.pos: sts-id or sts-extension.
func (p *recordParser) field() (name, value string, err error) {
	start := p.pos
	eq := -1
	for i := start; i < len(p.s) && p.s[i] != ';' && !isWSP(p.s[i]); i++ {
		if p.s[i] == '=' {
			eq = i
			break
		}
	}
	if eq < 0 {
		tok := p.token(start)
		if tok == "" {
			return "", "", p.fail("", start, tok, `empty field: only one ";" may end the record`)
		}
		return "", "", p.fail("", start, tok, `field `+quote(tok)+` has no "="`)
	}
	name = p.s[start:eq]
	if reason := checkFieldName(name); reason != "" {
		return "", "", p.fail(name, start, name, reason)
	}
	vstart := eq + 1
	p.pos = vstart
	for p.pos < len(p.s) && p.s[p.pos] != ';' && !isWSP(p.s[p.pos]) {
		p.pos++
	}
	value = p.s[vstart:p.pos]
	if name == "id" && !p.haveID {
		// sts-id = %s"id=" 1*32(ALPHA / DIGIT)
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
	if len(value) == 0 {
		return "", "", p.fail(name, vstart, value, "field "+quote(name)+" has an empty value")
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < 0x21 || c > 0x7e || c == '=' || c == ';' {
			return "", "", p.fail(name, vstart+i, value, "value of "+quote(name)+" contains "+describeByte(c)+`; "=", ";", space and control or non-ASCII characters are not allowed`)
		}
	}
	return name, value, nil
}

// checkFieldName checks sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT /
// "_" / "-" / "."), which sts-id's "id" also satisfies. It returns a reason
// or "".
func checkFieldName(name string) string {
	if name == "" {
		return "empty field name"
	}
	if !isAlnum(name[0]) {
		return "field name must begin with a letter or digit, not " + describeByte(name[0])
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return "field name contains " + describeByte(c) + "; only letters, digits, \"_\", \"-\" and \".\" are allowed"
		}
	}
	if len(name) > 32 {
		return "field name is " + itoa(len(name)) + " characters long; at most 32 are allowed"
	}
	return ""
}
