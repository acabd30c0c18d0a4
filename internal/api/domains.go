package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// Domain is the JSON of a hosted domain: its settings, where it belongs,
// and the state of what makes its MTA-STS work.
type Domain struct {
	Domain    string    `json:"domain"`
	Org       OrgRef    `json:"org"`
	Mode      string    `json:"mode"`
	MX        []string  `json:"mx"`
	MaxAge    int64     `json:"max_age"`
	RUA       []string  `json:"rua"`
	PolicyID  string    `json:"policy_id"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Sessions and failures the TLS reports counted in the 7 days before
	// now, and the newest report.
	Sessions7d int64      `json:"sessions_7d"`
	Failed7d   int64      `json:"failed_7d"`
	LastReport *time.Time `json:"last_report"`
	// The newest stored check, the policy host's certificate, the last
	// verification of the delegation: null when there is none.
	Check       *CheckSummary `json:"check"`
	Certificate *Certificate  `json:"certificate"`
	Verify      *Verification `json:"verify"`
	// Policy is the served policy text (single-domain answers only).
	Policy string `json:"policy,omitempty"`
}

// OrgRef names an organization.
type OrgRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// CheckSummary is the outcome of a stored check.
type CheckSummary struct {
	Score     int       `json:"score"`
	Grade     string    `json:"grade"`
	CheckedAt time.Time `json:"checked_at"`
}

// Certificate is the policy host's certificate as last obtained.
type Certificate struct {
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
}

// Verification is the result of verifying a domain's delegation in DNS.
type Verification struct {
	Domain     string          `json:"domain,omitempty"`
	VerifiedAt time.Time       `json:"verified_at"`
	OK         bool            `json:"ok"`
	Checks     []hosting.Check `json:"checks"`
}

// DomainOf is the JSON of a row of the overview.
func DomainOf(ds *store.DomainSummary) Domain {
	d := Domain{
		Domain: ds.Name, Org: OrgRef{ID: ds.OrgID, Name: ds.OrgName}, Mode: ds.Mode, MX: nonNil(ds.MX), MaxAge: ds.MaxAge,
		RUA: nonNil(ds.RUA), PolicyID: ds.PolicyID, Version: ds.Version, CreatedAt: ds.CreatedAt, UpdatedAt: ds.UpdatedAt,
		Sessions7d: ds.Sessions7d, Failed7d: ds.Failed7d, LastReport: timePtr(ds.LastReport),
	}
	if ds.Grade != "" {
		d.Check = &CheckSummary{Score: ds.Score, Grade: ds.Grade, CheckedAt: ds.CheckedAt.UTC()}
	}
	if !ds.CertIssuedAt.IsZero() {
		d.Certificate = &Certificate{IssuedAt: ds.CertIssuedAt.UTC(), Expires: ds.CertExpires.UTC()}
	}
	if !ds.VerifiedAt.IsZero() {
		v := &Verification{VerifiedAt: ds.VerifiedAt.UTC(), Checks: []hosting.Check{}}
		if json.Unmarshal(ds.Verify, &v.Checks) == nil {
			v.OK = len(v.Checks) > 0
			for i := range v.Checks {
				v.Checks[i].Found = nonNil(v.Checks[i].Found)
				v.OK = v.OK && v.Checks[i].OK()
			}
		}
		d.Verify = v
	}
	return d
}

// Overview sorts: the store's names; "-name" descends.
var overviewSorts = []string{"name", "failure_rate", "last_report", "grade", "expiry", "mode"}

// orgByName returns the organization of p's scope called name: 404 as if
// it did not exist when it is outside.
func orgByName(ctx context.Context, p *auth.Principal, field, name string) (*store.Org, error) {
	orgs, err := p.Tenant.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		if o.Name == name {
			return o, nil
		}
	}
	return nil, notFound(fmt.Sprintf("%s: no organization %q", field, name))
}

func (s *server) listDomains(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "after", "limit", "q", "mode", "sort", "org")
	if err != nil {
		return err
	}
	oq := store.OverviewQuery{Match: strings.ToLower(strings.TrimSpace(q.Get("q"))), Mode: q.Get("mode"), Now: s.Now()}
	switch oq.Mode {
	case "", "testing", "enforce", "none":
	default:
		return invalid("mode", fmt.Sprintf("%q: want testing, enforce or none", oq.Mode))
	}
	oq.Sort, oq.Desc = strings.CutPrefix(q.Get("sort"), "-")
	if oq.Sort == "" {
		oq.Sort = "name"
	}
	if !slices.Contains(overviewSorts, oq.Sort) {
		return invalid("sort", fmt.Sprintf("%q: want one of %s, with - before it to descend", q.Get("sort"), strings.Join(overviewSorts, ", ")))
	}
	if oq.Limit, err = limitOf(q); err != nil {
		return err
	}
	if len(oq.Match) > 253 {
		return invalid("q", "longer than a domain name")
	}
	if name := q.Get("org"); name != "" {
		o, err := orgByName(r.Context(), p, "org", name)
		if err != nil {
			return err
		}
		oq.Org = o.ID
	}
	oq.After = q.Get("after")
	limit := oq.Limit
	if limit < maxLimit {
		oq.Limit++ // one more says whether there is a next page
	}
	rows, err := p.Tenant.Overview(r.Context(), oq)
	if errors.Is(err, store.ErrInvalidArg) && oq.After != "" {
		return invalid("after", "not a cursor of this list and sort; pass the \"next\" of the previous page")
	}
	if err != nil {
		return err
	}
	total, err := p.Tenant.CountDomains(r.Context(), oq)
	if err != nil {
		return err
	}
	out := struct {
		Domains []Domain `json:"domains"`
		Total   int64    `json:"total"`
		Next    string   `json:"next,omitempty"`
	}{Domains: []Domain{}, Total: total}
	for i, ds := range rows {
		if i == limit {
			break
		}
		out.Domains = append(out.Domains, DomainOf(ds))
	}
	if len(rows) > limit || (limit == maxLimit && len(rows) == maxLimit) {
		out.Next = rows[limit-1].Cursor
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// summaryOf returns the overview row of one domain of the tenant, or a
// *hosting.NotHostedError.
func (s *server) summaryOf(ctx context.Context, t store.Tenant, name string) (*store.DomainSummary, error) {
	rows, err := t.Overview(ctx, store.OverviewQuery{Name: name, Limit: 1, Now: s.Now()})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &hosting.NotHostedError{Domain: name}
	}
	return rows[0], nil
}

// hostingFor is the hosting service within p's scope.
func (s *server) hostingFor(p *auth.Principal) *hosting.Service {
	return hosting.New(p.Tenant, s.Hosting, s.Now)
}

// newDomain is the body of POST /domains.
type newDomain struct {
	Name   string   `json:"name"`
	MX     []string `json:"mx"`
	Mode   string   `json:"mode"`
	MaxAge *int64   `json:"max_age"`
	RUA    []string `json:"rua"`
	Org    string   `json:"org"`
}

func (s *server) createDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body newDomain
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	if body.Org != "" {
		if org, err = orgByName(ctx, p, "org", body.Org); err != nil {
			return err
		}
	}
	spec := hosting.Spec{Org: org.ID, Mode: body.Mode, MX: body.MX, RUA: body.RUA}
	if body.MaxAge != nil {
		if *body.MaxAge == 0 {
			return invalid("max_age", "0: want 1 to 31557600 seconds, or leave it out for a week")
		}
		spec.MaxAge = *body.MaxAge
	}
	d, err := s.hostingFor(p).Add(ctx, body.Name, spec)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("org: no organization %q", org.Name))
	}
	if err != nil {
		return err
	}
	ds, err := s.summaryOf(ctx, p.Tenant, d.Name)
	if err != nil {
		return err
	}
	out := struct {
		Domain  Domain           `json:"domain"`
		Records []hosting.Record `json:"records"`
	}{DomainOf(ds), s.delegation(d.Name)}
	w.Header().Set("Location", Prefix+"/domains/"+url.PathEscape(d.Name))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// delegation is the records to publish, none when the zone is not set.
func (s *server) delegation(name string) []hosting.Record {
	if s.Hosting.Zone == "" {
		return []hosting.Record{}
	}
	return s.Hosting.Delegation(name)
}

func (s *server) getDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	ds, err := s.summaryOf(r.Context(), p.Tenant, name)
	if err != nil {
		return err
	}
	d := DomainOf(ds)
	_, vs, err := s.hostingFor(p).Get(r.Context(), name)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		d.Policy = vs[0].Policy
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// domainChange is the body of PATCH /domains/{name}.
type domainChange struct {
	Mode   *string   `json:"mode"`
	MX     *[]string `json:"mx"`
	MaxAge *int64    `json:"max_age"`
	RUA    *[]string `json:"rua"`
}

func (s *server) patchDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body domainChange
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	ch := hosting.Change{Mode: body.Mode, MaxAge: body.MaxAge, RUA: body.RUA}
	if body.MX != nil {
		ch.MX = nonNil(*body.MX)
	}
	if ch.Mode == nil && ch.MX == nil && ch.MaxAge == nil && ch.RUA == nil {
		return invalid("body", "nothing to change: give mode, mx, max_age or rua")
	}
	d, changed, err := s.hostingFor(p).Set(r.Context(), name, ch)
	if err != nil {
		return err
	}
	ds, err := s.summaryOf(r.Context(), p.Tenant, d.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Domain        Domain `json:"domain"`
		PolicyChanged bool   `json:"policy_changed"`
		PolicyID      string `json:"policy_id"`
	}{DomainOf(ds), changed, d.PolicyID})
	return nil
}

func (s *server) deleteDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	if err := s.hostingFor(p).Remove(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// needZone refuses what needs the service zone when it is not configured.
func (s *server) needZone() error {
	if s.Hosting.Zone == "" {
		return errStatus(http.StatusServiceUnavailable, codeUnavailable, "the service zone is not configured on this Moat")
	}
	return nil
}

func (s *server) domainRecords(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	d, _, err := s.hostingFor(p).Get(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.needZone(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Domain        string           `json:"domain"`
		CNAME         []hosting.Record `json:"cname"`
		SelfPublished []hosting.Record `json:"self_published"`
	}{d.Name, s.Hosting.Delegation(d.Name), s.Hosting.SelfPublished(d)})
	return nil
}

// VerifyDomain looks the delegation of a hosted domain of t up in DNS
// through deps.Resolver, stores the result (Tenant.RecordVerify; the
// overview shows it) and returns it: for each of the three names its
// status and, when it is wrong, the exact fix. The dashboard's Verify
// button calls it too. Errors: *hosting.NotHostedError, the store's.
func VerifyDomain(ctx context.Context, deps Deps, t store.Tenant, name string) (*Verification, error) {
	a, err := hosting.LookupName(name)
	if err != nil {
		return nil, err
	}
	d, err := t.Domain(ctx, a)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &hosting.NotHostedError{Domain: a}
	} else if err != nil {
		return nil, err
	}
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	checks := deps.Hosting.Verify(ctx, deps.Resolver, d)
	for i := range checks {
		checks[i].Found = nonNil(checks[i].Found)
	}
	v := &Verification{Domain: d.Name, VerifiedAt: now().UTC(), OK: true, Checks: checks}
	for _, c := range checks {
		v.OK = v.OK && c.OK()
	}
	js, err := json.Marshal(checks)
	if err != nil {
		return nil, err
	}
	if err := t.RecordVerify(ctx, d.Name, v.VerifiedAt, js); err != nil {
		return nil, err
	}
	return v, nil
}

func (s *server) verifyDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	if _, err := p.Tenant.Domain(r.Context(), name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &hosting.NotHostedError{Domain: name}
		}
		return err
	}
	if err := s.needZone(); err != nil {
		return err
	}
	if s.Resolver == nil {
		return errStatus(http.StatusServiceUnavailable, codeUnavailable, "no DNS resolver is configured on this Moat")
	}
	v, err := VerifyDomain(r.Context(), s.Deps, p.Tenant, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// Version is the JSON of a policy version (as `moat domains show --json`).
type Version struct {
	Version   int64     `json:"version"`
	PolicyID  string    `json:"policy_id"`
	Mode      string    `json:"mode"`
	MX        []string  `json:"mx"`
	MaxAge    int64     `json:"max_age"`
	Policy    string    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *server) domainVersions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	d, vs, err := s.hostingFor(p).Get(r.Context(), name)
	if err != nil {
		return err
	}
	out := struct {
		Domain   string    `json:"domain"`
		Versions []Version `json:"versions"`
	}{d.Name, []Version{}}
	for _, v := range vs {
		out.Versions = append(out.Versions, Version{Version: v.Version, PolicyID: v.PolicyID, Mode: v.Mode, MX: nonNil(v.MX),
			MaxAge: v.MaxAge, Policy: v.Policy, CreatedAt: v.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Event is the JSON of a domain event.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

func (s *server) domainEvents(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	q, err := queryOf(r, "since", "until")
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	since, err := parseTime("since", q.Get("since"), now)
	if err != nil {
		return err
	}
	until, err := parseTime("until", q.Get("until"), now)
	if err != nil {
		return err
	}
	es, err := p.Tenant.DomainEvents(r.Context(), name, since, until)
	if errors.Is(err, store.ErrNotFound) {
		return &hosting.NotHostedError{Domain: name}
	} else if err != nil {
		return err
	}
	out := struct {
		Domain string  `json:"domain"`
		Events []Event `json:"events"`
	}{name, []Event{}}
	for _, e := range es {
		out.Events = append(out.Events, Event{At: e.At.UTC(), Kind: e.Kind, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
