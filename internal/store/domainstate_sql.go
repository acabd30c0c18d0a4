package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Stored checks (the checks table) and the state of hosted domains the
// overview shows: verification, certificates and their events.

// defaultChecks is the page size of Checks when the limit is 0, maxPage the
// largest page of any list.
const (
	defaultChecks = 100
	maxPage       = 1000
)

// InsertCheck implements Tenant. The domain is in stored form (lower case,
// no trailing dot); a zero CheckedAt is now. The report is stored
// gzip-compressed.
func (t *tenant) InsertCheck(ctx context.Context, c *CheckRecord) error {
	if c == nil {
		return errors.New("store: insert check: nil check")
	}
	if err := checkName(c.Domain); err != nil {
		return fmt.Errorf("%w: insert check: %w", ErrInvalidArg, err)
	}
	if c.OrgID <= 0 {
		return fmt.Errorf("%w: insert check of %q: organization id %d", ErrInvalidArg, c.Domain, c.OrgID)
	}
	cc := *c
	if cc.CheckedAt.IsZero() {
		cc.CheckedAt = now()
	}
	cc.CheckedAt = normTime(cc.CheckedAt)
	s := t.s
	zw := compressor{zw: s.gz.get()}
	z, err := zw.gzip(cc.Report)
	s.gz.put(zw.zw)
	if err != nil {
		return fmt.Errorf("store: insert check of %q: compress: %w", cc.Domain, err)
	}
	var q sqlq
	text := sqlText(`INSERT INTO checks (domain, checked_at, score, grade, report, report_size, org_id)
		SELECT `, q.list(cc.Domain, s.d.timeArg(cc.CheckedAt), cc.Score, cc.Grade, z, int64(len(cc.Report))), `, o.id
		FROM orgs o WHERE o.id = `, q.arg(cc.OrgID), t.andIn(&q, "o.id"), ` RETURNING id`)
	err = s.w.QueryRowContext(ctx, text, q.args...).Scan(&cc.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: insert check of %q: organization %d", ErrNotFound, cc.Domain, cc.OrgID)
	} else if err != nil {
		return fmt.Errorf("store: insert check of %q: %w", cc.Domain, err)
	}
	*c = cc
	return nil
}

// Checks implements Tenant: the checks made for organizations of the
// scope. limit 0 is 100; more than 1000 is 1000.
func (t *tenant) Checks(ctx context.Context, domain string, limit int) ([]*CheckRecord, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: checks of %q: negative limit %d", ErrInvalidArg, domain, limit)
	}
	if limit == 0 {
		limit = defaultChecks
	}
	limit = min(limit, maxPage)
	var q sqlq
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT id, org_id, domain, checked_at, score, grade FROM checks
		WHERE domain = `, q.arg(domain), t.andIn(&q, "org_id"), `
		ORDER BY checked_at DESC, id DESC LIMIT `, q.arg(limit)), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: checks of %q: %w", domain, err)
	}
	defer rows.Close()
	l := []*CheckRecord{}
	for rows.Next() {
		var c CheckRecord
		if err := rows.Scan(&c.ID, &c.OrgID, &c.Domain, timeCol{&c.CheckedAt}, &c.Score, &c.Grade); err != nil {
			return nil, fmt.Errorf("store: checks of %q: %w", domain, err)
		}
		l = append(l, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: checks of %q: %w", domain, err)
	}
	return l, nil
}

// Check implements Tenant.
func (t *tenant) Check(ctx context.Context, id int64) (*CheckRecord, error) {
	var (
		q    sqlq
		c    CheckRecord
		z    []byte
		size int64
	)
	err := t.s.r.QueryRowContext(ctx, sqlText(`SELECT id, org_id, domain, checked_at, score, grade, report, report_size FROM checks
		WHERE id = `, q.arg(id), t.andIn(&q, "org_id")), q.args...).
		Scan(&c.ID, &c.OrgID, &c.Domain, timeCol{&c.CheckedAt}, &c.Score, &c.Grade, &z, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: check %d", ErrNotFound, id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read check %d: %w", id, err)
	}
	if c.Report, err = gunzip("checks.report", z, size); err != nil {
		return nil, fmt.Errorf("store: read check %d: %w", id, err)
	}
	return &c, nil
}

// RecordVerify implements Tenant. It does not advance the change serial:
// nothing served changes.
func (t *tenant) RecordVerify(ctx context.Context, domain string, at time.Time, result []byte) error {
	if result == nil {
		result = []byte{}
	}
	var q sqlq
	res, err := t.s.w.ExecContext(ctx, sqlText(`UPDATE domains SET verified_at = `, q.arg(t.s.d.timeArg(normTime(at))),
		`, verify = `, q.arg(result), ` WHERE name = `, q.arg(domain), t.andIn(&q, "org_id")), q.args...)
	return oneRow(res, err, fmt.Sprintf("domain %q", domain))
}

// DomainEvents implements Tenant. A zero since or until is no bound; until
// is excluded. ErrNotFound if the domain is not hosted in the scope.
func (t *tenant) DomainEvents(ctx context.Context, domain string, since, until time.Time) ([]*DomainEvent, error) {
	var q sqlq
	conds := []string{"e.domain = " + q.arg(domain)}
	if !since.IsZero() {
		conds = append(conds, "e.at >= "+q.arg(t.s.d.timeArg(normTime(since))))
	}
	if !until.IsZero() {
		conds = append(conds, "e.at < "+q.arg(t.s.d.timeArg(normTime(until))))
	}
	conds = append(conds, t.in(&q, "d.org_id"))
	rows, err := t.s.r.QueryContext(ctx, sqlText(`SELECT e.domain, e.at, e.kind, e.detail FROM domain_events e
		JOIN domains d ON d.name = e.domain`, where(conds...), ` ORDER BY e.at, e.id`), q.args...)
	if err != nil {
		return nil, fmt.Errorf("store: events of %q: %w", domain, err)
	}
	defer rows.Close()
	l := []*DomainEvent{}
	for rows.Next() {
		var e DomainEvent
		if err := rows.Scan(&e.Domain, timeCol{&e.At}, &e.Kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: events of %q: %w", domain, err)
		}
		l = append(l, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events of %q: %w", domain, err)
	}
	if len(l) == 0 {
		if _, err := t.Domain(ctx, domain); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// RecordCertificate implements Store.
func (s *sqlStore) RecordCertificate(ctx context.Context, domain string, issuedAt, expires time.Time, detail string) error {
	issued, exp := s.d.timeArg(normTime(issuedAt)), s.d.timeArg(normTime(expires))
	return s.writeTx(ctx, "record certificate of "+domain, func(tx *sql.Tx) error {
		// The event needs the domain (a foreign key); inserting it first
		// tells whether the domain is hosted.
		res, err := tx.ExecContext(ctx, `INSERT INTO domain_events (domain, at, kind, detail)
			SELECT name, $2, 'certificate', $3 FROM domains WHERE name = $1`, domain, issued, detail)
		if err := oneRow(res, err, fmt.Sprintf("domain %q", domain)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO certificates (domain, issued_at, expires, detail) VALUES ($1, $2, $3, $4)
			ON CONFLICT (domain) DO UPDATE SET issued_at = excluded.issued_at, expires = excluded.expires, detail = excluded.detail`,
			domain, issued, exp, detail)
		if err != nil {
			return fmt.Errorf("store: record certificate of %q: %w", domain, err)
		}
		return nil
	})
}
