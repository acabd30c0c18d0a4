package check

import "testing"

// TestFixTagListEdges pins how the fix suggestions rewrite tag-list
// records (DMARC, DKIM, BIMI) at the edges of the syntax: what survives a
// rewrite of a record with duplicates, odd case, empty values, empty tags,
// white space and folding, tags without "=", non-ASCII bytes and invalid
// tag names.
func TestFixTagListEdges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, got, want string
	}{
		// Re-written as "name=value; name=value".
		{"as written", parseTagList("v=DMARC1; p=none").String(), "v=DMARC1; p=none"},
		{"empty", parseTagList("").String(), ""},
		// Duplicates are kept; set changes the first, remove drops all.
		{"duplicate kept", parseTagList("v=DMARC1; p=none; p=reject").String(), "v=DMARC1; p=none; p=reject"},
		{"duplicate set", parseTagList("v=DMARC1; p=none; p=reject").set("p", "quarantine", "v").String(), "v=DMARC1; p=quarantine; p=reject"},
		{"duplicate removed", parseTagList("v=DMARC1; p=none; sp=none; sp=reject").remove("sp").String(), "v=DMARC1; p=none"},
		// Names keep their case; set and remove ignore it.
		{"upper-case kept", parseTagList("V=DMARC1; P=none").String(), "V=DMARC1; P=none"},
		{"upper-case set", parseTagList("v=DMARC1; P=none").set("p", "reject", "v").String(), "v=DMARC1; P=reject"},
		{"upper-case removed", parseTagList("v=DMARC1; p=none; PCT=50").remove("pct").String(), "v=DMARC1; p=none"},
		{"set after upper-case", parseTagList("v=DMARC1; P=none").set("rua", "mailto:a@example.com", "p").String(), "v=DMARC1; P=none; rua=mailto:a@example.com"},
		{"upper-case t kept by removeTestFlag", removeTestFlag("v=DKIM1; T=y; p=abc"), "v=DKIM1; T=y; p=abc"},
		// Empty values are kept.
		{"empty values", parseTagList("v=BIMI1; l=; a=;").String(), "v=BIMI1; l=; a="},
		{"set an empty value", parseTagList("v=BIMI1; l=; a=;").set("a", "https://x.test/vmc.pem", "l").String(), "v=BIMI1; l=; a=https://x.test/vmc.pem"},
		// Empty tags and extra semicolons disappear.
		{"empty tags", parseTagList(";v=DMARC1;; p=none;;").String(), "v=DMARC1; p=none"},
		{"blank tags", parseTagList("v=DMARC1; ; p=none; ;").String(), "v=DMARC1; p=none"},
		// White space around tags, "=" and ";" is normalized; inside a
		// value it is kept.
		{"white space", parseTagList(" \tv = DMARC1 ;  p =\tnone  ; ").String(), "v=DMARC1; p=none"},
		{"space inside a value", parseTagList("v=DKIM1; n=a  b; p=").String(), "v=DKIM1; n=a  b; p="},
		{"folded", parseTagList("v=DMARC1;\r\n p=none;\r\n\trua=mailto:a@example.com").String(), "v=DMARC1; p=none; rua=mailto:a@example.com"},
		{"folded inside a value", parseTagList("v=DKIM1; p=abc\r\n def").String(), "v=DKIM1; p=abc\r\n def"},
		{"bare LF", parseTagList("v=DMARC1;\np=none\n").String(), "v=DMARC1; p=none"},
		{"removeTestFlag with spaces", removeTestFlag("v=DKIM1; t = y : s ; p=abc"), "v=DKIM1; t=s; p=abc"},
		{"removeTestFlag folded", removeTestFlag("v=DKIM1;\r\n t=y;\r\n p=abc"), "v=DKIM1; p=abc"},
		// Tags without "=" are left out.
		{"no equals", fixVersion("v=dmarc1; p=none; junk"), "v=DMARC1; p=none"},
		{"equals in a value", parseTagList("v=DMARC1; p=none; x=a=b").String(), "v=DMARC1; p=none; x=a=b"},
		// Non-ASCII bytes are kept in values, and so is white space other
		// than SP, HTAB, CR and LF; a non-ASCII name is left out.
		{"non-ASCII value", parseTagList("v=DKIM1; n=caf\u00e9; p=").String(), "v=DKIM1; n=caf\u00e9; p="},
		{"non-ASCII name", fixVersion("v=dmarc1; p=none; f\u00f6=1"), "v=DMARC1; p=none"},
		{"no-break space", parseTagList("v=DMARC1; p=none\u00a0; x=\vy").String(), "v=DMARC1; p=none\u00a0; x=\vy"},
		{"control", parseTagList("v=DMARC1; p=none; x=\x01").String(), "v=DMARC1; p=none; x=\x01"},
		// Invalid tag names are left out.
		{"hyphen", fixVersion("v=dmarc1; p=none; r-a=x"), "v=DMARC1; p=none"},
		{"empty name", fixVersion("v=dmarc1; p=none; =x"), "v=DMARC1; p=none"},
		{"space inside a name", fixVersion("v=dmarc1; p=none; r a=x"), "v=DMARC1; p=none"},
		// fixVersion puts v=DMARC1 first, whatever the case of v.
		{"fixVersion", fixVersion("V=dmarc1; p=none"), "v=DMARC1; p=none"},
		{"fixVersion twice", fixVersion("v=DMARC2; v=dmarc1; p=none"), "v=DMARC1; p=none"},
		{"fixVersion late", fixVersion("p=none; v=dmarc1"), "v=DMARC1; p=none"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
