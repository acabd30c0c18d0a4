package dmarcrpt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/moatmail/moat/internal/mailmime"
)

// FailureReport is a DMARC failure report: an RFC 6591 authentication
// failure report in the Abuse Reporting Format (RFC 5965), with the
// fields RFC 7489 §7.3.1 adds. Values are as written but trimmed and
// unfolded; enumerated values lower case.
type FailureReport struct {
	// Mail is the report message's header.
	Mail MailInfo `json:"mail"`

	// The fields of the message/feedback-report part (RFC 5965 §3.1,
	// RFC 6591 §3.1, RFC 7489 §7.3.1).
	FeedbackType string `json:"feedback_type"` // "auth-failure"
	UserAgent    string `json:"user_agent,omitempty"`
	Version      string `json:"version,omitempty"` // RFC 5965 §3.1: "1"
	// AuthFailure is the failed mechanism (RFC 6591 §3.2.1, RFC 7489
	// §7.3.1): "adsp", "bodyhash", "revoked", "signature", "spf",
	// "dmarc".
	AuthFailure           string     `json:"auth_failure,omitempty"`
	AuthenticationResults []string   `json:"authentication_results,omitempty"`
	ReportedDomain        []string   `json:"reported_domain,omitempty"` // lower case
	ReportedURI           []string   `json:"reported_uri,omitempty"`
	SourceIP              netip.Addr `json:"source_ip"` // the zero Addr when absent or invalid
	// OriginalMailFrom is the envelope sender without angle brackets; ""
	// for the null reverse-path or when absent.
	OriginalMailFrom   string    `json:"original_mail_from,omitempty"`
	OriginalRcptTo     []string  `json:"original_rcpt_to,omitempty"`
	OriginalEnvelopeID string    `json:"original_envelope_id,omitempty"`
	ArrivalDate        time.Time `json:"arrival_date"` // zero when absent or unparsable
	ReportingMTA       string    `json:"reporting_mta,omitempty"`
	// Incidents is the number of incidents the report stands for (RFC
	// 5965 §3.2): 1 when absent.
	Incidents    int64  `json:"incidents"`
	DKIMDomain   string `json:"dkim_domain,omitempty"`
	DKIMIdentity string `json:"dkim_identity,omitempty"`
	DKIMSelector string `json:"dkim_selector,omitempty"`
	SPFDNS       string `json:"spf_dns,omitempty"`
	// IdentityAlignment lists the mechanisms that produced an aligned
	// identity (RFC 7489 §7.3.1; the DMARCbis failure-reporting document
	// reads it as those that failed to): "dkim", "spf", or "none".
	IdentityAlignment []string `json:"identity_alignment,omitempty"`
	// DeliveryResult is RFC 6591 §3.1's "delivered", "spam", "policy",
	// "reject" or "other".
	DeliveryResult string `json:"delivery_result,omitempty"`

	// Original is the header of the reported message: the third part
	// (RFC 6591 §3.1: message/rfc822 or text/rfc822-headers).
	Original OriginalMessage `json:"original"`
}

// OriginalMessage is the header of the message a failure report is
// about.
type OriginalMessage struct {
	// Present: the report carries the message or its header.
	Present bool `json:"present"`
	// HeadersOnly: only the header was sent (text/rfc822-headers).
	HeadersOnly bool      `json:"headers_only,omitempty"`
	From        string    `json:"from,omitempty"` // the address of the first mailbox
	To          string    `json:"to,omitempty"`   // the address of the first mailbox
	Subject     string    `json:"subject,omitempty"`
	MessageID   string    `json:"message_id,omitempty"` // without angle brackets
	Date        time.Time `json:"date"`
}

// FailureOptions bound ParseFailure. The zero value means the defaults.
type FailureOptions struct {
	// MaxSize bounds the message, in bytes: 16 MiB when ≤ 0.
	MaxSize int64
}

