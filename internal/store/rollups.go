package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The rollups: tlsrpt_daily, and the coarser tables derived from it that
// TLSRPTRollups reads when it can (migrations/*/00004_rollups.sql).
//
// tlsrpt_daily has a row per day, policy domain, policy type, result type,
// reporting organization, sending IP and receiving MX: about three per
// domain and day, so a summary of a thousand domains over a year sums a
// million rows. Each derived table leaves out some of those columns and
// sums the rest per organization hosting the domain (org_id, 0 for a
// domain nobody hosts) and per block of days: a block of span s is 2^s
// days starting at a day number (days since 1970-01-01 UTC) that is a
// multiple of 2^s. A period [since, until) is then a few long blocks in its
// middle and shorter ones at its ends (decompose), and a summary of many
// domains reads thousands of rows instead of a million, whatever the
// period's length.
//
// Exactness. A derived row is the sum of the tlsrpt_daily rows of the
// domains its organization hosts now: InsertTLSRPT adds to both in the
// same transaction, with the organization read in that transaction, and
// CreateDomain and DeleteDomain move a domain's sums between the
// organization and 0 (moveRollups) in theirs. Any other change of
// domains.org_id must move them too. So TLSRPTRollups answers from a
// derived table exactly what tlsrpt_daily would answer, scope included,
// also for a domain hosted after its reports arrived or deleted since.
// Moves can leave rows of 0 sessions; queries skip groups without sessions
// (HAVING), as tlsrpt_daily has no rows of 0.
//
// Concurrency. On SQLite writers take turns. On PostgreSQL InsertTLSRPT
// holds a shared transaction-level advisory lock (rollupLockID) from its
// first statement, so that the organizations it reads stay what they are
// until it commits, and a move holds the same lock exclusively, from its
// first statement too: a move waits for the batches being written, and
// batches wait for the move. Rows of derived tables are written in key
// order (table, then primary key), after tlsrpt_daily's.

// rollupTable is a derived rollup table.
type rollupTable struct {
	name string
	// cols are its key columns after org_id, span and day, in primary key
	// order: some of tlsrpt_daily's.
	cols []string
	// spans are the block lengths it keeps, as powers of two of days,
	// ascending, from 0.
	spans []int
}

// rollupTables returns the derived tables, smallest first (the order
// TLSRPTRollups tries them in): at 1,000 domains about 23, 60, 123 and
// 1,037 rows per day at span 0. The spans are those the migration fills.
func rollupTables() []rollupTable {
	return []rollupTable{
		{"tlsrpt_by_reporter", []string{"policy_type", "result_type", "organization"}, []int{0, 4, 8}},
		{"tlsrpt_by_mx", []string{"policy_type", "result_type", "receiving_mx"}, []int{0, 4, 8}},
		{"tlsrpt_by_source", []string{"policy_type", "result_type", "organization", "sending_ip"}, []int{0, 4, 8}},
		{"tlsrpt_by_domain", []string{"domain", "policy_type", "result_type"}, []int{0, 2, 4, 6, 8}},
	}
}

// rollupLockID is the PostgreSQL advisory lock that orders rollup writes
// and moves: "moatroll" in ASCII.
const rollupLockID = 0x6d6f6174726f6c6c

// secondsPerDay converts between Unix seconds of UTC midnights and day
// numbers.
const secondsPerDay = 24 * 60 * 60

// floorMod is a mod m, in [0, m) also for a negative a.
func floorMod(a, m int64) int64 { return ((a % m) + m) % m }

// dayTime is the UTC midnight of day number n.
func dayTime(n int64) time.Time { return time.Unix(n*secondsPerDay, 0).UTC() }

// firstDayFrom is the number of the first UTC midnight at or after t: the
// first day that a condition day >= t admits, and the first that day < t
// excludes.
func firstDayFrom(t time.Time) int64 {
	t = normTime(t)
	d := dayOf(t)
	if d.Before(t) {
		d = d.AddDate(0, 0, 1)
	}
	return d.Unix() / secondsPerDay
}

// Unbounded ends of a period of day numbers.
const (
	noStart int64 = math.MinInt64
	noEnd   int64 = math.MaxInt64
)

