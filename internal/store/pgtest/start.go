package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// binaries are the PostgreSQL programs pgtest runs.
type binaries struct {
	initdb, postgres string
}

// findBinaries looks for initdb and postgres in the directories of path (a
// PATH value), then in the highest version under libRoot
// (/usr/lib/postgresql/<version>/bin, where Debian and Ubuntu put them
// without linking them into PATH). It returns why it found none.
func findBinaries(path, libRoot string) (binaries, string) {
	var dirs []string
	for _, d := range filepath.SplitList(path) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	versions, _ := filepath.Glob(filepath.Join(libRoot, "*", "bin"))
	// Highest version first: "15" before "9.6".
	slices.SortFunc(versions, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	dirs = append(dirs, versions...)
	for _, d := range dirs {
		initdb := filepath.Join(d, "initdb")
		if !isExecutable(initdb) {
			continue
		}
		// postgres must come from the same installation as initdb; resolve
		// symlinks (/usr/local/bin/initdb → /usr/lib/postgresql/15/bin/initdb).
		resolved, err := filepath.EvalSymlinks(initdb)
		if err != nil {
			continue
		}
		for _, pd := range []string{d, filepath.Dir(resolved)} {
			if p := filepath.Join(pd, "postgres"); isExecutable(p) {
				return binaries{initdb: initdb, postgres: p}, ""
			}
		}
		return binaries{}, fmt.Sprintf("found %s but no postgres beside it", initdb)
	}
	return binaries{}, fmt.Sprintf("initdb not found in PATH or %s", filepath.Join(libRoot, "*", "bin"))
}

// compareVersions compares dotted version numbers numerically.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// start runs initdb and postgres. A non-empty reason means PostgreSQL cannot
// run on this machine (skip); an error means it should have and did not.
func start(ctx context.Context) (_ *Server, reason string, err error) {
	bins, reason := findBinaries(os.Getenv("PATH"), "/usr/lib/postgresql")
	if reason != "" {
		return nil, reason, nil
	}
	// initdb and postgres refuse to run as root: run them as "postgres".
	var cred *credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Sprintf("running as root and there is no user \"postgres\" to run %s as (%v)", bins.postgres, err), nil
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, "", fmt.Errorf("user postgres has uid %q gid %q, not numbers", u.Uid, u.Gid)
		}
		cred = &credential{uid: uint32(uid), gid: uint32(gid)}
	}

	dir, err := os.MkdirTemp("", "moat-pgtest-")
	if err != nil {
		return nil, "", fmt.Errorf("create temporary directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir) // the start error is what matters
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.uid), int(cred.gid)); err != nil {
			return nil, "", fmt.Errorf("chown %s to user postgres: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "postgres.log")

	initdb := exec.CommandContext(ctx, bins.initdb, "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = sysProcAttr(cred, false)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("%s -D %s: %w\n%s", bins.initdb, data, err, tail(out, 2000))
	}

	// A free port can be taken by someone else before postgres binds it;
	// try a few.
	var lastErr error
	for range 3 {
		s, err := run(ctx, bins, cred, dir, data, logPath)
		if err == nil {
			return s, "", nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", lastErr
}

// run starts postgres on a free port and waits until it accepts connections.
func run(ctx context.Context, bins binaries, cred *credential, dir, data, logPath string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, port: port, bins: bins, cred: cred, data: data, logPath: logPath}
	if err := s.launch(); err != nil {
		return nil, err
	}
	admin, err := sql.Open("pgx", s.url("postgres", ""))
	if err == nil {
		err = waitReady(ctx, s, admin)
	}
	if err == nil {
		err = useTestDB(ctx, s, &admin)
	}
	if err != nil {
		if admin != nil {
			_ = admin.Close()
		}
		_ = terminate(s.cmd.Process)
		<-s.exited
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres on 127.0.0.1:%d: %w\n%s", port, err, tail(log, 2000))
	}
	s.admin = admin
	return s, nil
}

// launch starts the postgres process on s.port; it does not wait for it
// to accept connections.
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", s.logPath, err)
	}
	defer func() { _ = logf.Close() }() // the child has its own copy
	cmd := exec.Command(s.bins.postgres,
		"-D", s.data,
		"-p", strconv.Itoa(s.port),
		"-k", s.dir, // Unix socket in our directory, not /var/run/postgresql
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(s.cred, true)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bins.postgres, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() { // owner: s; ends when postgres exits (s.stop, s.Stop)
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	return nil
}

func waitReady(ctx context.Context, s *Server, admin *sql.DB) error {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := admin.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			s.mu.Lock()
			werr := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("exited before accepting connections: %w", werr)
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// useTestDB creates testDB and points *admin at it.
func useTestDB(ctx context.Context, s *Server, admin **sql.DB) error {
	if _, err := (*admin).ExecContext(ctx, `CREATE DATABASE `+testDB); err != nil {
		return fmt.Errorf("create database %s: %w", testDB, err)
	}
	db, err := sql.Open("pgx", s.url(testDB, ""))
	if err != nil {
		return err
	}
	if err := (*admin).Close(); err != nil {
		_ = db.Close()
		return err
	}
	*admin = db
	return db.PingContext(ctx)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// tail returns the last n bytes of b, for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// terminate asks postgres for a fast shutdown.
func terminate(p *os.Process) error {
	if p == nil {
		return errors.New("no process")
	}
	if err := p.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
