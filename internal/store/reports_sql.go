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

// TLS-RPT reports (RFC 8460) on both dialects. The schema is in
// migrations/*/00002_tlsrpt.sql.
//
// Writing. InsertTLSRPT prepares every row (validation, digest, gzip) before
// it opens the transaction, then writes the whole batch in one transaction:
// one commit, so one fsync of the SQLite WAL for a batch of any size. Rows
// go in multi-row INSERTs (a few statements per batch, not per report: the
// per-statement cost dominates on both databases). The reports are inserted
// with ON CONFLICT DO NOTHING RETURNING id, digest; a report not returned was
// held back by a unique constraint (digest, or organization and report id)
// and its stored copy is looked up. Rollup increments of the reports
// actually inserted are summed per key and applied at the end as one upsert
// (ON CONFLICT DO UPDATE SET sessions = sessions + excluded.sessions).
//
// Concurrency. On SQLite a write transaction holds the database's single
// write lock (BEGIN IMMEDIATE), so batches from goroutines and processes run
// one after the other. On PostgreSQL batches run side by side (holding the
// rollup lock shared, rollups.go): an insert that
// conflicts with a row another transaction has not committed waits for it,
// then does nothing (or inserts, if that transaction rolled back), and the
// lookup that follows, a new statement under READ COMMITTED, sees the
// committed row. To keep concurrent batches from deadlocking, every batch
// takes its locks in one global order: reports sorted by their identity
// (organization and report id, else digest), then rollup rows sorted by
// their key, after all reports, then the rows of the derived rollups sorted
// by table and key, then the tlsrpt_last rows of the policy domains, sorted
// by domain.
//
// Reading. Undated reports (ReportInvalid ones, and any the decoder could
// not find a period in) are filed under the moment they were received: the
// period filters of ReportFilter and the newest-first order use ReceivedAt
// for them, and they come back with zero StartTime and EndTime.

// defaultReportLimit is the page size of TLSRPTReports when Limit is 0.
const defaultReportLimit = 100

// Bits of the dated column: which ends of its period a report stated.
const (
	datedStart = 1
	datedEnd   = 2
)

var _ ReportStore = (*sqlStore)(nil)

// reportRow is one report of a batch, ready to write.
type reportRow struct {
	i int // position in the batch
	r *TLSRPTReport

	receivedAt, start, end time.Time
	dated                  int
	raw                    []byte // as stored
	rawGzip                bool
	digest                 string
	warnings, domains      string
	joinDomains            []string // for tlsrpt_report_domains: unique, non-empty
	normalized             []byte   // gzip, or empty
	policies               []policyRow
}

type policyRow struct {
	strings, mxHosts string
}

// rollupKey is the primary key of tlsrpt_daily.
type rollupKey struct {
	domain       string
	day          int64 // Unix seconds of UTC midnight
	policyType   string
	resultType   string
	organization string
	sendingIP    string
	receivingMX  string
}

func compareRollupKeys(a, b rollupKey) int {
	return cmp.Or(
		strings.Compare(a.domain, b.domain),
		cmp.Compare(a.day, b.day),
		strings.Compare(a.policyType, b.policyType),
		strings.Compare(a.resultType, b.resultType),
		strings.Compare(a.organization, b.organization),
		strings.Compare(a.sendingIP, b.sendingIP),
		strings.Compare(a.receivingMX, b.receivingMX),
	)
}

// dayOf returns the UTC day t falls in, as its midnight.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// identified reports whether a report has the identity RFC 8460 §4.4 gives
// it, organization and report id, and is deduplicated by it.
func identified(r *TLSRPTReport) bool {
	return r.OrganizationName != "" && r.ReportID != ""
}

