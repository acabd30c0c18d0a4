package dmarcrpt

import (
	"bufio"
	"fmt"
	"io"
	"unicode/utf8"
)

// repair is the reader encoding/xml reads: the input, in UTF-8, with the
// damage real reports carry and the XML tokenizer refuses repaired, each
// repair recorded as a fix for the decoder to turn into a warning:
//   - bytes that are not UTF-8 and characters XML 1.0 §2.2 forbids (C0
//     controls) become U+FFFD;
//   - a "<" that does not begin markup (a start or end tag, comment,
//     CDATA section, processing instruction or declaration) becomes
//     "&lt;", as in <email><bad@example.net></email> and
//     <header_from>bad<xml.net</header_from>;
//   - a "&" that does not begin a reference (XML 1.0 §4.1: the five
//     predefined entities and character references) becomes "&amp;", as
//     in <org_name>AT&T</org_name>.
//
// It also bounds the length of every token (text, tag, comment), since
// encoding/xml holds a whole token in memory. It is an io.ByteReader, so
// encoding/xml reads it directly, without buffering ahead: what it has
// produced and not yet handed out is at most one window.
type repair struct {
	src     *bufio.Reader
	in      int64  // input bytes consumed (of the UTF-8 text, see convert)
	out     []byte // produced, handed out from r
	r       int
	outBase int64 // output offset of out[0]
	st      lexState
	depth   int   // [ ] nesting in a declaration
	run     int64 // bytes of the current token
	max     int64
	fixes   []fix        // recorded, drained by the decoder
	cps     []checkpoint // output to input offsets, from the current window on
	err     error        // sticky: io.EOF, a read error or a *DecodeError
	force   bool         // decide without more lookahead
	// plain[st][c] is plain(st, c): the bytes copied as they are in each
	// state (the attribute states by quote).
	plain [stDecl + 1][256]bool
}

type lexState uint8

const (
	stText  lexState = iota
	stTag            // inside <name ...> or </name ...>
	stAttr           // inside an attribute value quoted with "
	stAttrS          // inside an attribute value quoted with '
	stComment
	stCDATA
	stPI
	stDecl // <!DOCTYPE ...>
)

// fix is one repair: at output offset out, input offset in.
type fix struct {
	out, in int64
	msg     string
}

// checkpoint: from output offset out on, the input offset is in plus the
// distance from out.
type checkpoint struct{ out, in int64 }

const repairWindow = 16 << 10

func newRepair(src io.Reader, maxToken int64, skip int64) *repair {
	p := &repair{
		src: bufio.NewReaderSize(src, repairWindow),
		max: maxToken,
		cps: []checkpoint{{0, skip}},
		in:  skip,
	}
	for st := range p.plain {
		for c := range p.plain[st] {
			p.plain[st][c] = plain(lexState(st), byte(c))
		}
	}
	return p
}

// ReadByte hands out the next repaired byte.
func (p *repair) ReadByte() (byte, error) {
	if p.r >= len(p.out) {
		if p.fill(); p.r >= len(p.out) {
			return 0, p.err
		}
	}
	b := p.out[p.r]
	p.r++
	return b, nil
}

// Read hands out repaired bytes.
func (p *repair) Read(b []byte) (int, error) {
	if p.r >= len(p.out) {
		if p.fill(); p.r >= len(p.out) {
			return 0, p.err
		}
	}
	n := copy(b, p.out[p.r:])
	p.r += n
	return n, nil
}

// inputOffset maps an output offset at or after the start of the
// current window to an input offset.
func (p *repair) inputOffset(o int64) int64 {
	base := p.cps[0]
	for _, c := range p.cps[1:] {
		if c.out > o {
			break
		}
		base = c
	}
	return base.in + o - base.out
}

// fill produces the next window of output. It is called only when all
// of the previous one was handed out.
func (p *repair) fill() {
	p.outBase += int64(len(p.out))
	p.out, p.r = p.out[:0], 0
	// Keep the last checkpoint before the new window as its base.
	k := 0
	for k+1 < len(p.cps) && p.cps[k+1].out <= p.outBase {
		k++
	}
	p.cps = append(p.cps[:0], p.cps[k:]...)
	for len(p.out) < repairWindow/2 && p.err == nil {
		win, err := p.src.Peek(repairWindow)
		if len(win) == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			p.err = err
			return
		}
		atEOF := err != nil // what follows win is the end, or an error to see next time
		n := p.lex(win, atEOF)
		if _, err := p.src.Discard(n); err != nil {
			p.err = err
			return
		}
		p.in += int64(n)
		p.force = n == 0 && !atEOF
	}
}

