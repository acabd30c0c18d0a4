package unpack

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

const sample = `<?xml version="1.0"?><feedback><report_metadata><org_name>Example</org_name></report_metadata></feedback>`

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

func TestUnpack(t *testing.T) {
	t.Parallel()
	in := []byte(sample)
	half := len(in) / 2
	tests := []struct {
		name   string
		in     []byte
		out    string
		format string
		others []string
	}{
		{"plain", in, sample, "plain", nil},
		{"not compressed, whatever it is", []byte("hello"), "hello", "plain", nil},
		{"empty", nil, "", "plain", nil},
		{"gzip", gz(t, in), sample, "gzip", nil},
		{"concatenated gzip members", append(gz(t, in[:half]), gz(t, in[half:])...), sample, "gzip", nil},
		{"gzip with trailing garbage", append(gz(t, in), "\r\n--boundary--\r\n"...), sample, "gzip+trailing", nil},
		{"gzip with trailing magic only", append(gz(t, in), 0x1f, 0x8b, 0), sample, "gzip+trailing", nil},
		{"gzip with one trailing byte", append(gz(t, in), 0x1f), sample, "gzip+trailing", nil},
		{"double gzip", gz(t, gz(t, in)), sample, "gzip+gzip", nil},
		{"double gzip, inner with trailing garbage", gz(t, append(gz(t, in), "xx"...)), sample, "gzip+gzip+trailing", nil},
		{"zip", zipOf(t, "report.xml", sample), sample, "zip", nil},
		{"zip member with an empty name after a directory", zipOf(t, "dir/", "", "", sample, "second.xml", "<x/>"), sample, "zip", []string{"second.xml"}},
		{"gzip in zip", zipOf(t, "report.xml.gz", string(gz(t, in))), sample, "zip+gzip", nil},
		{"zip in gzip", gz(t, zipOf(t, "report.xml", sample)), sample, "gzip+zip", nil},
		{"empty gzip", gz(t, nil), "", "gzip", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, format, err := Unpack(tc.in, Options{MaxSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.out || format != tc.format {
				t.Errorf("Unpack = %q, %q; want %q, %q", out, format, tc.out, tc.format)
			}
			r, err := Open(tc.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				t.Fatal(err)
			}
			if r.Format() != tc.format || !slices.Equal(r.OtherMembers(), tc.others) {
				t.Errorf("Format %q, OtherMembers %q; want %q, %q", r.Format(), r.OtherMembers(), tc.format, tc.others)
			}
		})
	}
}

func TestUnpackErrors(t *testing.T) {
	t.Parallel()
	in := []byte(sample)
	bomb := gz(t, bytes.Repeat([]byte("<"), 1<<20))
	badCRC := gz(t, in)
	badCRC[len(badCRC)-6] ^= 0xff // the CRC-32
	tests := []struct {
		name    string
		in      []byte
		max     int64
		wantErr error
		text    string
	}{
		{"gzip bomb", bomb, 1000, ErrTooLarge, "gzip: unpack: decompressed data too large: decompressed size exceeds 1000 bytes"},
		{"nested gzip bomb", gz(t, bomb), int64(len(bomb)) + 100, ErrTooLarge, "gzip: inner gzip: unpack: decompressed data too large"},
		{"outer layer of a nested bomb", gz(t, gz(t, bytes.Repeat([]byte("<"), 1<<22))), 2000, ErrTooLarge, "gzip: unpack: decompressed data too large"},
		{"truncated gzip", gz(t, in)[:30], 0, ErrCorrupt, "gzip: unpack: corrupt compressed data: member 1 is truncated: unexpected EOF"},
		{"truncated second member", append(gz(t, in), gz(t, in)[:30]...), 0, ErrCorrupt, "member 2 is truncated"},
		{"gzip checksum", badCRC, 0, ErrCorrupt, "member 1: gzip: invalid checksum"},
		{"gzip header only", []byte{0x1f, 0x8b, 8}, 0, ErrCorrupt, "gzip: unpack: corrupt compressed data: header"},
		{"triple gzip", gz(t, gz(t, gz(t, in))), 0, ErrCorrupt, "unpack: corrupt compressed data: gzip+gzip: compressed more than 2 times"},
		{"zip without files", zipOf(t, "a/", "", "b/", ""), 0, ErrCorrupt, "zip: unpack: corrupt compressed data: archive has no file (2 entries)"},
		{"zip member too large", zipOf(t, "r.xml", sample), 10, ErrTooLarge, `member "r.xml" declares`},
		{"broken zip", []byte("PK\x03\x04garbage"), 0, ErrCorrupt, "zip: unpack: corrupt compressed data: zip: not a valid zip file"},
		{"broken inner zip", gz(t, []byte("PK\x03\x04garbage")), 0, ErrCorrupt, "gzip: inner zip: unpack: corrupt compressed data: zip: not a valid zip file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, format, err := Unpack(tc.in, Options{MaxSize: tc.max})
			var e *Error
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &e) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Unpack = %d bytes, %q, %v; want %v containing %q", len(out), format, err, tc.wantErr, tc.text)
			}
			if out != nil || format != "" {
				t.Errorf("output with error: %q, %q", out, format)
			}
		})
	}
}

