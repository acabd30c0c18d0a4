package tlsrpt

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/txtrecord"
)

// Version is the only version of the TXT record defined by RFC 8460 §3.
const Version = "TLSRPTv1"

// Pair is an extension field of the TXT record: a name and its value as
// written.
type Pair struct {
	Key, Value string
}

// Record is a parsed "_smtp._tls" TXT record (RFC 8460 §3).
type Record struct {
	Version string // always "TLSRPTv1" once parsed
	// RUA are the report URIs in order of appearance, each a mailto: or
	// https: URI as written. Repeated "rua" fields are concatenated.
	RUA []string
	// Extensions are the other fields in order of appearance, repeats
	// included. RFC 8460 §3: unknown fields SHALL be ignored by senders.
	Extensions []Pair
}

// String formats the record as served in DNS:
// "v=TLSRPTv1; rua=<uri>,<uri>" followed by "; name=value" for each
// extension. An empty Version is written as "TLSRPTv1".
func (r *Record) String() string {
	var b strings.Builder
	v := r.Version
	if v == "" {
		v = Version
	}
	b.WriteString("v=")
	b.WriteString(v)
	b.WriteString("; rua=")
	b.WriteString(strings.Join(r.RUA, ","))
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// ParseRecord parses a TLSRPT TXT record. The record must match the ABNF of
// RFC 8460 §3 exactly; every error is a *ParseError wrapping
// ErrRecordSyntax.
//
// Decisions where the RFC leaves room:
//   - "v=TLSRPTv1" and "rua=" are case-sensitive (%s in the ABNF, RFC 7405).
//   - Whitespace is allowed around ";" (field-delim = *WSP ";" *WSP) and
//     around the commas of rua, nowhere else: leading whitespace and
//     trailing whitespace not followed by ";" are errors, and so is an
//     empty field (";;"). One trailing ";" is allowed.
//   - Every rua URI must be an RFC 3986 URI whose scheme is "mailto" or
//     "https" (§3: "Two URI schemes are supported"), with ",", "!" and ";"
//     percent-encoded (§3: they MUST be encoded). A mailto: URI needs an
//     address with "@"; an https: URI needs a host.
//   - A repeated "rua" field is accepted and its URIs are appended: the
//     ABNF allows any number of tlsrpt-field, and §3 says parsers MUST
//     accept syntactically valid records. At least one rua is required
//     (the ABNF comment: "the tlsrpt-rua record is required").
func ParseRecord(txt string) (*Record, error) {
	p := recordParser{s: txt}
	return p.parse()
}

type recordParser struct {
	s   string
	pos int
}

func (p *recordParser) fail(field string, off int, value, reason string) error {
	return &ParseError{Field: field, Offset: off, Value: value, Reason: reason, Err: ErrRecordSyntax}
}

// token returns the text from off up to the next ";" or whitespace.
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
	// tlsrpt-version = %s"v=TLSRPTv1"
	const vfield = "v=" + Version
	rest, ok := strings.CutPrefix(p.s, vfield)
	if !ok || (rest != "" && rest[0] != ';' && !isWSP(rest[0])) {
		tok := p.token(0)
		reason := `record must begin with "v=TLSRPTv1"`
		switch {
		case p.s == "":
			reason = "empty record; " + reason
		case isWSP(p.s[0]):
			tok = p.s[:len(p.s)-len(strings.TrimLeft(p.s, " \t"))]
			reason = `record begins with whitespace; it must begin with "v=TLSRPTv1"`
		case strings.HasPrefix(tok, "v="):
			reason = "version must be TLSRPTv1, not " + quote(tok[2:])
		}
		return nil, p.fail("v", 0, tok, reason)
	}
	p.pos = len(vfield)
	r := &Record{Version: Version}
	prev := "v"
	for {
		// field-delim = *WSP ";" *WSP
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
			return nil, p.fail(prev, p.pos, tok, "unexpected "+quote(tok)+" after field "+quote(prev)+`; fields are separated by ";"`)
		}
		p.pos++
		p.skipWSP()
		if p.pos == len(p.s) {
			break // [field-delim] at the end
		}
		name, err := p.field(r)
		if err != nil {
			return nil, err
		}
		prev = name
	}
	if len(r.RUA) == 0 {
		reason := `missing required field "rua"`
		for _, e := range r.Extensions {
			if strings.EqualFold(e.Key, "rua") {
				reason += " (found " + quote(e.Key) + `; field names are case-sensitive)`
				break
			}
		}
		return nil, p.fail("rua", len(p.s), "", reason)
	}
	return r, nil
}

