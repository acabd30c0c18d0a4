// Package mailmime reads report e-mails leniently, the way they arrive
// rather than the way RFC 2045 and RFC 2046 describe them: it walks the
// MIME tree (multiparts, and attached messages when asked), undoes
// Content-Transfer-Encoding, and decodes the header fields reports are
// filed by (RFC 5322 From and Date, RFC 2047 encoded words). Broken input
// never makes it fail: what cannot be read is skipped and noted.
//
// It is shared by tlsrpt (RFC 8460 §5.3 report mail) and dmarcrpt
// (RFC 7489 §7.2.1.1 aggregate report mail, RFC 6591 failure reports),
// on top of github.com/emersion/go-message's textproto package.
package mailmime

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Limits of the walk.
const (
	MaxParts = 1000 // leaves and containers visited in one message
	MaxDepth = 16   // nested multiparts and attached messages
)

// Part is a leaf of a message's MIME tree.
type Part struct {
	// Path is the part number as IMAP writes it (RFC 3501 §6.4.5): "1"
	// for the body of a message that is not multipart, "2" for the
	// second part of a multipart, "2.1" for the first part of the
	// multipart (or the body) of an attached message that is part 2.
	Path   string
	Header textproto.Header
	// MediaType is lower-case, without parameters; "" when the part has
	// no Content-Type (text/plain by RFC 2045 §5.2).
	MediaType string
	Params    map[string]string // Content-Type parameters, lower-case names
	Filename  string            // Content-Disposition filename, else Content-Type name; decoded
	// Encoding is the Content-Transfer-Encoding as written, lower-case.
	Encoding string
	// Body is the body with its transfer encoding undone (base64,
	// quoted-printable); other encodings are kept as they are. With
	// Options.MaxBody it is at most that many first bytes of it.
	Body []byte
	// Cut: Body is only the first Options.MaxBody bytes of a longer body.
	Cut bool
	// Top: the part is the body of the message itself, not a part of a
	// multipart nor of an attached message.
	Top bool
}

// Options of Walk.
type Options struct {
	// ExpandMessages makes Walk descend into message/rfc822 and
	// message/global parts (forwarded reports); otherwise they are leaves
	// whose Body is the attached message.
	ExpandMessages bool
	// MaxBody, when positive, keeps only the first MaxBody bytes of each
	// leaf's decoded body (Part.Cut says one was longer), decoding no more
	// base64 than that: for a quick look at what parts hold. Attached
	// messages are still read whole to walk them.
	MaxBody int
}

// ReadHeader reads the header of a message and returns it with a reader
// of the body. A header that does not parse gives an error; a message
// without a body gives an empty body.
func ReadHeader(raw []byte) (textproto.Header, *bufio.Reader, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return textproto.Header{}, nil, err
	}
	return h, br, nil
}

// Walk calls visit for each leaf of the MIME tree of a message (header h,
// body), in order, and returns notes on what could not be read: a
// multipart cut short, nesting deeper than MaxDepth, more than MaxParts
// parts. A multipart without its final boundary keeps the parts read;
// base64 with stray characters or missing padding is decoded; an unknown
// transfer encoding leaves the body as it is.
func Walk(h textproto.Header, body io.Reader, opts Options, visit func(*Part)) (notes []string) {
	w := &walker{opts: opts, visit: visit}
	w.walk(h, body, 0, "", true, true)
	return w.notes
}

type walker struct {
	opts    Options
	buf     bytes.Buffer // readHead's, reused
	visit   func(*Part)
	visited int
	notes   []string
}

// walk visits an entity. prefix is its part number, or its parent
// message's part number when msgBody (the body of a message: a leaf there
// is prefix.1, or "1" at the top).
func (w *walker) walk(h textproto.Header, body io.Reader, depth int, prefix string, msgBody, top bool) {
	w.visited++
	if w.visited > MaxParts {
		if w.visited == MaxParts+1 {
			w.notes = append(w.notes, fmt.Sprintf("stopped after %d parts", MaxParts))
		}
		return
	}
	mt, params := ContentType(h)
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		if depth >= MaxDepth {
			w.notes = append(w.notes, fmt.Sprintf("multipart nested deeper than %d levels skipped", MaxDepth))
			return
		}
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for i := 1; w.visited <= MaxParts; i++ {
			p, err := mr.NextPart()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					w.notes = append(w.notes, fmt.Sprintf("%s: %v", mt, err))
				}
				return
			}
			w.walk(p.Header, p, depth+1, join(prefix, i), false, false)
		}
	case w.opts.ExpandMessages && (mt == "message/rfc822" || mt == "message/global"):
		if depth >= MaxDepth {
			w.notes = append(w.notes, fmt.Sprintf("attached message nested deeper than %d levels skipped", MaxDepth))
			return
		}
		data := w.readBody(h, body)
		ih, br, err := ReadHeader(data)
		if err != nil {
			w.notes = append(w.notes, fmt.Sprintf("%s part %s: header unreadable: %v", mt, leafPath(prefix, msgBody), err))
			return
		}
		w.walk(ih, br, depth+1, leafPath(prefix, msgBody), true, false)
	default:
		enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
		p := &Part{
			Path: leafPath(prefix, msgBody), Header: h, MediaType: mt, Params: params,
			Filename: Filename(h, params), Encoding: enc, Top: top,
		}
		if w.opts.MaxBody > 0 {
			p.Body, p.Cut = w.readHead(enc, body, w.opts.MaxBody)
		} else {
			p.Body = w.readBody(h, body)
		}
		w.visit(p)
	}
}

