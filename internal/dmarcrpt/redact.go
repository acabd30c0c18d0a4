package dmarcrpt

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/moatmail/moat/internal/mailmime"
)

// Redaction of failure reports. An RFC 6591 report carries the failed
// message, or its header: the addresses and the subject of real people's
// mail (RFC 7489 §7.3 and its §9.5 on privacy: failure reports "may
// contain personally identifiable information"). What an operator needs
// to find why a message failed is its domains, the authentication
// results, the DKIM signing domain and selector, and the source: the
// redacted view keeps those and masks the rest.
//
//   - Every email address, wherever it appears (the report's fields, the
//     reported message's header, free text such as Authentication-Results
//     and Received-SPF), keeps its domain and the first character of its
//     local part: "jane.doe@example.com" is "j***@example.com". A value
//     that is not an address (no "@") but stood for one is "[redacted]".
//   - Subjects (the reported message's and the report mail's, which
//     receivers often build from the reported one's) are "[redacted]".
//   - Of the reported message's header only the fields authentication
//     needs are kept: From (its address only, masked), Date, Message-ID (its domain only:
//     "<***@example.com>"), DKIM-Signature (only its d=, s= and a= tags),
//     Authentication-Results, ARC-Authentication-Results and Received-SPF
//     (addresses masked). Every other field is left out and counted; the
//     body is left out.
//   - Original-Envelope-Id, which can identify one message, is
//     "[redacted]"; DKIM-Identity (i=, an address) is masked.
//   - Finally every value of the view has its addresses masked, and every
//     address and subject found in the report is replaced wherever it
//     still appears (a warning quoting one, say).

// Redacted is the text that replaces a masked value.
const Redacted = "[redacted]"

// HeaderField is one kept field of the reported message's header.
type HeaderField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RedactedFailure is the redacted view of a failure report.
type RedactedFailure struct {
	// Report is the parsed report with its personal values masked (the
	// same shape as ParseFailure's).
	Report FailureReport `json:"report"`
	// Headers are the kept fields of the reported message's header, in
	// their order.
	Headers []HeaderField `json:"headers,omitempty"`
	// RemovedFields counts the header fields of the reported message left
	// out; BodyRemoved says whether it had a body, left out.
	RemovedFields int  `json:"removed_fields"`
	BodyRemoved   bool `json:"body_removed,omitempty"`
	// Warnings are the parser's, with addresses masked.
	Warnings []Warning `json:"warnings,omitempty"`
}

// RedactFailure parses a failure report from the whole mail message (as
// ParseFailure does, with the same errors) and returns its redacted view.
func RedactFailure(data []byte, opts FailureOptions) (*RedactedFailure, error) {
	f, err := parseFailure(data, opts)
	if err != nil {
		return nil, err
	}
	return redact(f), nil
}

// keepHeaders are the fields of the reported message kept by the
// redaction, each with its masking.
var keepHeaders = map[string]func(string) string{
	"From":                       func(v string) string { return MaskAddress(mailmime.Address(v)) },
	"Date":                       func(v string) string { return v },
	"Message-Id":                 maskMessageID,
	"Dkim-Signature":             dkimTags,
	"Authentication-Results":     MaskText,
	"Arc-Authentication-Results": MaskText,
	"Received-Spf":               MaskText,
}

func redact(f *failureParser) *RedactedFailure {
	src := f.rep
	secrets := newSecrets(src)
	r := *src
	r.Mail.From = MaskAddress(src.Mail.From)
	r.Mail.Subject = maskSubject(src.Mail.Subject)
	r.Mail.MessageID = maskMessageID(src.Mail.MessageID)
	r.Mail.Submitter = MaskText(src.Mail.Submitter)
	r.AuthenticationResults = maskAll(src.AuthenticationResults)
	r.ReportedURI = maskAll(src.ReportedURI)
	r.OriginalMailFrom = MaskAddress(src.OriginalMailFrom)
	r.OriginalRcptTo = nil
	for _, a := range src.OriginalRcptTo {
		r.OriginalRcptTo = append(r.OriginalRcptTo, MaskAddress(a))
	}
	if src.OriginalEnvelopeID != "" {
		r.OriginalEnvelopeID = Redacted
	}
	r.DKIMIdentity = MaskAddress(src.DKIMIdentity)
	r.SPFDNS = MaskText(src.SPFDNS)
	r.UserAgent = MaskText(src.UserAgent)
	r.ReportingMTA = MaskText(src.ReportingMTA)
	r.Original.From = MaskAddress(src.Original.From)
	r.Original.To = MaskAddress(src.Original.To)
	r.Original.Subject = maskSubject(src.Original.Subject)
	r.Original.MessageID = maskMessageID(src.Original.MessageID)

	out := &RedactedFailure{Report: r, BodyRemoved: f.origBody}
	for _, fld := range originalFields(f) {
		name := canonical(fld.Name)
		mask, ok := keepHeaders[name]
		if !ok {
			out.RemovedFields++
			continue
		}
		out.Headers = append(out.Headers, HeaderField{Name: name, Value: mask(mailmime.Collapse(mailmime.DecodeText(fld.Value)))})
	}
	for _, w := range f.warns {
		out.Warnings = append(out.Warnings, Warning{Path: w.Path, Message: MaskText(w.Message)})
	}
	secrets.scrub(out)
	return out
}

