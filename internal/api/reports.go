package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// Report is the JSON of a stored TLS-RPT report: what `moat reports tlsrpt
// show --json` prints and GET /api/v1/reports/tlsrpt/{id} answers.
type Report struct {
	ID           int64           `json:"id"`
	ReceivedAt   time.Time       `json:"received_at"`
	Source       string          `json:"source"`
	SourceDetail string          `json:"source_detail"`
	Status       string          `json:"status"`
	Error        string          `json:"error,omitempty"`
	Warnings     []string        `json:"warnings"`
	DKIM         string          `json:"dkim,omitempty"`
	Organization string          `json:"organization"`
	ReportID     string          `json:"report_id"`
	Contact      string          `json:"contact_info,omitempty"`
	Start        time.Time       `json:"start,omitzero"`
	End          time.Time       `json:"end,omitzero"`
	Domains      []string        `json:"domains"`
	Hosted       bool            `json:"hosted"`
	Successful   int64           `json:"total_successful_sessions"`
	Failed       int64           `json:"total_failed_sessions"`
	Report       json.RawMessage `json:"report,omitempty"`
}

// ReportOf is the JSON of r; the normalized report is included when r
// holds it (TLSRPTReportByID), not in lists.
func ReportOf(r *store.TLSRPTReport) Report {
	v := Report{ID: r.ID, ReceivedAt: r.ReceivedAt, Source: r.Source, SourceDetail: r.SourceDetail, Status: r.Status,
		Error: r.Error, Warnings: nonNil(r.Warnings), DKIM: r.DKIM, Organization: r.OrganizationName, ReportID: r.ReportID,
		Contact: r.ContactInfo, Start: r.StartTime, End: r.EndTime, Domains: nonNil(r.Domains), Hosted: r.Hosted,
		Successful: r.Successful, Failed: r.Failed}
	if len(r.Normalized) > 0 {
		v.Report = r.Normalized
	}
	return v
}

// ReportList is the JSON of a list of reports (`moat reports tlsrpt list
// --json`): Next, the cursor of the following page, only from the API.
// Total counts the reports of every page: always from the CLI, from the
// API only for a list of one domain (a count of all the reports of an
// organization would read them all, so a list of all says only whether
// there is a next page).
type ReportList struct {
	Reports []Report `json:"reports"`
	Total   *int64   `json:"total,omitempty"`
	Next    string   `json:"next,omitempty"`
}

// Summary is the JSON of `moat reports tlsrpt summary --json` and of GET
// /api/v1/reports/tlsrpt/summary: the summary, and for one hosted domain
// in mode testing whether it is ready to enforce.
type Summary struct {
	*tlsrptstats.Summary
	ReadyToEnforce *tlsrptstats.Verdict `json:"ready_to_enforce,omitempty"`
}

// SummaryStore is what Summarize reads: the reports and the hosted
// domains (a store.Store for the operator, a store.Tenant within a scope).
type SummaryStore interface {
	store.ReportReader
	Domain(ctx context.Context, name string) (*store.Domain, error)
}

