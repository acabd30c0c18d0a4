package mtasts

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/txtrecord"
)

// TXTResolver looks up TXT records. *net.Resolver satisfies it. The
// contract is that of net.Resolver.LookupTXT: the strings of one record are
// concatenated (RFC 8461 §3.1: "as if those strings are concatenated
// without adding spaces"), CNAMEs are followed, and a name that does not
// exist or has no TXT data gives an error for which dnsname.IsNotFound
// is true.
// Implementations must be safe for concurrent use.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

var _ TXTResolver = (*net.Resolver)(nil)

// RecordName returns the name of the MTA-STS TXT record of a policy domain:
// "_mta-sts." + domain, without a trailing dot (RFC 8461 §3.1).
func RecordName(domain string) string {
	return "_mta-sts." + strings.ToLower(strings.TrimSuffix(domain, "."))
}

// LookupError is the error of LookupRecord. It wraps ErrNoRecord,
// ErrMultipleRecords, ErrRecordLookup or a *ParseError, and carries what
// DNS returned so that a checker can show it.
type LookupError struct {
	Name string   // the queried name, "_mta-sts.<domain>"
	TXT  []string // every TXT record returned, including discarded ones
	Err  error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("mtasts: TXT %s: %v", e.Name, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// LookupRecord looks up and parses the MTA-STS TXT record of domain (RFC
// 8461 §3.1). It returns the record and its raw text. Errors are
// *LookupError wrapping:
//   - ErrNoRecord when the name does not exist, has no TXT records, or has
//     none beginning with "v=STSv1";
//   - ErrMultipleRecords when more than one does;
//   - ErrRecordLookup when DNS failed otherwise (the answer is unknown);
//   - ErrInvalidDomain when domain is not a host name;
//   - a *ParseError (ErrRecordSyntax) when the one STSv1 record is
//     invalid; the raw text is returned then too.
//
// RFC 8461 §3.1 discards "records that do not begin with "v=STSv1;"".
// Because the ABNF allows whitespace before the ";", a record is kept when
// it begins with "v=STSv1" followed by ";", a space, a tab, or nothing; so
// "v=STSv1  ; id=a" is a record (and valid), "v=STSv1" alone is a record
// (invalid: no id), and "v=STSv10; id=a" is discarded as another version.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (*Record, string, error) {
	name := RecordName(domain)
	if err := dnsname.Check(strings.TrimSuffix(domain, "."), dnsname.Host); err != nil {
		return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)}
	}
	res := txtrecord.Lookup(ctx, r, name, isSTSv1Record)
	switch res.Outcome {
	case txtrecord.Failed:
		return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrRecordLookup, res.Err)}
	case txtrecord.None:
		if res.Err != nil {
			return nil, "", &LookupError{Name: name, Err: fmt.Errorf("%w: %w", ErrNoRecord, res.Err)}
		}
		return nil, "", &LookupError{Name: name, TXT: res.All, Err: fmt.Errorf("%w: %s", ErrNoRecord, res.NoneReason("v="+Version))}
	case txtrecord.Several:
		// RFC 8461 §3.1: if the number of resulting records is not one,
		// senders MUST assume there is no available policy.
		return nil, "", &LookupError{Name: name, TXT: res.All, Err: fmt.Errorf("%w: %d records begin with \"v=STSv1\": %q", ErrMultipleRecords, len(res.Matched), res.Matched)}
	}
	rec, err := ParseRecord(res.Matched[0])
	if err != nil {
		// RFC 8461 §3.1: a syntactically invalid record means no policy.
		return nil, res.Matched[0], &LookupError{Name: name, TXT: res.All, Err: err}
	}
	return rec, res.Matched[0], nil
}

func isSTSv1Record(t string) bool { return txtrecord.HasVersion(t, "v="+Version) }
