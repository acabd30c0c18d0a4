package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The intake log rows of DMARC submissions (intake_log.go has the TLS-RPT
// ones and the reading).

// intakeEntry is one intake log row of a DMARC submission.
type intakeEntry struct {
	i               int // position in the batch, per kind
	at              time.Time
	kind            string
	source, detail  string
	outcome         string
	report, failure int64
	reason          string
	reporter, name  string
	domains         []string
}

func dmarcLogEntry(row *dmarcRow, res DMARCResult) intakeEntry {
	r := row.r
	e := intakeEntry{i: row.i, at: row.receivedAt, kind: KindDMARC, source: r.Source, detail: r.SourceDetail,
		outcome: OutcomeStored, report: res.ID, reporter: r.OrgName, name: r.ReportID}
	if r.Domain != "" {
		e.domains = []string{r.Domain}
	}
	switch {
	case res.Duplicate:
		e.outcome = OutcomeDuplicate
	case res.ConflictOf != 0:
		e.outcome = OutcomeConflict
		e.reason = fmt.Sprintf("report %d has this organization, report id and period with another content: kept aside, not counted",
			res.ConflictOf)
	case res.Status == ReportInvalid:
		e.outcome, e.reason = OutcomeInvalid, res.Error
	}
	return e
}

func failureLogEntry(row *failureRow, res InsertResult) intakeEntry {
	f := row.r
	e := intakeEntry{i: row.i, at: row.receivedAt, kind: KindDMARCFailure, source: f.Source, detail: f.SourceDetail,
		outcome: OutcomeStored, failure: res.ID, reporter: f.Reporter}
	if f.Domain != "" {
		e.domains = []string{f.Domain}
	}
	if res.Duplicate {
		e.outcome = OutcomeDuplicate
	}
	return e
}

// logEntries writes intake log rows: aggregate reports, then failure
// reports, each in batch order.
func (s *sqlStore) logEntries(ctx context.Context, tx *sql.Tx, entries []intakeEntry) error {
	slices.SortFunc(entries, func(a, b intakeEntry) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.i, b.i))
	})
	log := s.bulk(12, `INSERT INTO intake_log (at, kind, source, detail, outcome, dmarc_report, dmarc_failure, reason,
		reporter, report_name, domains, report)`, "")
	for _, e := range entries {
		log.add(s.d.timeArg(e.at), e.kind, e.source, e.detail, e.outcome, nullID(e.report), nullID(e.failure), e.reason,
			e.reporter, e.name, encodeList(e.domains), nil)
	}
	return log.exec(ctx, tx)
}

// intakeIn returns the condition that the intake log row l is in the
// scope: its report, of whichever kind, has a policy (or reported) domain
// hosted there. "" for the operator.
func (t *tenant) intakeIn(q *sqlq) string {
	if t.sc.Operator {
		return ""
	}
	return `(` + t.reportIn(q, "l.report") + ` OR ` + t.dmarcIn(q, `(SELECT xr.domain FROM dmarc_reports xr WHERE xr.id = l.dmarc_report)`) +
		` OR ` + t.dmarcIn(q, `(SELECT xf.domain FROM dmarc_failures xf WHERE xf.id = l.dmarc_failure)`) + `)`
}

// dmarcIn returns the condition that the domain expression dom (a column,
// or a scalar subquery) names a domain hosted in the scope; "" for the
// operator.
func (t *tenant) dmarcIn(q *sqlq, dom string) string {
	c := t.in(q, "hd.org_id")
	if c == "" {
		return ""
	}
	return `EXISTS (SELECT 1 FROM domains hd WHERE hd.name = ` + dom + ` AND ` + c + `)`
}
