package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention: what the store deletes once it is old enough, in short
// transactions so that intake, which writes beside it, never waits long.
//
// Every table retention prunes is a row of pruneTables, which says which
// setting applies, the column the age is read from, and how rows go:
// deleted, or cleared (the raw bytes of a report, the row staying). A new
// kind of report (DMARC) adds its tables there and nothing else.

// Retention says how long the store keeps reports, as periods counted back
// from the moment of pruning; zero keeps forever.
type Retention struct {
	// Raw is how long the raw bytes of a report are kept, from the end of
	// the report's period; then they are cleared and the parsed report
	// stays.
	Raw time.Duration
	// Reports is how long parsed reports are kept (with their policies,
	// failure details and intake log lines), from the end of their period,
	// and the results of moat check, from when they were taken.
	Reports time.Duration
	// Rollups is how long the daily rollups are kept, in whole UTC days:
	// a day goes once all of it is older than Rollups.
	Rollups time.Duration
}

// Retention settings, as PruneCount.Setting names them (the configuration
// keys).
const (
	SettingRaw     = "retention.raw"
	SettingReports = "retention.reports"
	SettingRollups = "retention.rollups"
	// SettingExpired names the rows that expire by themselves (sign-in
	// sessions, invitations never accepted): they go once expired (plus
	// their table's grace), whatever the periods.
	SettingExpired = "expired"
)

// Actions of PruneCount.
const (
	ActionDelete   = "delete"    // rows deleted
	ActionClearRaw = "clear raw" // raw bytes cleared, rows kept
)

// PruneOptions are the optional settings of Prune.
type PruneOptions struct {
	// Now is the moment the periods are counted back from. Zero: now.
	Now time.Time
	// DryRun counts what would go and changes nothing.
	DryRun bool
	// Batch is the number of rows per transaction. Zero: adaptive, from
	// 100 rows, halved after a transaction that took longer than
	// BatchTime and doubled (up to 10,000) after one that took less than
	// a quarter of it, so that a slow machine or a heavy table (rollups,
	// whose derived sums are reduced with them) holds the write lock for
	// about BatchTime, not for as long as a fixed number of rows happens to take.
	Batch int
	// BatchTime is the time a transaction aims at when Batch is zero.
	// Zero: 100 ms.
	BatchTime time.Duration
	// Pause is the time between two transactions, for other writers to
	// get in. Zero: on SQLite as long as the previous transaction took
	// (a writer of another process, such as moat serve beside the CLI,
	// retries the write lock only now and then), none on PostgreSQL (whose
	// writers wait for rows, not for the database); negative: none.
	Pause time.Duration
}

// PruneCount is what a prune did, or would do, to one table.
type PruneCount struct {
	Table   string    `json:"table"`
	Setting string    `json:"setting"` // SettingRaw, ...
	Action  string    `json:"action"`  // ActionDelete or ActionClearRaw
	Before  time.Time `json:"before"`  // rows older than this go
	Rows    int64     `json:"rows"`
	// Batches is the number of transactions it took (0 for a dry run).
	Batches int `json:"batches"`
	// Took is how long it took (0 for a dry run).
	Took time.Duration `json:"took_ns"`
}

// PruneResult is what a prune did.
type PruneResult struct {
	// Counts has a line per table and action of a setting that is not
	// zero, in the order they were pruned.
	Counts []PruneCount `json:"counts"`
	// Reclaimed is the number of bytes the SQLite database file shrank
	// by (incremental vacuum); 0 on PostgreSQL, whose autovacuum makes
	// the space reusable instead.
	Reclaimed int64 `json:"reclaimed_bytes"`
	// AutoVacuum is SQLite's auto_vacuum mode ("incremental" once
	// EnableIncrementalVacuum ran, or for a database created by this
	// version); "" on PostgreSQL.
	AutoVacuum string `json:"auto_vacuum,omitempty"`
}