// originalFields lists the header fields of the original message in order.
func originalFields(f *failureParser) []HeaderField {
	var l []HeaderField
	for fl := f.orig.Fields(); fl.Next(); {
		l = append(l, HeaderField{Name: fl.Key(), Value: fl.Value()})
	}
	return l
}

// canonical is the canonical form of a header field name
// ("dkim-signature" is "Dkim-Signature").
func canonical(name string) string {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(name)), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// addrRE finds email addresses in free text: a dot-atom or quoted local
// part (without "=", so that "smtp.mailfrom=user@example.com" keeps its
// property name), "@", and a domain.
var addrRE = regexp.MustCompile(`("[^"\r\n]*"|[\p{L}\p{N}!#$%&'*+/?^_` + "`" + `{|}~.-]+)@([\p{L}\p{N}_-]+(?:\.[\p{L}\p{N}_-]+)*)`)

// MaskAddress masks one address: the domain kept, the local part reduced
// to its first character and "***" ("j***@example.com"; a quoted or empty
// local part is "***"). A value without "@" is Redacted; "" stays "".
func MaskAddress(addr string) string {
	addr = strings.TrimSpace(addr)
	if strings.HasPrefix(addr, "<") && strings.HasSuffix(addr, ">") {
		addr = addr[1 : len(addr)-1]
	}
	if addr == "" {
		return ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Redacted
	}
	return maskLocal(addr[:at]) + "@" + MaskText(addr[at+1:])
}

func maskLocal(local string) string {
	local = strings.TrimLeft(local, "<")
	r, size := utf8.DecodeRuneInString(local)
	if size == 0 || r == '"' || r == utf8.RuneError {
		return "***"
	}
	return local[:size] + "***"
}

// MaskText masks every address in free text (see MaskAddress).
func MaskText(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return addrRE.ReplaceAllStringFunc(s, func(m string) string {
		at := strings.LastIndexByte(m, '@')
		if local := m[:at]; local == "***" || (strings.HasSuffix(local, "***") && utf8.RuneCountInString(local) == 4) {
			return m // masked already
		}
		return maskLocal(m[:at]) + m[at:]
	})
}

func maskAll(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = MaskText(s)
	}
	return out
}

func maskSubject(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// maskMessageID keeps the domain of a message id: "<***@example.com>"
// for a field value with angle brackets, "***@example.com" without.
func maskMessageID(id string) string {
	t := strings.TrimSpace(id)
	if t == "" {
		return ""
	}
	open, closed := strings.HasPrefix(t, "<"), strings.HasSuffix(t, ">")
	t = strings.Trim(t, "<>")
	at := strings.LastIndexByte(t, '@')
	out := Redacted
	if at >= 0 {
		out = "***@" + MaskText(t[at+1:])
	}
	if open && closed {
		out = "<" + out + ">"
	}
	return out
}

// dkimTags keeps the d=, s= and a= tags of a DKIM-Signature (RFC 6376
// §3.5): which key signed, with which algorithm; the rest (h=, the body
// hash, the signature, i= and z= with addresses and copied header
// fields) is left out.
func dkimTags(v string) string {
	var kept []string
	for _, tag := range strings.Split(v, ";") {
		name, val, ok := strings.Cut(tag, "=")
		if !ok {
			continue
		}
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "d", "s", "a":
			kept = append(kept, name+"="+MaskText(strings.Join(strings.Fields(val), "")))
		}
	}
	return strings.Join(kept, "; ")
}

// secrets are the values of a report that must not appear in its
// redacted view: every address and subject of it.
type secrets []string

