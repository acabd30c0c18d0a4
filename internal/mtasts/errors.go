package mtasts

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors about the "_mta-sts" TXT record (RFC 8461 §3.1). Each of them means,
// to a sender, that the domain has no available MTA-STS policy; a checker
// reports which one it was.
var (
	// ErrRecordSyntax is wrapped by every *ParseError: the record does not
	// match the ABNF of §3.1. Senders MUST then assume there is no policy.
	ErrRecordSyntax = errors.New("mtasts: invalid TXT record")
	// ErrNoRecord: the name has no TXT record beginning with "v=STSv1"
	// (NXDOMAIN, no TXT data, or only other records). The domain does not
	// use MTA-STS.
	ErrNoRecord = errors.New("mtasts: no MTA-STS TXT record")
	// ErrMultipleRecords: more than one TXT record begins with "v=STSv1".
	// RFC 8461 §3.1: senders MUST treat this as no policy; the domain owner
	// should delete all but one.
	ErrMultipleRecords = errors.New("mtasts: more than one MTA-STS TXT record")
	// ErrRecordLookup: the DNS query failed for another reason (timeout,
	// SERVFAIL, refused); the answer is unknown and may be retried.
	ErrRecordLookup = errors.New("mtasts: TXT record lookup failed")
)

// Errors about the policy file (RFC 8461 §3.2). They are wrapped by
// *PolicyError, which names the line, key and value.
var (
	// ErrPolicySyntax: a line is not "key: value" per the ABNF (bad key,
	// control characters, empty line, invalid UTF-8, ...).
	ErrPolicySyntax = errors.New("mtasts: invalid policy syntax")
	// ErrPolicyVersion: the version field is missing or is not "STSv1".
	ErrPolicyVersion = errors.New("mtasts: invalid policy version")
	// ErrPolicyMode: the mode field is missing or is not one of "enforce",
	// "testing", "none".
	ErrPolicyMode = errors.New("mtasts: invalid policy mode")
	// ErrPolicyMaxAge: max_age is missing, not 1 to 10 digits, or above
	// 31557600.
	ErrPolicyMaxAge = errors.New("mtasts: invalid policy max_age")
	// ErrPolicyMX: an mx value is not a valid pattern, or no mx is given
	// while mode is not "none".
	ErrPolicyMX = errors.New("mtasts: invalid policy mx")
	// ErrPolicyExtension: an extension field built by a caller has an
	// invalid name or value, or reuses a name defined by RFC 8461 (only
	// returned by Policy.Validate).
	ErrPolicyExtension = errors.New("mtasts: invalid policy extension field")
)

// Errors of the HTTPS policy fetch (RFC 8461 §3.3). They are wrapped by
// *FetchError. A sender with no cached policy MUST continue as though the
// domain had no MTA-STS when any of them occurs (§3.3).
var (
	// ErrInvalidDomain: the policy domain given to Fetch is not a host name.
	ErrInvalidDomain = errors.New("mtasts: invalid policy domain")
	// ErrFetchDNS: the Policy Host name did not resolve to any address.
	ErrFetchDNS = errors.New("mtasts: policy host does not resolve")
	// ErrFetchAddrRefused: every address of the Policy Host was refused by
	// FetchOpts.AllowAddr.
	ErrFetchAddrRefused = errors.New("mtasts: policy host address not allowed")
	// ErrFetchConnect: no TCP connection could be made, or the connection
	// failed during the HTTP exchange.
	ErrFetchConnect = errors.New("mtasts: cannot connect to policy host")
	// ErrFetchTLS: the TLS handshake failed; when the certificate was the
	// cause, the x509 error (unknown authority, hostname mismatch, expired)
	// is wrapped too.
	ErrFetchTLS = errors.New("mtasts: TLS with policy host failed")
	// ErrFetchStatus: the HTTP status was not 200 (RFC 8461 §3.3). Redirects
	// match it as well as ErrFetchRedirect.
	ErrFetchStatus = errors.New("mtasts: policy HTTP status not 200")
	// ErrFetchRedirect: the server answered with a 3xx status, which MUST
	// NOT be followed (RFC 8461 §3.3).
	ErrFetchRedirect = errors.New("mtasts: policy host redirects")
	// ErrFetchMediaType: the Content-Type is not text/plain (§3.2).
	ErrFetchMediaType = errors.New("mtasts: policy media type not text/plain")
	// ErrFetchTooLarge: the body is larger than FetchOpts.MaxBodySize.
	ErrFetchTooLarge = errors.New("mtasts: policy body too large")
	// ErrFetchTimeout: the fetch did not complete within FetchOpts.Timeout
	// or the context deadline. It is wrapped together with the sentinel of
	// the step that was running (ErrFetchDNS, ErrFetchConnect, ...).
	ErrFetchTimeout = errors.New("mtasts: policy fetch timed out")
)

// ParseError is a TXT record that does not match RFC 8461 §3.1.
type ParseError struct {
	Field  string // "v", "id", an extension name, or "" when no field was read
	Offset int    // byte offset in the record of the offending byte
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

// PolicyError is a policy file line or field that does not match RFC 8461
// §3.2, or a field of a built Policy that Validate rejects.
type PolicyError struct {
	Line   int    // 1-based line number; 0 when not tied to a line (missing field, Validate)
	Key    string // field name: "version", "mode", "max_age", "mx" or an extension name
	Value  string // the offending value as written
	Reason string // what is wrong, in words
	Err    error  // one of the ErrPolicy* sentinels
}

func (e *PolicyError) Error() string {
	var parts []string
	if e.Line > 0 {
		parts = append(parts, fmt.Sprintf("line %d", e.Line))
	}
	if e.Key != "" {
		parts = append(parts, fmt.Sprintf("key %q", e.Key))
	}
	if e.Value != "" {
		parts = append(parts, fmt.Sprintf("value %q", clip(e.Value)))
	}
	where := strings.Join(parts, ", ")
	if where != "" {
		where += ": "
	}
	return fmt.Sprintf("%v: %s%s", e.Err, where, e.Reason)
}

func (e *PolicyError) Unwrap() error { return e.Err }

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
