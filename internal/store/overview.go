package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The domain overview: one page of the hosted domains of a scope with what
// the dashboard shows of each, in one statement.
//
// The page is chosen first, by keyset pagination on (sort key, name): the
// cursor holds the last row's key and name, and the next page starts after
// it, so a page costs the same wherever it is and rows that change between
// pages are neither skipped nor repeated because of an offset. Keys that
// can be absent (no report yet, never checked, no certificate) sort last
// in both directions. For the name and mode the page is a range of the
// domains table; for the other keys the key is computed for every domain
// of the scope (a materialized CTE: once per domain), which is what sorting
// by it takes. Only then are the page's rows joined with their
// organization, newest report (tlsrpt_last), newest check, certificate and
// 7-day sums (ranges of tlsrpt_daily's primary key).
//
// The scope is one condition on domains.org_id in the statement that
// chooses the page; every other table is reached from the page's domains.

// defaultOverview is the page size when OverviewQuery.Limit is 0.
const defaultOverview = 100

// overviewKey is a sort key of the overview.
type overviewKey struct {
	// expr is the key's SQL over domains d (and the joins), or "" for the
	// name.
	expr  string
	joins string
	// computed keys are computed for every domain before the page is
	// chosen; the others are columns of domains.
	computed bool
	nullable bool
	// invert makes ascending mean a descending value (grade: best first).
	invert bool
	kind   byte // 's' string, 'i' integer, 'f' float, 't' time
}

// scoreOfNewestCheck is the score of the newest check of domain d made for
// its organization.
const scoreOfNewestCheck = `(SELECT c.score FROM checks c WHERE c.domain = d.name AND c.org_id = d.org_id
	ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)`

// overviewKeyOf returns the sort key of a name. The failure rate needs
// the window's bounds as $1 and $2.
func overviewKeyOf(sort string) (overviewKey, bool) {
	switch sort {
	case "name":
		return overviewKey{kind: 's'}, true
	case "mode":
		return overviewKey{expr: "d.mode", kind: 's'}, true
	case "failure_rate":
		return overviewKey{expr: `(SELECT CAST(SUM(CASE WHEN t.result_type <> 'success' THEN t.sessions ELSE 0 END) AS DOUBLE PRECISION)
			/ NULLIF(CAST(SUM(t.sessions) AS DOUBLE PRECISION), 0)
			FROM tlsrpt_daily t WHERE t.domain = d.name AND t.day >= $1 AND t.day < $2)`,
			computed: true, nullable: true, kind: 'f'}, true
	case "last_report":
		return overviewKey{expr: "l.received_at", joins: ` LEFT JOIN tlsrpt_last l ON l.domain = d.name`,
			computed: true, nullable: true, kind: 't'}, true
	case "grade":
		return overviewKey{expr: scoreOfNewestCheck, computed: true, nullable: true, invert: true, kind: 'i'}, true
	case "expiry":
		return overviewKey{expr: "ce.expires", joins: ` LEFT JOIN certificates ce ON ce.domain = d.name`,
			computed: true, nullable: true, kind: 't'}, true
	}
	return overviewKey{}, false
}

// overviewCursor is what OverviewQuery.After holds (JSON, base64url).
type overviewCursor struct {
	Sort string  `json:"s"`
	Desc bool    `json:"d,omitempty"`
	Null bool    `json:"z,omitempty"` // the key is absent
	Str  string  `json:"v,omitempty"`
	Int  int64   `json:"i,omitempty"` // integers, and times in Unix nanoseconds
	Flt  float64 `json:"f,omitempty"`
	Name string  `json:"n"`
}

func (c *overviewCursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // strings and numbers always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*overviewCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c overviewCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// overviewFilter builds the conditions on domains d of q, scope included.
func (t *tenant) overviewFilter(sq *sqlq, q OverviewQuery) ([]string, error) {
	conds := []string{t.in(sq, "d.org_id")}
	if q.Match != "" {
		// Names are lower-case A-labels.
		m := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q.Match))
		conds = append(conds, `d.name LIKE `+sq.arg("%"+m+"%")+` ESCAPE '\'`)
	}
	if q.Name != "" {
		conds = append(conds, "d.name = "+sq.arg(q.Name))
	}
	switch q.Mode {
	case "":
	case "testing", "enforce", "none":
		conds = append(conds, "d.mode = "+sq.arg(q.Mode))
	default:
		return nil, fmt.Errorf("%w: overview: mode %q", ErrInvalidArg, q.Mode)
	}
	if q.Org < 0 {
		return nil, fmt.Errorf("%w: overview: organization id %d", ErrInvalidArg, q.Org)
	} else if q.Org > 0 {
		conds = append(conds, "d.org_id = "+sq.arg(q.Org))
	}
	return conds, nil
}

