// Package hosting is hosted MTA-STS (RFC 8461 §8.2 delegation): the hosted
// domains and their policy versions, the records customers publish, and the
// serving snapshot that DNS and HTTPS answer from.
//
// Every change to a domain's served policy records a new policy version with
// a new id in the same transaction (RFC 8461 §3.1: the id MUST change when
// the policy changes), so the TXT record and the policy file never disagree.
package hosting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/store"
)

// ErrInvalid is wrapped by every validation error (a *FieldError).
var ErrInvalid = errors.New("hosting: invalid")

// FieldError names the field and the value a write was refused for.
type FieldError struct {
	Field  string // "mode", "mx", "max_age", "rua", "domain"
	Value  string
	Reason string
	// Err is the cause when there is one: a *dnsname.Error for "domain"
	// and "mx", whose Reason is this Reason.
	Err error
}

func (e *FieldError) Error() string {
	field := e.Field
	if field == "domain" {
		// The same words as dnsname's errors, so that every entry point
		// (domains add, check, the API) says the same of the same name.
		field = "domain name"
	}
	return fmt.Sprintf("invalid %s %q: %s", field, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true, and errors.As reach the
// cause.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// nameError turns a dnsname error about value into a *FieldError of
// field, keeping dnsname's reason so that every command words it alike.
func nameError(field, value string, err error) error {
	fe := &FieldError{Field: field, Value: value, Reason: err.Error(), Err: err}
	var de *dnsname.Error
	if errors.As(err, &de) {
		fe.Reason = de.Reason
	}
	return fe
}

// Defaults for new domains.
const (
	DefaultMode   = "testing"
	DefaultMaxAge = 604800 // one week
	// MaxMaxAge is RFC 8461 §3.2's limit for max_age.
	MaxMaxAge = 31557600
)

// Settings is what every hosted domain shares: the service zone, the policy
// host and Moat's own TLS-RPT report URIs.
type Settings struct {
	Zone       string   // "sts.example.net"
	PolicyHost string   // "mta-sts.example.net"
	RUA        []string // published first in every _smtp._tls record
}

// Service changes hosted domains. It is safe for concurrent use.
type Service struct {
	st  store.DomainStore
	set Settings
	now func() time.Time
}

// New returns a Service over st. now may be nil (time.Now).
func New(st store.DomainStore, set Settings, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, set: set, now: now}
}

// Settings returns the shared settings.
func (s *Service) Settings() Settings { return s.set }

// Spec is the user-settable part of a domain.
type Spec struct {
	Org    int64    // the organization hosting it (store.Org.ID): required
	Mode   string   // default DefaultMode
	MX     []string // MX patterns
	MaxAge int64    // default DefaultMaxAge
	RUA    []string // extra TLS-RPT report URIs
}

// Change is a partial update; nil fields are left as they are.
type Change struct {
	Mode   *string
	MX     []string // nil: unchanged
	MaxAge *int64
	RUA    *[]string
}

// Add creates a hosted domain with its first policy version, for the
// organization spec.Org. A hosted name is an *AlreadyHostedError; an
// organization that does not exist is store.ErrNotFound (not a
// *NotHostedError), a spec.Org of 0 store.ErrInvalidArg.
func (s *Service) Add(ctx context.Context, name string, spec Spec) (*store.Domain, error) {
	a, err := DomainName(name)
	if err != nil {
		return nil, err
	}
	if spec.Mode == "" {
		spec.Mode = DefaultMode
	}
	if spec.MaxAge == 0 {
		spec.MaxAge = DefaultMaxAge
	}
	d := &store.Domain{Name: a, Mode: spec.Mode, MX: spec.MX, MaxAge: spec.MaxAge, RUA: spec.RUA, OrgID: spec.Org}
	if err := normalize(d); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	d.CreatedAt, d.UpdatedAt = now, now
	v, err := newVersion(d, "", 1, now)
	if err != nil {
		return nil, err
	}
	if err := s.st.CreateDomain(ctx, d, v); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, hostingErr(a, err)
		}
		return nil, err // not found here is the organization, not the domain
	}
	return d, nil
}

// Set applies ch to the domain. When the served policy changes a new
// version with a new id is recorded in the same transaction; changed says
// whether that happened.
func (s *Service) Set(ctx context.Context, name string, ch Change) (d *store.Domain, changed bool, err error) {
	a, err := DomainName(name)
	if err != nil {
		return nil, false, err
	}
	d, err = s.st.UpdateDomain(ctx, a, func(d *store.Domain) (*store.PolicyVersion, error) {
		changed = false
		before := policyOf(d)
		if ch.Mode != nil {
			d.Mode = *ch.Mode
		}
		if ch.MX != nil {
			d.MX = ch.MX
		}
		if ch.MaxAge != nil {
			d.MaxAge = *ch.MaxAge
		}
		if ch.RUA != nil {
			d.RUA = *ch.RUA
		}
		if err := normalize(d); err != nil {
			return nil, err
		}
		now := s.now().UTC()
		d.UpdatedAt = now
		if slices.Equal(before, policyOf(d)) {
			return nil, nil
		}
		changed = true
		return newVersion(d, d.PolicyID, d.Version+1, now)
	})
	if err != nil {
		return nil, false, hostingErr(a, err)
	}
	return d, changed, nil
}

// Remove stops hosting the domain.
func (s *Service) Remove(ctx context.Context, name string) error {
	a, err := LookupName(name)
	if err != nil {
		return err
	}
	return hostingErr(a, s.st.DeleteDomain(ctx, a))
}

