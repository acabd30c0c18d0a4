package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// reportListCols are the columns of a report in lists: everything but the
// stored bytes. reportCols adds them.
const (
	reportListCols = `r.id, r.received_at, r.source, r.source_detail, r.digest, r.media_type, r.dkim,
		r.status, r.error, r.warnings, r.organization, r.report_id, r.contact, r.dated, r.start_time,
		r.end_time, r.domains, r.hosted, r.successful, r.failed`
	reportCols = reportListCols + `, r.raw, r.raw_gzip, r.raw_size, r.normalized, r.raw_pruned_at`
)

// scanReportList scans reportListCols into a new report.
func scanReportList(row scanner, extra ...any) (*TLSRPTReport, error) {
	var (
		r                 TLSRPTReport
		warnings, domains string
		dated             int
	)
	dest := []any{&r.ID, timeCol{&r.ReceivedAt}, &r.Source, &r.SourceDetail, &r.Digest, &r.MediaType,
		&r.DKIM, &r.Status, &r.Error, &warnings, &r.OrganizationName, &r.ReportID, &r.ContactInfo, &dated,
		timeCol{&r.StartTime}, timeCol{&r.EndTime}, &domains, &r.Hosted, &r.Successful, &r.Failed}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	r.Key = ReportKey{End: r.EndTime, ID: r.ID}
	if dated&datedStart == 0 {
		r.StartTime = time.Time{}
	}
	if dated&datedEnd == 0 {
		r.EndTime = time.Time{}
	}
	var err error
	if r.Warnings, err = decodeList("tlsrpt_reports.warnings", warnings); err != nil {
		return nil, err
	}
	if r.Domains, err = decodeList("tlsrpt_reports.domains", domains); err != nil {
		return nil, err
	}
	return &r, nil
}

// reportQuery builds the FROM and WHERE of a report filter, with its
// arguments. The columns that period bounds and order apply to are those of
// tlsrpt_report_domains when filtering by domain (one range of its primary
// key), else those of tlsrpt_reports (its end_time index). A page walks
// that range from its newest end and stops when it is full: the scope
// (reportIn) is checked for each row walked, not for every row that
// matches.
type reportQuery struct {
	from, where, order string
	args               []any
}

func (t *tenant) reportQuery(f ReportFilter) reportQuery {
	var (
		q     sqlq
		rq    reportQuery
		conds []string
	)
	rq.from = `tlsrpt_reports r`
	start, end, id := "r.start_time", "r.end_time", "r.id"
	if f.Domain != "" {
		// Domains are stored lower-case, without a trailing dot.
		domain := strings.TrimSuffix(strings.ToLower(f.Domain), ".")
		rq.from = `tlsrpt_report_domains d JOIN tlsrpt_reports r ON r.id = d.report`
		start, end, id = "d.start_time", "d.end_time", "d.report"
		conds = append(conds, "d.domain = "+q.arg(domain))
	}
	if !f.Since.IsZero() {
		conds = append(conds, end+" >= "+q.arg(t.s.d.timeArg(normTime(f.Since))))
	}
	if !f.Until.IsZero() {
		conds = append(conds, start+" < "+q.arg(t.s.d.timeArg(normTime(f.Until))))
	}
	if f.Status != "" {
		conds = append(conds, "r.status = "+q.arg(f.Status))
	}
	if !f.After.IsZero() {
		// A row value: both databases continue the index range from it.
		conds = append(conds, "("+end+", "+id+") < ("+q.arg(t.s.d.timeArg(normTime(f.After.End)))+", "+q.arg(f.After.ID)+")")
	}
	conds = append(conds, t.reportIn(&q, "r.id"))
	rq.where = where(conds...)
	rq.order = " ORDER BY " + end + " DESC, " + id + " DESC"
	rq.args = q.args
	return rq
}

// reportIn returns the condition that the report whose id is the column
// report has a policy domain hosted in the scope ("" for the operator). Per
// report it looks up the report's domains, then each domain's
// organization: CROSS JOIN keeps SQLite to that order (rather than trying
// every domain of the scope against the report).
func (t *tenant) reportIn(q *sqlq, report string) string {
	c := t.in(q, "hd.org_id")
	if c == "" {
		return ""
	}
	return `EXISTS (SELECT 1 FROM tlsrpt_report_domains x CROSS JOIN domains hd
		WHERE x.report = ` + report + ` AND hd.name = x.domain AND ` + c + `)`
}

// listQuery returns the SQL text of a page of TLSRPTReports and its
// arguments.
func (t *tenant) listQuery(f ReportFilter, limit int) (string, []any) {
	q := t.reportQuery(f)
	text := fmt.Sprintf(`SELECT %s FROM %s%s%s LIMIT $%d OFFSET $%d`,
		reportListCols, q.from, q.where, q.order, len(q.args)+1, len(q.args)+2)
	return text, append(q.args, limit, f.Offset)
}

// The report reading methods of Store act for the operator.

// TLSRPTReports implements ReportStore.
func (s *sqlStore) TLSRPTReports(ctx context.Context, f ReportFilter) ([]*TLSRPTReport, error) {
	return s.op().TLSRPTReports(ctx, f)
}

// CountTLSRPTReports implements ReportStore.
func (s *sqlStore) CountTLSRPTReports(ctx context.Context, f ReportFilter) (int64, error) {
	return s.op().CountTLSRPTReports(ctx, f)
}

// TLSRPTReportByID implements ReportStore.
func (s *sqlStore) TLSRPTReportByID(ctx context.Context, id int64) (*TLSRPTReport, error) {
	return s.op().TLSRPTReportByID(ctx, id)
}