// ParseFailure reads a DMARC failure report from a whole mail message.
// It is tolerant of the shapes real receivers send, with a warning for
// each: multipart/mixed instead of multipart/report (RFC 5965 §2), the
// feedback part base64-encoded or as an attachment (Outlook's ATT00001),
// or under another media type but starting with Feedback-Type, parts out
// of order, LF or CRLF line ends, an mbox "From " line, missing or
// malformed fields (each named with the RFC that requires it). Warning
// paths are "mail/..." for the message, "feedback-report/<Field>" and
// "original/<Field>".
//
// A message that is not a failure report gives an error wrapping
// ErrNotFailureReport that says precisely why: not a mail message, not
// multipart, no feedback part (listing the parts it has), a Feedback-Type
// other than auth-failure (an abuse report, RFC 5965 §7.3). A message
// larger than MaxSize gives ErrTooLarge.
func ParseFailure(data []byte, opts FailureOptions) (rep *FailureReport, warns []Warning, err error) {
	f, err := parseFailure(data, opts)
	if f == nil {
		return nil, nil, err
	}
	if err != nil {
		return nil, f.warns, err
	}
	return f.rep, f.warns, nil
}

// parseFailure is ParseFailure, returning the parser with the header of
// the original message (for RedactFailure).
func parseFailure(data []byte, opts FailureOptions) (fp *failureParser, err error) {
	defer func() {
		if p := recover(); p != nil {
			fp, err = nil, fmt.Errorf("%w: %w: %v", ErrNotFailureReport, errInternal, p)
		}
	}()
	if opts.MaxSize <= 0 {
		opts.MaxSize = 16 << 20
	}
	if int64(len(data)) > opts.MaxSize {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds %d bytes", ErrTooLarge, len(data), opts.MaxSize)
	}
	f := &failureParser{rep: &FailureReport{Incidents: 1}}
	raw, mbox := skipMboxLine(data)
	if mbox {
		f.warn("mail", `an mbox "From " line before the header; skipped`)
	}
	h, body, err := mailmime.ReadHeader(raw)
	if err != nil || !isMail(h) {
		return f, fmt.Errorf("%w: not a mail message: begins with %s", ErrNotFailureReport, describePrefix(data))
	}
	f.rep.Mail = *mailInfo(h.Get("From"), h.Get("Subject"), h.Get("Message-Id"), h.Get("Date"))
	mt, params := mailmime.ContentType(h)
	switch {
	case mt == "multipart/report":
		if rt := strings.ToLower(params["report-type"]); rt != "feedback-report" {
			f.warn("mail/Content-Type", fmt.Sprintf("multipart/report with report-type %q (RFC 5965 §2: feedback-report)", rt))
		}
	case strings.HasPrefix(mt, "multipart/"):
		f.warn("mail/Content-Type", fmt.Sprintf("%s instead of multipart/report; report-type=feedback-report (RFC 5965 §2)", mt))
	default:
		return f, fmt.Errorf("%w: the message is %s, not multipart/report (RFC 5965 §2): it has no machine-readable feedback part", ErrNotFailureReport, typeName(mt))
	}
	var parts []*mailmime.Part
	notes := mailmime.Walk(h, body, mailmime.Options{}, func(p *mailmime.Part) { parts = append(parts, p) })
	fb := -1
	for i, p := range parts {
		if p.MediaType == "message/feedback-report" {
			fb = i
			break
		}
	}
	if fb < 0 {
		for i, p := range parts {
			if hasPrefixFold(bytes.TrimLeft(p.Body, " \t\r\n"), "feedback-type:") && !strings.HasPrefix(p.MediaType, "message/rfc822") {
				fb = i
				f.warn("mail/"+p.Path, fmt.Sprintf("the feedback fields are in a %s part (RFC 5965 §2: message/feedback-report)", typeName(p.MediaType)))
				break
			}
		}
	}
	if fb < 0 {
		var seen []string
		for _, p := range parts {
			seen = append(seen, describePart(p))
		}
		return f, fmt.Errorf("%w: no message/feedback-report part (RFC 5965 §2 requires one, with the Feedback-Type field): %s", ErrNotFailureReport, describeParts(seen, notes, "a feedback report"))
	}
	p := parts[fb]
	if fb != 1 {
		f.warn("mail/"+p.Path, fmt.Sprintf("the feedback part is part %s (RFC 5965 §2: the second)", p.Path))
	}
	if p.Encoding == "base64" || p.Encoding == "quoted-printable" {
		what := ""
		if cd := strings.ToLower(p.Header.Get("Content-Disposition")); strings.HasPrefix(strings.TrimSpace(cd), "attachment") {
			what = fmt.Sprintf(", as an attachment named %q", p.Filename)
		}
		f.warn("mail/"+p.Path, fmt.Sprintf("the feedback part is %s-encoded%s (RFC 2045 §6.4: message/* parts are 7bit, 8bit or binary); decoded", p.Encoding, what))
	}
	if err := f.feedback(p.Body); err != nil {
		return f, err
	}
	f.original(parts[fb+1:])
	for _, n := range notes {
		f.warn("mail", n)
	}
	return f, nil
}

