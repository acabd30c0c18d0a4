package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The tenant: the store within a Scope.
//
// Every statement a tenant runs names the scope in its own SQL: a
// condition "org_id IN (the scope's organizations)" on the row's
// organization, or, for reports, an EXISTS over the report's policy domains
// joined to the hosted domains of the scope. Nothing read is filtered in
// Go afterwards. Where a method needs a second statement, either it works
// on a row that the first one found within the scope, in the same
// transaction (UpdateDomain's update, RemoveMembership's sessions), or it
// carries the scope too (the "does it exist at all" look-ups that turn an
// empty list into ErrNotFound). Each scope condition is the only guard of
// what it guards, so that dropping one makes the isolation tests fail.
//
// The operator's scope adds no condition; an empty non-operator scope adds
// FALSE.

// tenant implements Tenant on a sqlStore.
type tenant struct {
	s  *sqlStore
	sc Scope
}

var (
	_ Tenant       = (*tenant)(nil)
	_ DomainStore  = (*sqlStore)(nil)
	_ ReportReader = (*sqlStore)(nil)
	_ AccountStore = (*sqlStore)(nil)
)

// Scoped implements Store. The scope is copied.
func (s *sqlStore) Scoped(scope Scope) Tenant {
	return &tenant{s: s, sc: Scope{Operator: scope.Operator, Orgs: slices.Clone(scope.Orgs)}}
}

// op is the operator's tenant, which the methods of Store use.
func (s *sqlStore) op() *tenant { return &tenant{s: s, sc: Scope{Operator: true}} }

// Scope implements Tenant; it returns a copy.
func (t *tenant) Scope() Scope {
	return Scope{Operator: t.sc.Operator, Orgs: slices.Clone(t.sc.Orgs)}
}

// sqlq collects the arguments of one statement while its text is built:
// arg appends a value and returns its placeholder. Values go into args,
// never into the text.
type sqlq struct{ args []any }

// sqlText joins the fragments of a statement: SQL constants of this
// package, and placeholders and conditions made by a sqlq (which hold no
// values).
func sqlText(fragments ...string) string { return strings.Join(fragments, "") }

func (q *sqlq) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// list returns the placeholders of vals, comma-separated.
func (q *sqlq) list(vals ...any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	return strings.Join(ph, ", ")
}

// in returns the condition that col, an organization id, is in the scope:
// "" for the operator, FALSE for an empty scope.
func (t *tenant) in(q *sqlq, col string) string {
	switch {
	case t.sc.Operator:
		return ""
	case len(t.sc.Orgs) == 0:
		return "FALSE"
	}
	ids := make([]any, len(t.sc.Orgs))
	for i, id := range t.sc.Orgs {
		ids[i] = id
	}
	return col + " IN (" + q.list(ids...) + ")"
}

// andIn is in as a further condition: " AND ..." or "".
func (t *tenant) andIn(q *sqlq, col string) string {
	return and(t.in(q, col))
}

// and returns " AND " and the condition c, or "" when c is empty.
func and(c string) string {
	if c == "" {
		return ""
	}
	return " AND " + c
}

// where joins the non-empty conditions into a WHERE clause ("" for none).
func where(conds ...string) string {
	var l []string
	for _, c := range conds {
		if c != "" {
			l = append(l, c)
		}
	}
	if len(l) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(l, " AND ")
}

// nullID is an optional id as a column value: NULL for 0.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// optTimeCol scans a time column that may be NULL (the zero time).
type optTimeCol struct{ t *time.Time }

func (c optTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = time.Time{}
		return nil
	}
	return timeCol(c).Scan(src)
}

// optIDCol scans an id column that may be NULL (0).
type optIDCol struct{ id *int64 }

func (c optIDCol) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.id = n.Int64
	return nil
}

