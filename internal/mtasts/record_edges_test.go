package mtasts_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

// TestParseRecordEdges pins the result of ParseRecord, error text
// included, at the edges of the RFC 8461 §3.1 syntax: the version field,
// field delimiters and white space, line breaks, field names, values,
// repeated fields and long tokens in messages.
func TestParseRecordEdges(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 90)
	for _, tc := range []struct{ record, want string }{
		{"", "error: mtasts: invalid TXT record: field \"v\" at byte 0: record must begin with \"v=STSv1\""},
		{" v=STSv1; id=a", "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\" \"): record begins with whitespace; it must begin with \"v=STSv1\""},
		{"\tv=STSv1; id=a", "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\"\\t\"): record begins with whitespace; it must begin with \"v=STSv1\""},
		{"v=STSv1x; id=a", "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\"v=STSv1x\"): version must be STSv1, not \"STSv1x\""},
		{"v=STSv1\r; id=a", "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\"v=STSv1\\r\"): version must be STSv1, not \"STSv1\\r\""},
		{"V=STSv1; id=a", "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\"V=STSv1\"): record must begin with \"v=STSv1\""},
		{"v=STSv1;id=a", "ok: id=\"a\" extensions=[]"},
		{"v=" + long, "error: mtasts: invalid TXT record: field \"v\" at byte 0 (\"v=" + long[:78] + "...\"): version must be STSv1, not \"" + long + "\""},
		{"v=STSv1 " + long, "error: mtasts: invalid TXT record: field \"v\" at byte 8 (\"" + long[:80] + "...\"): unexpected \"" + long + "\" after field \"v\"; fields are separated by \";\""},
		{"v=STSv1;;id=a", "error: mtasts: invalid TXT record: record at byte 8: empty field: only one \";\" may end the record"},
		{"v=STSv1; ;id=a", "error: mtasts: invalid TXT record: record at byte 9: empty field: only one \";\" may end the record"},
		{"v=STSv1; id=a ;", "ok: id=\"a\" extensions=[]"},
		{"v=STSv1; id=a\t", "error: mtasts: invalid TXT record: field \"id\" at byte 13 (\"\\t\"): trailing whitespace is only allowed around \";\""},
		{"v=STSv1; id=a; ", "ok: id=\"a\" extensions=[]"},
		{"v=STSv1; id=a;\t;", "error: mtasts: invalid TXT record: record at byte 15: empty field: only one \";\" may end the record"},
		{"v=STSv1\t;\tid=a", "ok: id=\"a\" extensions=[]"},
		{"v=STSv1; id=a\r\n", "error: mtasts: invalid TXT record: field \"id\" at byte 13 (\"a\\r\\n\"): id must be 1 to 32 letters or digits; a carriage return is not allowed"},
		{"v=STSv1;\r\n id=a", "error: mtasts: invalid TXT record: record at byte 8 (\"\\r\\n\"): field \"\\r\\n\" has no \"=\""},
		{"v=STSv1; id =a", "error: mtasts: invalid TXT record: record at byte 9 (\"id\"): field \"id\" has no \"=\""},
		{"v=STSv1; id= a", "error: mtasts: invalid TXT record: field \"id\" at byte 12: id must be 1 to 32 letters or digits, not 0"},
		{"v=STSv1; id=a; x= b", "error: mtasts: invalid TXT record: field \"x\" at byte 17: field \"x\" has an empty value"},
		{"v=STSv1; =a", "error: mtasts: invalid TXT record: record at byte 9: empty field name"},
		{"v=STSv1; id=a; =b", "error: mtasts: invalid TXT record: record at byte 15: empty field name"},
		{"v=STSv1; ID=a", "error: mtasts: invalid TXT record: field \"id\" at byte 13: missing required field \"id\" (found \"ID\"; field names are case-sensitive)"},
		{"v=STSv1; id=a; é=1", "error: mtasts: invalid TXT record: field \"é\" at byte 15 (\"é\"): field name must begin with a letter or digit, not byte 0xc3"},
		{"v=STSv1; id=a; a.b-c_D9=1", "ok: id=\"a\" extensions=[{\"a.b-c_D9\" \"1\"}]"},
		{"v=STSv1; id=a; -a=1", "error: mtasts: invalid TXT record: field \"-a\" at byte 15 (\"-a\"): field name must begin with a letter or digit, not \"-\""},
		{"v=STSv1; id=a; nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn=1", "ok: id=\"a\" extensions=[{\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\" \"1\"}]"},
		{"v=STSv1; id=a; x", "error: mtasts: invalid TXT record: record at byte 15 (\"x\"): field \"x\" has no \"=\""},
		{"v=STSv1; id=a; " + long, "error: mtasts: invalid TXT record: record at byte 15 (\"" + long[:80] + "...\"): field \"" + long + "\" has no \"=\""},
		{"v=STSv1; id=a; x=" + long + "=", "error: mtasts: invalid TXT record: field \"x\" at byte 107 (\"" + long[:80] + "...\"): value of \"x\" contains \"=\"; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=a=b", "error: mtasts: invalid TXT record: field \"x\" at byte 18 (\"a=b\"): value of \"x\" contains \"=\"; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=café", "error: mtasts: invalid TXT record: field \"x\" at byte 20 (\"café\"): value of \"x\" contains byte 0xc3; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=\x7f", "error: mtasts: invalid TXT record: field \"x\" at byte 17 (\"\\x7f\"): value of \"x\" contains byte 0x7f; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=a\x00", "error: mtasts: invalid TXT record: field \"x\" at byte 18 (\"a\\x00\"): value of \"x\" contains byte 0x00; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=a\rb", "error: mtasts: invalid TXT record: field \"x\" at byte 18 (\"a\\rb\"): value of \"x\" contains a carriage return; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=a\nb", "error: mtasts: invalid TXT record: field \"x\" at byte 18 (\"a\\nb\"): value of \"x\" contains a line feed; \"=\", \";\", space and control or non-ASCII characters are not allowed"},
		{"v=STSv1; id=a; x=1; x=2", "ok: id=\"a\" extensions=[{\"x\" \"1\"}]"},
		{"v=STSv1; id=a; id=b", "ok: id=\"a\" extensions=[]"},
		{"v=STSv1; id=a; id=b-c", "ok: id=\"a\" extensions=[]"},
		{"v=STSv1; id=a; id=", "error: mtasts: invalid TXT record: field \"id\" at byte 18: field \"id\" has an empty value"},
		{"v=STSv1; x=1; id=a", "ok: id=\"a\" extensions=[{\"x\" \"1\"}]"},
		{"v=STSv1; id=é", "error: mtasts: invalid TXT record: field \"id\" at byte 12 (\"é\"): id must be 1 to 32 letters or digits; byte 0xc3 is not allowed"},
		{"v=STSv1; id=a\r", "error: mtasts: invalid TXT record: field \"id\" at byte 13 (\"a\\r\"): id must be 1 to 32 letters or digits; a carriage return is not allowed"},
		{"v=STSv1; id=a,b", "error: mtasts: invalid TXT record: field \"id\" at byte 13 (\"a,b\"): id must be 1 to 32 letters or digits; \",\" is not allowed"},
	} {
		r, err := mtasts.ParseRecord(tc.record)
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = fmt.Sprintf("ok: id=%q extensions=%q", r.ID, r.Extensions)
		}
		if got != tc.want {
			t.Errorf("ParseRecord(%q):\n got %s\nwant %s", tc.record, got, tc.want)
		}
	}
}
