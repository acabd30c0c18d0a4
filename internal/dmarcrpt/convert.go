package dmarcrpt

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// charset is how the input is turned into the UTF-8 text the tokenizer
// reads.
type charset struct {
	name string // "utf-8", "utf-16le", "utf-16be", "iso-8859-1", "windows-1252", "iso-8859-15"
	bom  int    // bytes of byte order mark skipped
	// declared is the encoding of the XML declaration, as written.
	declared string
	// unknown: declared names an encoding this package does not read;
	// the input is read as UTF-8.
	unknown bool
}

// sniffCharset reads the byte order mark and the XML declaration at the
// start of the input (XML 1.0 §4.3.3 and appendix F).
func sniffCharset(head []byte) charset {
	switch {
	case bytes.HasPrefix(head, []byte{0xef, 0xbb, 0xbf}):
		cs := sniffDeclaration(head[3:])
		cs.bom = 3
		return cs
	case bytes.HasPrefix(head, []byte{0xff, 0xfe}):
		return charset{name: "utf-16le", bom: 2}
	case bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return charset{name: "utf-16be", bom: 2}
	}
	return sniffDeclaration(head)
}

// sniffDeclaration reads encoding="..." (or '...') from an XML declaration.
func sniffDeclaration(head []byte) charset {
	cs := charset{name: "utf-8"}
	if !bytes.HasPrefix(head, []byte("<?xml")) {
		return cs
	}
	end := bytes.Index(head, []byte("?>"))
	if end < 0 {
		return cs
	}
	decl := string(head[5:end])
	k := strings.Index(decl, "encoding")
	if k < 0 {
		return cs
	}
	rest := strings.TrimLeft(decl[k+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(rest, "=") {
		return cs
	}
	rest = strings.TrimLeft(rest[1:], " \t\r\n")
	if rest == "" || rest[0] != '"' && rest[0] != '\'' {
		return cs
	}
	q := strings.IndexByte(rest[1:], rest[0])
	if q < 0 {
		return cs
	}
	cs.declared = rest[1 : 1+q]
	switch strings.ToLower(cs.declared) {
	case "utf-8", "utf8", "us-ascii", "ascii":
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		cs.name = "iso-8859-1"
	case "windows-1252", "cp1252":
		cs.name = "windows-1252"
	case "iso-8859-15", "iso8859-15", "latin-9", "latin9":
		cs.name = "iso-8859-15"
	default:
		cs.unknown = true
	}
	return cs
}

// reader returns the input (after the byte order mark) converted to
// UTF-8.
func (cs charset) reader(br *bufio.Reader) io.Reader {
	switch cs.name {
	case "utf-16le", "utf-16be":
		return &utf16Reader{src: br, be: cs.name == "utf-16be"}
	case "iso-8859-1", "windows-1252", "iso-8859-15":
		return &singleByteReader{src: br, name: cs.name}
	}
	return br
}

// singleByteReader converts ISO-8859-1, ISO-8859-15 or windows-1252 to
// UTF-8.
type singleByteReader struct {
	src  io.Reader
	name string
	buf  [1024]byte
	out  []byte
}

// cp1252 maps windows-1252 bytes 0x80-0x9f; 0 where it has no character
// (read as ISO-8859-1 there).
var cp1252 = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

func (s *singleByteReader) rune(c byte) rune {
	r := rune(c)
	switch {
	case s.name == "windows-1252" && c >= 0x80 && c < 0xa0 && cp1252[c-0x80] != 0:
		r = cp1252[c-0x80]
	case s.name == "iso-8859-15":
		switch c {
		case 0xa4:
			r = 0x20AC
		case 0xa6:
			r = 0x0160
		case 0xa8:
			r = 0x0161
		case 0xb4:
			r = 0x017D
		case 0xb8:
			r = 0x017E
		case 0xbc:
			r = 0x0152
		case 0xbd:
			r = 0x0153
		case 0xbe:
			r = 0x0178
		}
	}
	return r
}

func (s *singleByteReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		n, err := s.src.Read(s.buf[:])
		for _, c := range s.buf[:n] {
			s.out = utf8.AppendRune(s.out, s.rune(c))
		}
		if n == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// utf16Reader converts UTF-16 to UTF-8; unpaired surrogates become
// U+FFFD.
type utf16Reader struct {
	src  *bufio.Reader
	be   bool
	out  []byte
	high uint16 // a high surrogate waiting for its pair
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		var b [2]byte
		if _, err := io.ReadFull(u.src, b[:]); err != nil {
			if u.high != 0 {
				u.out = utf8.AppendRune(u.out, utf8.RuneError)
				u.high = 0
				continue
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF // an odd last byte is dropped
			}
			return 0, err
		}
		v := uint16(b[0]) | uint16(b[1])<<8
		if u.be {
			v = uint16(b[0])<<8 | uint16(b[1])
		}
		switch {
		case u.high != 0 && utf16.IsSurrogate(rune(v)) && v >= 0xdc00:
			u.out = utf8.AppendRune(u.out, utf16.DecodeRune(rune(u.high), rune(v)))
			u.high = 0
		case u.high != 0:
			u.out = utf8.AppendRune(u.out, utf8.RuneError)
			u.high = 0
			fallthrough
		default:
			if v >= 0xd800 && v < 0xdc00 {
				u.high = v
			} else if utf16.IsSurrogate(rune(v)) {
				u.out = utf8.AppendRune(u.out, utf8.RuneError)
			} else {
				u.out = utf8.AppendRune(u.out, rune(v))
			}
		}
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}
