package tlsrpt

import (
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Media types of RFC 8460 §6.
const (
	MediaTypeGzip = "application/tlsrpt+gzip"
	MediaTypeJSON = "application/tlsrpt+json"
)

// FromHTTP returns the JSON report of an HTTPS POST body (RFC 8460 §5.4)
// given its Content-Type:
//   - application/tlsrpt+gzip: the body must be gzip (a second gzip layer
//     or trailing garbage is tolerated, as in Decompress);
//   - application/tlsrpt+json: the body must be JSON;
//   - any other or no type: the body is sniffed (gzip, zip or JSON), since
//     §5.4 says only SHOULD about the media types.
//
// The decompressed report may not exceed maxDecompressed bytes
// (DefaultMaxSize when ≤ 0): ErrTooLarge. A body that is not what its type
// says, or whose decompressed content does not look like a JSON object,
// gives an error wrapping ErrInvalidReport. HTTP Content-Encoding is the
// caller's business and must already be undone.
func FromHTTP(contentType string, body []byte, maxDecompressed int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && mt == "" {
		t, _, _ := strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(t))
	}
	kind := sniff(body)
	switch mt {
	case MediaTypeGzip:
		if kind != "gzip" {
			return nil, fmt.Errorf("%w: Content-Type is %s but the body is not gzip: begins with %s", ErrInvalidReport, MediaTypeGzip, describePrefix(body))
		}
	case MediaTypeJSON:
		if kind != "json" {
			return nil, fmt.Errorf("%w: Content-Type is %s but the body is not a JSON object: begins with %s", ErrInvalidReport, MediaTypeJSON, describePrefix(body))
		}
	}
	out, format, err := Decompress(body, maxDecompressed)
	if err != nil {
		if mt != "" && !errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("Content-Type %s: %w", mt, err)
		}
		return nil, err
	}
	if format != "plain" && !looksLikeJSON(out) {
		return nil, fmt.Errorf("%w: %s content is not a JSON object: begins with %s", ErrInvalidReport, format, describePrefix(out))
	}
	return out, nil
}