// CountDomains implements Tenant. Sort, Desc, Limit, After and Now are
// ignored.
func (t *tenant) CountDomains(ctx context.Context, q OverviewQuery) (int64, error) {
	var sq sqlq
	conds, err := t.overviewFilter(&sq, q)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := t.s.r.QueryRowContext(ctx, `SELECT count(*) FROM domains d`+where(conds...), sq.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count domains: %w", err)
	}
	return n, nil
}

// Overview implements Tenant. Sort keys, each then by name:
//
//   - "name" (the default);
//   - "mode", by its name;
//   - "failure_rate", Failed7d / Sessions7d, lowest first; domains without
//     sessions in the window last;
//   - "last_report", oldest first; never reported last;
//   - "grade", best first (highest score of the newest check); never
//     checked last;
//   - "expiry", of the certificate, soonest first; without one last.
//
// Desc reverses the key (and, for "name", the name); absent keys stay
// last and ties stay by name ascending. The 7-day window is the rollup
// days d with Now - 7×24h <= d < Now: seven UTC days (the current day
// included once it has begun). A zero Now is the present. Limit 0 is 100,
// more than 1000 is 1000. An unknown Sort or Mode, or a cursor that does
// not parse or was made for another sort, is ErrInvalidArg.
func (t *tenant) Overview(ctx context.Context, q OverviewQuery) ([]*DomainSummary, error) {
	if q.Sort == "" {
		q.Sort = "name"
	}
	key, ok := overviewKeyOf(q.Sort)
	if !ok {
		return nil, fmt.Errorf("%w: overview: sort %q", ErrInvalidArg, q.Sort)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("%w: overview: negative limit %d", ErrInvalidArg, q.Limit)
	}
	limit := q.Limit
	if limit == 0 {
		limit = defaultOverview
	}
	limit = min(limit, maxPage)
	var cur *overviewCursor
	if q.After != "" {
		var err error
		if cur, err = decodeCursor(q.After); err != nil {
			return nil, fmt.Errorf("%w: overview: cursor %q: %w", ErrInvalidArg, q.After, err)
		}
		if cur.Sort != q.Sort || cur.Desc != q.Desc {
			return nil, fmt.Errorf("%w: overview: cursor of sort %q (desc %v) for sort %q (desc %v)",
				ErrInvalidArg, cur.Sort, cur.Desc, q.Sort, q.Desc)
		}
	}
	end := q.Now
	if end.IsZero() {
		end = time.Now()
	}
	end = normTime(end)

	// $1 and $2 are the window, for the failure rate and the sums.
	sq := sqlq{}
	sq.arg(t.s.d.timeArg(end.Add(-7 * 24 * time.Hour)))
	sq.arg(t.s.d.timeArg(end))
	conds, err := t.overviewFilter(&sq, q)
	if err != nil {
		return nil, err
	}

	// The page: names and keys, in order.
	desc := q.Desc != key.invert // the direction of the key's value
	k, name := "c.k", "c.name"
	var page string
	if key.computed {
		page = `c AS MATERIALIZED (SELECT d.name AS name, ` + key.expr + ` AS k FROM domains d` + key.joins + where(conds...) + `),
			page AS (SELECT c.name, c.k FROM c` + where(t.keyset(&sq, key, k, name, desc, cur)) +
			` ORDER BY ` + keyOrder(key, k, name, desc, q.Desc) + ` LIMIT ` + sq.arg(limit) + `)`
	} else {
		k, name = key.expr, "d.name"
		if k == "" {
			k = "d.name"
		}
		page = `page AS (SELECT d.name AS name, ` + k + ` AS k FROM domains d` +
			where(append(conds, t.keyset(&sq, key, k, name, desc, cur))...) +
			` ORDER BY ` + keyOrder(key, k, name, desc, q.Desc) + ` LIMIT ` + sq.arg(limit) + `)`
	}
	sums := `(SELECT CAST(COALESCE(SUM(t.sessions), 0) AS BIGINT) FROM tlsrpt_daily t
		WHERE t.domain = d.name AND t.day >= $1 AND t.day < $2`
	text := sqlText(`WITH `, page, `
		SELECT `, domainCols, `, o.name, l.received_at, ck.score, ck.grade, ck.checked_at, ce.issued_at, ce.expires,
			d.verified_at, d.verify, `, sums, `), `, sums, ` AND t.result_type <> 'success'), page.k
		FROM page JOIN domains d ON d.name = page.name
		JOIN orgs o ON o.id = d.org_id
		LEFT JOIN tlsrpt_last l ON l.domain = d.name
		LEFT JOIN certificates ce ON ce.domain = d.name
		LEFT JOIN checks ck ON ck.id = (SELECT c.id FROM checks c WHERE c.domain = d.name AND c.org_id = d.org_id
			ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)
		ORDER BY `, keyOrder(key, "page.k", "page.name", desc, q.Desc))
	rows, err := t.s.r.QueryContext(ctx, text, sq.args...)
	if err != nil {
		return nil, fmt.Errorf("store: overview: %w", err)
	}
	defer rows.Close()
	l := []*DomainSummary{}
	for rows.Next() {
		var (
			ds    DomainSummary
			score sql.NullInt64
			grade sql.NullString
			c     = overviewCursor{Sort: q.Sort, Desc: q.Desc}
			kdest any
			kt    time.Time
			ki    sql.NullInt64
			kf    sql.NullFloat64
			ks    sql.NullString
		)
		switch key.kind {
		case 't':
			kdest = optTimeCol{&kt}
		case 'i':
			kdest = &ki
		case 'f':
			kdest = &kf
		default:
			kdest = &ks
		}
		d, err := scanDomain(rows, &ds.OrgName, optTimeCol{&ds.LastReport}, &score, &grade, optTimeCol{&ds.CheckedAt},
			optTimeCol{&ds.CertIssuedAt}, optTimeCol{&ds.CertExpires}, optTimeCol{&ds.VerifiedAt}, &ds.Verify,
			&ds.Sessions7d, &ds.Failed7d, kdest)
		if err != nil {
			return nil, fmt.Errorf("store: overview: %w", err)
		}
		ds.Domain = *d
		ds.Score, ds.Grade = int(score.Int64), grade.String
		switch key.kind {
		case 't':
			c.Null, c.Int = kt.IsZero(), kt.UnixNano()
			if c.Null {
				c.Int = 0
			}
		case 'i':
			c.Null, c.Int = !ki.Valid, ki.Int64
		case 'f':
			c.Null, c.Flt = !kf.Valid, kf.Float64
		default:
			c.Str = ks.String
		}
		c.Name = d.Name
		ds.Cursor = c.encode()
		l = append(l, &ds)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: overview: %w", err)
	}
	return l, nil
}

