//go:build linux

package cluster

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// requireEnv turns a missing tool (PostgreSQL, unshare, root) from a skip
// into a failure when set to "1".
const requireEnv = "MOAT_REQUIRE_FAULTS"

// moatBin is the `moat` binary the tests run, built once by TestMain; ""
// under -short, where every test skips.
var moatBin string

// TestMain builds cmd/moat once into a temporary directory, runs the tests
// and stops the throwaway PostgreSQL server.
func TestMain(m *testing.M) {
	flag.Parse()
	// Pebble reads these when its parts are built: no random sleep before
	// validations, no nonce rejected on purpose. Set here, once, so that
	// the tests can run in parallel.
	_ = os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	_ = os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	if os.Getenv(requireEnv) == "1" {
		_ = os.Setenv(pgtest.RequireEnv, "1")
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "moat-cluster-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		moatBin = filepath.Join(dir, "moat")
		// go test puts its own go first on PATH.
		args := []string{"build", "-o", moatBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/moatmail/moat/cmd/moat")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: go build ./cmd/moat: %v\n%s", err, out)
			return 1
		}
	}
	return pgtest.Run(m)
}

// long skips t under -short: these tests run processes and take seconds.
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the cluster and fault tests run moat serve processes; make test runs them")
	}
}

// missing skips t because a tool is missing, or fails it under
// MOAT_REQUIRE_FAULTS=1.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires it)", msg, requireEnv)
	}
	t.Skip(msg)
}