func join(prefix string, i int) string {
	if prefix == "" {
		return strconv.Itoa(i)
	}
	return prefix + "." + strconv.Itoa(i)
}

func leafPath(prefix string, msgBody bool) string {
	if msgBody {
		return join(prefix, 1)
	}
	return prefix
}

// readBody reads a leaf body and undoes its Content-Transfer-Encoding.
// A body cut short (a multipart missing its final boundary) keeps what
// was read.
func (w *walker) readBody(h textproto.Header, body io.Reader) []byte {
	raw, err := io.ReadAll(body)
	if err != nil {
		w.notes = append(w.notes, fmt.Sprintf("body cut short: %v", err))
	}
	return DecodeTransfer(h.Get("Content-Transfer-Encoding"), raw)
}

// readHead reads a leaf body and returns at most its first limit bytes,
// transfer-decoded, and whether the body was longer. It reads no more of
// the body than that takes (the multipart reader skips the rest): limit+1
// bytes of an unencoded body, base64 until it decodes to more than limit
// bytes, a quoted-printable body whole. The encoded body is read into a
// buffer the walk reuses; what is returned is a copy.
func (w *walker) readHead(encoding string, body io.Reader, limit int) ([]byte, bool) {
	w.buf.Reset()
	var dec []byte
	var err error
	switch encoding {
	case "base64":
		// Four letters per three bytes, and a line break per 76 letters
		// (RFC 2045 §6.8); more is read when lines are shorter or stray
		// characters are skipped. A prefix of the body decodes to a prefix
		// of its decoding (DecodeBase64Prefix).
		want := int64((limit+1+2)/3*4 + (limit+1)/57*2 + 64)
		w.buf.Grow(int(want))
		for {
			var n int64
			n, err = io.CopyN(&w.buf, body, want)
			dec = DecodeBase64Prefix(w.buf.Bytes(), limit+1) // one more: was there more?
			if len(dec) > limit || err != nil || n < want {
				break
			}
			want = int64(w.buf.Len())
		}
	case "quoted-printable":
		_, err = w.buf.ReadFrom(body)
		dec = DecodeTransfer(encoding, w.buf.Bytes())
	default:
		w.buf.Grow(limit + 1)
		_, err = io.CopyN(&w.buf, body, int64(limit)+1)
		dec = w.buf.Bytes()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		w.notes = append(w.notes, fmt.Sprintf("body cut short: %v", err))
	}
	cut := len(dec) > limit
	dec = dec[:min(len(dec), limit)]
	if encoding != "base64" {
		dec = bytes.Clone(dec) // not the reused buffer
	}
	return dec, cut
}

// DecodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 §6):
// base64 (leniently, see DecodeBase64) and quoted-printable (kept as is
// when it does not decode); 7bit, 8bit, binary and unknown encodings
// return raw.
func DecodeTransfer(encoding string, raw []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		return DecodeBase64(raw)
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return raw
		}
		return out
	}
	return raw
}

// DecodeBase64 decodes base64 (RFC 2045 §6.8) leniently: characters
// outside the alphabet (line breaks, indentation, garbage) are skipped,
// padding may be missing, and padded chunks may follow each other.
func DecodeBase64(raw []byte) []byte {
	return DecodeBase64Prefix(raw, -1)
}

