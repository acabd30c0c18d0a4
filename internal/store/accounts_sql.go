package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AccountStore on both dialects: the operator's view of organizations,
// users, memberships, sessions, tokens and invitations. The schema is in
// migrations/*/00003_accounts.sql. Methods that Tenant has too (Orgs, Org,
// CreateOrg, SetMembership) are the operator tenant's (tenant_sql.go).

// checkOrg validates o for CreateOrg and fills in defaults: Name is a
// slug of [a-z0-9-], 1 to 63 characters; an empty DisplayName becomes the
// Name; Accent is "" or "#rrggbb" (stored lower-case); LogoType must be
// empty (SetBranding sets the logo). ErrInvalidArg otherwise.
func checkOrg(o *Org) error {
	if !validSlug(o.Name) {
		return fmt.Errorf("%w: organization name %q: want 1 to 63 of a-z, 0-9 and -", ErrInvalidArg, o.Name)
	}
	if strings.TrimSpace(o.DisplayName) == "" {
		o.DisplayName = o.Name
	}
	o.Accent = strings.ToLower(o.Accent)
	if !validAccent(o.Accent) {
		return fmt.Errorf("%w: organization %q: accent %q is not #rrggbb", ErrInvalidArg, o.Name, o.Accent)
	}
	if o.LogoType != "" {
		return fmt.Errorf("%w: organization %q: the logo is set by SetBranding, not CreateOrg", ErrInvalidArg, o.Name)
	}
	return nil
}

func validSlug(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// validAccent reports whether a is "" or a lower-case "#rrggbb".
func validAccent(a string) bool {
	if a == "" {
		return true
	}
	if len(a) != 7 || a[0] != '#' {
		return false
	}
	for _, c := range []byte(a[1:]) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// CreateOrg implements AccountStore.
func (s *sqlStore) CreateOrg(ctx context.Context, o *Org) error { return s.op().CreateOrg(ctx, o) }

// Org implements AccountStore.
func (s *sqlStore) Org(ctx context.Context, id int64) (*Org, error) { return s.op().Org(ctx, id) }

// Orgs implements AccountStore.
func (s *sqlStore) Orgs(ctx context.Context) ([]*Org, error) { return s.op().Orgs(ctx) }

// SetMembership implements AccountStore.
func (s *sqlStore) SetMembership(ctx context.Context, userID, orgID int64, role string) error {
	return s.op().SetMembership(ctx, userID, orgID, role)
}

// OrgByName implements AccountStore.
func (s *sqlStore) OrgByName(ctx context.Context, name string) (*Org, error) {
	o, err := scanOrg(s.r.QueryRowContext(ctx, `SELECT `+orgCols+` FROM orgs o WHERE o.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: organization %q", ErrNotFound, name)
	} else if err != nil {
		return nil, fmt.Errorf("store: read organization %q: %w", name, err)
	}
	return o, nil
}

// Users.

const userCols = `u.id, u.email, u.password_hash, u.operator, u.created_at, u.password_changed_at`

func scanUser(row scanner) (*User, error) {
	var u User
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Operator, timeCol{&u.CreatedAt}, timeCol{&u.PasswordChangedAt}); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser implements AccountStore. The email is stored lower-case; an
// empty one, or one without "@", is ErrInvalidArg. Zero times are now.
func (s *sqlStore) CreateUser(ctx context.Context, u *User) error {
	if u == nil {
		return errors.New("store: create user: nil user")
	}
	uu := *u
	uu.Email = strings.ToLower(strings.TrimSpace(uu.Email))
	if !strings.Contains(uu.Email, "@") {
		return fmt.Errorf("%w: user email %q", ErrInvalidArg, uu.Email)
	}
	t := now()
	for _, p := range []*time.Time{&uu.CreatedAt, &uu.PasswordChangedAt} {
		if p.IsZero() {
			*p = t
		}
		*p = normTime(*p)
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO users (email, password_hash, operator, created_at, password_changed_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING id`,
		uu.Email, uu.PasswordHash, uu.Operator, s.d.timeArg(uu.CreatedAt), s.d.timeArg(uu.PasswordChangedAt)).Scan(&uu.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: user %q", ErrExists, uu.Email)
	} else if err != nil {
		return fmt.Errorf("store: create user %q: %w", uu.Email, err)
	}
	*u = uu
	return nil
}

// User implements AccountStore.
func (s *sqlStore) User(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: user %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read user %d: %w", id, err)
	}
	return u, nil
}

// UserByEmail implements AccountStore.
func (s *sqlStore) UserByEmail(ctx context.Context, email string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.email = $1`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: user %q", ErrNotFound, email)
	} else if err != nil {
		return nil, fmt.Errorf("store: read user %q: %w", email, err)
	}
	return u, nil
}

// Users implements AccountStore.
func (s *sqlStore) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users u ORDER BY u.email`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	l := []*User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		l = append(l, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return l, nil
}

// SetPassword implements AccountStore. PasswordChangedAt becomes now.
func (s *sqlStore) SetPassword(ctx context.Context, userID int64, hash, keepSession string) error {
	what := fmt.Sprintf("user %d", userID)
	return s.writeTx(ctx, "set password of "+what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1`,
			userID, hash, s.d.timeArg(now()))
		if err := oneRow(res, err, what); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2`, userID, keepSession); err != nil {
			return fmt.Errorf("store: set password of %s: end its other sessions: %w", what, err)
		}
		return nil
	})
}

// DeleteUser implements AccountStore. Tokens and invitations the user
// created stay, with CreatedBy 0.
func (s *sqlStore) DeleteUser(ctx context.Context, userID int64) error {
	// memberships and sessions go with the user: ON DELETE CASCADE.
	res, err := s.w.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, userID)
	return oneRow(res, err, fmt.Sprintf("user %d", userID))
}

