package tlsrpt

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
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Limits of the MIME walk.
const (
	maxMIMEParts = 1000 // leaves and containers visited in one message
	maxMIMEDepth = 16   // nested multiparts and message/rfc822 parts
)

// Message is a report e-mail (RFC 8460 §5.3): its header fields and the
// parts that may hold the report.
type Message struct {
	From            string    // the address of the first From mailbox, or the field as written when it does not parse
	Subject         string    // decoded (RFC 2047), unfolded, whitespace runs collapsed
	MessageID       string    // without the angle brackets
	ReportDomain    string    // TLS-Report-Domain (§5.3), lower-case, no trailing dot
	ReportSubmitter string    // TLS-Report-Submitter (§5.3), lower-case, no trailing dot
	ReportID        string    // the Subject's "Report-ID:", without angle brackets (see ParseSubject)
	Date            time.Time // zero when absent or unparsable
	// Parts are the candidate report parts, most likely first (see
	// ExtractMessage). There is at least one.
	Parts []Part
}

// Part is a MIME part that may hold a report.
type Part struct {
	MediaType string // lower-case, without parameters; "" for a body with no Content-Type
	Filename  string // from Content-Disposition filename or Content-Type name
	// Data is the body, transfer-decoded (base64, quoted-printable) but
	// still possibly compressed: pass it to Decompress.
	Data []byte
}

// Candidate priorities, most likely first.
const (
	prioTLSRPTGzip = iota // application/tlsrpt+gzip (RFC 8460 §5.3)
	prioTLSRPTJSON        // application/tlsrpt+json (RFC 8460 §5.3)
	prioTLSRPT            // application/tlsrpt (non-standard)
	prioArchive           // generic binary types or file names whose bytes sniff as gzip, zip or JSON
	prioTextJSON          // text/plain or application/json holding a report object
	prioBody              // a non-multipart message body that is gzip, zip or JSON
)

// ExtractMessage reads a report e-mail of at most maxSize bytes
// (DefaultMaxSize when ≤ 0; larger gives ErrTooLarge) and returns its
// header fields and the parts that may hold the report, in this order:
//
//  1. application/tlsrpt+gzip parts (RFC 8460 §5.3), whatever their bytes;
//  2. application/tlsrpt+json parts;
//  3. application/tlsrpt parts (non-standard, seen with raw JSON);
//  4. application/gzip, x-gzip, zip, x-zip-compressed, octet-stream parts,
//     and parts of any other type named *.gz, *.zip or *.json, whose bytes
//     sniff as gzip, zip or JSON;
//  5. text/plain, text/json or application/json parts holding a JSON
//     object with "organization-name" or "policies";
//  6. a body that is not multipart (whatever its type but text/html) and is
//     gzip, zip, or a JSON object with "organization-name" or "policies".
//
// Parts of the same rank keep their order in the message. It walks
// multipart/report (report-type=tlsrpt, §5.3), multipart/mixed and every
// other multipart, and message/rfc822 attachments (forwarded reports).
// Human-readable parts (text/plain prose, text/html) are skipped. It is
// lenient: unknown charsets and transfer encodings are read as raw bytes,
// base64 with stray characters or missing padding is decoded, and a
// multipart without its final boundary keeps the parts read.
//
// A message without any candidate gives an error wrapping ErrNoReport that
// lists the parts seen.
func ExtractMessage(r io.Reader, maxSize int64) (msg *Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("%w: %w: %v", ErrNoReport, errInternal, p)
		}
	}()
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: read message: %w", err)
	}
	if int64(len(raw)) > maxSize {
		return nil, fmt.Errorf("%w: message exceeds %d bytes", ErrTooLarge, maxSize)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: not a mail message: %w", ErrNoReport, err)
	}
	msg = &Message{
		From:            parseFrom(h.Get("From")),
		Subject:         collapseSpace(decodeHeaderText(h.Get("Subject"))),
		MessageID:       strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"),
		ReportDomain:    trimDomain(strings.ToLower(decodeHeaderText(h.Get("Tls-Report-Domain")))),
		ReportSubmitter: trimDomain(strings.ToLower(decodeHeaderText(h.Get("Tls-Report-Submitter")))),
		Date:            parseMailDate(h.Get("Date")),
	}
	_, _, msg.ReportID, _ = ParseSubject(msg.Subject)

	w := &mimeWalker{}
	w.walk(h, br, 0, true)
	if len(w.cands) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoReport, w.describe())
	}
	slices.SortStableFunc(w.cands, func(a, b candidate) int { return a.prio - b.prio })
	for _, c := range w.cands {
		msg.Parts = append(msg.Parts, c.part)
	}
	return msg, nil
}

