package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the JSON decoder. A report is a few levels deep; the caller
// bounds the size of the input, these bound the shape.
const (
	// MaxDepth is the deepest nesting of arrays and objects Decode accepts
	// (a report needs 5).
	MaxDepth = 32
	// MaxArrayLen is the largest number of elements of one array (policies,
	// failure details, ...) or members of one object Decode accepts.
	MaxArrayLen = 100_000
)

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	default:
		return "an object"
	}
}

// jnode is a JSON value with its position: the lenient intermediate form
// that Decode reads before it interprets anything. Objects keep their
// members in order, repeats included.
type jnode struct {
	kind jkind
	off  int64  // byte offset of the value's first byte in the input
	s    string // string value, number literal, "true" or "false"
	arr  []*jnode
	obj  []jmember
}

type jmember struct {
	key string
	val *jnode
}

// pathSeg is one step of a JSON path: an object key or an array index.
type pathSeg struct {
	key   string // the object key, when !isIdx
	index int    // the array index, when isIdx
	isIdx bool
}

func formatPath(segs []pathSeg) string {
	if len(segs) == 0 {
		return "$"
	}
	var b strings.Builder
	for i, s := range segs {
		if s.isIdx {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		if !plainKey(s.key) {
			b.WriteByte('[')
			b.WriteString(strconv.Quote(s.key))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// plainKey reports whether key can be written after a dot in a path: it
// is not empty and has only letters, digits, "-" and "_".
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// parseTree parses the first JSON value of data and returns it with the
// offset just after it. Errors are *DecodeError.
//
// encoding/json validates the value and finds its end; the tree is then
// built by fastParser, which may assume valid JSON. Only when the input is
// invalid does the slower treeParser (encoding/json's tokenizer) run
// again, to say where the error is, with the path.
func parseTree(data []byte, base int64) (*jnode, int64, error) {
	start, end := 0, len(data)
	if !json.Valid(data) {
		// Perhaps a valid value followed by trailing data.
		dec := json.NewDecoder(bytes.NewReader(data))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			_, _, perr := slowParseTree(data, base)
			if perr == nil {
				perr = &DecodeError{Path: "$", Offset: base, Err: fmt.Errorf("%w: not JSON: %w", ErrInvalidReport, err)}
			}
			return nil, 0, perr
		}
		end = int(dec.InputOffset())
		start = end - len(raw)
	}
	p := &fastParser{data: data[:end], pos: start, base: base}
	n, err := p.value(0)
	if err != nil {
		return nil, 0, err
	}
	return n, int64(end), nil
}

// fastParser builds a jnode tree from JSON text known to be valid.
type fastParser struct {
	data []byte
	pos  int
	base int64
	path []pathSeg
}

func (p *fastParser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

func (p *fastParser) tooLarge(off int, what string) error {
	return &DecodeError{Path: formatPath(p.path), Offset: p.base + int64(off), Err: tooLargeError(what)}
}

func (p *fastParser) value(depth int) (*jnode, error) {
	p.skipWS()
	start := p.pos
	n := &jnode{off: p.base + int64(start)}
	switch c := p.data[p.pos]; c {
	case '{', '[':
		if depth >= MaxDepth {
			return nil, p.tooLarge(start, fmt.Sprintf("nested deeper than %d levels", MaxDepth))
		}
		p.pos++
		closing := byte(']')
		n.kind = jArray
		if c == '{' {
			closing = '}'
			n.kind = jObject
		}
		for i := 0; ; i++ {
			p.skipWS()
			if p.data[p.pos] == closing {
				p.pos++
				return n, nil
			}
			if p.data[p.pos] == ',' {
				p.pos++
				p.skipWS()
			}
			if i == MaxArrayLen {
				if c == '{' {
					return nil, p.tooLarge(start, fmt.Sprintf("object has more than %d members", MaxArrayLen))
				}
				return nil, p.tooLarge(start, fmt.Sprintf("array has more than %d elements", MaxArrayLen))
			}
			if c == '[' {
				p.path = append(p.path, pathSeg{index: i, isIdx: true})
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				p.path = p.path[:len(p.path)-1]
				n.arr = append(n.arr, v)
				continue
			}
			key := p.str()
			p.skipWS()
			p.pos++ // ':'
			p.path = append(p.path, pathSeg{key: key})
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.path = p.path[:len(p.path)-1]
			n.obj = append(n.obj, jmember{key: key, val: v})
		}
	case '"':
		n.kind = jString
		n.s = p.str()
	case 't':
		n.kind, n.s = jBool, "true"
		p.pos += 4
	case 'f':
		n.kind, n.s = jBool, "false"
		p.pos += 5
	case 'n':
		n.kind = jNull
		p.pos += 4
	default:
		for p.pos < len(p.data) && strings.IndexByte("+-0123456789.eE", p.data[p.pos]) >= 0 {
			p.pos++
		}
		n.kind = jNumber
		n.s = string(p.data[start:p.pos])
	}
	return n, nil
}

// str reads a string literal at p.pos. Literals with escapes or invalid
// UTF-8 are decoded by encoding/json, so that they read exactly as it
// reads them (invalid bytes become U+FFFD).
func (p *fastParser) str() string {
	start := p.pos
	p.pos++
	escaped := false
	for {
		c := p.data[p.pos]
		if c == '\\' {
			escaped = true
			p.pos += 2
			continue
		}
		p.pos++
		if c == '"' {
			break
		}
	}
	lit := p.data[start:p.pos]
	body := lit[1 : len(lit)-1]
	if !escaped && utf8.Valid(body) {
		return string(body)
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return string(body) // cannot happen: the text was validated
	}
	return s
}

// treeParser builds a jnode tree with encoding/json's tokenizer. It is
// slow, and only used to locate syntax errors.
type treeParser struct {
	data []byte // the JSON text (after any BOM)
	base int64  // offset of data in the caller's input
	dec  *json.Decoder
	path []pathSeg
}

// slowParseTree parses data as parseTree does, with the tokenizer.
func slowParseTree(data []byte, base int64) (*jnode, int64, error) {
	p := &treeParser{data: data, base: base, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	n, err := p.value(0)
	if err != nil {
		return nil, 0, err
	}
	return n, p.dec.InputOffset(), nil
}

// next returns the next token and the offset of its first byte.
func (p *treeParser) next() (json.Token, int64, error) {
	off := p.dec.InputOffset()
	for off < int64(len(p.data)) {
		c := p.data[off]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != ',' && c != ':' {
			break
		}
		off++
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, off, p.syntaxError(err, off)
	}
	return tok, off, nil
}

func (p *treeParser) syntaxError(err error, off int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// The tokenizer's offsets are not all measured alike; the scanner
		// behind json.Unmarshal reports the first error of the text
		// consistently, just after the offending byte.
		var raw json.RawMessage
		if uerr := json.Unmarshal(p.data, &raw); errors.As(uerr, &se) {
			off = se.Offset
			if strings.HasPrefix(se.Error(), "invalid character") && off > 0 {
				off--
			}
		}
		return &DecodeError{Path: formatPath(p.path), Offset: p.base + off, Err: fmt.Errorf("%w: not JSON: %s", ErrInvalidReport, describeSyntaxError(se.Error(), p.data, off))}
	case errors.Is(err, io.EOF) && len(p.path) == 0 && len(bytes.TrimSpace(p.data)) == 0:
		return &DecodeError{Path: "$", Offset: p.base, Err: fmt.Errorf("%w: empty input", ErrInvalidReport)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Path: formatPath(p.path), Offset: p.base + int64(len(p.data)), Err: fmt.Errorf("%w: not JSON: unexpected end of input (truncated?)", ErrInvalidReport)}
	default:
		return &DecodeError{Path: formatPath(p.path), Offset: p.base + off, Err: fmt.Errorf("%w: not JSON: %w", ErrInvalidReport, err)}
	}
}

func describeSyntaxError(msg string, data []byte, off int64) string {
	msg = strings.TrimPrefix(msg, "json: ")
	if off >= 0 && off < int64(len(data)) {
		end := min(off+16, int64(len(data)))
		return fmt.Sprintf("%s near %q", msg, data[off:end])
	}
	return msg
}

func (p *treeParser) tooLarge(off int64, what string) error {
	return &DecodeError{Path: formatPath(p.path), Offset: p.base + off, Err: tooLargeError(what)}
}

func (p *treeParser) value(depth int) (*jnode, error) {
	tok, off, err := p.next()
	if err != nil {
		return nil, err
	}
	n := &jnode{off: p.base + off}
	switch t := tok.(type) {
	case nil:
		n.kind = jNull
	case bool:
		n.kind = jBool
		n.s = strconv.FormatBool(t)
	case json.Number:
		n.kind = jNumber
		n.s = string(t)
	case string:
		n.kind = jString
		n.s = t
	case json.Delim:
		if depth >= MaxDepth {
			return nil, p.tooLarge(off, fmt.Sprintf("nested deeper than %d levels", MaxDepth))
		}
		switch t {
		case '[':
			n.kind = jArray
			for p.dec.More() {
				if len(n.arr) == MaxArrayLen {
					return nil, p.tooLarge(off, fmt.Sprintf("array has more than %d elements", MaxArrayLen))
				}
				p.path = append(p.path, pathSeg{index: len(n.arr), isIdx: true})
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				p.path = p.path[:len(p.path)-1]
				n.arr = append(n.arr, v)
			}
		case '{':
			n.kind = jObject
			for p.dec.More() {
				if len(n.obj) == MaxArrayLen {
					return nil, p.tooLarge(off, fmt.Sprintf("object has more than %d members", MaxArrayLen))
				}
				ktok, _, err := p.next()
				if err != nil {
					return nil, err
				}
				key, _ := ktok.(string) // the tokenizer only returns strings here
				p.path = append(p.path, pathSeg{key: key})
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				p.path = p.path[:len(p.path)-1]
				n.obj = append(n.obj, jmember{key: key, val: v})
			}
		}
		// The closing delimiter.
		if _, _, err := p.next(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// limitError is a report over a limit: it is both ErrInvalidReport and
// ErrTooLarge, with one message.
type limitError struct{ what string }

func tooLargeError(what string) error { return &limitError{what: what} }

func (e *limitError) Error() string   { return "tlsrpt: invalid report: too large: " + e.what }
func (e *limitError) Unwrap() []error { return []error{ErrInvalidReport, ErrTooLarge} }