// TLSRPTRollups implements ReportStore.
func (s *sqlStore) TLSRPTRollups(ctx context.Context, q RollupQuery) ([]RollupRow, error) {
	return s.op().TLSRPTRollups(ctx, q)
}

// TLSRPTReports implements ReportReader. Reports come newest period first:
// by end of period, latest first, then by id, highest first. Undated
// reports count as periods of the instant they were received. A negative
// Limit or Offset is an error.
func (t *tenant) TLSRPTReports(ctx context.Context, f ReportFilter) ([]*TLSRPTReport, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, fmt.Errorf("store: list tlsrpt reports: negative limit %d or offset %d", f.Limit, f.Offset)
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultReportLimit
	}
	text, args := t.listQuery(f, limit)
	rows, err := t.s.r.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list tlsrpt reports: %w", err)
	}
	defer rows.Close()
	l := []*TLSRPTReport{}
	for rows.Next() {
		r, err := scanReportList(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list tlsrpt reports: %w", err)
		}
		l = append(l, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list tlsrpt reports: %w", err)
	}
	return l, nil
}

// CountTLSRPTReports implements ReportReader.
func (t *tenant) CountTLSRPTReports(ctx context.Context, f ReportFilter) (int64, error) {
	f.After = ReportKey{}
	q := t.reportQuery(f)
	var n int64
	if err := t.s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+q.from+q.where, q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count tlsrpt reports: %w", err)
	}
	return n, nil
}

// TLSRPTReportByID implements ReportReader. Rollups is left nil: the store
// keeps the rollups summed over all reports, not per report.
func (t *tenant) TLSRPTReportByID(ctx context.Context, id int64) (*TLSRPTReport, error) {
	var (
		raw, normalized []byte
		rawGzip         bool
		rawSize         int64
		pruned          sql.Null[any]
		q               sqlq
	)
	s := t.s
	r, err := scanReportList(s.r.QueryRowContext(ctx, `SELECT `+reportCols+` FROM tlsrpt_reports r
		WHERE r.id = `+q.arg(id)+and(t.reportIn(&q, "r.id")), q.args...),
		&raw, &rawGzip, &rawSize, &normalized, &pruned)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: tlsrpt report %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read tlsrpt report %d: %w", id, err)
	}
	fail := func(err error) error { return fmt.Errorf("store: read tlsrpt report %d: %w", id, err) }
	if pruned.Valid {
		if err := (timeCol{&r.RawPruned}).Scan(pruned.V); err != nil {
			return nil, fail(err)
		}
		raw, rawGzip, rawSize = nil, false, 0 // cleared by retention
	}
	if rawGzip {
		if raw, err = gunzip("tlsrpt_reports.raw", raw, rawSize); err != nil {
			return nil, fail(err)
		}
	} else if int64(len(raw)) != rawSize {
		return nil, fail(fmt.Errorf("column tlsrpt_reports.raw holds %d bytes, the row says %d", len(raw), rawSize))
	}
	if raw == nil {
		raw = []byte{} // SQLite returns an empty blob as nil
	}
	r.Raw = raw
	if len(normalized) > 0 {
		if r.Normalized, err = gunzip("tlsrpt_reports.normalized", normalized, -1); err != nil {
			return nil, fail(err)
		}
	}
	// The report is in the scope: its policies are read by its id.
	if r.Policies, err = s.reportPolicies(ctx, id); err != nil {
		return nil, fail(err)
	}
	return r, nil
}

// reportPolicies reads the policies of report id with their failures.
func (s *sqlStore) reportPolicies(ctx context.Context, id int64) ([]TLSRPTPolicy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT policy_type, domain, strings, mx_hosts, successful, failed
		FROM tlsrpt_policies WHERE report = $1 ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	defer rows.Close()
	var ps []TLSRPTPolicy
	for rows.Next() {
		var (
			p             TLSRPTPolicy
			strs, mxHosts string
		)
		if err := rows.Scan(&p.Type, &p.Domain, &strs, &mxHosts, &p.Successful, &p.Failed); err != nil {
			return nil, fmt.Errorf("policies: %w", err)
		}
		if p.Strings, err = decodeList("tlsrpt_policies.strings", strs); err != nil {
			return nil, err
		}
		if p.MXHosts, err = decodeList("tlsrpt_policies.mx_hosts", mxHosts); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}

	frows, err := s.r.QueryContext(ctx, `SELECT policy, result_type, sending_ip, receiving_mx, receiving_helo,
		receiving_ip, sessions, reason_code, additional_info
		FROM tlsrpt_failures WHERE report = $1 ORDER BY policy, idx`, id)
	if err != nil {
		return nil, fmt.Errorf("failure details: %w", err)
	}
	defer frows.Close()
	for frows.Next() {
		var (
			pi int
			f  TLSRPTFailure
		)
		if err := frows.Scan(&pi, &f.ResultType, &f.SendingMTAIP, &f.ReceivingMX, &f.ReceivingHelo,
			&f.ReceivingIP, &f.Sessions, &f.ReasonCode, &f.AdditionalInfo); err != nil {
			return nil, fmt.Errorf("failure details: %w", err)
		}
		if pi < 0 || pi >= len(ps) {
			return nil, fmt.Errorf("failure detail of policy %d, but the report has %d policies", pi, len(ps))
		}
		ps[pi].Failures = append(ps[pi].Failures, f)
	}
	if err := frows.Err(); err != nil {
		return nil, fmt.Errorf("failure details: %w", err)
	}
	return ps, nil
}