// Memberships implements AccountStore.
func (s *sqlStore) Memberships(ctx context.Context, userID int64) ([]*Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.user_id, m.org_id, m.role, m.created_at, u.email, o.name
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.user_id = $1 ORDER BY o.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: memberships of user %d: %w", userID, err)
	}
	l, err := scanMemberships(rows)
	if err != nil {
		return nil, fmt.Errorf("store: memberships of user %d: %w", userID, err)
	}
	return l, nil
}

// Sessions.

const sessionCols = `id, user_id, org_id, created_at, last_seen, expires_at, ip, user_agent`

// CreateSession implements AccountStore. ID and ExpiresAt are required
// (ErrInvalidArg); zero CreatedAt and LastSeen are now; OrgID 0 means no
// organization yet. ErrNotFound if the user or the organization does not
// exist; ErrExists if the id does.
func (s *sqlStore) CreateSession(ctx context.Context, ses *Session) error {
	if ses == nil {
		return errors.New("store: create session: nil session")
	}
	if ses.ID == "" || ses.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: create session: empty id or no expiry", ErrInvalidArg)
	}
	ss := *ses
	t := now()
	for _, p := range []*time.Time{&ss.CreatedAt, &ss.LastSeen, &ss.ExpiresAt} {
		if p.IsZero() {
			*p = t
		}
		*p = normTime(*p)
	}
	err := s.writeTx(ctx, "create session", func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = $1`, ss.UserID); err != nil {
			return fmt.Errorf("store: create session: %w", err)
		} else if !ok {
			return fmt.Errorf("%w: create session: user %d", ErrNotFound, ss.UserID)
		}
		if ss.OrgID != 0 {
			if ok, err := exists(ctx, tx, `SELECT 1 FROM orgs WHERE id = $1`, ss.OrgID); err != nil {
				return fmt.Errorf("store: create session: %w", err)
			} else if !ok {
				return fmt.Errorf("%w: create session: organization %d", ErrNotFound, ss.OrgID)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO NOTHING`,
			ss.ID, ss.UserID, nullID(ss.OrgID), s.d.timeArg(ss.CreatedAt), s.d.timeArg(ss.LastSeen),
			s.d.timeArg(ss.ExpiresAt), ss.IP, ss.UserAgent)
		if err != nil {
			return fmt.Errorf("store: create session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: create session: %w", err)
		} else if n == 0 {
			return fmt.Errorf("%w: session id", ErrExists)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*ses = ss
	return nil
}