type failureParser struct {
	rep   *FailureReport
	warns []Warning
	// The header of the original message and whether it came with a body
	// (RedactFailure keeps what authentication needs of it).
	orig     textproto.Header
	origBody bool
}

func (f *failureParser) warn(path, msg string) {
	f.warns = append(f.warns, Warning{Path: path, Message: msg})
}

// feedback reads the fields of the message/feedback-report part.
func (f *failureParser) feedback(body []byte) error {
	fh, err := readFields(body)
	if err != nil && fh.Len() == 0 {
		return fmt.Errorf("%w: the feedback part has no fields: %w", ErrNotFailureReport, err)
	}
	if err != nil {
		f.warn("feedback-report", fmt.Sprintf("the fields end with unreadable text: %v", err))
	}
	r := f.rep
	one := func(name string) string {
		vs := fh.Values(name)
		if len(vs) > 1 {
			f.warn("feedback-report/"+name, fmt.Sprintf("appears %d times (RFC 5965 §3.1: at most once); the first is used", len(vs)))
		}
		if len(vs) == 0 {
			return ""
		}
		return mailmime.Collapse(vs[0])
	}
	all := func(name string) []string {
		var out []string
		for _, v := range fh.Values(name) {
			if v = mailmime.Collapse(v); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	// RFC 5965 §3.1: Feedback-Type, User-Agent and Version are required.
	ft := one("Feedback-Type")
	r.FeedbackType = strings.ToLower(ft)
	switch {
	case ft == "":
		return fmt.Errorf("%w: the feedback part has no Feedback-Type field (RFC 5965 §3.1: required)", ErrNotFailureReport)
	case r.FeedbackType != "auth-failure":
		return fmt.Errorf("%w: Feedback-Type is %q (RFC 5965 §7.3), not \"auth-failure\" (RFC 6591 §3.1): not an authentication failure report", ErrNotFailureReport, clip(ft))
	case ft != r.FeedbackType:
		f.warn("feedback-report/Feedback-Type", fmt.Sprintf("%q is not lower case", ft))
	}
	if r.UserAgent = one("User-Agent"); r.UserAgent == "" {
		f.warn("feedback-report/User-Agent", "missing (RFC 5965 §3.1: required)")
	}
	switch r.Version = one("Version"); r.Version {
	case "1":
	case "":
		f.warn("feedback-report/Version", "missing (RFC 5965 §3.1: required, 1)")
	default:
		f.warn("feedback-report/Version", fmt.Sprintf("%q (RFC 5965 §3.1: MUST be 1)", clip(r.Version)))
	}
	// RFC 6591 §3.1: Auth-Failure and Authentication-Results are required.
	r.AuthFailure = strings.ToLower(one("Auth-Failure"))
	switch r.AuthFailure {
	case "adsp", "bodyhash", "revoked", "signature", "spf", "dmarc":
	case "":
		f.warn("feedback-report/Auth-Failure", "missing (RFC 6591 §3.1: required)")
	default:
		f.warn("feedback-report/Auth-Failure", fmt.Sprintf("unknown value %q (RFC 6591 §3.2.1 and RFC 7489 §7.3.1: adsp, bodyhash, revoked, signature, spf, dmarc); kept", clip(r.AuthFailure)))
	}
	if r.AuthenticationResults = all("Authentication-Results"); len(r.AuthenticationResults) == 0 {
		f.warn("feedback-report/Authentication-Results", "missing (RFC 6591 §3.1: required)")
	}
	for _, d := range all("Reported-Domain") {
		r.ReportedDomain = append(r.ReportedDomain, strings.TrimSuffix(strings.ToLower(d), "."))
	}
	r.ReportedURI = all("Reported-URI")
	if v := stripComments(one("Source-IP")); v != "" {
		a, err := netip.ParseAddr(strings.Trim(v, "[]"))
		if err != nil {
			f.warn("feedback-report/Source-IP", fmt.Sprintf("%q is not an IP address; ignored", clip(v)))
		} else {
			r.SourceIP = a.Unmap()
		}
	}
	if vs := fh.Values("Original-Mail-From"); len(vs) > 0 {
		v := mailmime.Collapse(one("Original-Mail-From"))
		if v == "" {
			f.warn("feedback-report/Original-Mail-From", `empty (RFC 5965 §3.5: a path; the null reverse-path is written "<>")`)
		}
		r.OriginalMailFrom = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	}
	for _, v := range all("Original-Rcpt-To") {
		r.OriginalRcptTo = append(r.OriginalRcptTo, strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">"))
	}
	r.OriginalEnvelopeID = one("Original-Envelope-Id")
	r.ReportingMTA = one("Reporting-MTA")
	date, field := one("Arrival-Date"), "Arrival-Date"
	if date == "" {
		if date = one("Received-Date"); date != "" {
			field = "Received-Date"
			f.warn("feedback-report/Received-Date", "not an ARF field (RFC 5965 §3.2: Arrival-Date); read as Arrival-Date")
		}
	}
	if date != "" {
		if r.ArrivalDate = mailmime.Date(date); r.ArrivalDate.IsZero() {
			f.warn("feedback-report/"+field, fmt.Sprintf("%q is not an RFC 5322 date-time; ignored", clip(date)))
		}
	}
	if v := one("Incidents"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			f.warn("feedback-report/Incidents", fmt.Sprintf("%q is not a positive integer (RFC 5965 §3.2); 1 assumed", clip(v)))
		} else {
			r.Incidents = n
		}
	}
	r.DKIMDomain = strings.ToLower(one("DKIM-Domain"))
	r.DKIMIdentity = one("DKIM-Identity")
	r.DKIMSelector = one("DKIM-Selector")
	r.SPFDNS = one("SPF-DNS")
	r.DeliveryResult = strings.ToLower(one("Delivery-Result"))
	switch r.DeliveryResult {
	case "", "delivered", "spam", "policy", "reject", "other":
	default:
		f.warn("feedback-report/Delivery-Result", fmt.Sprintf("unknown value %q (RFC 6591 §3.1: delivered, spam, policy, reject, other); kept", clip(r.DeliveryResult)))
	}
	f.alignment(one("Identity-Alignment"))
	if r.AuthFailure == "dmarc" && r.SPFDNS == "" {
		f.warn("feedback-report/SPF-DNS", "missing (RFC 7489 §7.3.1: REQUIRED in a DMARC failure report; the DMARCbis failure-reporting document: for an SPF failure of an aligned identifier)")
	}
	return nil
}

