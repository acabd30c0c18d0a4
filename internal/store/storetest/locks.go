package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func lockOK(t *testing.T, s store.Store, name, owner string, ttl time.Duration) {
	t.Helper()
	if err := s.TryLock(t.Context(), name, owner, ttl); err != nil {
		t.Fatalf("TryLock(%s, %s): %v", name, owner, err)
	}
}

func lockBusy(t *testing.T, s store.Store, name, owner string) {
	t.Helper()
	err := s.TryLock(t.Context(), name, owner, time.Hour)
	wantErr(t, fmt.Sprintf("TryLock(%s, %s)", name, owner), err, store.ErrLocked, name)
}

func testLockExclusive(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	lockOK(t, s, "issue/example.com", "a", time.Hour)
	lockBusy(t, s, "issue/example.com", "b")
	// Re-entrant for the owner.
	lockOK(t, s, "issue/example.com", "a", time.Hour)
	lockBusy(t, s, "issue/example.com", "b")
	// Other names are independent.
	lockOK(t, s, "issue/example.net", "b", time.Hour)
	lockBusy(t, s, "issue/example.net", "a")

	if err := s.TryLock(t.Context(), "x", "a", 0); err == nil {
		t.Error("TryLock with ttl 0 succeeded, want an error")
	}
}

func testLockExtend(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	lockOK(t, s, "l", "a", 50*time.Millisecond)
	lockOK(t, s, "l", "a", time.Hour) // extends
	// Past the first expiry the lock is still held: the second call
	// extended it.
	time.Sleep(100 * time.Millisecond)
	lockBusy(t, s, "l", "b")
}

func testLockExpiry(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	lockOK(t, s, "l", "a", 200*time.Millisecond)
	// b gets it once a's ttl has passed.
	eventually(t, "TryLock(l, b) after a's ttl", func() error {
		return s.TryLock(ctx, "l", "b", time.Hour)
	})
	// Now b holds it: a neither gets it back nor releases it.
	lockBusy(t, s, "l", "a")
	err := s.Unlock(ctx, "l", "a")
	wantErr(t, "Unlock(l, a) after takeover", err, store.ErrNotFound, "l")
	if err := s.Unlock(ctx, "l", "b"); err != nil {
		t.Fatalf("Unlock(l, b): %v", err)
	}
}

func testLockUnlock(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	err := s.Unlock(ctx, "never", "a")
	wantErr(t, "Unlock of a lock never taken", err, store.ErrNotFound, "never")

	lockOK(t, s, "l", "a", time.Hour)
	err = s.Unlock(ctx, "l", "b")
	wantErr(t, "Unlock by a non-owner", err, store.ErrNotFound, "l")
	lockBusy(t, s, "l", "b") // still a's
	if err := s.Unlock(ctx, "l", "a"); err != nil {
		t.Fatalf("Unlock by the owner: %v", err)
	}
	err = s.Unlock(ctx, "l", "a")
	wantErr(t, "second Unlock", err, store.ErrNotFound, "l")
	lockOK(t, s, "l", "b", time.Hour)
}

// testLockRace has many owners race for one lock, first a free one, then an
// expired one: exactly one may win each time.
func testLockRace(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	race := func(round string) {
		t.Helper()
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = s.TryLock(ctx, "race", fmt.Sprintf("%s-%d", round, i), time.Hour)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrLocked):
			default:
				t.Errorf("%s: owner %d: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Errorf("%s: %d owners got the lock, want exactly 1", round, won)
		}
	}
	race("free")

	// Hand the lock to "old" with a short ttl and wait until it expired:
	// a probe lock taken after it with the same ttl expires no earlier.
	for i := range 10 {
		_ = s.Unlock(ctx, "race", fmt.Sprintf("free-%d", i)) // only the winner's succeeds
	}
	lockOK(t, s, "race", "old", 30*time.Millisecond)
	lockOK(t, s, "probe", "old", 30*time.Millisecond)
	eventually(t, "probe lock expired", func() error {
		return s.TryLock(ctx, "probe", "new", time.Hour)
	})
	race("expired")
}
