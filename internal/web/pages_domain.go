package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// domainForm is the form of a domain's settings, as typed, with a
// message per field that was refused.
type domainForm struct {
	Name   string
	Mode   string
	MX     string // one pattern per line
	MaxAge string
	Org    int64
	Note   string            // a note at the MX field
	Errors map[string]string // by hosting.FieldError field: "domain", "mode", "mx", "max_age"
}

func (f *domainForm) fieldError(err error) bool {
	var fe *hosting.FieldError
	if !errors.As(err, &fe) {
		return false
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[fe.Field] = fe.Error()
	return true
}

func (f *domainForm) mx() []string {
	return strings.FieldsFunc(f.MX, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// maxAge parses the max_age field; ok is false (with its message set)
// when it is not a number.
func (f *domainForm) maxAge() (int64, bool) {
	if strings.TrimSpace(f.MaxAge) == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(strings.TrimSpace(f.MaxAge), 10, 64)
	if err != nil {
		if f.Errors == nil {
			f.Errors = map[string]string{}
		}
		f.Errors["max_age"] = "max_age must be a whole number of seconds, from 0 to " + strconv.Itoa(hosting.MaxMaxAge) + "."
		return 0, false
	}
	return n, true
}

func formOf(r *http.Request) *domainForm {
	return &domainForm{
		Name:   strings.TrimSpace(clip(r.PostFormValue("name"), 300)),
		Mode:   r.PostFormValue("mode"),
		MX:     clip(r.PostFormValue("mx"), 5000),
		MaxAge: clip(r.PostFormValue("max_age"), 20),
	}
}

type newDomainData struct {
	Form *domainForm
	Orgs []*store.Org // where the domain may go, when more than one
}

func (pg *pages) newDomainForm(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	f := &domainForm{Mode: hosting.DefaultMode, MaxAge: strconv.Itoa(hosting.DefaultMaxAge), Org: p.Org.ID}
	pg.render(w, r, p, http.StatusOK, "domain_new", "overview", "Add a domain", &newDomainData{Form: f, Orgs: pg.writableOrgs(r.Context(), p)})
}

// writableOrgs are the organizations a domain may be added to: the
// principal's and, for an MSP, its customers; nil when only one.
func (pg *pages) writableOrgs(ctx context.Context, p *auth.Principal) []*store.Org {
	orgs, err := p.Tenant.Orgs(ctx)
	if err != nil || len(orgs) < 2 {
		return nil
	}
	return orgs
}

func (pg *pages) addDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	f := formOf(r)
	f.Org = p.Org.ID
	if o := r.PostFormValue("org"); o != "" {
		id, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			pg.notFound(w, r, p, "such organization")
			return
		}
		if _, err := p.Tenant.Org(ctx, id); err != nil {
			pg.storeFail(w, r, p, "such organization", err)
			return
		}
		f.Org = id
	}
	data := &newDomainData{Form: f, Orgs: pg.writableOrgs(ctx, p)}
	maxAge, ok := f.maxAge()
	if !ok {
		pg.render(w, r, p, http.StatusUnprocessableEntity, "domain_new", "overview", "Add a domain", data, "The domain was not added: correct the fields marked.")
		return
	}
	d, err := pg.hosting(p).Add(ctx, f.Name, hosting.Spec{Mode: f.Mode, MX: f.mx(), MaxAge: maxAge, Org: f.Org})
	switch {
	case err == nil:
	case f.fieldError(err):
		pg.render(w, r, p, http.StatusUnprocessableEntity, "domain_new", "overview", "Add a domain", data, "The domain was not added: correct the fields marked.")
		return
	case errors.Is(err, store.ErrExists):
		f.Errors = map[string]string{"domain": f.Name + " is hosted by Moat already. If it is yours and you cannot see it, ask the operator."}
		pg.render(w, r, p, http.StatusConflict, "domain_new", "overview", "Add a domain", data, "The domain was not added.")
		return
	default:
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: domain added", "domain", d.Name, "who", p.Name())
	seeOther(w, r, "/domains/"+d.Name+"/setup", d.Name+" is added. Publish the three records below, then verify them.")
}

type setupData struct {
	Domain   *store.Domain
	Records  []hosting.Record
	DMARC    *dmarcAddress   // nil when no DMARC address is configured
	Checks   []hosting.Check // the last verify, or nil
	Verified string          // when, or ""
	CanWrite bool
}

func (pg *pages) setupPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	data := &setupData{Domain: d, Records: pg.deps.Hosting.Delegation(d.Name), CanWrite: p.Can(auth.PermWrite), DMARC: pg.dmarcAddress(d.Name)}
	if s := pg.summary(r.Context(), p, d.Name); s != nil && !s.VerifiedAt.IsZero() {
		if json.Unmarshal(s.Verify, &data.Checks) == nil {
			data.Verified = s.VerifiedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	pg.render(w, r, p, http.StatusOK, "domain_setup", "overview", "Records of "+d.Name, data, "", notice(r))
}

// summary returns the overview row of one domain, or nil.
func (pg *pages) summary(ctx context.Context, p *auth.Principal, name string) *store.DomainSummary {
	rows, err := p.Tenant.Overview(ctx, store.OverviewQuery{Name: name, Limit: 1, Now: pg.now()})
	if err != nil || len(rows) == 0 {
		return nil
	}
	return rows[0]
}

func (pg *pages) verify(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	ctx := r.Context()
	checks := pg.deps.Hosting.Verify(ctx, pg.deps.Resolver, d)
	raw, err := json.Marshal(checks)
	if err == nil {
		err = p.Tenant.RecordVerify(ctx, d.Name, pg.now(), raw)
	}
	if err != nil {
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	data := &setupData{Domain: d, Records: pg.deps.Hosting.Delegation(d.Name), DMARC: pg.dmarcAddress(d.Name), Checks: checks,
		Verified: pg.now().Format("2006-01-02 15:04 UTC"), CanWrite: true}
	pg.render(w, r, p, http.StatusOK, "domain_setup", "overview", "Records of "+d.Name, data)
}

type domainData struct {
	Domain   *store.Domain
	Summary  *store.DomainSummary
	Versions []*store.PolicyVersion
	Form     *domainForm
	// Verdict is the readiness to enforce, shown while the mode is not
	// enforce; Confirm asks to confirm a switch the verdict advises
	// against.
	Verdict  *tlsrptstats.Verdict
	Confirm  bool
	OrgName  string
	CanWrite bool
}

func (pg *pages) domainData(ctx context.Context, p *auth.Principal, d *store.Domain, f *domainForm) (*domainData, error) {
	vs, err := p.Tenant.PolicyVersions(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	if f == nil {
		f = &domainForm{Name: d.Name, Mode: d.Mode, MX: strings.Join(d.MX, "\n"), MaxAge: strconv.FormatInt(d.MaxAge, 10)}
	}
	data := &domainData{Domain: d, Versions: vs, Form: f, CanWrite: p.Can(auth.PermWrite), Summary: pg.summary(ctx, p, d.Name)}
	if o, err := p.Tenant.Org(ctx, d.OrgID); err == nil {
		data.OrgName = displayName(o)
	}
	if d.Mode != "enforce" {
		v, err := tlsrptstats.ReadyToEnforce(ctx, p.Tenant, d.Name, pg.now(), tlsrptstats.ReadinessOpts{})
		if err != nil {
			return nil, err
		}
		data.Verdict = v
	}
	return data, nil
}

func (pg *pages) domainPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	data, err := pg.domainData(r.Context(), p, d, nil)
	if err != nil {
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	pg.render(w, r, p, http.StatusOK, "domain", "overview", d.Name, data, "", notice(r))
}

func (pg *pages) updateDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	f := formOf(r)
	f.Name = d.Name
	data, err := pg.domainData(ctx, p, d, f)
	if err != nil {
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	title := d.Name
	maxAge, ok := f.maxAge()
	if !ok {
		pg.render(w, r, p, http.StatusUnprocessableEntity, "domain", "overview", title, data, "Nothing was changed: correct the fields marked.")
		return
	}
	// RFC 8461 §5: under enforce, senders do not deliver to an MX that
	// fails validation; switching against the verdict needs a
	// confirmation.
	if f.Mode == "enforce" && d.Mode != "enforce" && data.Verdict != nil && !data.Verdict.Ready && r.PostFormValue("confirm") != "yes" {
		data.Confirm = true
		pg.render(w, r, p, http.StatusConflict, "domain", "overview", title, data,
			"The TLS reports say "+d.Name+" is not ready for enforce: "+strings.TrimSuffix(data.Verdict.Reason, ".")+". Confirm below to enforce anyway.")
		return
	}
	ch := hosting.Change{Mode: &f.Mode, MX: f.mx(), MaxAge: &maxAge}
	if ch.MX == nil {
		ch.MX = []string{}
	}
	nd, changed, err := pg.hosting(p).Set(ctx, d.Name, ch)
	switch {
	case err == nil:
	case f.fieldError(err):
		pg.render(w, r, p, http.StatusUnprocessableEntity, "domain", "overview", title, data, "Nothing was changed: correct the fields marked.")
		return
	default:
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	msg := "Nothing changed: the policy is as it was."
	if changed {
		msg = "Saved: policy version " + strconv.FormatInt(nd.Version, 10) + " with id " + nd.PolicyID + " is served now."
		pg.s.log.Info("dashboard: domain changed", "domain", nd.Name, "version", nd.Version, "mode", nd.Mode, "who", p.Name())
	}
	seeOther(w, r, "/domains/"+d.Name, msg)
}

// liveMX fills the MX field with the domain's MX records as DNS answers
// them now. Nothing is saved.
func (pg *pages) liveMX(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	f := formOf(r)
	f.Name = d.Name
	data, err := pg.domainData(ctx, p, d, f)
	if err != nil {
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	hosts, err := pg.lookupMX(ctx, d.Name)
	f.Errors = map[string]string{}
	switch {
	case err != nil:
		f.Errors["mx"] = "The MX lookup failed: " + err.Error()
	case len(hosts) == 0:
		f.Errors["mx"] = d.Name + " has no MX records in DNS."
	default:
		f.MX = strings.Join(hosts, "\n")
		f.Note = "The MX field holds the live MX records now (" + strings.Join(hosts, ", ") + "). Save to apply them."
	}
	pg.render(w, r, p, http.StatusOK, "domain", "overview", d.Name, data)
}

// lookupMX returns the MX hosts of domain, most preferred first.
func (pg *pages) lookupMX(ctx context.Context, domain string) ([]string, error) {
	m, err := pg.deps.Resolver.Exchange(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return nil, errors.New("the resolver answered " + dns.RcodeToString[m.Rcode])
	}
	var mxs []*dns.MX
	for _, rr := range m.Answer {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
			mxs = append(mxs, mx)
		}
	}
	slices.SortStableFunc(mxs, func(a, b *dns.MX) int { return cmp.Compare(a.Preference, b.Preference) })
	var out []string
	for _, mx := range mxs {
		h := strings.TrimSuffix(strings.ToLower(mx.Mx), ".")
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

func (pg *pages) deleteDomain(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	if strings.TrimSpace(strings.ToLower(r.PostFormValue("confirm"))) != d.Name {
		data, err := pg.domainData(r.Context(), p, d, nil)
		if err != nil {
			pg.storeFail(w, r, p, "domain "+d.Name, err)
			return
		}
		pg.render(w, r, p, http.StatusUnprocessableEntity, "domain", "overview", d.Name, data,
			"The domain was not removed: type its name, "+d.Name+", to confirm.")
		return
	}
	if err := pg.hosting(p).Remove(r.Context(), d.Name); err != nil {
		pg.storeFail(w, r, p, "domain "+d.Name, err)
		return
	}
	pg.s.log.Info("dashboard: domain removed", "domain", d.Name, "who", p.Name())
	seeOther(w, r, "/", d.Name+" is removed. Remove its three CNAME records from your DNS too.")
}

// dmarcAddress is where a domain's DMARC reports go: the first address
// of intake.dmarc_addresses, as rua and ruf, and the RFC 7489 §7.1
// authorization of that address for the domain.
type dmarcAddress struct {
	Address string // dmarc@reports.example.net
	Tags    string // "rua=mailto:...; ruf=mailto:..."
	Record  string // an example DMARC record of the domain with them
	// AuthName is the name of the authorization record,
	// <domain>._report._dmarc.<address domain>; AuthServed says whether
	// Moat's DNS server answers it (the address domain is in the zone).
	AuthName   string
	AuthServed bool
}

func (pg *pages) dmarcAddress(domain string) *dmarcAddress {
	addrs := pg.s.cfg.Intake.DMARCAddresses
	if len(addrs) == 0 {
		return nil
	}
	a := &dmarcAddress{Address: addrs[0]}
	a.Tags = "rua=mailto:" + a.Address + "; ruf=mailto:" + a.Address
	a.Record = "_dmarc." + domain + ". TXT \"v=DMARC1; p=none; " + a.Tags + "; fo=1\""
	_, at, ok := strings.Cut(a.Address, "@")
	if !ok || at == "" {
		return a
	}
	// RFC 7489 §7.1: a report address outside the domain's organizational
	// domain must be authorized by the report domain.
	a.AuthName = domain + "._report._dmarc." + at + "."
	zone := pg.s.cfg.Zone
	a.AuthServed = zone != "" && (at == zone || strings.HasSuffix(at, "."+zone))
	return a
}
