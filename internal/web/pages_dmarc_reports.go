package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

// dmarcPageSize is the number of reports per page of the DMARC report
// list.
const dmarcPageSize = 100

// dmarcStatuses are the statuses the report list filters by.
var dmarcStatuses = []string{store.ReportOK, store.ReportWarnings, store.ReportInvalid, store.DMARCConflict}

type dmarcReportsData struct {
	Nav      dmarcNav
	Domain   string // the filter, or ""
	Status   string
	Statuses []string
	Reports  []*store.DMARCReport
	Total    int64
	First    int // the position of the first row, from 1
	Last     int
	Newer    string // links to the pages around, or ""
	Older    string
	Upload   *uploadData
}

func (pg *pages) dmarcReports(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	v := r.URL.Query()
	data := &dmarcReportsData{Statuses: dmarcStatuses, Nav: dmarcNav{Current: "reports"}}
	var msg string
	f := store.DMARCFilter{Limit: dmarcPageSize}
	if s := v.Get("status"); s != "" {
		ok := false
		for _, st := range dmarcStatuses {
			ok = ok || s == st
		}
		if ok {
			f.Status = s
		} else {
			msg = "Unknown status " + strconv.Quote(clip(s, 40)) + ": showing every status."
		}
	}
	if s := v.Get("domain"); s != "" {
		name, err := hosting.LookupName(s)
		if err != nil {
			msg = "The domain " + strconv.Quote(clip(s, 300)) + " is not a domain name: showing every domain."
		} else {
			f.Domain = name
		}
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			msg = "The page marker is not valid: showing the newest."
		} else {
			f.Offset = n
		}
	}
	data.Domain, data.Status = f.Domain, f.Status
	if f.Domain != "" {
		// The domain's own pages only for a domain of the scope: the
		// filter of another organization's finds nothing and links nowhere.
		if _, err := p.Tenant.Domain(ctx, f.Domain); err == nil {
			data.Nav.Domain = f.Domain
		}
	}
	total, err := p.Tenant.CountDMARCReports(ctx, f)
	if err != nil {
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	}
	reps, err := p.Tenant.DMARCReports(ctx, f)
	if err != nil {
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	}
	data.Reports, data.Total = reps, total
	data.First, data.Last = f.Offset+1, f.Offset+len(reps)
	page := url.Values{}
	if f.Domain != "" {
		page.Set("domain", f.Domain)
	}
	if f.Status != "" {
		page.Set("status", f.Status)
	}
	if f.Offset > 0 {
		page.Set("offset", strconv.Itoa(max(0, f.Offset-dmarcPageSize)))
		data.Newer = "/dmarc/reports?" + page.Encode()
	}
	if int64(f.Offset+len(reps)) < total {
		page.Set("offset", strconv.Itoa(f.Offset+len(reps)))
		data.Older = "/dmarc/reports?" + page.Encode()
	}
	data.Upload = pg.uploadForm(p, "")
	pg.render(w, r, p, http.StatusOK, "dmarc_reports", "dmarc", "DMARC reports", data, msg)
}

type dmarcReportData struct {
	Nav    dmarcNav
	Report *store.DMARCReport
	Raw    string // the API route of the bytes as received
}

func (pg *pages) dmarcReportPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such report")
	if !ok {
		return
	}
	rep, err := p.Tenant.DMARCReportByID(r.Context(), id)
	if err != nil {
		pg.storeFail(w, r, p, "such report", err)
		return
	}
	rep.Raw = nil // the page links to the bytes; it does not hold them
	data := &dmarcReportData{Report: rep, Nav: dmarcNav{Current: "reports", Domain: rep.Domain},
		Raw: api.Prefix + "/reports/dmarc/" + itoa(rep.ID) + "/raw"}
	pg.render(w, r, p, http.StatusOK, "dmarc_report", "dmarc", "DMARC report "+itoa(rep.ID), data)
}

// uploadData is the upload form and, after an upload, what became of it.
type uploadData struct {
	CanWrite bool
	Back     string // the page to return to after the upload, or ""
	Done     bool   // a file was uploaded (or refused)
	File     string
	Error    string // why nothing was stored
	Items    []uploadItem
}

// uploadItem is what became of one report of an upload.
type uploadItem struct {
	intake.FileItem
	Outcome string
	Link    string
}

// uploadForm returns the upload form of a page, for p.
func (pg *pages) uploadForm(p *auth.Principal, back string) *uploadData {
	return &uploadData{CanWrite: p.Can(auth.PermWrite), Back: back}
}

// maxUpload is the largest report file the dashboard accepts: the API's
// bound (intake.max_report_size).
func (pg *pages) maxUpload() int64 {
	if pg.deps.MaxUpload > 0 {
		return pg.deps.MaxUpload
	}
	return 10 << 20
}