// SessionByID implements AccountStore. The id is not in errors: it is a
// credential's hash.
func (s *sqlStore) SessionByID(ctx context.Context, id string, at time.Time) (*Session, error) {
	var ses Session
	err := s.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1 AND expires_at > $2`,
		id, s.d.timeArg(normTime(at))).
		Scan(&ses.ID, &ses.UserID, optIDCol{&ses.OrgID}, timeCol{&ses.CreatedAt}, timeCol{&ses.LastSeen},
			timeCol{&ses.ExpiresAt}, &ses.IP, &ses.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: session", ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("store: read session: %w", err)
	}
	return &ses, nil
}

// TouchSession implements AccountStore. A session that has expired at
// lastSeen is not revived: ErrNotFound. orgID 0 means none.
func (s *sqlStore) TouchSession(ctx context.Context, id string, orgID int64, lastSeen, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET org_id = $2, last_seen = $3, expires_at = $4
		WHERE id = $1 AND expires_at > $3`,
		id, nullID(orgID), s.d.timeArg(normTime(lastSeen)), s.d.timeArg(normTime(expires)))
	return oneRow(res, err, "session")
}

// DeleteSession implements AccountStore.
func (s *sqlStore) DeleteSession(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return oneRow(res, err, "session")
}

// Tokens and invitations by their secret.

// TokenByHash implements AccountStore.
func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	k, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens k
		WHERE k.hash = $1 AND k.revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: token", ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("store: read token: %w", err)
	}
	return k, nil
}

// TouchToken implements AccountStore.
func (s *sqlStore) TouchToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used = $2 WHERE id = $1`, id, s.d.timeArg(normTime(at)))
	return oneRow(res, err, fmt.Sprintf("token %d", id))
}

// InvitationByHash implements AccountStore.
func (s *sqlStore) InvitationByHash(ctx context.Context, hash string) (*Invitation, error) {
	i, err := scanInvitation(s.r.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM invitations WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: invitation", ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("store: read invitation: %w", err)
	}
	return i, nil
}

// roleRank orders the roles in SQL, strongest highest.
func roleRank(col string) string {
	return `CASE ` + col + ` WHEN 'owner' THEN 3 WHEN 'admin' THEN 2 ELSE 1 END`
}

// AcceptInvitation implements AccountStore. A user who is a member already
// keeps the stronger of its role and the invitation's. ErrNotFound also
// when the user does not exist.
func (s *sqlStore) AcceptInvitation(ctx context.Context, hash string, userID int64, at time.Time) (*Invitation, error) {
	var inv *Invitation
	err := s.writeTx(ctx, "accept invitation", func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = $1`, userID); err != nil {
			return fmt.Errorf("store: accept invitation: %w", err)
		} else if !ok {
			return fmt.Errorf("%w: accept invitation: user %d", ErrNotFound, userID)
		}
		// One statement takes the invitation if it is open: of two
		// concurrent accepts, the second finds it accepted (on PostgreSQL
		// it waits for the first's row lock, then rechecks the condition).
		tat := s.d.timeArg(normTime(at))
		var err error
		inv, err = scanInvitation(tx.QueryRowContext(ctx, `UPDATE invitations SET accepted_at = $2, accepted_by = $3
			WHERE hash = $1 AND accepted_at IS NULL AND expires_at > $2
			RETURNING `+invitationCols, hash, tat, userID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: open invitation", ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("store: accept invitation: %w", err)
		}
		_, err = tx.ExecContext(ctx, sqlText(`INSERT INTO memberships (user_id, org_id, role, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role
			WHERE `, roleRank("excluded.role"), ` > `, roleRank("memberships.role")),
			userID, inv.OrgID, inv.Role, tat)
		if err != nil {
			return fmt.Errorf("store: accept invitation: add the membership: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}
