package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/dmarcstats"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// What the DMARC aggregate reports say, from their daily rollups: the
// summary (as moat reports dmarc summary), the senders (as moat reports
// dmarc senders) and the impact of an enforcing policy (as moat reports
// dmarc impact). Each reads the principal's tenant, so a customer sees
// its own domains only; a domain outside the scope has no rows.

// defaultSince is the start of a period a request leaves out, as the
// CLI's --since default.
const defaultSince = 30 * 24 * time.Hour

// period reads since (default 30 days back; present and empty: all time)
// and until (default: no bound).
func period(q map[string][]string, now time.Time) (since, until time.Time, err error) {
	since = now.Add(-defaultSince)
	if v, ok := q["since"]; ok {
		if since, err = parseTime("since", v[0], now); err != nil {
			return since, until, err
		}
	}
	if v, ok := q["until"]; ok {
		until, err = parseTime("until", v[0], now)
	}
	return since, until, err
}

// Analyzer returns the sender analysis of rd for request paths: it reads
// the reverse DNS and SPF results that the background look-ups (moat
// serve's senders job, or the CLI) cached in the store, and asks DNS
// nothing.
func (d *Deps) Analyzer(rd senders.Reader) (*senders.Analyzer, error) {
	cache := d.SenderCache
	if cache == nil {
		c, ok := d.Store.(store.SenderCache)
		if !ok {
			return nil, errStatus(http.StatusServiceUnavailable, codeUnavailable, "the sender analysis has no cache of DNS facts")
		}
		cache = c
	}
	cat := d.Catalog
	if cat == nil {
		var err error
		if cat, err = senders.Builtin(); err != nil {
			return nil, err
		}
	}
	return senders.NewAnalyzer(rd, cache, nil, cat, senders.Options{CachedOnly: true}), nil
}

func (s *server) dmarcSummary(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "by")
	if err != nil {
		return err
	}
	domain, err := optionalDomain(q)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	since, _, err := period(q, now)
	if err != nil {
		return err
	}
	by := q.Get("by")
	if err := dmarcstats.CheckBy(by); err != nil {
		return invalid("by", fmt.Sprintf("%q: want day, domain, source, reporter, disposition or header-from, or empty for totals only", by))
	}
	sum, err := dmarcstats.Summarize(r.Context(), p.Tenant, dmarcstats.Query{Domain: domain, Since: since, Now: now, By: by})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

// senderQuery reads the domain (required) and period of a senders or
// impact request.
func senderQuery(q map[string][]string, now time.Time) (senders.Query, error) {
	domain, err := optionalDomain(q)
	if err != nil {
		return senders.Query{}, err
	}
	if domain == "" {
		return senders.Query{}, invalid("domain", "required: the domain whose senders to list")
	}
	since, until, err := period(q, now)
	return senders.Query{Domain: domain, Since: since, Until: until}, err
}

// flag reads a boolean parameter: absent, "", "0" or "false" is false;
// "1" or "true" is true.
func flag(q map[string][]string, name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	switch v[0] {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, invalid(name, fmt.Sprintf("%q: want 1 or 0", v[0]))
}

func (s *server) dmarcSenders(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "new")
	if err != nil {
		return err
	}
	sq, err := senderQuery(q, s.Now().UTC())
	if err != nil {
		return err
	}
	onlyNew, err := flag(q, "new")
	if err != nil {
		return err
	}
	a, err := s.Analyzer(p.Tenant)
	if err != nil {
		return err
	}
	if onlyNew {
		l, err := a.NewSources(r.Context(), sq)
		if err != nil {
			return err
		}
		if l == nil {
			l = []*senders.Source{}
		}
		writeJSON(w, http.StatusOK, NewSources{Domain: sq.Domain, Since: sq.Since, Sources: l})
		return nil
	}
	rep, err := a.Senders(r.Context(), sq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// NewSources is the JSON of the sources first seen in a period (`moat
// reports dmarc senders --new --json`, GET /api/v1/reports/dmarc/senders?new=1).
type NewSources struct {
	Domain  string            `json:"domain"`
	Since   time.Time         `json:"since"`
	Sources []*senders.Source `json:"sources"`
}

func (s *server) dmarcImpact(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "policy", "pct", "testing")
	if err != nil {
		return err
	}
	sq, err := senderQuery(q, s.Now().UTC())
	if err != nil {
		return err
	}
	pol := senders.Policy{P: "reject", Pct: 100}
	if v, ok := q["policy"]; ok {
		pol.P = v[0]
	}
	if v, ok := q["pct"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 || n > 100 {
			return invalid("pct", fmt.Sprintf("%q: want a whole number from 1 to 100", v[0]))
		}
		if n == 0 {
			// RFC 9989 removed pct; its pct=0 became t=y.
			return invalid("pct", "0: the policy would apply to no message; RFC 9989 replaced pct=0 with t=y: use testing=1")
		}
		pol.Pct = n
	}
	if pol.Testing, err = flag(q, "testing"); err != nil {
		return err
	}
	if _, err := senders.ComputeImpact("", nil, pol); err != nil {
		return invalid("policy", fmt.Sprintf("%q: %v", pol.P, err))
	}
	a, err := s.Analyzer(p.Tenant)
	if err != nil {
		return err
	}
	im, err := a.Impact(r.Context(), sq, pol)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, im)
	return nil
}
