package tlsrpt

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/moatmail/moat/internal/mailmime"
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
	// Cut: Data holds only the first bytes of the part (ReportParts).
	Cut bool
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
	h, body, err := mailmime.ReadHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not a mail message: %w", ErrNoReport, err)
	}
	msg = &Message{
		From:            mailmime.Address(h.Get("From")),
		Subject:         mailmime.Collapse(mailmime.DecodeText(h.Get("Subject"))),
		MessageID:       strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"),
		ReportDomain:    trimDomain(strings.ToLower(mailmime.DecodeText(h.Get("Tls-Report-Domain")))),
		ReportSubmitter: trimDomain(strings.ToLower(mailmime.DecodeText(h.Get("Tls-Report-Submitter")))),
		Date:            mailmime.Date(h.Get("Date")),
	}
	_, _, msg.ReportID, _ = ParseSubject(msg.Subject)

	if msg.Parts, err = findParts(h, body, 0); err != nil {
		return nil, err
	}
	return msg, nil
}

// ReportParts returns the parts ExtractMessage finds in the message raw,
// in its order, without reading the message's header fields, each part's
// Data cut to at most its first head bytes (Part.Cut says it was
// longer): a quick look at whether a message holds a report, not the
// report. A candidate whose rank depends on more of its bytes than head
// (a text/plain part naming a report field further on) may be missed.
// It gives ErrNoReport as ExtractMessage does; raw is not size-checked.
func ReportParts(raw []byte, head int) (parts []Part, err error) {
	defer func() {
		if p := recover(); p != nil {
			parts, err = nil, fmt.Errorf("%w: %w: %v", ErrNoReport, errInternal, p)
		}
	}()
	h, body, err := mailmime.ReadHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not a mail message: %w", ErrNoReport, err)
	}
	return findParts(h, body, max(head, 1))
}

// findParts walks a message (header h, body) for the candidate report
// parts, most likely first; head > 0 keeps only the first head bytes of
// each.
func findParts(h textproto.Header, body io.Reader, head int) ([]Part, error) {
	// The walk descends into message/rfc822 attachments: forwarded reports.
	var cands []candidate
	var seen []string // a description of each leaf part, for the error
	notes := mailmime.Walk(h, body, mailmime.Options{ExpandMessages: true, MaxBody: head}, func(p *mailmime.Part) {
		desc := p.MediaType
		if desc == "" {
			desc = "text/plain (no Content-Type)"
		}
		if p.Filename != "" {
			desc += fmt.Sprintf(" %q", clip(p.Filename))
		}
		seen = append(seen, fmt.Sprintf("%s of %d bytes", desc, len(p.Body)))
		if prio, ok := classify(p.MediaType, p.Filename, p.Body, p.Top); ok {
			cands = append(cands, candidate{prio: prio, part: Part{MediaType: p.MediaType, Filename: p.Filename, Data: p.Body, Cut: p.Cut}})
		}
	})
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoReport, describeParts(seen, notes))
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return a.prio - b.prio })
	parts := make([]Part, len(cands))
	for i, c := range cands {
		parts[i] = c.part
	}
	return parts, nil
}

type candidate struct {
	prio int
	part Part
}

// describeParts says, for ErrNoReport, which parts a message has and
// what could not be read.
func describeParts(seen, notes []string) string {
	var b strings.Builder
	switch len(seen) {
	case 0:
		b.WriteString("message has no body part")
	case 1:
		fmt.Fprintf(&b, "message has 1 part: %s; it is not a TLS report", seen[0])
	default:
		fmt.Fprintf(&b, "message has %d parts: %s; none is a TLS report", len(seen), strings.Join(seen, ", "))
	}
	if len(notes) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(notes, "; "))
		b.WriteString(")")
	}
	return b.String()
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

// ParseSubject reads the Subject of a report message (RFC 8460 §5.3):
// "Report Domain: <domain> Submitter: <domain> Report-ID: <id>". It is
// lenient: the keywords are case-insensitive, may be preceded by other
// text ("[Preview] ", "Fwd: "), and the Report-ID may lack its angle
// brackets (Microsoft). Domains are lower-cased. ok is false when the
// domain or the report ID is missing. See mailmime.ReportSubject, which
// DMARC report mail shares.
func ParseSubject(subject string) (domain, submitter, reportID string, ok bool) {
	return mailmime.ReportSubject(subject)
}
