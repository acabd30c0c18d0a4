package dmarcrpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/moatmail/moat/internal/mailmime"
	"github.com/moatmail/moat/internal/unpack"
)

// ExtractOptions bound Extract. The zero value means the defaults.
type ExtractOptions struct {
	// MaxCompressed bounds the input (a file, an HTTP body, a whole
	// mail), in bytes: 32 MiB when ≤ 0. RFC 7489 §8 asks receivers to
	// accept reports of ten megabytes.
	MaxCompressed int64
	// MaxDecompressed bounds each report once decompressed, in bytes:
	// 256 MiB when ≤ 0. The decoder streams, so this bounds time, not
	// memory; a compression bomb stops there with ErrTooLarge.
	MaxDecompressed int64
	// Head, when positive, keeps only the first Head bytes of each
	// source's Data (Source.Cut says there was more), decoding no more
	// base64 than that, and leaves Input.Mail nil: a quick look at
	// whether the input holds a report. Such a source is not for Open.
	Head int
}

func (o ExtractOptions) withDefaults() ExtractOptions {
	if o.MaxCompressed <= 0 {
		o.MaxCompressed = 32 << 20
	}
	if o.MaxDecompressed <= 0 {
		o.MaxDecompressed = 256 << 20
	}
	return o
}

// Input is what Extract found in a file, a body or a mail.
type Input struct {
	// Mail is the report message's header, nil when the input was a file
	// or a body rather than a mail (and with ExtractOptions.Head).
	Mail *MailInfo
	// Sources are the reports found, most likely first (see Extract).
	// There is at least one.
	Sources []*Source
	// Warnings are the deviations of the mail's form (media types, MIME
	// structure); Path is "mail/<part number>".
	Warnings []Warning
}

// MailInfo is the header of a report message.
type MailInfo struct {
	From      string    // the address of the first From mailbox, or the field as written
	Subject   string    // decoded (RFC 2047), unfolded
	MessageID string    // without angle brackets
	Date      time.Time // zero when absent or unparsable
	// ReportDomain, Submitter and ReportID come from the Subject (RFC
	// 9990 §3.5.2: "Report Domain: ... Submitter: ... Report-ID: ..."),
	// read leniently (mailmime.ReportSubject); "" when absent.
	ReportDomain, Submitter, ReportID string
}

// Source is one report found by Extract: bytes that are a report once
// decompressed.
type Source struct {
	Part      string // the MIME part number ("2", "1.2"); "" for a file or body
	MediaType string // the part's media type, lower case; "" for a file
	Filename  string // the part's file name; "" when none
	// Kind is what the bytes are, by their first bytes: "gzip", "zip"
	// or "xml".
	Kind string
	// Data are the (still compressed) bytes.
	Data []byte
	// Cut: Data holds only the first ExtractOptions.Head bytes.
	Cut bool
	max int64
}

// Open returns the report's XML, decompressed as it is read (gzip with
// several members or trailing garbage, zip, and one more layer of
// either), for Decode. Bad compressed data surfaces from Read, wrapping
// ErrInvalidReport, and a decompressed size beyond
// ExtractOptions.MaxDecompressed wrapping ErrTooLarge; Decode then fails
// with a *DecodeError wrapping them.
func (s *Source) Open() (*Stream, error) {
	if s.Cut {
		return nil, fmt.Errorf("%w: only the first %d bytes of the report were read (ExtractOptions.Head)", ErrInvalidReport, len(s.Data))
	}
	r, err := unpack.Open(s.Data, unpack.Options{MaxSize: s.max})
	if err != nil {
		var ue *unpack.Error
		if errors.As(err, &ue) {
			return nil, ue.WithSentinels(ErrInvalidReport, ErrTooLarge)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	path := ""
	if s.Part != "" {
		path = "mail/" + s.Part
	}
	return &Stream{r: r, path: path}, nil
}

// Stream is the decompressed XML of a Source.
type Stream struct {
	r    *unpack.Reader
	path string
}

// Read reads decompressed XML.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = unpackError(err)
	}
	return n, err
}

// Format names the compression layers: "plain", "gzip", "zip",
// "gzip+trailing", "gzip+gzip", "zip+gzip", ... (see unpack.Reader); a
// "+trailing" is known once the stream was read to its end.
func (s *Stream) Format() string { return s.r.Format() }

// Warnings says what deviated in the compression, once the stream was
// read to its end: trailing garbage after gzip data, a report compressed
// twice, zip members that were not read. Their Path is the mail part
// ("mail/2"), or "" for a file.
func (s *Stream) Warnings() []Warning {
	var w []Warning
	f := s.r.Format()
	if strings.Contains(f, "trailing") {
		w = append(w, Warning{Path: s.path, Message: fmt.Sprintf("bytes after the end of the gzip data (%s); ignored", f)})
	}
	if strings.Count(strings.ReplaceAll(f, "+trailing", ""), "+") > 0 {
		w = append(w, Warning{Path: s.path, Message: fmt.Sprintf("the report is compressed twice (%s)", f)})
	}
	if m := s.r.OtherMembers(); len(m) > 0 {
		w = append(w, Warning{Path: s.path, Message: fmt.Sprintf("the zip archive has %d more files, not read: %q", len(m), m)})
	}
	return w
}