// pruneTable is a table retention prunes.
type pruneTable struct {
	table   string
	setting string
	// key lists the columns that identify a row; age is the time column
	// compared with the cut-off (its rows older go), and an index must
	// lead with it (with pending's condition as a partial index's).
	key, age string
	// pending is a condition of the rows still to prune, "" for all; it
	// must hold no more once a row is pruned.
	pending string
	// set, when not empty, clears instead of deleting: the SET clause,
	// with $2 an empty byte string and $3 the time of pruning.
	set string
	// rollups: the rows are those of tlsrpt_daily, and what is deleted is
	// taken off the derived rollups (rollups.go) in the same transaction.
	rollups bool
	// dependents, when not empty, is a column of the table referring to
	// key (without ON DELETE): the rows referring to a row that goes go
	// with it, in the same statement.
	dependents string
	// grace, of a table of SettingExpired, is how long rows stay after
	// the moment in age.
	grace time.Duration
}

// pruneTables are the tables retention prunes, in order: deletions before
// clearing (nothing is cleared that goes anyway), the intake log before
// the reports it refers to (so that their deletion updates none of it).
func pruneTables() []pruneTable {
	return []pruneTable{
		{table: "intake_log", setting: SettingReports, key: "id", age: "at"},
		{table: "tlsrpt_reports", setting: SettingReports, key: "id", age: "end_time"},
		{table: "tlsrpt_reports", setting: SettingRaw, key: "id", age: "end_time", pending: "raw_pruned_at IS NULL",
			set: "raw = $2, raw_gzip = FALSE, raw_pruned_at = $3"},
		{table: "tlsrpt_daily", setting: SettingRollups, key: dailyKey, age: "day", rollups: true},
		// A DMARC report kept aside as a conflict has the period of the
		// report it conflicts with (or, undated, a later arrival): it goes
		// with it. A report's records are read from its raw bytes, so
		// retention.raw leaves DMARC reports whole: they go at
		// retention.reports.
		{table: "dmarc_reports", setting: SettingReports, key: "id", age: "end_time", dependents: "conflict_of"},
		{table: "dmarc_failures", setting: SettingReports, key: "id", age: "received_at"},
		{table: "dmarc_daily", setting: SettingRollups, key: dmarcDailyKey, age: "day"},
		{table: "dmarc_totals", setting: SettingRollups, key: "day, domain", age: "day"},
		// The newest report of a domain, once it is as old as the reports
		// that go; the results of moat check, kept as long as reports.
		{table: "tlsrpt_last", setting: SettingReports, key: "domain", age: "received_at"},
		{table: "checks", setting: SettingReports, key: "id", age: "checked_at"},
		// Spooled mail whose reports could not be stored, kept for a look
		// as long as raw report bytes; the spool's other rows go as soon
		// as their reports are stored.
		{table: "intake_spool", setting: SettingRaw, key: "id", age: "received_at", pending: "failed"},
		// Sign-in sessions at once when expired (they let no one in
		// then); an invitation never accepted 30 days after it expired,
		// so that the dashboard shows it as expired for a while.
		{table: "sessions", setting: SettingExpired, key: "id", age: "expires_at"},
		{table: "invitations", setting: SettingExpired, key: "id", age: "expires_at", pending: "accepted_at IS NULL", grace: 30 * 24 * time.Hour},
	}
}

// dmarcDailyKey is the primary key of dmarc_daily.
const dmarcDailyKey = "domain, day, reporter, source_ip, header_from, envelope_from, disposition, dkim, spf, reason, " +
	"dkim_domain, dkim_selector, dkim_result, dkim_aligned, spf_domain, spf_result, spf_aligned"

// dailyKey is the primary key of tlsrpt_daily.
const dailyKey = "domain, day, policy_type, result_type, organization, sending_ip, receiving_mx"

// ErrRetention means the retention periods are inconsistent; the message says
// which and why.
var ErrRetention = errors.New("store: retention")