// prepareReport validates r and computes what is stored for it.
func prepareReport(c *compressor, i int, r *TLSRPTReport, at time.Time) (*reportRow, error) {
	fail := func(format string, args ...any) error {
		what := fmt.Sprintf("report %d", i)
		if identified(r) {
			what += fmt.Sprintf(" (organization %q, report id %q)", r.OrganizationName, r.ReportID)
		}
		return fmt.Errorf("store: insert tlsrpt %s: %s", what, fmt.Sprintf(format, args...))
	}
	if r == nil {
		return nil, fmt.Errorf("store: insert tlsrpt report %d: nil report", i)
	}
	switch r.Status {
	case ReportOK, ReportWarnings, ReportInvalid:
	default:
		return nil, fail("status %q: want %q, %q or %q", r.Status, ReportOK, ReportWarnings, ReportInvalid)
	}
	if r.Successful < 0 || r.Failed < 0 {
		return nil, fail("negative session count (successful %d, failed %d)", r.Successful, r.Failed)
	}
	row := &reportRow{i: i, r: r, receivedAt: at}
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
	}
	if !r.EndTime.IsZero() {
		row.dated |= datedEnd
	}
	switch row.dated {
	case 0:
		row.start, row.end = row.receivedAt, row.receivedAt
	case datedStart:
		row.end = row.start
	case datedEnd:
		row.start = row.end
	}

	seen := make(map[string]bool, len(r.Domains))
	for _, d := range r.Domains {
		if d != strings.ToLower(d) || strings.HasSuffix(d, ".") {
			return nil, fail("policy domain %q: want lower case without a trailing dot", d)
		}
		if d != "" && !seen[d] {
			seen[d] = true
			row.joinDomains = append(row.joinDomains, d)
		}
	}
	row.domains = encodeList(r.Domains)
	row.warnings = encodeList(r.Warnings)

	for pi, p := range r.Policies {
		if p.Successful < 0 || p.Failed < 0 {
			return nil, fail("policy %d: negative session count (successful %d, failed %d)", pi, p.Successful, p.Failed)
		}
		for fi, f := range p.Failures {
			if f.Sessions < 0 {
				return nil, fail("policy %d failure %d: negative session count %d", pi, fi, f.Sessions)
			}
		}
		row.policies = append(row.policies, policyRow{strings: encodeList(p.Strings), mxHosts: encodeList(p.MXHosts)})
	}
	for ri, ru := range r.Rollups {
		if ru.Sessions < 0 {
			return nil, fail("rollup %d: negative session count %d", ri, ru.Sessions)
		}
		if ru.Day.IsZero() {
			return nil, fail("rollup %d: no day", ri)
		}
	}

	var err error
	if row.raw, row.rawGzip, err = c.raw(r.Raw); err != nil {
		return nil, fmt.Errorf("store: insert tlsrpt report %d: compress raw report: %w", i, err)
	}
	if row.raw == nil {
		row.raw = []byte{} // the column is NOT NULL
	}
	row.normalized = []byte{}
	if len(r.Normalized) > 0 {
		if row.normalized, err = c.gzip(r.Normalized); err != nil {
			return nil, fmt.Errorf("store: insert tlsrpt report %d: compress normalized report: %w", i, err)
		}
	}
	return row, nil
}

// lockOrder sorts a batch into the order its rows are written (see the
// comment at the top): identified reports by organization and report id,
// then the others by digest; ties keep the batch order, so that of two
// copies of one report in a batch the first is stored.
func lockOrder(a, b *reportRow) int {
	ai, bi := identified(a.r), identified(b.r)
	switch {
	case ai && !bi:
		return -1
	case !ai && bi:
		return 1
	case ai:
		return cmp.Or(
			strings.Compare(a.r.OrganizationName, b.r.OrganizationName),
			strings.Compare(a.r.ReportID, b.r.ReportID),
			cmp.Compare(a.i, b.i))
	default:
		return cmp.Or(strings.Compare(a.digest, b.digest), cmp.Compare(a.i, b.i))
	}
}

// maxBulkParams bounds the parameters of one multi-row statement, well
// under both databases' limits (SQLite 32766, PostgreSQL 65535).
const maxBulkParams = 4000

