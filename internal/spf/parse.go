package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Parse parses an SPF record: the TXT character-strings of one resource
// record, already concatenated without spaces (RFC 7208 §3.3).
//
// The whole record follows the RFC 7208 §12 grammar or Parse fails:
// RFC 7208 §4.6: "if there are any syntax errors anywhere in the record,
// check_host() returns immediately with the result permerror". Beyond the
// grammar Parse rejects what §5, §6 and §7 make a permerror without any
// DNS lookup: an unknown mechanism, "redirect" or "exp" written twice, a
// zero macro digit transformer, and the exp-only macro letters c, r and t
// in a domain-spec.
//
// Terms are separated by one or more spaces (SP only: a tab is a syntax
// error); trailing spaces are allowed, leading ones are not.
func Parse(txt string) (rec *Record, err error) {
	defer func() {
		// STYLE rule 8: a parser bug must not take the checker down.
		if p := recover(); p != nil {
			rec, err = nil, &ParseError{Term: txt, Reason: fmt.Sprintf("internal parser error: %v", p)}
		}
	}()
	// RFC 7208 §4.5: the version section is "v=spf1" terminated by SP or
	// the end of the record; §12: literals are case-insensitive.
	if !IsRecord(txt) {
		first, _, _ := strings.Cut(txt, " ")
		return nil, &ParseError{Term: first, Pos: 0, Reason: `record must start with "v=spf1" followed by a space or the end`}
	}
	rec = &Record{}
	var seenRedirect, seenExp bool
	pos := len("v=spf1")
	for pos < len(txt) {
		if txt[pos] == ' ' {
			pos++
			continue
		}
		end := strings.IndexByte(txt[pos:], ' ')
		if end < 0 {
			end = len(txt)
		} else {
			end += pos
		}
		raw := txt[pos:end]
		t, reason := parseTerm(raw)
		if reason != "" {
			return nil, &ParseError{Term: raw, Pos: pos, Reason: reason}
		}
		switch t.Modifier {
		case "redirect":
			// RFC 7208 §6: redirect and exp MUST NOT appear more than once.
			if seenRedirect {
				return nil, &ParseError{Term: raw, Pos: pos, Reason: `"redirect" appears more than once (RFC 7208 §6)`}
			}
			seenRedirect = true
		case "exp":
			if seenExp {
				return nil, &ParseError{Term: raw, Pos: pos, Reason: `"exp" appears more than once (RFC 7208 §6)`}
			}
			seenExp = true
		}
		rec.Terms = append(rec.Terms, t)
		pos = end
	}
	return rec, nil
}

// IsRecord reports whether txt is an SPF record: it starts with "v=spf1"
// (any case) followed by a space or the end (RFC 7208 §4.5). "v=spf10"
// is not.
func IsRecord(txt string) bool {
	const v = "v=spf1"
	if len(txt) < len(v) || !strings.EqualFold(txt[:len(v)], v) {
		return false
	}
	return len(txt) == len(v) || txt[len(v)] == ' '
}

// parseTerm parses one term; a non-empty reason means a syntax error.
func parseTerm(raw string) (Term, string) {
	t := Term{Raw: raw, Qualifier: '+', Prefix4: -1, Prefix6: -1}
	// RFC 7208 §4.6.1: a modifier has "=" right after its name, before
	// any ":" or "/".
	if i := strings.IndexAny(raw, "=:/"); i > 0 && raw[i] == '=' && isName(raw[:i]) {
		return parseModifier(t, raw[:i], raw[i+1:])
	}
	rest := raw
	switch rest[0] {
	case '+', '-', '~', '?':
		t.Qualifier = rest[0]
		rest = rest[1:]
	}
	name, arg := rest, ""
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		name, arg = rest[:i], rest[i:]
	}
	t.Mechanism = strings.ToLower(name)
	switch t.Mechanism {
	case "all":
		if arg != "" {
			return t, fmt.Sprintf(`"all" takes no argument, got %q`, arg)
		}
	case "include", "exists":
		if !strings.HasPrefix(arg, ":") || len(arg) == 1 {
			return t, fmt.Sprintf(`%q needs ":" and a domain`, t.Mechanism)
		}
		t.Domain = arg[1:]
		if r := checkDomainSpec(t.Domain); r != "" {
			return t, r
		}
	case "a", "mx":
		spec, p4, p6, r := splitDualCIDR(arg)
		if r != "" {
			return t, r
		}
		t.Prefix4, t.Prefix6 = p4, p6
		if spec != "" {
			if !strings.HasPrefix(spec, ":") || len(spec) == 1 {
				return t, fmt.Sprintf(`%q: expected ":" and a domain or a "/" prefix length, got %q`, t.Mechanism, spec)
			}
			t.Domain = spec[1:]
			if r := checkDomainSpec(t.Domain); r != "" {
				return t, r
			}
		}
	case "ptr":
		if arg != "" {
			if !strings.HasPrefix(arg, ":") || len(arg) == 1 {
				return t, fmt.Sprintf(`"ptr" takes only ":" and a domain, got %q`, arg)
			}
			t.Domain = arg[1:]
			if r := checkDomainSpec(t.Domain); r != "" {
				return t, r
			}
		}
	case "ip4", "ip6":
		if !strings.HasPrefix(arg, ":") || len(arg) == 1 {
			return t, fmt.Sprintf(`%q needs ":" and an address`, t.Mechanism)
		}
		if r := parseIPNetwork(&t, arg[1:]); r != "" {
			return t, r
		}
	case "":
		return t, "empty mechanism name"
	default:
		// RFC 7208 §5: an unknown mechanism is a permerror.
		return t, fmt.Sprintf("unknown mechanism %q", name)
	}
	return t, ""
}

