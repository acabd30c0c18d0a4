package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// dialect holds what differs between SQLite and PostgreSQL. Everything else
// is one SQL text: $N placeholders, ON CONFLICT and RETURNING work on both.
type dialect struct {
	name string // "sqlite" or "postgres", for error messages

	// notify, when not empty, is run in every transaction that advances
	// the change serial: PostgreSQL tells the listening instances at
	// commit (NOTIFY is transactional).
	notify string

	// forUpdate is appended to the SELECT that starts UpdateDomain. On
	// PostgreSQL it locks the row so concurrent writers queue up behind the
	// transaction; SQLite's write transactions are exclusive already
	// (BEGIN IMMEDIATE).
	forUpdate string

	// timeArg converts a time (already UTC, microsecond precision) to the
	// column type: integer Unix nanoseconds on SQLite, timestamptz on
	// PostgreSQL.
	timeArg func(time.Time) any

	// tryLock takes or extends a lock; it returns a row only when the caller
	// holds the lock afterwards. tryLockArgs builds its arguments.
	tryLock     string
	tryLockArgs func(name, owner string, ttl time.Duration, now time.Time) []any

	// lockRollups and lockRollupsShared take the rollup lock
	// (rollups.go) in a transaction, exclusive or shared, with its id as
	// $1; "" where write transactions exclude each other already
	// (SQLite).
	lockRollups, lockRollupsShared string
}

// sqlStore implements Store on database/sql for both dialects.
type sqlStore struct {
	d    dialect
	r    *sql.DB // reads
	w    *sql.DB // writes; the same pool as r on PostgreSQL, a single connection on SQLite
	log  *slog.Logger
	url  string // PostgreSQL: for the LISTEN connection of Changes
	path string // SQLite: the database file, for Backup

	gz gzipWriters // reused by InsertTLSRPT (reports_codec.go); the zero value is ready
}

var _ Store = (*sqlStore)(nil)

// now is the time stamped on rows, at the precision both databases keep.
func now() time.Time { return normTime(time.Now()) }

// normTime brings t to what a round trip through either database returns:
// UTC, microseconds (PostgreSQL's timestamptz precision).
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeCol scans a time column of either dialect.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case int64: // SQLite: Unix nanoseconds
		*c.t = time.Unix(0, v).UTC()
	case time.Time: // PostgreSQL timestamptz
		*c.t = v.UTC()
	default:
		return fmt.Errorf("store: time column holds %T, want integer or timestamp", src)
	}
	return nil
}

// encodeList stores a string list as a JSON array; nil becomes [].
func encodeList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(b)
}

func decodeList(col, s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("store: column %s holds %q, not a JSON string array: %w", col, s, err)
	}
	if l == nil {
		l = []string{}
	}
	return l, nil
}

// checkName guards the stored form of domain names: not empty, lower case,
// no trailing dot (the Domain contract).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("store: domain name is empty")
	case name != strings.ToLower(name):
		return fmt.Errorf("store: domain name %q: not lower case", name)
	case strings.HasSuffix(name, "."):
		return fmt.Errorf("store: domain name %q: trailing dot", name)
	}
	return nil
}

// writeTx runs fn in a write transaction and commits it when fn returns nil.
// fn's error is returned as is. A panic in fn rolls back and propagates.
func (s *sqlStore) writeTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: begin transaction: %w", what, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // the error that made us roll back is what matters
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", what, err)
	}
	return nil
}

// bumpSerial advances the change serial inside tx, and notifies the
// listening instances where the database can.
func (s *sqlStore) bumpSerial(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE change_serial SET value = value + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("advance change serial: %w", err)
	}
	if s.d.notify != "" {
		if _, err := tx.ExecContext(ctx, s.d.notify); err != nil {
			return fmt.Errorf("notify the change: %w", err)
		}
	}
	return nil
}

// domainCols are the columns of a domain, of the table aliased d.
const domainCols = `d.name, d.mode, d.mx, d.max_age, d.rua, d.policy_id, d.version, d.created_at, d.updated_at, d.org_id`

type scanner interface{ Scan(dest ...any) error }

func scanDomain(row scanner, extra ...any) (*Domain, error) {
	var d Domain
	var mx, rua string
	dest := []any{&d.Name, &d.Mode, &mx, &d.MaxAge, &rua, &d.PolicyID, &d.Version,
		timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}, &d.OrgID}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	var err error
	if d.MX, err = decodeList("domains.mx", mx); err != nil {
		return nil, err
	}
	if d.RUA, err = decodeList("domains.rua", rua); err != nil {
		return nil, err
	}
	return &d, nil
}

const versionCols = `v.domain, v.version, v.policy_id, v.mode, v.mx, v.max_age, v.policy, v.created_at`

