package unpack

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// gzipReader reads every member of a gzip stream (RFC 1952 §2.2: a file
// is a series of members) and stops quietly at trailing bytes that are
// not a member.
type gzipReader struct {
	src    source
	zr     *gzip.Reader
	l      *layer
	where  string
	member int
	done   bool
}

func openGzip(src source, l *layer, where string) (io.Reader, error) {
	zr, err := gzip.NewReader(src) // src is an io.ByteReader: gzip reads no further than each member
	if err != nil {
		return nil, corrupt(err, where, "header")
	}
	zr.Multistream(false)
	return &gzipReader{src: src, zr: zr, l: l, where: where, member: 1}, nil
}

func (g *gzipReader) Read(p []byte) (int, error) {
	for {
		if g.done {
			return 0, io.EOF
		}
		n, err := g.zr.Read(p)
		switch {
		case errors.Is(err, io.EOF):
			// The member ended (its CRC-32 and size were checked).
			if nerr := g.next(); nerr != nil {
				return n, nerr
			}
			if n > 0 {
				return n, nil
			}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return n, corrupt(err, g.where, fmt.Sprintf("member %d is truncated", g.member))
		case err != nil:
			return n, corrupt(err, g.where, fmt.Sprintf("member %d", g.member))
		default:
			return n, nil
		}
	}
}

// next starts the next member, or ends the stream at its end or at
// trailing garbage.
func (g *gzipReader) next() error {
	head, err := g.src.Peek(2)
	if len(head) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return corrupt(err, g.where, "")
		}
		g.done = true
		return nil
	}
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		g.l.trailing, g.done = true, true
		return nil
	}
	if err := g.zr.Reset(g.src); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		g.l.trailing, g.done = true, true // magic bytes but no valid header: garbage
		return nil
	}
	g.zr.Multistream(false)
	g.member++
	return nil
}

// openZip opens the first file member of the archive src holds.
func (r *Reader) openZip(src source, where string, maxSize int64) (io.Reader, error) {
	data, err := all(src)
	if err != nil {
		return nil, corrupt(err, where, "")
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, corrupt(err, where, "")
	}
	var first *zip.File
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") || f.FileInfo().IsDir() {
			continue
		}
		if first == nil {
			first = f
		} else {
			r.members = append(r.members, f.Name)
		}
	}
	if first == nil {
		return nil, &Error{Where: where, Reason: fmt.Sprintf("archive has no file (%d entries)", len(zr.File)), Err: ErrCorrupt}
	}
	if first.UncompressedSize64 > uint64(maxSize) { //nolint:gosec // maxSize is positive
		return nil, &Error{Where: where, Reason: fmt.Sprintf("member %q declares %d bytes, more than %d", first.Name, first.UncompressedSize64, maxSize), Err: ErrTooLarge}
	}
	rc, err := first.Open()
	if err != nil {
		return nil, corrupt(err, where, fmt.Sprintf("member %q", first.Name))
	}
	return &zipMember{rc: rc, name: first.Name, where: where}, nil
}

// zipMember reads one member and closes it at its end.
type zipMember struct {
	rc     io.ReadCloser
	name   string
	where  string
	closed bool
}

func (z *zipMember) Read(p []byte) (int, error) {
	if z.closed {
		return 0, io.EOF
	}
	n, err := z.rc.Read(p)
	if err == nil {
		return n, nil
	}
	z.closed = true
	cerr := z.rc.Close()
	if errors.Is(err, io.EOF) {
		err = cerr
		if err == nil {
			return n, io.EOF
		}
	}
	return n, corrupt(err, z.where, fmt.Sprintf("member %q", z.name))
}
