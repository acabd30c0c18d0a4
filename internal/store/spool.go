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

// The intake spool: report mail acknowledged once its message is kept
// here, before its reports are parsed and stored (intake.smtp_spool). A
// processor claims rows for a while (a lease, so that a processor that
// dies lets another take them over), stores their reports, and deletes
// them; storing a report twice is harmless (a duplicate stores nothing
// new), so a row processed twice after a crash loses and duplicates
// nothing.

// SpoolItem is one spooled message.
type SpoolItem struct {
	ID         int64
	ReceivedAt time.Time // when it was acknowledged
	Source     string    // the intake path (smtp)
	Detail     string    // envelope, client and Message-ID
	DKIM       string    // the DKIM result of the message
	Hint       string    // the kind of report its recipient address is for
	Data       []byte    // the message as received
	Attempts   int       // claims so far, this one included
	Error      string    // why the last attempt failed, if one did
	Failed     bool      // processing failed for good; kept, never claimed again
}

// SpoolStats counts the spool's rows.
type SpoolStats struct {
	Queued int64     // waiting or being processed
	Failed int64     // failed for good, kept
	Oldest time.Time // ReceivedAt of the oldest queued row; zero when none
}

// Spool keeps spooled messages. All methods are safe for concurrent use by
// goroutines and processes.
type Spool interface {
	// SpoolPut keeps items in one transaction and sets their ID. Once it
	// returns nil they are durable.
	SpoolPut(ctx context.Context, items []*SpoolItem) error
	// SpoolClaim takes up to n unclaimed rows (or rows whose claim ran
	// out), oldest first, for lease: no other claim returns them until it
	// has passed. Their Attempts counts this claim.
	SpoolClaim(ctx context.Context, n int, lease time.Duration) ([]*SpoolItem, error)
	// SpoolDone deletes rows whose reports are stored.
	SpoolDone(ctx context.Context, ids []int64) error
	// SpoolRetry gives a row back to be claimed again at retryAt, with the
	// reason of the failed attempt.
	SpoolRetry(ctx context.Context, id int64, retryAt time.Time, reason string) error
	// SpoolFail marks a row failed for good, with the reason: it keeps its
	// message and is never claimed again.
	SpoolFail(ctx context.Context, id int64, reason string) error
	// SpoolFailed returns the rows failed for good, newest first, at most
	// limit (0: 100), without their data.
	SpoolFailed(ctx context.Context, limit int) ([]*SpoolItem, error)
	// SpoolStats counts the rows. It reads the whole table: call it
	// rarely (SpoolOldest is cheap).
	SpoolStats(ctx context.Context) (SpoolStats, error)
	// SpoolOldest returns ReceivedAt of the oldest queued row; false when
	// none is queued. It reads the first rows only.
	SpoolOldest(ctx context.Context) (time.Time, bool, error)
}

