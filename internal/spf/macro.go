package spf

import (
	"fmt"
	"net/netip"
	"strings"
)

// MacroContext is what macros expand from (RFC 7208 §7.2). Walk uses it,
// when given, to expand domain-specs that need more than the current
// domain.
type MacroContext struct {
	// Sender is <sender>: the MAIL FROM address, or the HELO domain.
	// A sender without "@" or with an empty local-part gets the local
	// part "postmaster" (RFC 7208 §4.3). Empty: %{s}, %{l} and %{o}
	// cannot be expanded.
	Sender string
	// IP is <ip>, the SMTP client's address. Zero: %{i}, %{v} and ptr
	// cannot be evaluated.
	IP netip.Addr
	// Helo is the HELO/EHLO domain. Empty: %{h} cannot be expanded.
	Helo string
}

// macroPart is a piece of a macro-string: literal text, or a
// macro-expand (letter != 0), or one of the escapes "%%", "%_", "%-"
// (literal holds the expansion and escape is set).
type macroPart struct {
	literal string
	escape  bool
	letter  byte // lower case
	upper   bool // written in upper case: URL-escape the expansion
	digits  int  // 0: all parts
	reverse bool
	delims  string // "" means "."
}

// isExpand reports whether the part is a macro-expand in the ABNF sense
// (which includes the escapes).
func (p macroPart) isExpand() bool { return p.letter != 0 || p.escape }

// parseMacroString parses macro-string (RFC 7208 §7.1). expOnlyOK allows
// the letters c, r and t, which §7.2 allows only in exp text.
func parseMacroString(s string, expOnlyOK bool) ([]macroPart, string) {
	var parts []macroPart
	lit := 0
	flush := func(i int) {
		if i > lit {
			parts = append(parts, macroPart{literal: s[lit:i]})
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			// macro-literal = %x21-24 / %x26-7E
			if c < 0x21 || c > 0x7e {
				return nil, fmt.Sprintf("byte 0x%02x at offset %d is not allowed in a macro-string", c, i)
			}
			i++
			continue
		}
		flush(i)
		if i+1 >= len(s) {
			return nil, `"%" at the end (RFC 7208 §7.3: "%" must be followed by "{", "%", "_" or "-")`
		}
		switch s[i+1] {
		case '%':
			parts = append(parts, macroPart{literal: "%", escape: true})
			i += 2
		case '_':
			parts = append(parts, macroPart{literal: " ", escape: true})
			i += 2
		case '-':
			parts = append(parts, macroPart{literal: "%20", escape: true})
			i += 2
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Sprintf("unclosed macro %q", s[i:])
			}
			p, r := parseMacroExpand(s[i+2:i+end], expOnlyOK)
			if r != "" {
				return nil, fmt.Sprintf("macro %q: %s", s[i:i+end+1], r)
			}
			parts = append(parts, p)
			i += end + 1
		default:
			// RFC 7208 §7.3: a "%" not followed by "{", "%", "-" or "_"
			// is a syntax error.
			return nil, fmt.Sprintf(`"%%" followed by %q (RFC 7208 §7.3: must be "{", "%%", "_" or "-")`, s[i+1])
		}
		lit = i
	}
	flush(len(s))
	return parts, ""
}

// parseMacroExpand parses the inside of "%{...}": macro-letter
// transformers *delimiter.
func parseMacroExpand(s string, expOnlyOK bool) (macroPart, string) {
	var p macroPart
	if s == "" {
		return p, "no macro letter"
	}
	c := s[0]
	lc := c | 0x20
	if !isAlpha(c) || !strings.ContainsRune("slodiphcrtv", rune(lc)) {
		return p, fmt.Sprintf("unknown macro letter %q", c)
	}
	if !expOnlyOK && strings.ContainsRune("crt", rune(lc)) {
		// RFC 7208 §7.2: c, r and t are allowed only in exp text.
		return p, fmt.Sprintf("macro letter %q is allowed only in explanation text (RFC 7208 §7.2)", c)
	}
	p.letter, p.upper = lc, c != lc
	i := 1
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i > start {
		n := 0
		for _, d := range s[start:i] {
			if n < 1<<20 {
				n = n*10 + int(d-'0')
			}
		}
		if n == 0 {
			// RFC 7208 §7.3: if a DIGIT is specified, the value MUST be nonzero.
			return p, "digit transformer must be nonzero (RFC 7208 §7.3)"
		}
		p.digits = n
	}
	if i < len(s) && s[i]|0x20 == 'r' {
		p.reverse = true
		i++
	}
	p.delims = s[i:]
	for ; i < len(s); i++ {
		if !strings.ContainsRune(".-+,/_=", rune(s[i])) {
			return p, fmt.Sprintf("%q is not a delimiter", s[i])
		}
	}
	return p, ""
}

