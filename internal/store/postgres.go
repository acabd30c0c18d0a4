package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// PostgreSQL settings.
const (
	// pgMaxConns caps the connections of one instance, so that several
	// instances stay well under the server's max_connections (100 by
	// default).
	pgMaxConns = 16
	// pgMigrateLockID is the advisory lock id taken while migrating:
	// "moat" in ASCII, so that another user of advisory locks in the same
	// database does not wait for us.
	pgMigrateLockID = 0x6d6f6174
	// pgChannel is the NOTIFY channel of committed changes.
	pgChannel = "moat_changes"
)

func openPostgres(ctx context.Context, log *slog.Logger, url string) (_ Store, err error) {
	// The URL is not in the errors: it may hold a password. pgx's own errors
	// name host, user and database.
	fail := func(err error) error { return fmt.Errorf("store: open postgres: %w", err) }
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fail(err)
	}
	if _, set := cfg.RuntimeParams["max_parallel_workers_per_gather"]; !set {
		// Moat's queries read a few thousand rows through indexes: starting
		// parallel workers for them costs more than it saves (a dashboard
		// rollup query measured 52 ms with two workers, 12 ms without, on
		// 2 cores). A URL parameter of the same name overrides it.
		cfg.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns / 2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	defer func() {
		if err != nil {
			_ = db.Close() // the open error is what the caller needs
		}
	}()
	if err := db.PingContext(ctx); err != nil {
		return nil, fail(err)
	}
	// Instances starting together: the first takes a session advisory lock
	// and migrates; the others wait on the lock (in the server, not by
	// polling), then find nothing to do. ctx bounds the wait.
	if err := migrateLocked(ctx, log, db); err != nil {
		return nil, fail(err)
	}
	return &sqlStore{d: postgresDialect(), r: db, w: db, log: log, url: url}, nil
}

// migrateLocked migrates under the advisory lock pgMigrateLockID, held by
// one connection of db for the duration.
func migrateLocked(ctx context.Context, log *slog.Logger, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, pgMigrateLockID); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, pgMigrateLockID); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migration unlock: %w", uerr))
		}
	}()
	return migrate(ctx, log, goose.DialectPostgres, "postgres", db, nil)
}

func postgresDialect() dialect {
	return dialect{
		name:   "postgres",
		notify: `SELECT pg_notify('` + pgChannel + `', '')`,
		// Concurrent UpdateDomain calls on one domain queue on the row lock;
		// under READ COMMITTED each then reads the row its predecessor
		// committed, so no update is lost.
		forUpdate: " FOR UPDATE",
		timeArg:   func(t time.Time) any { return t },
		// Lock expiry uses the database's clock: instances on several
		// machines share these locks, and their clocks may differ.
		tryLock: `INSERT INTO locks (name, owner, expires)
			VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
			WHERE locks.expires <= now() OR locks.owner = excluded.owner
			RETURNING owner`,
		tryLockArgs: func(name, owner string, ttl time.Duration, _ time.Time) []any {
			return []any{name, owner, max(ttl.Microseconds(), 1)}
		},
		lockRollups:       `SELECT pg_advisory_xact_lock($1)`,
		lockRollupsShared: `SELECT pg_advisory_xact_lock_shared($1)`,
	}
}