// blockRange is the blocks of one span whose first days are in [from, to)
// (noStart, noEnd: unbounded).
type blockRange struct {
	span     int
	from, to int64
}

// decompose covers the days [from, to) with blocks of the spans, longest
// first where they fit: the blocks of the longest span that lie inside,
// then, on each side, those of the next span, down to single days. It
// returns at most two ranges per span. spans must be ascending and start
// with 0.
func decompose(from, to int64, spans []int) []blockRange {
	if from >= to {
		return nil
	}
	s := spans[len(spans)-1]
	if len(spans) == 1 {
		return []blockRange{{s, from, to}}
	}
	size := int64(1) << s
	lo, hi := from, to // the first block boundary from from on, the last up to to
	if lo != noStart {
		lo += floorMod(size-floorMod(lo, size), size)
	}
	if hi != noEnd {
		hi -= floorMod(hi, size)
	}
	shorter := spans[:len(spans)-1]
	if lo >= hi {
		return decompose(from, to, shorter)
	}
	out := decompose(from, lo, shorter)
	out = append(out, blockRange{s, lo, hi})
	return append(out, decompose(hi, to, shorter)...)
}

// col returns the value of a key column of tlsrpt_daily.
func (k rollupKey) col(name string) string {
	switch name {
	case "domain":
		return k.domain
	case "policy_type":
		return k.policyType
	case "result_type":
		return k.resultType
	case "organization":
		return k.organization
	case "sending_ip":
		return k.sendingIP
	case "receiving_mx":
		return k.receivingMX
	}
	panic("store: no rollup column " + name)
}

// derivedKey is the primary key of a row of a derived table.
type derivedKey struct {
	table int // index in rollupTables
	org   int64
	span  int
	day   int64 // the block's first day number
	vals  [4]string
}

func compareDerivedKeys(a, b derivedKey) int {
	c := cmp.Or(cmp.Compare(a.table, b.table), cmp.Compare(a.org, b.org), cmp.Compare(a.span, b.span),
		cmp.Compare(a.day, b.day))
	for i := range a.vals {
		c = cmp.Or(c, strings.Compare(a.vals[i], b.vals[i]))
	}
	return c
}

// derived accumulates changes to the derived tables.
type derived struct {
	tables []rollupTable
	sums   map[derivedKey]int64
}

func newDerived() *derived {
	return &derived{tables: rollupTables(), sums: map[derivedKey]int64{}}
}

// add adds n sessions of the tlsrpt_daily row k, of a domain org hosts, to
// every block of every table that holds it.
func (d *derived) add(k rollupKey, org, n int64) {
	day := k.day / secondsPerDay
	for ti, t := range d.tables {
		var vals [4]string
		for i, c := range t.cols {
			vals[i] = k.col(c)
		}
		for _, s := range t.spans {
			d.sums[derivedKey{ti, org, s, day - floorMod(day, int64(1)<<s), vals}] += n
		}
	}
}