func (p *repair) outOff() int64 { return p.outBase + int64(len(p.out)) }

// replace emits s for the n input bytes at win offset i, recording a fix.
func (p *repair) replace(s string, n int, i int, msg string) {
	p.fixes = append(p.fixes, fix{out: p.outOff(), in: p.in + int64(i), msg: msg})
	p.out = append(p.out, s...)
	if len(s) != n {
		p.cps = append(p.cps, checkpoint{out: p.outOff(), in: p.in + int64(i+n)})
	}
}

// plain reports whether c is copied as is in state st.
func plain(st lexState, c byte) bool {
	if c >= 0x80 || c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
		return false
	}
	switch st {
	case stText:
		return c != '<' && c != '&'
	case stTag:
		return c != '>' && c != '"' && c != '\''
	case stAttr:
		return c != '"' && c != '<' && c != '&'
	case stAttrS:
		return c != '\'' && c != '<' && c != '&'
	case stComment:
		return c != '-'
	case stCDATA:
		return c != ']'
	case stPI:
		return c != '?'
	default: // stDecl
		return c != '>' && c != '[' && c != ']'
	}
}

// lex repairs win into p.out and returns how many bytes it consumed; it
// stops early when a decision needs bytes beyond win and atEOF is false.
func (p *repair) lex(win []byte, atEOF bool) int {
	final := atEOF || p.force
	i := 0
	for i < len(win) && len(p.out) < repairWindow {
		j := i
		tab := &p.plain[p.st]
		for j < len(win) && tab[win[j]] {
			j++
		}
		p.out = append(p.out, win[i:j]...)
		p.run += int64(j - i)
		if p.run > p.max {
			// The offset of the first byte beyond the bound.
			p.err = &DecodeError{Offset: p.in + int64(j) - (p.run - p.max), Err: fmt.Errorf("%w: %w: an XML token longer than %d bytes", ErrInvalidReport, ErrTooLarge, p.max)}
			return j
		}
		i = j
		if i == len(win) {
			break
		}
		c := win[i]
		if c >= 0x80 || c < 0x20 {
			n, ok := p.char(win[i:], i, final)
			if !ok {
				return i
			}
			i += n
			p.run += int64(n)
			continue
		}
		n, ok := p.markup(win[i:], i, final)
		if !ok {
			return i
		}
		i += n
	}
	return i
}

