package mtasts

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mode is the policy "mode" field (RFC 8461 §3.2, §5).
type Mode string

// The modes defined by RFC 8461 §5.
const (
	ModeEnforce Mode = "enforce" // do not deliver to hosts failing validation
	ModeTesting Mode = "testing" // deliver anyway, report failures (TLSRPT)
	ModeNone    Mode = "none"    // treat the domain as having no policy
)

// Valid reports whether m is one of the three modes of RFC 8461 §3.2.
func (m Mode) Valid() bool {
	return m == ModeEnforce || m == ModeTesting || m == ModeNone
}

// MaxMaxAge is the largest max_age allowed by RFC 8461 §3.2, in seconds
// (about one year).
const MaxMaxAge = 31557600

// Policy is an MTA-STS policy file (RFC 8461 §3.2).
type Policy struct {
	Version string   // "STSv1"; Format and Validate take "" to mean "STSv1"
	Mode    Mode     // enforce, testing or none
	MX      []string // mx patterns in order of appearance, as written
	MaxAge  int64    // seconds, 0 to MaxMaxAge
	// Extensions are the fields not defined by RFC 8461, in order of
	// appearance, first occurrence of each name only (§3.2: unknown fields
	// SHALL be ignored by senders; they are kept here for display).
	Extensions []Pair
}

// Match reports whether host matches at least one of the policy's mx
// patterns (RFC 8461 §4.1), using MatchMX. It does not look at the mode.
func (p *Policy) Match(host string) bool {
	for _, pat := range p.MX {
		if MatchMX(pat, host) {
			return true
		}
	}
	return false
}

// Format returns the policy file in canonical form: CRLF-terminated lines
// (RFC 8461 §3.2: "CRLF-separated key/value pairs") in the order version,
// mode, each mx, max_age, then extensions. An empty Version is written as
// "STSv1". Format does not validate: call Validate first when the policy
// comes from user input.
func (p *Policy) Format() []byte {
	var b bytes.Buffer
	v := p.Version
	if v == "" {
		v = Version
	}
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	line("version", v)
	line("mode", string(p.Mode))
	for _, mx := range p.MX {
		line("mx", mx)
	}
	line("max_age", strconv.FormatInt(p.MaxAge, 10))
	for _, e := range p.Extensions {
		line(e.Key, e.Value)
	}
	return b.Bytes()
}