// exists reports whether the query, a SELECT 1 ..., returns a row.
func exists(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, query string, args ...any) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (`+query+`)`, args...).Scan(&ok)
	return ok, err
}

// visibleOrg returns ErrNotFound unless organization id is in the scope.
func (t *tenant) visibleOrg(ctx context.Context, id int64) error {
	var q sqlq
	ok, err := exists(ctx, t.s.r, sqlText(`SELECT 1 FROM orgs o WHERE o.id = `, q.arg(id), t.andIn(&q, "o.id")), q.args...)
	if err != nil {
		return fmt.Errorf("store: look up organization %d: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("%w: organization %d", ErrNotFound, id)
	}
	return nil
}

// Organizations.

const orgCols = `o.id, o.name, o.display_name, o.parent_id, o.accent, o.logo_type, o.created_at, o.failure_key`

func scanOrg(row scanner) (*Org, error) {
	var o Org
	if err := row.Scan(&o.ID, &o.Name, &o.DisplayName, optIDCol{&o.ParentID}, &o.Accent, &o.LogoType,
		timeCol{&o.CreatedAt}, &o.FailureKey); err != nil {
		return nil, err
	}
	return &o, nil
}

// Orgs implements Tenant: the organizations of the scope, by name.
func (t *tenant) Orgs(ctx context.Context) ([]*Org, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, orgCols, ` FROM orgs o`, where(t.in(&q, "o.id")), ` ORDER BY o.name`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: list organizations: %w", err)
	}
	defer rows.Close()
	l := []*Org{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list organizations: %w", err)
		}
		l = append(l, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list organizations: %w", err)
	}
	return l, nil
}

// Org implements Tenant.
func (t *tenant) Org(ctx context.Context, id int64) (*Org, error) {
	var q sqlq
	o, err := scanOrg(t.s.r.QueryRowContext(ctx, sqlText(`SELECT `, orgCols, ` FROM orgs o WHERE o.id = `, q.arg(id), t.andIn(&q, "o.id")), q.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: organization %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read organization %d: %w", id, err)
	}
	return o, nil
}

// CreateOrg implements Tenant (and, for the operator, AccountStore): see
// checkOrg for what o must hold. A non-operator scope creates customer
// organizations only: o.ParentID is required (ErrInvalidArg) and must be in
// the scope (ErrNotFound). The operator may create top-level ones
// (ParentID 0). A taken name is ErrExists.
func (t *tenant) CreateOrg(ctx context.Context, o *Org) error {
	if o == nil {
		return errors.New("store: create organization: nil organization")
	}
	oo := *o
	if err := checkOrg(&oo); err != nil {
		return err
	}
	if oo.ParentID < 0 || (oo.ParentID == 0 && !t.sc.Operator) {
		return fmt.Errorf("%w: create organization %q: parent organization id %d", ErrInvalidArg, oo.Name, oo.ParentID)
	}
	if oo.CreatedAt.IsZero() {
		oo.CreatedAt = now()
	}
	oo.CreatedAt = normTime(oo.CreatedAt)
	s := t.s
	var q sqlq
	vals := q.list(oo.Name, oo.DisplayName, oo.Accent, []byte{}, "", s.d.timeArg(oo.CreatedAt))
	var text string
	if oo.ParentID == 0 {
		text = sqlText(`INSERT INTO orgs (name, display_name, accent, logo, logo_type, created_at, parent_id)
			VALUES (`, vals, `, NULL) ON CONFLICT (name) DO NOTHING RETURNING id`)
	} else {
		// The parent row supplies parent_id: a parent outside the scope
		// inserts nothing.
		text = sqlText(`INSERT INTO orgs (name, display_name, accent, logo, logo_type, created_at, parent_id)
			SELECT `, vals, `, p.id FROM orgs p WHERE p.id = `, q.arg(oo.ParentID), t.andIn(&q, "p.id"), `
			ON CONFLICT (name) DO NOTHING RETURNING id`)
	}
	err := s.writeTx(ctx, "create organization "+oo.Name, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, text, q.args...).Scan(&oo.ID)
		if errors.Is(err, sql.ErrNoRows) {
			taken, err := exists(ctx, tx, `SELECT 1 FROM orgs WHERE name = $1`, oo.Name)
			switch {
			case err != nil:
				return fmt.Errorf("store: create organization %q: %w", oo.Name, err)
			case taken:
				return fmt.Errorf("%w: organization %q", ErrExists, oo.Name)
			}
			return fmt.Errorf("%w: create organization %q: parent organization %d", ErrNotFound, oo.Name, oo.ParentID)
		} else if err != nil {
			return fmt.Errorf("store: create organization %q: %w", oo.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*o = oo
	return nil
}

// maxLogo bounds an organization's logo.
const maxLogo = 1 << 20

// SetBranding implements Tenant. displayName must not be empty, accent is
// "" or "#rrggbb" (stored lower-case), logoType is an "image/..." media
// type given together with a logo of at most 1 MiB, or both are empty to
// remove the logo; otherwise ErrInvalidArg.
func (t *tenant) SetBranding(ctx context.Context, orgID int64, displayName, accent, logoType string, logo []byte) error {
	accent = strings.ToLower(accent)
	switch {
	case strings.TrimSpace(displayName) == "":
		return fmt.Errorf("%w: branding of organization %d: empty display name", ErrInvalidArg, orgID)
	case !validAccent(accent):
		return fmt.Errorf("%w: branding of organization %d: accent %q is not #rrggbb", ErrInvalidArg, orgID, accent)
	case (logoType == "") != (len(logo) == 0):
		return fmt.Errorf("%w: branding of organization %d: a logo needs both its bytes and its type", ErrInvalidArg, orgID)
	case logoType != "" && (!strings.HasPrefix(logoType, "image/") || strings.ContainsAny(logoType, " \t\r\n;,")):
		return fmt.Errorf("%w: branding of organization %d: logo type %q is not an image media type", ErrInvalidArg, orgID, logoType)
	case len(logo) > maxLogo:
		return fmt.Errorf("%w: branding of organization %d: logo of %d bytes, at most %d", ErrInvalidArg, orgID, len(logo), maxLogo)
	}
	if logo == nil {
		logo = []byte{}
	}
	var q sqlq
	text := sqlText(`UPDATE orgs SET display_name = `, q.arg(displayName), `, accent = `, q.arg(accent),
		`, logo_type = `, q.arg(logoType), `, logo = `, q.arg(logo),
		` WHERE id = `, q.arg(orgID), t.andIn(&q, "id"))
	res, err := t.s.w.ExecContext(ctx, text, q.args...)
	if err != nil {
		return fmt.Errorf("store: branding of organization %d: %w", orgID, err)
	}
	return oneRow(res, err, fmt.Sprintf("organization %d", orgID))
}

// oneRow turns the result of a statement that changes one row by its key
// into ErrNotFound naming what when it changed none.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return nil
}

// Logo implements Tenant.
func (t *tenant) Logo(ctx context.Context, orgID int64) (string, []byte, error) {
	var (
		q        sqlq
		logoType string
		logo     []byte
	)
	err := t.s.r.QueryRowContext(ctx, sqlText(`SELECT logo_type, logo FROM orgs WHERE id = `, q.arg(orgID), t.andIn(&q, "id")), q.args...).
		Scan(&logoType, &logo)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && logoType == "") {
		return "", nil, fmt.Errorf("%w: logo of organization %d", ErrNotFound, orgID)
	} else if err != nil {
		return "", nil, fmt.Errorf("store: logo of organization %d: %w", orgID, err)
	}
	return logoType, logo, nil
}

// Members.

// Members implements Tenant.
func (t *tenant) Members(ctx context.Context, orgID int64) ([]*Membership, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT m.user_id, m.org_id, m.role, m.created_at, u.email, o.name
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.org_id = `, q.arg(orgID), t.andIn(&q, "m.org_id"), ` ORDER BY u.email`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: members of organization %d: %w", orgID, err)
	}
	l, err := scanMemberships(rows)
	if err != nil {
		return nil, fmt.Errorf("store: members of organization %d: %w", orgID, err)
	}
	if len(l) == 0 {
		if err := t.visibleOrg(ctx, orgID); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func scanMemberships(rows *sql.Rows) ([]*Membership, error) {
	defer rows.Close()
	l := []*Membership{}
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.UserID, &m.OrgID, &m.Role, timeCol{&m.CreatedAt}, &m.Email, &m.OrgName); err != nil {
			return nil, err
		}
		l = append(l, &m)
	}
	return l, rows.Err()
}