// field parses one tlsrpt-field at p.pos, adds it to r and returns its
// name.
func (p *recordParser) field(r *Record) (string, error) {
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
			return "", p.fail("", start, tok, `empty field: only one ";" may end the record and fields may not be empty`)
		}
		return "", p.fail("", start, tok, "field "+quote(tok)+` has no "="`)
	}
	name := p.s[start:eq]
	if reason := checkFieldName(name); reason != "" {
		return "", p.fail(name, start, name, reason)
	}
	vstart := eq + 1
	if name == "rua" {
		return name, p.rua(r, vstart)
	}
	// tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
	p.pos = vstart
	for p.pos < len(p.s) && p.s[p.pos] != ';' && !isWSP(p.s[p.pos]) {
		p.pos++
	}
	value := p.s[vstart:p.pos]
	if value == "" {
		return "", p.fail(name, vstart, value, "field "+quote(name)+" has an empty value")
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x21 || c > 0x7e || c == '=' {
			return "", p.fail(name, vstart+i, value, "value of "+quote(name)+" contains "+describeByte(c)+`; "=", ";", space and control or non-ASCII characters are not allowed`)
		}
	}
	r.Extensions = append(r.Extensions, Pair{Key: name, Value: value})
	return name, nil
}

// rua parses tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) starting at off.
func (p *recordParser) rua(r *Record, off int) error {
	p.pos = off
	for {
		ustart := p.pos
		for p.pos < len(p.s) && p.s[p.pos] != ';' && p.s[p.pos] != ',' && !isWSP(p.s[p.pos]) {
			p.pos++
		}
		uri := p.s[ustart:p.pos]
		if uri == "" {
			reason := "empty URI"
			if ustart < len(p.s) && isWSP(p.s[ustart]) {
				reason = `whitespace is only allowed around "," and ";"`
			}
			return p.fail("rua", ustart, p.token(ustart), reason)
		}
		if off, reason := checkRUA(uri); reason != "" {
			return p.fail("rua", ustart+off, uri, reason)
		}
		r.RUA = append(r.RUA, uri)
		// *WSP "," *WSP, or the end of the field
		save := p.pos
		p.skipWSP()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			p.skipWSP()
			continue
		}
		p.pos = save
		return nil
	}
}

// checkRUA checks one tlsrpt-uri and returns the offset of the problem in
// uri and a reason, or "" when the URI is acceptable.
func checkRUA(uri string) (int, string) {
	// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
	colon := strings.IndexByte(uri, ':')
	if colon <= 0 || !isAlpha(uri[0]) {
		return 0, "not a URI: a URI begins with a scheme and \":\" (mailto: or https:)"
	}
	for i := 1; i < colon; i++ {
		if c := uri[i]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return 0, "not a URI: invalid scheme " + quote(uri[:colon])
		}
	}
	for i := colon + 1; i < len(uri); i++ {
		c := uri[i]
		switch {
		case c == '%':
			if i+2 >= len(uri) || !isHex(uri[i+1]) || !isHex(uri[i+2]) {
				return i, `"%" must be followed by two hexadecimal digits`
			}
		case c == '!' || c == ',' || c == ';':
			// RFC 8460 §3: commas, exclamation points and semicolons MUST
			// be encoded.
			return i, describeByte(c) + " must be percent-encoded in an rua URI"
		case !isURIChar(c):
			return i, describeByte(c) + " is not allowed in a URI (RFC 3986)"
		}
	}
	scheme := strings.ToLower(uri[:colon])
	rest := uri[colon+1:]
	switch scheme {
	case "mailto":
		// RFC 6068: mailto:addr-spec[,addr-spec][?hfields]; one address is
		// needed to send reports to.
		addr, _, _ := strings.Cut(rest, "?")
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			return colon + 1, "mailto: URI has no address of the form local@domain"
		}
	case "https":
		u, err := url.Parse(uri)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			return colon + 1, "https: URI has no host"
		}
	default:
		// RFC 8460 §3: "Two URI schemes are supported: "mailto" and "https"".
		return 0, "unsupported URI scheme " + quote(uri[:colon]) + `; only "mailto" and "https" are defined`
	}
	return 0, ""
}

