package storetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// increments runs n UpdateDomain calls on name at once, spread over the
// stores, each recording a new policy version with max_age one higher.
func increments(t *testing.T, name string, n int, stores ...store.Store) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			_, errs[i] = s.UpdateDomain(t.Context(), name, func(d *store.Domain) (*store.PolicyVersion, error) {
				return bump(d, baseTime().Add(time.Duration(d.Version)*time.Second)), nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent UpdateDomain: %v", err)
	}
}

// checkIncrements checks that every one of n increments took effect on top
// of the previous one: no lost update, versions 1..n+1 without gaps, each
// recording the max_age its update saw plus one.
func checkIncrements(t *testing.T, s store.Store, name string, start *store.Domain, n int) {
	t.Helper()
	d, err := s.Domain(t.Context(), name)
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	if d.MaxAge != start.MaxAge+int64(n) || d.Version != int64(n)+1 {
		t.Errorf("after %d increments: max_age %d version %d, want %d and %d (lost updates)",
			n, d.MaxAge, d.Version, start.MaxAge+int64(n), n+1)
	}
	vs, err := s.PolicyVersions(t.Context(), name)
	if err != nil {
		t.Fatalf("PolicyVersions: %v", err)
	}
	if len(vs) != n+1 {
		t.Fatalf("%d policy versions, want %d", len(vs), n+1)
	}
	for i, v := range vs {
		wantV := int64(n + 1 - i)
		if v.Version != wantV || v.MaxAge != start.MaxAge+wantV-1 || v.PolicyID != fmt.Sprintf("id%d", wantV) && wantV > 1 {
			t.Errorf("policy version %d = version %d max_age %d id %q, want version %d max_age %d id id%d",
				i, v.Version, v.MaxAge, v.PolicyID, wantV, start.MaxAge+wantV-1, wantV)
		}
	}
}

func testConcurrentUpdates(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	start := create(t, s, "example.com")
	n0 := serial(t, s)
	const n = 20
	increments(t, "example.com", n, s)
	checkIncrements(t, s, "example.com", start, n)
	if got := serial(t, s); got < n0+n {
		t.Errorf("Serial after %d updates = %d, want at least %d", n, got, n0+n)
	}
}

// testTwoInstances runs two Store instances on one database, as two
// processes would (the CLI beside `moat serve`, or several servers sharing
// PostgreSQL).
func testTwoInstances(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	s1, s2 := open(t, opts), open(t, opts)
	ctx := t.Context()

	// Changes made through one instance are seen by the other, and move
	// the serial both see.
	before := serial(t, s2)
	start := create(t, s1, "example.com")
	if got := serial(t, s2); got <= before {
		t.Errorf("Serial seen by instance 2 after a create on instance 1 = %d, want more than %d", got, before)
	}
	got, err := s2.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain on instance 2: %v", err)
	}
	checkDomain(t, got, start)
	if err := s2.Put(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := s1.Get(ctx, "k"); err != nil || string(v) != "v2" {
		t.Errorf("Get on instance 1 = %q, %v; want v2", v, err)
	}
	lockOK(t, s1, "l", "a", time.Hour)
	lockBusy(t, s2, "l", "b")

	const n = 20
	increments(t, "example.com", n, s1, s2)
	checkIncrements(t, s1, "example.com", start, n)
	checkIncrements(t, s2, "example.com", start, n)
}

// testOpenConcurrently opens a new database twice at the same moment: the
// schema is created once and both instances work.
func testOpenConcurrently(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	stores := make([]store.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = store.Open(t.Context(), slog.New(slog.NewTextHandler(t.Output(), nil)), opts)
		})
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close %d: %v", i, err)
				}
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Open: %v", err)
	}
	create(t, stores[0], "example.com")
	if _, err := stores[1].Domain(t.Context(), "example.com"); err != nil {
		t.Errorf("Domain on the second instance: %v", err)
	}
}

// testReopen closes a store and opens the database again: everything
// committed is there.
func testReopen(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	ctx := t.Context()
	s, err := store.Open(ctx, slog.New(slog.NewTextHandler(t.Output(), nil)), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	d := create(t, s, "example.com")
	if _, err := s.UpdateDomain(ctx, "example.com", func(x *store.Domain) (*store.PolicyVersion, error) {
		v := bump(x, baseTime().Add(time.Hour))
		*d = *x
		return v, nil
	}); err != nil {
		t.Fatalf("UpdateDomain: %v", err)
	}
	if err := s.Put(ctx, "certs/example.com.crt", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	lockOK(t, s, "l", "a", time.Hour)
	n := serial(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, opts)
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain after reopen: %v", err)
	}
	checkDomain(t, got, d)
	if vs, err := s.PolicyVersions(ctx, "example.com"); err != nil || len(vs) != 2 {
		t.Errorf("PolicyVersions after reopen = %d versions, %v; want 2", len(vs), err)
	}
	if v, err := s.Get(ctx, "certs/example.com.crt"); err != nil || !bytes.Equal(v, []byte("cert")) {
		t.Errorf("Get after reopen = %q, %v; want cert", v, err)
	}
	lockBusy(t, s, "l", "b")
	if got := serial(t, s); got != n {
		t.Errorf("Serial after reopen = %d, want %d", got, n)
	}
}

// testChanges: on a database that can notify (PostgreSQL), a change made
// through one instance reaches the other's Changes channel at once, also
// after the listening connection was cut; on SQLite Changes is nil and
// the callers poll.
func testChanges(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	s1, s2 := open(t, opts), open(t, opts)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := s2.Changes(ctx)
	if opts.URL == "" {
		if ch != nil {
			t.Fatal("SQLite Changes is not nil")
		}
		return
	}
	wait := func(what string, within time.Duration) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: Changes closed", what)
			}
		case <-time.After(within):
			t.Fatalf("%s: no change notified within %v", what, within)
		}
	}
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	wait("start of listening", 5*time.Second)
	drain()
	start := time.Now()
	create(t, s1, "notify.example")
	wait("a domain created on the other instance", 5*time.Second)
	t.Logf("change notified after %v", time.Since(start).Round(time.Millisecond))

	// Cut the listening connection: it comes back by itself and says so.
	db, err := sql.Open("pgx", opts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	res, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no LISTEN connection found to cut")
	}
	wait("listening again after the cut", 10*time.Second)
	drain()
	if _, err := s1.UpdateDomain(ctx, "notify.example", func(d *store.Domain) (*store.PolicyVersion, error) {
		d.MaxAge++
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	wait("a change after the reconnection", 5*time.Second)
	cancel()
	for range ch { // closed when ctx ends
	}
}
