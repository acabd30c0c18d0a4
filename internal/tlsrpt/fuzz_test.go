package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// addFiles adds the files matching each pattern as seeds; absent corpora
// just add nothing.
func addFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	addFiles(f, "testdata/decode/*.json", corpora+"/*/*/smtp_tls/*.json", corpora+"/*/resources/tlsrpt/*.json", corpora+"/*/testdata/smtp-tls-reports/*.json")
	f.Add([]byte(sampleJSON))
	f.Add([]byte(`{"policies":[{"policy":{"policy-string":"[\"[\\\"a\\\"]\"]","mx-host":"mx: mx: A."},"summary":{"total-failure-session-count":"1e2"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, warns, err := Decode(data)
		if errors.Is(err, errInternal) {
			t.Fatalf("Decode panicked: %v", err)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrInvalidReport) || de.Path == "" || de.Offset < -1 || de.Offset > int64(len(data)) {
				t.Fatalf("Decode error %#v is not a well-formed *DecodeError", err)
			}
			return
		}
		for _, w := range warns {
			if w.Path == "" || w.Message == "" {
				t.Fatalf("empty warning %+v", w)
			}
		}
		if rep.Policies == nil {
			t.Fatal("Policies is nil")
		}
		checkRoundTrip(t, rep)
		// The fast tree builder must agree with encoding/json's tokenizer.
		if json.Valid(data) {
			fast, _, ferr := parseTree(data, 0)
			slow, _, serr := slowParseTree(data, 0)
			if (ferr == nil) != (serr == nil) || ferr == nil && !reflect.DeepEqual(fast, slow) {
				t.Fatalf("tree builders disagree: %v / %v", ferr, serr)
			}
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1;rua=mailto:reports@example.com",
		"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		"v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example:8443/x?y=%2C ; ext=1;",
		"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
		"v=TLSRPTv1; rua=not_a_valid_uri",
		"v=TLSRPTv1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrRecordSyntax) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("ParseRecord(%q) error %#v is not a well-formed *ParseError", s, err)
			}
			return
		}
		if len(r.RUA) == 0 {
			t.Fatalf("ParseRecord(%q) has no rua", s)
		}
		again, err := ParseRecord(r.String())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("ParseRecord(%q).String() = %q re-parses to %+v, %v", s, r.String(), again, err)
		}
	})
}

func FuzzExtractMessage(f *testing.F) {
	addFiles(f, corpora+"/mox/testdata/tlsreports/*.eml", corpora+"/*/samples/smtp_tls/*.eml", corpora+"/*/resources/tlsrpt/*.eml")
	f.Add([]byte(crlf("Content-Type: multipart/report; report-type=tlsrpt; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/tlsrpt+gzip\nContent-Transfer-Encoding: base64\n\n" + b64(gz(f, []byte(sampleJSON))) + "\n--b--\n")))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\n" + b64(zipOf(f, "a.json", sampleJSON))))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ExtractMessage(bytes.NewReader(data), 1<<20)
		if errors.Is(err, errInternal) {
			t.Fatalf("ExtractMessage panicked: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrNoReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ExtractMessage error %v wraps neither ErrNoReport nor ErrTooLarge", err)
			}
			return
		}
		if len(m.Parts) == 0 {
			t.Fatal("no parts and no error")
		}
		for _, p := range m.Parts {
			if len(p.Data) > len(data) {
				t.Fatalf("part of %d bytes from a message of %d", len(p.Data), len(data))
			}
		}
	})
}

func FuzzDecompress(f *testing.F) {
	js := []byte(sampleJSON)
	f.Add(js)
	f.Add(gz(f, js))
	f.Add(append(gz(f, js), "garbage"...))
	f.Add(append(gz(f, js[:10]), gz(f, js[10:])...))
	f.Add(gz(f, gz(f, js)))
	f.Add(zipOf(f, "dir/", "", "", sampleJSON))
	f.Add(zipOf(f, "r.json.gz", string(gz(f, js))))
	const maxSize = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		out, format, err := Decompress(data, maxSize)
		if err != nil {
			if !errors.Is(err, ErrInvalidReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decompress error %v wraps neither ErrInvalidReport nor ErrTooLarge", err)
			}
			return
		}
		if len(out) > maxSize {
			t.Fatalf("output of %d bytes exceeds %d", len(out), maxSize)
		}
		if format == "plain" && !bytes.Equal(out, data) {
			t.Fatal("plain output differs from the input")
		}
		if format == "" {
			t.Fatal("no format")
		}
	})
}
