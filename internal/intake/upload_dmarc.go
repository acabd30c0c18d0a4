package intake

import (
	"context"
	"errors"
	"fmt"

	"github.com/moatmail/moat/internal/store"
)

// DMARC uploads by a user: what the dashboard's upload form needs besides
// SubmitFile, so that it and the API's POST /api/v1/reports/dmarc store
// and judge an uploaded file the same way.

// ErrNotAllowed means an uploaded file holds a report its uploader may
// not store: a TLS report sent to a DMARC upload, a report about a domain
// outside the uploader's organizations, or one whose domain cannot be read
// (only the operator may keep those). Nothing of the file is stored; the
// error says which report, for the user.
var ErrNotAllowed = errors.New("intake: report not allowed in this upload")

// UploadScope is the uploader's view of the hosted domains: a
// store.Tenant.
type UploadScope interface {
	Scope() store.Scope
	// Domain returns a domain hosted in the scope; store.ErrNotFound
	// when it is not.
	Domain(ctx context.Context, name string) (*store.Domain, error)
}

// DMARCUploadAllow returns the FileOpts.Allow of a DMARC upload within
// scope: DMARC aggregate and failure reports only, about a domain hosted
// in the scope (the operator may store any, those of unreadable reports
// included). Refusals are ErrNotAllowed; a store error is returned as is.
func DMARCUploadAllow(ctx context.Context, scope UploadScope) func(kind, domain string) error {
	operator := scope.Scope().Operator
	known := map[string]bool{}
	return func(kind, domain string) error {
		switch {
		case kind == store.KindTLSRPT:
			return fmt.Errorf("%w: the file holds a TLS report, not a DMARC report", ErrNotAllowed)
		case operator:
			return nil
		case domain == "":
			return fmt.Errorf("%w: a report whose domain cannot be read: only the operator can keep it", ErrNotAllowed)
		}
		ok, seen := known[domain]
		if !seen {
			_, err := scope.Domain(ctx, domain)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			ok = err == nil
			known[domain] = ok
		}
		if !ok {
			return fmt.Errorf("%w: a report about %q, which is not hosted in your organization", ErrNotAllowed, domain)
		}
		return nil
	}
}

// Outcome is what became of a submitted report, as the intake log and
// the outcome counters name it: OutcomeDuplicate, OutcomeConflict,
// OutcomeInvalid (stored, marked with Error) or OutcomeStored.
func (r *Result) Outcome() string {
	switch {
	case r.Duplicate:
		return OutcomeDuplicate
	case r.ConflictOf != 0:
		return OutcomeConflict
	case r.Status == store.ReportInvalid:
		return OutcomeInvalid
	}
	return OutcomeStored
}
