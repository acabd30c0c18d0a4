package dkim

import (
	"fmt"
	"strings"
)

// tag is one tag=value pair of a tag-list.
type tag struct {
	name, value string
}

// maxRecord bounds the record length parsed. RSA 4096 keys take about
// 740 bytes of base64; 8192-bit keys about 1400. A TXT record over 64 KiB
// cannot be carried in one DNS message.
const maxRecord = 65535

// parseTagList splits a tag-list (RFC 6376 §3.2) into its tags. It returns
// warnings for what verifiers commonly tolerate but the ABNF forbids.
func parseTagList(s string) ([]tag, []string, error) {
	if len(s) > maxRecord {
		return nil, nil, &TagError{Reason: fmt.Sprintf("record is %d bytes, over the %d byte limit", len(s), maxRecord)}
	}
	var tags []tag
	var warnings []string
	seen := map[string]bool{}
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		spec = trimFWS(spec)
		if spec == "" {
			// RFC 6376 §3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
			// allows one trailing ";" only; "k=rsa;; p=..." is tolerated
			// by common verifiers, so it is a warning.
			if i != len(specs)-1 {
				warnings = append(warnings, fmt.Sprintf("empty tag-spec at position %d (\";;\" or leading \";\"): RFC 6376 §3.2 does not allow it", i+1))
			}
			continue
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, nil, &TagError{Value: clip(spec), Reason: fmt.Sprintf("tag-spec %d %q has no \"=\"", i+1, clip(spec))}
		}
		name := trimFWS(spec[:eq])
		value := trimFWS(spec[eq+1:])
		if !validTagName(name) {
			return nil, nil, &TagError{Tag: clip(name), Value: clip(value), Reason: "invalid tag name (RFC 6376 §3.2: ALPHA *(ALPHA / DIGIT / \"_\"))"}
		}
		nonASCII := false
		for j := 0; j < len(value); j++ {
			c := value[j]
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			case c < 0x21 || c == 0x7f:
				return nil, nil, &TagError{Tag: name, Value: clip(value), Reason: fmt.Sprintf("control character 0x%02x at offset %d of the value", c, j)}
			case c >= 0x80 && !nonASCII:
				nonASCII = true
				warnings = append(warnings, fmt.Sprintf("%s= holds non-ASCII bytes, which RFC 6376 §3.2 does not allow", name))
			}
		}
		// RFC 6376 §3.2: tags with duplicate names MUST NOT occur; if
		// one does, the entire tag-list is invalid.
		if seen[name] {
			return nil, nil, &TagError{Tag: name, Value: clip(value), Reason: "duplicate tag (RFC 6376 §3.2: the entire tag-list is invalid)"}
		}
		seen[name] = true
		tags = append(tags, tag{name: name, value: value})
	}
	if len(tags) == 0 {
		return nil, nil, &TagError{Reason: "empty record"}
	}
	return tags, warnings, nil
}

// validTagName reports whether s matches tag-name = ALPHA *ALNUMPUNC.
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !alpha {
			return false
		}
		if !alpha && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

// trimFWS removes folding white space (SP, HTAB, CR, LF) around s.
func trimFWS(s string) string {
	return strings.Trim(s, " \t\r\n")
}

// removeFWS removes every white-space byte of s (RFC 6376 §3.6.1: the p=
// value may be folded).
func removeFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// splitList splits a colon-separated list (h=, s=, t=) into lower-case,
// trimmed, non-empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ":") {
		if item = strings.ToLower(trimFWS(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}