// char copies or replaces the character at the start of b: a UTF-8
// sequence or a control character.
func (p *repair) char(b []byte, i int, final bool) (int, bool) {
	c := b[0]
	if c < 0x80 { // a control character other than tab, CR, LF
		p.replace("\uFFFD", 1, i, fmt.Sprintf("control character U+%04X is not allowed in XML (XML 1.0 §2.2); replaced by U+FFFD", c))
		return 1, true
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 {
		if !utf8.FullRune(b) && !final {
			return 0, false
		}
		p.replace("\uFFFD", 1, i, fmt.Sprintf("invalid UTF-8 byte 0x%02x; replaced by U+FFFD", c))
		return 1, true
	}
	if r == 0xFFFE || r == 0xFFFF {
		p.replace("\uFFFD", size, i, fmt.Sprintf("character U+%04X is not allowed in XML (XML 1.0 §2.2); replaced by U+FFFD", r))
		return size, true
	}
	p.out = append(p.out, b[:size]...)
	return size, true
}

// markup handles a byte with a meaning in the current state.
func (p *repair) markup(b []byte, i int, final bool) (int, bool) {
	c := b[0]
	switch p.st {
	case stText:
		if c == '&' {
			return p.reference(b, i, final)
		}
		return p.open(b, i, final)
	case stTag:
		p.out = append(p.out, c)
		switch c {
		case '>':
			p.st, p.run = stText, 0
		case '"':
			p.st = stAttr
		default:
			p.st = stAttrS
		}
		return 1, true
	case stAttr, stAttrS:
		switch c {
		case '"', '\'':
			p.out = append(p.out, c)
			p.st = stTag
			return 1, true
		case '&':
			return p.reference(b, i, final)
		}
		p.replace("&lt;", 1, i, `unescaped "<" in an attribute value; read as "&lt;"`)
		return 1, true
	case stComment:
		return p.close(b, "-->", final)
	case stCDATA:
		return p.close(b, "]]>", final)
	case stPI:
		return p.close(b, "?>", final)
	}
	// stDecl
	p.out = append(p.out, c)
	switch {
	case c == '[':
		p.depth++
	case c == ']':
		p.depth--
	case p.depth <= 0:
		p.st, p.run, p.depth = stText, 0, 0
	}
	return 1, true
}

// close ends a comment, CDATA section or processing instruction at end.
func (p *repair) close(b []byte, end string, final bool) (int, bool) {
	if len(b) < len(end) && !final {
		return 0, false
	}
	if len(b) >= len(end) && string(b[:len(end)]) == end {
		p.out = append(p.out, end...)
		p.st, p.run = stText, 0
		return len(end), true
	}
	p.out = append(p.out, b[0])
	return 1, true
}

// open decides whether "<" begins markup, and escapes it when not.
func (p *repair) open(b []byte, i int, final bool) (int, bool) {
	need := func() (int, bool) {
		if final {
			// The input ends inside markup: left to the tokenizer, which
			// reports the truncation.
			p.out = append(p.out, b...)
			return len(b), true
		}
		return 0, false
	}
	if len(b) < 2 {
		return need()
	}
	switch c := b[1]; {
	case c == '?':
		p.out = append(p.out, "<?"...)
		p.st, p.run = stPI, 2
		return 2, true
	case c == '!':
		for _, m := range [...]struct {
			prefix string
			st     lexState
		}{{"<!--", stComment}, {"<![CDATA[", stCDATA}} {
			if len(b) < len(m.prefix) && string(b) == m.prefix[:len(b)] {
				return need()
			}
			if len(b) >= len(m.prefix) && string(b[:len(m.prefix)]) == m.prefix {
				p.out = append(p.out, m.prefix...)
				p.st, p.run = m.st, int64(len(m.prefix))
				return len(m.prefix), true
			}
		}
		if len(b) < 3 {
			return need()
		}
		if isNameStart(b[2]) {
			p.out = append(p.out, "<!"...)
			p.st, p.run, p.depth = stDecl, 2, 0
			return 2, true
		}
	case c == '/':
		if len(b) < 3 {
			return need()
		}
		if isNameStart(b[2]) {
			p.out = append(p.out, '<')
			p.st, p.run = stTag, 1
			return 1, true
		}
	case isNameStart(c):
		j := 2
		for j < len(b) && isNameByte(b[j]) {
			j++
		}
		if j == len(b) && !final {
			return 0, false
		}
		if j == len(b) || isSpace(b[j]) || b[j] == '>' || b[j] == '/' {
			p.out = append(p.out, '<')
			p.st, p.run = stTag, 1
			return 1, true
		}
	}
	next := b[1:min(len(b), 12)]
	p.replace("&lt;", 1, i, fmt.Sprintf(`unescaped "<" before %q (not a tag); read as "&lt;"`, clipBytes(next)))
	return 1, true
}

// reference decides whether "&" begins a reference (XML 1.0 §4.1), and
// escapes it when not.
func (p *repair) reference(b []byte, i int, final bool) (int, bool) {
	j := 1
	for j < len(b) && j <= 32 && b[j] != ';' && (isNameByte(b[j]) || b[j] == '#') {
		j++
	}
	if j == len(b) && j <= 32 && !final {
		return 0, false
	}
	if j < len(b) && b[j] == ';' && validReference(string(b[1:j])) {
		p.out = append(p.out, b[:j+1]...)
		p.run += int64(j + 1)
		return j + 1, true
	}
	what := `unescaped "&"`
	if j < len(b) && b[j] == ';' && j > 1 {
		what = fmt.Sprintf("unknown entity &%s; (XML 1.0 §4.6 predefines only lt, gt, amp, apos, quot)", clipBytes(b[1:j]))
	}
	p.replace("&amp;", 1, i, what+`; kept as text`)
	return 1, true
}

func validReference(name string) bool {
	switch name {
	case "lt", "gt", "amp", "apos", "quot":
		return true
	}
	if len(name) < 2 || name[0] != '#' {
		return false
	}
	var r rune
	digits := name[1:]
	base := rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if digits == "" || len(digits) > 8 {
		return false
	}
	for _, c := range []byte(digits) {
		var d rune
		switch {
		case '0' <= c && c <= '9':
			d = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return false
		}
		r = r*base + d
	}
	return isXMLChar(r)
}

// isXMLChar: XML 1.0 §2.2 Char.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func isNameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

func isNameByte(c byte) bool {
	return isNameStart(c) || '0' <= c && c <= '9' || c == '-' || c == '.'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func clipBytes(b []byte) string {
	if len(b) > 10 {
		b = b[:10]
	}
	return string(b)
}
