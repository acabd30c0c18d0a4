package mailmime

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// walkAll returns "path type filename top: body" per leaf, and the notes.
func walkAll(t *testing.T, msg string, opts Options) ([]string, []string) {
	t.Helper()
	h, body, err := ReadHeader([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	notes := Walk(h, body, opts, func(p *Part) {
		got = append(got, fmt.Sprintf("%s %s %q %v %s: %s", p.Path, p.MediaType, p.Filename, p.Top, p.Encoding, p.Body))
	})
	return got, notes
}

func TestWalk(t *testing.T) {
	t.Parallel()
	msg := crlf(`From: a@example.com
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

hello
--outer
Content-Type: application/octet-stream; name="r.xml.gz"
Content-Transfer-Encoding: base64

aGVs
 bG8=
--outer
Content-Type: message/rfc822

Subject: forwarded
Content-Type: multipart/report; boundary=inner

--inner
Content-Type: text/plain
Content-Transfer-Encoding: quoted-printable

caf=C3=A9
--inner
Content-Type: application/gzip
Content-Disposition: attachment; filename="=?utf-8?q?a_b.gz?="

data
--inner--
--outer
Content-Type: message/rfc822

Subject: plain

body
--outer--
`)
	got, notes := walkAll(t, msg, Options{ExpandMessages: true})
	want := []string{
		`1 text/plain "" false : hello`,
		`2 application/octet-stream "r.xml.gz" false base64: hello`,
		`3.1 text/plain "" false quoted-printable: café`,
		`3.2 application/gzip "a b.gz" false : data`,
		`4.1  "" false : body`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(notes) != 0 {
		t.Errorf("Walk =\n%s\nwant\n%s\nnotes %q", strings.Join(got, "\n"), strings.Join(want, "\n"), notes)
	}
	// MaxBody: the first bytes of each leaf, and whether there was more;
	// attached messages are still walked.
	var heads []string
	h, body, _ := ReadHeader([]byte(msg))
	Walk(h, body, Options{ExpandMessages: true, MaxBody: 4}, func(p *Part) {
		heads = append(heads, fmt.Sprintf("%s %q %v", p.Path, p.Body, p.Cut))
	})
	wantHeads := []string{`1 "hell" true`, `2 "hell" true`, `3.1 "caf\xc3" true`, `3.2 "data" false`, `4.1 "body" false`}
	if strings.Join(heads, "\n") != strings.Join(wantHeads, "\n") {
		t.Errorf("Walk with MaxBody 4 =\n%s\nwant\n%s", strings.Join(heads, "\n"), strings.Join(wantHeads, "\n"))
	}
	got, _ = walkAll(t, msg, Options{})
	if len(got) != 4 || !strings.HasPrefix(got[2], "3 message/rfc822") || !strings.HasPrefix(got[3], "4 message/rfc822") {
		t.Errorf("without ExpandMessages: %q", got)
	}
	got, _ = walkAll(t, "Content-Type: application/zip\r\n\r\nPK", Options{})
	if len(got) != 1 || got[0] != `1 application/zip "" true : PK` {
		t.Errorf("single part: %q", got)
	}
}

func TestWalkBroken(t *testing.T) {
	t.Parallel()
	// No final boundary: the part read so far is kept.
	got, _ := walkAll(t, "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n", Options{})
	if len(got) != 1 || !strings.HasSuffix(got[0], ": hello") {
		t.Errorf("unterminated multipart: %q", got)
	}
	// Nesting deeper than MaxDepth is noted.
	var b strings.Builder
	for i := range MaxDepth + 2 {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\nx\n")
	got, notes := walkAll(t, b.String(), Options{})
	if len(got) != 0 || len(notes) == 0 || !strings.Contains(notes[0], "nested deeper than 16 levels") {
		t.Errorf("deep nesting: %q, notes %q", got, notes)
	}
	// Too many parts.
	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=b\n\n")
	for range MaxParts + 5 {
		b.WriteString("--b\n\nx\n")
	}
	got, notes = walkAll(t, b.String(), Options{})
	if len(got) != MaxParts-1 || len(notes) != 1 || notes[0] != "stopped after 1000 parts" {
		t.Errorf("too many parts: %d leaves, notes %q", len(got), notes)
	}
}

func TestDecodeBase64(t *testing.T) {
	t.Parallel()
	data := []byte("any carnal pleasure.")
	enc := base64.StdEncoding.EncodeToString(data)
	tests := map[string]string{
		"plain":               enc,
		"lines and garbage":   enc[:10] + "\r\n\t*" + enc[10:],
		"no padding":          strings.TrimRight(enc, "="),
		"concatenated chunks": base64.StdEncoding.EncodeToString(data[:4]) + base64.StdEncoding.EncodeToString(data[4:]),
	}
	for name, in := range tests {
		if got := DecodeBase64([]byte(in)); !bytes.Equal(got, data) {
			t.Errorf("%s: DecodeBase64(%q) = %q", name, in, got)
		}
	}
}

func TestDecodeBase64Prefix(t *testing.T) {
	t.Parallel()
	data := []byte("any carnal pleasure, and more of it.")
	enc := base64.StdEncoding.EncodeToString(data)
	split := base64.StdEncoding.EncodeToString(data[:1]) + base64.StdEncoding.EncodeToString(data[1:2]) +
		"\r\n" + base64.StdEncoding.EncodeToString(data[2:])
	for _, in := range []string{enc, split, enc[:10] + "*\n" + enc[10:]} {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 10, len(data) - 1, len(data), len(data) + 5, -1} {
			got := DecodeBase64Prefix([]byte(in), n)
			want := n
			if n < 0 || n > len(data) {
				want = len(data)
			}
			if len(got) < want || !bytes.HasPrefix(data, got) {
				t.Errorf("DecodeBase64Prefix(%q, %d) = %q, want %d bytes or more of %q", in, n, got, want, data)
			}
			if n >= 0 && n+3 < len(data) && len(got) > n+3 {
				t.Errorf("DecodeBase64Prefix(%q, %d) decoded %d bytes, more than it needed", in, n, len(got))
			}
		}
	}
}

// FuzzDecodeBase64Prefix: the prefix is what DecodeBase64 gives, cut.
func FuzzDecodeBase64Prefix(f *testing.F) {
	f.Add([]byte("aGVs\r\n bG8="), 2)
	f.Add([]byte("YQ==Yg==Yw"), 2)
	f.Add([]byte("=a=bc=def="), 1)
	f.Fuzz(func(t *testing.T, raw []byte, n int) {
		full := DecodeBase64(raw)
		got := DecodeBase64Prefix(raw, n)
		if !bytes.HasPrefix(full, got) {
			t.Fatalf("DecodeBase64Prefix(%q, %d) = %q, not a prefix of %q", raw, n, got, full)
		}
		if want := min(max(n, 0), len(full)); n >= 0 && len(got) < want || n < 0 && len(got) != len(full) {
			t.Fatalf("DecodeBase64Prefix(%q, %d) = %d bytes of %d", raw, n, len(got), len(full))
		}
	})
}

func TestHeaderFields(t *testing.T) {
	t.Parallel()
	if got := Address(`"Microsoft" <tlsrpt-noreply@microsoft.com>, b@example.com`); got != "tlsrpt-noreply@microsoft.com" {
		t.Errorf("Address = %q", got)
	}
	if got := Address("=?x-unknown?Q?Reporter?= <not an address"); got != "=?x-unknown?Q?Reporter?= <not an address" {
		t.Errorf("Address of garbage = %q", got)
	}
	want := time.Date(2023, 2, 3, 5, 9, 22, 0, time.UTC)
	for _, v := range []string{"Fri, 3 Feb 2023 05:09:22 +0000", "Fri, Feb 03 2023 05:09:22 +0000", "2023-02-03T06:09:22+01:00", " Fri, 3 Feb 2023\r\n 05:09:22 +0000 (UTC)"} {
		if got := Date(v); !got.Equal(want) {
			t.Errorf("Date(%q) = %v", v, got)
		}
	}
	if !Date("yesterday").IsZero() {
		t.Error("Date of garbage is not zero")
	}
	if got := Collapse(DecodeText("=?utf-8?B?W1ByZXZpZXddIFJlcG9ydA==?=\r\n  Domain:")); got != "[Preview] Report Domain:" {
		t.Errorf("DecodeText = %q", got)
	}
}

func TestReportSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                    string
		domain, submitter, id string
		ok                    bool
	}{
		{"Report Domain: example.net Submitter: mail.sender.example.com Report-ID: <735ff.e317+bf22029@example.net>", "example.net", "mail.sender.example.com", "735ff.e317+bf22029@example.net", true},
		{"[Preview] report domain: Example.COM. submitter: google.com report-id: <a@b>", "example.com", "google.com", "a@b", true},
		{"Report Domain:example.com Submitter:x.example Report-ID:abc", "example.com", "x.example", "abc", true},
		{"Report Domain: ueber.net; Submitter: Mail.Ru; Report-ID: 1234;", "ueber.net", "mail.ru", "1234", true},
		{"Dmarc Aggregate Report Domain: {stalw.art}  Submitter: {Amazon SES} Report-ID: {a-b}", "stalw.art", "amazon ses", "a-b", true},
		{"Report Domain: {unclosed Submitter: x", "unclosed submitter: x", "", "", false},
		{"Report Domain: example.com", "example.com", "", "", false},
		{"Hello", "", "", "", false},
	}
	for _, tc := range tests {
		d, s, id, ok := ReportSubject(tc.in)
		if d != tc.domain || s != tc.submitter || id != tc.id || ok != tc.ok {
			t.Errorf("ReportSubject(%q) = %q, %q, %q, %v", tc.in, d, s, id, ok)
		}
	}
}

// FuzzWalkHead: Walk with MaxBody visits the parts Walk visits, each with
// the first MaxBody bytes of its body, and Cut when the body is longer,
// though it reads less of each body (readHead).
func FuzzWalkHead(f *testing.F) {
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("0123456789abcdef"), 300))
	var lines strings.Builder
	for i := 0; i < len(long); i += 76 {
		lines.WriteString(long[i:min(i+76, len(long))] + "\r\n")
	}
	f.Add([]byte(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\n")+lines.String()+"--b\n\nplain text\n--b--\n"), 1024)
	f.Add([]byte(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\nYW*Jj\nZG\n--b\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n")), 2)
	f.Add([]byte("Content-Transfer-Encoding: base64\r\n\r\n"+long[:40]+"\r\n"+long[40:90]), 30)
	f.Add([]byte(crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhello\n--b\nContent-Type: message/rfc822\n\nContent-Type: text/plain\n\nbody\n--b--\n")), 3)
	f.Fuzz(func(t *testing.T, msg []byte, n int) {
		if n < 1 || n > 1<<16 {
			return
		}
		h, body, err := ReadHeader(msg)
		if err != nil {
			return
		}
		var full []*Part
		Walk(h, body, Options{ExpandMessages: true}, func(p *Part) { full = append(full, p) })
		h, body, _ = ReadHeader(msg)
		i := 0
		Walk(h, body, Options{ExpandMessages: true, MaxBody: n}, func(p *Part) {
			defer func() { i++ }()
			if i >= len(full) {
				t.Fatalf("MaxBody %d: part %s beyond the %d parts of the whole walk", n, p.Path, len(full))
			}
			w := full[i]
			want := w.Body[:min(len(w.Body), n)]
			if p.Path != w.Path || !bytes.Equal(p.Body, want) || p.Cut != (len(w.Body) > n) {
				t.Fatalf("MaxBody %d: part %s %q cut %v; the whole walk's part %s is %q (%d bytes)", n, p.Path, p.Body, p.Cut, w.Path, w.Body, len(w.Body))
			}
		})
		if i != len(full) {
			t.Fatalf("MaxBody %d: %d parts, the whole walk %d", n, i, len(full))
		}
	})
}
