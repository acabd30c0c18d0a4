package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Writing DMARC aggregate reports.
//
// InsertDMARC prepares every row (validation, digest, compression) before
// it opens the transaction. Inside it, each aggregate report, in lock order
// (its identity, then its digest), goes through these steps:
//
//  1. The same bytes stored before (digest): a duplicate; its records are
//     not read.
//  2. A report whose header could not be read (ReportInvalid, no Rows):
//     inserted as is, kept with its reason.
//  3. Another report holds its identity (organization, report id, period
//     as stated): the records are read only to learn the content digest.
//     The same content is a duplicate (of the holder, or of a conflict copy
//     stored before); other content is inserted aside, conflict_of naming
//     the holder, and not counted.
//  4. Otherwise the report row is inserted first (ON CONFLICT DO NOTHING:
//     on PostgreSQL a concurrent batch holding the identity makes it wait,
//     then insert nothing, and the steps start again and find it), then,
//     under a savepoint, its records are read: their rows are summed in
//     memory by rollup key and added to dmarc_daily (counts added) each
//     time the sum holds dmarcFlushRows keys, and at the end. Records that
//     turn out unreadable roll back to the savepoint, and the row becomes
//     ReportInvalid with the reason: nothing of it is counted.
//
// Then the failure reports (deduplicated by digest) and the intake log of
// the whole batch. Memory stays bounded whatever a report's size: the
// decoder streams, and at most dmarcFlushRows sums are held.
//
// Lock order on PostgreSQL: reports by identity, and within each flush the
// rollup rows by key. Two instances storing huge reports of one domain and
// day at the same moment can still take rollup rows in crossing orders
// across flushes; PostgreSQL then aborts one transaction, and the ingester
// retries it.

// dmarcFlushRows is how many distinct rollup rows of one report are summed
// in memory before they are added to dmarc_daily.
const dmarcFlushRows = 10000

var _ DMARCStore = (*sqlStore)(nil)

// dmarcRow is one aggregate report of a batch, ready to write.
type dmarcRow struct {
	i int
	r *DMARCReport

	receivedAt, start, end time.Time
	dated                  int
	beginS, endS           int64 // the period as stated, Unix seconds, 0 when absent
	raw                    []byte
	rawGzip                bool
	digest                 string
}

// failureRow is one failure report of a batch, ready to write.
type failureRow struct {
	i           int
	r           *DMARCFailure
	receivedAt  time.Time
	digest      string
	raw, parsed []byte // gzip
}

// checkDomainName guards a stored policy or reported domain: lower case,
// no trailing dot ("" allowed: not known).
func checkDomainName(d string) string {
	if d != strings.ToLower(d) || strings.HasSuffix(d, ".") {
		return fmt.Sprintf("domain %q: want lower case without a trailing dot", d)
	}
	return ""
}

// prepareDMARC validates r and computes what is stored for it.
func prepareDMARC(c *compressor, i int, r *DMARCReport, at time.Time) (*dmarcRow, error) {
	if r == nil {
		return nil, fmt.Errorf("store: insert dmarc report %d: nil report", i)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("store: insert dmarc report %d (organization %q, report id %q): %s", i, r.OrgName, r.ReportID, fmt.Sprintf(format, args...))
	}
	switch r.Status {
	case ReportOK, ReportWarnings:
		if r.Rows == nil {
			return nil, fail("status %q without Rows", r.Status)
		}
	case ReportInvalid:
	default:
		return nil, fail("status %q: want %q, %q or %q", r.Status, ReportOK, ReportWarnings, ReportInvalid)
	}
	if why := checkDomainName(r.Domain); why != "" {
		return nil, fail("%s", why)
	}
	if r.Pct < -1 || r.Pct > 100 {
		return nil, fail("pct %d: want 0 to 100, or -1 when absent", r.Pct)
	}
	row := &dmarcRow{i: i, r: r, receivedAt: at}
	if !r.ReceivedAt.IsZero() {
		row.receivedAt = normTime(r.ReceivedAt)
	}
	row.digest = digestOf(r.Raw)
	if r.Digest != "" && r.Digest != row.digest {
		return nil, fail("digest %q is not the SHA-256 of Raw (%s)", r.Digest, row.digest)
	}
	row.start, row.end = normTime(r.StartTime), normTime(r.EndTime)
	if !r.StartTime.IsZero() {
		row.dated |= datedStart
		row.beginS = r.StartTime.Unix()
	}
	if !r.EndTime.IsZero() {
		row.dated |= datedEnd
		row.endS = r.EndTime.Unix()
	}
	switch row.dated {
	case 0:
		row.start, row.end = row.receivedAt, row.receivedAt
	case datedStart:
		row.end = row.start
	case datedEnd:
		row.start = row.end
	}
	var err error
	if row.raw, row.rawGzip, err = c.raw(r.Raw); err != nil {
		return nil, fmt.Errorf("store: insert dmarc report %d: compress raw report: %w", i, err)
	}
	if row.raw == nil {
		row.raw = []byte{} // NOT NULL
	}
	return row, nil
}