// Validate checks a policy built from user input before it is formatted and
// served: version STSv1 (or empty), a known mode, max_age within 0 to
// MaxMaxAge, every mx pattern valid per ValidMXPattern, at least one mx
// unless the mode is "none", and extension fields that ParsePolicy would
// read back unchanged. It returns every problem found, joined with
// errors.Join; each is a *PolicyError naming the field and the value.
func (p *Policy) Validate() error {
	var errs []error
	add := func(key, value, reason string, sentinel error) {
		errs = append(errs, &PolicyError{Key: key, Value: value, Reason: reason, Err: sentinel})
	}
	if p.Version != "" && p.Version != Version {
		add("version", p.Version, "version must be STSv1", ErrPolicyVersion)
	}
	if !p.Mode.Valid() {
		add("mode", string(p.Mode), `mode must be "enforce", "testing" or "none"`, ErrPolicyMode)
	}
	if p.MaxAge < 0 || p.MaxAge > MaxMaxAge {
		add("max_age", strconv.FormatInt(p.MaxAge, 10), "max_age must be between 0 and 31557600 seconds", ErrPolicyMaxAge)
	}
	for _, mx := range p.MX {
		if err := ValidMXPattern(mx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(p.MX) == 0 && p.Mode != ModeNone && p.Mode.Valid() {
		add("mx", "", `at least one mx is required unless mode is "none"`, ErrPolicyMX)
	}
	seen := map[string]bool{}
	for _, e := range p.Extensions {
		switch {
		case isPolicyKey(e.Key):
			add(e.Key, e.Value, "extension reuses a field name defined by RFC 8461; set the Policy field instead", ErrPolicyExtension)
		case checkFieldName(e.Key) != "":
			add(e.Key, e.Value, checkFieldName(e.Key), ErrPolicyExtension)
		case seen[e.Key]:
			add(e.Key, e.Value, "extension field is repeated; only the first would be read", ErrPolicyExtension)
		default:
			if reason := extValueReason(e.Value); reason != "" {
				add(e.Key, e.Value, reason, ErrPolicyExtension)
			}
		}
		seen[e.Key] = true
	}
	return errors.Join(errs...)
}

func isPolicyKey(k string) bool {
	return k == "version" || k == "mode" || k == "max_age" || k == "mx"
}

// ParsePolicy parses a policy file body (RFC 8461 §3.2). Every error is a
// *PolicyError naming the line, key and value and wrapping one of
// ErrPolicySyntax, ErrPolicyVersion, ErrPolicyMode, ErrPolicyMaxAge or
// ErrPolicyMX.
//
// Rules and decisions:
//   - Lines end with LF or CRLF (sts-policy-term); the last line may lack
//     one. An empty or blank line anywhere, including a second line end at
//     the end of the file, does not match the ABNF and is an error.
//   - Each line is key ":" *WSP value *WSP. Keys and the values of
//     version and mode are case-sensitive (%s in the ABNF, RFC 7405).
//   - The fields may come in any order: unlike the TXT record, the ABNF
//     does not require "version" first.
//   - version, mode and max_age are required once; if repeated, the first
//     is used and later ones are ignored (they need only be syntactically
//     valid fields). Every mx line is used and must be valid.
//   - max_age is 1 to 10 digits and at most 31557600.
//   - mx is ["*."] Domain (RFC 5321), with no trailing dot, and is required
//     at least once unless mode is "none". ParsePolicy applies only the
//     ABNF; ValidMXPattern is stricter.
//   - Other fields are extensions, kept in Extensions and otherwise
//     ignored (§3.2: unknown fields SHALL be ignored).
func ParsePolicy(data []byte) (*Policy, error) {
	p := &Policy{}
	var haveVersion, haveMode, haveMaxAge bool
	seenExt := map[string]bool{}
	lineNo := 0
	rest := data
	if len(rest) == 0 {
		return nil, &PolicyError{Line: 1, Reason: "empty policy", Err: ErrPolicySyntax}
	}
	for len(rest) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
			// sts-policy-term = LF / CRLF
			line = bytes.TrimSuffix(line, []byte{'\r'})
		} else {
			line, rest = rest, nil
		}
		key, value, err := splitPolicyLine(lineNo, line)
		if err != nil {
			return nil, err
		}
		fail := func(sentinel error, reason string) error {
			return &PolicyError{Line: lineNo, Key: key, Value: value, Reason: reason, Err: sentinel}
		}
		switch {
		case key == "version" && !haveVersion:
			haveVersion = true
			// sts-policy-version-value = %s"STSv1"
			if value != Version {
				return nil, fail(ErrPolicyVersion, "version must be STSv1")
			}
			p.Version = value
		case key == "mode" && !haveMode:
			haveMode = true
			// sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none"
			if !Mode(value).Valid() {
				return nil, fail(ErrPolicyMode, `mode must be "enforce", "testing" or "none" (lower case)`)
			}
			p.Mode = Mode(value)
		case key == "max_age" && !haveMaxAge:
			haveMaxAge = true
			n, reason := parseMaxAge(value)
			if reason != "" {
				return nil, fail(ErrPolicyMaxAge, reason)
			}
			p.MaxAge = n
		case key == "mx":
			// RFC 8461 §3.2: each MX MUST have its own "mx:" key, on its own
			// line; sts-policy-mx-value = ["*."] Domain.
			if reason := mxPatternReason(value, false); reason != "" {
				return nil, fail(ErrPolicyMX, reason)
			}
			p.MX = append(p.MX, value)
		case isPolicyKey(key):
			// RFC 8461 §3.2: if a non-repeated field is duplicated, all
			// entries except the first SHALL be ignored.
		default:
			// RFC 8461 §3.2: unknown fields SHALL be ignored.
			if !seenExt[key] {
				seenExt[key] = true
				p.Extensions = append(p.Extensions, Pair{Key: key, Value: value})
			}
		}
	}

	missing := func(key string, sentinel error, why string) error {
		reason := "missing required field " + quote(key) + why
		for _, e := range p.Extensions {
			if strings.EqualFold(e.Key, key) {
				reason += " (found " + quote(e.Key) + "; field names are case-sensitive)"
				break
			}
		}
		return &PolicyError{Key: key, Reason: reason, Err: sentinel}
	}
	switch {
	case !haveVersion:
		return nil, missing("version", ErrPolicyVersion, "")
	case !haveMode:
		return nil, missing("mode", ErrPolicyMode, "")
	case !haveMaxAge:
		return nil, missing("max_age", ErrPolicyMaxAge, "")
	case len(p.MX) == 0 && p.Mode != ModeNone:
		// ABNF comment on sts-policy-mx: required at least once, except
		// when mode is "none".
		return nil, missing("mx", ErrPolicyMX, ` with mode "`+string(p.Mode)+`"; only mode "none" may omit it`)
	}
	return p, nil
}