// bulk collects the rows of one multi-row INSERT: head is the statement up
// to VALUES, tail what follows the rows (ON CONFLICT, RETURNING).
type bulk struct {
	head, tail string
	ncols      int
	args       []any
	// anon makes the parameters anonymous (?) instead of numbered ($N):
	// SQLite looks numbered ones up by name, in time linear in their count,
	// which makes statements of thousands of parameters slow to prepare
	// and bind.
	anon bool
	// types, when set, are the column types of numbered parameters
	// ($N::type), for rows PostgreSQL cannot infer them in (VALUES in a
	// condition).
	types []string
}

// bulk starts a multi-row INSERT of ncols columns.
func (s *sqlStore) bulk(ncols int, head, tail string) *bulk {
	return &bulk{head: head, tail: tail, ncols: ncols, anon: s.d.name == "sqlite"}
}

func (b *bulk) add(vals ...any) {
	if len(vals) != b.ncols {
		panic(fmt.Sprintf("store: bulk insert %q: %d values for %d columns", b.head, len(vals), b.ncols))
	}
	b.args = append(b.args, vals...)
}

// sqliteBulkParams bounds the parameters of one multi-row statement on
// SQLite, where the row counts of the statements are powers of two
// (sqliteRows): modernc.org/sqlite parses the text of every statement it
// is not handed prepared, and parsing a statement of thousands of
// parameters for every report (the failure details and rollups of a
// report of 200 of them) took a third of storing it. Statements of a few
// row counts and a few hundred parameters each fit the writer's statement
// cache (stmtCacheMaxText) and are parsed once.
const sqliteBulkParams = 256

// sqliteRows is the number of rows of the next statement of a bulk
// INSERT of ncols columns with left rows to go on SQLite: the largest
// power of two that is at most left and keeps the statement within
// sqliteBulkParams.
func sqliteRows(ncols, left int) int {
	n := 1
	for n*2 <= left && n*2*ncols <= sqliteBulkParams {
		n *= 2
	}
	return n
}

// each calls fn with every statement of b, in row order, each with at most
// maxBulkParams parameters (on SQLite, sqliteRows rows).
func (b *bulk) each(fn func(query string, args []any) error) error {
	maxPer := max(1, maxBulkParams/b.ncols) * b.ncols
	for start := 0; start < len(b.args); {
		per := maxPer
		if b.anon {
			per = sqliteRows(b.ncols, (len(b.args)-start)/b.ncols) * b.ncols
		}
		args := b.args[start:min(start+per, len(b.args))]
		start += len(args)
		var q strings.Builder
		q.WriteString(b.head)
		q.WriteString(" VALUES ")
		for i := range args {
			switch {
			case i == 0:
				q.WriteString("(")
			case i%b.ncols == 0:
				q.WriteString("), (")
			default:
				q.WriteString(", ")
			}
			switch {
			case b.anon:
				q.WriteString("?")
			case b.types != nil:
				fmt.Fprintf(&q, "$%d::%s", i+1, b.types[i%b.ncols])
			default:
				fmt.Fprintf(&q, "$%d", i+1)
			}
		}
		q.WriteString(")")
		q.WriteString(b.tail)
		if err := fn(q.String(), args); err != nil {
			return err
		}
	}
	return nil
}

