package store

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSQLiteSettings checks the pragmas each pool runs with and the file
// modes of what Open creates.
func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := Open(t.Context(), nil, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	s := st.(*sqlStore)

	pragma := func(db *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, tc := range []struct {
		pool string
		db   *sql.DB
		want map[string]string
	}{
		// synchronous 2 is FULL.
		{"writer", s.w, map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "0"}},
		{"reader", s.r, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "1"}},
	} {
		for name, want := range tc.want {
			if got := pragma(tc.db, name); !strings.EqualFold(got, want) {
				t.Errorf("%s: PRAGMA %s = %s, want %s", tc.pool, name, got, want)
			}
		}
	}
	if _, err := s.r.ExecContext(t.Context(), `DELETE FROM kv`); err == nil {
		t.Error("a write through the reader pool succeeded, want query_only to refuse it")
	}
	if n := s.w.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool allows %d connections, want 1", n)
	}

	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "moat.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}

// TestSQLiteImmediate checks that write transactions take the write lock
// when they begin: while one is open, a second connection cannot begin one.
// That is what keeps read-modify-write transactions from failing with
// SQLITE_BUSY halfway (a deferred transaction would fail at its first write).
func TestSQLiteImmediate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := Open(t.Context(), nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tx, err := a.(*sqlStore).w.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	// A second instance with a short busy timeout, so the refusal is quick.
	other, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile)+"?_pragma=busy_timeout(50)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tx2, err := other.BeginTx(ctx, nil)
	if err == nil {
		_ = tx2.Rollback()
		t.Fatal("a second write transaction began while the first was open, want SQLITE_BUSY")
	}
	if !strings.Contains(err.Error(), "SQLITE_BUSY") {
		t.Errorf("second BEGIN: %v, want SQLITE_BUSY", err)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts    Options
		kind    string
		dir     string
		wantErr string // substring; "" for success
	}{
		{Options{DataDir: "/var/lib/moat"}, "sqlite", "/var/lib/moat", ""},
		{Options{DataDir: "d", URL: "sqlite:"}, "sqlite", "d", ""},
		{Options{DataDir: "d", URL: "sqlite:/srv/moat"}, "sqlite", "/srv/moat", ""},
		{Options{DataDir: "d", URL: "sqlite:///srv/moat"}, "sqlite", "/srv/moat", ""},
		{Options{DataDir: "d", URL: "sqlite:rel/dir"}, "sqlite", "rel/dir", ""},
		{Options{DataDir: "d", URL: "SQLite:"}, "sqlite", "d", ""},
		{Options{URL: "postgres://u:secret@db.example/moat"}, "postgres", "", ""},
		{Options{URL: "postgresql://db.example/moat?sslmode=disable"}, "postgres", "", ""},
		{Options{}, "", "", "no data directory"},
		{Options{URL: "sqlite:"}, "", "", "no data directory"},
		{Options{URL: "sqlite://host/dir", DataDir: "d"}, "", "", "not a host"},
		{Options{URL: "sqlite:/dir?mode=ro"}, "", "", "no parameters"},
		{Options{URL: "mysql://u:secret@db.example/moat"}, "", "", `unknown scheme "mysql"`},
		{Options{URL: "/just/a/path"}, "", "", "no scheme"},
		{Options{URL: "postgres://u:secret@db.example:badport/x"}, "", "", "does not parse"},
	}
	for _, tc := range tests {
		kind, dir, err := parseURL(tc.opts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseURL(%+v) error %v, want one containing %q", tc.opts, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("parseURL(%+v) error %q shows the password", tc.opts, err)
			}
			continue
		}
		if err != nil || kind != tc.kind || dir != tc.dir {
			t.Errorf("parseURL(%+v) = %q, %q, %v; want %q, %q", tc.opts, kind, dir, err, tc.kind, tc.dir)
		}
	}
}

// TestOpenErrors checks that Open names the problem.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := t.TempDir()
	if err := os.WriteFile(filepath.Join(notDB, SQLiteFile), []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{DataDir: file}, "store: open sqlite " + filepath.Join(file, SQLiteFile)},
		{Options{DataDir: notDB}, "store: open sqlite " + filepath.Join(notDB, SQLiteFile)},
		{Options{URL: "ftp://x"}, `unknown scheme "ftp"`},
	} {
		s, err := Open(t.Context(), nil, tc.opts)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", tc.opts)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want it to contain %q", tc.opts, err, tc.want)
		}
	}
}

// FuzzParseURL: whatever the operator writes, parseURL does not panic,
// accepts only the documented forms, and never echoes a password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"", "sqlite:", "sqlite:/srv/moat", "sqlite:///srv", "postgres://u:pw@h/db?sslmode=disable",
		"postgresql://h", "mysql://u:pw@h", "sqlite://u:pw@h/x", "%zz", "postgres://u:pw@h:x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		kind, _, err := parseURL(Options{DataDir: "d", URL: raw})
		if err != nil {
			if u, perr := url.Parse(strings.TrimSpace(raw)); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 8 && strings.Contains(err.Error(), pw) {
					// The same text may stand elsewhere in the URL (host,
					// path), where showing it is right: only a password that
					// appears nowhere but in the user information is a leak.
					rest := *u
					rest.User = url.User(u.User.Username())
					if !strings.Contains(rest.String(), pw) {
						t.Errorf("error %q shows the password %q", err, pw)
					}
				}
			}
			return
		}
		if kind != "sqlite" && kind != "postgres" {
			t.Errorf("parseURL(%q) kind %q", raw, kind)
		}
	})
}
