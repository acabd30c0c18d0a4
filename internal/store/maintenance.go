package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// ErrUnsupported means that an operation does not apply to this kind of
// database (a file backup of PostgreSQL: use pg_dump).
var ErrUnsupported = errors.New("store: not supported for this database")

// Backup writes a consistent copy of an SQLite database to file while it is
// in use: VACUUM INTO reads it in one transaction, so writers go on (WAL)
// and the copy is what was committed when it began. The copy is written
// beside file and renamed into place once complete and checked; file must
// not exist. ErrUnsupported for PostgreSQL (use pg_dump).
func (s *sqlStore) Backup(ctx context.Context, file string) error {
	if s.path == "" {
		return fmt.Errorf("%w: back PostgreSQL up with pg_dump (see the README)", ErrUnsupported)
	}
	if _, err := os.Lstat(file); err == nil {
		return fmt.Errorf("store: backup: %s exists already", file)
	}
	tmp := file + ".partial"
	_ = os.Remove(tmp)
	db, err := sql.Open("sqlite", s.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer func() { _ = db.Close() }() // a read connection
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: %w", file, err)
	}
	if _, err := CheckDatabase(ctx, tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: the copy does not check: %w", file, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// DatabaseInfo says what a database file holds.
type DatabaseInfo struct {
	SchemaVersion int64 // the newest migration applied
	Domains       int64
	Reports       int64
	Orgs          int64
}

// CheckDatabase opens an SQLite database file read-only and checks it:
// PRAGMA integrity_check, the schema version (not newer than this Moat
// knows), and counts of what it holds.
func CheckDatabase(ctx context.Context, file string) (DatabaseInfo, error) {
	var info DatabaseInfo
	st, err := os.Stat(file)
	if err != nil {
		return info, err
	}
	if !st.Mode().IsRegular() {
		return info, fmt.Errorf("%s is not a file", file)
	}
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro&_pragma=query_only(1)")
	if err != nil {
		return info, err
	}
	defer func() { _ = db.Close() }() // read only
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return info, fmt.Errorf("%s is not an SQLite database: %w", file, err)
	}
	if res != "ok" {
		return info, fmt.Errorf("%s is damaged: %s", file, res)
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&info.SchemaVersion); err != nil {
		return info, fmt.Errorf("%s is not a Moat database (no schema version): %w", file, err)
	}
	latest, err := latestMigration("sqlite")
	if err != nil {
		return info, err
	}
	if info.SchemaVersion > latest {
		return info, fmt.Errorf("%s has schema version %d, made by a newer Moat (this one knows up to %d)", file, info.SchemaVersion, latest)
	}
	count := func(table string, n *int64) {
		if err == nil {
			err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(n)
		}
	}
	count("domains", &info.Domains)
	if info.SchemaVersion >= 2 {
		count("tlsrpt_reports", &info.Reports)
	}
	if info.SchemaVersion >= 3 {
		count("orgs", &info.Orgs)
	}
	if err != nil {
		return info, fmt.Errorf("%s: %w", file, err)
	}
	return info, nil
}

// Restore puts the SQLite database file in place as the database of
// dataDir, after CheckDatabase. The database it replaces is kept beside,
// renamed with its WAL as moat.db.replaced-<time>. Nothing may have the
// database open: stop moat serve first (Restore refuses while it runs).
func Restore(ctx context.Context, dataDir, file string) (DatabaseInfo, error) {
	info, err := CheckDatabase(ctx, file)
	if err != nil {
		return info, err
	}
	unlock, err := lockServe(dataDir, false)
	if err != nil {
		return info, err
	}
	defer func() { _ = unlock() }()
	path := filepath.Join(dataDir, SQLiteFile)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, path+".replaced-"+stamp+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return info, fmt.Errorf("store: restore: keeping the current database: %w", err)
		}
	}
	if err := copyFile(file, path+".restoring"); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(path+".restoring", path); err != nil {
		return info, fmt.Errorf("store: restore: %w", err)
	}
	return info, nil
}

// LockServe marks the data directory as served by this process until the
// returned function is called (or the process ends): Restore refuses to
// replace the database meanwhile. Several processes may hold it at once.
func LockServe(dataDir string) (unlock func() error, err error) {
	return lockServe(dataDir, true)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Migration is one schema migration.
type Migration struct {
	Version int64
	Name    string // the file name, such as 00003_accounts.sql
	Applied bool
}

// MigrationStatus lists the migrations of the database opts names and
// whether each is applied, without applying any.
func MigrationStatus(ctx context.Context, log *slog.Logger, opts Options) ([]Migration, error) {
	kind, dir, err := parseURL(opts)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	dia, sub := goose.DialectSQLite3, "sqlite"
	if kind == "sqlite" {
		path := filepath.Join(dir, SQLiteFile)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("store: no database at %s: %w", path, err)
		}
		db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	} else {
		dia, sub = goose.DialectPostgres, "postgres"
		db, err = sql.Open("pgx", opts.URL)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	p, err := provider(log, dia, sub, db, nil)
	if err != nil {
		return nil, err
	}
	status, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migration status: %w", err)
	}
	out := make([]Migration, len(status))
	for i, s := range status {
		out[i] = Migration{Version: s.Source.Version, Name: filepath.Base(s.Source.Path), Applied: s.State == goose.StateApplied}
	}
	return out, nil
}

// latestMigration is the newest migration this Moat has for a dialect.
func latestMigration(sub string) (int64, error) {
	entries, err := fs.ReadDir(migrations, "migrations/"+sub)
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(strings.SplitN(e.Name(), "_", 2)[0], "%d", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}
