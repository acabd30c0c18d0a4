package tlsrpt

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxSize is the bound on a decompressed report or a message that
// Decompress, FromHTTP and ExtractMessage use when given a size ≤ 0.
const DefaultMaxSize = 64 << 20

// maxLayers is how many compression layers Decompress unwraps: a report
// gzipped twice is seen in the wild, more is not.
const maxLayers = 2

// Decompress returns the report in data uncompressed. It sniffs the format
// by its first bytes, whatever the media type claimed:
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
	var layers []string // for the format: "gzip", "zip", "trailing"
	depth := 0          // compression layers unwrapped
	cur := data
	for {
		kind := sniff(cur)
		if kind != "gzip" && kind != "zip" {
			if len(layers) > 0 {
				return cur, strings.Join(layers, "+"), nil
			}
			if kind != "json" {
				return nil, "", fmt.Errorf("%w: not gzip, zip or JSON: begins with %s", ErrInvalidReport, describePrefix(data))
			}
			if int64(len(data)) > maxSize {
				return nil, "", fmt.Errorf("%w: plain report of %d bytes exceeds %d bytes", ErrTooLarge, len(data), maxSize)
			}
			return data, "plain", nil
		}
		if depth == maxLayers {
			return nil, "", fmt.Errorf("%w: %s: compressed more than %d times", ErrInvalidReport, strings.Join(layers, "+"), maxLayers)
		}
		where := kind
		if len(layers) > 0 {
			where = strings.Join(layers, "+") + ": inner " + kind
		}
		var trailing bool
		if kind == "gzip" {
			cur, trailing, err = gunzip(cur, maxSize)
		} else {
			cur, err = unzip(cur, maxSize)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", where, err)
		}
		depth++
		layers = append(layers, kind)
		if trailing {
			layers = append(layers, "trailing")
		}
	}
}

// sniff names the format of data by its first bytes: "gzip", "zip",
// "json" or "".
func sniff(data []byte) string {
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return "gzip"
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return "zip"
	case looksLikeJSON(data):
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

// gunzip decompresses all gzip members of data. trailing reports bytes
// after the last member that are not another member.
func gunzip(data []byte, maxSize int64) (out []byte, trailing bool, err error) {
	br := bytes.NewReader(data) // an io.ByteReader: gzip reads no further than each member
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, false, fmt.Errorf("%w: header: %w", ErrInvalidReport, err)
	}
	var buf bytes.Buffer
	for member := 1; ; member++ {
		zr.Multistream(false)
		_, err := io.Copy(&buf, io.LimitReader(zr, maxSize+1-int64(buf.Len())))
		if int64(buf.Len()) > maxSize {
			return nil, false, fmt.Errorf("%w: decompressed size exceeds %d bytes", ErrTooLarge, maxSize)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, false, fmt.Errorf("%w: member %d is truncated: %w", ErrInvalidReport, member, err)
			}
			return nil, false, fmt.Errorf("%w: member %d: %w", ErrInvalidReport, member, err)
		}
		if br.Len() == 0 {
			break
		}
		rest := data[len(data)-br.Len():]
		if len(rest) < 2 || rest[0] != 0x1f || rest[1] != 0x8b {
			trailing = true
			break
		}
		if err := zr.Reset(br); err != nil {
			trailing = true // magic bytes but no valid header: garbage
			break
		}
	}
	return buf.Bytes(), trailing, nil
}

// unzip returns the first member of a zip archive that is not a directory.
func unzip(data []byte, maxSize int64) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") || f.FileInfo().IsDir() {
			continue
		}
		if f.UncompressedSize64 > uint64(maxSize) { //nolint:gosec // maxSize is positive
			return nil, fmt.Errorf("%w: member %q declares %d bytes, more than %d", ErrTooLarge, f.Name, f.UncompressedSize64, maxSize)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: member %q: %w", ErrInvalidReport, f.Name, err)
		}
		out, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if int64(len(out)) > maxSize {
			return nil, fmt.Errorf("%w: member %q exceeds %d bytes", ErrTooLarge, f.Name, maxSize)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: member %q: %w", ErrInvalidReport, f.Name, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: archive has no file (%d entries)", ErrInvalidReport, len(zr.File))
}