type candidate struct {
	prio int
	part Part
}

type mimeWalker struct {
	cands   []candidate
	seen    []string // a description of each leaf part, for the error
	visited int
	notes   []string // problems met while walking
}

func (w *mimeWalker) describe() string {
	var b strings.Builder
	switch len(w.seen) {
	case 0:
		b.WriteString("message has no body part")
	case 1:
		fmt.Fprintf(&b, "message has 1 part: %s; it is not a TLS report", w.seen[0])
	default:
		fmt.Fprintf(&b, "message has %d parts: %s; none is a TLS report", len(w.seen), strings.Join(w.seen, ", "))
	}
	if len(w.notes) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(w.notes, "; "))
		b.WriteString(")")
	}
	return b.String()
}

// walk visits an entity: a multipart container, an attached message or a
// leaf. top is true for the message itself.
func (w *mimeWalker) walk(h textproto.Header, body io.Reader, depth int, top bool) {
	w.visited++
	if w.visited > maxMIMEParts {
		if w.visited == maxMIMEParts+1 {
			w.notes = append(w.notes, fmt.Sprintf("stopped after %d parts", maxMIMEParts))
		}
		return
	}
	mt, params := contentType(h)
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		if depth >= maxMIMEDepth {
			w.notes = append(w.notes, fmt.Sprintf("multipart nested deeper than %d levels skipped", maxMIMEDepth))
			return
		}
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					w.notes = append(w.notes, fmt.Sprintf("%s: %v", mt, err))
				}
				return
			}
			w.walk(p.Header, p, depth+1, false)
		}
	case mt == "message/rfc822" || mt == "message/global":
		if depth >= maxMIMEDepth {
			w.notes = append(w.notes, fmt.Sprintf("attached message nested deeper than %d levels skipped", maxMIMEDepth))
			return
		}
		data := w.readBody(h, body)
		br := bufio.NewReader(bytes.NewReader(data))
		ih, err := textproto.ReadHeader(br)
		if err != nil && !errors.Is(err, io.EOF) {
			w.seen = append(w.seen, mt+" (unparsable)")
			return
		}
		w.walk(ih, br, depth+1, false)
	default:
		data := w.readBody(h, body)
		filename := partFilename(h, params)
		desc := mt
		if desc == "" {
			desc = "text/plain (no Content-Type)"
		}
		if filename != "" {
			desc += fmt.Sprintf(" %q", clip(filename))
		}
		w.seen = append(w.seen, fmt.Sprintf("%s of %d bytes", desc, len(data)))
		if prio, ok := classify(mt, filename, data, top); ok {
			w.cands = append(w.cands, candidate{prio: prio, part: Part{MediaType: mt, Filename: filename, Data: data}})
		}
	}
}

// classify returns the candidate rank of a leaf part.
func classify(mt, filename string, data []byte, top bool) (int, bool) {
	kind := sniff(data)
	binary := kind == "gzip" || kind == "zip" || kind == "json"
	switch mt {
	case "application/tlsrpt+gzip":
		return prioTLSRPTGzip, true
	case "application/tlsrpt+json":
		return prioTLSRPTJSON, true
	case "application/tlsrpt":
		return prioTLSRPT, true
	case "application/gzip", "application/x-gzip", "application/gzip-compressed", "application/x-gzip-compressed",
		"application/zip", "application/x-zip", "application/x-zip-compressed", "application/octet-stream":
		if binary {
			return prioArchive, true
		}
	case "text/plain", "text/json", "application/json", "":
		if kind == "json" && hasReportKeys(data) {
			return prioTextJSON, true
		}
	}
	lf := strings.ToLower(filename)
	if binary && (strings.HasSuffix(lf, ".gz") || strings.HasSuffix(lf, ".zip") || strings.HasSuffix(lf, ".json")) {
		return prioArchive, true
	}
	if top && mt != "text/html" && (kind == "gzip" || kind == "zip" || kind == "json" && hasReportKeys(data)) {
		return prioBody, true
	}
	return 0, false
}

