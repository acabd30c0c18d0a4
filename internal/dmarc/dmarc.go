// Package dmarc parses and looks up DMARC policy records (RFC 7489, and
// the DMARCbis draft's np, psd and t tags) for the domain checker.
//
// What is implemented, by section:
//
//   - RFC 7489 §6.3, §6.4 and DMARCbis "Policy Record Format": ParseRecord
//     reads every tag (v, p, sp, np, adkim, aspf, pct, rua, ruf, ri, fo,
//     rf, psd, t) and reports invalid values as *TagError, unknown tags
//     and leniencies as Warnings. See ParseRecord for the decisions on
//     missing p, upper case and duplicates.
//   - RFC 7489 §6.6.3: Lookup queries _dmarc.<domain>, then
//     _dmarc.<organizational domain> (RFC 7489 §3.2 with the Public
//     Suffix List, dnsname.OrgDomain), with the version
//     test of steps 2 and 4 and the "exactly one record" rule of step 5.
//     Both names are queried at once to save a round trip.
//   - DMARCbis "DNS Tree Walk" and "Identifier Alignment Evaluation":
//     TreeWalk finds the policy record and organizational domain from
//     records published along the name (psd=y, psd=n), at most eight
//     queries, all in parallel.
//   - RFC 7489 §7.1: VerifyExternalReporting checks the
//     <domain>._report._dmarc.<report-domain> authorization record,
//     including the override rule of step 8.
//
// Not implemented here: aggregate and failure report formats, DMARC
// evaluation of a message.
package dmarc

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrSyntax: the record breaks the RFC 7489 §6.4 grammar. Invalid
	// tag values are returned as *TagError, which wraps it.
	ErrSyntax = errors.New("dmarc: syntax error")
	// ErrNoRecord: no "v=DMARC1" record at _dmarc.<domain> nor at the
	// organizational domain (RFC 7489 §6.6.3: DMARC does not apply). The
	// owner should publish one.
	ErrNoRecord = errors.New("dmarc: no DMARC record")
	// ErrMultipleRecords: more than one "v=DMARC1" record at a name
	// (RFC 7489 §6.6.3 step 5: no policy applies). The owner must keep
	// one.
	ErrMultipleRecords = errors.New("dmarc: multiple DMARC records")
	// ErrLookup: a DNS lookup failed with something other than NXDOMAIN
	// or NODATA. Retrying may help.
	ErrLookup = errors.New("dmarc: DNS lookup failed")
)

// TagError is an invalid tag: a value outside the tag's grammar, a
// missing required tag (Value ""), or a tag written twice.
type TagError struct {
	Tag, Value, Reason string
}

func (e *TagError) Error() string {
	return fmt.Sprintf("dmarc: tag %s=%q: %s", e.Tag, e.Value, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *TagError) Unwrap() error { return ErrSyntax }

// Warning is a non-fatal finding about a record: an unknown tag, a
// legacy tag, a leniency the parser allowed.
type Warning struct {
	Tag, Message string
}

func (w Warning) String() string { return w.Tag + ": " + w.Message }

// Policy is a requested handling policy (p, sp, np).
type Policy string

// Policies, RFC 7489 §6.3.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// Alignment is an identifier alignment mode (adkim, aspf).
type Alignment string

// Alignment modes, RFC 7489 §6.3.
const (
	AlignRelaxed Alignment = "r"
	AlignStrict  Alignment = "s"
)

// ReportURI is one rua or ruf destination (RFC 7489 §6.2, §6.4).
type ReportURI struct {
	Raw    string // as written, including any "!size"
	URI    string // without the size suffix
	Scheme string // lower case; "mailto" in practice
	// Address is, for mailto, the local@domain address (percent-decoded,
	// without any "?query"); for other schemes the URI.
	Address string
	// Domain is, for mailto, the address's domain; otherwise the URI's
	// host; lower case.
	Domain string
	// MaxSize is the size limit in bytes (units are powers of two,
	// RFC 7489 §6.4); 0 when none. Size is the limit as written ("10m").
	MaxSize uint64
	Size    string
}

// Record is a parsed DMARC record. Fields hold the effective values with
// the RFC defaults applied; Tags lists what was written.
type Record struct {
	Version string // "DMARC1"
	// Policy is p; "" only when p is missing or invalid (ParseRecord then
	// also returns a *TagError).
	Policy Policy
	// SubdomainPolicy is sp; "" when absent (p applies to subdomains).
	SubdomainPolicy Policy
	// NonexistentPolicy is np (DMARCbis); "" when absent (sp, else p,
	// applies to non-existent subdomains).
	NonexistentPolicy Policy
	ADKIM, ASPF       Alignment // default relaxed
	// Percent is pct, default 100 (legacy in DMARCbis).
	Percent int
	RUA     []ReportURI
	RUF     []ReportURI
	// ReportInterval is ri in seconds, default 86400.
	ReportInterval uint32
	// FailureOptions is fo split on ":", default ["0"].
	FailureOptions []string
	// ReportFormat is rf split on ":", default ["afrf"].
	ReportFormat []string
	// PSD is psd (DMARCbis): "y", "n" or "u" (the default).
	PSD string
	// Testing is t (DMARCbis): "y" or "n" (the default).
	Testing string
	// Tags are the tags as written, in order.
	Tags []Tag
}

// Tag is one tag=value pair as written (name in lower case, value with
// surrounding spaces removed).
type Tag struct {
	Name, Value string
}

// Has reports whether the record has the tag name (lower case).
func (r *Record) Has(name string) bool {
	for _, t := range r.Tags {
		if t.Name == name {
			return true
		}
	}
	return false
}

// EffectiveSubdomainPolicy is the policy for existing subdomains: sp,
// else p (RFC 7489 §6.3).
func (r *Record) EffectiveSubdomainPolicy() Policy {
	if r.SubdomainPolicy != "" {
		return r.SubdomainPolicy
	}
	return r.Policy
}

// EffectiveNonexistentPolicy is the policy for non-existent subdomains:
// np, else sp, else p (DMARCbis).
func (r *Record) EffectiveNonexistentPolicy() Policy {
	if r.NonexistentPolicy != "" {
		return r.NonexistentPolicy
	}
	return r.EffectiveSubdomainPolicy()
}