// Validate checks that the periods nest: rollups outlive the reports they
// sum (the dashboard would otherwise list reports of days it shows no
// sessions for), and reports their raw bytes (deleting a report deletes
// its raw bytes, so a longer raw period would mean nothing). Zero is
// forever; a period that is not zero is at least a day.
func (r Retention) Validate() error {
	forever := func(d time.Duration) time.Duration {
		if d == 0 {
			return 1<<63 - 1
		}
		return d
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{SettingRaw, r.Raw}, {SettingReports, r.Reports}, {SettingRollups, r.Rollups}} {
		if p.d < 0 || p.d > 0 && p.d < 24*time.Hour {
			return fmt.Errorf("%w: %s is %v: want 0 (keep forever) or at least a day", ErrRetention, p.name, p.d)
		}
	}
	if forever(r.Raw) > forever(r.Reports) {
		return fmt.Errorf("%w: %s (%s) is longer than %s (%s): deleting a report deletes its raw bytes; want raw <= reports",
			ErrRetention, SettingRaw, periodString(r.Raw), SettingReports, periodString(r.Reports))
	}
	if forever(r.Reports) > forever(r.Rollups) {
		return fmt.Errorf("%w: %s (%s) is longer than %s (%s): the dashboard would list reports of days whose sessions are gone; want reports <= rollups",
			ErrRetention, SettingReports, periodString(r.Reports), SettingRollups, periodString(r.Rollups))
	}
	return nil
}