// uploadMediaTypes are the media types stored with an uploaded file, by
// its name's extension; a mail (.eml) or mbox is read as mail.
var uploadMediaTypes = map[string]string{
	".xml": "application/xml", ".gz": "application/gzip", ".zip": "application/zip", ".eml": "", ".mbox": "",
}

// dmarcUpload stores an uploaded DMARC report file (an aggregate report
// as XML, gzip or zip, a report mail or an mbox) through the intake, as
// POST /api/v1/reports/dmarc does, and shows what became of each report.
func (pg *pages) dmarcUpload(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	up := pg.uploadForm(p, "")
	if back := r.URL.Query().Get("back"); strings.HasPrefix(back, "/") && !strings.HasPrefix(back, "//") {
		up.Back = clip(back, 500)
	}
	up.Done = true
	status := http.StatusOK
	show := func() {
		title := "Upload a DMARC report"
		pg.render(w, r, p, status, "dmarc_upload", "dmarc", title, &dmarcUploadData{Nav: dmarcNav{Current: "upload"}, Upload: up})
	}
	limit := pg.maxUpload()
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil { //nolint:gosec // bounded by MaxBytesReader above
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			status, up.Error = http.StatusRequestEntityTooLarge, "The file is larger than "+formatInt(limit)+" bytes (intake.max_report_size)."
		} else {
			status, up.Error = http.StatusUnprocessableEntity, "Choose a file to upload."
		}
		show()
		return
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	file, hdr, err := r.FormFile("file")
	if err != nil {
		status, up.Error = http.StatusUnprocessableEntity, "Choose a file to upload."
		show()
		return
	}
	defer func() { _ = file.Close() }()
	up.File = clip(hdr.Filename, 200)
	raw, err := io.ReadAll(io.LimitReader(file, limit+1))
	switch {
	case err != nil:
		status, up.Error = http.StatusBadRequest, "The file could not be read: "+err.Error()
	case int64(len(raw)) > limit:
		status, up.Error = http.StatusRequestEntityTooLarge, "The file is larger than "+formatInt(limit)+" bytes (intake.max_report_size)."
	case len(strings.TrimSpace(string(raw))) == 0:
		status, up.Error = http.StatusUnprocessableEntity, "The file is empty."
	case pg.deps.Ingester == nil:
		status, up.Error = http.StatusServiceUnavailable, "Report intake is not running on this Moat: nothing was stored."
	}
	if up.Error != "" {
		show()
		return
	}
	mt, known := uploadMediaTypes[strings.ToLower(path.Ext(up.File))]
	if !known {
		mt = "application/octet-stream"
	}
	items, err := pg.deps.Ingester.SubmitFile(r.Context(), intake.Submission{
		Source: intake.SourceAPI, SourceDetail: "dashboard upload by " + p.Name(), MediaType: mt, Data: raw,
	}, intake.FileOpts{Allow: intake.DMARCUploadAllow(r.Context(), p.Tenant), MaxMessageBytes: limit})
	switch {
	case errors.Is(err, intake.ErrTooLarge):
		status, up.Error = http.StatusRequestEntityTooLarge, "Nothing was stored: "+err.Error()
	case errors.Is(err, intake.ErrNotReport):
		status, up.Error = http.StatusUnprocessableEntity, "Nothing was stored: the file is not a DMARC report ("+strings.TrimPrefix(err.Error(), "intake: ")+")."
	case errors.Is(err, intake.ErrNotAllowed):
		status, up.Error = http.StatusUnprocessableEntity, "Nothing was stored: "+strings.TrimPrefix(err.Error(), intake.ErrNotAllowed.Error()+": ")+"."
	case err != nil && len(items) == 0:
		pg.storeFail(w, r, p, "DMARC reports", err)
		return
	case err != nil:
		up.Error = "The intake failed after the reports below were stored; upload the file again for the rest."
		pg.s.log.Error("dashboard: DMARC upload", "err", err)
	}
	for _, it := range items {
		ui := uploadItem{FileItem: it}
		if res := it.Result; res != nil {
			ui.Outcome = res.Outcome()
			switch res.Kind {
			case store.KindDMARC:
				ui.Link = "/dmarc/reports/" + itoa(res.ID)
			case store.KindDMARCFailure:
				ui.Link = "/dmarc/failures"
			}
		}
		up.Items = append(up.Items, ui)
	}
	if len(items) > 0 {
		pg.s.log.Info("dashboard: DMARC upload", "file", up.File, "reports", len(items), "who", p.Name())
	}
	show()
}

type dmarcUploadData struct {
	Nav    dmarcNav
	Upload *uploadData
}
