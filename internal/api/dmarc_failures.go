package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/store"
)

// DMARC failure reports (RFC 6591, RFC 7489 §7.3): list, one report, its
// bytes, and the organization's failure key. A report belongs to the
// organizations hosting its reported domain (the tenant's DMARCReader).
//
// Private by default: every answer is redacted (dmarcrpt.RedactFailure:
// addresses masked to j***@example.com, subjects and all but the
// authentication header fields of the reported message removed). The
// unredacted report (?unredacted=1) and the plain raw message are for the
// organization's owners and admins only, never for viewers or read-scope
// tokens. A report sealed to the organization's age key (store: Sealed)
// is ciphertext on the server: the API gives its searchable fields and,
// from /raw, the age ciphertext, which `moat reports dmarc decrypt` or
// `age -d` opens with the organization's identity.
//
// The paths are /reports/dmarc-failures/...: /reports/dmarc/failures/{id}
// would conflict with /reports/dmarc/{id}/raw in net/http's mux (both
// match /reports/dmarc/failures/raw and neither is more specific).

// DMARCFailure is the JSON of a stored failure report's searchable
// fields: what the list answers and what `moat reports dmarc failures
// --json` prints. None of them holds an address or a subject.
type DMARCFailure struct {
	ID                int64     `json:"id"`
	ReceivedAt        time.Time `json:"received_at"`
	Source            string    `json:"source"`
	Status            string    `json:"status"`
	Warnings          []string  `json:"warnings"`
	Domain            string    `json:"domain"`
	Reporter          string    `json:"reporter"`
	FeedbackType      string    `json:"feedback_type"`
	AuthFailure       string    `json:"auth_failure"`
	DeliveryResult    string    `json:"delivery_result,omitempty"`
	SourceIP          string    `json:"source_ip,omitempty"`
	ArrivalDate       time.Time `json:"arrival_date,omitzero"`
	ReportingMTA      string    `json:"reporting_mta,omitempty"`
	DKIMDomain        string    `json:"dkim_domain,omitempty"`
	DKIMSelector      string    `json:"dkim_selector,omitempty"`
	IdentityAlignment []string  `json:"identity_alignment"`
	Incidents         int64     `json:"incidents"`
	// SealedTo is the age recipient the report is encrypted to; absent
	// when it is stored unencrypted.
	SealedTo string `json:"sealed_to,omitempty"`
}

// DMARCFailureOf is the JSON of f.
func DMARCFailureOf(f *store.DMARCFailure) DMARCFailure {
	return DMARCFailure{ID: f.ID, ReceivedAt: f.ReceivedAt.UTC(), Source: f.Source, Status: f.Status,
		Warnings: nonNil(f.Warnings), Domain: f.Domain, Reporter: f.Reporter, FeedbackType: f.FeedbackType,
		AuthFailure: f.AuthFailure, DeliveryResult: f.DeliveryResult, SourceIP: f.SourceIP, ArrivalDate: f.ArrivalDate,
		ReportingMTA: f.ReportingMTA, DKIMDomain: f.DKIMDomain, DKIMSelector: f.DKIMSelector,
		IdentityAlignment: nonNil(f.IdentityAlignment), Incidents: f.Incidents, SealedTo: f.Sealed}
}

// DMARCFailureList is a page of failure reports.
type DMARCFailureList struct {
	Failures []DMARCFailure `json:"failures"`
	Next     string         `json:"next,omitempty"`
}

// DMARCFailureView is one failure report: its searchable fields, and the
// report redacted (Redacted), or whole (Report, when asked for by an
// owner or admin), or, when sealed, neither but how to decrypt it.
type DMARCFailureView struct {
	DMARCFailure
	Redacted *dmarcrpt.RedactedFailure `json:"redacted,omitempty"`
	Report   *dmarcrpt.FailureReport   `json:"report,omitempty"`
	// Error says why the stored message no longer parses (it did at
	// intake; a later parser may be stricter).
	Error string `json:"error,omitempty"`
	// Decrypt says how to read a sealed report.
	Decrypt string `json:"decrypt,omitempty"`
}

// DecryptHint is how to read the report id sealed to recipient.
func DecryptHint(id int64, recipient string) string {
	return fmt.Sprintf("encrypted to your organization's key %s: decrypt with `moat reports dmarc decrypt --identity KEYFILE %d` "+
		"(or GET /api/v1/reports/dmarc-failures/%d/raw | age -d -i KEYFILE)", recipient, id, id)
}

// FailureViewOf is the view of f (read with its Raw): redacted unless
// unredacted.
func FailureViewOf(f *store.DMARCFailure, unredacted bool) DMARCFailureView {
	v := DMARCFailureView{DMARCFailure: DMARCFailureOf(f)}
	if f.Sealed != "" {
		v.Decrypt = DecryptHint(f.ID, f.Sealed)
		return v
	}
	if unredacted {
		rep, _, err := dmarcrpt.ParseFailure(f.Raw, dmarcrpt.FailureOptions{})
		if err != nil {
			v.Error = err.Error()
		}
		v.Report = rep
		return v
	}
	rf, err := dmarcrpt.RedactFailure(f.Raw, dmarcrpt.FailureOptions{})
	if err != nil {
		// The parser's error can quote the message: masked too.
		v.Error = dmarcrpt.MaskText(err.Error())
	}
	v.Redacted = rf
	return v
}

