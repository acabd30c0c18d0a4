// Package pgtest runs a throwaway PostgreSQL server for tests: one server per
// test binary, started on first use, and a fresh, empty database per test (a
// schema of its own, see Server.NewDatabase). It uses
// the PostgreSQL binaries installed on the machine (initdb and postgres, from
// PATH or /usr/lib/postgresql/*/bin); the server listens on 127.0.0.1 and a
// Unix socket in its temporary directory only, with fsync off.
//
// Use:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.NewDatabase(t) // "postgres://postgres@127.0.0.1:port/moat?sslmode=disable&search_path=t1_testsomething"
//		...
//	}
//
// When the binaries are missing, NewDatabase and Start skip the test with
// "pgtest: PostgreSQL not available: <reason>"; with the environment variable
// MOAT_REQUIRE_POSTGRES=1 (CI sets it) they fail it instead. When running as
// root, the server runs as the "postgres" user (initdb and postgres refuse
// root).
//
// A test that stops the database under its code (an outage) takes a server
// of its own with Own, and stops and starts it with Stop and Restart.
//
// The server is shared by the tests of one binary through package state (a
// sync.Once): that is the point of the package. Main stops it and removes its
// directory after the tests; without Main the server still dies with the
// test process on Linux, but its directory is left behind.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

// testDB is the database that holds the schemas NewDatabase hands out.
const testDB = "moat"

// RequireEnv is the environment variable that turns a missing PostgreSQL
// from a skip into a failure when set to "1".
const RequireEnv = "MOAT_REQUIRE_POSTGRES"

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir   string // temporary directory: data/, the socket, postgres.log
	port  int
	admin *sql.DB // connected to testDB, creates and drops schemas

	// What launch needs to start postgres again (Own, Restart).
	bins          binaries
	cred          *credential
	data, logPath string

	cmd    *exec.Cmd     // the running postgres; replaced by Restart
	exited chan struct{} // closed when cmd has exited

	mu      sync.Mutex
	n       int   // databases created so far
	waitErr error // cmd's exit, set before exited is closed
}

// shared is the server of this test binary.
var shared struct {
	once        sync.Once
	srv         *Server
	err         error
	unavailable string // why PostgreSQL cannot run here, when it cannot
}

// Main runs the tests of the package and then stops the server, if a test
// started one. Call it from TestMain; the test binary exits with the tests'
// result when TestMain returns.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it runs the tests, stops the shared server
// and returns the exit code, for a TestMain with cleanup of its own.
func Run(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			code = max(code, 1)
		}
	}
	return code
}

// Start returns the shared server, starting it on first use. It skips t
// (or fails it, when MOAT_REQUIRE_POSTGRES=1) if PostgreSQL is not installed,
// and fails t if it is installed but does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var reason string
		shared.srv, reason, shared.err = start(ctx)
		shared.unavailable = reason
	})
	if shared.unavailable != "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("pgtest: PostgreSQL not available: %s (%s=1 requires it)", shared.unavailable, RequireEnv)
		}
		t.Skipf("pgtest: PostgreSQL not available: %s", shared.unavailable)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv
}

// Own starts a PostgreSQL server of t's own, not shared with other tests,
// for a test that stops and starts it (Stop, Restart: an outage). It skips
// or fails t as Start does, and is stopped and removed when t's cleanups
// run. It costs an initdb, about a second.
func Own(t testing.TB) *Server {
	t.Helper()
	Start(t) // the same skip or failure when PostgreSQL is not installed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, reason, err := start(ctx)
	if reason != "" || err != nil {
		t.Fatalf("pgtest: a server of its own: %s%v", reason, err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// Stop stops the server as `pg_ctl stop -m fast` does (SIGINT: clients
// are disconnected, the server exits cleanly) and waits for it to exit;
// its data stays. Only for a server of Own.
func (s *Server) Stop() error {
	if err := terminate(s.cmd.Process); err != nil {
		return fmt.Errorf("pgtest: stop postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(15 * time.Second):
		return errors.New("pgtest: postgres did not stop within 15s")
	}
}

// Restart starts the server again after Stop, on the same port with the
// same data, and waits until it accepts connections.
func (s *Server) Restart() error {
	select {
	case <-s.exited:
	default:
		return errors.New("pgtest: Restart: the server is running")
	}
	if err := s.launch(); err != nil {
		return fmt.Errorf("pgtest: restart: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitReady(ctx, s, s.admin); err != nil {
		return fmt.Errorf("pgtest: restart: %w", err)
	}
	return nil
}

// NewDatabase creates an empty database on the shared server and returns
// its URL. It is Start(t).NewDatabase(t).
func NewDatabase(t testing.TB) string {
	t.Helper()
	return Start(t).NewDatabase(t)
}

// NewDatabase creates an empty database and returns its URL. To keep tests
// fast it is a schema of its own in the server's database "moat" (CREATE
// DATABASE costs 0.1 to 0.5 s here, CREATE SCHEMA milliseconds), made the
// only schema on the URL's search_path: to a client, tables, sequences and
// everything unqualified it creates are its own, and it sees none of other
// tests'. What lives per database in PostgreSQL is shared: advisory locks
// (so parallel tests that migrate queue behind each other's goose lock),
// extensions, pg_catalog views that list every schema (filter them with
// current_schema()). It is dropped when t's cleanups run (after any
// registered later, such as closing a store on it).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d_%s", s.n, identPart(t.Name()))
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, `CREATE SCHEMA "`+name+`"`); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+name+`" CASCADE`); err != nil {
			t.Logf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return s.url(testDB, name)
}

// url returns the URL of database db on the server, with schema (if not
// empty) as the only schema on the search path.
func (s *Server) url(db, schema string) string {
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
	if schema != "" {
		u += "&search_path=" + schema
	}
	return u
}

// identPart turns a test name into something safe inside a quoted
// identifier, short enough for PostgreSQL's 63-byte limit.
func identPart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

// stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) stop() error {
	var errs []error
	if err := s.admin.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close admin connection: %w", err))
	}
	select {
	case <-s.exited: // stopped already (Stop)
	default:
		if err := terminate(s.cmd.Process); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w", err))
		}
	}
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill() // it did not stop in time; the wait below reports that
		<-s.exited
		errs = append(errs, errors.New("postgres did not stop within 15s; killed"))
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}
