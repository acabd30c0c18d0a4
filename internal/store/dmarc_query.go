package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reading DMARC reports. Every statement carries the scope: the report's
// policy domain (a failure report's reported domain) hosted by an
// organization of the scope (dmarcIn).

var _ DMARCReader = (*sqlStore)(nil)

// dmarcMaxPage bounds a page of a list of DMARC reports.
const dmarcMaxPage = 1000

const (
	dmarcListCols = `r.id, r.received_at, r.source, r.source_detail, r.digest, r.media_type, r.dkim, r.status,
		r.error, r.warnings, r.conflict_of, r.org_name, r.org_email, r.extra_contact, r.report_id, r.dated,
		r.start_time, r.end_time, r.version, r.domain, r.adkim, r.aspf, r.p, r.sp, r.np, r.pct, r.testing, r.fo,
		r.hosted, r.records, r.messages, r.content_digest`
	dmarcCols = dmarcListCols + `, r.raw, r.raw_gzip, r.raw_size`
)

func scanDMARC(row scanner, extra ...any) (*DMARCReport, error) {
	var (
		r        DMARCReport
		warnings string
		dated    int
	)
	dest := []any{&r.ID, timeCol{&r.ReceivedAt}, &r.Source, &r.SourceDetail, &r.Digest, &r.MediaType, &r.DKIM,
		&r.Status, &r.Error, &warnings, optIDCol{&r.ConflictOf}, &r.OrgName, &r.OrgEmail, &r.ExtraContact,
		&r.ReportID, &dated, timeCol{&r.StartTime}, timeCol{&r.EndTime}, &r.Version, &r.Domain, &r.ADKIM, &r.ASPF,
		&r.P, &r.SP, &r.NP, &r.Pct, &r.Testing, &r.FO, &r.Hosted, &r.Records, &r.Messages, &r.ContentDigest}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if dated&datedStart == 0 {
		r.StartTime = time.Time{}
	}
	if dated&datedEnd == 0 {
		r.EndTime = time.Time{}
	}
	var err error
	if r.Warnings, err = decodeList("dmarc_reports.warnings", warnings); err != nil {
		return nil, err
	}
	return &r, nil
}

// normDomain is a domain filter in stored form.
func normDomain(d string) string { return strings.TrimSuffix(strings.ToLower(d), ".") }

// dmarcWhere builds the WHERE of a filter of aggregate reports.
func (t *tenant) dmarcWhere(q *sqlq, f DMARCFilter) (string, error) {
	var conds []string
	if f.Domain != "" {
		conds = append(conds, "r.domain = "+q.arg(normDomain(f.Domain)))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "r.end_time >= "+q.arg(t.s.d.timeArg(normTime(f.Since))))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "r.start_time < "+q.arg(t.s.d.timeArg(normTime(f.Until))))
	}
	switch f.Status {
	case "":
	case ReportOK, ReportWarnings, ReportInvalid:
		conds = append(conds, "r.status = "+q.arg(f.Status), "r.conflict_of IS NULL")
	case DMARCConflict:
		conds = append(conds, "r.conflict_of IS NOT NULL")
	default:
		return "", fmt.Errorf("%w: dmarc reports: status %q: want ok, warnings, invalid or conflict", ErrInvalidArg, f.Status)
	}
	conds = append(conds, t.dmarcIn(q, "r.domain"))
	return where(conds...), nil
}

func pageOf(what string, f DMARCFilter) (int, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return 0, fmt.Errorf("%w: %s: negative limit %d or offset %d", ErrInvalidArg, what, f.Limit, f.Offset)
	}
	if f.Limit == 0 {
		return defaultReportLimit, nil
	}
	return min(f.Limit, dmarcMaxPage), nil
}

// The reading methods of Store act for the operator.

// DMARCReports implements DMARCReader.
func (s *sqlStore) DMARCReports(ctx context.Context, f DMARCFilter) ([]*DMARCReport, error) {
	return s.op().DMARCReports(ctx, f)
}