// SetMembership implements Tenant (and, for the operator, AccountStore).
// An unknown role is ErrInvalidArg.
func (t *tenant) SetMembership(ctx context.Context, userID, orgID int64, role string) error {
	if !validRole(role) {
		return fmt.Errorf("%w: membership of user %d in organization %d: role %q", ErrInvalidArg, userID, orgID, role)
	}
	var q sqlq
	text := sqlText(`INSERT INTO memberships (user_id, org_id, role, created_at)
		SELECT u.id, o.id, `, q.arg(role), `, `, q.arg(t.s.d.timeArg(now())), ` FROM users u, orgs o
		WHERE u.id = `, q.arg(userID), ` AND o.id = `, q.arg(orgID), t.andIn(&q, "o.id"), `
		ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role`)
	res, err := t.s.w.ExecContext(ctx, text, q.args...)
	return oneRow(res, err, fmt.Sprintf("user %d or organization %d", userID, orgID))
}

// RemoveMembership implements Tenant.
func (t *tenant) RemoveMembership(ctx context.Context, userID, orgID int64) error {
	what := fmt.Sprintf("membership of user %d in organization %d", userID, orgID)
	return t.s.writeTx(ctx, "remove "+what, func(tx *sql.Tx) error {
		var q sqlq
		res, err := tx.ExecContext(ctx, sqlText(`DELETE FROM memberships WHERE user_id = `, q.arg(userID),
			` AND org_id = `, q.arg(orgID), t.andIn(&q, "org_id")), q.args...)
		if err := oneRow(res, err, what); err != nil {
			return err
		}
		// The membership was in the scope: its sessions in that
		// organization end with it.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND org_id = $2`, userID, orgID); err != nil {
			return fmt.Errorf("store: remove %s: end its sessions: %w", what, err)
		}
		return nil
	})
}

