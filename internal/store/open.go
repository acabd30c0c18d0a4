package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Options says which database Open uses.
type Options struct {
	// DataDir is the data directory holding the SQLite database file
	// moat.db. It is created with mode 0700 when absent. Required when URL
	// selects SQLite (the zero value of URL does); ignored for PostgreSQL.
	DataDir string

	// URL selects the database. Empty or "sqlite:": SQLite in DataDir.
	// "sqlite:/some/dir" (or "sqlite:///some/dir"): SQLite in that directory
	// instead of DataDir. "postgres://..." or "postgresql://...": PostgreSQL,
	// with the connection parameters pgx understands (sslmode,
	// connect_timeout, search_path, ...); the pool size is Moat's (16
	// connections per instance), pgxpool's pool_* parameters do not apply.
	// Any other scheme is an error.
	URL string
}

// Open opens the database that opts names and brings its schema up to date
// (migrations run inside Open; on PostgreSQL several instances starting at
// once migrate once, the others wait). log receives a line when migrations
// were applied; nil discards. Close the returned Store when done.
func Open(ctx context.Context, log *slog.Logger, opts Options) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind, dir, err := parseURL(opts)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		return openSQLite(ctx, log, dir)
	default:
		return openPostgres(ctx, log, opts.URL)
	}
}

// parseURL returns "sqlite" and the data directory, or "postgres".
func parseURL(opts Options) (kind, dir string, err error) {
	raw := strings.TrimSpace(opts.URL)
	if raw == "" {
		if opts.DataDir == "" {
			return "", "", fmt.Errorf("store: open sqlite: no data directory given (Options.DataDir is empty)")
		}
		return "sqlite", opts.DataDir, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Do not echo the URL: it may hold a password.
		return "", "", fmt.Errorf("store: open: database URL does not parse: %w", redactErr(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "sqlite":
		if u.Host != "" || u.User != nil {
			return "", "", fmt.Errorf("store: open: database URL %q: sqlite takes a directory path, not a host", redact(u))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return "", "", fmt.Errorf("store: open: database URL %q: sqlite takes no parameters", redact(u))
		}
		dir := u.Path
		if dir == "" {
			dir = u.Opaque
		}
		if dir == "" {
			dir = opts.DataDir
		}
		if dir == "" {
			return "", "", fmt.Errorf("store: open sqlite: no data directory given (URL %q has no path and Options.DataDir is empty)", redact(u))
		}
		return "sqlite", dir, nil
	case "postgres", "postgresql":
		return "postgres", "", nil
	case "":
		return "", "", fmt.Errorf("store: open: database URL %q has no scheme: want sqlite:, postgres:// or postgresql://", redact(u))
	default:
		return "", "", fmt.Errorf("store: open: database URL %q: unknown scheme %q: want sqlite:, postgres:// or postgresql://", redact(u), u.Scheme)
	}
}

// redact returns u without its password, for error messages.
func redact(u *url.URL) string {
	return u.Redacted()
}

// redactErr drops the URL that url.Parse puts into its errors.
func redactErr(err error) error {
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
