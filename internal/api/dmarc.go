package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

// DMARC aggregate reports (RFC 7489 §7.2, RFC 9990): upload, list, one
// report and its bytes. A report belongs to the organizations hosting its
// policy domain (the tenant's DMARCReader); one about a domain nobody
// hosts is the operator's.

// DMARCReport is the JSON of a stored DMARC aggregate report: what `moat
// reports dmarc show --json` prints and GET /api/v1/reports/dmarc/{id}
// answers.
type DMARCReport struct {
	ID           int64     `json:"id"`
	ReceivedAt   time.Time `json:"received_at"`
	Source       string    `json:"source"`
	SourceDetail string    `json:"source_detail"`
	Status       string    `json:"status"`
	Error        string    `json:"error,omitempty"`
	Warnings     []string  `json:"warnings"`
	// ConflictOf is the report holding this one's identity (organization,
	// report id and period) with another content: this one is kept aside
	// and not counted.
	ConflictOf   int64     `json:"conflict_of,omitempty"`
	DKIM         string    `json:"dkim,omitempty"`
	Organization string    `json:"organization"`
	Email        string    `json:"email,omitempty"`
	ExtraContact string    `json:"extra_contact_info,omitempty"`
	ReportID     string    `json:"report_id"`
	Start        time.Time `json:"start,omitzero"`
	End          time.Time `json:"end,omitzero"`
	Version      string    `json:"version,omitempty"`
	Domain       string    `json:"domain"`
	Hosted       bool      `json:"hosted"`
	// The policy published, as the report states it.
	Policy   DMARCPolicy `json:"policy_published"`
	Records  int64       `json:"records"`
	Messages int64       `json:"messages"`
}

// DMARCPolicy is the policy_published of a DMARC aggregate report.
type DMARCPolicy struct {
	ADKIM   string `json:"adkim,omitempty"`
	ASPF    string `json:"aspf,omitempty"`
	P       string `json:"p,omitempty"`
	SP      string `json:"sp,omitempty"`
	NP      string `json:"np,omitempty"`
	Pct     *int   `json:"pct,omitempty"`
	Testing string `json:"testing,omitempty"`
	FO      string `json:"fo,omitempty"`
}

// DMARCReportOf is the JSON of r.
func DMARCReportOf(r *store.DMARCReport) DMARCReport {
	v := DMARCReport{ID: r.ID, ReceivedAt: r.ReceivedAt, Source: r.Source, SourceDetail: r.SourceDetail, Status: r.Status,
		Error: r.Error, Warnings: nonNil(r.Warnings), ConflictOf: r.ConflictOf, DKIM: r.DKIM, Organization: r.OrgName,
		Email: r.OrgEmail, ExtraContact: r.ExtraContact, ReportID: r.ReportID, Start: r.StartTime, End: r.EndTime,
		Version: r.Version, Domain: r.Domain, Hosted: r.Hosted, Records: r.Records, Messages: r.Messages,
		Policy: DMARCPolicy{ADKIM: r.ADKIM, ASPF: r.ASPF, P: r.P, SP: r.SP, NP: r.NP, Testing: r.Testing, FO: r.FO}}
	if r.Pct >= 0 {
		pct := r.Pct
		v.Policy.Pct = &pct
	}
	return v
}

// DMARCReportList is a page of DMARC aggregate reports (`moat reports
// dmarc list --json`): Next, the cursor of the following page, only from
// the API; Total counts the reports of every page.
type DMARCReportList struct {
	Reports []DMARCReport `json:"reports"`
	Total   int64         `json:"total"`
	Next    string        `json:"next,omitempty"`
}

// dmarcStatuses are the statuses a list may select.
var dmarcStatuses = []string{"", store.ReportOK, store.ReportWarnings, store.ReportInvalid, store.DMARCConflict}

func (s *server) listDMARC(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "status", "after", "limit")
	if err != nil {
		return err
	}
	f := store.DMARCFilter{Status: q.Get("status")}
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
	ok := false
	for _, st := range dmarcStatuses {
		ok = ok || f.Status == st
	}
	if !ok {
		return invalid("status", fmt.Sprintf("%q: want ok, warnings, invalid or conflict", f.Status))
	}
	limit, err := limitOf(q)
	if err != nil {
		return err
	}
	c, err := cursorOf(q, "dmarc")
	if err != nil {
		return err
	}
	f.Offset = c.Offset
	total, err := p.Tenant.CountDMARCReports(r.Context(), f)
	if err != nil {
		return err
	}
	f.Limit = limit
	rs, err := p.Tenant.DMARCReports(r.Context(), f)
	if err != nil {
		return err
	}
	out := DMARCReportList{Reports: make([]DMARCReport, 0, len(rs)), Total: total}
	for _, rep := range rs {
		out.Reports = append(out.Reports, DMARCReportOf(rep))
	}
	if next := c.Offset + len(rs); len(rs) == limit && int64(next) < total {
		out.Next = cursor{List: "dmarc", Offset: next}.String()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// dmarcReport returns the DMARC report of the path's id within p's scope.
func dmarcReport(r *http.Request, p *auth.Principal) (*store.DMARCReport, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	if _, err := queryOf(r); err != nil {
		return nil, err
	}
	rep, err := p.Tenant.DMARCReportByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(fmt.Sprintf("no DMARC report with id %d", id))
	}
	return rep, err
}