// Tokens.

//nolint:gosec // G101: column names, no credential
const tokenCols = `k.id, k.org_id, k.name, k.scope, k.hash, k.prefix, k.created_by, k.created_at, k.last_used, k.revoked_at`

func scanToken(row scanner) (*Token, error) {
	var k Token
	if err := row.Scan(&k.ID, &k.OrgID, &k.Name, &k.Scope, &k.Hash, &k.Prefix, optIDCol{&k.CreatedBy},
		timeCol{&k.CreatedAt}, optTimeCol{&k.LastUsed}, optTimeCol{&k.RevokedAt}); err != nil {
		return nil, err
	}
	return &k, nil
}

// Tokens implements Tenant.
func (t *tenant) Tokens(ctx context.Context, orgID int64) ([]*Token, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, tokenCols, ` FROM api_tokens k
		WHERE k.org_id = `, q.arg(orgID), t.andIn(&q, "k.org_id"), ` ORDER BY k.created_at DESC, k.id DESC`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: tokens of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	l := []*Token{}
	for rows.Next() {
		k, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tokens of organization %d: %w", orgID, err)
		}
		l = append(l, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tokens of organization %d: %w", orgID, err)
	}
	if len(l) == 0 {
		if err := t.visibleOrg(ctx, orgID); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// CreateToken implements Tenant. Name and Hash must not be empty and Scope
// must be ScopeRead or ScopeWrite (ErrInvalidArg); a zero CreatedAt is
// now. A hash that exists is ErrExists; an organization outside the scope
// ErrNotFound. LastUsed and RevokedAt are not written.
func (t *tenant) CreateToken(ctx context.Context, k *Token) error {
	if k == nil {
		return errors.New("store: create token: nil token")
	}
	switch {
	case k.Name == "":
		return fmt.Errorf("%w: create token: empty name", ErrInvalidArg)
	case k.Scope != ScopeRead && k.Scope != ScopeWrite:
		return fmt.Errorf("%w: create token %q: scope %q", ErrInvalidArg, k.Name, k.Scope)
	case k.Hash == "":
		return fmt.Errorf("%w: create token %q: empty hash", ErrInvalidArg, k.Name)
	case k.OrgID <= 0:
		return fmt.Errorf("%w: create token %q: organization id %d", ErrInvalidArg, k.Name, k.OrgID)
	}
	kk := *k
	if kk.CreatedAt.IsZero() {
		kk.CreatedAt = now()
	}
	kk.CreatedAt = normTime(kk.CreatedAt)
	kk.LastUsed, kk.RevokedAt = time.Time{}, time.Time{}
	var q sqlq
	text := sqlText(`INSERT INTO api_tokens (name, scope, hash, prefix, created_by, created_at, org_id)
		SELECT `, q.list(kk.Name, kk.Scope, kk.Hash, kk.Prefix, nullID(kk.CreatedBy), t.s.d.timeArg(kk.CreatedAt)), `, o.id
		FROM orgs o WHERE o.id = `, q.arg(kk.OrgID), t.andIn(&q, "o.id"), `
		ON CONFLICT (hash) DO NOTHING RETURNING id`)
	err := t.insertOwned(ctx, "create token "+strconv.Quote(kk.Name), text, q.args, &kk.ID,
		`SELECT 1 FROM api_tokens WHERE hash = $1`, kk.Hash, kk.OrgID)
	if err != nil {
		return err
	}
	*k = kk
	return nil
}

// insertOwned runs text, an INSERT ... SELECT from the organization in the
// scope with ON CONFLICT DO NOTHING RETURNING id, into id. When nothing was
// inserted, conflict (a SELECT 1 with one argument, key) tells ErrExists
// from ErrNotFound (organization orgID outside the scope).
func (t *tenant) insertOwned(ctx context.Context, what, text string, args []any, id *int64, conflict string, key any, orgID int64) error {
	return t.s.writeTx(ctx, what, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, text, args...).Scan(id)
		if errors.Is(err, sql.ErrNoRows) {
			taken, err := exists(ctx, tx, conflict, key)
			switch {
			case err != nil:
				return fmt.Errorf("store: %s: %w", what, err)
			case taken:
				return fmt.Errorf("%w: %s: its hash is taken", ErrExists, what)
			}
			return fmt.Errorf("%w: %s: organization %d", ErrNotFound, what, orgID)
		} else if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		return nil
	})
}

