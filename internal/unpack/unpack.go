// Package unpack undoes the compression report senders apply before
// sending: gzip (RFC 1952), with concatenated members and trailing
// garbage, and zip archives (the first file member), nested up to
// MaxLayers deep. It streams, so that a report of any decompressed size
// is read in constant memory, and it bounds every layer's output against
// compression bombs.
//
// It serves the report formats that say how reports are compressed:
// RFC 8460 §5.2 (TLS-RPT: gzip) in package tlsrpt, and RFC 7489 §7.2.1.1
// and RFC 9990 §3.5.2 (DMARC aggregate reports: gzip, zip in practice) in
// package dmarcrpt. The format is sniffed from the bytes, never taken
// from a media type or a file name.
package unpack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Formats Sniff recognizes.
const (
	Gzip = "gzip" // RFC 1952: 1f 8b
	Zip  = "zip"  // PKWARE: "PK\x03\x04" (local file header) or "PK\x05\x06" (empty archive)
)

// Defaults of Options.
const (
	DefaultMaxSize   = 64 << 20
	DefaultMaxLayers = 2
)

// Errors. Every error of Open, Unpack and Reader.Read is a *Error wrapping
// one of them.
var (
	// ErrCorrupt: the compressed data cannot be read (bad header,
	// truncated stream, checksum mismatch, an archive without a file, too
	// many layers). The caller should keep the input as unreadable.
	ErrCorrupt = errors.New("unpack: corrupt compressed data")
	// ErrTooLarge: a layer's decompressed output exceeds Options.MaxSize
	// (a compression bomb, or a report larger than the caller accepts).
	ErrTooLarge = errors.New("unpack: decompressed data too large")
)

// Error says where decompression failed and why.
type Error struct {
	// Where names the layer: "gzip", "zip", "gzip: inner zip"; "" for the
	// input as a whole.
	Where string
	// Reason says what failed, in words ("member 1 is truncated"); it
	// may be "" when Cause says it all.
	Reason string
	// Err is ErrCorrupt or ErrTooLarge.
	Err error
	// Cause is the decompressor's error (gzip.ErrChecksum,
	// io.ErrUnexpectedEOF, zip.ErrFormat, ...), or nil.
	Cause error
}

func (e *Error) Error() string {
	return e.rewrap(e.Err).Error()
}

// Unwrap returns Err and Cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// WithSentinels returns the error reworded around the caller's own
// sentinels: corrupt for ErrCorrupt, tooLarge for ErrTooLarge, as
// "<where>: <sentinel>: <reason>: <cause>". The sentinel and the cause
// stay in the chain (errors.Is); the *Error itself does not.
func (e *Error) WithSentinels(corrupt, tooLarge error) error {
	if errors.Is(e.Err, ErrTooLarge) {
		return e.rewrap(tooLarge)
	}
	return e.rewrap(corrupt)
}

func (e *Error) rewrap(sentinel error) error {
	prefix := ""
	if e.Where != "" {
		prefix = e.Where + ": "
	}
	switch {
	case e.Reason != "" && e.Cause != nil:
		return fmt.Errorf("%s%w: %s: %w", prefix, sentinel, e.Reason, e.Cause)
	case e.Reason != "":
		return fmt.Errorf("%s%w: %s", prefix, sentinel, e.Reason)
	case e.Cause != nil:
		return fmt.Errorf("%s%w: %w", prefix, sentinel, e.Cause)
	}
	return fmt.Errorf("%s%w", prefix, sentinel)
}

// Options bound Open and Unpack. The zero value means the defaults.
type Options struct {
	// MaxSize bounds the decompressed output of every layer, in bytes
	// (DefaultMaxSize when ≤ 0). Exceeding it gives ErrTooLarge.
	MaxSize int64
	// MaxLayers is how many compression layers are unwrapped
	// (DefaultMaxLayers when ≤ 0): a report gzipped twice is seen in the
	// wild, a third layer is refused with ErrCorrupt.
	MaxLayers int
}

// Sniff names the compression format of data by its first bytes: Gzip,
// Zip, or "" for anything else.
func Sniff(data []byte) string {
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return Gzip
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return Zip
	}
	return ""
}

// Reader reads the decompressed content of Open's input.
type Reader struct {
	r       io.Reader
	layers  []*layer
	members []string // file members of zip layers that were not read
}

// layer is one compression layer, for Format.
type layer struct {
	kind     string
	trailing bool // gzip: bytes after the last member that are not a member
}

// Read reads decompressed bytes. Its errors are *Error values: a corrupt
// stream (ErrCorrupt) or a layer exceeding MaxSize (ErrTooLarge).
func (r *Reader) Read(p []byte) (int, error) { return r.r.Read(p) }