func newSecrets(r *FailureReport) secrets {
	var s secrets
	add := func(v string) {
		v = strings.TrimSpace(v)
		// Shorter values are too likely to be found in what is kept
		// (a domain, a date) to be replaced there; they are masked at
		// their place anyway.
		if utf8.RuneCountInString(v) >= 4 && !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	add(r.Mail.Subject)
	add(r.Original.Subject)
	for _, a := range append([]string{r.Mail.From, r.OriginalMailFrom, r.Original.From, r.Original.To, r.DKIMIdentity}, r.OriginalRcptTo...) {
		// An address with a local part: "@example.com" (an i= tag
		// without one) would replace the domain kept elsewhere.
		if at := strings.LastIndexByte(a, '@'); at > 0 {
			add(a)
		}
	}
	// The longest first, so that a subject holding an address goes whole.
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

func (s secrets) replace(v string) string {
	v = MaskText(v)
	for _, x := range s {
		if strings.Contains(v, x) {
			v = strings.ReplaceAll(v, x, Redacted)
		}
	}
	return v
}

// scrub masks the addresses in every value of the view that is not
// masked already (a Version field may hold anything), and replaces the
// secrets wherever they still are.
func (s secrets) scrub(out *RedactedFailure) {
	r := &out.Report
	for _, p := range []*string{&r.Mail.From, &r.Mail.Subject, &r.Mail.MessageID, &r.Mail.ReportDomain, &r.Mail.Submitter,
		&r.Mail.ReportID, &r.UserAgent, &r.Version, &r.AuthFailure, &r.OriginalMailFrom, &r.OriginalEnvelopeID,
		&r.ReportingMTA, &r.DKIMDomain, &r.DKIMIdentity, &r.DKIMSelector, &r.SPFDNS, &r.DeliveryResult,
		&r.Original.From, &r.Original.To, &r.Original.Subject, &r.Original.MessageID} {
		*p = s.replace(*p)
	}
	for _, l := range [][]string{r.AuthenticationResults, r.ReportedDomain, r.ReportedURI, r.OriginalRcptTo, r.IdentityAlignment} {
		for i := range l {
			l[i] = s.replace(l[i])
		}
	}
	for i := range out.Headers {
		out.Headers[i].Value = s.replace(out.Headers[i].Value)
	}
	for i := range out.Warnings {
		out.Warnings[i].Message = s.replace(out.Warnings[i].Message)
	}
}

// String is the redacted view as text, for a terminal.
func (rf *RedactedFailure) String() string {
	var b strings.Builder
	r := &rf.Report
	line := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-24s %s\n", name+":", v)
		}
	}
	line("Reporter", r.Mail.From)
	line("Report subject", r.Mail.Subject)
	line("Feedback-Type", r.FeedbackType)
	line("Auth-Failure", r.AuthFailure)
	line("Reported-Domain", strings.Join(r.ReportedDomain, ", "))
	if r.SourceIP.IsValid() {
		line("Source-IP", r.SourceIP.String())
	}
	line("Original-Mail-From", r.OriginalMailFrom)
	line("Original-Rcpt-To", strings.Join(r.OriginalRcptTo, ", "))
	if !r.ArrivalDate.IsZero() {
		line("Arrival-Date", r.ArrivalDate.UTC().Format("2006-01-02 15:04:05Z"))
	}
	line("Reporting-MTA", r.ReportingMTA)
	line("Delivery-Result", r.DeliveryResult)
	line("DKIM-Domain", r.DKIMDomain)
	line("DKIM-Selector", r.DKIMSelector)
	line("DKIM-Identity", r.DKIMIdentity)
	line("SPF-DNS", r.SPFDNS)
	line("Identity-Alignment", strings.Join(r.IdentityAlignment, ", "))
	if r.Incidents > 1 {
		line("Incidents", fmt.Sprint(r.Incidents))
	}
	for _, ar := range r.AuthenticationResults {
		line("Authentication-Results", ar)
	}
	if len(rf.Headers) > 0 || rf.RemovedFields > 0 {
		b.WriteString("\nReported message (redacted):\n")
		for _, h := range rf.Headers {
			fmt.Fprintf(&b, "  %s: %s\n", h.Name, h.Value)
		}
		line("  Subject", r.Original.Subject)
		fmt.Fprintf(&b, "  (%d other header fields left out", rf.RemovedFields)
		if rf.BodyRemoved {
			b.WriteString("; the body left out")
		}
		b.WriteString(")\n")
	}
	if len(rf.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, w := range rf.Warnings {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	return b.String()
}