// exec runs the statements of b in tx.
func (b *bulk) exec(ctx context.Context, tx *sql.Tx) error {
	return b.each(func(q string, args []any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

const (
	// The literal conditions repeat the partial index's, so that both
	// databases use it.
	reportByIdentitySQL = `SELECT id FROM tlsrpt_reports
		WHERE organization = $1 AND report_id = $2 AND organization <> '' AND report_id <> ''`
	reportByDigestSQL = `SELECT id FROM tlsrpt_reports WHERE digest = $1`
)

// InsertTLSRPT implements ReportStore. The reports are not modified. A zero
// ReceivedAt is stored as the time of the call; an empty Digest is computed
// (a given one must match Raw). Rollup days are taken as the UTC day their
// Day falls in; rollups of zero sessions are skipped. Invalid input (an
// unknown Status, a negative count, an upper-case domain, a wrong digest)
// fails the whole batch before anything is written, naming the report.
func (s *sqlStore) InsertTLSRPT(ctx context.Context, reports []*TLSRPTReport) ([]InsertResult, error) {
	if len(reports) == 0 {
		return []InsertResult{}, nil
	}
	c := compressor{zw: s.gz.get()}
	defer s.gz.put(c.zw)
	at := now()
	rows := make([]*reportRow, len(reports))
	for i, r := range reports {
		row, err := prepareReport(&c, i, r, at)
		if err != nil {
			return nil, err
		}
		rows[i] = row
	}
	order := slices.Clone(rows)
	slices.SortFunc(order, lockOrder)

	var results []InsertResult
	err := s.writeTx(ctx, fmt.Sprintf("insert %d tlsrpt reports", len(rows)), func(tx *sql.Tx) error {
		if err := s.lockRollups(ctx, tx, true); err != nil {
			return fmt.Errorf("store: insert %d tlsrpt reports: %w", len(rows), err)
		}
		var err error
		results, err = s.insertReports(ctx, tx, order)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// insertReports writes the rows of a batch, sorted in lock order, inside
// tx: the reports, then for those inserted their domains, policies, failure
// details and rollup increments (daily, then derived), then the intake log
// of the whole batch (intake_log.go). It returns the results in batch order.
func (s *sqlStore) insertReports(ctx context.Context, tx *sql.Tx, order []*reportRow) ([]InsertResult, error) {
	fail := func(what string, err error) error {
		return fmt.Errorf("store: insert %d tlsrpt reports: %s: %w", len(order), what, err)
	}
	reports := s.bulk(23, `INSERT INTO tlsrpt_reports (received_at, source, source_detail, raw, raw_gzip,
		raw_size, digest, media_type, dkim, status, error, warnings, organization, report_id, contact, dated,
		start_time, end_time, domains, hosted, successful, failed, normalized)`,
		` ON CONFLICT DO NOTHING RETURNING id, digest`)
	for _, row := range order {
		r := row.r
		reports.add(s.d.timeArg(row.receivedAt), r.Source, r.SourceDetail, row.raw, row.rawGzip, int64(len(r.Raw)),
			row.digest, r.MediaType, r.DKIM, r.Status, r.Error, row.warnings, r.OrganizationName,
			r.ReportID, r.ContactInfo, row.dated, s.d.timeArg(row.start), s.d.timeArg(row.end), row.domains,
			r.Hosted, r.Successful, r.Failed, row.normalized)
	}
	// Rows the database did not return were not inserted: a unique
	// constraint held them back. The digest tells the returned rows apart
	// (it is unique).
	inserted := make(map[string]int64, len(order))
	err := reports.each(func(q string, args []any) error {
		rs, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				id     int64
				digest string
			)
			if err := rs.Scan(&id, &digest); err != nil {
				return err
			}
			inserted[digest] = id
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fail("insert reports", err)
	}

	results := make([]InsertResult, len(order))
	var (
		domains = s.bulk(4, `INSERT INTO tlsrpt_report_domains (domain, end_time, report, start_time)`, "")
		pols    = s.bulk(8, `INSERT INTO tlsrpt_policies (report, idx, policy_type, domain, strings, mx_hosts,
			successful, failed)`, "")
		fails = s.bulk(11, `INSERT INTO tlsrpt_failures (report, policy, idx, result_type, sending_ip,
			receiving_mx, receiving_helo, receiving_ip, sessions, reason_code, additional_info)`, "")
		sums = make(map[rollupKey]int64)
	)
	for _, row := range order {
		id, ok := inserted[row.digest]
		if !ok {
			id, err := existingReport(ctx, tx, row)
			if err != nil {
				return nil, fmt.Errorf("store: insert tlsrpt report %d (%s): find the stored copy: %w", row.i, row.name(), err)
			}
			results[row.i] = InsertResult{ID: id, Duplicate: true}
			continue
		}
		// A second copy of the same bytes in the batch is a duplicate of
		// the first.
		delete(inserted, row.digest)
		results[row.i] = InsertResult{ID: id}
		r := row.r
		for _, d := range row.joinDomains {
			domains.add(d, s.d.timeArg(row.end), id, s.d.timeArg(row.start))
		}
		for pi, p := range r.Policies {
			pr := row.policies[pi]
			pols.add(id, pi, p.Type, p.Domain, pr.strings, pr.mxHosts, p.Successful, p.Failed)
			for fi, f := range p.Failures {
				fails.add(id, pi, fi, f.ResultType, f.SendingMTAIP, f.ReceivingMX, f.ReceivingHelo,
					f.ReceivingIP, f.Sessions, f.ReasonCode, f.AdditionalInfo)
			}
		}
		for _, ru := range r.Rollups {
			if ru.Sessions == 0 {
				continue
			}
			k := rollupKey{ru.Domain, dayOf(ru.Day).Unix(), ru.PolicyType, ru.ResultType,
				ru.Organization, ru.SendingIP, ru.ReceivingMX}
			sums[k] += ru.Sessions
		}
	}
	if err := domains.exec(ctx, tx); err != nil {
		return nil, fail("index policy domains", err)
	}
	if err := pols.exec(ctx, tx); err != nil {
		return nil, fail("insert policies", err)
	}
	if err := fails.exec(ctx, tx); err != nil {
		return nil, fail("insert failure details", err)
	}

	// Rollup rows in key order, the same in every batch (see the top).
	keys := make([]rollupKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareRollupKeys)
	daily := s.bulk(8, `INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type, organization,
		sending_ip, receiving_mx, sessions)`,
		` ON CONFLICT (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx)
		DO UPDATE SET sessions = tlsrpt_daily.sessions + excluded.sessions`)
	for _, k := range keys {
		daily.add(k.domain, s.d.timeArg(time.Unix(k.day, 0).UTC()), k.policyType, k.resultType,
			k.organization, k.sendingIP, k.receivingMX, sums[k])
	}
	if err := daily.exec(ctx, tx); err != nil {
		return nil, fail(fmt.Sprintf("add to %d daily rollups", len(keys)), err)
	}
	// The derived rollups (rollups.go), by the organization hosting each
	// domain now.
	var policyDomains []string
	for _, k := range keys {
		if len(policyDomains) == 0 || policyDomains[len(policyDomains)-1] != k.domain {
			policyDomains = append(policyDomains, k.domain)
		}
	}
	orgs, err := s.hostingOrgs(ctx, tx, policyDomains)
	if err != nil {
		return nil, fail("look up the organizations of the policy domains", err)
	}
	der := newDerived()
	for _, k := range keys {
		der.add(k, orgs[k.domain], sums[k])
	}
	if err := der.write(ctx, s, tx, false); err != nil {
		return nil, fail("add to the derived rollups", err)
	}
	if err := s.logIntake(ctx, tx, order, results); err != nil {
		return nil, fail("log", err)
	}
	return results, nil
}

// name identifies a report of a batch in errors.
func (row *reportRow) name() string {
	if identified(row.r) {
		return fmt.Sprintf("organization %q, report id %q", row.r.OrganizationName, row.r.ReportID)
	}
	return "digest " + row.digest
}

// existingReport returns the id of the stored report that kept row from
// being inserted: the one with its organization and report id, or else the
// one with its digest.
func existingReport(ctx context.Context, tx *sql.Tx, row *reportRow) (int64, error) {
	var id int64
	if identified(row.r) {
		err := tx.QueryRowContext(ctx, reportByIdentitySQL, row.r.OrganizationName, row.r.ReportID).Scan(&id)
		if err == nil {
			return id, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
	}
	err := tx.QueryRowContext(ctx, reportByDigestSQL, row.digest).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("the insert conflicted but no report with its identity or digest exists (deleted meanwhile?)")
	} else if err != nil {
		return 0, err
	}
	return id, nil
}