func hasReportKeys(data []byte) bool {
	return bytes.Contains(data, []byte(`"organization-name"`)) || bytes.Contains(data, []byte(`"policies"`))
}

// contentType returns the lower-case media type and its parameters,
// leniently: a value mime.ParseMediaType rejects still gives its type.
func contentType(h textproto.Header) (string, map[string]string) {
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

func partFilename(h textproto.Header, ctParams map[string]string) string {
	if v := h.Get("Content-Disposition"); v != "" {
		if _, p, err := mime.ParseMediaType(v); err == nil || p != nil {
			if f := p["filename"]; f != "" {
				return collapseSpace(decodeHeaderText(f))
			}
		}
	}
	return collapseSpace(decodeHeaderText(ctParams["name"]))
}

// readBody reads a leaf body and undoes its Content-Transfer-Encoding.
// Unknown encodings are read as raw bytes; a body cut short (a multipart
// missing its final boundary) keeps what was read.
func (w *mimeWalker) readBody(h textproto.Header, body io.Reader) []byte {
	raw, err := io.ReadAll(body)
	if err != nil {
		w.notes = append(w.notes, fmt.Sprintf("body cut short: %v", err))
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return decodeBase64(raw)
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return raw
		}
		return out
	}
	return raw
}

// decodeBase64 decodes base64 leniently: characters outside the alphabet
// (line breaks, indentation, garbage) are skipped, padding may be missing,
// and padded chunks may follow each other.
func decodeBase64(raw []byte) []byte {
	clean := make([]byte, 0, len(raw))
	for _, c := range raw {
		if isAlnum(c) || c == '+' || c == '/' || c == '=' {
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

// decodeHeaderText decodes RFC 2047 encoded words; text in an unknown
// charset is kept as written.
func decodeHeaderText(s string) string {
	dec := mime.WordDecoder{}
	if out, err := dec.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

// collapseSpace trims s and replaces each run of whitespace by one space,
// which also unfolds folded header fields.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func parseFrom(v string) string {
	if strings.TrimSpace(v) == "" {
		return ""
	}
	p := mail.AddressParser{}
	if list, err := p.ParseList(v); err == nil && len(list) > 0 {
		return list[0].Address
	}
	return collapseSpace(decodeHeaderText(v))
}

// mailDateLayouts are Date forms net/mail does not accept but senders use.
var mailDateLayouts = [...]string{
	"Mon, Jan 02 2006 15:04:05 -0700", // RFC 8460 §5.3.1's example
	"Mon, 2 Jan 2006 15:04:05 -0700 (MST)",
	time.RFC3339,
}

func parseMailDate(v string) time.Time {
	v = collapseSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC()
	}
	for _, l := range mailDateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ParseSubject reads the Subject of a report message (RFC 8460 §5.3):
// "Report Domain: <domain> Submitter: <domain> Report-ID: <id>". It is
// lenient: the keywords are case-insensitive, may be preceded by other
// text ("[Preview] ", "Fwd: "), and the Report-ID may lack its angle
// brackets (Microsoft). Domains are lower-cased. ok is false when the
// domain or the report ID is missing.
func ParseSubject(subject string) (domain, submitter, reportID string, ok bool) {
	words := strings.Fields(subject)
	take := func(i int, key string) (string, int) {
		w := words[i]
		if len(w) > len(key) {
			return w[len(key):], i
		}
		if i+1 < len(words) {
			return words[i+1], i + 1
		}
		return "", i
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case hasPrefixFold(w, "Domain:") && domain == "":
			domain, i = take(i, "Domain:")
			domain = trimDomain(strings.ToLower(domain))
		case hasPrefixFold(w, "Submitter:") && submitter == "":
			submitter, i = take(i, "Submitter:")
			submitter = trimDomain(strings.ToLower(submitter))
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
