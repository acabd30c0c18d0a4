package dmarcrpt

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors. Callers keep a report that fails with one of them as invalid,
// with the error text as the reason.
var (
	// ErrInvalidReport is wrapped by every *DecodeError: the input cannot
	// be read as a DMARC aggregate report at all (not XML, no <feedback>
	// element, XML broken beyond repair, a count that cannot be added up,
	// the input ending inside the report).
	ErrInvalidReport = errors.New("dmarcrpt: invalid aggregate report")
	// ErrTooLarge: the input exceeds a size or count limit of the options
	// (a token, a list in a record, the number of records, the
	// decompressed size).
	ErrTooLarge = errors.New("dmarcrpt: report too large")
	// ErrNoReport: an input (a mail, an archive) holds nothing that could
	// be an aggregate report. The error text lists what it holds.
	ErrNoReport = errors.New("dmarcrpt: no DMARC aggregate report found")
	// ErrNotFailureReport: a message is not an RFC 6591 authentication
	// failure report; the error says precisely why (no
	// message/feedback-report part, another Feedback-Type, ...).
	ErrNotFailureReport = errors.New("dmarcrpt: not a DMARC failure report")
)

// errInternal marks a panic recovered in an exported function: a bug,
// never an input problem. It is wrapped together with the function's
// sentinel.
var errInternal = errors.New("dmarcrpt: internal error")

// Warning is a deviation from RFC 7489 or RFC 9990 (or XML 1.0, RFC 6591)
// that the decoder accepted.
type Warning struct {
	// Path locates it: element names from the root, with the position of
	// repeated elements, e.g. "feedback/record[12]/row/count" (the
	// thirteenth record); "" for the input as a whole. Failure reports
	// use "mail/...", "feedback-report/<Field>" and "original/<Field>".
	Path string
	// Message says what was wrong and what was done, citing the rule.
	Message string
}

func (w Warning) String() string {
	if w.Path == "" {
		return w.Message
	}
	return w.Path + ": " + w.Message
}

// DecodeError is an aggregate report that cannot be read. It wraps
// ErrInvalidReport (and ErrTooLarge for a limit, or the reader's error).
type DecodeError struct {
	// Path is the element being read, as in Warning.Path ("" before the
	// root element).
	Path string
	// Offset is the byte offset in the input where reading stopped. For
	// input converted from another encoding (ISO-8859-1, windows-1252,
	// UTF-16), it counts bytes of the UTF-8 conversion.
	Offset int64
	// Line is the line number (1-based), 0 when unknown.
	Line int
	Err  error
}

func (e *DecodeError) Error() string {
	where := fmt.Sprintf("byte %d", e.Offset)
	if e.Line > 0 {
		where = fmt.Sprintf("line %d, byte %d", e.Line, e.Offset)
	}
	if e.Path != "" {
		where = e.Path + ", " + where
	}
	return fmt.Sprintf("%v (at %s)", e.Err, where)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// clip shortens a value quoted in a message to about 60 bytes.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	cut := 60
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