// dmarcListQuery returns the SQL text of a page of DMARCReports and its
// arguments.
func (t *tenant) dmarcListQuery(f DMARCFilter, limit int) (string, []any, error) {
	var q sqlq
	w, err := t.dmarcWhere(&q, f)
	if err != nil {
		return "", nil, err
	}
	return sqlText(`SELECT `, dmarcListCols, ` FROM dmarc_reports r`, w,
		` ORDER BY r.end_time DESC, r.id DESC LIMIT `, q.arg(limit), ` OFFSET `, q.arg(f.Offset)), q.args, nil
}

// CountDMARCReports implements DMARCReader.
func (s *sqlStore) CountDMARCReports(ctx context.Context, f DMARCFilter) (int64, error) {
	return s.op().CountDMARCReports(ctx, f)
}

// DMARCReportByID implements DMARCReader.
func (s *sqlStore) DMARCReportByID(ctx context.Context, id int64) (*DMARCReport, error) {
	return s.op().DMARCReportByID(ctx, id)
}

// DMARCRollups implements DMARCReader.
func (s *sqlStore) DMARCRollups(ctx context.Context, q DMARCRollupQuery) ([]DMARCRollupRow, error) {
	return s.op().DMARCRollups(ctx, q)
}

// DMARCTotals implements DMARCReader.
func (s *sqlStore) DMARCTotals(ctx context.Context, q DMARCTotalsQuery) ([]DMARCTotalsRow, error) {
	return s.op().DMARCTotals(ctx, q)
}

// DMARCFailures implements DMARCReader.
func (s *sqlStore) DMARCFailures(ctx context.Context, f DMARCFilter) ([]*DMARCFailure, error) {
	return s.op().DMARCFailures(ctx, f)
}

// DMARCFailureByID implements DMARCReader.
func (s *sqlStore) DMARCFailureByID(ctx context.Context, id int64) (*DMARCFailure, error) {
	return s.op().DMARCFailureByID(ctx, id)
}

// DMARCReports implements DMARCReader: by end of period, latest first,
// then by id, highest first; undated reports count as periods of the
// moment they arrived. Limit 0 is 100, more than 1000 is 1000.
func (t *tenant) DMARCReports(ctx context.Context, f DMARCFilter) ([]*DMARCReport, error) {
	limit, err := pageOf("list dmarc reports", f)
	if err != nil {
		return nil, err
	}
	text, args, err := t.dmarcListQuery(f, limit)
	if err != nil {
		return nil, err
	}
	rows, err := t.s.r.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list dmarc reports: %w", err)
	}
	defer rows.Close()
	l := []*DMARCReport{}
	for rows.Next() {
		r, err := scanDMARC(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list dmarc reports: %w", err)
		}
		l = append(l, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list dmarc reports: %w", err)
	}
	return l, nil
}

// CountDMARCReports implements DMARCReader.
func (t *tenant) CountDMARCReports(ctx context.Context, f DMARCFilter) (int64, error) {
	var q sqlq
	w, err := t.dmarcWhere(&q, f)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := t.s.r.QueryRowContext(ctx, sqlText(`SELECT count(*) FROM dmarc_reports r`, w), q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count dmarc reports: %w", err)
	}
	return n, nil
}

// DMARCReportByID implements DMARCReader.
func (t *tenant) DMARCReportByID(ctx context.Context, id int64) (*DMARCReport, error) {
	var (
		q       sqlq
		raw     []byte
		rawGzip bool
		rawSize int64
	)
	r, err := scanDMARC(t.s.r.QueryRowContext(ctx, sqlText(`SELECT `, dmarcCols, ` FROM dmarc_reports r WHERE r.id = `,
		q.arg(id), and(t.dmarcIn(&q, "r.domain"))), q.args...), &raw, &rawGzip, &rawSize)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: dmarc report %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read dmarc report %d: %w", id, err)
	}
	if rawGzip {
		if raw, err = gunzip("dmarc_reports.raw", raw, rawSize); err != nil {
			return nil, fmt.Errorf("store: read dmarc report %d: %w", id, err)
		}
	} else if int64(len(raw)) != rawSize {
		return nil, fmt.Errorf("store: read dmarc report %d: column dmarc_reports.raw holds %d bytes, the row says %d", id, len(raw), rawSize)
	}
	if raw == nil {
		raw = []byte{}
	}
	r.Raw = raw
	return r, nil
}

