package pgtest

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestNewDatabase checks that each call gives a separate, working database.
func TestNewDatabase(t *testing.T) {
	t.Parallel()
	srv := Start(t)
	u1, u2 := srv.NewDatabase(t), srv.NewDatabase(t)
	if u1 == u2 {
		t.Fatalf("two NewDatabase calls returned the same URL %s", u1)
	}
	for _, u := range []string{u1, u2} {
		if !strings.HasPrefix(u, "postgres://postgres@127.0.0.1:") {
			t.Errorf("URL %s is not on 127.0.0.1", u)
		}
	}
	db1, err := sql.Open("pgx", u1)
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	db2, err := sql.Open("pgx", u2)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := db1.ExecContext(t.Context(), `CREATE TABLE only_here (x int)`); err != nil {
		t.Fatalf("create table in the first database: %v", err)
	}
	if _, err := db2.ExecContext(t.Context(), `CREATE TABLE only_here (y text)`); err != nil {
		t.Fatalf("create a table of the same name in the second database: %v", err)
	}
	if _, err := db2.ExecContext(t.Context(), `INSERT INTO only_here (y) VALUES ('two')`); err != nil {
		t.Fatalf("the second database's table is not its own: %v", err)
	}
	var n int
	if err := db1.QueryRowContext(t.Context(), `SELECT count(*) FROM only_here`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the first database's table has %d rows written through the second", n)
	}
	// The server listens on loopback only.
	var addr string
	if err := db1.QueryRowContext(t.Context(), `SHOW listen_addresses`).Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", addr)
	}
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	exe := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	lib := filepath.Join(root, "lib")
	for _, v := range []string{"9.6", "15", "13"} {
		exe(filepath.Join(lib, v, "bin", "initdb"))
		exe(filepath.Join(lib, v, "bin", "postgres"))
	}
	// A PATH entry with initdb linked to an installation's.
	pathDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(lib, "13", "bin", "initdb"), filepath.Join(pathDir, "initdb")); err != nil {
		t.Fatal(err)
	}
	// initdb without postgres.
	lonely := filepath.Join(root, "lonely")
	exe(filepath.Join(lonely, "initdb"))

	tests := []struct {
		path, lib  string
		initdb     string
		postgres   string
		wantReason string
	}{
		{"", lib, filepath.Join(lib, "15", "bin", "initdb"), filepath.Join(lib, "15", "bin", "postgres"), ""},
		{pathDir, lib, filepath.Join(pathDir, "initdb"), filepath.Join(lib, "13", "bin", "postgres"), ""},
		{lonely, lib, "", "", "no postgres beside it"},
		{filepath.Join(root, "empty"), filepath.Join(root, "nolib"), "", "", "initdb not found in PATH or " + filepath.Join(root, "nolib")},
	}
	for _, tc := range tests {
		b, reason := findBinaries(tc.path, tc.lib)
		if tc.wantReason != "" {
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("findBinaries(%q, %q) reason %q, want %q", tc.path, tc.lib, reason, tc.wantReason)
			}
			continue
		}
		if reason != "" || b.initdb != tc.initdb || b.postgres != tc.postgres {
			t.Errorf("findBinaries(%q, %q) = %+v, %q; want %s and %s", tc.path, tc.lib, b, reason, tc.initdb, tc.postgres)
		}
	}
}

func TestIdentPart(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"TestPostgres/KVList":    "testpostgres_kvlist",
		`a"b;DROP`:               "a_b_drop",
		strings.Repeat("x", 100): strings.Repeat("x", 40),
		"Test/üñí":               "test____",
	} {
		if got := identPart(in); got != want {
			t.Errorf("identPart(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOwnStopRestart: a server of the test's own stops (clients get
// errors) and starts again on the same port with its data.
func TestOwnStopRestart(t *testing.T) {
	t.Parallel()
	srv := Own(t)
	u := srv.NewDatabase(t)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(t.Context()); err == nil {
		t.Fatal("the stopped server answered")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRowContext(t.Context(), `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the restart: %d, %v", v, err)
	}
	if err := srv.Restart(); err == nil {
		t.Error("Restart of a running server did not fail")
	}
}
