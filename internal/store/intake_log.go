package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The intake log: one row per report submission, written by InsertTLSRPT
// in the transaction that stores the batch, and tlsrpt_last, the newest
// stored report of each policy domain, kept in the same transaction.

// Intake outcomes (IntakeEvent.Outcome).
const (
	OutcomeStored    = "stored"
	OutcomeDuplicate = "duplicate"
	OutcomeInvalid   = "invalid"
	// OutcomeConflict: a DMARC report stored aside, another one holding
	// its identity with another content.
	OutcomeConflict = DMARCConflict
)

// Kinds of submissions (IntakeEvent.Kind).
const (
	KindTLSRPT       = "tlsrpt"
	KindDMARC        = "dmarc"         // an aggregate report
	KindDMARCFailure = "dmarc-failure" // a failure report
)

// defaultIntakeLimit is the page size of IntakeLog when Limit is 0.
const defaultIntakeLimit = 100

// outcomeOf is what became of a report of a batch: a duplicate (of any
// status), else an invalid report (stored all the same), else stored.
func outcomeOf(r *TLSRPTReport, res InsertResult) string {
	switch {
	case res.Duplicate:
		return OutcomeDuplicate
	case r.Status == ReportInvalid:
		return OutcomeInvalid
	}
	return OutcomeStored
}

// logIntake writes the intake log rows of a batch, in batch order, and
// advances tlsrpt_last for the policy domains of the reports stored.
// Duplicates do not count as newer reports: nothing new arrived.
func (s *sqlStore) logIntake(ctx context.Context, tx *sql.Tx, order []*reportRow, results []InsertResult) error {
	rows := slices.Clone(order)
	slices.SortFunc(rows, func(a, b *reportRow) int { return cmp.Compare(a.i, b.i) })
	log := s.bulk(9, `INSERT INTO intake_log (at, source, detail, outcome, report, reason, reporter, report_name, domains)`, "")
	last := make(map[string]time.Time)
	for _, row := range rows {
		r, res := row.r, results[row.i]
		log.add(s.d.timeArg(row.receivedAt), r.Source, r.SourceDetail, outcomeOf(r, res), nullID(res.ID), r.Error,
			r.OrganizationName, r.ReportID, row.domains)
		if res.Duplicate {
			continue
		}
		for _, d := range row.joinDomains {
			if t, ok := last[d]; !ok || row.receivedAt.After(t) {
				last[d] = row.receivedAt
			}
		}
	}
	if err := log.exec(ctx, tx); err != nil {
		return fmt.Errorf("intake log: %w", err)
	}
	// In domain order, after the rollups: the lock order of the batch
	// (reports_sql.go).
	domains := make([]string, 0, len(last))
	for d := range last {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	up := s.bulk(2, `INSERT INTO tlsrpt_last (domain, received_at)`,
		` ON CONFLICT (domain) DO UPDATE SET received_at = excluded.received_at
		WHERE excluded.received_at > tlsrpt_last.received_at`)
	for _, d := range domains {
		up.add(d, s.d.timeArg(last[d]))
	}
	if err := up.exec(ctx, tx); err != nil {
		return fmt.Errorf("newest report of %d domains: %w", len(domains), err)
	}
	return nil
}

// IntakeLog implements Tenant. A tenant sees the submissions whose report
// has a policy domain hosted in its scope (a DMARC report: its policy
// domain; a failure report: its reported domain); reports that could not
// be parsed name no domain, so their submissions are the operator's only.
// Limit 0 is 100, more than 1000 is 1000.
func (t *tenant) IntakeLog(ctx context.Context, iq IntakeQuery) ([]*IntakeEvent, error) {
	if iq.Limit < 0 {
		return nil, fmt.Errorf("%w: intake log: negative limit %d", ErrInvalidArg, iq.Limit)
	}
	limit := iq.Limit
	if limit == 0 {
		limit = defaultIntakeLimit
	}
	limit = min(limit, maxPage)
	var (
		q     sqlq
		conds []string
	)
	if !iq.Since.IsZero() {
		conds = append(conds, "l.at >= "+q.arg(t.s.d.timeArg(normTime(iq.Since))))
	}
	if iq.Outcome != "" {
		conds = append(conds, "l.outcome = "+q.arg(iq.Outcome))
	}
	if iq.Source != "" {
		conds = append(conds, "l.source = "+q.arg(iq.Source))
	}
	if iq.Before != 0 {
		conds = append(conds, "l.id < "+q.arg(iq.Before))
	}
	if iq.Kind != "" {
		conds = append(conds, "l.kind = "+q.arg(iq.Kind))
	}
	conds = append(conds, t.intakeIn(&q))
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT l.id, l.at, l.kind, l.source, l.detail, l.outcome,
		COALESCE(l.report, l.dmarc_report, l.dmarc_failure), l.reason, l.reporter, l.report_name, l.domains
		FROM intake_log l`, where(conds...),
		` ORDER BY l.id DESC LIMIT `, q.arg(limit)), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: intake log: %w", err)
	}
	defer rows.Close()
	l := []*IntakeEvent{}
	for rows.Next() {
		var (
			e       IntakeEvent
			domains string
		)
		if err := rows.Scan(&e.ID, timeCol{&e.At}, &e.Kind, &e.Source, &e.Detail, &e.Outcome, optIDCol{&e.ReportID}, &e.Reason,
			&e.Reporter, &e.ReportName, &domains); err != nil {
			return nil, fmt.Errorf("store: intake log: %w", err)
		}
		if e.Domains, err = decodeList("intake_log.domains", domains); err != nil {
			return nil, err
		}
		l = append(l, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: intake log: %w", err)
	}
	return l, nil
}