func TestWithSentinels(t *testing.T) {
	t.Parallel()
	errBad := errors.New("x: bad report")
	errBig := errors.New("x: too large")
	_, _, err := Unpack(gz(t, []byte(sample))[:30], Options{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	got := e.WithSentinels(errBad, errBig)
	if !errors.Is(got, errBad) || !errors.Is(got, io.ErrUnexpectedEOF) || got.Error() != "gzip: x: bad report: member 1 is truncated: unexpected EOF" {
		t.Errorf("WithSentinels = %v", got)
	}
	_, _, err = Unpack(gz(t, bytes.Repeat([]byte("a"), 100)), Options{MaxSize: 10})
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if got := e.WithSentinels(errBad, errBig); !errors.Is(got, errBig) || errors.Is(got, errBad) || got.Error() != "gzip: x: too large: decompressed size exceeds 10 bytes" {
		t.Errorf("WithSentinels = %v", got)
	}
}

// TestStreaming reads a large decompressed output through Open in small
// pieces and checks that it is produced, not held: the gzip holds 64 MiB
// of repeated XML.
func TestStreaming(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	chunk := bytes.Repeat([]byte("<record><count>1</count></record>\n"), 1024)
	total := 0
	for total < 64<<20 {
		w.Write(chunk)
		total += len(chunk)
	}
	w.Close()
	r, err := Open(b.Bytes(), Options{MaxSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(io.Discard, r, make([]byte, 4096))
	if err != nil || n != int64(total) {
		t.Fatalf("read %d bytes, %v; want %d", n, err, total)
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"\x1f\x8b\x08": Gzip, "PK\x03\x04": Zip, "PK\x05\x06": Zip, "PK": "", "\x1f": "", "<?xml": "", "": "",
	} {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	in := []byte(sample)
	f.Add(in)
	f.Add(gz(f, in))
	f.Add(append(gz(f, in), "garbage"...))
	f.Add(append(gz(f, in[:10]), gz(f, in[10:])...))
	f.Add(gz(f, gz(f, in)))
	f.Add(zipOf(f, "dir/", "", "", sample))
	f.Add(zipOf(f, "r.xml.gz", string(gz(f, in))))
	f.Add(gz(f, zipOf(f, "r.xml", sample)))
	const maxSize = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		out, format, err := Unpack(data, Options{MaxSize: maxSize})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Unpack error %v is not an *Error wrapping ErrCorrupt or ErrTooLarge", err)
			}
			return
		}
		if format != "plain" && len(out) > maxSize {
			t.Fatalf("output of %d bytes exceeds %d", len(out), maxSize)
		}
		if format == "plain" && !bytes.Equal(out, data) {
			t.Fatal("plain output differs from the input")
		}
	})
}
