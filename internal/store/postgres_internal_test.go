package store

import (
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// TestPostgresNoParallelWorkers: Moat's PostgreSQL sessions plan without
// parallel workers, unless the URL asks otherwise.
func TestPostgresNoParallelWorkers(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	show := func(s *sqlStore) string {
		var v string
		if err := s.r.QueryRowContext(t.Context(), `SHOW max_parallel_workers_per_gather`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := show(openTest(t, Options{URL: url})); got != "0" {
		t.Errorf("max_parallel_workers_per_gather = %s, want 0", got)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	if got := show(openTest(t, Options{URL: url + sep + "max_parallel_workers_per_gather=3"})); got != "3" {
		t.Errorf("with the URL's max_parallel_workers_per_gather=3: %s", got)
	}
}
