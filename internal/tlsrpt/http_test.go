package tlsrpt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestFromHTTP(t *testing.T) {
	t.Parallel()
	js := []byte(sampleJSON)
	ok := []struct {
		name, ct string
		body     []byte
	}{
		{"gzip", "application/tlsrpt+gzip", gz(t, js)},
		{"gzip with parameters and case", "Application/TLSRPT+GZIP; charset=binary", gz(t, js)},
		{"json", "application/tlsrpt+json", js},
		{"json with BOM", "application/tlsrpt+json; charset=utf-8", append([]byte("\xef\xbb\xbf"), js...)},
		{"no type, gzip", "", gz(t, js)},
		{"octet-stream, JSON", "application/octet-stream", js},
		{"unparsable type, gzip", "application/;;", gz(t, js)},
	}
	for _, tc := range ok {
		out, err := FromHTTP(tc.ct, tc.body, 0)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !bytes.HasSuffix(out, js) {
			t.Errorf("%s: got %q", tc.name, out)
		}
	}

	bad := []struct {
		name, ct string
		body     []byte
		max      int64
		wantErr  error
		text     string
	}{
		{"gzip type, JSON body", "application/tlsrpt+gzip", js, 0, ErrInvalidReport, "Content-Type is application/tlsrpt+gzip but the body is not gzip: begins with 7b"},
		{"json type, gzip body", "application/tlsrpt+json", gz(t, js), 0, ErrInvalidReport, "Content-Type is application/tlsrpt+json but the body is not a JSON object: begins with 1f 8b"},
		{"gzip of something else", "application/tlsrpt+gzip", gz(t, []byte("<feedback/>")), 0, ErrInvalidReport, `gzip content is not a JSON object: begins with 3c 66 65 65 64 62 61 63 ("<feedbac")`},
		{"html error page", "text/html", []byte("<html>"), 0, ErrInvalidReport, "Content-Type text/html: tlsrpt: invalid report: not gzip, zip or JSON"},
		{"too large", "application/tlsrpt+gzip", gz(t, bytes.Repeat([]byte(" "), 5000)), 1000, ErrTooLarge, "decompressed size exceeds 1000 bytes"},
	}
	for _, tc := range bad {
		out, err := FromHTTP(tc.ct, tc.body, tc.max)
		if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.text) || out != nil {
			t.Errorf("%s: FromHTTP = %q, %v; want %v containing %q", tc.name, out, err, tc.wantErr, tc.text)
		}
	}
}
