package store_test

import (
	"testing"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/pgtest"
	"github.com/moatmail/moat/internal/store/storetest"
)

// TestPostgres runs the suite on a throwaway PostgreSQL server; it skips,
// saying why, when PostgreSQL is not installed (see pgtest).
func TestPostgres(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Options {
		return store.Options{URL: srv.NewDatabase(t)}
	})
}
