// Package txtrecord is what the versioned TXT records of email security
// (MTA-STS, RFC 8461 §3.1; TLS-RPT, RFC 8460 §3) share: the lookup, which
// queries the TXT records at a name, keeps those of the protocol's version
// and tells "none", "one" and "several" apart, as the RFCs treat them
// differently; and the Scanner for their common field syntax, "v=<version>"
// then "name=value" fields separated by ";".
package txtrecord

import (
	"context"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// Resolver looks up TXT records; *net.Resolver satisfies it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Outcome classifies a lookup.
type Outcome int

// Outcomes of Lookup.
const (
	One     Outcome = iota // exactly one record of the version
	None                   // the name does not exist, or has no record of the version
	Several                // more than one record of the version
	Failed                 // DNS failed otherwise: the answer is unknown
)

// Result is what Lookup found.
type Result struct {
	Outcome Outcome
	Matched []string // the records of the version
	All     []string // every TXT record at the name
	Err     error    // the DNS error, for None (NXDOMAIN/NODATA) and Failed
}

// Lookup queries the TXT records at name and keeps those for which keep
// is true. An error for which dnsname.IsNotFound is true is None, other
// errors Failed.
func Lookup(ctx context.Context, r Resolver, name string, keep func(string) bool) Result {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		if dnsname.IsNotFound(err) {
			return Result{Outcome: None, Err: err}
		}
		return Result{Outcome: Failed, Err: err}
	}
	res := Result{All: txts}
	for _, t := range txts {
		if keep(t) {
			res.Matched = append(res.Matched, t)
		}
	}
	switch len(res.Matched) {
	case 0:
		res.Outcome = None
	case 1:
		res.Outcome = One
	default:
		res.Outcome = Several
	}
	return res
}

// HasVersion reports whether txt begins with the version tag (such as
// "v=STSv1") followed by ";", a space, a tab or nothing: the ABNF of both
// RFCs allows white space before the ";", so "v=STSv1 ; id=a" is a record
// of the version and "v=STSv10; id=a" is not.
func HasVersion(txt, tag string) bool {
	rest, ok := strings.CutPrefix(txt, tag)
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// NoneReason says why no record of the version was found: "no TXT
// record" or "none of N TXT records begins with <tag>".
func (r Result) NoneReason(tag string) string {
	if len(r.All) == 0 {
		return "no TXT record"
	}
	return "none of " + strconv.Itoa(len(r.All)) + " TXT records begins with \"" + tag + "\""
}
