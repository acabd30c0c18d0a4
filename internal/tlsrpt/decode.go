package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/moatmail/moat/internal/dnsname"
)

// Decode decodes an uncompressed TLS-RPT report (RFC 8460 §4.4) into the
// normalized Report, tolerantly: it accepts the variants real senders
// produce and returns one Warning for each deviation from RFC 8460, in a
// fixed order: the document as a whole (byte order mark, encoding,
// trailing data), then the fields in the order of the schema of RFC 8460
// §4.4, policies and failure details in their order. See the package
// documentation for the list of accepted variants. A Warning's Path is
// like "policies[1].failure-details[0].result-type"; "$" is the document;
// a key that is not only letters, digits, "-" and "_" is written
// ["quoted"].
//
// The result is normalized so that it marshals back to RFC form and
// decodes again to an equal Report without warnings about the
// normalization: policy domains and host names lower-case without a
// trailing dot (U-labels converted to A-labels), IP addresses in canonical
// form (RFC 5952), enum values lower-case, datetimes in UTC, Policies never
// nil, empty optional lists nil.
//
// Input that is not a TLS-RPT report (empty, not JSON, not an object,
// neither "organization-name" nor "policies", a policy that is not an
// object, a count that is negative, fractional or not a number) gives a
// *DecodeError wrapping ErrInvalidReport that names the JSON path and the
// byte offset. Arrays and objects larger than MaxArrayLen and nesting
// deeper than MaxDepth give a *DecodeError wrapping ErrInvalidReport and
// ErrTooLarge. The caller bounds the size of data.
func Decode(data []byte) (rep *Report, warns []Warning, err error) {
	defer func() {
		// Programmer errors only; a parser of outside input must not take
		// its caller down.
		if p := recover(); p != nil {
			rep, warns = nil, nil
			err = &DecodeError{Path: "$", Offset: -1, Err: fmt.Errorf("%w: %w: %v", ErrInvalidReport, errInternal, p)}
		}
	}()
	d := &decoder{}
	text, base := d.unwrapEncoding(data)
	root, end, err := parseTree(text, base)
	if err != nil {
		return nil, nil, d.inputOffsets(text, err)
	}
	if !utf8.Valid(text[:end]) {
		// encoding/json replaces invalid bytes in strings by U+FFFD.
		d.warn("$", "invalid UTF-8 (RFC 7493 I-JSON requires UTF-8); invalid bytes replaced by U+FFFD")
	}
	if rest := bytes.TrimLeft(text[end:], " \t\r\n"); len(rest) > 0 {
		d.warn("$", fmt.Sprintf("%d bytes of trailing data after the JSON value at byte %d (%q); ignored", len(rest), d.inputOffset(text, base+end), clip(string(rest[:min(len(rest), 16)]))))
	}
	rep, err = d.report(root)
	if err != nil {
		return nil, nil, d.inputOffsets(text, err)
	}
	return rep, d.warns, nil
}

type decoder struct {
	warns []Warning
	utf16 bool // the input was UTF-16, converted to the UTF-8 text parsed
}

// inputOffset maps an offset in the parsed text to one in the input.
func (d *decoder) inputOffset(text []byte, off int64) int64 {
	if !d.utf16 || off < 0 {
		return off
	}
	// The BOM, then two bytes per UTF-16 code unit of the text before off.
	return 2 + 2*int64(len(utf16.Encode([]rune(string(text[:min(off, int64(len(text)))])))))
}

// inputOffsets maps the offset of a *DecodeError to the input.
func (d *decoder) inputOffsets(text []byte, err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		de.Offset = d.inputOffset(text, de.Offset)
	}
	return err
}

