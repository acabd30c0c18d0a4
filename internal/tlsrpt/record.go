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
	p := recordParser{sc: txtrecord.Scanner{Text: txt, Quote: quote, Describe: describeByte}}
	return p.parse()
}

type recordParser struct {
	sc txtrecord.Scanner
}

func (p *recordParser) fail(field string, off int, value, reason string) error {
	return &ParseError{Field: field, Offset: off, Value: value, Reason: reason, Err: ErrRecordSyntax}
}

// failField turns a syntax problem found by the scanner into a *ParseError.
func (p *recordParser) failField(e *txtrecord.FieldError) error {
	return p.fail(e.Field, e.Offset, e.Value, e.Reason)
}

func (p *recordParser) parse() (*Record, error) {
	// tlsrpt-version = %s"v=TLSRPTv1"
	if e := p.sc.Version(Version); e != nil {
		if p.sc.Text == "" {
			e.Reason = "empty record; " + e.Reason
		}
		return nil, p.failField(e)
	}
	r := &Record{Version: Version}
	prev := "v"
	for {
		// field-delim = *WSP ";" *WSP; one may end the record.
		more, e := p.sc.Next(prev)
		if e != nil {
			return nil, p.failField(e)
		}
		if !more {
			break
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
		return nil, p.fail("rua", len(p.sc.Text), "", reason)
	}
	return r, nil
}

// field parses one tlsrpt-field at the scanner's position, adds it to r
// and returns its name.
func (p *recordParser) field(r *Record) (string, error) {
	name, e := p.sc.Name(`empty field: only one ";" may end the record and fields may not be empty`)
	if e != nil {
		return "", p.failField(e)
	}
	if name == "rua" {
		return name, p.rua(r)
	}
	// tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
	value, e := p.sc.ExtValue(name)
	if e != nil {
		return "", p.failField(e)
	}
	r.Extensions = append(r.Extensions, Pair{Key: name, Value: value})
	return name, nil
}

// rua parses tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) at the scanner's
// position.
func (p *recordParser) rua(r *Record) error {
	sc := &p.sc
	for {
		ustart := sc.Pos
		for sc.Pos < len(sc.Text) && sc.Text[sc.Pos] != ';' && sc.Text[sc.Pos] != ',' && !isWSP(sc.Text[sc.Pos]) {
			sc.Pos++
		}
		uri := sc.Text[ustart:sc.Pos]
		if uri == "" {
			reason := "empty URI"
			if ustart < len(sc.Text) && isWSP(sc.Text[ustart]) {
				reason = `whitespace is only allowed around "," and ";"`
			}
			return p.fail("rua", ustart, sc.Token(ustart), reason)
		}
		if off, reason := checkRUA(uri); reason != "" {
			return p.fail("rua", ustart+off, uri, reason)
		}
		r.RUA = append(r.RUA, uri)
		// *WSP "," *WSP, or the end of the field
		save := sc.Pos
		sc.SkipWSP()
		if sc.Pos < len(sc.Text) && sc.Text[sc.Pos] == ',' {
			sc.Pos++
			sc.SkipWSP()
			continue
		}
		sc.Pos = save
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