// spoolNever is the claim of a failed row: never reached (and within
// SQLite's integer nanoseconds, which end in 2262).
var spoolNever = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// SpoolPut implements Spool.
func (s *sqlStore) SpoolPut(ctx context.Context, items []*SpoolItem) error {
	if len(items) == 0 {
		return nil
	}
	what := fmt.Sprintf("spool %d messages", len(items))
	return s.writeTx(ctx, what, func(tx *sql.Tx) error {
		for _, it := range items {
			if it.Data == nil {
				it.Data = []byte{}
			}
		}
		if s.d.name != "sqlite" {
			// PostgreSQL does not promise RETURNING in the order of a
			// multi-row VALUES: one statement per message.
			for _, it := range items {
				if err := tx.QueryRowContext(ctx, `INSERT INTO intake_spool (received_at, source, detail, dkim, hint, data)
					VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
					s.d.timeArg(normTime(it.ReceivedAt)), it.Source, it.Detail, it.DKIM, it.Hint, it.Data).Scan(&it.ID); err != nil {
					return fmt.Errorf("store: %s: %w", what, err)
				}
			}
			return nil
		}
		// SQLite, one writer: a multi-row INSERT numbers its rows one
		// after the other (AUTOINCREMENT), ending at last_insert_rowid().
		b := s.bulk(6, `INSERT INTO intake_spool (received_at, source, detail, dkim, hint, data)`, "")
		for _, it := range items {
			b.add(s.d.timeArg(normTime(it.ReceivedAt)), it.Source, it.Detail, it.DKIM, it.Hint, it.Data)
		}
		next := 0
		return b.each(func(q string, args []any) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("store: %s: %w", what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("store: %s: %w", what, err)
			}
			last, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("store: %s: %w", what, err)
			}
			if want := int64(len(args) / 6); n != want {
				return fmt.Errorf("store: %s: %d rows inserted by a statement of %d", what, n, want)
			}
			for i := range n {
				items[next].ID = last - n + 1 + i
				next++
			}
			return nil
		})
	})
}

// SpoolClaim implements Spool.
func (s *sqlStore) SpoolClaim(ctx context.Context, n int, lease time.Duration) ([]*SpoolItem, error) {
	if n <= 0 {
		return nil, nil
	}
	at := now()
	lock := ""
	if s.d.name == "postgres" {
		// Instances claiming at once take different rows, not wait.
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var items []*SpoolItem
	err := s.writeTx(ctx, "claim spooled messages", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE intake_spool SET claimed_until = $1, attempts = attempts + 1
			WHERE id IN (SELECT id FROM intake_spool WHERE claimed_until < $2 ORDER BY id LIMIT $3`+lock+`)
			RETURNING id, received_at, source, detail, dkim, hint, data, attempts, error`,
			s.d.timeArg(at.Add(lease)), s.d.timeArg(at), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it := &SpoolItem{}
			if err := rows.Scan(&it.ID, timeCol{&it.ReceivedAt}, &it.Source, &it.Detail, &it.DKIM, &it.Hint,
				&it.Data, &it.Attempts, &it.Error); err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim spooled messages: %w", err)
	}
	slices.SortFunc(items, func(a, b *SpoolItem) int { return cmp.Compare(a.ID, b.ID) })
	return items, nil
}

// SpoolDone implements Spool.
func (s *sqlStore) SpoolDone(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var q strings.Builder
	args := make([]any, len(ids))
	q.WriteString(`DELETE FROM intake_spool WHERE id IN (`)
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+1)
		args[i] = id
	}
	q.WriteString(")")
	if _, err := s.w.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("store: delete %d spooled messages: %w", len(ids), err)
	}
	return nil
}

// SpoolRetry implements Spool.
func (s *sqlStore) SpoolRetry(ctx context.Context, id int64, retryAt time.Time, reason string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE intake_spool SET claimed_until = $1, error = $2 WHERE id = $3`,
		s.d.timeArg(normTime(retryAt)), reason, id); err != nil {
		return fmt.Errorf("store: spooled message %d: retry: %w", id, err)
	}
	return nil
}

// SpoolFail implements Spool.
func (s *sqlStore) SpoolFail(ctx context.Context, id int64, reason string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE intake_spool SET claimed_until = $1, error = $2, failed = $3 WHERE id = $4`,
		s.d.timeArg(spoolNever), reason, true, id); err != nil {
		return fmt.Errorf("store: spooled message %d: mark failed: %w", id, err)
	}
	return nil
}

// SpoolFailed implements Spool.
func (s *sqlStore) SpoolFailed(ctx context.Context, limit int) ([]*SpoolItem, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, received_at, source, detail, dkim, hint, attempts, error
		FROM intake_spool WHERE failed = $1 ORDER BY id DESC LIMIT $2`, true, limit)
	if err != nil {
		return nil, fmt.Errorf("store: failed spooled messages: %w", err)
	}
	defer rows.Close()
	var items []*SpoolItem
	for rows.Next() {
		it := &SpoolItem{Failed: true}
		if err := rows.Scan(&it.ID, timeCol{&it.ReceivedAt}, &it.Source, &it.Detail, &it.DKIM, &it.Hint,
			&it.Attempts, &it.Error); err != nil {
			return nil, fmt.Errorf("store: failed spooled messages: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failed spooled messages: %w", err)
	}
	return items, nil
}

// SpoolStats implements Spool.
func (s *sqlStore) SpoolStats(ctx context.Context) (SpoolStats, error) {
	var st SpoolStats
	var oldest sql.Null[int64]
	var oldestPG sql.NullTime
	var dest any = &oldest
	if s.d.name == "postgres" {
		dest = &oldestPG
	}
	err := s.r.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN failed THEN 0 ELSE 1 END), 0),
			COALESCE(SUM(CASE WHEN failed THEN 1 ELSE 0 END), 0),
			MIN(CASE WHEN failed THEN NULL ELSE received_at END)
		FROM intake_spool`).Scan(&st.Queued, &st.Failed, dest)
	if err != nil {
		return SpoolStats{}, fmt.Errorf("store: spool counts: %w", err)
	}
	switch {
	case oldest.Valid:
		st.Oldest = time.Unix(0, oldest.V).UTC()
	case oldestPG.Valid:
		st.Oldest = oldestPG.Time.UTC()
	}
	return st, nil
}

// SpoolOldest implements Spool. Rows are queued in id order, so the first
// one not failed is the oldest (failed rows are few).
func (s *sqlStore) SpoolOldest(ctx context.Context) (time.Time, bool, error) {
	var at time.Time
	err := s.r.QueryRowContext(ctx, `SELECT received_at FROM intake_spool WHERE failed = $1 ORDER BY id LIMIT 1`, false).
		Scan(timeCol{&at})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("store: oldest spooled message: %w", err)
	}
	return at, true, nil
}