// macroEnv is the data one expansion uses.
type macroEnv struct {
	domain string // <domain> of the record being evaluated
	ctx    *MacroContext
}

// expandDomainSpec expands a domain-spec (RFC 7208 §7.3). ok is false
// when a macro needs data the context lacks; missing names the macro.
func expandDomainSpec(spec string, env macroEnv) (name string, missing string, ok bool) {
	parts, r := parseMacroString(spec, false)
	if r != "" {
		return "", "", false
	}
	var b strings.Builder
	for _, p := range parts {
		if p.letter == 0 {
			b.WriteString(p.literal)
			continue
		}
		v, ok := macroValue(p.letter, env)
		if !ok {
			return "", "%{" + string(p.letter) + "}", false
		}
		v = transform(v, p)
		if p.upper {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return truncateName(b.String()), "", true
}

func macroValue(letter byte, env macroEnv) (string, bool) {
	c := env.ctx
	switch letter {
	case 'd':
		return env.domain, true
	case 's', 'l', 'o':
		if c == nil || c.Sender == "" {
			return "", false
		}
		local, domain, found := strings.Cut(c.Sender, "@")
		if !found {
			local, domain = "", c.Sender
		}
		// RFC 7208 §4.3: no local-part → "postmaster".
		if local == "" {
			local = "postmaster"
		}
		switch letter {
		case 's':
			return local + "@" + domain, true
		case 'l':
			return local, true
		default:
			return domain, true
		}
	case 'h':
		if c == nil || c.Helo == "" {
			return "", false
		}
		return c.Helo, true
	case 'i':
		if c == nil || !c.IP.IsValid() {
			return "", false
		}
		ip := c.IP.Unmap()
		if ip.Is4() {
			return ip.String(), true
		}
		// RFC 7208 §7.3: for IPv6 "i" is the dot-format address.
		const hex = "0123456789abcdef"
		a := ip.As16()
		var b strings.Builder
		for j, x := range a {
			if j > 0 {
				b.WriteByte('.')
			}
			b.WriteByte(hex[x>>4])
			b.WriteByte('.')
			b.WriteByte(hex[x&0xf])
		}
		return b.String(), true
	case 'v':
		if c == nil || !c.IP.IsValid() {
			return "", false
		}
		if c.IP.Unmap().Is4() {
			return "in-addr", true
		}
		return "ip6", true
	}
	// 'p' needs PTR validation; c, r, t are not allowed in domain-specs.
	return "", false
}

// transform applies the digit and reverse transformers and delimiters
// (RFC 7208 §7.3).
func transform(v string, p macroPart) string {
	if p.digits == 0 && !p.reverse && p.delims == "" {
		return v
	}
	delims := p.delims
	if delims == "" {
		delims = "."
	}
	// RFC 7208 §7.3: empty parts are kept.
	var labels []string
	start := 0
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(delims, v[i]) >= 0 {
			labels = append(labels, v[start:i])
			start = i + 1
		}
	}
	labels = append(labels, v[start:])
	if p.reverse {
		for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
	}
	if p.digits > 0 && p.digits < len(labels) {
		labels = labels[len(labels)-p.digits:]
	}
	return strings.Join(labels, ".")
}

// urlEscape escapes characters outside RFC 3986 "unreserved"
// (RFC 7208 §7.3: upper-case macros are URL-escaped).
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// truncateName removes labels from the left until the name is at most 253
// characters (RFC 7208 §7.3).
func truncateName(s string) string {
	for len(strings.TrimSuffix(s, ".")) > 253 {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return s
		}
		s = s[i+1:]
	}
	return s
}