// splitPolicyLine splits one line (without its terminator) into key and
// value: sts-policy-ext-name ":" *WSP sts-policy-ext-value *WSP.
func splitPolicyLine(lineNo int, line []byte) (key, value string, err error) {
	s := string(line)
	fail := func(key, value, reason string) error {
		return &PolicyError{Line: lineNo, Key: key, Value: value, Reason: reason, Err: ErrPolicySyntax}
	}
	if strings.TrimLeft(s, " \t") == "" {
		return "", s, fail("", s, "empty line; every line must be a key: value field")
	}
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return "", s, fail("", s, `no ":" separates a key from a value`)
	}
	key = s[:colon]
	if lineNo == 1 && strings.HasPrefix(key, "\ufeff") {
		return key, s[colon+1:], fail(key, s[colon+1:], "policy begins with a UTF-8 byte order mark")
	}
	// sts-policy-ext-name = (sts-policy-alphanum)
	//                       *31(sts-policy-alphanum / "_" / "-" / ".")
	if reason := checkFieldName(key); reason != "" {
		return key, s[colon+1:], fail(key, s[colon+1:], reason)
	}
	// sts-policy-field-delim = ":" *WSP, and *WSP after each field.
	value = strings.Trim(s[colon+1:], " \t")
	if reason := extValueReason(value); reason != "" {
		return key, value, fail(key, value, reason)
	}
	return key, value, nil
}

// extValueReason checks sts-policy-ext-value = sts-policy-vchar
// [*(%x20 / sts-policy-vchar) sts-policy-vchar], where sts-policy-vchar is
// %x21-7E or a UTF-8 multi-byte character. It returns a reason or "".
func extValueReason(v string) string {
	if v == "" {
		return "empty value"
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return "value begins or ends with a space"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' {
			return "value contains a carriage return not followed by a line feed; lines end with LF or CRLF"
		}
		if c < 0x20 || c == 0x7f {
			return "value contains " + describeByte(c) + "; control characters are not allowed"
		}
	}
	if !utf8.ValidString(v) {
		return "value is not valid UTF-8"
	}
	return ""
}

// parseMaxAge parses sts-policy-max-age-value = 1*10(DIGIT) with the
// maximum of RFC 8461 §3.2. It returns a reason on error.
func parseMaxAge(v string) (int64, string) {
	if !allDigits(v) {
		return 0, "max_age must be a non-negative integer number of seconds (digits only)"
	}
	if len(v) > 10 {
		return 0, "max_age has " + itoa(len(v)) + " digits; at most 10 are allowed"
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > MaxMaxAge {
		return 0, "max_age is above the maximum of 31557600 seconds"
	}
	return n, ""
}
