package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// ErrNotReport means that a message or file holds no report (TLS-RPT or
// DMARC). Nothing is stored; the error says why (SMTP 550 5.6.0, listed
// by Import).
var ErrNotReport = errors.New("intake: not a report")

// SubmitParts stores the report of a mail or file given its candidate
// parts (tlsrpt.ExtractMessage order: most likely report first). RFC 8460
// §5.3 puts one report in one message, so one part is stored:
//
//   - the first part that decodes as a report;
//   - else the first part that looks like one (JSON, or compressed data
//     that does not decompress: a damaged report), stored as invalid;
//   - else none: ErrNotReport with the reason (for example a DMARC
//     aggregate report, which is XML).
//
// base gives the Source, SourceDetail and DKIM; each part brings its own
// media type and bytes. Other errors are those of Submit.
func (ing *Ingester) SubmitParts(ctx context.Context, base Submission, parts []tlsrpt.Part) (Result, error) {
	reps, err := ing.choose(base, parts, false)
	if err != nil {
		return Result{}, err
	}
	return ing.store(ctx, reps[0])
}

// choose prepares the reports to store from a mail's candidate parts: the
// first that decodes (every one that decodes when all is set, each
// distinct report once), else the first that looks like a damaged report
// (stored invalid), else ErrNotReport, or ErrTooLarge when a part was
// refused for its size. It returns at least one report or an error.
func (ing *Ingester) choose(base Submission, parts []tlsrpt.Part, all bool) ([]*store.TLSRPTReport, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: the message has no attachment or body that could be a report", ErrNotReport)
	}
	var valid []*store.TLSRPTReport
	seen := make(map[string]bool)
	var fallback *store.TLSRPTReport
	var reasons []string
	var tooLarge error
	for i, part := range parts {
		sub := base
		sub.MediaType = part.MediaType
		sub.Data = part.Data
		rep, err := ing.prepare(sub)
		if err != nil {
			if tooLarge == nil {
				tooLarge = err
			}
			continue
		}
		if rep.Status != store.ReportInvalid {
			if !all {
				return []*store.TLSRPTReport{rep}, nil
			}
			// The same report twice in one mail (say gzip and plain
			// JSON) is one report: the key the store deduplicates by.
			key := "digest " + rep.Digest
			if rep.OrganizationName != "" && rep.ReportID != "" {
				key = "report " + rep.OrganizationName + "\x00" + rep.ReportID
			}
			if !seen[key] {
				seen[key] = true
				valid = append(valid, rep)
			}
			continue
		}
		if ok, why := ing.looksLikeReport(part.Data); ok {
			if fallback == nil {
				fallback = rep
			}
		} else {
			reasons = append(reasons, fmt.Sprintf("part %d (%s%s) %s", i+1, part.MediaType, nameSuffix(part.Filename), why))
		}
	}
	switch {
	case len(valid) > 0:
		return valid, nil
	case fallback != nil:
		return []*store.TLSRPTReport{fallback}, nil
	case tooLarge != nil:
		return nil, tooLarge
	}
	return nil, fmt.Errorf("%w: %s", ErrNotReport, joinReasons(reasons))
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", name)
}

func joinReasons(rs []string) string {
	var b bytes.Buffer
	for i, r := range rs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r)
	}
	return b.String()
}

// looksLikeReport says whether data, which did not decode, is still meant
// as a TLS-RPT report: a JSON object naming at least one TLS-RPT field
// (a damaged report), or compressed data that fails to decompress.
// Otherwise it says what the data is instead.
func (ing *Ingester) looksLikeReport(data []byte) (bool, string) {
	js, _, err := tlsrpt.Decompress(data, ing.opts.MaxDecompressed)
	if err != nil {
		if compressed(data) != "" {
			return true, "" // damaged compressed data: a damaged report
		}
		return false, "is " + describe(data) + ", not a TLS-RPT report (JSON)"
	}
	what := describe(js)
	if what == "JSON" {
		if hasTLSField(js) {
			return true, ""
		}
		return false, "is a JSON object without any TLS-RPT field (organization-name, policies, report-id, date-range)"
	}
	if c := compressed(data); c != "" {
		what = c + " holding " + what
	}
	return false, "is " + what + ", not a TLS-RPT report (JSON)"
}

// tlsFields are the top-level fields of a TLS-RPT report (RFC 8460 §4.3).
var tlsFields = [][]byte{[]byte(`"organization-name"`), []byte(`"policies"`), []byte(`"report-id"`), []byte(`"date-range"`)}

// hasTLSField reports whether js names a field of a TLS-RPT report.
func hasTLSField(js []byte) bool {
	for _, f := range tlsFields {
		if bytes.Contains(js, f) {
			return true
		}
	}
	return false
}

// describe names the kind of content data starts with.
func describe(data []byte) string {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff") // whitespace and byte order marks
	switch {
	case len(t) == 0:
		return "empty"
	case t[0] == '{':
		return "JSON"
	case bytes.HasPrefix(t, []byte("<?xml")) || bytes.Contains(head(t, 512), []byte("<feedback")):
		if bytes.Contains(head(t, 4096), []byte("<feedback")) {
			return "XML (a DMARC aggregate report)"
		}
		return "XML"
	case t[0] == '<':
		return "HTML or XML"
	case t[0] == '[':
		return "a JSON array"
	}
	for _, c := range head(t, 512) {
		if c < 0x09 || (c > 0x0d && c < 0x20) {
			return "binary data"
		}
	}
	return "text"
}

// compressed names the compression data starts with, or "".
func compressed(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return "zip"
	}
	return ""
}

func head(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
