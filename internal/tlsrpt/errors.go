package tlsrpt

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Errors about the "_smtp._tls" TXT record (RFC 8460 §3). To a sender,
// each of them means the domain does not implement TLSRPT.
var (
	// ErrRecordSyntax is wrapped by every *ParseError: the record does not
	// match the ABNF of RFC 8460 §3, or an rua URI is not a mailto: or
	// https: URI.
	ErrRecordSyntax = errors.New("tlsrpt: invalid TXT record")
	// ErrNoRecord: the name has no TXT record beginning with "v=TLSRPTv1"
	// (NXDOMAIN, no TXT data, or only other records).
	ErrNoRecord = errors.New("tlsrpt: no TLSRPT TXT record")
	// ErrMultipleRecords: more than one TXT record begins with
	// "v=TLSRPTv1". RFC 8460 §3: senders MUST then assume the domain does
	// not implement TLSRPT; the domain owner should delete all but one.
	ErrMultipleRecords = errors.New("tlsrpt: more than one TLSRPT TXT record")
	// ErrRecordLookup: the DNS query failed for another reason (timeout,
	// SERVFAIL); the answer is unknown and may be retried.
	ErrRecordLookup = errors.New("tlsrpt: TXT record lookup failed")
	// ErrInvalidDomain: the domain given to LookupRecord is not a host name.
	ErrInvalidDomain = errors.New("tlsrpt: invalid domain")
)

// Errors about reports (RFC 8460 §4 and §5).
var (
	// ErrInvalidReport: the input is not a TLS-RPT report that can be
	// decoded (not JSON, not an object, neither "organization-name" nor
	// "policies", a negative count, ...), or its compression or HTTP
	// framing is broken. Decode wraps it in a *DecodeError that says where.
	// The caller should keep the raw input, marked as unparsable.
	ErrInvalidReport = errors.New("tlsrpt: invalid report")
	// ErrTooLarge: the input or its decompressed form exceeds the size or
	// count limit given by the caller or documented by the function (a
	// compression bomb, or more than MaxArrayLen entries in an array).
	ErrTooLarge = errors.New("tlsrpt: report too large")
	// ErrNoReport: a message has no part that is, or could be, a TLS-RPT
	// report. The error text lists the parts that were seen.
	ErrNoReport = errors.New("tlsrpt: no TLS report in message")
	// ErrNonConformant is wrapped by every *ValidationError that Validate
	// returns: the report was decoded but breaks a rule of RFC 8460 §4.
	ErrNonConformant = errors.New("tlsrpt: report does not conform to RFC 8460")
)

// errInternal marks a panic recovered in an exported function: a bug, never
// an input problem. It is wrapped together with the function's sentinel.
var errInternal = errors.New("tlsrpt: internal error")

// ParseError is a TXT record that does not match RFC 8460 §3.
type ParseError struct {
	Field  string // "v", "rua", an extension name, or "" when no field was read
	Offset int    // byte offset in the record of the offending text
	Value  string // the offending text as written
	Reason string // what is wrong, in words
	Err    error  // ErrRecordSyntax
}

func (e *ParseError) Error() string {
	field := "record"
	if e.Field != "" {
		field = fmt.Sprintf("field %q", e.Field)
	}
	value := ""
	if e.Value != "" {
		value = fmt.Sprintf(" (%q)", clip(e.Value))
	}
	return fmt.Sprintf("%v: %s at byte %d%s: %s", e.Err, field, e.Offset, value, e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }

// LookupError is the error of LookupRecord. It wraps ErrNoRecord,
// ErrMultipleRecords, ErrRecordLookup, ErrInvalidDomain or a *ParseError,
// and carries what DNS returned so that a checker can show it.
type LookupError struct {
	Name string   // the queried name, "_smtp._tls.<domain>"
	TXT  []string // every TXT record returned, including discarded ones
	Err  error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("tlsrpt: TXT %s: %v", e.Name, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// DecodeError is a report that Decode cannot turn into a Report. Err wraps
// ErrInvalidReport (and ErrTooLarge for exceeded limits) and says what is
// wrong.
type DecodeError struct {
	// Path locates the offending value in the JSON document, in the form
	// of Warning.Path ("policies[0].summary.total-failure-session-count");
	// "$" is the document itself.
	Path string
	// Offset is the byte offset in the input of the offending value or
	// syntax error, or -1 when unknown.
	Offset int64
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%v (at %s, byte %d)", e.Err, e.Path, e.Offset)
	}
	return fmt.Sprintf("%v (at %s)", e.Err, e.Path)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ValidationError is one rule of RFC 8460 §4 that a report breaks.
type ValidationError struct {
	Path   string // as in Warning.Path
	Reason string // the rule, in words, with the RFC section
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrNonConformant, e.Path, e.Reason)
}

func (e *ValidationError) Unwrap() error { return ErrNonConformant }

// clip shortens a value quoted in an error message to about 80 bytes.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	cut := 80
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// describeByte names a byte for an error message: 'a', space, 0x00.
func describeByte(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c == '\t':
		return "a tab"
	case c >= 0x21 && c <= 0x7e:
		return strconv.QuoteRune(rune(c))
	default:
		return fmt.Sprintf("byte 0x%02x", c)
	}
}