// dmarcGroupNames lists what DMARCRollupQuery.GroupBy accepts: the
// columns of dmarc_daily of the same names.
var dmarcGroupNames = []string{"day", "domain", "reporter", "source_ip", "header_from", "envelope_from",
	"disposition", "dkim", "spf", "reason", "dkim_domain", "dkim_selector", "dkim_result", "dkim_aligned",
	"spf_domain", "spf_result", "spf_aligned"}

// dmarcRollupDest returns where a DMARCRollupRow keeps column name.
func dmarcRollupDest(name string, r *DMARCRollupRow) any {
	switch name {
	case "day":
		return timeCol{&r.Day}
	case "domain":
		return &r.Domain
	case "reporter":
		return &r.Reporter
	case "source_ip":
		return &r.SourceIP
	case "header_from":
		return &r.HeaderFrom
	case "envelope_from":
		return &r.EnvelopeFrom
	case "disposition":
		return &r.Disposition
	case "dkim":
		return &r.DKIM
	case "spf":
		return &r.SPF
	case "reason":
		return &r.Reason
	case "dkim_domain":
		return &r.DKIMDomain
	case "dkim_selector":
		return &r.DKIMSelector
	case "dkim_result":
		return &r.DKIMResult
	case "dkim_aligned":
		return &r.DKIMAligned
	case "spf_domain":
		return &r.SPFDomain
	case "spf_result":
		return &r.SPFResult
	case "spf_aligned":
		return &r.SPFAligned
	}
	return nil
}

