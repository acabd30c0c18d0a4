package dnsname

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Length limits of a name in text form (RFC 1035 §2.3.4: 63 octets per
// label, 255 octets in wire form, which is 253 in text form without the
// trailing dot; RFC 5890 §2.3.1 applies them to A-labels).
const (
	MaxLabelLen = 63
	MaxNameLen  = 253
)

// ErrInvalid is wrapped by every *Error: the name is not valid at the level
// asked. The message says why; show it to the person who gave the name.
var ErrInvalid = errors.New("dnsname: invalid domain name")

// Error is a name refused by Parse, Check, ParsePattern, CheckPattern or
// CheckLength.
type Error struct {
	Input  string // the name or pattern exactly as given
	Reason string // why it was refused, for people
}

func (e *Error) Error() string {
	return "invalid domain name " + strconv.Quote(e.Input) + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Level is a set of rules a name must follow beyond the length and A-label
// rules every name follows. The zero Level is not one of them; it is
// treated as LDH.
type Level int

const (
	// LDH is the bare syntax of RFC 5321 §4.1.2 Domain: labels of letters,
	// digits and hyphens, not beginning or ending with a hyphen (RFC 1123
	// §2.1, which allows a leading digit), any number of labels. It is what
	// a tolerant parser accepts in others' protocol text, such as the mx
	// lines of an MTA-STS policy (RFC 8461 §3.2: ["*."] Domain).
	LDH Level = iota + 1
	// Host is a host name: MX hosts, policy hosts, the service zone (RFC
	// 952 and RFC 1123 §2.1). LDH syntax, at least two labels (a single
	// label is not fully qualified), and a top-level label that is not all
	// digits (RFC 3696 §2), so that an IP address is never taken for a
	// name.
	Host
	// Owner is the owner name of a DNS record, which may hold underscore
	// labels such as "_dmarc.example.com", "selector._domainkey.example.com"
	// or "x._report._dmarc.example.net" (RFC 8552 §2): letters, digits,
	// hyphens and underscores (anywhere in a label), no hyphen at either
	// end of a label, any number of labels. DKIM and BIMI selectors are
	// Owner names too.
	Owner
	// Domain is a mail domain that is hosted or checked: a Host that is not
	// itself a public suffix by the Public Suffix List
	// (https://publicsuffix.org, ICANN and private sections): "com",
	// "co.uk" and "github.io" are refused, "example.com" and
	// "mail.example.com" are not. A name under a top-level domain the list
	// does not know ("example.test", "demo.moat.test") is accepted when it
	// has at least two labels.
	Domain
)

func (l Level) String() string {
	switch l {
	case LDH:
		return "LDH"
	case Host:
		return "Host"
	case Owner:
		return "Owner"
	case Domain:
		return "Domain"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// hostRules reports whether l adds the host name rules (two labels, no
// numeric top-level label, no IP address) to the syntax.
func (l Level) hostRules() bool { return l == Host || l == Domain }

// noun names what a name of level l is, for messages.
func (l Level) noun() string {
	switch l {
	case Domain:
		return "domain name"
	case Owner:
		return "DNS name"
	}
	return "host name"
}

// charRule is the character rule of level l, for messages.
func (l Level) charRule() string {
	if l == Owner {
		return "DNS owner names are letters, digits, hyphens and underscores, RFC 1123 §2.1 and RFC 8552 §2"
	}
	return "host names are letters, digits and hyphens, RFC 1123 §2.1"
}

// Parse returns name in canonical form, validated at level l: surrounding
// white space and one trailing dot removed, lower case, A-labels
// ("ÜBER.Example." gives "xn--ber-goa.example"). The ideographic full
// stops U+3002, U+FF0E and U+FF61 separate labels like "." (RFC 3490 §3.1).
// The error is an *Error wrapping ErrInvalid.
//
// The result r always satisfies Check(r, l) == nil and Parse(r, l) == r.
func Parse(name string, l Level) (string, error) {
	out, reason := parse(trim(name), l, true)
	if reason != "" {
		return "", &Error{Input: name, Reason: reason}
	}
	return out, nil
}

// Check reports whether name, exactly as given, is a valid name at level
// l in protocol text: A-labels only (a U-label is refused, with the A-label
// to write instead), ASCII letters of any case, no trailing dot, no
// surrounding space. The error is an *Error wrapping ErrInvalid.
func Check(name string, l Level) error {
	if _, reason := parse(name, l, false); reason != "" {
		return &Error{Input: name, Reason: reason}
	}
	return nil
}

// ParsePattern is Parse for an MTA-STS mx pattern (RFC 8461 §3.2, §4.1): a
// name at level l, or "*." followed by one, the wildcard standing for
// exactly one left-most label. " *.Mail.Exämple.com. " gives
// "*.mail.xn--exmple-cua.com". When l requires two labels (Host, Domain),
// so does the part after "*.": "*.com" would cover a whole top-level
// domain.
func ParsePattern(pattern string, l Level) (string, error) {
	out, reason := parsePattern(trim(pattern), l, true)
	if reason != "" {
		return "", &Error{Input: pattern, Reason: reason}
	}
	return out, nil
}

// CheckPattern is Check for an mx pattern (see ParsePattern).
func CheckPattern(pattern string, l Level) error {
	if _, reason := parsePattern(pattern, l, false); reason != "" {
		return &Error{Input: pattern, Reason: reason}
	}
	return nil
}

// CheckLength checks only what RFC 1035 §2.3.4 requires of every name in
// text form, whatever its octets: not empty, no empty label, labels of at
// most 63 octets, at most 253 octets in all (no trailing dot). It is for
// names built from data, such as SPF targets after macro expansion (RFC
// 7208 §4.3, §7.3), whose labels may hold any octet.
func CheckLength(name string) error {
	var reason string
	if name == "" {
		reason = "empty name"
	} else if strings.HasSuffix(name, ".") && !strings.HasSuffix(name, "..") && name != "." {
		reason = trailingDotReason
	} else {
		labels := strings.Split(name, ".")
		reason = emptyLabelReason(labels)
		if reason == "" {
			reason = lengthReason(labels, name)
		}
	}
	if reason != "" {
		return &Error{Input: name, Reason: reason}
	}
	return nil
}

// trim removes surrounding white space and one trailing dot, after
// mapping the ideographic full stops to ".".
func trim(s string) string {
	s = strings.TrimSpace(s)
	if !isASCII(s) {
		s = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".").Replace(s)
	}
	return strings.TrimSuffix(s, ".")
}

func parsePattern(s string, l Level, user bool) (string, string) {
	base, wild := strings.CutPrefix(s, "*.")
	if s == "*" {
		wild, base = true, "" // "*." with its dot trimmed
	}
	if wild && base == "" {
		return "", `nothing follows the wildcard "*."`
	}
	if strings.Contains(base, "*") {
		// RFC 8461 §3.2, §4.1: the wildcard is the whole left-most label.
		return "", `"*" is only allowed as the complete left-most label, as in "*.example.com"`
	}
	if !wild {
		return parse(base, l, user)
	}
	labels, reason := syntax(base, l, user)
	if reason != "" {
		return "", reason
	}
	if l.hostRules() && len(labels) < 2 {
		return "", `wildcard over a whole top-level domain; name at least two labels after "*."`
	}
	if reason := levelReason(labels, l); reason != "" {
		return "", reason
	}
	return "*." + strings.Join(labels, "."), ""
}

// parse validates s at level l and returns its canonical form. user: s
// comes from a person (already trimmed): U-labels are converted and the
// result lower-cased; otherwise U-labels are refused. It returns the
// reason s is refused, or "".
func parse(s string, l Level, user bool) (string, string) {
	labels, reason := syntax(s, l, user)
	if reason != "" {
		return "", reason
	}
	if reason := levelReason(labels, l); reason != "" {
		return "", reason
	}
	return strings.Join(labels, "."), ""
}

// syntax splits s into its labels, lower-cased A-labels, checking the
// characters, the A-labels and the lengths.
func syntax(s string, l Level, user bool) ([]string, string) {
	if s == "" {
		return nil, "empty name"
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return nil, "is an address literal, not a " + l.noun()
	}
	if l.hostRules() {
		if _, err := netip.ParseAddr(s); err == nil {
			return nil, "is an IP address, not a " + l.noun()
		}
	}
	labels := strings.Split(s, ".")
	if !user && len(labels) > 1 && labels[len(labels)-2] != "" && labels[len(labels)-1] == "" {
		return nil, trailingDotReason
	}
	if reason := emptyLabelReason(labels); reason != "" {
		return nil, reason
	}
	out := make([]string, len(labels))
	for i, label := range labels {
		a, reason := checkLabel(label, l, user)
		if reason != "" {
			return nil, reason
		}
		out[i] = a
	}
	if reason := lengthReason(out, strings.Join(out, ".")); reason != "" {
		return nil, reason
	}
	return out, ""
}

// trailingDotReason refuses the root's dot in protocol text, where the
// grammars (RFC 5321 Domain, RFC 8461 mx, RFC 8460 policy-domain) have no
// place for it.
const trailingDotReason = "must not end with a dot"

func emptyLabelReason(labels []string) string {
	for _, label := range labels {
		if label == "" {
			return "has an empty label (a leading, doubled or trailing dot)"
		}
	}
	return ""
}

func lengthReason(labels []string, name string) string {
	for _, label := range labels {
		if len(label) > MaxLabelLen {
			// RFC 1035 §2.3.4: labels are 63 octets or less.
			return fmt.Sprintf("label %q is %d characters long; at most %d are allowed (RFC 1035 §2.3.4)", label, len(label), MaxLabelLen)
		}
	}
	if len(name) > MaxNameLen {
		// RFC 1035 §2.3.4: names are 255 octets or less in wire form.
		return fmt.Sprintf("name is %d characters long; at most %d are allowed (RFC 1035 §2.3.4)", len(name), MaxNameLen)
	}
	return ""
}

// levelReason applies the rules of level l beyond the syntax to the
// labels (lower-cased A-labels).
func levelReason(labels []string, l Level) string {
	if !l.hostRules() {
		return ""
	}
	name := strings.Join(labels, ".")
	if l == Domain && isPublicSuffix(name, len(labels)) {
		return publicSuffixReason(name)
	}
	if len(labels) < 2 {
		return "not a fully qualified " + l.noun() + ": name at least two labels, like example.net"
	}
	if tld := labels[len(labels)-1]; allDigits(tld) {
		// RFC 3696 §2: a top-level domain is not all-numeric.
		return fmt.Sprintf("the top-level label %q is all digits, so the name looks like an IP address (RFC 3696 §2)", tld)
	}
	return ""
}

// checkLabel validates one non-empty label and returns it as a lower-case
// A-label.
func checkLabel(label string, l Level, user bool) (string, string) {
	if !isASCII(label) {
		return checkULabel(label, l, user)
	}
	return checkASCIILabel(label, l)
}

// checkASCIILabel validates a non-empty ASCII label and returns it in
// lower case.
func checkASCIILabel(label string, l Level) (string, string) {
	lower := strings.ToLower(label)
	for i := 0; i < len(label); i++ {
		if c := label[i]; !allowed(c, l) {
			return "", fmt.Sprintf("label %q has %s (%s)", label, describe(c), l.charRule())
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		// RFC 1123 §2.1: a label begins and ends with a letter or digit.
		return "", fmt.Sprintf("label %q begins or ends with a hyphen (RFC 1123 §2.1)", label)
	}
	if strings.HasPrefix(lower, "xn--") && !validALabel(lower) {
		// RFC 5891 §5.4: an A-label is validated by decoding it to a
		// U-label, checking that, and encoding it back.
		return "", fmt.Sprintf("label %q begins with \"xn--\" but is not a valid A-label: it does not decode to a valid internationalized label (RFC 5890 §2.3.2.1, RFC 5891 §5.4)", label)
	}
	return lower, ""
}

// checkULabel converts a label holding non-ASCII characters to an A-label
// (user input) or refuses it (protocol text).
func checkULabel(label string, l Level, user bool) (string, string) {
	a, err := idna.Lookup.ToASCII(label)
	ok := err == nil && a != "" && !strings.Contains(a, ".") && isASCII(a)
	if !user {
		if ok && strings.HasPrefix(a, "xn--") {
			return "", fmt.Sprintf("label %q is not ASCII; write it as the A-label %q (RFC 5890 §2.3.2.1)", label, a)
		}
		return "", fmt.Sprintf("label %q is not ASCII; write it as an A-label (xn--...) (RFC 5890 §2.3.2.1)", label)
	}
	// ASCII characters the level refuses are named first: "bü_cher" is
	// refused for its "_", not as an invalid IDN.
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c >= utf8.RuneSelf {
			continue
		}
		if !allowed(c, l) {
			return "", fmt.Sprintf("label %q has %s (%s)", label, describe(c), l.charRule())
		}
		if c == '_' {
			// RFC 5892 §2.6: "_" is not allowed in an internationalized
			// label, even where underscored labels are.
			return "", fmt.Sprintf("label %q mixes the character '_' with non-ASCII characters; an internationalized label is letters, digits and hyphens (RFC 5892)", label)
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return "", fmt.Sprintf("label %q begins or ends with a hyphen (RFC 1123 §2.1)", label)
	}
	if reservedHyphens(label) {
		return "", fmt.Sprintf("label %q has hyphens in the third and fourth positions, which are reserved (RFC 5891 §4.2.3.1)", label)
	}
	if !ok {
		return "", idnaReason(label)
	}
	// The mapping may give a plain ASCII label ("ＥＸＡＭＰＬＥ" is
	// "example"): it must follow the ASCII rules too.
	return checkASCIILabel(a, l)
}

// idnaReason says why a label with non-ASCII characters is not a valid
// IDN, naming the first character IDNA2008 disallows when there is one.
func idnaReason(label string) string {
	for _, r := range label {
		if r < utf8.RuneSelf {
			continue
		}
		// A character refused on its own and after a letter is
		// disallowed, not merely misplaced (combining marks, joiners and
		// right-to-left characters depend on their context).
		if _, err := idna.Lookup.ToASCII(string(r)); err == nil {
			continue
		}
		if _, err := idna.Lookup.ToASCII("a" + string(r)); err == nil {
			continue
		}
		return fmt.Sprintf("label %q has the character %q (%U), which is not allowed in domain names (IDNA2008, RFC 5892; UTS 46)", label, r, r)
	}
	return fmt.Sprintf("label %q is not a valid internationalized label (IDNA2008 with the UTS 46 mapping: RFC 5891 §5.4, RFC 5892, RFC 5893)", label)
}

// validALabel reports whether a lower-case label beginning with "xn--"
// decodes to a valid U-label that encodes back to the same label.
func validALabel(a string) bool {
	u, err := idna.Lookup.ToUnicode(a)
	if err != nil || u == "" || isASCII(u) || reservedHyphens(u) {
		return false
	}
	back, err := idna.Lookup.ToASCII(u)
	return err == nil && back == a
}

// reservedHyphens reports whether the U-label u has "--" as its third and
// fourth characters (RFC 5891 §4.2.3.1: reserved for "xn--"-like prefixes;
// the IDNA library compares bytes, not characters).
func reservedHyphens(u string) bool {
	i := 0
	for _, r := range u {
		if (i == 2 || i == 3) && r != '-' {
			return false
		}
		if i == 3 {
			return true
		}
		i++
	}
	return false
}

// allowed reports whether the ASCII byte c may appear in a label of level
// l (hyphens anywhere; their position is checked apart).
func allowed(c byte, l Level) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		return true
	case c == '_':
		// RFC 8552 §2: underscored labels name services and records.
		return l == Owner
	}
	return false
}

// describe names an ASCII byte for a message.
func describe(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c == '\t':
		return "a tab"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("the control character %U", rune(c))
	}
	return fmt.Sprintf("the character %q", rune(c))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
