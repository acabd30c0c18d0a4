package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// How report bytes are kept. Raw is gzip-compressed by the store unless it
// arrived compressed already (gzip or zip, recognized by their magic
// numbers) or compression would not make it smaller; raw_gzip says which, so
// TLSRPTReportByID returns exactly the bytes received either way. Normalized
// is always stored gzip-compressed (it is never compressed on arrival).
// gzip rather than raw DEFLATE for its CRC-32: a damaged row is reported
// instead of being returned silently wrong.

// gzipLevel is the compression level: on reports of a few kilobytes, level
// 1 compresses about twice as fast as the default level and within 3% of
// its size.
const gzipLevel = gzip.BestSpeed

// gzipWriters keeps gzip writers for reuse: a new one allocates some 800 KB
// of compressor state, which costs more than compressing a small report.
type gzipWriters struct{ p sync.Pool }

func (g *gzipWriters) get() *gzip.Writer {
	if zw, ok := g.p.Get().(*gzip.Writer); ok {
		return zw
	}
	zw, err := gzip.NewWriterLevel(io.Discard, gzipLevel)
	if err != nil {
		panic(err) // gzipLevel is a valid level
	}
	return zw
}

func (g *gzipWriters) put(zw *gzip.Writer) {
	zw.Reset(io.Discard) // drop the reference to the last output buffer
	g.p.Put(zw)
}

// compressor compresses the rows of one batch with a writer from a
// gzipWriters.
type compressor struct {
	zw  *gzip.Writer
	buf bytes.Buffer
}

// gzip returns the gzip compression of b.
func (c *compressor) gzip(b []byte) ([]byte, error) {
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(b); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(c.buf.Bytes()), nil
}

// raw returns what to store for raw and whether it is compressed by us.
func (c *compressor) raw(raw []byte) ([]byte, bool, error) {
	if isCompressed(raw) {
		return raw, false, nil
	}
	z, err := c.gzip(raw)
	if err != nil {
		return nil, false, err
	}
	if len(z) >= len(raw) {
		return raw, false, nil
	}
	return z, true, nil
}

// isCompressed reports whether b starts like a gzip stream or a zip file,
// the compressed forms in which TLS-RPT reports arrive (RFC 8460 §5.2 asks
// for gzip; some senders zip them).
func isCompressed(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) || bytes.HasPrefix(b, []byte("PK\x03\x04"))
}

// maxColumn bounds a decompressed column of unknown length: the largest
// report intake accepts after decompression (intake.max_report_json's
// upper limit).
const maxColumn = 4 << 30

// gunzip decompresses a column written by compressor.gzip; size, when not
// negative, is the expected length.
func gunzip(col string, z []byte, size int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("store: column %s: not gzip: %w", col, err)
	}
	var out bytes.Buffer
	// The column was compressed by us; the bound is against a corrupt or
	// tampered row all the same.
	limit := int64(maxColumn)
	if size >= 0 {
		out.Grow(int(size))
		limit = size
	}
	if n, err := io.Copy(&out, io.LimitReader(zr, limit+1)); err != nil {
		return nil, fmt.Errorf("store: column %s: decompress: %w", col, err)
	} else if n > limit {
		return nil, fmt.Errorf("store: column %s: decompresses to more than %d bytes", col, limit)
	}
	if err := zr.Close(); err != nil {
		return nil, fmt.Errorf("store: column %s: decompress: %w", col, err)
	}
	if size >= 0 && int64(out.Len()) != size {
		return nil, fmt.Errorf("store: column %s: decompressed to %d bytes, the row says %d", col, out.Len(), size)
	}
	return out.Bytes(), nil
}

// digestOf is the hex SHA-256 of raw, TLSRPTReport.Digest.
func digestOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}