func scanVersion(row scanner) (*PolicyVersion, error) {
	var v PolicyVersion
	var mx string
	if err := row.Scan(&v.Domain, &v.Version, &v.PolicyID, &v.Mode, &mx, &v.MaxAge, &v.Policy,
		timeCol{&v.CreatedAt}); err != nil {
		return nil, err
	}
	var err error
	if v.MX, err = decodeList("policy_versions.mx", mx); err != nil {
		return nil, err
	}
	return &v, nil
}

func (s *sqlStore) insertVersion(ctx context.Context, tx *sql.Tx, v *PolicyVersion) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (domain, version, policy_id, mode, mx, max_age, policy, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		v.Domain, v.Version, v.PolicyID, v.Mode, encodeList(v.MX), v.MaxAge, v.Policy, s.d.timeArg(v.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert policy version %d: %w", v.Version, err)
	}
	return nil
}

// The domain methods of Store act for the operator.

// CreateDomain implements Store.
func (s *sqlStore) CreateDomain(ctx context.Context, d *Domain, v *PolicyVersion) error {
	return s.op().CreateDomain(ctx, d, v)
}

// UpdateDomain implements Store.
func (s *sqlStore) UpdateDomain(ctx context.Context, name string, fn func(d *Domain) (*PolicyVersion, error)) (*Domain, error) {
	return s.op().UpdateDomain(ctx, name, fn)
}

// DeleteDomain implements Store.
func (s *sqlStore) DeleteDomain(ctx context.Context, name string) error {
	return s.op().DeleteDomain(ctx, name)
}

// Domain implements Store.
func (s *sqlStore) Domain(ctx context.Context, name string) (*Domain, error) {
	return s.op().Domain(ctx, name)
}

// Domains implements Store.
func (s *sqlStore) Domains(ctx context.Context) ([]*Domain, error) {
	return s.op().Domains(ctx)
}

// PolicyVersions implements Store.
func (s *sqlStore) PolicyVersions(ctx context.Context, name string) ([]*PolicyVersion, error) {
	return s.op().PolicyVersions(ctx, name)
}