// RevokeToken implements Tenant. Revoking a revoked token keeps the first
// revocation time and is not an error.
func (t *tenant) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	var q sqlq
	text := sqlText(`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, `, q.arg(t.s.d.timeArg(normTime(at))), `)
		WHERE id = `, q.arg(id), t.andIn(&q, "org_id"))
	res, err := t.s.w.ExecContext(ctx, text, q.args...)
	return oneRow(res, err, fmt.Sprintf("token %d", id))
}

// Invitations.

// invitationCols are not qualified: AcceptInvitation returns them from an
// UPDATE, where SQLite takes no table alias.
const invitationCols = `id, org_id, email, role, hash, created_by, created_at, expires_at, accepted_at, accepted_by`

func scanInvitation(row scanner) (*Invitation, error) {
	var i Invitation
	if err := row.Scan(&i.ID, &i.OrgID, &i.Email, &i.Role, &i.Hash, optIDCol{&i.CreatedBy}, timeCol{&i.CreatedAt},
		timeCol{&i.ExpiresAt}, optTimeCol{&i.AcceptedAt}, optIDCol{&i.AcceptedBy}); err != nil {
		return nil, err
	}
	return &i, nil
}

// Invitations implements Tenant: the open invitations (expired ones
// included), newest first.
func (t *tenant) Invitations(ctx context.Context, orgID int64) ([]*Invitation, error) {
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT `, invitationCols, ` FROM invitations
		WHERE org_id = `, q.arg(orgID), ` AND accepted_at IS NULL`, t.andIn(&q, "org_id"), `
		ORDER BY created_at DESC, id DESC`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: invitations of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	l := []*Invitation{}
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: invitations of organization %d: %w", orgID, err)
		}
		l = append(l, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: invitations of organization %d: %w", orgID, err)
	}
	if len(l) == 0 {
		if err := t.visibleOrg(ctx, orgID); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// CreateInvitation implements Tenant. Role must be known, Hash not empty
// and ExpiresAt set (ErrInvalidArg); Email is stored lower-case; a zero
// CreatedAt is now. A hash that exists is ErrExists; an organization
// outside the scope ErrNotFound.
func (t *tenant) CreateInvitation(ctx context.Context, inv *Invitation) error {
	if inv == nil {
		return errors.New("store: create invitation: nil invitation")
	}
	switch {
	case !validRole(inv.Role):
		return fmt.Errorf("%w: create invitation: role %q", ErrInvalidArg, inv.Role)
	case inv.Hash == "":
		return fmt.Errorf("%w: create invitation: empty hash", ErrInvalidArg)
	case inv.ExpiresAt.IsZero():
		return fmt.Errorf("%w: create invitation: no expiry", ErrInvalidArg)
	case inv.OrgID <= 0:
		return fmt.Errorf("%w: create invitation: organization id %d", ErrInvalidArg, inv.OrgID)
	}
	ii := *inv
	ii.Email = strings.ToLower(ii.Email)
	if ii.CreatedAt.IsZero() {
		ii.CreatedAt = now()
	}
	ii.CreatedAt, ii.ExpiresAt = normTime(ii.CreatedAt), normTime(ii.ExpiresAt)
	ii.AcceptedAt, ii.AcceptedBy = time.Time{}, 0
	var q sqlq
	text := sqlText(`INSERT INTO invitations (email, role, hash, created_by, created_at, expires_at, org_id)
		SELECT `, q.list(ii.Email, ii.Role, ii.Hash, nullID(ii.CreatedBy), t.s.d.timeArg(ii.CreatedAt),
		t.s.d.timeArg(ii.ExpiresAt)), `, o.id
		FROM orgs o WHERE o.id = `, q.arg(ii.OrgID), t.andIn(&q, "o.id"), `
		ON CONFLICT (hash) DO NOTHING RETURNING id`)
	err := t.insertOwned(ctx, "create invitation", text, q.args, &ii.ID,
		`SELECT 1 FROM invitations WHERE hash = $1`, ii.Hash, ii.OrgID)
	if err != nil {
		return err
	}
	*inv = ii
	return nil
}

// DeleteInvitation implements Tenant: an open invitation of the scope;
// ErrNotFound for any other.
func (t *tenant) DeleteInvitation(ctx context.Context, id int64) error {
	var q sqlq
	res, err := t.s.w.ExecContext(ctx, sqlText(`DELETE FROM invitations WHERE id = `, q.arg(id), ` AND accepted_at IS NULL`,
		t.andIn(&q, "org_id")), q.args...)
	return oneRow(res, err, fmt.Sprintf("open invitation %d", id))
}

// validRole reports whether role is one of the roles.
func validRole(role string) bool {
	return role == RoleOwner || role == RoleAdmin || role == RoleViewer
}