// keyOrder is the ORDER BY of key k and name: absent keys last, the key
// ascending or (desc) descending, then the name ascending, or (for the
// name itself) as nameDesc says.
func keyOrder(key overviewKey, k, name string, desc, nameDesc bool) string {
	dir := func(d bool) string {
		if d {
			return " DESC"
		}
		return ""
	}
	if key.expr == "" {
		return name + dir(nameDesc)
	}
	o := k + dir(desc) + ", " + name
	if key.nullable {
		o = "CASE WHEN " + k + " IS NULL THEN 1 ELSE 0 END, " + o
	}
	return o
}

// keyset is the condition that a row comes after the cursor in keyOrder's
// order ("" without a cursor).
func (t *tenant) keyset(sq *sqlq, key overviewKey, k, name string, desc bool, cur *overviewCursor) string {
	if cur == nil {
		return ""
	}
	after := " > "
	if desc {
		after = " < "
	}
	if key.expr == "" {
		return name + after + sq.arg(cur.Name)
	}
	n := sq.arg(cur.Name)
	if cur.Null {
		if !key.nullable {
			return "FALSE" // a forged cursor: nothing is absent here
		}
		return "(" + k + " IS NULL AND " + name + " > " + n + ")"
	}
	var v string
	switch key.kind {
	case 't':
		v = sq.arg(t.s.d.timeArg(time.Unix(0, cur.Int).UTC()))
	case 'i':
		v = sq.arg(cur.Int)
	case 'f':
		v = sq.arg(cur.Flt)
	default:
		v = sq.arg(cur.Str)
	}
	c := k + after + v + " OR (" + k + " = " + v + " AND " + name + " > " + n + ")"
	if key.nullable {
		c = k + " IS NULL OR " + c
	}
	return "(" + c + ")"
}