// errCorrupt is what Stream.Read wraps for bad compressed data; the
// decoder adds ErrInvalidReport.
var errCorrupt = errors.New("corrupt compressed data")

func unpackError(err error) error {
	var ue *unpack.Error
	if errors.As(err, &ue) {
		return ue.WithSentinels(errCorrupt, ErrTooLarge)
	}
	return err
}

// isMail reports whether h looks like the header of a mail message: it
// has one of the fields every message or MIME entity has.
func isMail(h textproto.Header) bool {
	for _, f := range [...]string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type", "Received", "Return-Path"} {
		if h.Has(f) {
			return true
		}
	}
	return false
}

// Extract finds the aggregate reports in data: a file or an HTTP or SMTP
// body (gzip, zip, or plain XML, whatever its name says) or a whole mail
// message (RFC 7489 §7.2.1.1, RFC 9990 §3.5.2). In a mail it walks every
// multipart and attached message (forwarded reports) and takes, most
// likely first:
//
//  1. parts of a report media type (application/gzip, application/zip
//     and their x- variants, text/xml, application/xml) whose bytes are
//     gzip, zip or XML, whatever the type said;
//  2. application/octet-stream parts, and parts of any type named *.xml,
//     *.gz or *.zip, whose bytes are gzip, zip or XML;
//  3. text/plain parts holding a <feedback> element;
//  4. a message body that is not multipart (the whole body being the
//     zip, as some senders do), whatever its type but text/html, whose
//     bytes are gzip, zip or XML.
//
// Transfer encodings are undone leniently (base64 with garbage or no
// padding). A mail starting with an mbox "From " line is read after it.
// Each deviation from RFC 7489 §7.2.1.1 (zip instead of gzip, a generic
// media type, a type that does not match the bytes) is a warning.
//
// An input larger than MaxCompressed gives ErrTooLarge; one holding
// nothing that could be a report gives an error wrapping ErrNoReport that
// says what it holds.
func Extract(data []byte, opts ExtractOptions) (in *Input, err error) {
	defer func() {
		if p := recover(); p != nil {
			in, err = nil, fmt.Errorf("%w: %w: %v", ErrNoReport, errInternal, p)
		}
	}()
	opts = opts.withDefaults()
	if int64(len(data)) > opts.MaxCompressed {
		return nil, fmt.Errorf("%w: input of %d bytes exceeds %d bytes", ErrTooLarge, len(data), opts.MaxCompressed)
	}
	if kind := sniffReport(data); kind != "" {
		src := &Source{Kind: kind, Data: data, max: opts.MaxDecompressed}
		if opts.Head > 0 && len(data) > opts.Head {
			src.Data, src.Cut = data[:opts.Head], true
		}
		return &Input{Sources: []*Source{src}}, nil
	}
	raw, mbox := skipMboxLine(data)
	h, body, err := mailmime.ReadHeader(raw)
	if err != nil || !isMail(h) {
		return nil, fmt.Errorf("%w: not gzip, zip, XML or a mail message: begins with %s", ErrNoReport, describePrefix(data))
	}
	in = &Input{}
	if opts.Head <= 0 { // a quick look needs the parts only
		in.Mail = mailInfo(h.Get("From"), h.Get("Subject"), h.Get("Message-Id"), h.Get("Date"))
	}
	if mbox {
		in.Warnings = append(in.Warnings, Warning{Path: "mail", Message: `an mbox "From " line before the header; skipped`})
	}
	type candidate struct {
		rank int
		src  *Source
	}
	var cands []candidate
	var seen []string
	notes := mailmime.Walk(h, body, mailmime.Options{ExpandMessages: true, MaxBody: max(opts.Head, 0)}, func(p *mailmime.Part) {
		seen = append(seen, describePart(p))
		kind := sniffReport(p.Body)
		rank, warn := classify(p, kind)
		if rank < 0 {
			return
		}
		if warn != "" {
			in.Warnings = append(in.Warnings, Warning{Path: "mail/" + p.Path, Message: warn})
		}
		cands = append(cands, candidate{rank, &Source{Part: p.Path, MediaType: p.MediaType, Filename: p.Filename, Kind: kind, Data: p.Body, Cut: p.Cut, max: opts.MaxDecompressed}})
	})
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoReport, describeParts(seen, notes, "an aggregate report"))
	}
	for _, n := range notes {
		in.Warnings = append(in.Warnings, Warning{Path: "mail", Message: n})
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.rank - b.rank })
	for _, c := range cands {
		in.Sources = append(in.Sources, c.src)
	}
	return in, nil
}