// stripComments removes RFC 5322 §3.2.2 comments, "(...)" possibly
// nested, from a structured field value (RFC 5965 §3.5: Source-IP and
// others allow CFWS), and trims it.
func stripComments(v string) string {
	if !strings.Contains(v, "(") {
		return strings.TrimSpace(v)
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// alignment reads Identity-Alignment (RFC 7489 §7.3.1: "none" or a
// comma-separated list of "dkim" and "spf", each at most once).
func (f *failureParser) alignment(v string) {
	const path = "feedback-report/Identity-Alignment"
	if v == "" {
		if f.rep.AuthFailure == "dmarc" {
			f.warn(path, "missing (RFC 7489 §7.3.1: REQUIRED in a DMARC failure report)")
		}
		return
	}
	var list []string
	for _, m := range strings.Split(strings.ToLower(v), ",") {
		m = strings.TrimSpace(m)
		switch {
		case m != "dkim" && m != "spf" && m != "none":
			f.warn(path, fmt.Sprintf("%q is not dkim, spf or none (RFC 7489 §7.3.1); kept", clip(m)))
		case slices.Contains(list, m):
			f.warn(path, fmt.Sprintf("%q more than once (RFC 7489 §7.3.1: at most once)", m))
			continue
		case m == "none" && strings.Contains(v, ","):
			f.warn(path, `"none" in a list (RFC 7489 §7.3.1: alone)`)
		}
		list = append(list, m)
	}
	f.rep.IdentityAlignment = list
}

// readFields reads a block of header fields (a feedback part, or the
// header of the original message). A block that ends without an empty
// line is complete; an error other than the end gives the fields read
// before it.
func readFields(body []byte) (textproto.Header, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return h, err
}

// original reads the header of the reported message from the parts
// after the feedback part (RFC 6591 §3.1: the third part,
// message/rfc822 or text/rfc822-headers).
func (f *failureParser) original(after []*mailmime.Part) {
	o := &f.rep.Original
	var p *mailmime.Part
	for _, q := range after {
		switch q.MediaType {
		case "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers":
			p = q
		}
		if p != nil {
			break
		}
	}
	if p == nil {
		f.warn("original", "no message/rfc822 or text/rfc822-headers part after the feedback part (RFC 6591 §3.1: required)")
		return
	}
	if p.MediaType == "message/rfc822-headers" || p.MediaType == "message/global" {
		f.warn("mail/"+p.Path, fmt.Sprintf("the original message as %s (RFC 6591 §3.1: message/rfc822 or text/rfc822-headers)", p.MediaType))
	}
	h, err := readFields(p.Body)
	if err != nil && h.Len() == 0 {
		f.warn("original", fmt.Sprintf("the header of the original message is unreadable: %v", err))
		return
	}
	o.Present = true
	o.HeadersOnly = strings.HasSuffix(p.MediaType, "-headers")
	f.orig = h
	if i := bytes.Index(p.Body, []byte("\n\r\n")); i >= 0 {
		f.origBody = len(bytes.TrimSpace(p.Body[i:])) > 0
	} else if i := bytes.Index(p.Body, []byte("\n\n")); i >= 0 {
		f.origBody = len(bytes.TrimSpace(p.Body[i:])) > 0
	}
	o.From = mailmime.Address(h.Get("From"))
	o.To = mailmime.Address(h.Get("To"))
	o.Subject = mailmime.Collapse(mailmime.DecodeText(h.Get("Subject")))
	o.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	if v := h.Get("Date"); v != "" {
		if o.Date = mailmime.Date(v); o.Date.IsZero() {
			f.warn("original/Date", fmt.Sprintf("%q is not an RFC 5322 date-time; ignored", clip(mailmime.Collapse(v))))
		}
	}
	if o.From == "" {
		f.warn("original/From", "missing")
	}
}

// hasPrefixFold reports whether b begins with prefix, ASCII case
// insensitively, without lowering all of b (a part's body may be the whole
// attachment).
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}