// CreateDomain implements DomainStore. Zero times in d and v are set to
// now; d.Version and d.PolicyID, when zero, are taken from v. The filled-in
// values are written back to d and v on success. d.OrgID must be an
// organization of the scope (ErrInvalidArg when 0, ErrNotFound when absent
// or outside); a taken name is ErrExists, whoever hosts it.
func (t *tenant) CreateDomain(ctx context.Context, d *Domain, v *PolicyVersion) error {
	s := t.s
	if d == nil || v == nil {
		return errors.New("store: create domain: nil domain or policy version")
	}
	if err := checkName(d.Name); err != nil {
		return err
	}
	if d.OrgID <= 0 {
		return fmt.Errorf("%w: create domain %q: organization id %d", ErrInvalidArg, d.Name, d.OrgID)
	}
	dd, vv := *d, *v
	if vv.Version == 0 {
		vv.Version = 1
	}
	if vv.Domain == "" {
		vv.Domain = dd.Name
	}
	if dd.Version == 0 {
		dd.Version = vv.Version
	}
	if dd.PolicyID == "" {
		dd.PolicyID = vv.PolicyID
	}
	switch {
	case vv.Version != 1:
		return fmt.Errorf("store: create domain %q: first policy version must be 1, got %d", dd.Name, vv.Version)
	case vv.Domain != dd.Name:
		return fmt.Errorf("store: create domain %q: policy version is for domain %q", dd.Name, vv.Domain)
	case dd.Version != vv.Version:
		return fmt.Errorf("store: create domain %q: domain version %d differs from policy version %d", dd.Name, dd.Version, vv.Version)
	case dd.PolicyID != vv.PolicyID:
		return fmt.Errorf("store: create domain %q: domain policy id %q differs from policy version's %q", dd.Name, dd.PolicyID, vv.PolicyID)
	}
	tm := now()
	for _, p := range []*time.Time{&dd.CreatedAt, &dd.UpdatedAt, &vv.CreatedAt} {
		if p.IsZero() {
			*p = tm
		}
		*p = normTime(*p)
	}
	dd.MX, dd.RUA, vv.MX = normList(dd.MX), normList(dd.RUA), normList(vv.MX)

	err := s.writeTx(ctx, "create domain "+dd.Name, func(tx *sql.Tx) error {
		if err := s.lockRollups(ctx, tx, false); err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		}
		// The row comes from the organization, so that an organization
		// that does not exist or is outside the scope inserts nothing.
		var q sqlq
		text := sqlText(`INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version, created_at, updated_at, org_id)
			SELECT `, q.list(dd.Name, dd.Mode, encodeList(dd.MX), dd.MaxAge, encodeList(dd.RUA), dd.PolicyID, dd.Version,
			s.d.timeArg(dd.CreatedAt), s.d.timeArg(dd.UpdatedAt)), `, o.id
			FROM orgs o WHERE o.id = `, q.arg(dd.OrgID), t.andIn(&q, "o.id"), `
			ON CONFLICT (name) DO NOTHING`)
		res, err := tx.ExecContext(ctx, text, q.args...)
		if err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		} else if n == 0 {
			var taken bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1)`, dd.Name).Scan(&taken); err != nil {
				return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
			}
			if taken {
				return fmt.Errorf("%w: domain %q", ErrExists, dd.Name)
			}
			return fmt.Errorf("%w: create domain %q: organization %d", ErrNotFound, dd.Name, dd.OrgID)
		}
		if err := s.insertVersion(ctx, tx, &vv); err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		}
		// Reports that arrived before count for the organization now.
		if err := s.moveRollups(ctx, tx, dd.Name, 0, dd.OrgID); err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		}
		if err := s.bumpSerial(ctx, tx); err != nil {
			return fmt.Errorf("store: create domain %q: %w", dd.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*d, *v = dd, vv
	return nil
}

// normList returns l, or an empty list for nil, matching what a read
// returns.
func normList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// UpdateDomain implements DomainStore. fn must not call the Store (on
// SQLite it would wait for the single write connection that the
// transaction holds). If fn leaves UpdatedAt unchanged it is set to now;
// CreatedAt, Name and OrgID cannot change. When fn returns a version, its
// Version (0: the next one) must be the current version plus one, and d's
// Version and PolicyID (if left unchanged) are set from it. Without a
// version, d's Version and PolicyID must stay unchanged. fn is not called
// for a domain outside the scope.
func (t *tenant) UpdateDomain(ctx context.Context, name string, fn func(d *Domain) (*PolicyVersion, error)) (*Domain, error) {
	s := t.s
	if err := checkName(name); err != nil {
		return nil, err
	}
	var (
		out  *Domain
		outV *PolicyVersion
		v    *PolicyVersion
	)
	err := s.writeTx(ctx, "update domain "+name, func(tx *sql.Tx) error {
		// The row is read (and on PostgreSQL locked) within the scope;
		// what follows works on that row.
		var q sqlq
		old, err := scanDomain(tx.QueryRowContext(ctx, sqlText(`SELECT `, domainCols, ` FROM domains d
			WHERE d.name = `, q.arg(name), t.andIn(&q, "d.org_id"), s.d.forUpdate), q.args...))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: domain %q", ErrNotFound, name)
		} else if err != nil {
			return fmt.Errorf("store: update domain %q: read: %w", name, err)
		}
		d := *old
		d.MX, d.RUA = slices.Clone(old.MX), slices.Clone(old.RUA)
		v, err = fn(&d)
		if err != nil {
			return err
		}
		if d.Name != old.Name {
			return fmt.Errorf("store: update domain %q: the name cannot change (got %q)", name, d.Name)
		}
		if d.OrgID != old.OrgID {
			return fmt.Errorf("store: update domain %q: the organization cannot change (%d → %d)", name, old.OrgID, d.OrgID)
		}
		d.CreatedAt = old.CreatedAt
		if d.UpdatedAt.Equal(old.UpdatedAt) {
			d.UpdatedAt = now()
		}
		d.UpdatedAt = normTime(d.UpdatedAt)
		d.MX, d.RUA = normList(d.MX), normList(d.RUA)
		var vv PolicyVersion
		if v != nil {
			vv = *v
			if vv.Version == 0 {
				vv.Version = old.Version + 1
			}
			if vv.Domain == "" {
				vv.Domain = name
			}
			if d.Version == old.Version {
				d.Version = vv.Version
			}
			if d.PolicyID == old.PolicyID {
				d.PolicyID = vv.PolicyID
			}
			if vv.CreatedAt.IsZero() {
				vv.CreatedAt = d.UpdatedAt
			}
			vv.CreatedAt = normTime(vv.CreatedAt)
			vv.MX = normList(vv.MX)
			switch {
			case vv.Version != old.Version+1:
				return fmt.Errorf("store: update domain %q: new policy version must be %d, got %d", name, old.Version+1, vv.Version)
			case vv.Domain != name:
				return fmt.Errorf("store: update domain %q: policy version is for domain %q", name, vv.Domain)
			case d.Version != vv.Version:
				return fmt.Errorf("store: update domain %q: domain version %d differs from new policy version %d", name, d.Version, vv.Version)
			case d.PolicyID != vv.PolicyID:
				return fmt.Errorf("store: update domain %q: domain policy id %q differs from new policy version's %q", name, d.PolicyID, vv.PolicyID)
			}
		} else if d.Version != old.Version || d.PolicyID != old.PolicyID {
			return fmt.Errorf("store: update domain %q: version or policy id changed (%d %q → %d %q) without a new policy version",
				name, old.Version, old.PolicyID, d.Version, d.PolicyID)
		}
		_, err = tx.ExecContext(ctx, `UPDATE domains SET mode = $2, mx = $3, max_age = $4, rua = $5,
			policy_id = $6, version = $7, updated_at = $8 WHERE name = $1`,
			name, d.Mode, encodeList(d.MX), d.MaxAge, encodeList(d.RUA), d.PolicyID, d.Version, s.d.timeArg(d.UpdatedAt))
		if err != nil {
			return fmt.Errorf("store: update domain %q: %w", name, err)
		}
		if v != nil {
			if err := s.insertVersion(ctx, tx, &vv); err != nil {
				return fmt.Errorf("store: update domain %q: %w", name, err)
			}
			outV = &vv
		}
		if err := s.bumpSerial(ctx, tx); err != nil {
			return fmt.Errorf("store: update domain %q: %w", name, err)
		}
		out = &d
		return nil
	})
	if err != nil {
		return nil, err
	}
	if v != nil {
		*v = *outV // the caller's version shows what was recorded
	}
	return out, nil
}

// DeleteDomain implements DomainStore: the domain goes with its versions
// and events; its reports, rollups and checks stay (history), and its
// sessions no longer count for its organization but for nobody's domains
// (the operator's).
func (t *tenant) DeleteDomain(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s := t.s
	return s.writeTx(ctx, "delete domain "+name, func(tx *sql.Tx) error {
		if err := s.lockRollups(ctx, tx, false); err != nil {
			return fmt.Errorf("store: delete domain %q: %w", name, err)
		}
		// policy_versions and domain_events rows go with it: ON DELETE
		// CASCADE.
		var (
			q   sqlq
			org int64
		)
		err := tx.QueryRowContext(ctx, sqlText(`DELETE FROM domains WHERE name = `, q.arg(name), t.andIn(&q, "org_id"),
			` RETURNING org_id`), q.args...).Scan(&org)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: domain %q", ErrNotFound, name)
		} else if err != nil {
			return fmt.Errorf("store: delete domain %q: %w", name, err)
		}
		if err := s.moveRollups(ctx, tx, name, org, 0); err != nil {
			return fmt.Errorf("store: delete domain %q: %w", name, err)
		}
		if err := t.s.bumpSerial(ctx, tx); err != nil {
			return fmt.Errorf("store: delete domain %q: %w", name, err)
		}
		return nil
	})
}

// Domain implements DomainStore.
func (t *tenant) Domain(ctx context.Context, name string) (*Domain, error) {
	var q sqlq
	d, err := scanDomain(t.s.r.QueryRowContext(ctx, sqlText(`SELECT `, domainCols, ` FROM domains d
		WHERE d.name = `, q.arg(name), t.andIn(&q, "d.org_id")), q.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: domain %q", ErrNotFound, name)
	} else if err != nil {
		return nil, fmt.Errorf("store: read domain %q: %w", name, err)
	}
	return d, nil
}

// Domains implements DomainStore: the domains of the scope, by name.
func (t *tenant) Domains(ctx context.Context) ([]*Domain, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, domainCols, ` FROM domains d`, where(t.in(&q, "d.org_id")),
		` ORDER BY d.name`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: list domains: %w", err)
	}
	defer rows.Close()
	var l []*Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list domains: %w", err)
		}
		l = append(l, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list domains: %w", err)
	}
	return l, nil
}

// PolicyVersions implements DomainStore.
func (t *tenant) PolicyVersions(ctx context.Context, name string) ([]*PolicyVersion, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, versionCols, ` FROM policy_versions v
		JOIN domains d ON d.name = v.domain
		WHERE v.domain = `, q.arg(name), t.andIn(&q, "d.org_id"), ` ORDER BY v.version DESC`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: policy versions of %q: %w", name, err)
	}
	defer rows.Close()
	var l []*PolicyVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("store: policy versions of %q: %w", name, err)
		}
		l = append(l, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: policy versions of %q: %w", name, err)
	}
	if len(l) == 0 {
		// Every domain has at least version 1, so none means no domain
		// (in the scope); check anyway rather than rely on it.
		if _, err := t.Domain(ctx, name); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Serial implements Store.
func (s *sqlStore) Serial(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM change_serial WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: read change serial: %w", err)
	}
	return n, nil
}

// Close implements Store.
func (s *sqlStore) Close() error {
	var errs []error
	if s.r != s.w {
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close %s readers: %w", s.d.name, err))
		}
	}
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: close %s: %w", s.d.name, err))
	}
	return errors.Join(errs...)
}
