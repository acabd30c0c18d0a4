package dmarcrpt

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Options bound the decoder. The zero value means the defaults.
type Options struct {
	// MaxTokenSize bounds one XML token (a text, a tag with its
	// attributes, a comment), in bytes: 1 MiB when ≤ 0. The decoder holds
	// at most a few tokens, so this bounds its memory.
	MaxTokenSize int64
	// MaxRecords bounds the number of records; 0 or less means no limit
	// (the decoder streams them in constant memory). More gives
	// ErrTooLarge.
	MaxRecords int64
	// MaxListLen bounds each list in the report (error, reason, dkim, spf,
	// extension elements): 1000 when ≤ 0. Entries beyond it are skipped
	// with a warning (RFC 9990 §3.1.3: a report SHOULD contain no more
	// than 100 signatures per row).
	MaxListLen int
	// MaxWarnings bounds the warnings kept: 1000 when ≤ 0. Further
	// warnings are counted, and one last warning says how many were left
	// out.
	MaxWarnings int
}

func (o Options) withDefaults() Options {
	if o.MaxTokenSize <= 0 {
		o.MaxTokenSize = 1 << 20
	}
	if o.MaxListLen <= 0 {
		o.MaxListLen = 1000
	}
	if o.MaxWarnings <= 0 {
		o.MaxWarnings = 1000
	}
	return o
}

// Decode reads one aggregate report from r (uncompressed XML: see Open
// and Extract for files and mail), calling each for every record in
// order, and returns the report (its header, and the record and message
// counts) and the warnings. It reads in constant memory whatever the
// number of records: each *Record is the caller's to keep or drop.
//
// An error of each stops the decoding and is returned as is. An input
// that cannot be read as a report gives a *DecodeError wrapping
// ErrInvalidReport; the records already passed to each then belong to an
// invalid report, and the caller should discard them. Warnings are
// returned also with an error.
func Decode(r io.Reader, opts Options, each func(*Record) error) (rep *Report, warns []Warning, err error) {
	d := NewDecoder(r, opts)
	if _, err := d.Header(); err != nil {
		return nil, d.Warnings(), err
	}
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			return d.report, d.Warnings(), nil
		}
		if err != nil {
			return nil, d.Warnings(), err
		}
		if each != nil {
			if err := each(rec); err != nil {
				return nil, d.Warnings(), err
			}
		}
	}
}

// Decoder reads an aggregate report as a stream: Header, then Next until
// io.EOF. It is not safe for concurrent use.
type Decoder struct {
	opts     Options
	src      io.Reader
	x        *xml.Decoder
	rp       *repair
	cs       charset
	started  bool
	report   *Report
	warns    []Warning
	omitted  int
	stack    []elem
	level    int // depth of <feedback> in the stack; 0 before it is found
	state    decState
	pending  bool // a <record> start was read and waits for Next
	seen     topSeen
	records  int64
	err      error // sticky
	prefixes map[string]bool
	similar  map[warnKey]*similar
	overflow []*similar // the kinds of warnings that had more than maxSimilar, in order
}

// maxSimilar is how many warnings of one kind (the same path but for
// record and list positions, the same message but for numbers) are kept;
// a report with the same fault in every record gets one summary for the
// rest.
const maxSimilar = 10

type warnKey struct{ shape, msg string }

type similar struct {
	path, msg string // the first one
	n         int
}

type decState uint8

const (
	stBefore  decState = iota // <feedback> not found yet
	stInside                  // reading the children of <feedback>
	stRecords                 // a record was read
	stDone                    // </feedback> read, or an error
)

// topSeen records which first-level elements were read.
type topSeen struct {
	version, metadata, policy, extension bool
}

// elem is an open element.
type elem struct {
	prefix, local string // as written
	// In paths: name when set (the local name as read), otherwise
	// prefix:local as written; then "[index]" when index ≥ 0.
	name  string
	index int
	attrs []xml.Attr
}