// checkFieldName checks tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA /
// DIGIT / "_" / "-" / "."), which "rua" also satisfies. It returns a
// reason or "".
func checkFieldName(name string) string {
	if name == "" {
		return "empty field name"
	}
	if !isAlnum(name[0]) {
		return "field name must begin with a letter or digit, not " + describeByte(name[0])
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return "field name contains " + describeByte(c) + `; only letters, digits, "_", "-" and "." are allowed`
		}
	}
	if len(name) > 32 {
		return fmt.Sprintf("field name is %d characters long; at most 32 are allowed", len(name))
	}
	return ""
}

// RecordName returns the name of the TLSRPT TXT record of a policy domain:
// "_smtp._tls." + domain, lower-case, without a trailing dot (RFC 8460 §3).
func RecordName(domain string) string {
	return "_smtp._tls." + strings.ToLower(strings.TrimSuffix(domain, "."))
}

// TXTResolver looks up TXT records. *net.Resolver satisfies it. The
// contract is that of net.Resolver.LookupTXT: the strings of one record
// are concatenated (RFC 8460 §3: "as if those strings are concatenated
// without adding spaces"), CNAMEs are followed, and a name that does not
// exist or has no TXT data gives an error for which dnsname.IsNotFound
// is true.
// Implementations must be safe for concurrent use.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

var _ TXTResolver = (*net.Resolver)(nil)

// LookupRecord looks up and parses the TLSRPT TXT record of domain (RFC
// 8460 §3). It returns the record and its raw text. Errors are
// *LookupError wrapping:
//   - ErrNoRecord when the name does not exist, has no TXT records, or has
//     none beginning with "v=TLSRPTv1";
//   - ErrMultipleRecords when more than one does;
//   - ErrRecordLookup when DNS failed otherwise (the answer is unknown);
//   - ErrInvalidDomain when domain is not a host name;
//   - a *ParseError (ErrRecordSyntax) when the one TLSRPTv1 record is
//     invalid; its raw text is returned then too.
//
// RFC 8460 §3 discards records "that do not begin with "v=TLSRPTv1;"".
// Because the ABNF allows whitespace before the ";", a record is kept when
// it begins with "v=TLSRPTv1" followed by ";", a space, a tab, or nothing:
// "v=TLSRPTv1" alone is a record (invalid: no rua) and "v=TLSRPTv10; ..."
// is discarded as another version.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (*Record, string, error) {
	name := RecordName(domain)
	if err := dnsname.Check(strings.TrimSuffix(domain, "."), dnsname.Host); err != nil {
		return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)}
	}
	res := txtrecord.Lookup(ctx, r, name, isTLSRPTv1)
	switch res.Outcome {
	case txtrecord.Failed:
		return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrRecordLookup, res.Err)}
	case txtrecord.None:
		if res.Err != nil {
			return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrNoRecord, res.Err)}
		}
		return nil, "", &LookupError{Name: name, TXT: res.All, Err: fmt.Errorf("%w: %s", ErrNoRecord, res.NoneReason("v="+Version))}
	case txtrecord.Several:
		// RFC 8460 §3: if the number of resulting records is not one,
		// senders MUST assume the recipient domain does not implement
		// TLSRPT.
		return nil, "", &LookupError{Name: name, TXT: res.All, Err: fmt.Errorf("%w: %d records begin with \"v=TLSRPTv1\": %q", ErrMultipleRecords, len(res.Matched), res.Matched)}
	}
	rec, err := ParseRecord(res.Matched[0])
	if err != nil {
		// An invalid record is no record for senders.
		return nil, res.Matched[0], &LookupError{Name: name, TXT: res.All, Err: err}
	}
	return rec, res.Matched[0], nil
}

func isTLSRPTv1(t string) bool { return txtrecord.HasVersion(t, "v="+Version) }

func isWSP(c byte) bool   { return c == ' ' || c == '\t' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// isURIChar reports whether c may appear in a URI (RFC 3986 §2:
// unreserved, reserved, and "%" of pct-encoded).
func isURIChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}

func quote(s string) string { return fmt.Sprintf("%q", clip(s)) }