func periodString(d time.Duration) string {
	if d == 0 {
		return "0, forever"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// applies says whether rows of a setting are pruned: its period is not
// zero (forever), or it is SettingExpired.
func (r Retention) applies(setting string) bool {
	return setting == SettingExpired || r.period(setting) != 0
}

// period returns the period of a setting (0 for SettingExpired: the
// moment of pruning itself).
func (r Retention) period(setting string) time.Duration {
	switch setting {
	case SettingExpired:
		return 0
	case SettingRaw:
		return r.Raw
	case SettingReports:
		return r.Reports
	case SettingRollups:
		return r.Rollups
	}
	panic("store: no retention setting " + setting)
}

// cutoff is the moment before which rows of a setting go: rollups by whole
// UTC days.
func (r Retention) cutoff(setting string, at time.Time) time.Time {
	c := normTime(at.Add(-r.period(setting)))
	if setting == SettingRollups {
		c = dayOf(c)
	}
	return c
}

// cutoffOf is the cut-off of table t: its setting's, less its grace.
func (r Retention) cutoffOf(t pruneTable, at time.Time) time.Time {
	return r.cutoff(t.setting, at).Add(-t.grace)
}

// Prune implements Store.
func (s *sqlStore) Prune(ctx context.Context, r Retention, opts PruneOptions) (PruneResult, error) {
	res := PruneResult{Counts: []PruneCount{}}
	if err := r.Validate(); err != nil {
		return res, err
	}
	at := opts.Now
	if at.IsZero() {
		at = time.Now()
	}
	for _, t := range pruneTables() {
		if !r.applies(t.setting) {
			continue
		}
		c := PruneCount{Table: t.table, Setting: t.setting, Action: ActionDelete, Before: r.cutoffOf(t, at)}
		if t.set != "" {
			c.Action = ActionClearRaw
		}
		var err error
		if opts.DryRun {
			c.Rows, err = s.pruneCount(ctx, r, t, at)
		} else {
			start := time.Now()
			// A size per table: a row of one costs what it costs.
			sz := newBatchSizer(opts.Batch, opts.BatchTime)
			c.Rows, c.Batches, err = s.pruneTable(ctx, t, c.Before, at, sz, opts.Pause)
			c.Took = time.Since(start)
		}
		res.Counts = append(res.Counts, c)
		if err != nil {
			return res, fmt.Errorf("store: prune %s (%s): %w", t.table, t.setting, err)
		}
	}
	if s.path == "" {
		return res, nil
	}
	mode, err := s.autoVacuum(ctx)
	if err != nil {
		return res, err
	}
	res.AutoVacuum = mode
	if !opts.DryRun && mode == "incremental" {
		res.Reclaimed, err = s.incrementalVacuum(ctx)
	}
	return res, err
}

// pruneCount counts the rows of t that a prune at at would take.
func (s *sqlStore) pruneCount(ctx context.Context, r Retention, t pruneTable, at time.Time) (int64, error) {
	conds := []string{t.age + " < $1"}
	args := []any{s.d.timeArg(r.cutoffOf(t, at))}
	if t.pending != "" {
		conds = append(conds, t.pending)
	}
	if t.set != "" {
		// Not what a deletion before it takes.
		for _, o := range pruneTables() {
			if o.table == t.table && o.set == "" && r.applies(o.setting) {
				conds = append(conds, fmt.Sprintf("%s >= $%d", o.age, len(args)+1))
				args = append(args, s.d.timeArg(r.cutoffOf(o, at)))
			}
		}
	}
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+t.table+where(conds...), args...).Scan(&n)
	return n, err
}

// batchSizer chooses the number of rows of the next prune transaction.
type batchSizer struct {
	fixed  bool
	rows   int
	target time.Duration
}

// Bounds of an adaptive batch.
const (
	minPruneBatch   = 10
	startPruneBatch = 100
	maxPruneBatch   = 10000
)

func newBatchSizer(rows int, target time.Duration) *batchSizer {
	if rows > 0 {
		return &batchSizer{fixed: true, rows: rows}
	}
	if target <= 0 {
		target = 100 * time.Millisecond
	}
	return &batchSizer{rows: startPruneBatch, target: target}
}

// took adapts the size to a transaction of the current size that took d.
func (b *batchSizer) took(d time.Duration) {
	switch {
	case b.fixed:
	case d > b.target:
		b.rows = max(b.rows/2, minPruneBatch)
	case d < b.target/4:
		b.rows = min(b.rows*2, maxPruneBatch)
	}
}

// pruneTable prunes the rows of t older than before, sz.rows rows per
// transaction, and returns how many went in how many transactions.
func (s *sqlStore) pruneTable(ctx context.Context, t pruneTable, before, at time.Time, sz *batchSizer, pause time.Duration) (total int64, batches int, err error) {
	// The rows of a batch: the oldest, by the index on the age. SQLite
	// looks them up by key; PostgreSQL would join a subquery of keys
	// with a scan of the whole table (a hash semi-join), so it takes
	// their physical places (ctid) instead, a TID scan. A row that moves
	// meanwhile (an update) is left for the next batch or run.
	pick := t.key
	if s.d.name == "postgres" {
		pick = "ctid"
	}
	sel := `SELECT ` + pick + ` FROM ` + t.table + ` WHERE ` + t.age + ` < $1`
	if t.pending != "" {
		sel += ` AND ` + t.pending
	}
	order := t.age
	if t.dependents != "" {
		// The same rows by key as by place: their dependents go with them.
		order += `, ` + t.key
	}
	sel += ` ORDER BY ` + order + ` LIMIT `
	statement := func(limit int) string {
		sel := sel + strconv.Itoa(limit)
		keys := `SELECT ` + t.key + strings.TrimPrefix(sel, `SELECT `+pick)
		rowsOf := `(` + t.key + `) IN (` + keys + `)`
		if s.d.name == "postgres" {
			rowsOf = `ctid = ANY (ARRAY(` + sel + `))`
		}
		if t.dependents != "" {
			rowsOf = `(` + rowsOf + ` OR ` + t.dependents + ` IN (` + keys + `))`
		}
		switch {
		case t.set != "":
			return `UPDATE ` + t.table + ` SET ` + t.set + ` WHERE ` + rowsOf
		case t.rollups:
			return `DELETE FROM ` + t.table + ` WHERE ` + rowsOf + ` RETURNING ` + t.key + `, sessions`
		}
		return `DELETE FROM ` + t.table + ` WHERE ` + rowsOf
	}
	args := []any{s.d.timeArg(before)}
	if t.set != "" {
		args = append(args, []byte{}, s.d.timeArg(normTime(at)))
	}
	for {
		start := time.Now()
		batch := sz.rows
		stmt := statement(batch)
		var (
			n     int64
			begun time.Time // the connection is ours: the wait for it is not the batch's
		)
		err := s.writeTx(ctx, "prune "+t.table, func(tx *sql.Tx) error {
			begun = time.Now()
			if t.rollups {
				var err error
				n, err = s.pruneRollups(ctx, tx, stmt, args)
				return err
			}
			res, err := tx.ExecContext(ctx, stmt, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, batches, err
		}
		total += n
		batches++
		if n < int64(batch) {
			return total, batches, nil
		}
		sz.took(time.Since(begun))
		wait := pause
		if wait == 0 && s.path != "" {
			wait = time.Since(start)
		}
		if wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				tm.Stop()
				return total, batches, ctx.Err()
			case <-tm.C:
			}
		}
	}
}

// pruneRollups deletes a batch of tlsrpt_daily rows with stmt (which
// returns them) in tx, and takes their sessions off the derived tables, from
// the organization hosting each domain now, as moveRollups would: the
// derived tables stay the sums of tlsrpt_daily. The shared rollup lock
// orders it with the moves, as InsertTLSRPT is.
func (s *sqlStore) pruneRollups(ctx context.Context, tx *sql.Tx, stmt string, args []any) (int64, error) {
	if err := s.lockRollups(ctx, tx, true); err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, stmt, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	type gone struct {
		k rollupKey
		n int64
	}
	var (
		deleted []gone
		domains []string
		seen    = map[string]bool{}
	)
	for rows.Next() {
		var (
			g   gone
			day time.Time
		)
		if err := rows.Scan(&g.k.domain, timeCol{&day}, &g.k.policyType, &g.k.resultType, &g.k.organization,
			&g.k.sendingIP, &g.k.receivingMX, &g.n); err != nil {
			return 0, err
		}
		g.k.day = day.Unix()
		deleted = append(deleted, g)
		if !seen[g.k.domain] {
			seen[g.k.domain] = true
			domains = append(domains, g.k.domain)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	orgs, err := s.hostingOrgs(ctx, tx, domains)
	if err != nil {
		return 0, err
	}
	d := newDerived()
	for _, g := range deleted {
		d.add(g.k, orgs[g.k.domain], -g.n)
	}
	if err := d.write(ctx, s, tx, true); err != nil {
		return 0, err
	}
	return int64(len(deleted)), nil
}

// autoVacuum returns SQLite's auto_vacuum mode: "none", "full" or
// "incremental".
func (s *sqlStore) autoVacuum(ctx context.Context) (string, error) {
	var mode int
	if err := s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return "", fmt.Errorf("store: read auto_vacuum: %w", err)
	}
	switch mode {
	case 1:
		return "full", nil
	case 2:
		return "incremental", nil
	}
	return "none", nil
}

// incrementalVacuum gives the free pages of the database back to the file
// system, vacuumPages at a time (each a short write), and returns how many
// bytes the database shrank by. The file itself shrinks at the next WAL
// checkpoint.
func (s *sqlStore) incrementalVacuum(ctx context.Context) (int64, error) {
	const vacuumPages = 2048
	size := func() (int64, error) {
		var pages, pageSize int64
		if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return 0, err
		}
		if err := s.w.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
			return 0, err
		}
		return pages * pageSize, nil
	}
	before, err := size()
	if err != nil {
		return 0, fmt.Errorf("store: incremental vacuum: %w", err)
	}
	for {
		var free int64
		if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			return 0, fmt.Errorf("store: incremental vacuum: %w", err)
		}
		if free == 0 {
			break
		}
		// The pragma returns a row per page freed: read them all, or the
		// statement stops after the first page.
		rows, err := s.w.QueryContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, vacuumPages))
		if err != nil {
			return 0, fmt.Errorf("store: incremental vacuum: %w", err)
		}
		for rows.Next() {
		}
		err = errors.Join(rows.Err(), rows.Close())
		if err != nil {
			return 0, fmt.Errorf("store: incremental vacuum: %w", err)
		}
	}
	after, err := size()
	if err != nil {
		return 0, fmt.Errorf("store: incremental vacuum: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return 0, fmt.Errorf("store: checkpoint after incremental vacuum: %w", err)
	}
	return before - after, nil
}

// EnableIncrementalVacuum implements Store: on an SQLite database created
// before auto_vacuum=INCREMENTAL was set at creation, it sets it and
// rewrites the file (VACUUM), which takes the write lock for the time of
// a copy of the whole database and needs as much free disk space. It
// reports whether it converted. A no-op on PostgreSQL.
func (s *sqlStore) EnableIncrementalVacuum(ctx context.Context) (bool, error) {
	if s.path == "" {
		return false, nil
	}
	mode, err := s.autoVacuum(ctx)
	if err != nil || mode == "incremental" {
		return false, err
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return false, fmt.Errorf("store: set auto_vacuum: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return false, fmt.Errorf("store: vacuum %s to enable incremental vacuum: %w", s.path, err)
	}
	if mode, err = s.autoVacuum(ctx); err != nil {
		return false, err
	} else if mode != "incremental" {
		return false, fmt.Errorf("store: %s: auto_vacuum is %s after VACUUM, want incremental", s.path, mode)
	}
	return true, nil
}