// mayUnredact reports whether p may see failure reports unredacted: an
// owner or admin of the organization (a write-scope token is an admin),
// never a viewer.
func mayUnredact(p *auth.Principal) bool {
	return p.Role == store.RoleOwner || p.Role == store.RoleAdmin
}

func (s *server) listFailures(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "after", "limit")
	if err != nil {
		return err
	}
	var f store.DMARCFilter
	if f.Domain, err = optionalDomain(q); err != nil {
		return err
	}
	now := s.Now().UTC()
	if f.Since, err = parseTime("since", q.Get("since"), now); err != nil {
		return err
	}
	if f.Until, err = parseTime("until", q.Get("until"), now); err != nil {
		return err
	}
	limit, err := limitOf(q)
	if err != nil {
		return err
	}
	c, err := cursorOf(q, "dmarc-failures")
	if err != nil {
		return err
	}
	f.Offset, f.Limit = c.Offset, limit
	l, err := p.Tenant.DMARCFailures(r.Context(), f)
	if err != nil {
		return err
	}
	out := DMARCFailureList{Failures: make([]DMARCFailure, 0, len(l))}
	for _, fr := range l {
		out.Failures = append(out.Failures, DMARCFailureOf(fr))
	}
	if len(l) == limit {
		// One more row tells whether there is a next page.
		f.Offset, f.Limit = c.Offset+limit, 1
		more, err := p.Tenant.DMARCFailures(r.Context(), f)
		if err != nil {
			return err
		}
		if len(more) > 0 {
			out.Next = cursor{List: "dmarc-failures", Offset: c.Offset + limit}.String()
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// failure returns the failure report of the path's id within p's scope,
// and whether the unredacted report was asked for (and allowed).
func failure(r *http.Request, p *auth.Principal) (*store.DMARCFailure, bool, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, false, err
	}
	q, err := queryOf(r, "unredacted")
	if err != nil {
		return nil, false, err
	}
	unredacted := false
	switch v := q.Get("unredacted"); v {
	case "", "0", "false":
	case "1", "true":
		unredacted = true
	default:
		return nil, false, invalid("unredacted", fmt.Sprintf("%q: want 1 or 0", v))
	}
	f, err := p.Tenant.DMARCFailureByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, notFound(fmt.Sprintf("no DMARC failure report with id %d", id))
	} else if err != nil {
		return nil, false, err
	}
	if unredacted && !mayUnredact(p) {
		return nil, false, forbidden("failure reports hold people's addresses and subjects: only an owner or admin of the organization may see them unredacted (your role: " + p.Role + ")")
	}
	return f, unredacted, nil
}

func (s *server) getFailure(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	f, unredacted, err := failure(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FailureViewOf(f, unredacted))
	return nil
}

// rawFailure serves the message as stored: the age ciphertext of a sealed
// report (to anyone who may read it: only the key's holder can open it),
// the plain message to owners and admins only.
func (s *server) rawFailure(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	f, err := p.Tenant.DMARCFailureByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound(fmt.Sprintf("no DMARC failure report with id %d", id))
	} else if err != nil {
		return err
	}
	h := w.Header()
	name := fmt.Sprintf("dmarc-failure-%d.eml", f.ID)
	if f.Sealed != "" {
		h.Set("Content-Type", "application/octet-stream")
		name += ".age"
	} else {
		if !mayUnredact(p) {
			return forbidden("the raw failure report holds people's addresses and subjects: only an owner or admin of the organization may fetch it (your role: " + p.Role + "); GET /api/v1/reports/dmarc-failures/" + strconv.FormatInt(id, 10) + " is the redacted report")
		}
		h.Set("Content-Type", "message/rfc822")
	}
	h.Set("Content-Length", strconv.Itoa(len(f.Raw)))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.Raw) //nolint:gosec // G705: an attachment of message/rfc822 or octet-stream with nosniff, never HTML
	return nil
}

// FailureKey is the JSON of an organization's failure report key.
type FailureKey struct {
	// Recipient is the age X25519 recipient ("age1...") the failure
	// reports of the organization's domains are encrypted to; "" for none.
	Recipient string `json:"recipient"`
}

func (s *server) getFailureKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	o, err := p.Tenant.Org(r.Context(), org.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FailureKey{Recipient: o.FailureKey})
	return nil
}

func (s *server) putFailureKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	var body FailureKey
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	org, err := orgOf(p)
	if err != nil {
		return err
	}
	if err := store.CheckFailureKey(body.Recipient); err != nil {
		var msg string
		if b, jerr := json.Marshal(body.Recipient); jerr == nil {
			msg = string(b) + ": want an age X25519 recipient (age1..., from age-keygen) or \"\" for none"
		}
		return invalid("recipient", msg)
	}
	if err := p.Tenant.SetFailureKey(r.Context(), org.ID, body.Recipient); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
