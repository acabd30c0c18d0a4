package check

import (
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/taglist"
)

// txtRecord formats a TXT record in zone-file syntax: `name. TXT "value"`.
// A value longer than 255 bytes is split into several strings (RFC 1035
// §3.3.14 character-strings; RFC 7208 §3.3 and RFC 8461 §3.1 join them
// without spaces). Quotes and backslashes are escaped.
func txtRecord(name, value string) string {
	var b strings.Builder
	b.WriteString(absolute(name))
	b.WriteString(" TXT ")
	for i, chunk := range splitTXT(value) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for j := 0; j < len(chunk); j++ {
			if chunk[j] == '"' || chunk[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(chunk[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

func splitTXT(s string) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// tagList is a "name=value; name=value" record (DMARC, DKIM, BIMI) kept as
// written, so that a fix changes one tag and leaves the rest alone.
type tagList struct {
	tags [][2]string
}

// parseTagList reads a record with the tag-list syntax of RFC 6376 §3.2
// as leniently as any of the protocols: names and values as written, in
// order, duplicates and all. A tag-spec that is not tag=value is left out
// of the rewritten record.
func parseTagList(s string) *tagList {
	tags, _, _ := taglist.Parse(s, taglist.Options{
		Duplicates:     taglist.DuplicateAllow,
		SkipEmptySpecs: true,
		Values:         taglist.ValuesAny,
		LooseNewlines:  true,
		KeepGoing:      true,
	})
	t := &tagList{}
	for _, tag := range tags {
		t.tags = append(t.tags, [2]string{tag.Name, tag.Value})
	}
	return t
}

// set gives tag the value, in place when present, else after the tag
// named after (or at the end when after is absent).
func (t *tagList) set(tag, value, after string) *tagList {
	for i := range t.tags {
		if strings.EqualFold(t.tags[i][0], tag) {
			t.tags[i][1] = value
			return t
		}
	}
	pos := len(t.tags)
	for i := range t.tags {
		if strings.EqualFold(t.tags[i][0], after) {
			pos = i + 1
		}
	}
	t.tags = append(t.tags[:pos], append([][2]string{{tag, value}}, t.tags[pos:]...)...)
	return t
}

// remove deletes tag.
func (t *tagList) remove(tag string) *tagList {
	out := t.tags[:0]
	for _, kv := range t.tags {
		if !strings.EqualFold(kv[0], tag) {
			out = append(out, kv)
		}
	}
	t.tags = out
	return t
}

func (t *tagList) String() string {
	parts := make([]string, len(t.tags))
	for i, kv := range t.tags {
		parts[i] = kv[0] + "=" + kv[1]
	}
	return strings.Join(parts, "; ")
}

// plural returns "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

func itoa(n int) string { return strconv.Itoa(n) }