func (s *server) getDMARC(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rep, err := dmarcReport(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DMARCReportOf(rep))
	return nil
}

// dmarcRawTypes are the media types raw DMARC reports are served with;
// any other stored type is served as application/octet-stream.
var dmarcRawTypes = map[string]bool{
	"application/xml": true, "text/xml": true, "application/gzip": true, "application/zip": true,
	"application/octet-stream": true,
}

func (s *server) rawDMARC(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rep, err := dmarcReport(r, p)
	if err != nil {
		return err
	}
	mt := rep.MediaType
	if !dmarcRawTypes[mt] {
		mt = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.Itoa(len(rep.Raw)))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"dmarc-%d\"", rep.ID))
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rep.Raw)
	return nil
}

// DMARCUpload is the JSON answer to an uploaded file of DMARC reports:
// one entry per report found, and the messages of an mbox that hold none.
type DMARCUpload struct {
	Reports    []DMARCUploaded `json:"reports"`
	NotReports []NotReport     `json:"not_reports"`
}

// DMARCUploaded is what became of one uploaded report.
type DMARCUploaded struct {
	// Kind is "dmarc" (an aggregate report) or "dmarc-failure".
	Kind string `json:"kind"`
	ID   int64  `json:"id"`
	// Outcome is stored, invalid (stored, marked with Error), conflict
	// (stored aside: report ConflictOf holds its identity with another
	// content) or duplicate (stored before as ID; nothing new stored).
	Outcome      string   `json:"outcome"`
	ConflictOf   int64    `json:"conflict_of,omitempty"`
	Status       string   `json:"status"`
	Error        string   `json:"error,omitempty"`
	Warnings     []string `json:"warnings"`
	Organization string   `json:"organization,omitempty"`
	ReportID     string   `json:"report_id,omitempty"`
	Domain       string   `json:"domain,omitempty"`
	Records      int64    `json:"records"`
	Messages     int64    `json:"messages"`
	// Message is the message of an uploaded mbox it came from (from 1).
	Message int `json:"message,omitempty"`
}

// NotReport is a message of an uploaded mbox that holds no report.
type NotReport struct {
	Message int    `json:"message"`
	Reason  string `json:"reason"`
}

// dmarcUploadTypes are the media types a DMARC upload may have.
var dmarcUploadTypes = []string{"application/xml", "text/xml", "application/gzip", "application/zip",
	"application/octet-stream", "message/rfc822", "application/mbox"}

func (s *server) uploadDMARC(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	if s.Ingester == nil {
		return errStatus(http.StatusServiceUnavailable, codeUnavailable, "report intake is not running on this Moat")
	}
	mt, err := needContentType(r, dmarcUploadTypes...)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxUpload))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("body", "empty; want a DMARC report (XML, gzip or zip of XML), a report mail or an mbox")
	}
	// The same rules as the dashboard's upload; a refusal is the
	// uploader's mistake: 400 with the reason, nothing stored.
	allowed := intake.DMARCUploadAllow(r.Context(), p.Tenant)
	allow := func(kind, domain string) error {
		err := allowed(kind, domain)
		if errors.Is(err, intake.ErrNotAllowed) {
			msg := strings.TrimPrefix(err.Error(), intake.ErrNotAllowed.Error()+": ")
			if kind == store.KindTLSRPT {
				msg += ": upload it to " + Prefix + "/reports/tlsrpt"
			}
			return invalid("body", msg)
		}
		return err
	}
	if mt == "message/rfc822" || mt == "application/mbox" {
		mt = ""
	}
	items, err := s.Ingester.SubmitFile(r.Context(), intake.Submission{
		Source: intake.SourceAPI, SourceDetail: "api upload by " + p.Name(), MediaType: mt, Data: data,
	}, intake.FileOpts{Allow: allow, MaxMessageBytes: s.MaxUpload})
	switch {
	case errors.Is(err, intake.ErrTooLarge):
		return errStatus(http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, intake.ErrNotReport):
		return invalid("body", err.Error())
	case err != nil:
		return err
	}
	out := DMARCUpload{Reports: []DMARCUploaded{}, NotReports: []NotReport{}}
	created := false
	for _, it := range items {
		if it.Result == nil {
			out.NotReports = append(out.NotReports, NotReport{Message: it.Message, Reason: it.NotReport})
			continue
		}
		res := it.Result
		u := DMARCUploaded{Kind: res.Kind, ID: res.ID, Outcome: res.Outcome(), ConflictOf: res.ConflictOf, Status: res.Status,
			Error: res.Error, Warnings: nonNil(res.Warnings), Organization: res.OrganizationName, ReportID: res.ReportID,
			Domain: res.Domain, Records: res.Records, Messages: res.Messages, Message: it.Message}
		created = created || !res.Duplicate
		out.Reports = append(out.Reports, u)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if len(out.Reports) == 1 && out.Reports[0].Kind == store.KindDMARC {
		w.Header().Set("Location", Prefix+"/reports/dmarc/"+strconv.FormatInt(out.Reports[0].ID, 10))
	}
	writeJSON(w, status, out)
	return nil
}