// Get returns a domain and its policy versions, newest first.
func (s *Service) Get(ctx context.Context, name string) (*store.Domain, []*store.PolicyVersion, error) {
	a, err := LookupName(name)
	if err != nil {
		return nil, nil, err
	}
	d, err := s.st.Domain(ctx, a)
	if err != nil {
		return nil, nil, hostingErr(a, err)
	}
	vs, err := s.st.PolicyVersions(ctx, a)
	if err != nil {
		return nil, nil, hostingErr(a, err)
	}
	return d, vs, nil
}

// List returns every hosted domain, ordered by name.
func (s *Service) List(ctx context.Context) ([]*store.Domain, error) {
	return s.st.Domains(ctx)
}

// DomainName converts a user-given domain to host (U-label IDNs, upper
// case, a trailing dot) to the stored A-label form, or returns a
// *FieldError: a hosted domain is a mail domain, dnsname.Domain (a host
// name that is not a public suffix).
func DomainName(name string) (string, error) {
	a, err := dnsname.Parse(name, dnsname.Domain)
	if err != nil {
		return "", nameError("domain", name, err)
	}
	return a, nil
}

// LookupName converts a user-given name of a domain that may already be
// hosted (show, remove, report filters) to the stored form. It is more
// lenient than DomainName (dnsname.Owner), so that a domain added under
// older, looser rules can still be shown and removed.
func LookupName(name string) (string, error) {
	a, err := dnsname.Parse(name, dnsname.Owner)
	if err != nil {
		return "", nameError("domain", name, err)
	}
	return a, nil
}

// normalize validates d's settings and brings them into stored form: MX
// patterns as lower-case A-labels, duplicates removed.
func normalize(d *store.Domain) error {
	switch d.Mode {
	case "testing", "enforce", "none":
	default:
		return &FieldError{Field: "mode", Value: d.Mode, Reason: "want testing, enforce or none"}
	}
	if d.MaxAge < 0 || d.MaxAge > MaxMaxAge {
		// RFC 8461 §3.2: max_age has a maximum value of 31557600.
		return &FieldError{Field: "max_age", Value: strconv.FormatInt(d.MaxAge, 10), Reason: fmt.Sprintf("want 0 to %d seconds (RFC 8461 §3.2)", MaxMaxAge)}
	}
	mx := make([]string, 0, len(d.MX))
	for _, p := range d.MX {
		n, err := MXPattern(p)
		if err != nil {
			return err
		}
		if !slices.Contains(mx, n) {
			mx = append(mx, n)
		}
	}
	d.MX = mx
	if len(mx) == 0 && d.Mode != "none" {
		return &FieldError{Field: "mx", Value: "", Reason: fmt.Sprintf("at least one MX pattern is required in mode %s (RFC 8461 §3.2)", d.Mode)}
	}
	rua := make([]string, 0, len(d.RUA))
	for _, u := range d.RUA {
		u = strings.TrimSpace(u)
		if err := config.CheckRUA(u); err != nil {
			return &FieldError{Field: "rua", Value: u, Reason: err.Error()}
		}
		if !slices.Contains(rua, u) {
			rua = append(rua, u)
		}
	}
	d.RUA = rua
	return nil
}

// MXPattern validates one MX pattern, a host name (dnsname.Host) with an
// optional "*." prefix, and returns it as a lower-case A-label
// ("*.Exämple.com" → "*.xn--exmple-cua.com"). The result is valid for
// mtasts.ValidMXPattern.
func MXPattern(p string) (string, error) {
	a, err := dnsname.ParsePattern(p, dnsname.Host)
	if err != nil {
		return "", nameError("mx", p, err)
	}
	return a, nil
}

// policyOf returns the served policy text of d's current settings.
func policyOf(d *store.Domain) []byte {
	p := &mtasts.Policy{Version: "STSv1", Mode: mtasts.Mode(d.Mode), MX: d.MX, MaxAge: d.MaxAge}
	return p.Format()
}

// newVersion builds policy version number version of d, with a new id, and
// sets d's PolicyID and Version to it.
func newVersion(d *store.Domain, prevID string, version int64, now time.Time) (*store.PolicyVersion, error) {
	p := &mtasts.Policy{Version: "STSv1", Mode: mtasts.Mode(d.Mode), MX: d.MX, MaxAge: d.MaxAge}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: policy for %s: %w", ErrInvalid, d.Name, err)
	}
	id := PolicyID(now, prevID, version)
	d.PolicyID, d.Version = id, version
	return &store.PolicyVersion{
		Domain: d.Name, Version: version, PolicyID: id,
		Mode: d.Mode, MX: slices.Clone(d.MX), MaxAge: d.MaxAge,
		Policy: string(p.Format()), CreatedAt: now,
	}, nil
}

// PolicyID returns a new policy id: the compact UTC time of the change
// ("20261122T101500Z"), or, when that would not be later than the previous
// id's time (two changes in one second, or a clock stepped back), the
// previous time followed by the version number, which is unique per domain.
// RFC 8461 §3.1: id is 1 to 32 ALPHA / DIGIT and MUST change with the
// policy.
func PolicyID(now time.Time, prevID string, version int64) string {
	ts := now.UTC().Format("20060102T150405Z")
	const n = len("20060102T150405Z")
	if len(prevID) >= n && prevID[:n] >= ts {
		return prevID[:n] + strconv.FormatInt(version, 10)
	}
	return ts
}
