package tlsrpt

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

const sampleJSON = `{"organization-name":"Example","date-range":{"start-datetime":"2024-03-01T00:00:00Z","end-datetime":"2024-03-01T23:59:59Z"},"contact-info":"a@example.org","report-id":"r","policies":[]}`

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipOf builds a zip archive of the named members, in order; a name
// ending in "/" is a directory.
func zipOf(t testing.TB, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := 0; i+1 < len(members); i += 2 {
		f, err := w.Create(members[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(members[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecompress(t *testing.T) {
	t.Parallel()
	js := []byte(sampleJSON)
	half := len(js) / 2
	tests := []struct {
		name   string
		in     []byte
		out    string
		format string
	}{
		{"plain", js, sampleJSON, "plain"},
		{"plain with BOM and whitespace", append([]byte("\xef\xbb\xbf \r\n"), js...), "\xef\xbb\xbf \r\n" + sampleJSON, "plain"},
		{"gzip", gz(t, js), sampleJSON, "gzip"},
		{"concatenated gzip members", append(gz(t, js[:half]), gz(t, js[half:])...), sampleJSON, "gzip"},
		{"gzip with trailing garbage", append(gz(t, js), "\r\n--boundary--\r\n"...), sampleJSON, "gzip+trailing"},
		{"gzip with trailing magic only", append(gz(t, js), 0x1f, 0x8b, 0), sampleJSON, "gzip+trailing"},
		{"double gzip", gz(t, gz(t, js)), sampleJSON, "gzip+gzip"},
		{"zip", zipOf(t, "report.json", sampleJSON), sampleJSON, "zip"},
		{"zip member with an empty name after a directory", zipOf(t, "dir/", "", "", sampleJSON, "second.json", "{}"), sampleJSON, "zip"},
		{"gzip in zip", zipOf(t, "report.json.gz", string(gz(t, js))), sampleJSON, "zip+gzip"},
		{"gzip of non-JSON is returned as is", gz(t, []byte("hello")), "hello", "gzip"},
		{"empty gzip", gz(t, nil), "", "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, format, err := Decompress(tc.in, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.out || format != tc.format {
				t.Errorf("Decompress = %q, %q; want %q, %q", out, format, tc.out, tc.format)
			}
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	t.Parallel()
	js := []byte(sampleJSON)
	bomb := gz(t, bytes.Repeat([]byte("{"), 1<<20))
	corrupt := gz(t, js)
	corrupt[len(corrupt)-6] ^= 0xff // the CRC-32
	tests := []struct {
		name    string
		in      []byte
		max     int64
		wantErr error
		text    string
	}{
		{"empty", nil, 0, ErrInvalidReport, "not gzip, zip or JSON: begins with nothing (empty)"},
		{"xml", []byte("<?xml version='1.0'?><feedback/>"), 0, ErrInvalidReport, `begins with 3c 3f 78 6d 6c 20 76 65 ("<?xml ve")`},
		{"json array", []byte(`[{}]`), 0, ErrInvalidReport, "not gzip, zip or JSON"},
		{"plain too large", js, 10, ErrTooLarge, "plain report of"},
		{"gzip bomb", bomb, 1000, ErrTooLarge, "gzip: tlsrpt: report too large: decompressed size exceeds 1000 bytes"},
		{"nested gzip bomb", gz(t, bomb), int64(len(bomb)) + 100, ErrTooLarge, "gzip: inner gzip: tlsrpt: report too large"},
		{"truncated gzip", gz(t, js)[:30], 0, ErrInvalidReport, "gzip: tlsrpt: invalid report: member 1 is truncated"},
		{"gzip checksum", corrupt, 0, ErrInvalidReport, "member 1: gzip: invalid checksum"},
		{"gzip header only", []byte{0x1f, 0x8b, 8}, 0, ErrInvalidReport, "gzip: tlsrpt: invalid report: header"},
		{"triple gzip", gz(t, gz(t, gz(t, js))), 0, ErrInvalidReport, "gzip+gzip: compressed more than 2 times"},
		{"zip without files", zipOf(t, "a/", "", "b/", ""), 0, ErrInvalidReport, "zip: tlsrpt: invalid report: archive has no file (2 entries)"},
		{"zip member too large", zipOf(t, "r.json", sampleJSON), 10, ErrTooLarge, `member "r.json" declares`},
		{"broken zip", []byte("PK\x03\x04garbage"), 0, ErrInvalidReport, "zip: tlsrpt: invalid report: zip: not a valid zip file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, format, err := Decompress(tc.in, tc.max)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Decompress = %d bytes, %q, %v; want %v containing %q", len(out), format, err, tc.wantErr, tc.text)
			}
			if out != nil || format != "" {
				t.Errorf("output with error: %q, %q", out, format)
			}
		})
	}
}