// Format names the layers unwrapped, outermost first, joined by "+":
// "plain" (none), "gzip", "zip", "gzip+gzip", "zip+gzip", ... A gzip layer
// followed by garbage that is not another member is marked "+trailing"
// ("gzip+trailing"); that is known once the layer has been read to its
// end.
func (r *Reader) Format() string {
	if len(r.layers) == 0 {
		return "plain"
	}
	var parts []string
	for _, l := range r.layers {
		parts = append(parts, l.kind)
		if l.trailing {
			parts = append(parts, "trailing")
		}
	}
	return strings.Join(parts, "+")
}

// OtherMembers returns the names of the file members of zip layers that
// were left unread: only the first file member of an archive is read.
func (r *Reader) OtherMembers() []string { return r.members }

// Open returns a reader of data with its compression layers removed. An
// input that is neither gzip nor zip is returned as is (Format "plain",
// not bounded by MaxSize: it is already in memory). Each gzip or zip
// layer is unwrapped and its output sniffed again, up to MaxLayers
// layers:
//   - gzip: concatenated members are joined; bytes after the last member
//     that do not begin a valid member are ignored (Mimecast appends such
//     garbage) and mark the layer "+trailing" in Format;
//   - zip: the first member that is not a directory (its name may be
//     empty, as in some senders' archives); its declared size is checked
//     against MaxSize before reading.
//
// Errors found while opening (a bad header, an unreadable archive, too
// many layers) are returned here; errors of the compressed streams
// (truncation, checksum, MaxSize) surface from Read. All are *Error.
func Open(data []byte, opts Options) (*Reader, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxLayers <= 0 {
		opts.MaxLayers = DefaultMaxLayers
	}
	r := &Reader{}
	kind := Sniff(data)
	if kind == "" {
		r.r = bytes.NewReader(data)
		return r, nil
	}
	var src source = &sliceReader{data: data}
	var kinds []string
	for {
		if len(kinds) == opts.MaxLayers {
			return nil, &Error{Reason: fmt.Sprintf("%s: compressed more than %d times", strings.Join(kinds, "+"), opts.MaxLayers), Err: ErrCorrupt}
		}
		where := kind
		if len(kinds) > 0 {
			where = strings.Join(kinds, "+") + ": inner " + kind
		}
		kinds = append(kinds, kind)
		l := &layer{kind: kind}
		r.layers = append(r.layers, l)
		var out io.Reader
		var err error
		if kind == Gzip {
			out, err = openGzip(src, l, where)
		} else {
			out, err = r.openZip(src, where, opts.MaxSize)
		}
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(&limited{r: out, left: opts.MaxSize, max: opts.MaxSize, where: where}, 32<<10)
		head, err := br.Peek(4)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if kind = Sniff(head); kind == "" {
			r.r = br
			return r, nil
		}
		src = br
	}
}

// Unpack is Open followed by reading everything: it returns the
// decompressed data and Format. The output is at most MaxSize bytes (for
// a compressed input).
func Unpack(data []byte, opts Options) (out []byte, format string, err error) {
	r, err := Open(data, opts)
	if err != nil {
		return nil, "", err
	}
	if len(r.layers) == 0 {
		return data, r.Format(), nil
	}
	out, err = io.ReadAll(r)
	if err != nil {
		return nil, "", err
	}
	return out, r.Format(), nil
}

// source is what a layer reads: bytes, byte by byte (so that gzip does
// not read past a member), with a look at what comes next.
type source interface {
	io.Reader
	io.ByteReader
	Peek(n int) ([]byte, error)
}

// sliceReader is a source over the input bytes.
type sliceReader struct {
	data []byte
	off  int
}

func (s *sliceReader) Read(p []byte) (int, error) {
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:])
	s.off += n
	return n, nil
}

func (s *sliceReader) ReadByte() (byte, error) {
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	s.off++
	return s.data[s.off-1], nil
}

func (s *sliceReader) Peek(n int) ([]byte, error) {
	rest := s.data[s.off:]
	if len(rest) < n {
		return rest, io.EOF
	}
	return rest[:n], nil
}

// all reads the rest of a source; for a zip layer, which needs random
// access.
func all(src source) ([]byte, error) {
	if s, ok := src.(*sliceReader); ok {
		return s.data[s.off:], nil
	}
	return io.ReadAll(src)
}

// limited bounds a layer's output.
type limited struct {
	r     io.Reader
	left  int64 // bytes still allowed; -1 once exceeded
	max   int64
	where string
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.tooLarge()
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n - 1, l.tooLarge()
	}
	return n, err
}

func (l *limited) tooLarge() error {
	return &Error{Where: l.where, Reason: fmt.Sprintf("decompressed size exceeds %d bytes", l.max), Err: ErrTooLarge}
}

// corrupt wraps an error of a layer's decompressor. Errors of an outer
// layer, already *Error, pass through.
func corrupt(err error, where, reason string) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Where: where, Reason: reason, Err: ErrCorrupt, Cause: err}
}