// write applies the changes in tx, in key order. Rows whose sessions a
// change took away are deleted once they hold none: looked up by key, or
// with byBlock by block (organization, span and first day), which is
// cheaper for changes of many keys in few blocks (retention's, of whole
// days of every domain).
func (d *derived) write(ctx context.Context, s *sqlStore, tx *sql.Tx, byBlock bool) error {
	keys := make([]derivedKey, 0, len(d.sums))
	for k, n := range d.sums {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareDerivedKeys)
	for ti, t := range d.tables {
		cols := "org_id, span, day, " + strings.Join(t.cols, ", ")
		up := s.bulk(4+len(t.cols), `INSERT INTO `+t.name+` (`+cols+`, sessions)`,
			` ON CONFLICT (`+cols+`) DO UPDATE SET sessions = `+t.name+`.sessions + excluded.sessions`)
		// Row values: both databases look each one up by the primary key.
		del := s.bulk(3+len(t.cols), `DELETE FROM `+t.name+` WHERE sessions = 0 AND (`+cols+`) IN (`, `)`)
		del.types = []string{"bigint", "smallint", "timestamptz", "text", "text", "text", "text"}[:3+len(t.cols)]
		type block struct {
			org  int64
			span int
			day  int64
		}
		var blocks []block // in key order, each once
		for _, k := range keys {
			if k.table != ti {
				continue
			}
			vals := []any{k.org, k.span, s.d.timeArg(dayTime(k.day))}
			for i := range t.cols {
				vals = append(vals, k.vals[i])
			}
			up.add(append(vals, d.sums[k])...)
			if d.sums[k] >= 0 {
				continue
			}
			if b := (block{k.org, k.span, k.day}); !byBlock {
				del.add(vals...)
			} else if len(blocks) == 0 || blocks[len(blocks)-1] != b {
				blocks = append(blocks, b)
			}
		}
		if err := up.exec(ctx, tx); err != nil {
			return fmt.Errorf("add to %s: %w", t.name, err)
		}
		if err := del.exec(ctx, tx); err != nil {
			return fmt.Errorf("delete emptied rows of %s: %w", t.name, err)
		}
		delBlock := `DELETE FROM ` + t.name + ` WHERE org_id = $1 AND span = $2 AND day = $3 AND sessions = 0` //nolint:gosec // G202: a table name of rollupTables, no input
		for _, b := range blocks {
			if _, err := tx.ExecContext(ctx, delBlock, b.org, b.span, s.d.timeArg(dayTime(b.day))); err != nil {
				return fmt.Errorf("delete emptied rows of %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// hostingOrgs returns the organization hosting each of the domains that
// is hosted, in tx.
func (s *sqlStore) hostingOrgs(ctx context.Context, tx *sql.Tx, domains []string) (map[string]int64, error) {
	orgs := make(map[string]int64, len(domains))
	for start := 0; start < len(domains); start += maxBulkParams {
		part := domains[start:min(start+maxBulkParams, len(domains))]
		var q sqlq
		vals := make([]any, len(part))
		for i, d := range part {
			vals[i] = d
		}
		rows, err := tx.QueryContext(ctx, sqlText(`SELECT name, org_id FROM domains WHERE name IN (`, q.list(vals...), `)`), q.args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				name string
				org  int64
			)
			if err := rows.Scan(&name, &org); err != nil {
				_ = rows.Close()
				return nil, err
			}
			orgs[name] = org
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return orgs, nil
}

// lockRollups takes the rollup lock in tx, shared (InsertTLSRPT) or not (a
// move): a no-op on SQLite.
func (s *sqlStore) lockRollups(ctx context.Context, tx *sql.Tx, shared bool) error {
	stmt := s.d.lockRollups
	if shared {
		stmt = s.d.lockRollupsShared
	}
	if stmt == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, stmt, int64(rollupLockID)); err != nil {
		return fmt.Errorf("lock the rollups: %w", err)
	}
	return nil
}

// moveRollups moves the sessions of domain in the derived tables from
// organization from to organization to (0: nobody), in tx, which took the
// rollup lock (lockRollups) as its first statement.
func (s *sqlStore) moveRollups(ctx context.Context, tx *sql.Tx, domain string, from, to int64) error {
	if from == to {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT day, policy_type, result_type, organization, sending_ip, receiving_mx,
		sessions FROM tlsrpt_daily WHERE domain = $1`, domain)
	if err != nil {
		return fmt.Errorf("move the rollups of %s: %w", domain, err)
	}
	defer rows.Close()
	d := newDerived()
	for rows.Next() {
		var (
			k   = rollupKey{domain: domain}
			day time.Time
			n   int64
		)
		if err := rows.Scan(timeCol{&day}, &k.policyType, &k.resultType, &k.organization, &k.sendingIP,
			&k.receivingMX, &n); err != nil {
			return fmt.Errorf("move the rollups of %s: %w", domain, err)
		}
		k.day = day.Unix()
		d.add(k, from, -n)
		d.add(k, to, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("move the rollups of %s: %w", domain, err)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("move the rollups of %s: %w", domain, err)
	}
	if err := d.write(ctx, s, tx, false); err != nil {
		return fmt.Errorf("move the rollups of %s: %w", domain, err)
	}
	return nil
}

// rollupGroupNames lists the names RollupQuery.GroupBy accepts: the
// columns of tlsrpt_daily of the same names.
const rollupGroupNames = "day, domain, policy_type, result_type, organization, sending_ip, receiving_mx"

// rollupDest returns where a RollupRow keeps the group column name, or nil
// for an unknown name.
func rollupDest(name string) func(r *RollupRow) any {
	switch name {
	case "day":
		return func(r *RollupRow) any { return timeCol{&r.Day} }
	case "domain":
		return func(r *RollupRow) any { return &r.Domain }
	case "policy_type":
		return func(r *RollupRow) any { return &r.PolicyType }
	case "result_type":
		return func(r *RollupRow) any { return &r.ResultType }
	case "organization":
		return func(r *RollupRow) any { return &r.Organization }
	case "sending_ip":
		return func(r *RollupRow) any { return &r.SendingIP }
	case "receiving_mx":
		return func(r *RollupRow) any { return &r.ReceivingMX }
	}
	return nil
}

// TLSRPTRollups implements ReportReader: the rollups of the domains hosted
// in the scope (for the operator, of every domain). Rows are days with Since <= day <
// Until (times as given, in UTC). Groups come ordered by the GroupBy
// columns, each ascending (bytewise for text); a group has sessions. A
// GroupBy name that is unknown or listed twice is an error naming it.
//
// Without a Domain, the smallest derived table that has the columns
// grouped by (and policy_type for a PolicyType) answers, from blocks of
// days as long as the period allows (one-day blocks when grouping by
// day); with a Domain, or when no derived table has the columns,
// tlsrpt_daily does (a range of its primary key for a Domain). Both give
// the same rows (see the top of this file), also when hosting changed
// after reports arrived: a domain's sessions, of every day, count for the
// organization hosting it at the time of the query, and for nobody's (the
// operator's only) while it is not hosted, whether it was hosted later
// than its reports arrived, deleted since, or deleted and hosted again by
// another organization.
func (t *tenant) TLSRPTRollups(ctx context.Context, q RollupQuery) ([]RollupRow, error) {
	text, args, dests, err := t.rollupQuery(q)
	if err != nil {
		return nil, err
	}
	return t.s.rollupRows(ctx, q.GroupBy, text, args, dests)
}

// rollupRows runs a query of rollupQuery.
func (s *sqlStore) rollupRows(ctx context.Context, groupBy []string, text string, args []any, dests []func(*RollupRow) any) ([]RollupRow, error) {
	rows, err := s.r.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: tlsrpt rollups by %q: %w", groupBy, err)
	}
	defer rows.Close()
	out := []RollupRow{}
	for rows.Next() {
		var r RollupRow
		dest := make([]any, 0, len(dests)+1)
		for _, d := range dests {
			dest = append(dest, d(&r))
		}
		if err := rows.Scan(append(dest, &r.Sessions)...); err != nil {
			return nil, fmt.Errorf("store: tlsrpt rollups by %q: %w", groupBy, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tlsrpt rollups by %q: %w", groupBy, err)
	}
	return out, nil
}

// rollupTableFor returns the smallest derived table that can answer q,
// grouped by cols, or false.
func rollupTableFor(q RollupQuery, cols []string) (rollupTable, bool) {
	if q.Domain != "" {
		return rollupTable{}, false
	}
	need := slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == "day" })
	if q.PolicyType != "" {
		need = append(need, "policy_type")
	}
	for _, t := range rollupTables() {
		if !slices.ContainsFunc(need, func(c string) bool { return !slices.Contains(t.cols, c) }) {
			return t, true
		}
	}
	return rollupTable{}, false
}

// rollupQuery returns the SQL text of q, its arguments, and where each
// group column is scanned to.
func (t *tenant) rollupQuery(q RollupQuery) (string, []any, []func(*RollupRow) any, error) {
	var (
		cols  []string
		dests []func(*RollupRow) any
	)
	for _, g := range q.GroupBy {
		dest := rollupDest(g)
		if dest == nil {
			return "", nil, nil, fmt.Errorf("store: tlsrpt rollups: unknown group-by column %q (want one of %s)", g, rollupGroupNames)
		}
		if slices.Contains(cols, g) {
			return "", nil, nil, fmt.Errorf("store: tlsrpt rollups: group-by column %q listed twice", g)
		}
		cols = append(cols, g)
		dests = append(dests, dest)
	}
	var text string
	var args []any
	if dt, ok := rollupTableFor(q, cols); ok {
		text, args = t.derivedQuery(dt, q, cols)
	} else {
		text, args = t.dailyQuery(q, cols)
	}
	return text, args, dests, nil
}

// dailyQuery is the SQL of q, grouped by cols, over tlsrpt_daily.
func (t *tenant) dailyQuery(q RollupQuery, cols []string) (string, []any) {
	var (
		conds []string
		sq    sqlq
	)
	if q.Domain != "" {
		conds = append(conds, "domain = "+sq.arg(strings.TrimSuffix(strings.ToLower(q.Domain), ".")))
	}
	if q.PolicyType != "" {
		conds = append(conds, "policy_type = "+sq.arg(q.PolicyType))
	}
	if !q.Since.IsZero() {
		conds = append(conds, "day >= "+sq.arg(t.s.d.timeArg(normTime(q.Since))))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "day < "+sq.arg(t.s.d.timeArg(normTime(q.Until))))
	}
	if c := t.in(&sq, "hd.org_id"); c != "" {
		conds = append(conds, "domain IN (SELECT hd.name FROM domains hd WHERE "+c+")")
	}
	return sumQuery(`tlsrpt_daily`+where(conds...), cols, false), sq.args
}

// derivedQuery is the SQL of q, grouped by cols, over the derived table
// dt: the blocks covering the period, one SELECT per range of blocks.
func (t *tenant) derivedQuery(dt rollupTable, q RollupQuery, cols []string) (string, []any) {
	var sq sqlq
	scope := t.in(&sq, "org_id")
	if scope == "" {
		// The operator's: every organization and nobody (0), which are
		// all there are (organizations are never deleted). A filter that
		// filters nothing, but makes each range of blocks a few ranges
		// of the primary key rather than a scan of the table.
		scope = "org_id IN (SELECT 0 UNION ALL SELECT id FROM orgs)"
	}
	var pt string
	if q.PolicyType != "" {
		pt = "policy_type = " + sq.arg(q.PolicyType)
	}
	from, to := noStart, noEnd
	if !q.Since.IsZero() {
		from = firstDayFrom(q.Since)
	}
	if !q.Until.IsZero() {
		to = firstDayFrom(q.Until)
	}
	spans := dt.spans
	if slices.Contains(cols, "day") {
		spans = spans[:1] // days
	}
	var parts []string
	for _, b := range decompose(from, to, spans) {
		conds := []string{scope, "span = " + sq.arg(b.span)}
		if b.from != noStart {
			conds = append(conds, "day >= "+sq.arg(t.s.d.timeArg(dayTime(b.from))))
		}
		if b.to != noEnd {
			conds = append(conds, "day < "+sq.arg(t.s.d.timeArg(dayTime(b.to))))
		}
		parts = append(parts, sumSource(dt.name, cols, append(conds, pt)...))
	}
	if len(parts) == 0 { // an empty period
		parts = append(parts, sumSource(dt.name, cols, scope, pt, "FALSE"))
	}
	return sumQuery(`(`+strings.Join(parts, ` UNION ALL `)+`) blocks`, cols, true), sq.args
}

// sumSource selects the group columns and sessions of table's rows that
// meet the conditions.
func sumSource(table string, cols []string, conds ...string) string {
	sel := "sessions"
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ") + ", sessions"
	}
	return `SELECT ` + sel + ` FROM ` + table + where(conds...)
}

// sumQuery sums the sessions of from (a table with its WHERE, or a
// subquery) grouped by cols: one total row without cols. skipEmpty leaves
// out groups without sessions.
func sumQuery(from string, cols []string, skipEmpty bool) string {
	text := `SELECT `
	if len(cols) > 0 {
		text += strings.Join(cols, ", ") + ", "
	}
	// SUM of bigint is numeric on PostgreSQL; back to bigint.
	text += `CAST(COALESCE(SUM(sessions), 0) AS BIGINT) FROM ` + from
	if len(cols) > 0 {
		text += " GROUP BY " + strings.Join(cols, ", ")
		if skipEmpty {
			text += " HAVING SUM(sessions) > 0"
		}
		text += " ORDER BY " + strings.Join(cols, ", ")
	}
	return text
}