// DMARCRollups implements DMARCReader: the rollups of the domains hosted
// in the scope (the operator: of every domain), days with Since <= day <
// Until, grouped and ordered by the GroupBy columns, each ascending. A
// GroupBy name that is unknown or listed twice is ErrInvalidArg naming it.
func (t *tenant) DMARCRollups(ctx context.Context, rq DMARCRollupQuery) ([]DMARCRollupRow, error) {
	text, args, group, err := t.dmarcRollupQuery(rq)
	if err != nil {
		return nil, err
	}
	rows, err := t.s.r.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: dmarc rollups by %q: %w", rq.GroupBy, err)
	}
	defer rows.Close()
	out := []DMARCRollupRow{}
	for rows.Next() {
		var r DMARCRollupRow
		dest := make([]any, 0, len(group)+1)
		for _, g := range group {
			dest = append(dest, dmarcRollupDest(g, &r))
		}
		if err := rows.Scan(append(dest, &r.Messages)...); err != nil {
			return nil, fmt.Errorf("store: dmarc rollups by %q: %w", rq.GroupBy, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: dmarc rollups by %q: %w", rq.GroupBy, err)
	}
	return out, nil
}

// dmarcRollupQuery returns the SQL text of rq, its arguments and the
// group-by columns.
func (t *tenant) dmarcRollupQuery(rq DMARCRollupQuery) (string, []any, []string, error) {
	// The columns are this package's names, never the caller's strings.
	var group []string
	for _, g := range rq.GroupBy {
		i := slices.Index(dmarcGroupNames, g)
		if i < 0 {
			return "", nil, nil, fmt.Errorf("%w: dmarc rollups: unknown group-by column %q (want one of %s)", ErrInvalidArg, g,
				strings.Join(dmarcGroupNames, ", "))
		}
		if slices.Contains(group, g) {
			return "", nil, nil, fmt.Errorf("%w: dmarc rollups: group-by column %q listed twice", ErrInvalidArg, g)
		}
		group = append(group, dmarcGroupNames[i])
	}
	var (
		q     sqlq
		conds []string
	)
	if rq.Domain != "" {
		conds = append(conds, "domain = "+q.arg(normDomain(rq.Domain)))
	}
	if !rq.Since.IsZero() {
		conds = append(conds, "day >= "+q.arg(t.s.d.timeArg(normTime(rq.Since))))
	}
	if !rq.Until.IsZero() {
		conds = append(conds, "day < "+q.arg(t.s.d.timeArg(normTime(rq.Until))))
	}
	if c := t.in(&q, "hd.org_id"); c != "" {
		conds = append(conds, "domain IN (SELECT hd.name FROM domains hd WHERE "+c+")")
	}
	cols, groupBy := "", ""
	if len(group) > 0 {
		cols = strings.Join(group, ", ") + ", "
		groupBy = " GROUP BY " + strings.Join(group, ", ") + " ORDER BY " + strings.Join(group, ", ")
	}
	// SUM of bigint is numeric on PostgreSQL; back to bigint.
	text := sqlText(`SELECT `, cols, `CAST(COALESCE(SUM(messages), 0) AS BIGINT) FROM `, "dmarc_daily", where(conds...), groupBy)
	return text, q.args, group, nil
}

// DMARCTotals implements DMARCReader: the counts of dmarc_totals of the
// domains hosted in the scope (the operator: of every domain), days with
// Since <= day < Until, summed by day, by domain or in all. Its key leads
// with the day, so a period is one range of it, grouped by day without a
// sort.
func (t *tenant) DMARCTotals(ctx context.Context, q DMARCTotalsQuery) ([]DMARCTotalsRow, error) {
	text, args, err := t.dmarcTotalsQuery(q)
	if err != nil {
		return nil, err
	}
	rows, err := t.s.r.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: dmarc totals by %q: %w", q.By, err)
	}
	defer rows.Close()
	out := []DMARCTotalsRow{}
	for rows.Next() {
		var r DMARCTotalsRow
		var dest []any
		switch q.By {
		case "day":
			dest = append(dest, timeCol{&r.Day})
		case "domain":
			dest = append(dest, &r.Domain)
		}
		if err := rows.Scan(append(dest, &r.Messages, &r.DKIMPass, &r.SPFPass, &r.DMARCPass)...); err != nil {
			return nil, fmt.Errorf("store: dmarc totals by %q: %w", q.By, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: dmarc totals by %q: %w", q.By, err)
	}
	return out, nil
}

// dmarcTotalsQuery returns the SQL text of q and its arguments.
func (t *tenant) dmarcTotalsQuery(q DMARCTotalsQuery) (string, []any, error) {
	var col string
	switch q.By {
	case "", "day", "domain":
		col = q.By
	default:
		return "", nil, fmt.Errorf("%w: dmarc totals: unknown grouping %q (want day, domain or none)", ErrInvalidArg, q.By)
	}
	var (
		sq    sqlq
		conds []string
	)
	if !q.Since.IsZero() {
		conds = append(conds, "day >= "+sq.arg(t.s.d.timeArg(normTime(q.Since))))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "day < "+sq.arg(t.s.d.timeArg(normTime(q.Until))))
	}
	if c := t.in(&sq, "hd.org_id"); c != "" {
		conds = append(conds, "domain IN (SELECT hd.name FROM domains hd WHERE "+c+")")
	}
	cols, groupBy := "", ""
	if col != "" {
		cols = col + ", "
		groupBy = " GROUP BY " + col + " ORDER BY " + col
	}
	// SUM of bigint is numeric on PostgreSQL; back to bigint.
	sum := func(c string) string { return "CAST(COALESCE(SUM(" + c + "), 0) AS BIGINT)" }
	text := sqlText(`SELECT `, cols, sum("messages"), `, `, sum("dkim_pass"), `, `, sum("spf_pass"), `, `, sum("dmarc_pass"),
		` FROM dmarc_totals`, where(conds...), groupBy)
	return text, sq.args, nil
}
