package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// crlf turns the LF line ends of a test message into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// b64 encodes data as base64 in lines of 76 characters.
func b64(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

func TestExtractMessageRFCExample(t *testing.T) {
	t.Parallel()
	// The example of RFC 8460 §5.3.1, with a real gzipped report, a folded
	// Subject and Date in the example's non-RFC 5322 form.
	msg := crlf(`From: tlsrpt@mail.sender.example.com
Date: Fri, May 09 2017 16:54:30 -0800
To: mts-sts-tlsrpt@example.net
Subject: Report Domain: example.net
    Submitter: mail.sender.example.com
    Report-ID: <735ff.e317+bf22029@example.net>
TLS-Report-Domain: Example.NET.
TLS-Report-Submitter: mail.sender.example.com
Message-ID: <m1@mail.sender.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type="tlsrpt";
    boundary="----=_NextPart_000_024E_01CC9B0A.AFE54C00"
Content-Language: en-us

This is a multipart message in MIME format.

------=_NextPart_000_024E_01CC9B0A.AFE54C00
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

This is an aggregate TLS report from mail.sender.example.com

------=_NextPart_000_024E_01CC9B0A.AFE54C00
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
    filename="mail.sender.example!example.com!
              1013662812!1013749130.json.gz"

` + b64(gz(t, []byte(sampleJSON))) + `
------=_NextPart_000_024E_01CC9B0A.AFE54C00--
`)
	m, err := ExtractMessage(strings.NewReader(msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{
		From:            "tlsrpt@mail.sender.example.com",
		Subject:         "Report Domain: example.net Submitter: mail.sender.example.com Report-ID: <735ff.e317+bf22029@example.net>",
		MessageID:       "m1@mail.sender.example.com",
		ReportDomain:    "example.net",
		ReportSubmitter: "mail.sender.example.com",
		ReportID:        "735ff.e317+bf22029@example.net",
		Date:            time.Date(2017, 5, 10, 0, 54, 30, 0, time.UTC),
	}
	got := *m
	got.Parts = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("header fields\n got %+v\nwant %+v", got, want)
	}
	if len(m.Parts) != 1 || m.Parts[0].MediaType != "application/tlsrpt+gzip" || m.Parts[0].Filename != "mail.sender.example!example.com! 1013662812!1013749130.json.gz" {
		t.Fatalf("Parts = %+v", m.Parts)
	}
	out, format, err := Decompress(m.Parts[0].Data, 0)
	if err != nil || format != "gzip" || string(out) != sampleJSON {
		t.Fatalf("Decompress(part) = %q, %q, %v", out, format, err)
	}
}

// partTypes lists the media types of the parts, in order.
func partTypes(m *Message) string {
	var s []string
	for _, p := range m.Parts {
		s = append(s, p.MediaType)
	}
	return strings.Join(s, ",")
}

func TestExtractMessageCandidates(t *testing.T) {
	t.Parallel()
	js := []byte(sampleJSON)
	tests := []struct {
		name  string
		msg   string
		types string // media types of the candidates, in order
		data  string // the first candidate's data, decompressed
	}{
		{
			name: "priority order across a mixed message",
			msg: `Subject: x
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: multipart/alternative; boundary=b2

--b2
Content-Type: text/plain

Your report.
--b2
Content-Type: text/html; charset=utf-8

<p>Your report.</p>
--b2--
--b1
Content-Type: application/octet-stream; name=report.json.gz
Content-Transfer-Encoding: base64

` + b64(gz(t, js)) + `
--b1
Content-Type: application/json

` + sampleJSON + `
--b1
Content-Type: application/tlsrpt
Content-Disposition: attachment; filename=raw.json

` + sampleJSON + `
--b1
Content-Type: Application/TLSRPT+JSON

` + sampleJSON + `
--b1
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64

` + b64(gz(t, js)) + `
--b1--
`,
			types: "application/tlsrpt+gzip,application/tlsrpt+json,application/tlsrpt,application/octet-stream,application/json",
			data:  sampleJSON,
		},
		{
			name: "application/tlsrpt with raw JSON (non-standard)",
			msg: `Content-Type: multipart/report; report-type=tlsrpt; boundary="b"

--b
Content-Type: text/plain

human
--b
Content-Type: application/tlsrpt

` + sampleJSON + `
--b--
`,
			types: "application/tlsrpt",
			data:  sampleJSON,
		},
		{
			name: "zip attachment of a generic type, as Google sends DMARC",
			msg: `Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/zip; name="google.com!example.com!1!2.zip"
Content-Transfer-Encoding: base64

` + b64(zipOf(t, "google.com!example.com!1!2.json", sampleJSON)) + `
--b--
`,
			types: "application/zip",
			data:  sampleJSON,
		},
		{
			name: "binary part of another type with a report file name",
			msg: `Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/x-binary
Content-Disposition: attachment; filename="r.json.gz"
Content-Transfer-Encoding: base64

` + b64(gz(t, js)) + `
--b
Content-Type: application/pdf; name=x.pdf
Content-Transfer-Encoding: base64

` + b64([]byte("%PDF-1.4 not a report")) + `
--b--
`,
			types: "application/x-binary",
			data:  sampleJSON,
		},
		{
			name: "the whole body is the zip",
			msg: `Content-Type: application/zip
Content-Transfer-Encoding: base64

` + b64(zipOf(t, "", sampleJSON)),
			types: "application/zip",
			data:  sampleJSON,
		},
		{
			name: "the whole body is gzip under a wrong type",
			msg: `Content-Type: text/plain
Content-Transfer-Encoding: base64

` + b64(gz(t, js)),
			types: "text/plain",
			data:  sampleJSON,
		},
		{
			name: "no Content-Type, JSON body",
			msg: `Subject: report

` + sampleJSON,
			types: "",
			data:  sampleJSON,
		},
		{
			name: "text/plain JSON report in an unknown charset, quoted-printable",
			msg: `Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=x-unknown
Content-Transfer-Encoding: quoted-printable

` + strings.Replace(sampleJSON, `"r"`, `"=72"`, 1) + `
--b--
`,
			types: "text/plain",
			data:  sampleJSON,
		},
		{
			name: "base64 with garbage, no padding, indented, and no final boundary",
			msg: `Content-Type: multipart/report; report-type=tlsrpt; boundary=b

--b
Content-Type: application/tlsrpt+json
Content-Transfer-Encoding: BASE64

  ` + strings.ReplaceAll(strings.TrimRight(b64(js), "="), "\n", "\n  ! ") + `
`,
			types: "application/tlsrpt+json",
			data:  sampleJSON,
		},
		{
			name: "forwarded report as message/rfc822",
			msg: `Subject: Fwd: Report Domain: example.com
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: text/plain

see attached
--outer
Content-Type: message/rfc822

Subject: Report Domain: example.com Submitter: google.com Report-ID: <x@google.com>
Content-Type: multipart/report; report-type=tlsrpt; boundary=inner

--inner
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64

` + b64(gz(t, js)) + `
--inner--
--outer--
`,
			types: "application/tlsrpt+gzip",
			data:  sampleJSON,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ExtractMessage(strings.NewReader(crlf(tc.msg)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := partTypes(m); got != tc.types {
				t.Fatalf("candidates %q, want %q", got, tc.types)
			}
			// ReportParts: the same parts, each cut to its first bytes.
			for _, head := range []int{40, 1 << 20} {
				parts, err := ReportParts([]byte(crlf(tc.msg)), head)
				if err != nil || len(parts) != len(m.Parts) {
					t.Fatalf("ReportParts(%d): %d parts, %v; want %d", head, len(parts), err, len(m.Parts))
				}
				for i, p := range parts {
					whole := m.Parts[i]
					if p.MediaType != whole.MediaType || p.Filename != whole.Filename || !bytes.HasPrefix(whole.Data, p.Data) ||
						len(p.Data) != min(head, len(whole.Data)) || p.Cut != (len(whole.Data) > head) {
						t.Errorf("ReportParts(%d) part %d: %s %q %d bytes cut %v; ExtractMessage's: %s %q %d bytes",
							head, i, p.MediaType, p.Filename, len(p.Data), p.Cut, whole.MediaType, whole.Filename, len(whole.Data))
					}
				}
			}
			out, _, err := Decompress(m.Parts[0].Data, 0)
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if strings.TrimSpace(string(out)) != tc.data {
				t.Errorf("first candidate = %q, want %q", out, tc.data)
			}
		})
	}
}

func TestExtractMessageHeaders(t *testing.T) {
	t.Parallel()
	msg := crlf(`From: "Microsoft" <tlsrpt-noreply@microsoft.com>
Date: Fri, 3 Feb 2023 05:09:22 +0000
Subject: =?utf-8?Q?Report_Domain:_test.example?= Submitter: microsoft.com Report-ID:
 133198585438131172+test.example
Message-ID: 133198585438131172+test.example@test.example
Content-Type: application/tlsrpt+json

` + sampleJSON)
	m, err := ExtractMessage(strings.NewReader(msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "tlsrpt-noreply@microsoft.com" || m.MessageID != "133198585438131172+test.example@test.example" {
		t.Errorf("From %q, MessageID %q", m.From, m.MessageID)
	}
	if m.Subject != "Report Domain: test.example Submitter: microsoft.com Report-ID: 133198585438131172+test.example" {
		t.Errorf("Subject %q", m.Subject)
	}
	if m.ReportID != "133198585438131172+test.example" || m.ReportDomain != "" {
		t.Errorf("ReportID %q, ReportDomain %q", m.ReportID, m.ReportDomain)
	}
	if !m.Date.Equal(time.Date(2023, 2, 3, 5, 9, 22, 0, time.UTC)) {
		t.Errorf("Date %v", m.Date)
	}

	// Encoded words in an unknown charset and unparsable fields are kept
	// as written; they never make the extraction fail.
	msg = crlf(`From: =?x-unknown?Q?Reporter?= <not an address
Date: yesterday
Subject: =?x-unknown?Q?Report?= Domain: example.com
Content-Type: application/tlsrpt+json

` + sampleJSON)
	m, err = ExtractMessage(strings.NewReader(msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "=?x-unknown?Q?Report?= Domain: example.com" || m.From != "=?x-unknown?Q?Reporter?= <not an address" || !m.Date.IsZero() {
		t.Errorf("Subject %q, From %q, Date %v", m.Subject, m.From, m.Date)
	}
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                    string
		domain, submitter, id string
		ok                    bool
	}{
		{"Report Domain: example.net Submitter: mail.sender.example.com Report-ID: <735ff.e317+bf22029@example.net>", "example.net", "mail.sender.example.com", "735ff.e317+bf22029@example.net", true},
		{"[Preview] report domain: Example.COM. submitter: google.com report-id: <a@b>", "example.com", "google.com", "a@b", true},
		{"Report Domain:example.com Submitter:x.example Report-ID:abc", "example.com", "x.example", "abc", true},
		{"Report Domain: example.com", "example.com", "", "", false},
		{"Hello", "", "", "", false},
	}
	for _, tc := range tests {
		d, s, id, ok := ParseSubject(tc.in)
		if d != tc.domain || s != tc.submitter || id != tc.id || ok != tc.ok {
			t.Errorf("ParseSubject(%q) = %q, %q, %q, %v", tc.in, d, s, id, ok)
		}
	}
}

func TestExtractMessageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		msg     string
		max     int64
		wantErr error
		text    string
	}{
		{
			name: "human parts only",
			msg: `Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain

hello
--b
Content-Type: text/html

<p>hello</p>
--b--
`,
			wantErr: ErrNoReport,
			text:    "tlsrpt: no TLS report in message: message has 2 parts: text/plain of 5 bytes, text/html of 12 bytes; none is a TLS report",
		},
		{
			name: "single part",
			msg: `Content-Type: text/plain

{"not":"a report"} but text`,
			wantErr: ErrNoReport,
			text:    "message has 1 part: text/plain of 27 bytes; it is not a TLS report",
		},
		{
			name: "PDF attachment",
			msg: `Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream; name="report.pdf"

%PDF-1.4
--b--
`,
			wantErr: ErrNoReport,
			text:    `application/octet-stream "report.pdf" of 8 bytes`,
		},
		{
			name:    "not a message",
			msg:     "this is not a header\n\nbody",
			wantErr: ErrNoReport,
			text:    "not a mail message",
		},
		{
			name:    "too large",
			msg:     "Subject: x\n\n" + strings.Repeat("x", 100),
			max:     50,
			wantErr: ErrTooLarge,
			text:    "message exceeds 50 bytes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ExtractMessage(strings.NewReader(crlf(tc.msg)), tc.max)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.text) || m != nil {
				t.Fatalf("ExtractMessage = %+v, %v; want %v containing %q", m, err, tc.wantErr, tc.text)
			}
		})
	}
}