// attr returns the value of the unprefixed attribute name.
func (e *elem) attr(name string) string {
	for _, a := range e.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// NewDecoder returns a decoder of the report r holds.
func NewDecoder(r io.Reader, opts Options) *Decoder {
	return &Decoder{opts: opts.withDefaults(), src: r, report: &Report{}}
}

// Warnings returns the warnings so far, in the order of the input; at
// most maxSimilar of each kind, then one that counts the others of the
// kind; at most Options.MaxWarnings in all, then one that counts the
// rest.
func (d *Decoder) Warnings() []Warning {
	out := d.warns[:len(d.warns):len(d.warns)]
	for _, s := range d.overflow {
		out = append(out, Warning{Path: s.path, Message: fmt.Sprintf("%d more warnings like this one at other positions left out: %s", s.n-maxSimilar, s.msg)})
	}
	if d.omitted > 0 {
		out = append(out, Warning{Message: fmt.Sprintf("%d more warnings left out", d.omitted)})
	}
	return out
}

// Report returns the report: its header after Header, and with the
// record and message counts once Next returned io.EOF. Elements found
// after the records (a report_metadata at the end) are added as they are
// read.
func (d *Decoder) Report() *Report { return d.report }

// Header reads the report up to its first record and returns the report
// read so far: namespace, version, metadata, policy published and
// extension. Its errors are those of Decode.
func (d *Decoder) Header() (rep *Report, err error) {
	defer d.recover(&err)
	if err := d.header(); err != nil {
		return nil, err
	}
	return d.report, nil
}

// Next returns the next record, or io.EOF after the last one. The
// record is the caller's. Its errors are those of Decode.
func (d *Decoder) Next() (rec *Record, err error) {
	defer d.recover(&err)
	if err := d.header(); err != nil {
		return nil, err
	}
	return d.next()
}

func (d *Decoder) recover(err *error) {
	if p := recover(); p != nil {
		d.err = &DecodeError{Path: d.path(), Err: fmt.Errorf("%w: %w: %v", ErrInvalidReport, errInternal, p)}
		d.state = stDone
		*err = d.err
	}
}

func (d *Decoder) warn(path, msg string) {
	if d.similar == nil {
		d.similar = map[warnKey]*similar{}
	}
	k := warnKey{shape(path, true), shape(msg, false)}
	s := d.similar[k]
	if s == nil && len(d.similar) < 2*d.opts.MaxWarnings {
		s = &similar{path: path, msg: msg}
		d.similar[k] = s
	}
	if s != nil {
		if s.n++; s.n > maxSimilar {
			if s.n == maxSimilar+1 {
				d.overflow = append(d.overflow, s)
			}
			return
		}
	}
	if len(d.warns) >= d.opts.MaxWarnings {
		d.omitted++
		return
	}
	d.warns = append(d.warns, Warning{Path: path, Message: msg})
}

// shape removes the numbers of a path's positions ("[12]") or of a
// message.
func shape(s string, path bool) string {
	var b []byte
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' && (!path || i > 0 && (s[i-1] == '[' || digits)) {
			if !digits {
				b = append(b, '#')
			}
			digits = true
			continue
		}
		digits = false
		b = append(b, c)
	}
	return string(b)
}

// warnHere warns about the current element.
func (d *Decoder) warnHere(msg string) { d.warn(d.path(), msg) }

