package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// DMARC failure reports (RFC 6591): the list, one report, and the
// organization's failure key in Settings. Private by default, as in the
// API (api.FailureViewOf): every page shows the redacted report; owners
// and admins get a link to the unredacted one (?unredacted=1), which a
// viewer is refused; a report sealed to the organization's age key shows
// only its searchable fields and how to decrypt it.

// failurePageSize is how many failure reports a page lists.
const failurePageSize = 50

// failuresData is the list page's.
type failuresData struct {
	Domain   string
	Failures []api.DMARCFailure
	Offset   int
	Next     int // the offset of the next page; 0 on the last
	Prev     int // the offset of the previous page; -1 on the first
}

func (pg *pages) failuresPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	q := r.URL.Query()
	data := &failuresData{Prev: -1}
	if d := strings.TrimSpace(q.Get("domain")); d != "" {
		name, err := hosting.LookupName(d)
		if err != nil {
			pg.fail(w, r, p, http.StatusBadRequest, "The domain "+clip(d, 100)+" is not a domain name.")
			return
		}
		// A domain outside the scope is not found, as on every page.
		if _, err := p.Tenant.Domain(r.Context(), name); err != nil {
			pg.storeFail(w, r, p, "such domain", err)
			return
		}
		data.Domain = name
	}
	if o, err := strconv.Atoi(q.Get("offset")); err == nil && o > 0 && o < 1_000_000 {
		data.Offset = o
	}
	l, err := p.Tenant.DMARCFailures(r.Context(), store.DMARCFilter{Domain: data.Domain, Limit: failurePageSize + 1, Offset: data.Offset})
	if err != nil {
		pg.storeFail(w, r, p, "such report", err)
		return
	}
	if len(l) > failurePageSize {
		l, data.Next = l[:failurePageSize], data.Offset+failurePageSize
	}
	if data.Offset > 0 {
		data.Prev = max(0, data.Offset-failurePageSize)
	}
	for _, f := range l {
		data.Failures = append(data.Failures, api.DMARCFailureOf(f))
	}
	pg.render(w, r, p, http.StatusOK, "dmarc_failures", "dmarc_failures", "DMARC failure reports", data)
}

// failureData is one report's page.
type failureData struct {
	View api.DMARCFailureView
	// Unredacted: the whole report is shown; CanUnredact: the principal
	// may ask for it.
	Unredacted, CanUnredact bool
	// Report is the whole parsed report as indented JSON (unredacted).
	Report string
}

func (pg *pages) failurePage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such failure report")
	if !ok {
		return
	}
	f, err := p.Tenant.DMARCFailureByID(r.Context(), id)
	if err != nil {
		pg.storeFail(w, r, p, "such failure report", err)
		return
	}
	data := &failureData{CanUnredact: p.Role == store.RoleOwner || p.Role == store.RoleAdmin}
	if v := r.URL.Query().Get("unredacted"); v == "1" || v == "true" {
		if !data.CanUnredact {
			pg.fail(w, r, p, http.StatusForbidden, "Failure reports hold people's addresses and subjects: only an owner or admin of the organization may see them unredacted.")
			return
		}
		data.Unredacted = f.Sealed == ""
	}
	data.View = api.FailureViewOf(f, data.Unredacted)
	if data.View.Report != nil {
		b, err := json.MarshalIndent(data.View.Report, "", "  ")
		if err == nil {
			data.Report = string(b)
		}
	}
	pg.render(w, r, p, http.StatusOK, "dmarc_failure", "dmarc_failures", "DMARC failure report "+itoa(f.ID), data)
}

// setFailureKey is Settings' form of the organization's age key.
func (pg *pages) setFailureKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	key := strings.TrimSpace(clip(r.PostFormValue("recipient"), 200))
	if r.PostFormValue("remove") == "yes" {
		key = ""
	}
	if err := store.CheckFailureKey(key); err != nil {
		pg.settingsError(w, r, p, http.StatusUnprocessableEntity, "failure_key",
			"The key must be an age public key, age1 followed by 58 characters (age-keygen prints it).", map[string]string{"recipient": key})
		return
	}
	if err := p.Tenant.SetFailureKey(r.Context(), p.Org.ID, key); err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: failure report key set", "org", p.Org.Name, "recipient", key, "who", p.Name())
	if key == "" {
		seeOther(w, r, "/settings", "Failure reports are stored unencrypted from now on.")
		return
	}
	seeOther(w, r, "/settings", "Failure reports are encrypted to "+key+" from now on.")
}