// day is the rollup day of the report: the UTC day of the middle of its
// period (a report covering a day in another time zone is counted on the
// day that holds most of it), else of the end or begin it states, else of
// its arrival.
func (row *dmarcRow) day() time.Time {
	switch row.dated {
	case datedStart | datedEnd:
		return dayOf(row.start.Add(row.end.Sub(row.start) / 2))
	case datedStart, datedEnd:
		return dayOf(row.start)
	}
	return dayOf(row.receivedAt)
}

func prepareFailure(c *compressor, i int, f *DMARCFailure, at time.Time) (*failureRow, error) {
	if f == nil {
		return nil, fmt.Errorf("store: insert dmarc failure report %d: nil report", i)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("store: insert dmarc failure report %d (domain %q): %s", i, f.Domain, fmt.Sprintf(format, args...))
	}
	if f.Status != ReportOK && f.Status != ReportWarnings {
		return nil, fail("status %q: want %q or %q", f.Status, ReportOK, ReportWarnings)
	}
	if why := checkDomainName(f.Domain); why != "" {
		return nil, fail("%s", why)
	}
	if f.Incidents < 0 {
		return nil, fail("negative incidents %d", f.Incidents)
	}
	if f.Sealed != "" {
		return nil, fail("Sealed is set by the store (to the key of the organization hosting the domain), not by the caller")
	}
	row := &failureRow{i: i, r: f, receivedAt: at, digest: digestOf(f.Raw)}
	if !f.ReceivedAt.IsZero() {
		row.receivedAt = normTime(f.ReceivedAt)
	}
	if f.Digest != "" && f.Digest != row.digest {
		return nil, fail("digest %q is not the SHA-256 of Raw (%s)", f.Digest, row.digest)
	}
	// RFC 6591 reports carry the failed message or its header: kept only
	// compressed (and, with sealing, only encrypted).
	var err error
	if row.raw, err = c.gzip(f.Raw); err != nil {
		return nil, fmt.Errorf("store: insert dmarc failure report %d: compress: %w", i, err)
	}
	if row.parsed, err = c.gzip(f.Parsed); err != nil {
		return nil, fmt.Errorf("store: insert dmarc failure report %d: compress: %w", i, err)
	}
	return row, nil
}

// dmarcLockOrder sorts aggregate reports by identity, then digest, then
// batch position (of two copies in a batch the first is stored).
func dmarcLockOrder(a, b *dmarcRow) int {
	return cmp.Or(
		strings.Compare(a.r.OrgName, b.r.OrgName),
		strings.Compare(a.r.ReportID, b.r.ReportID),
		cmp.Compare(a.beginS, b.beginS),
		cmp.Compare(a.endS, b.endS),
		strings.Compare(a.digest, b.digest),
		cmp.Compare(a.i, b.i))
}