// path is the path of the current element.
func (d *Decoder) path() string {
	var b strings.Builder
	for i, e := range d.stack {
		if i > 0 {
			b.WriteByte('/')
		}
		switch {
		case e.name != "":
			b.WriteString(e.name)
		case e.prefix != "":
			b.WriteString(e.prefix)
			b.WriteByte(':')
			fallthrough
		default:
			b.WriteString(e.local)
		}
		if e.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// start sets up the tokenizer on the first call.
func (d *Decoder) start() {
	if d.started {
		return
	}
	d.started = true
	br := bufio.NewReaderSize(d.src, 4096)
	head, _ := br.Peek(1024)
	d.cs = sniffCharset(head)
	if d.cs.bom > 0 {
		_, _ = br.Discard(d.cs.bom)
	}
	skip := int64(d.cs.bom)
	in := d.cs.reader(br)
	if in != io.Reader(br) {
		skip = 0 // offsets count bytes of the conversion
	}
	d.rp = newRepair(in, d.opts.MaxTokenSize, skip)
	d.x = xml.NewDecoder(d.rp)
	// The repair reader has already made the input UTF-8; the declared
	// encoding is read as is.
	d.x.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if d.cs.unknown {
		d.warn("", fmt.Sprintf("the XML declaration names encoding %q, which is not supported; read as UTF-8", clip(d.cs.declared)))
	}
}

// fail makes err the decoder's sticky error, as a *DecodeError at the
// current position.
func (d *Decoder) fail(err error) error {
	var de *DecodeError
	if !errors.As(err, &de) {
		de = &DecodeError{Err: err}
	}
	if de.Path == "" {
		de.Path = d.path()
	}
	if de.Offset == 0 && d.x != nil {
		de.Offset = d.rp.inputOffset(d.x.InputOffset())
		de.Line, _ = d.x.InputPos()
	}
	d.err, d.state = de, stDone
	return de
}

func (d *Decoder) failf(format string, args ...any) error {
	return d.fail(fmt.Errorf("%w: %s", ErrInvalidReport, fmt.Sprintf(format, args...)))
}

// token returns the next token, with the stack updated, the repairs of
// the repair reader turned into warnings, and errors as *DecodeError.
// The end of the input is io.EOF.
func (d *Decoder) token() (xml.Token, error) {
	if d.err != nil {
		return nil, d.err
	}
	tok, err := d.x.RawToken()
	if err != nil {
		if errors.Is(err, io.EOF) && d.rp.err != nil && !errors.Is(d.rp.err, io.EOF) {
			err = d.rp.err // the repair reader's own error: a limit or a read error
		}
		if errors.Is(err, io.EOF) {
			d.drainFixes()
			return nil, io.EOF
		}
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, d.fail(de)
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			if strings.HasPrefix(se.Msg, "unexpected EOF") {
				return nil, d.failf("the input ends inside a tag: the report is truncated")
			}
			return nil, d.failf("XML syntax error the decoder cannot repair: %s", se.Msg)
		}
		return nil, d.fail(fmt.Errorf("%w: %w", ErrInvalidReport, err))
	}
	switch t := tok.(type) {
	case xml.StartElement:
		d.push(t)
		d.drainFixes()
	case xml.EndElement:
		d.drainFixes()
		d.pop(t)
	default:
		d.drainFixes()
	}
	return tok, nil
}

// drainFixes turns the repairs made up to the tokenizer's position into
// warnings at the current element.
func (d *Decoder) drainFixes() {
	if len(d.rp.fixes) == 0 {
		return
	}
	pos := d.x.InputOffset()
	n := 0
	for _, f := range d.rp.fixes {
		if f.out >= pos {
			break
		}
		d.warnHere(fmt.Sprintf("%s (byte %d)", f.msg, f.in))
		n++
	}
	d.rp.fixes = append(d.rp.fixes[:0], d.rp.fixes[n:]...)
}

func (d *Decoder) push(t xml.StartElement) {
	d.stack = append(d.stack, elem{prefix: t.Name.Space, local: t.Name.Local, index: -1, attrs: t.Attr})
}

// pop closes the element t ends. An end tag that closes an element
// further down closes the ones above it too (they were left unclosed);
// one that closes nothing open is ignored. Both are warned about.
func (d *Decoder) pop(t xml.EndElement) {
	for i := len(d.stack) - 1; i >= 0; i-- {
		if d.stack[i].prefix == t.Name.Space && d.stack[i].local == t.Name.Local {
			for j := len(d.stack) - 1; j > i; j-- {
				d.warn(d.pathTo(j+1), fmt.Sprintf("<%s> not closed before </%s>; closed there", qname(d.stack[j].prefix, d.stack[j].local), qname(t.Name.Space, t.Name.Local)))
			}
			d.stack = d.stack[:i]
			return
		}
	}
	d.warnHere(fmt.Sprintf("end tag </%s> without a start tag; ignored", qname(t.Name.Space, t.Name.Local)))
}

// pathTo is the path of the element at depth n. It may be called for an
// element that has just ended, before anything else is pushed: the stack
// keeps the entries it popped until they are overwritten.
func (d *Decoder) pathTo(n int) string {
	saved := d.stack
	d.stack = d.stack[:n:cap(d.stack)]
	p := d.path()
	d.stack = saved
	return p
}

// warnEnded warns about the element at depth level, which has just ended.
func (d *Decoder) warnEnded(level int, msg string) { d.warn(d.pathTo(level), msg) }

func qname(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// namespace resolves the prefix of the element at depth i (from 1).
func (d *Decoder) namespace(i int) (uri string, declared bool) {
	prefix := d.stack[i-1].prefix
	if prefix == "xml" {
		return "http://www.w3.org/XML/1998/namespace", true
	}
	for j := i - 1; j >= 0; j-- {
		for _, a := range d.stack[j].attrs {
			if prefix == "" && a.Name.Space == "" && a.Name.Local == "xmlns" || prefix != "" && a.Name.Space == "xmlns" && a.Name.Local == prefix {
				return a.Value, true
			}
		}
	}
	return prefix, prefix == ""
}

// child returns the next child element of the element at depth level,
// whose handler calls it; ok is false once that element has ended. Text
// between child elements is warned about and ignored.
func (d *Decoder) child(level int) (local string, ok bool, err error) {
	for len(d.stack) >= level {
		tok, err := d.token()
		if err != nil {
			return "", false, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(d.stack) == level+1 {
				return t.Name.Local, true, nil
			}
		case xml.CharData:
			if len(d.stack) == level {
				if s := strings.TrimSpace(string(t)); s != "" {
					d.warnHere(fmt.Sprintf("text %q between elements; ignored", clip(s)))
				}
			}
		}
	}
	return "", false, nil
}

// text reads the character data of the element at depth level (just
// pushed) up to its end; elements inside it are skipped with a warning.
func (d *Decoder) text(level int) (string, error) {
	var b []byte
	for len(d.stack) >= level {
		tok, err := d.token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(d.stack) == level && int64(len(b)) < d.opts.MaxTokenSize {
				b = append(b, t...)
			}
		case xml.StartElement:
			if len(d.stack) == level+1 {
				d.warnHere("element inside a value element; skipped")
				if err := d.skip(level + 1); err != nil {
					return "", err
				}
			}
		}
	}
	return string(b), nil
}

// skip reads up to the end of the element at depth level.
func (d *Decoder) skip(level int) error {
	for len(d.stack) >= level {
		if _, err := d.token(); err != nil {
			return err
		}
	}
	return nil
}

// name returns the local name of the element at depth level, lower-cased
// with a warning when written otherwise.
func (d *Decoder) name(level int) string {
	local := d.stack[level-1].local
	d.stack[level-1].name = local
	if lower := strings.ToLower(local); lower != local {
		d.stack[level-1].name = lower
		d.warnHere(fmt.Sprintf("element name written <%s>; read as <%s>", local, lower))
		return lower
	}
	return local
}

// foreign reports whether the element at depth level belongs to another
// namespace than DMARC's: an extension (RFC 9990 §5). Undeclared
// prefixes (ns1:, xs:) are read as DMARC elements, with one warning per
// prefix.
func (d *Decoder) foreign(level int) bool {
	uri, declared := d.namespace(level)
	if !declared {
		if d.prefixes == nil {
			d.prefixes = map[string]bool{}
		}
		if !d.prefixes[uri] && len(d.prefixes) < 64 {
			d.prefixes[uri] = true
			d.warnHere(fmt.Sprintf("namespace prefix %q is not declared; the element is read as a DMARC element", uri))
		}
		return false
	}
	return uri != "" && uri != d.report.Namespace && uri != NamespaceRFC7489 && uri != NamespaceRFC9990
}

// setIndex labels the element at depth level as the i-th of its name.
func (d *Decoder) setIndex(level int, i int) {
	d.stack[level-1].index = i
}
