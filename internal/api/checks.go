package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// RunCheck checks domain with deps.Checker and stores the report for
// organization org of t (Tenant.InsertCheck). It returns the report, the
// JSON of `moat check --json`, and the stored record's id. Errors:
// a *CheckLimitError (Deps.CheckLimit), check.ErrInvalidDomain (a
// *dnsname.Error), check.ErrDNSUnavailable, the
// store's (store.ErrNotFound when org is outside t's scope).
func RunCheck(ctx context.Context, deps Deps, t store.Tenant, org int64, domain string) (*check.Report, int64, error) {
	if err := deps.AllowCheck(org); err != nil {
		return nil, 0, err
	}
	rep, err := deps.Checker.Check(ctx, domain)
	if err != nil {
		return nil, 0, err
	}
	js, err := json.Marshal(rep)
	if err != nil {
		return nil, 0, err
	}
	rec := &store.CheckRecord{OrgID: org, Domain: rep.Domain, CheckedAt: rep.CheckedAt, Score: rep.Score, Grade: rep.Grade, Report: js}
	if err := t.InsertCheck(ctx, rec); err != nil {
		return nil, 0, err
	}
	return rep, rec.ID, nil
}

func (s *server) runCheck(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body struct {
		Domain string `json:"domain"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	if body.Domain == "" {
		return invalid("domain", "required: the mail domain to check")
	}
	if s.Checker == nil {
		return errStatus(http.StatusServiceUnavailable, codeUnavailable, "domain checks are not enabled on this Moat")
	}
	rep, id, err := RunCheck(r.Context(), s.Deps, p.Tenant, org.ID, body.Domain)
	var (
		de *dnsname.Error
		le *CheckLimitError
	)
	switch {
	case errors.As(err, &le):
		w.Header().Set("Retry-After", strconv.FormatInt(int64((le.Wait+time.Second-1)/time.Second), 10))
		return errStatus(http.StatusTooManyRequests, codeRateLimited, le.Error())
	case errors.As(err, &de):
		return invalid("domain", de.Error())
	case errors.Is(err, check.ErrDNSUnavailable):
		return errStatus(http.StatusBadGateway, "dns_unavailable", err.Error())
	case err != nil:
		return err
	}
	w.Header().Set("Location", Prefix+"/checks/"+strconv.FormatInt(id, 10))
	writeJSON(w, http.StatusCreated, rep)
	return nil
}

// Check is the JSON of a stored check; Report is the check.Report (`moat
// check --json`), in the single-check answer only.
type Check struct {
	ID        int64           `json:"id"`
	Org       OrgRef          `json:"org"`
	Domain    string          `json:"domain"`
	CheckedAt time.Time       `json:"checked_at"`
	Score     int             `json:"score"`
	Grade     string          `json:"grade"`
	Report    json.RawMessage `json:"report,omitempty"`
}

// orgRef names organization id of p's scope.
func orgRef(ctx context.Context, p *auth.Principal, id int64, cache map[int64]OrgRef) (OrgRef, error) {
	if o, ok := cache[id]; ok {
		return o, nil
	}
	o, err := p.Tenant.Org(ctx, id)
	if err != nil {
		return OrgRef{}, err
	}
	ref := OrgRef{ID: o.ID, Name: o.Name}
	if cache != nil {
		cache[id] = ref
	}
	return ref, nil
}

func (s *server) getCheck(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := queryOf(r); err != nil {
		return err
	}
	c, err := p.Tenant.Check(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("no check with id %d", id))
	} else if err != nil {
		return err
	}
	org, err := orgRef(r.Context(), p, c.OrgID, nil)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Check{ID: c.ID, Org: org, Domain: c.Domain, CheckedAt: c.CheckedAt.UTC(), Score: c.Score,
		Grade: c.Grade, Report: c.Report})
	return nil
}

// domainChecks lists the checks of a domain made for the organizations of
// the scope, newest first. The store answers the newest 1000 without a
// cursor, so pages are cut from them here.
func (s *server) domainChecks(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, err := pathDomain(r)
	if err != nil {
		return err
	}
	q, err := queryOf(r, "after", "limit")
	if err != nil {
		return err
	}
	limit, err := limitOf(q)
	if err != nil {
		return err
	}
	c, err := cursorOf(q, "checks")
	if err != nil {
		return err
	}
	ctx := r.Context()
	all, err := p.Tenant.Checks(ctx, name, maxLimit)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		// Nothing checked: the domain must at least be hosted in the
		// scope, else it is as absent as any other.
		if _, err := p.Tenant.Domain(ctx, name); errors.Is(err, store.ErrNotFound) {
			return &hosting.NotHostedError{Domain: name}
		} else if err != nil {
			return err
		}
	}
	out := struct {
		Domain string  `json:"domain"`
		Checks []Check `json:"checks"`
		Next   string  `json:"next,omitempty"`
	}{Domain: name, Checks: []Check{}}
	orgs := map[int64]OrgRef{}
	for i, rec := range all {
		if c.ID != 0 {
			// Newest first by (checked_at, id): skip to after the cursor.
			t := rec.CheckedAt.UnixNano()
			if t > c.Time || (t == c.Time && rec.ID >= c.ID) {
				continue
			}
		}
		if len(out.Checks) == limit {
			prev := all[i-1]
			out.Next = cursor{List: "checks", Time: prev.CheckedAt.UnixNano(), ID: prev.ID}.String()
			break
		}
		org, err := orgRef(ctx, p, rec.OrgID, orgs)
		if err != nil {
			return err
		}
		out.Checks = append(out.Checks, Check{ID: rec.ID, Org: org, Domain: rec.Domain, CheckedAt: rec.CheckedAt.UTC(),
			Score: rec.Score, Grade: rec.Grade})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