// classify ranks a leaf part as a candidate (see Extract), -1 when it is
// none, with a warning about its form.
func classify(p *mailmime.Part, kind string) (int, string) {
	name := strings.ToLower(p.Filename)
	named := strings.HasSuffix(name, ".xml") || strings.HasSuffix(name, ".xml.gz") || strings.HasSuffix(name, ".zip") ||
		strings.HasSuffix(name, ".gz") && !strings.HasSuffix(name, ".json.gz")
	switch p.MediaType {
	case "application/tlsrpt+gzip", "application/tlsrpt+json", "application/tlsrpt":
		return -1, "" // an SMTP TLS report (RFC 8460 §6)
	case "application/gzip", "application/x-gzip", "application/gzip-compressed", "application/x-gzip-compressed":
		switch kind {
		case "gzip":
			return 0, ""
		case "zip", "xml":
			return 0, fmt.Sprintf("%s part holds %s, not gzip", p.MediaType, kindName(kind))
		}
	case "application/zip", "application/x-zip", "application/x-zip-compressed":
		switch kind {
		case "zip":
			return 0, fmt.Sprintf("report as %s (RFC 7489 §7.2.1.1 and RFC 9990 §3.5.2: gzip, as application/gzip)", p.MediaType)
		case "gzip", "xml":
			return 0, fmt.Sprintf("%s part holds %s, not zip", p.MediaType, kindName(kind))
		}
	case "text/xml", "application/xml":
		if kind != "" {
			return 0, ""
		}
	case "application/octet-stream":
		if kind != "" {
			return 1, fmt.Sprintf("report as application/octet-stream (RFC 7489 §7.2.1.1: application/gzip or text/xml); recognized as %s by its bytes", kindName(kind))
		}
	case "text/plain", "":
		if kind == "xml" && bytes.Contains(p.Body[:min(len(p.Body), 4096)], []byte("<feedback")) {
			return 2, fmt.Sprintf("report as the text of a %s part (RFC 7489 §7.2.1.1: text/xml)", typeName(p.MediaType))
		}
	}
	switch {
	case kind != "" && named:
		return 1, fmt.Sprintf("report named %q as %s (RFC 7489 §7.2.1.1: application/gzip or text/xml)", p.Filename, typeName(p.MediaType))
	case kind != "" && p.Top && p.MediaType != "text/html":
		return 3, fmt.Sprintf("the message body itself is the report, as %s (RFC 7489 §7.2.1.1: a MIME part application/gzip or text/xml)", typeName(p.MediaType))
	}
	return -1, ""
}

func kindName(kind string) string {
	if kind == "xml" {
		return "plain XML"
	}
	return kind
}

func typeName(mt string) string {
	if mt == "" {
		return "text/plain (no Content-Type)"
	}
	return mt
}

// sniffReport names what data is by its first bytes: "gzip", "zip",
// "xml" (an optional byte order mark, whitespace, then "<"), or "".
func sniffReport(data []byte) string {
	if k := unpack.Sniff(data); k != "" {
		return k
	}
	t := data
	switch {
	case bytes.HasPrefix(t, []byte{0xef, 0xbb, 0xbf}):
		t = t[3:]
	case bytes.HasPrefix(t, []byte{0xff, 0xfe}), bytes.HasPrefix(t, []byte{0xfe, 0xff}):
		return "xml" // UTF-16 with a byte order mark: the decoder decides
	}
	t = bytes.TrimLeft(t, " \t\r\n")
	if len(t) > 0 && t[0] == '<' {
		return "xml"
	}
	return ""
}

// skipMboxLine removes an mbox "From " separator line.
func skipMboxLine(data []byte) ([]byte, bool) {
	if !bytes.HasPrefix(data, []byte("From ")) {
		return data, false
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[i+1:], true
	}
	return data, false
}

func mailInfo(from, subject, id, date string) *MailInfo {
	m := &MailInfo{
		From:      mailmime.Address(from),
		Subject:   mailmime.Collapse(mailmime.DecodeText(subject)),
		MessageID: strings.Trim(strings.TrimSpace(id), "<>"),
		Date:      mailmime.Date(date),
	}
	m.ReportDomain, m.Submitter, m.ReportID, _ = mailmime.ReportSubject(m.Subject)
	return m
}

func describePart(p *mailmime.Part) string {
	desc := typeName(p.MediaType)
	if p.Filename != "" {
		desc += fmt.Sprintf(" %q", clip(p.Filename))
	}
	return fmt.Sprintf("%s (part %s) of %d bytes", desc, p.Path, len(p.Body))
}

// describeParts says which parts a message has, for an error.
func describeParts(seen, notes []string, what string) string {
	var b strings.Builder
	switch len(seen) {
	case 0:
		b.WriteString("the message has no body part")
	case 1:
		fmt.Fprintf(&b, "the message has 1 part, %s, which is not %s", seen[0], what)
	default:
		fmt.Fprintf(&b, "the message has %d parts, %s; none is %s", len(seen), strings.Join(seen, ", "), what)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	}
	return b.String()
}

func describePrefix(data []byte) string {
	if len(data) == 0 {
		return "nothing (empty)"
	}
	n := min(len(data), 8)
	return fmt.Sprintf("% x (%q)", data[:n], data[:n])
}