// InsertDMARC implements DMARCStore. A zero ReceivedAt is the time of the
// call; an empty Digest is computed. The reports are not modified.
func (s *sqlStore) InsertDMARC(ctx context.Context, b DMARCBatch) (DMARCBatchResult, error) {
	out := DMARCBatchResult{Reports: make([]DMARCResult, len(b.Reports)), Failures: make([]InsertResult, len(b.Failures))}
	if len(b.Reports) == 0 && len(b.Failures) == 0 {
		return out, nil
	}
	c := compressor{zw: s.gz.get()}
	defer s.gz.put(c.zw)
	at := now()
	rows := make([]*dmarcRow, len(b.Reports))
	for i, r := range b.Reports {
		row, err := prepareDMARC(&c, i, r, at)
		if err != nil {
			return DMARCBatchResult{}, err
		}
		rows[i] = row
	}
	frows := make([]*failureRow, len(b.Failures))
	for i, f := range b.Failures {
		row, err := prepareFailure(&c, i, f, at)
		if err != nil {
			return DMARCBatchResult{}, err
		}
		frows[i] = row
	}
	order := slices.Clone(rows)
	slices.SortFunc(order, dmarcLockOrder)
	forder := slices.Clone(frows)
	slices.SortFunc(forder, func(a, b *failureRow) int { return cmp.Or(strings.Compare(a.digest, b.digest), cmp.Compare(a.i, b.i)) })

	what := fmt.Sprintf("insert %d dmarc reports and %d failure reports", len(rows), len(frows))
	err := s.writeTx(ctx, what, func(tx *sql.Tx) error {
		var log []intakeEntry
		for _, row := range order {
			res, err := s.insertDMARCReport(ctx, tx, row)
			if err != nil {
				return fmt.Errorf("store: insert dmarc report %d (organization %q, report id %q): %w", row.i, row.r.OrgName, row.r.ReportID, err)
			}
			out.Reports[row.i] = res
			log = append(log, dmarcLogEntry(row, res))
		}
		for _, row := range forder {
			res, err := s.insertFailure(ctx, tx, row)
			if err != nil {
				return fmt.Errorf("store: insert dmarc failure report %d: %w", row.i, err)
			}
			out.Failures[row.i] = res
			log = append(log, failureLogEntry(row, res))
		}
		if err := s.logEntries(ctx, tx, log); err != nil {
			return fmt.Errorf("store: %s: log: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return DMARCBatchResult{}, err
	}
	return out, nil
}

// storedDMARC is what a duplicate's result tells of the stored report.
const storedDMARCCols = `id, status, error, warnings, records, messages, content_digest`

func scanStoredDMARC(row scanner, res *DMARCResult, contentDigest *string) error {
	var warnings string
	if err := row.Scan(&res.ID, &res.Status, &res.Error, &warnings, &res.Records, &res.Messages, contentDigest); err != nil {
		return err
	}
	var err error
	res.Warnings, err = decodeList("dmarc_reports.warnings", warnings)
	return err
}

// lookupDMARC returns the stored report the query (selecting
// storedDMARCCols) finds, and whether there is one.
func lookupDMARC(ctx context.Context, tx *sql.Tx, query string, args ...any) (DMARCResult, string, bool, error) {
	var (
		res DMARCResult
		cd  string
	)
	err := scanStoredDMARC(tx.QueryRowContext(ctx, query, args...), &res, &cd)
	if errors.Is(err, sql.ErrNoRows) {
		return DMARCResult{}, "", false, nil
	}
	return res, cd, err == nil, err
}

const (
	dmarcByDigestSQL = `SELECT ` + storedDMARCCols + ` FROM dmarc_reports WHERE digest = $1`
	// The literal conditions repeat the partial index's.
	dmarcByIdentitySQL = `SELECT ` + storedDMARCCols + ` FROM dmarc_reports
		WHERE org_name = $1 AND report_id = $2 AND begin_s = $3 AND end_s = $4
		AND status <> 'invalid' AND conflict_of IS NULL`
	dmarcByContentSQL = `SELECT ` + storedDMARCCols + ` FROM dmarc_reports
		WHERE org_name = $1 AND report_id = $2 AND begin_s = $3 AND end_s = $4 AND content_digest = $5
		ORDER BY id LIMIT 1`
	dmarcInsertSQL = `INSERT INTO dmarc_reports (received_at, source, source_detail, raw, raw_gzip, raw_size, digest,
		media_type, dkim, status, error, warnings, conflict_of, org_name, org_email, extra_contact, report_id,
		begin_s, end_s, dated, start_time, end_time, version, domain, adkim, aspf, p, sp, np, pct, testing, fo,
		hosted, records, messages, content_digest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
		$22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36)
		ON CONFLICT DO NOTHING RETURNING id`
)

// insertRow inserts row with the given outcome fields; it returns 0 when
// a unique constraint held it back.
func (s *sqlStore) insertRow(ctx context.Context, tx *sql.Tx, row *dmarcRow, status, reason string, warnings []string,
	conflictOf, records, messages int64, contentDigest string) (int64, error) {
	r := row.r
	var id int64
	err := tx.QueryRowContext(ctx, dmarcInsertSQL, s.d.timeArg(row.receivedAt), r.Source, r.SourceDetail, row.raw,
		row.rawGzip, int64(len(r.Raw)), row.digest, r.MediaType, r.DKIM, status, reason, encodeList(warnings),
		nullID(conflictOf), r.OrgName, r.OrgEmail, r.ExtraContact, r.ReportID, row.beginS, row.endS, row.dated,
		s.d.timeArg(row.start), s.d.timeArg(row.end), r.Version, r.Domain, r.ADKIM, r.ASPF, r.P, r.SP, r.NP, r.Pct,
		r.Testing, r.FO, r.Hosted, records, messages, contentDigest).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// insertDMARCReport stores one aggregate report inside tx (see the steps
// at the top).
func (s *sqlStore) insertDMARCReport(ctx context.Context, tx *sql.Tx, row *dmarcRow) (DMARCResult, error) {
	r := row.r
	identity := []any{r.OrgName, r.ReportID, row.beginS, row.endS}
	// Twice at most: a concurrent batch that held the identity or the
	// digest when we inserted has committed by the second round.
	for range 2 {
		if res, _, ok, err := lookupDMARC(ctx, tx, dmarcByDigestSQL, row.digest); err != nil || ok {
			res.Duplicate = true
			return res, err
		}
		if r.Rows == nil {
			id, err := s.insertRow(ctx, tx, row, ReportInvalid, r.Error, r.Warnings, 0, 0, 0, "")
			if err != nil || id == 0 {
				if err != nil {
					return DMARCResult{}, err
				}
				continue
			}
			return DMARCResult{ID: id, Status: ReportInvalid, Error: r.Error, Warnings: r.Warnings}, nil
		}
		holder, holderContent, held, err := lookupDMARC(ctx, tx, dmarcByIdentitySQL, identity...)
		if err != nil {
			return DMARCResult{}, err
		}
		if held {
			return s.insertBeside(ctx, tx, row, holder, holderContent, identity)
		}
		id, err := s.insertRow(ctx, tx, row, r.Status, "", r.Warnings, 0, 0, 0, "")
		if err != nil {
			return DMARCResult{}, err
		}
		if id == 0 {
			continue
		}
		return s.fillReport(ctx, tx, row, id)
	}
	return DMARCResult{}, errors.New("the insert conflicted twice but no report with its digest or identity exists (deleted meanwhile?)")
}

// insertBeside reads a report whose identity another report holds: a
// duplicate when the content is the same as the holder's or as a conflict
// copy's, else a conflict copy of its own, not counted.
func (s *sqlStore) insertBeside(ctx context.Context, tx *sql.Tx, row *dmarcRow, holder DMARCResult, holderContent string, identity []any) (DMARCResult, error) {
	end, err := row.r.Rows(func(*DMARCRow) error { return nil })
	if err != nil {
		return DMARCResult{}, fmt.Errorf("read records: %w", err)
	}
	if end.Error != "" {
		id, err := s.insertRow(ctx, tx, row, ReportInvalid, end.Error, end.Warnings, 0, 0, 0, "")
		if err != nil || id == 0 {
			return DMARCResult{}, cmp.Or(err, errors.New("the invalid report conflicted with a report stored meanwhile"))
		}
		return DMARCResult{ID: id, Status: ReportInvalid, Error: end.Error, Warnings: end.Warnings}, nil
	}
	if end.ContentDigest == holderContent {
		holder.Duplicate = true
		return holder, nil
	}
	if dup, _, ok, err := lookupDMARC(ctx, tx, dmarcByContentSQL, append(identity, end.ContentDigest)...); err != nil || ok {
		dup.Duplicate = true
		return dup, err
	}
	status := statusOf(end.Warnings)
	id, err := s.insertRow(ctx, tx, row, status, "", end.Warnings, holder.ID, end.Records, end.Messages, end.ContentDigest)
	if err != nil || id == 0 {
		return DMARCResult{}, cmp.Or(err, errors.New("the conflicting report conflicted with a report stored meanwhile"))
	}
	return DMARCResult{ID: id, ConflictOf: holder.ID, Status: status, Warnings: end.Warnings, Records: end.Records, Messages: end.Messages}, nil
}

func statusOf(warnings []string) string {
	if len(warnings) > 0 {
		return ReportWarnings
	}
	return ReportOK
}

// fillReport reads the records of the report just inserted as id into the
// rollups, under a savepoint, and completes its row.
func (s *sqlStore) fillReport(ctx context.Context, tx *sql.Tx, row *dmarcRow, id int64) (DMARCResult, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT dmarc_records`); err != nil {
		return DMARCResult{}, err
	}
	agg := &dmarcAgg{s: s, tx: tx, ctx: ctx, domain: row.r.Domain, day: row.day(), reporter: row.r.OrgName,
		sums: make(map[DMARCRow]int64)}
	end, err := row.r.Rows(agg.add)
	if err != nil {
		return DMARCResult{}, fmt.Errorf("read records: %w", err)
	}
	res := DMARCResult{ID: id, Warnings: end.Warnings}
	if end.Error != "" {
		// Nothing of a report that cannot be read counts.
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT dmarc_records`); err != nil {
			return DMARCResult{}, err
		}
		res.Status, res.Error = ReportInvalid, end.Error
	} else {
		if err := agg.flush(); err != nil {
			return DMARCResult{}, err
		}
		res.Status, res.Records, res.Messages = statusOf(end.Warnings), end.Records, end.Messages
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT dmarc_records`); err != nil {
		return DMARCResult{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE dmarc_reports SET status = $1, error = $2, warnings = $3, records = $4,
		messages = $5, content_digest = $6 WHERE id = $7`,
		res.Status, res.Error, encodeList(res.Warnings), res.Records, res.Messages, end.ContentDigest, id); err != nil {
		return DMARCResult{}, err
	}
	return res, nil
}

// dmarcAgg sums the rows of one report by rollup key and adds them to
// dmarc_daily when it holds dmarcFlushRows keys, and at the end.
type dmarcAgg struct {
	s        *sqlStore
	tx       *sql.Tx
	ctx      context.Context
	domain   string
	day      time.Time
	reporter string
	sums     map[DMARCRow]int64
}

func (a *dmarcAgg) add(r *DMARCRow) error {
	if r.Messages < 0 {
		return fmt.Errorf("negative message count %d", r.Messages)
	}
	if r.Messages == 0 {
		return nil
	}
	k := *r
	k.Messages = 0
	a.sums[k] += r.Messages
	if len(a.sums) >= dmarcFlushRows {
		return a.flush()
	}
	return nil
}

// dmarcDailyCols are the key columns of dmarc_daily after domain, day and
// reporter, in the order of compareDMARCRows.
const dmarcDailyCols = `source_ip, header_from, envelope_from, disposition, dkim, spf, reason,
	dkim_domain, dkim_selector, dkim_result, dkim_aligned, spf_domain, spf_result, spf_aligned`

func compareDMARCRows(a, b DMARCRow) int {
	return cmp.Or(
		strings.Compare(a.SourceIP, b.SourceIP), strings.Compare(a.HeaderFrom, b.HeaderFrom),
		strings.Compare(a.EnvelopeFrom, b.EnvelopeFrom), strings.Compare(a.Disposition, b.Disposition),
		strings.Compare(a.DKIM, b.DKIM), strings.Compare(a.SPF, b.SPF), strings.Compare(a.Reason, b.Reason),
		strings.Compare(a.DKIMDomain, b.DKIMDomain), strings.Compare(a.DKIMSelector, b.DKIMSelector),
		strings.Compare(a.DKIMResult, b.DKIMResult), cmpBool(a.DKIMAligned, b.DKIMAligned),
		strings.Compare(a.SPFDomain, b.SPFDomain), strings.Compare(a.SPFResult, b.SPFResult),
		cmpBool(a.SPFAligned, b.SPFAligned))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// flush adds the sums to dmarc_daily, in key order, and empties them.
func (a *dmarcAgg) flush() error {
	if len(a.sums) == 0 {
		return nil
	}
	keys := make([]DMARCRow, 0, len(a.sums))
	for k := range a.sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareDMARCRows)
	up := a.s.bulk(18, `INSERT INTO dmarc_daily (domain, day, reporter, `+dmarcDailyCols+`, messages)`,
		` ON CONFLICT (domain, day, reporter, `+dmarcDailyCols+`)
		DO UPDATE SET messages = dmarc_daily.messages + excluded.messages`)
	day := a.s.d.timeArg(a.day)
	for _, k := range keys {
		up.add(a.domain, day, a.reporter, k.SourceIP, k.HeaderFrom, k.EnvelopeFrom, k.Disposition, k.DKIM, k.SPF,
			k.Reason, k.DKIMDomain, k.DKIMSelector, k.DKIMResult, k.DKIMAligned, k.SPFDomain, k.SPFResult,
			k.SPFAligned, a.sums[k])
	}
	// The same messages in one row of dmarc_totals: those that passed
	// DKIM, SPF and DMARC as the reporters evaluated them (dmarcstats'
	// rule: DMARC passes with either).
	var messages, dkimPass, spfPass, dmarcPass int64
	for _, k := range keys {
		n := a.sums[k]
		messages += n
		if k.DKIM == "pass" {
			dkimPass += n
		}
		if k.SPF == "pass" {
			spfPass += n
		}
		if k.DKIM == "pass" || k.SPF == "pass" {
			dmarcPass += n
		}
	}
	clear(a.sums)
	if err := up.exec(a.ctx, a.tx); err != nil {
		return fmt.Errorf("add %d rows to the daily rollups: %w", len(keys), err)
	}
	if _, err := a.tx.ExecContext(a.ctx, `INSERT INTO dmarc_totals (day, domain, messages, dkim_pass, spf_pass, dmarc_pass)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (day, domain) DO UPDATE SET
		messages = dmarc_totals.messages + excluded.messages, dkim_pass = dmarc_totals.dkim_pass + excluded.dkim_pass,
		spf_pass = dmarc_totals.spf_pass + excluded.spf_pass, dmarc_pass = dmarc_totals.dmarc_pass + excluded.dmarc_pass`,
		day, a.domain, messages, dkimPass, spfPass, dmarcPass); err != nil {
		return fmt.Errorf("add to the daily totals: %w", err)
	}
	return nil
}

// insertFailure stores one failure report inside tx, or finds the one
// stored with its digest.
func (s *sqlStore) insertFailure(ctx context.Context, tx *sql.Tx, row *failureRow) (InsertResult, error) {
	f := row.r
	// Sealed in the transaction (a retry seals again from the plain text).
	raw, parsed, sealed, err := sealFailure(ctx, tx, row)
	if err != nil {
		return InsertResult{}, err
	}
	var arrival any
	if !f.ArrivalDate.IsZero() {
		arrival = s.d.timeArg(normTime(f.ArrivalDate))
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO dmarc_failures (received_at, source, source_detail, raw, raw_size,
		digest, dkim, sealed, status, warnings, domain, reporter, feedback_type, auth_failure, delivery_result,
		source_ip, arrival_at, reporting_mta, user_agent, dkim_domain, dkim_selector, spf_dns, identity_alignment,
		incidents, parsed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
		$23, $24, $25) ON CONFLICT DO NOTHING RETURNING id`,
		s.d.timeArg(row.receivedAt), f.Source, f.SourceDetail, raw, int64(len(f.Raw)), row.digest, f.DKIM,
		sealed, f.Status, encodeList(f.Warnings), f.Domain, f.Reporter, f.FeedbackType, f.AuthFailure,
		f.DeliveryResult, f.SourceIP, arrival, f.ReportingMTA, f.UserAgent, f.DKIMDomain, f.DKIMSelector, f.SPFDNS,
		encodeList(f.IdentityAlignment), f.Incidents, parsed).Scan(&id)
	if err == nil {
		return InsertResult{ID: id}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return InsertResult{}, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM dmarc_failures WHERE digest = $1`, row.digest).Scan(&id); err != nil {
		return InsertResult{}, fmt.Errorf("find the stored copy: %w", err)
	}
	return InsertResult{ID: id, Duplicate: true}, nil
}