func parseModifier(t Term, name, value string) (Term, string) {
	t.Modifier = strings.ToLower(name)
	t.Value = value
	switch t.Modifier {
	case "redirect", "exp":
		if value == "" {
			return t, fmt.Sprintf("%q needs a domain", t.Modifier)
		}
		t.Domain = value
		if r := checkDomainSpec(value); r != "" {
			return t, r
		}
	default:
		// RFC 7208 §6: unknown modifiers are ignored, but their value is
		// a macro-string (§12), so its syntax still counts.
		if _, r := parseMacroString(value, true); r != "" {
			return t, r
		}
	}
	return t, ""
}

// isName reports whether s matches name = ALPHA *( ALPHA / DIGIT / "-" /
// "_" / "." ) (RFC 7208 §12).
func isName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitDualCIDR splits a trailing dual-cidr-length off the argument of
// "a" or "mx" (RFC 7208 §5.6): [ "/" ip4-len ] [ "//" ip6-len ]. It
// returns -1 for a length not written.
func splitDualCIDR(arg string) (spec string, p4, p6 int, reason string) {
	p4, p6 = -1, -1
	spec = arg
	if i := strings.LastIndex(spec, "//"); i >= 0 && allDigits(spec[i+2:]) {
		n, r := cidrLength(spec[i+2:], 128)
		if r != "" {
			return "", 0, 0, "ip6-cidr-length: " + r
		}
		p6, spec = n, spec[:i]
	}
	if i := strings.LastIndexByte(spec, '/'); i >= 0 && allDigits(spec[i+1:]) {
		n, r := cidrLength(spec[i+1:], 32)
		if r != "" {
			return "", 0, 0, "ip4-cidr-length: " + r
		}
		p4, spec = n, spec[:i]
	}
	if strings.HasPrefix(spec, "/") {
		return "", 0, 0, fmt.Sprintf("bad prefix length %q", arg)
	}
	return spec, p4, p6, ""
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// cidrLength parses "0" / %x31-39 *DIGIT up to limit (RFC 7208 §12: no
// leading zeros).
func cidrLength(s string, limit int) (int, string) {
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Sprintf("%q has a leading zero", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > limit {
		return 0, fmt.Sprintf("%q is not in 0-%d", s, limit)
	}
	return n, ""
}

// parseIPNetwork parses the ip4-network or ip6-network of an ip4/ip6
// mechanism with its optional prefix length.
func parseIPNetwork(t *Term, s string) string {
	maxBits := 32
	if t.Mechanism == "ip6" {
		maxBits = 128
	}
	addrText, bits := s, maxBits
	if i := strings.IndexByte(s, '/'); i >= 0 {
		addrText = s[:i]
		if !allDigits(s[i+1:]) {
			return fmt.Sprintf("bad prefix length %q", s[i:])
		}
		n, r := cidrLength(s[i+1:], maxBits)
		if r != "" {
			return t.Mechanism + "-cidr-length: " + r
		}
		bits = n
		if t.Mechanism == "ip4" {
			t.Prefix4 = n
		} else {
			t.Prefix6 = n
		}
	}
	addr, err := netip.ParseAddr(addrText)
	if err != nil || addr.Zone() != "" {
		return fmt.Sprintf("%q is not an IP address", addrText)
	}
	// RFC 7208 §5.6: ip4-network is a dotted quad; ip6-network is an
	// RFC 4291 §2.2 text form (which may embed a dotted quad).
	if t.Mechanism == "ip4" && !addr.Is4() {
		return fmt.Sprintf("%q is not an IPv4 address", addrText)
	}
	if t.Mechanism == "ip6" && !strings.Contains(addrText, ":") {
		return fmt.Sprintf("%q is not an IPv6 address", addrText)
	}
	t.IP = netip.PrefixFrom(addr, bits)
	return ""
}

// checkDomainSpec validates domain-spec = macro-string domain-end, with
// domain-end = ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 §7.1).
func checkDomainSpec(s string) string {
	parts, r := parseMacroString(s, false)
	if r != "" {
		return r
	}
	if len(parts) == 0 {
		return "empty domain"
	}
	last := parts[len(parts)-1]
	if last.isExpand() {
		return "" // ends with a macro-expand (which includes "%%", "%_", "%-")
	}
	// Ends with literal text: it must end with "." toplabel [ "." ].
	lit := strings.TrimSuffix(s, ".")
	i := strings.LastIndexByte(lit, '.')
	if i < 0 {
		return fmt.Sprintf("domain %q has no dot before its last label (RFC 7208 §7.1 domain-end)", s)
	}
	if !isTopLabel(lit[i+1:]) {
		return fmt.Sprintf("domain %q: last label %q is not a valid top label (RFC 7208 §7.1 toplabel)", s, lit[i+1:])
	}
	return ""
}

// isTopLabel matches toplabel = ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).
func isTopLabel(s string) bool {
	if s == "" {
		return false
	}
	hasAlpha, hasHyphen := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			hasAlpha = true
		case isDigit(c):
		case c == '-':
			hasHyphen = true
		default:
			return false
		}
	}
	if !hasHyphen {
		return hasAlpha
	}
	return s[0] != '-' && s[len(s)-1] != '-'
}
