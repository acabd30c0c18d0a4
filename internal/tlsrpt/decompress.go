package tlsrpt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/moatmail/moat/internal/unpack"
)

// DefaultMaxSize is the bound on a decompressed report or a message that
// Decompress, FromHTTP and ExtractMessage use when given a size ≤ 0.
const DefaultMaxSize = 64 << 20

// maxLayers is how many compression layers Decompress unwraps: a report
// gzipped twice is seen in the wild, more is not.
const maxLayers = 2

// Decompress returns the report in data uncompressed (with package
// unpack). It sniffs the format by its first bytes, whatever the media
// type claimed:
//   - gzip (RFC 1952; RFC 8460 §5.2 says reports SHOULD be gzipped):
//     concatenated members are joined. Bytes after the last complete
//     member that do not begin another member are ignored and reported in
//     the format as "+trailing" (Mimecast appends such garbage);
//   - zip: the first member that is not a directory (its name may be
//     empty), as Google sends DMARC reports;
//   - otherwise the data must look like JSON (an optional byte order mark
//     and whitespace, then "{") and is returned as is, format "plain".
//
// A decompressed layer that is itself gzip or zip is unwrapped too, up to
// two layers. format names the layers joined by "+": "plain", "gzip",
// "gzip+trailing", "zip", "gzip+gzip", "zip+gzip", ... The output is not
// checked beyond that: Decode says whether it is a report.
//
// The output, and a plain input, may not exceed maxSize bytes
// (DefaultMaxSize when maxSize ≤ 0), so compression bombs stop early with
// ErrTooLarge. Other errors wrap ErrInvalidReport and name the format and
// what failed.
func Decompress(data []byte, maxSize int64) (out []byte, format string, err error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if unpack.Sniff(data) == "" {
		if !looksLikeJSON(data) {
			return nil, "", fmt.Errorf("%w: not gzip, zip or JSON: begins with %s", ErrInvalidReport, describePrefix(data))
		}
		if int64(len(data)) > maxSize {
			return nil, "", fmt.Errorf("%w: plain report of %d bytes exceeds %d bytes", ErrTooLarge, len(data), maxSize)
		}
		return data, "plain", nil
	}
	out, format, err = unpack.Unpack(data, unpack.Options{MaxSize: maxSize, MaxLayers: maxLayers})
	if err != nil {
		var ue *unpack.Error
		if errors.As(err, &ue) {
			return nil, "", ue.WithSentinels(ErrInvalidReport, ErrTooLarge)
		}
		return nil, "", fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	return out, format, nil
}

// sniff names the format of data by its first bytes: "gzip", "zip",
// "json" or "".
func sniff(data []byte) string {
	if kind := unpack.Sniff(data); kind != "" {
		return kind
	}
	if looksLikeJSON(data) {
		return "json"
	}
	return ""
}

// looksLikeJSON reports whether data begins like a JSON object: an
// optional byte order mark (UTF-8 or UTF-16), whitespace, then "{".
func looksLikeJSON(data []byte) bool {
	step := 1
	switch {
	case bytes.HasPrefix(data, []byte{0xef, 0xbb, 0xbf}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		data = data[2:] // UTF-16LE: the ASCII byte comes first
		step = 2
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		if len(data) < 3 {
			return false
		}
		data = data[3:] // UTF-16BE: skip the BOM and the first high byte
		step = 2
	}
	for i := 0; i < len(data); i += step {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func describePrefix(data []byte) string {
	if len(data) == 0 {
		return "nothing (empty)"
	}
	n := min(len(data), 8)
	return fmt.Sprintf("% x (%q)", data[:n], data[:n])
}
