// Package cluster holds the tests of Moat as several machines run it:
// two or three real `moat serve` processes, built once from cmd/moat, on
// one throwaway PostgreSQL database (or, for the full-disk test, SQLite on
// a small tmpfs), with every listener on 127.0.0.1 port 0 and an in-process
// Pebble ACME server. They prove what the README's deployment section
// promises: a change made anywhere is served everywhere within a second
// (LISTEN/NOTIFY), two instances asked for the same new name make one ACME
// order, report intake stays deduplicated, and faults (SIGKILL of an
// instance, PostgreSQL stopped, a full disk, ACME down) lose no
// acknowledged report and do not stop DNS and the policy HTTPS server.
//
// It has no code of its own, and its tests run on Linux only (they use
// Pdeathsig, mount namespaces and statfs). `go test -short` skips it; a missing tool
// (PostgreSQL, unshare, root) skips the test that needs it with the
// reason, or fails it when MOAT_REQUIRE_FAULTS=1 (CI).
package cluster