func (d *decoder) warn(path, msg string) {
	d.warns = append(d.warns, Warning{Path: path, Message: msg})
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func fail(path string, n *jnode, format string, args ...any) error {
	off := int64(-1)
	if n != nil {
		off = n.off
	}
	return &DecodeError{Path: path, Offset: off, Err: fmt.Errorf("%w: %s", ErrInvalidReport, fmt.Sprintf(format, args...))}
}

// unwrapEncoding removes a byte order mark, converting UTF-16 to UTF-8,
// and returns the text with its offset in data.
func (d *decoder) unwrapEncoding(data []byte) ([]byte, int64) {
	switch {
	case bytes.HasPrefix(data, []byte{0xef, 0xbb, 0xbf}):
		d.warn("$", "UTF-8 byte order mark; removed (RFC 7493 I-JSON has none)")
		return data[3:], 3
	case len(data) >= 2 && (data[0] == 0xff && data[1] == 0xfe || data[0] == 0xfe && data[1] == 0xff):
		le := data[0] == 0xff
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if le {
				u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		d.warn("$", "UTF-16 with byte order mark (RFC 7493 I-JSON requires UTF-8); converted")
		d.utf16 = true
		return []byte(string(utf16.Decode(u))), 0
	}
	return data, 0
}

// get returns the member key of object n, or nil. With repeated keys the
// last one wins (as in encoding/json); a key that matches only
// case-insensitively is accepted. Both are warned about.
func (d *decoder) get(n *jnode, parent, key string) *jnode {
	var found *jnode
	count := 0
	for i := range n.obj {
		if n.obj[i].key == key {
			found = n.obj[i].val
			count++
		}
	}
	if count > 1 {
		d.warn(join(parent, key), fmt.Sprintf("key appears %d times (RFC 7493 I-JSON forbids duplicates); the last value is used", count))
	}
	if found != nil {
		return found
	}
	var other string
	for i := range n.obj {
		if strings.EqualFold(n.obj[i].key, key) {
			found, other = n.obj[i].val, n.obj[i].key
		}
	}
	if found != nil {
		d.warn(join(parent, key), fmt.Sprintf("key written as %q", other))
	}
	return found
}

// hasKey reports whether object n has key, in any case.
func hasKey(n *jnode, key string) bool {
	for i := range n.obj {
		if strings.EqualFold(n.obj[i].key, key) {
			return true
		}
	}
	return false
}

// str reads a string field. Numbers and booleans are kept as written;
// other types are ignored. Each deviation is warned about.
func (d *decoder) str(path string, n *jnode, required bool) string {
	if n == nil {
		if required {
			d.warn(path, "missing")
		}
		return ""
	}
	switch n.kind {
	case jString:
		if required && n.s == "" {
			d.warn(path, "empty string")
		}
		return n.s
	case jNull:
		d.warn(path, "null instead of a string")
		return ""
	case jNumber, jBool:
		d.warn(path, fmt.Sprintf("%s instead of a string; kept as text", n.kind))
		return n.s
	default:
		d.warn(path, fmt.Sprintf("%s instead of a string; ignored", n.kind))
		return ""
	}
}

func (d *decoder) report(root *jnode) (*Report, error) {
	if root.kind != jObject {
		return nil, fail("$", root, "the JSON document is %s, not an object", root.kind)
	}
	if !hasKey(root, "organization-name") && !hasKey(root, "policies") {
		return nil, fail("$", root, `no "organization-name" and no "policies": not a TLS-RPT report`)
	}
	r := &Report{Policies: []PolicyResult{}}
	r.OrganizationName = d.str("organization-name", d.get(root, "", "organization-name"), true)
	d.dateRange(root, &r.DateRange)
	r.ContactInfo = d.str("contact-info", d.get(root, "", "contact-info"), true)
	r.ReportID = d.str("report-id", d.get(root, "", "report-id"), true)
	pols := d.get(root, "", "policies")

	var list []*jnode
	switch {
	case pols == nil:
		d.warn("policies", "missing; the report has no policies")
	case pols.kind == jNull:
		d.warn("policies", "null; the report has no policies")
	case pols.kind == jArray:
		list = pols.arr
	case pols.kind == jObject:
		// RFC 8460 §4: "the "policies" field of the report body MUST be an
		// array and not a singular value".
		d.warn("policies", "an object instead of an array (RFC 8460 §4 requires an array); taken as one policy")
		list = []*jnode{pols}
	default:
		return nil, fail("policies", pols, "expected an array of policies, got %s", pols.kind)
	}
	for i, pn := range list {
		pr, err := d.policyResult(index("policies", i), pn)
		if err != nil {
			return nil, err
		}
		r.Policies = append(r.Policies, pr)
	}
	return r, nil
}

func (d *decoder) dateRange(root *jnode, dr *DateRange) {
	n := d.get(root, "", "date-range")
	switch {
	case n == nil:
		d.warn("date-range", "missing")
		return
	case n.kind != jObject:
		d.warn("date-range", fmt.Sprintf("%s instead of an object; ignored", n.kind))
		return
	}
	dr.Start = d.dateTime("date-range.start-datetime", d.get(n, "date-range", "start-datetime"))
	dr.End = d.dateTime("date-range.end-datetime", d.get(n, "date-range", "end-datetime"))
	if !dr.Start.IsZero() && !dr.End.IsZero() && dr.End.Before(dr.Start) {
		d.warn("date-range", fmt.Sprintf("end-datetime %s is before start-datetime %s", dr.End.Format(time.RFC3339), dr.Start.Format(time.RFC3339)))
	}
}

// dateTimeLayouts are the forms of date-time accepted, in order; all but
// the first deviate from RFC 3339 §5.6.
var dateTimeLayouts = [...]struct{ layout, note string }{
	{time.RFC3339, ""}, // fractional seconds are accepted too
	{"2006-01-02T15:04:05", "no time zone (RFC 3339 requires one); UTC assumed"},
	{"2006-01-02 15:04:05Z07:00", `a space instead of "T" (RFC 3339)`},
	{"2006-01-02 15:04:05", `a space instead of "T" and no time zone (RFC 3339); UTC assumed`},
	{"2006-01-02T15:04Z07:00", "no seconds (RFC 3339 requires them)"},
	{"2006-01-02T15:04", "no seconds and no time zone (RFC 3339); UTC assumed"},
	{"2006-01-02", "a date without a time (RFC 3339 requires one); 00:00:00 UTC assumed"},
}

func (d *decoder) dateTime(path string, n *jnode) time.Time {
	if n == nil {
		d.warn(path, "missing")
		return time.Time{}
	}
	var t time.Time
	switch n.kind {
	case jString:
		s := strings.TrimSpace(n.s)
		if s != n.s {
			d.warn(path, "surrounding whitespace")
		}
		// RFC 3339 §5.6: "T" and "Z" may be lower case.
		u := strings.ToUpper(s)
		// RFC 8460 §4.1 speaks of days "from 00:00-24:00 UTC"; "24:00:00"
		// is the next day's midnight, which time.Parse rejects.
		day := 0
		if i := strings.Index(u, "T24:00:00"); i == 10 && !strings.ContainsAny(u[i+9:], "123456789") {
			u = u[:i] + "T00:00:00" + u[i+9:]
			day = 1
			d.warn(path, fmt.Sprintf("%q has hour 24 (RFC 3339 allows 00 to 23); taken as 00:00:00 of the next day", clip(n.s)))
		}
		ok := false
		for _, l := range dateTimeLayouts {
			if pt, err := time.Parse(l.layout, u); err == nil {
				if l.note != "" {
					d.warn(path, fmt.Sprintf("%q has %s", clip(n.s), l.note))
				}
				t, ok = pt, true
				break
			}
		}
		if !ok {
			d.warn(path, fmt.Sprintf("%q is not an RFC 3339 date-time; ignored", clip(n.s)))
			return time.Time{}
		}
		t = t.AddDate(0, 0, day)
	case jNumber:
		sec, err := strconv.ParseInt(n.s, 10, 64)
		if err != nil || sec < 0 || sec > 253402300799 { // 9999-12-31T23:59:59Z
			d.warn(path, fmt.Sprintf("number %s is not a date-time; ignored", clip(n.s)))
			return time.Time{}
		}
		d.warn(path, "a number (taken as Unix time) instead of an RFC 3339 date-time string")
		t = time.Unix(sec, 0)
	default:
		d.warn(path, fmt.Sprintf("%s instead of an RFC 3339 date-time string; ignored", n.kind))
		return time.Time{}
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		d.warn(path, fmt.Sprintf("%q is out of range (years 1 to 9999); ignored", clip(n.s)))
		return time.Time{}
	}
	return t
}

func (d *decoder) policyResult(path string, n *jnode) (PolicyResult, error) {
	var pr PolicyResult
	if n.kind != jObject {
		return pr, fail(path, n, "expected a policy object, got %s", n.kind)
	}
	if err := d.policy(join(path, "policy"), d.get(n, path, "policy"), &pr.Policy); err != nil {
		return pr, err
	}
	if err := d.summary(join(path, "summary"), d.get(n, path, "summary"), &pr.Summary); err != nil {
		return pr, err
	}
	fpath := join(path, "failure-details")
	fn := d.get(n, path, "failure-details")
	var list []*jnode
	if fn != nil {
		switch fn.kind {
		case jNull:
			d.warn(fpath, "null instead of an array")
		case jArray:
			list = fn.arr
		case jObject:
			d.warn(fpath, "an object instead of an array; taken as one failure detail")
			list = []*jnode{fn}
		default:
			return pr, fail(fpath, fn, "expected an array of failure details, got %s", fn.kind)
		}
	}
	var sum int64
	for i, en := range list {
		fd, err := d.failureDetail(index(fpath, i), en)
		if err != nil {
			return pr, err
		}
		sum = addSat(sum, fd.FailedSessionCount)
		pr.FailureDetails = append(pr.FailureDetails, fd)
	}
	if len(pr.FailureDetails) > 0 && sum != pr.Summary.Failure {
		d.warn(join(path, "summary.total-failure-session-count"), fmt.Sprintf("%d differs from the sum of failed-session-count in failure-details (%d)", pr.Summary.Failure, sum))
	}
	return pr, nil
}

func (d *decoder) policy(path string, n *jnode, p *Policy) error {
	switch {
	case n == nil:
		d.warn(path, "missing")
		return nil
	case n.kind == jNull:
		d.warn(path, "null instead of an object")
		return nil
	case n.kind != jObject:
		return fail(path, n, "expected a policy object, got %s", n.kind)
	}
	p.Type = d.enum(join(path, "policy-type"), d.get(n, path, "policy-type"), "policy type", knownPolicyType)
	p.String = d.policyString(join(path, "policy-string"), d.get(n, path, "policy-string"))
	dpath := join(path, "policy-domain")
	p.Domain = d.domain(dpath, d.str(dpath, d.get(n, path, "policy-domain"), true))
	p.MXHost = d.mxHosts(join(path, "mx-host"), d.get(n, path, "mx-host"))
	return nil
}

// enum reads a policy-type or result-type: lower-cased, kept when unknown.
func (d *decoder) enum(path string, n *jnode, what string, known func(string) bool) string {
	s := d.str(path, n, true)
	t := strings.TrimSpace(s)
	if t != s {
		d.warn(path, "surrounding whitespace")
	}
	if l := strings.ToLower(t); l != t {
		d.warn(path, fmt.Sprintf("%q is not lower-case as in RFC 8460", clip(t)))
		t = l
	}
	if t != "" && !known(t) {
		d.warn(path, fmt.Sprintf("unknown %s %q", what, clip(t)))
	}
	return t
}

func knownPolicyType(s string) bool {
	switch s {
	case PolicyTLSA, PolicySTS, PolicyNoPolicy:
		return true
	}
	return false
}

// knownResultType reports whether s is a result type of RFC 8460 §4.3.
func knownResultType(s string) bool {
	switch s {
	case ResultSTARTTLSNotSupported, ResultCertificateHostMismatch, ResultCertificateExpired,
		ResultCertificateNotTrusted, ResultValidationFailure, ResultTLSAInvalid, ResultDNSSECInvalid,
		ResultDANERequired, ResultSTSPolicyFetchError, ResultSTSPolicyInvalid, ResultSTSWebPKIInvalid:
		return true
	}
	return false
}

// strList reads an array of strings; a lone string is taken as a list of
// one, a nested array is flattened, other elements are dropped.
func (d *decoder) strList(path string, n *jnode) []string {
	if n == nil {
		return nil
	}
	switch n.kind {
	case jNull:
		d.warn(path, "null instead of an array")
		return nil
	case jString:
		d.warn(path, "a string instead of an array of strings (RFC 8460 §4.4)")
		return []string{n.s}
	case jArray:
	default:
		d.warn(path, fmt.Sprintf("%s instead of an array of strings; ignored", n.kind))
		return nil
	}
	var out []string
	for i, e := range n.arr {
		switch e.kind {
		case jString:
			out = append(out, e.s)
		case jNumber, jBool:
			d.warn(index(path, i), fmt.Sprintf("%s instead of a string; kept as text", e.kind))
			out = append(out, e.s)
		case jArray:
			d.warn(index(path, i), "a nested array; flattened")
			for _, ee := range e.arr {
				if ee.kind == jString {
					out = append(out, ee.s)
				}
			}
		default:
			d.warn(index(path, i), fmt.Sprintf("%s instead of a string; dropped", e.kind))
		}
	}
	return out
}

// policyString reads policy-string. Microsoft sends a TLSA policy as one
// string holding a JSON-encoded array of strings; that is unwrapped (until
// no such single string is left, so that decoding is idempotent).
func (d *decoder) policyString(path string, n *jnode) []string {
	list := d.strList(path, n)
	for unwrapped := false; len(list) == 1; {
		s := strings.TrimSpace(list[0])
		if !strings.HasPrefix(s, "[") {
			break
		}
		var inner []string
		if err := json.Unmarshal([]byte(s), &inner); err != nil {
			break
		}
		if !unwrapped {
			d.warn(path, "one string holding a JSON-encoded array; unwrapped")
			unwrapped = true
		}
		list = inner
	}
	if len(list) == 0 {
		return nil
	}
	return list
}

func (d *decoder) mxHosts(path string, n *jnode) []string {
	list := d.strList(path, n)
	var out []string
	for i, h := range list {
		orig := h
		prefixed := false
		for {
			h = strings.TrimSpace(h)
			if len(h) < 3 || !strings.EqualFold(h[:3], "mx:") {
				break
			}
			h = h[3:]
			prefixed = true
		}
		if prefixed {
			d.warn(index(path, i), fmt.Sprintf("%q has an \"mx:\" prefix; removed", clip(orig)))
		}
		h = d.domain(index(path, i), h)
		if h == "" {
			d.warn(index(path, i), "empty host pattern; dropped")
			continue
		}
		out = append(out, h)
	}
	return out
}

// domain normalizes a domain name or MX pattern: surrounding whitespace
// and trailing dots removed, lower-case, U-labels converted to A-labels
// (RFC 8460 §4.4: the domain MUST consist of A-labels). A "*." prefix is
// kept.
func (d *decoder) domain(path, s string) string {
	s = trimDomain(strings.ToLower(s))
	if isASCII(s) {
		return s
	}
	wild, rest := "", s
	if r, ok := strings.CutPrefix(s, "*."); ok {
		wild, rest = "*.", r
	}
	// The most lenient level: underscore labels are converted too.
	a, err := dnsname.Parse(rest, dnsname.Owner)
	if err != nil {
		d.warn(path, fmt.Sprintf("%q is not an A-label domain (RFC 8460 §4.4) and not a valid IDN; kept as written", clip(s)))
		return s
	}
	a = wild + a
	d.warn(path, fmt.Sprintf("%q has U-labels (RFC 8460 §4.4 requires A-labels); converted to %q", clip(s), clip(a)))
	return a
}

func trimDomain(s string) string {
	for {
		t := strings.TrimSpace(strings.TrimRight(s, "."))
		if t == s {
			return s
		}
		s = t
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (d *decoder) summary(path string, n *jnode, s *Summary) error {
	switch {
	case n == nil:
		d.warn(path, "missing; counts taken as 0")
		return nil
	case n.kind == jNull:
		d.warn(path, "null; counts taken as 0")
		return nil
	case n.kind != jObject:
		return fail(path, n, "expected a summary object, got %s", n.kind)
	}
	var err error
	if s.Successful, err = d.count(join(path, "total-successful-session-count"), d.get(n, path, "total-successful-session-count")); err != nil {
		return err
	}
	s.Failure, err = d.count(join(path, "total-failure-session-count"), d.get(n, path, "total-failure-session-count"))
	return err
}

func (d *decoder) failureDetail(path string, n *jnode) (FailureDetail, error) {
	var fd FailureDetail
	if n.kind != jObject {
		return fd, fail(path, n, "expected a failure detail object, got %s", n.kind)
	}
	fd.ResultType = d.enum(join(path, "result-type"), d.get(n, path, "result-type"), "result type", knownResultType)
	fd.SendingMTAIP = d.ip(join(path, "sending-mta-ip"), d.get(n, path, "sending-mta-ip"))
	fd.ReceivingMXHostname = d.domain(join(path, "receiving-mx-hostname"), d.str(join(path, "receiving-mx-hostname"), d.get(n, path, "receiving-mx-hostname"), false))
	fd.ReceivingMXHelo = d.str(join(path, "receiving-mx-helo"), d.get(n, path, "receiving-mx-helo"), false)
	fd.ReceivingIP = d.ip(join(path, "receiving-ip"), d.get(n, path, "receiving-ip"))
	var err error
	if fd.FailedSessionCount, err = d.count(join(path, "failed-session-count"), d.get(n, path, "failed-session-count")); err != nil {
		return fd, err
	}
	apath := join(path, "additional-information")
	fd.AdditionalInformation = d.str(apath, d.get(n, path, "additional-information"), false)
	if a := fd.AdditionalInformation; a != "" && !isURI(a) {
		d.warn(apath, fmt.Sprintf("%q is not a URI (RFC 3986)", clip(a)))
	}
	fd.FailureReasonCode = d.str(join(path, "failure-reason-code"), d.get(n, path, "failure-reason-code"), false)
	return fd, nil
}

// ip reads an IP address and writes it in canonical form; text that is not
// an address is kept as written.
func (d *decoder) ip(path string, n *jnode) string {
	s := strings.TrimSpace(d.str(path, n, false))
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.warn(path, fmt.Sprintf("%q is not an IP address", clip(s)))
		return s
	}
	return a.String()
}

func isURI(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

// count reads a session count: a non-negative integer. Integers written
// as strings or as floating-point numbers are accepted with a warning; a
// missing or null count is 0 with a warning; anything else is an error.
func (d *decoder) count(path string, n *jnode) (int64, error) {
	if n == nil {
		d.warn(path, "missing; taken as 0")
		return 0, nil
	}
	lit := n.s
	switch n.kind {
	case jNull:
		d.warn(path, "null; taken as 0")
		return 0, nil
	case jNumber:
	case jString:
		lit = strings.TrimSpace(n.s)
		if lit == "" || (lit[0] != '-' && !isDigit(lit[0])) || !json.Valid([]byte(lit)) {
			return 0, fail(path, n, "count %q is not a number", clip(n.s))
		}
		d.warn(path, fmt.Sprintf("a string (%q) instead of a number", clip(n.s)))
	default:
		return 0, fail(path, n, "expected a count (a non-negative integer), got %s", n.kind)
	}
	if v, err := strconv.ParseInt(lit, 10, 64); err == nil {
		if v < 0 {
			return 0, fail(path, n, "negative count %d", v)
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	switch {
	case err != nil && f == 0:
		return 0, fail(path, n, "count %s is not a number", clip(lit))
	case f < 0:
		return 0, fail(path, n, "negative count %s", clip(lit))
	case f >= math.MaxInt64:
		return 0, fail(path, n, "count %s is too large", clip(lit))
	case f != math.Trunc(f):
		return 0, fail(path, n, "count %s is not an integer", clip(lit))
	}
	d.warn(path, fmt.Sprintf("%s is written as a floating-point number; RFC 8460 §4.4 requires an integer", clip(lit)))
	return int64(f), nil
}

// addSat adds two non-negative counts, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