// DecodeBase64Prefix is DecodeBase64 of no more of raw than it takes to
// decode n bytes: its result is a prefix of DecodeBase64(raw), n bytes
// long or longer (shorter only when raw decodes to fewer). n < 0 decodes
// all of raw.
func DecodeBase64Prefix(raw []byte, n int) []byte {
	size := len(raw)
	if n >= 0 {
		size = min(size, n/3*4+16)
	}
	clean := make([]byte, 0, size)
	done, letters := 0, 0 // bytes of the chunks ended by '=', letters of the current chunk
scan:
	for _, c := range raw {
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/':
			if n >= 0 && done+letters*6/8 >= n {
				break scan
			}
			letters++
			clean = append(clean, c)
		case c == '=':
			done += letters * 6 / 8 // a lone sextet (letters%4 == 1) carries no byte
			letters = 0
			clean = append(clean, c)
		}
	}
	var out []byte
	for len(clean) > 0 {
		end := bytes.IndexByte(clean, '=')
		chunk := clean
		if end >= 0 {
			chunk = clean[:end]
			for end < len(clean) && clean[end] == '=' {
				end++
			}
			clean = clean[end:]
		} else {
			clean = nil
		}
		if len(chunk)%4 == 1 {
			chunk = chunk[:len(chunk)-1] // a lone sextet carries no byte
		}
		dec := make([]byte, base64.RawStdEncoding.DecodedLen(len(chunk)))
		n, _ := base64.RawStdEncoding.Decode(dec, chunk)
		out = append(out, dec[:n]...)
	}
	return out
}

// ContentType returns the lower-case media type of h's Content-Type and
// its parameters, leniently: a value mime.ParseMediaType rejects still
// gives its type. Params is never nil.
func ContentType(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && mt == "" {
		t, _, _ := strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(t))
	}
	if params == nil {
		params = map[string]string{}
	}
	return mt, params
}

// Filename returns a part's file name: the Content-Disposition filename
// parameter, else the Content-Type name parameter (ctParams), decoded
// (RFC 2047, RFC 2231) with whitespace collapsed.
func Filename(h textproto.Header, ctParams map[string]string) string {
	if v := h.Get("Content-Disposition"); v != "" {
		if _, p, err := mime.ParseMediaType(v); err == nil || p != nil {
			if f := p["filename"]; f != "" {
				return Collapse(DecodeText(f))
			}
		}
	}
	return Collapse(DecodeText(ctParams["name"]))
}

// DecodeText decodes RFC 2047 encoded words; text in an unknown charset
// is kept as written.
func DecodeText(s string) string {
	dec := mime.WordDecoder{}
	if out, err := dec.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

// Collapse trims s and replaces each run of whitespace by one space,
// which also unfolds folded header fields.
func Collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Address returns the address of the first mailbox of an address-list
// field (From, To), or the field decoded and collapsed when it does not
// parse.
func Address(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	p := mail.AddressParser{}
	if list, err := p.ParseList(v); err == nil && len(list) > 0 {
		return list[0].Address
	}
	return Collapse(DecodeText(v))
}

// dateLayouts are Date forms net/mail does not accept but senders use.
var dateLayouts = [...]string{
	"Mon, Jan 02 2006 15:04:05 -0700", // RFC 8460 §5.3.1's example
	"Mon, 2 Jan 2006 15:04:05 -0700 (MST)",
	time.RFC3339,
}

// Date parses an RFC 5322 §3.3 date-time, and a few forms senders use
// instead, to UTC; the zero time when it does not parse.
func Date(v string) time.Time {
	v = Collapse(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC()
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ReportSubject reads the Subject of a report message, the form RFC 9990
// §3.5.2 (DMARC aggregate reports) and RFC 8460 §5.3 (TLS-RPT) share:
// "Report Domain: <domain> Submitter: <domain> Report-ID: <id>". It is
// lenient: the keywords are case-insensitive and may be preceded by other
// text ("[Preview] ", "Fwd: ", "Dmarc Aggregate "); a value may be
// followed by ";" or "," (Mail.ru) or enclosed in braces, spaces
// included (Amazon SES: "{Amazon SES}"); the Report-ID may lack its angle
// brackets (Microsoft). Domains are lower-cased without a trailing dot.
// ok is false when the domain or the report ID is missing.
func ReportSubject(subject string) (domain, submitter, reportID string, ok bool) {
	words := strings.Fields(subject)
	take := func(i int, key string) (string, int) {
		v := words[i][len(key):]
		if v == "" && i+1 < len(words) {
			i++
			v = words[i]
		}
		if strings.HasPrefix(v, "{") {
			for !strings.Contains(v, "}") && i+1 < len(words) {
				i++
				v += " " + words[i]
			}
			v, _, _ = strings.Cut(v[1:], "}")
		}
		return strings.TrimRight(v, ";,"), i
	}
	domainOf := func(v string) string {
		return strings.TrimRight(strings.ToLower(strings.TrimSpace(v)), ".")
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case hasPrefixFold(w, "Domain:") && domain == "":
			domain, i = take(i, "Domain:")
			domain = domainOf(domain)
		case hasPrefixFold(w, "Submitter:") && submitter == "":
			submitter, i = take(i, "Submitter:")
			submitter = domainOf(submitter)
		case hasPrefixFold(w, "Report-ID:") && reportID == "":
			reportID, i = take(i, "Report-ID:")
			reportID = strings.TrimSuffix(strings.TrimPrefix(reportID, "<"), ">")
		}
	}
	return domain, submitter, reportID, domain != "" && reportID != ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
