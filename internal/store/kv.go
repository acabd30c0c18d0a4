package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Keys are slash-separated paths, as in certmagic's Storage. A key range
// "everything under dir/" is key >= "dir/" AND key < "dir0" ('0' follows '/'
// in byte order); both databases compare keys bytewise (SQLite's BINARY
// collation, COLLATE "C" on PostgreSQL), so no LIKE patterns and no escaping.

// under returns the bounds of the keys under prefix+"/".
func under(prefix string) (lo, hi string) {
	return prefix + "/", prefix + "0"
}

// Put implements Store.
func (s *sqlStore) Put(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: put: empty key")
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO kv (key, value, modified) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`,
		key, value, s.d.timeArg(now()))
	if err != nil {
		return fmt.Errorf("store: put key %q: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: key %q", ErrNotFound, key)
	} else if err != nil {
		return nil, fmt.Errorf("store: get key %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Stat implements Store.
func (s *sqlStore) Stat(ctx context.Context, key string) (KeyInfo, error) {
	ki := KeyInfo{Key: key}
	err := s.r.QueryRowContext(ctx, `SELECT length(value), modified FROM kv WHERE key = $1`, key).
		Scan(&ki.Size, timeCol{&ki.Modified})
	if errors.Is(err, sql.ErrNoRows) {
		return KeyInfo{}, fmt.Errorf("%w: key %q", ErrNotFound, key)
	} else if err != nil {
		return KeyInfo{}, fmt.Errorf("store: stat key %q: %w", key, err)
	}
	return ki, nil
}

// Delete implements Store.
func (s *sqlStore) Delete(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("store: delete: empty key")
	}
	lo, hi := under(key)
	res, err := s.w.ExecContext(ctx, `DELETE FROM kv WHERE key = $1 OR (key >= $2 AND key < $3)`, key, lo, hi)
	if err != nil {
		return fmt.Errorf("store: delete key %q: %w", key, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete key %q: %w", key, err)
	} else if n == 0 {
		return fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return nil
}

// List implements Store. prefix "" (or "/") lists from the root; a trailing
// slash on prefix is ignored. The keys come sorted bytewise.
func (s *sqlStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	prefix = strings.TrimRight(prefix, "/")
	var (
		rows *sql.Rows
		err  error
		base string // what each key starts with
	)
	if prefix == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT key FROM kv ORDER BY key`)
	} else {
		lo, hi := under(prefix)
		base = lo
		rows, err = s.r.QueryContext(ctx, `SELECT key FROM kv WHERE key >= $1 AND key < $2 ORDER BY key`, lo, hi)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list keys under %q: %w", prefix, err)
	}
	defer rows.Close()
	var keys []string
	seen := make(map[string]bool)
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("store: list keys under %q: %w", prefix, err)
		}
		if !recursive {
			// The direct child: base plus the first path element after it.
			if i := strings.IndexByte(k[len(base):], '/'); i >= 0 {
				k = k[:len(base)+i]
			}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys under %q: %w", prefix, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys under %q", ErrNotFound, prefix)
	}
	slices.Sort(keys) // children cut from sorted keys need not be sorted
	return keys, nil
}

// TryLock implements Store. The lock row is taken when it is absent, expired,
// or held by owner, in one statement, so concurrent callers cannot both win.
func (s *sqlStore) TryLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	switch {
	case name == "":
		return errors.New("store: lock: empty lock name")
	case owner == "":
		return fmt.Errorf("store: lock %q: empty owner", name)
	case ttl <= 0:
		return fmt.Errorf("store: lock %q: ttl %v is not positive", name, ttl)
	}
	var got string
	err := s.w.QueryRowContext(ctx, s.d.tryLock, s.d.tryLockArgs(name, owner, ttl, time.Now())...).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: lock %q", ErrLocked, name)
	} else if err != nil {
		return fmt.Errorf("store: lock %q for %q: %w", name, owner, err)
	}
	return nil
}

// Unlock implements Store. A lock of owner that expired but was not taken by
// anyone else is released without error.
func (s *sqlStore) Unlock(ctx context.Context, name, owner string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
	if err != nil {
		return fmt.Errorf("store: unlock %q for %q: %w", name, owner, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: unlock %q for %q: %w", name, owner, err)
	} else if n == 0 {
		return fmt.Errorf("%w: lock %q held by %q", ErrNotFound, name, owner)
	}
	return nil
}
