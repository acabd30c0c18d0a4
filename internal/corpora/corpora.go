// Package corpora is for tests: it locates the shared real-world sample
// corpora (reports and records that real senders and peer projects
// produced, kept beside the repository and described in its README) and
// records what Moat's parsers must make of each DMARC file there (see
// DMARC), so that the parser's conformance test and later tests of the
// storage compare against the same table. The files are read in place,
// never copied into the repository.
package corpora

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Env names the environment variable that overrides where the corpora
// are: MOAT_CORPORA=/work/shared/corpora.
const Env = "MOAT_CORPORA"

// ErrNotFound means the corpora are not where Dir looked. Tests skip,
// saying where that was.
var ErrNotFound = errors.New("corpora: shared corpora not found")

// Dir returns the corpora directory: $MOAT_CORPORA when set, otherwise
// "../shared/corpora" relative to the repository root (the nearest
// directory holding go.mod, from the working directory up). The path is
// returned also with an error wrapping ErrNotFound, so that a test can
// say where it looked.
func Dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return check(d, "$"+Env)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return check(filepath.Join(dir, "..", "shared", "corpora"), "../shared/corpora beside the repository root")
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w: no go.mod above %s and $%s not set", ErrNotFound, wd, Env)
		}
	}
}

func check(dir, what string) (string, error) {
	fi, err := os.Stat(dir) //nolint:gosec // G703: a path the developer set for tests
	if err != nil {
		return dir, fmt.Errorf("%w at %s (%s): %w", ErrNotFound, dir, what, err)
	}
	if !fi.IsDir() {
		return dir, fmt.Errorf("%w at %s (%s): not a directory", ErrNotFound, dir, what)
	}
	return dir, nil
}