// Summarize summarizes the reports of q (tlsrptstats.Summarize) and, when
// q names a domain that st hosts in mode testing, judges at now whether it
// is ready to enforce. Errors: tlsrptstats.ErrInvalidQuery, the store's.
func Summarize(ctx context.Context, st SummaryStore, q tlsrptstats.Query, now time.Time) (*Summary, error) {
	sum, err := tlsrptstats.Summarize(ctx, st, q)
	if err != nil {
		return nil, err
	}
	out := &Summary{Summary: sum}
	if q.Domain != "" {
		d, err := st.Domain(ctx, q.Domain)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if d != nil && d.Mode == "testing" {
			if out.ReadyToEnforce, err = tlsrptstats.ReadyToEnforce(ctx, st, q.Domain, now, tlsrptstats.ReadinessOpts{}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// optionalDomain reads ?domain=, in stored form.
func optionalDomain(q map[string][]string) (string, error) {
	v := q["domain"]
	if len(v) == 0 || v[0] == "" {
		return "", nil
	}
	return hosting.LookupName(v[0])
}

func (s *server) reportSummary(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "by")
	if err != nil {
		return err
	}
	domain, err := optionalDomain(q)
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	since := now.Add(-30 * 24 * time.Hour) // as the CLI's --since default
	if v, ok := q["since"]; ok {
		if since, err = parseTime("since", v[0], now); err != nil {
			return err
		}
	}
	until, err := parseTime("until", q.Get("until"), now)
	if err != nil {
		return err
	}
	by := tlsrptstats.ByResult
	if v, ok := q["by"]; ok {
		by = v[0]
	}
	switch by {
	case tlsrptstats.ByNone, tlsrptstats.ByResult, tlsrptstats.BySource, tlsrptstats.ByMX, tlsrptstats.ByDay, tlsrptstats.ByDomain:
	default:
		return invalid("by", fmt.Sprintf("%q: want result, source, mx, day or domain, or empty for totals only", by))
	}
	sum, err := Summarize(r.Context(), p.Tenant, tlsrptstats.Query{Domain: domain, Since: since, Until: until, By: by}, now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (s *server) listReports(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q, err := queryOf(r, "domain", "since", "until", "status", "after", "limit")
	if err != nil {
		return err
	}
	f := store.ReportFilter{Status: q.Get("status")}
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
	switch f.Status {
	case "", store.ReportOK, store.ReportWarnings, store.ReportInvalid:
	default:
		return invalid("status", fmt.Sprintf("%q: want ok, warnings or invalid", f.Status))
	}
	limit, err := limitOf(q)
	if err != nil {
		return err
	}
	c, err := cursorOf(q, "reports")
	if err != nil {
		return err
	}
	// Pages continue after the last report's key; a cursor of an offset
	// (from an older Moat) still works.
	if c.ID != 0 {
		f.After = store.ReportKey{End: time.Unix(0, c.Time).UTC(), ID: c.ID}
	}
	f.Offset = c.Offset
	in := hostedIn(r.Context(), p)
	out := ReportList{Reports: []Report{}}
	if f.Domain != "" {
		// Reports of a domain hosted elsewhere that also cover one of the
		// caller's would be listed by the store; nothing of another
		// organization's domain is, not even that it shares a report.
		if ok, err := in(f.Domain); err != nil {
			return err
		} else if !ok {
			out.Total = new(int64)
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		total, err := p.Tenant.CountTLSRPTReports(r.Context(), f)
		if err != nil {
			return err
		}
		out.Total = &total
	}
	f.Limit = limit + 1 // one more says whether there is a next page
	rs, err := p.Tenant.TLSRPTReports(r.Context(), f)
	if err != nil {
		return err
	}
	if len(rs) > limit {
		last := rs[limit-1].Key
		out.Next = cursor{List: "reports", Time: last.End.UnixNano(), ID: last.ID}.String()
		rs = rs[:limit]
	}
	for _, rep := range rs {
		v := ReportOf(rep)
		if err := v.within(rep, in); err != nil {
			return err
		}
		if len(v.Domains) < len(rep.Domains) {
			// Cut: the totals of the caller's part need the policies.
			full, err := p.Tenant.TLSRPTReportByID(r.Context(), rep.ID)
			if err != nil {
				return err
			}
			mine := ReportOf(full)
			if err := mine.within(full, in); err != nil {
				return err
			}
			v.Successful, v.Failed = mine.Successful, mine.Failed
		}
		out.Reports = append(out.Reports, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// report returns the report of the path's id within p's scope.
func report(r *http.Request, p *auth.Principal) (*store.TLSRPTReport, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	if _, err := queryOf(r); err != nil {
		return nil, err
	}
	rep, err := p.Tenant.TLSRPTReportByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(fmt.Sprintf("no TLS report with id %d", id))
	}
	return rep, err
}

func (s *server) getReport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rep, err := report(r, p)
	if err != nil {
		return err
	}
	in := hostedIn(r.Context(), p)
	v := ReportOf(rep)
	if err := v.within(rep, in); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// hostedIn returns whether a domain is hosted in p's scope, remembering
// the answers: all are for the operator.
func hostedIn(ctx context.Context, p *auth.Principal) func(domain string) (bool, error) {
	operator := p.Tenant.Scope().Operator
	known := map[string]bool{}
	return func(domain string) (bool, error) {
		if operator {
			return true, nil
		}
		if in, ok := known[domain]; ok {
			return in, nil
		}
		_, err := p.Tenant.Domain(ctx, domain)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		known[domain] = err == nil
		return err == nil, nil
	}
}

// within cuts the JSON of a report that also covers domains hosted
// outside the caller's scope down to the caller's domains: their names,
// their policies in the normalized report and, when rep holds its policies,
// their totals. A report is visible to every organization that hosts one
// of its policy domains; the others' part is theirs.
func (v *Report) within(rep *store.TLSRPTReport, in func(string) (bool, error)) error {
	var mine []string
	for _, d := range v.Domains {
		ok, err := in(d)
		if err != nil {
			return err
		}
		if ok {
			mine = append(mine, d)
		}
	}
	if len(mine) == len(v.Domains) {
		return nil
	}
	v.Domains = nonNil(mine)
	if rep.Policies != nil {
		v.Successful, v.Failed = 0, 0
		for _, pol := range rep.Policies {
			if slices.Contains(mine, pol.Domain) {
				v.Successful += pol.Successful
				v.Failed += pol.Failed
			}
		}
	}
	if len(v.Report) > 0 {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(v.Report, &doc); err != nil {
			v.Report = nil
			return nil //nolint:nilerr // not shown rather than shown whole
		}
		var pols []json.RawMessage
		_ = json.Unmarshal(doc["policies"], &pols)
		kept := []json.RawMessage{}
		for _, raw := range pols {
			var pol struct {
				Policy struct {
					Domain string `json:"policy-domain"`
				} `json:"policy"`
			}
			if json.Unmarshal(raw, &pol) == nil && slices.Contains(mine, pol.Policy.Domain) {
				kept = append(kept, raw)
			}
		}
		doc["policies"], _ = json.Marshal(kept)
		v.Report, _ = json.Marshal(doc)
	}
	return nil
}

// rawTypes are the media types raw reports are served with; any other
// stored type (a sender's claim) is served as application/octet-stream.
var rawTypes = map[string]bool{
	"application/tlsrpt+json": true, "application/tlsrpt+gzip": true, "application/json": true,
	"application/gzip": true, "application/zip": true, "application/octet-stream": true,
}

func (s *server) rawReport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rep, err := report(r, p)
	if err != nil {
		return err
	}
	in := hostedIn(r.Context(), p)
	for _, d := range rep.Domains {
		ok, err := in(d)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden("this report also covers domains of other organizations: its bytes are not shown; GET the report for your part")
		}
	}
	if !rep.RawPruned.IsZero() {
		return errStatus(http.StatusGone, "raw_pruned", "the bytes of this report were deleted by retention (retention.raw) on "+
			rep.RawPruned.Format(time.RFC3339)+"; GET the report for what was parsed from them")
	}
	mt := rep.MediaType
	if !rawTypes[mt] {
		mt = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.Itoa(len(rep.Raw)))
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"tlsrpt-%d\"", rep.ID))
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rep.Raw)
	return nil
}

// Upload is the JSON answer to an uploaded report: what the intake made
// of it.
type Upload struct {
	ID           int64    `json:"id"`
	Duplicate    bool     `json:"duplicate"`
	Status       string   `json:"status"`
	Error        string   `json:"error,omitempty"`
	Warnings     []string `json:"warnings"`
	Organization string   `json:"organization,omitempty"`
	ReportID     string   `json:"report_id,omitempty"`
}

// uploadTypes are the media types an upload may have.
var uploadTypes = []string{"application/tlsrpt+json", "application/tlsrpt+gzip", "application/json", "application/gzip"}

func (s *server) uploadReport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := queryOf(r); err != nil {
		return err
	}
	if s.Ingester == nil {
		return errStatus(http.StatusServiceUnavailable, codeUnavailable, "report intake is not running on this Moat")
	}
	mt, err := needContentType(r, uploadTypes...)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxUpload))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("body", "empty; want the report (JSON, or gzip of JSON)")
	}
	if err := s.reportInScope(r.Context(), p, data); err != nil {
		return err
	}
	res, err := s.Ingester.Submit(r.Context(), intake.Submission{
		Source: intake.SourceImport, SourceDetail: "api upload by " + p.Name(), MediaType: mt, Data: data,
	})
	switch {
	case errors.Is(err, intake.ErrTooLarge):
		return errStatus(http.StatusRequestEntityTooLarge, "too_large", "the report is too large once decompressed")
	case err != nil:
		return err
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	w.Header().Set("Location", Prefix+"/reports/tlsrpt/"+strconv.FormatInt(res.ID, 10))
	writeJSON(w, status, Upload{ID: res.ID, Duplicate: res.Duplicate, Status: res.Status, Error: res.Error,
		Warnings: nonNil(res.Warnings), Organization: res.OrganizationName, ReportID: res.ReportID})
	return nil
}

// reportInScope refuses, for anyone but the operator, a report that does
// not parse or that has a policy domain not hosted in the principal's
// scope: its sessions would count in another organization's statistics.
func (s *server) reportInScope(ctx context.Context, p *auth.Principal, data []byte) error {
	if p.Tenant.Scope().Operator {
		return nil
	}
	js, _, err := tlsrpt.Decompress(data, s.Ingester.MaxDecompressed())
	if errors.Is(err, tlsrpt.ErrTooLarge) {
		return errStatus(http.StatusRequestEntityTooLarge, "too_large", "the report is too large once decompressed")
	}
	var rep *tlsrpt.Report
	if err == nil {
		rep, _, err = tlsrpt.Decode(js)
	}
	if err != nil {
		return invalid("body", "not a TLS-RPT report: "+err.Error())
	}
	domains := rep.Domains()
	if len(domains) == 0 {
		return invalid("body", "the report names no policy domain")
	}
	for _, d := range domains {
		_, err := p.Tenant.Domain(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("body", fmt.Sprintf("the report's policy domain %q is not hosted in your organization", d))
		} else if err != nil {
			return err
		}
	}
	return nil
}
