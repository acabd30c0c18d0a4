//go:build !unix

package store

import "context"

// lockFile does nothing where flock is missing: processes that open a new
// database at the same moment may then both try to create the schema, and
// one fails (start it again).
func lockFile(context.Context, string) (func() error, error) {
	return func() error { return nil }, nil
}

// lockServe does nothing where flock is missing: Restore cannot tell that
// moat serve runs; stop it first.
func lockServe(string, bool) (func() error, error) {
	return func() error { return nil }, nil
}
