package tlsrpt

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseRecordEdges pins the result of ParseRecord, error text
// included, at the edges of the RFC 8460 §3 syntax: the version field,
// field delimiters and white space, line breaks, field names, values, rua
// lists, repeated fields and long tokens in messages.
func TestParseRecordEdges(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 90)
	for _, tc := range []struct{ record, want string }{
		{"", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0: empty record; record must begin with \"v=TLSRPTv1\""},
		{" v=TLSRPTv1; rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\" \"): record begins with whitespace; it must begin with \"v=TLSRPTv1\""},
		{"\tv=TLSRPTv1; rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\"\\t\"): record begins with whitespace; it must begin with \"v=TLSRPTv1\""},
		{"v=TLSRPTv1x; rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\"v=TLSRPTv1x\"): version must be TLSRPTv1, not \"TLSRPTv1x\""},
		{"v=TLSRPTv1\r; rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\"v=TLSRPTv1\\r\"): version must be TLSRPTv1, not \"TLSRPTv1\\r\""},
		{"V=TLSRPTv1; rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\"V=TLSRPTv1\"): record must begin with \"v=TLSRPTv1\""},
		{"v=TLSRPTv1;rua=mailto:a@example.com", "ok: rua=[\"mailto:a@example.com\"] extensions=[]"},
		{"v=" + long, "error: tlsrpt: invalid TXT record: field \"v\" at byte 0 (\"v=" + long[:78] + "...\"): version must be TLSRPTv1, not \"" + long[:80] + "...\""},
		{"v=TLSRPTv1 " + long, "error: tlsrpt: invalid TXT record: field \"v\" at byte 11 (\"" + long[:80] + "...\"): unexpected \"" + long[:80] + "...\" after field \"v\"; fields are separated by \";\""},
		{"v=TLSRPTv1;;rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: record at byte 11: empty field: only one \";\" may end the record and fields may not be empty"},
		{"v=TLSRPTv1; ;rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: record at byte 12: empty field: only one \";\" may end the record and fields may not be empty"},
		{"v=TLSRPTv1; rua=mailto:a@example.com ;", "ok: rua=[\"mailto:a@example.com\"] extensions=[]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com\t", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 36 (\"\\t\"): trailing whitespace is only allowed around \";\""},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ", "ok: rua=[\"mailto:a@example.com\"] extensions=[]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com;\t;", "error: tlsrpt: invalid TXT record: record at byte 38: empty field: only one \";\" may end the record and fields may not be empty"},
		{"v=TLSRPTv1\t;\trua=mailto:a@example.com", "ok: rua=[\"mailto:a@example.com\"] extensions=[]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com\r\n", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 36 (\"mailto:a@example.com\\r\\n\"): byte 0x0d is not allowed in a URI (RFC 3986)"},
		{"v=TLSRPTv1;\r\n rua=mailto:a@example.com", "error: tlsrpt: invalid TXT record: record at byte 11 (\"\\r\\n\"): field \"\\r\\n\" has no \"=\""},
		{"v=TLSRPTv1; rua =mailto:a@example.com", "error: tlsrpt: invalid TXT record: record at byte 12 (\"rua\"): field \"rua\" has no \"=\""},
		{"v=TLSRPTv1; rua= mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 16: whitespace is only allowed around \",\" and \";\""},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x= b", "error: tlsrpt: invalid TXT record: field \"x\" at byte 40: field \"x\" has an empty value"},
		{"v=TLSRPTv1; =a", "error: tlsrpt: invalid TXT record: record at byte 12: empty field name"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; =b", "error: tlsrpt: invalid TXT record: record at byte 38: empty field name"},
		{"v=TLSRPTv1; RUA=mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 36: missing required field \"rua\" (found \"RUA\"; field names are case-sensitive)"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; é=1", "error: tlsrpt: invalid TXT record: field \"é\" at byte 38 (\"é\"): field name must begin with a letter or digit, not byte 0xc3"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; a.b-c_D9=1", "ok: rua=[\"mailto:a@example.com\"] extensions=[{\"a.b-c_D9\" \"1\"}]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; -a=1", "error: tlsrpt: invalid TXT record: field \"-a\" at byte 38 (\"-a\"): field name must begin with a letter or digit, not '-'"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn=1", "ok: rua=[\"mailto:a@example.com\"] extensions=[{\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\" \"1\"}]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x", "error: tlsrpt: invalid TXT record: record at byte 38 (\"x\"): field \"x\" has no \"=\""},
		{"v=TLSRPTv1; rua=mailto:a@example.com; " + long, "error: tlsrpt: invalid TXT record: record at byte 38 (\"" + long[:80] + "...\"): field \"" + long[:80] + "...\" has no \"=\""},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=" + long + "=", "error: tlsrpt: invalid TXT record: field \"x\" at byte 130 (\"" + long[:80] + "...\"): value of \"x\" contains '='; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a=b", "error: tlsrpt: invalid TXT record: field \"x\" at byte 41 (\"a=b\"): value of \"x\" contains '='; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=café", "error: tlsrpt: invalid TXT record: field \"x\" at byte 43 (\"café\"): value of \"x\" contains byte 0xc3; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=\x7f", "error: tlsrpt: invalid TXT record: field \"x\" at byte 40 (\"\\x7f\"): value of \"x\" contains byte 0x7f; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a\x00", "error: tlsrpt: invalid TXT record: field \"x\" at byte 41 (\"a\\x00\"): value of \"x\" contains byte 0x00; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a\rb", "error: tlsrpt: invalid TXT record: field \"x\" at byte 41 (\"a\\rb\"): value of \"x\" contains byte 0x0d; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a\nb", "error: tlsrpt: invalid TXT record: field \"x\" at byte 41 (\"a\\nb\"): value of \"x\" contains byte 0x0a; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a;b", "error: tlsrpt: invalid TXT record: record at byte 42 (\"b\"): field \"b\" has no \"=\""},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=1; x=2", "ok: rua=[\"mailto:a@example.com\"] extensions=[{\"x\" \"1\"} {\"x\" \"2\"}]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:a@example.com", "ok: rua=[\"mailto:a@example.com\" \"mailto:a@example.com\"] extensions=[]"},
		{"v=TLSRPTv1; x=1; rua=mailto:a@example.com", "ok: rua=[\"mailto:a@example.com\"] extensions=[{\"x\" \"1\"}]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com ,mailto:b@example.com", "ok: rua=[\"mailto:a@example.com\" \"mailto:b@example.com\"] extensions=[]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com\t,\thttps://r.example/ ;", "ok: rua=[\"mailto:a@example.com\" \"https://r.example/\"] extensions=[]"},
		{"v=TLSRPTv1; rua=mailto:a@example.com\r", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 36 (\"mailto:a@example.com\\r\"): byte 0x0d is not allowed in a URI (RFC 3986)"},
		{"v=TLSRPTv1; rua=mailto:café@example.com", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 26 (\"mailto:café@example.com\"): byte 0xc3 is not allowed in a URI (RFC 3986)"},
		{"v=TLSRPTv1; rua=,mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 16 (\",mailto:a@example.com\"): empty URI"},
		{"v=TLSRPTv1; rua= ,mailto:a@example.com", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 16: whitespace is only allowed around \",\" and \";\""},
		{"v=TLSRPTv1; rua=mailto:" + long + "@example.com!", "error: tlsrpt: invalid TXT record: field \"rua\" at byte 125 (\"mailto:" + long[:73] + "...\"): '!' must be percent-encoded in an rua URI"},
	} {
		r, err := ParseRecord(tc.record)
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = fmt.Sprintf("ok: rua=%q extensions=%q", r.RUA, r.Extensions)
		}
		if got != tc.want {
			t.Errorf("ParseRecord(%q):\n got %s\nwant %s", tc.record, got, tc.want)
		}
	}
}
