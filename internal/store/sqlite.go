package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // driver "sqlite"
)

// SQLite layout and settings.
//
// Durability: journal_mode=WAL with synchronous=FULL. WAL with NORMAL already
// keeps every acknowledged commit across a crash of the process; FULL also
// keeps it across a power loss or kernel crash, at the price of one fsync of
// the WAL per commit. Writes here are rare (domain changes, certificates), and
// Moat acknowledges what it stored (DESIGN: "acknowledged only after
// committed"), so FULL.
//
// Concurrency: one writer per process (a pool of one connection whose
// transactions start with BEGIN IMMEDIATE, so a read-modify-write
// transaction takes the write lock up front and never fails with
// SQLITE_BUSY when it would upgrade), and a pool of readers that WAL lets
// run beside the writer. Other processes on the same file (the CLI while
// `moat serve` runs) wait for the write lock up to busy_timeout.
const sqliteBusyTimeout = 10 * time.Second

// SQLiteFile is the database file's name in the data directory.
const SQLiteFile = "moat.db"

func sqliteDSN(path string, write bool) string {
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
	}
	if write {
		// temp_store=MEMORY keeps statement journals of multi-row
		// inserts off a temporary file: about 6 fewer writes per stored
		// report (measured with strace under the intake benchmark).
		// wal_autocheckpoint: a checkpoint (in the committing writer)
		// every 8,192 WAL pages instead of 1,000. A TLS report of many
		// failure details upserts hundreds of rollup rows (tlsrpt_daily
		// and the derived tables) whose pages every commit rewrites; they
		// are copied to the database once per checkpoint, so eight times
		// fewer copies (checkpoints were 11% of the CPU of the SMTP intake
		// of 20 KB reports). The WAL file grows to about 32 MiB between
		// checkpoints. (A cache_size of 32 MiB also cut the page reads of
		// those upserts, 16% of that CPU, but raised the peak RSS of
		// importing a report of a million records from 120 to 518 MB: not
		// taken.)
		q = append(q, "_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_pragma=temp_store(MEMORY)",
			"_pragma=wal_autocheckpoint(8192)", "_txlock=immediate")
	} else {
		// Readers never write; query_only turns a mistake into an error.
		q = append(q, "_pragma=query_only(1)")
	}
	return path + "?" + strings.Join(q, "&")
}

func openSQLite(ctx context.Context, log *slog.Logger, dir string) (_ Store, err error) {
	path := filepath.Join(dir, SQLiteFile)
	fail := func(err error) error { return fmt.Errorf("store: open sqlite %s: %w", path, err) }
	if strings.Contains(path, "?") {
		return nil, fail(errors.New("the path must not contain '?'"))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fail(fmt.Errorf("create data directory: %w", err))
	}
	if err := createPrivate(path); err != nil {
		return nil, fail(err)
	}

	// Processes opening the database together set it up one after the
	// other: switching a new database to WAL and migrating it take locks
	// that SQLite does not always wait for (SQLITE_BUSY despite
	// busy_timeout), and goose creates its version table before taking any
	// lock of its own.
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return nil, fail(err)
	}
	var w *sql.DB
	err = initSQLite(ctx, path)
	if err == nil {
		w, err = setupWriter(ctx, log, path)
	}
	if uerr := unlock(); err == nil && uerr != nil {
		_ = w.Close()
		err = uerr
	}
	if err != nil {
		return nil, fail(err)
	}
	defer func() {
		if err != nil {
			_ = w.Close() // the open error is what the caller needs
		}
	}()

	r, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fail(err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	r.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	if err := r.PingContext(ctx); err != nil {
		_ = r.Close()
		return nil, fail(err)
	}
	return &sqlStore{d: sqliteDialect(), r: r, w: w, log: log, path: path}, nil
}

// initSQLite sets up a new, empty database file with
// auto_vacuum=INCREMENTAL, which SQLite takes only before the first page
// is written, so that retention can give the pages it frees back to the
// file system (PRAGMA incremental_vacuum); an older database is converted
// by EnableIncrementalVacuum. Setting it on a database that has pages
// would take the write lock at every open.
func initSQLite(ctx context.Context, path string) error {
	if st, err := os.Stat(path); err != nil || st.Size() > 0 {
		return err
	}
	db, err := sql.Open("sqlite", path+"?_auto_vacuum=INCREMENTAL&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	// The connection sets both pragmas; WAL writes the first page.
	var mode int
	err = db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil && mode != 2 {
		err = fmt.Errorf("auto_vacuum is %d on a new database, want 2 (incremental)", mode)
	}
	return err
}

// setupWriter opens the write connection, which puts the database in WAL
// mode, and migrates the schema.
func setupWriter(ctx context.Context, log *slog.Logger, path string) (_ *sql.DB, err error) {
	// sql.Open connects to nothing: it finds the registered driver, which
	// the writer's connector wraps in a statement cache (stmtcache.go).
	reg, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	drv := reg.Driver()
	if err := reg.Close(); err != nil {
		return nil, err
	}
	w := sql.OpenDB(&cachingConnector{dsn: sqliteDSN(path, true), drv: drv})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0) // one connection for the life of the store
	w.SetConnMaxLifetime(0)
	defer func() {
		if err != nil {
			_ = w.Close() // the setup error is what the caller needs
		}
	}()
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Some file systems (network ones) cannot do WAL; SQLite then stays
		// in its rollback journal, which is correct but lets readers and
		// the writer block each other.
		log.Warn("store: sqlite is not in WAL mode; readers and writers will block each other", "path", path, "journal_mode", mode)
	}
	if err := migrate(ctx, log, goose.DialectSQLite3, "sqlite", w, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// createPrivate creates the database file with mode 0600 when it does not
// exist, so that SQLite (which would use 0644) and its -wal and -shm files
// (which copy the database file's mode) are private. An existing file is
// never opened here: closing any descriptor of a database file drops the
// POSIX locks SQLite holds on it in this process.
func createPrivate(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created by someone else just now
	} else if err != nil {
		return err
	}
	return f.Close()
}

func sqliteDialect() dialect {
	return dialect{
		name:      "sqlite",
		forUpdate: "",
		timeArg:   func(t time.Time) any { return t.UnixNano() },
		tryLock: `INSERT INTO locks (name, owner, expires) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		WHERE locks.expires <= $4 OR locks.owner = excluded.owner
		RETURNING owner`,
		// SQLite lives on one machine: every process shares its clock.
		tryLockArgs: func(name, owner string, ttl time.Duration, now time.Time) []any {
			return []any{name, owner, now.Add(ttl).UnixNano(), now.UnixNano()}
		},
	}
}
