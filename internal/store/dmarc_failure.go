package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Reading DMARC failure reports (written by InsertDMARC, dmarc_sql.go).

const (
	failureListCols = `f.id, f.received_at, f.source, f.source_detail, f.digest, f.dkim, f.sealed, f.status,
		f.warnings, f.domain, f.reporter, f.feedback_type, f.auth_failure, f.delivery_result, f.source_ip,
		f.arrival_at, f.reporting_mta, f.user_agent, f.dkim_domain, f.dkim_selector, f.spf_dns,
		f.identity_alignment, f.incidents`
	failureCols = failureListCols + `, f.raw, f.raw_size, f.parsed`
)

func scanFailure(row scanner, extra ...any) (*DMARCFailure, error) {
	var (
		f                   DMARCFailure
		warnings, alignment string
	)
	dest := []any{&f.ID, timeCol{&f.ReceivedAt}, &f.Source, &f.SourceDetail, &f.Digest, &f.DKIM, &f.Sealed,
		&f.Status, &warnings, &f.Domain, &f.Reporter, &f.FeedbackType, &f.AuthFailure, &f.DeliveryResult,
		&f.SourceIP, optTimeCol{&f.ArrivalDate}, &f.ReportingMTA, &f.UserAgent, &f.DKIMDomain, &f.DKIMSelector,
		&f.SPFDNS, &alignment, &f.Incidents}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	var err error
	if f.Warnings, err = decodeList("dmarc_failures.warnings", warnings); err != nil {
		return nil, err
	}
	if f.IdentityAlignment, err = decodeList("dmarc_failures.identity_alignment", alignment); err != nil {
		return nil, err
	}
	return &f, nil
}

// DMARCFailures implements DMARCReader: newest first. Status must be ""
// (failure reports are all readable).
func (t *tenant) DMARCFailures(ctx context.Context, f DMARCFilter) ([]*DMARCFailure, error) {
	limit, err := pageOf("list dmarc failure reports", f)
	if err != nil {
		return nil, err
	}
	var (
		q     sqlq
		conds []string
	)
	if f.Domain != "" {
		conds = append(conds, "f.domain = "+q.arg(normDomain(f.Domain)))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "f.received_at >= "+q.arg(t.s.d.timeArg(normTime(f.Since))))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "f.received_at < "+q.arg(t.s.d.timeArg(normTime(f.Until))))
	}
	if f.Status != "" {
		conds = append(conds, "f.status = "+q.arg(f.Status))
	}
	conds = append(conds, t.dmarcIn(&q, "f.domain"))
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, failureListCols, ` FROM dmarc_failures f`, where(conds...),
		` ORDER BY f.received_at DESC, f.id DESC LIMIT `, q.arg(limit), ` OFFSET `, q.arg(f.Offset)), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: list dmarc failure reports: %w", err)
	}
	defer rows.Close()
	l := []*DMARCFailure{}
	for rows.Next() {
		fr, err := scanFailure(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list dmarc failure reports: %w", err)
		}
		l = append(l, fr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list dmarc failure reports: %w", err)
	}
	return l, nil
}

// DMARCFailureByID implements DMARCReader.
func (t *tenant) DMARCFailureByID(ctx context.Context, id int64) (*DMARCFailure, error) {
	var (
		q           sqlq
		raw, parsed []byte
		rawSize     int64
	)
	f, err := scanFailure(t.s.r.QueryRowContext(ctx, sqlText(`SELECT `, failureCols, ` FROM dmarc_failures f WHERE f.id = `,
		q.arg(id), and(t.dmarcIn(&q, "f.domain"))), q.args...), &raw, &rawSize, &parsed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: dmarc failure report %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read dmarc failure report %d: %w", id, err)
	}
	if f.Sealed != "" {
		// Age ciphertext, kept as received from the sealing.
		f.Raw, f.Parsed = raw, parsed
		return f, nil
	}
	if f.Raw, err = gunzip("dmarc_failures.raw", raw, rawSize); err != nil {
		return nil, fmt.Errorf("store: read dmarc failure report %d: %w", id, err)
	}
	if f.Parsed, err = gunzip("dmarc_failures.parsed", parsed, -1); err != nil {
		return nil, fmt.Errorf("store: read dmarc failure report %d: %w", id, err)
	}
	return f, nil
}
