package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func spoolItems(n int, tag string) []*store.SpoolItem {
	var items []*store.SpoolItem
	for i := range n {
		items = append(items, &store.SpoolItem{
			ReceivedAt: baseTime().Add(time.Duration(i) * time.Second), Source: "smtp",
			Detail: fmt.Sprintf("from=<r@%s> %d", tag, i), DKIM: "none", Hint: "tlsrpt",
			Data: append([]byte{0, 0xff, '\r', '\n'}, fmt.Sprintf("message %s %d", tag, i)...),
		})
	}
	return items
}

// testSpool: put keeps the messages as given; claims take the oldest free
// rows, each once until its lease runs out; retry, fail and done do what
// they say; the counts follow.
func testSpool(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	if st, err := s.SpoolStats(ctx); err != nil || st != (store.SpoolStats{}) {
		t.Fatalf("SpoolStats of an empty spool = %+v, %v", st, err)
	}
	if at, ok, err := s.SpoolOldest(ctx); err != nil || ok {
		t.Fatalf("SpoolOldest of an empty spool = %v, %v, %v", at, ok, err)
	}
	items := spoolItems(4, "a")
	if err := s.SpoolPut(ctx, items); err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if it.ID == 0 || (i > 0 && it.ID <= items[i-1].ID) {
			t.Fatalf("ids after SpoolPut: item %d has %d", i, it.ID)
		}
	}
	st, err := s.SpoolStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.SpoolStats{Queued: 4, Oldest: baseTime().UTC().Truncate(time.Microsecond)}); st != want {
		t.Errorf("SpoolStats = %+v, want %+v", st, want)
	}

	got, err := s.SpoolClaim(ctx, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != items[0].ID || got[1].ID != items[1].ID {
		t.Fatalf("first claim of 2 = %v, want the two oldest", ids(got))
	}
	w := items[0]
	g := got[0]
	if !g.ReceivedAt.Equal(w.ReceivedAt.Truncate(time.Microsecond)) || g.ReceivedAt.Location() != time.UTC || g.Source != w.Source || g.Detail != w.Detail || g.DKIM != w.DKIM ||
		g.Hint != w.Hint || !bytes.Equal(g.Data, w.Data) || g.Attempts != 1 || g.Error != "" {
		t.Errorf("claimed %+v, want %+v with attempts 1", g, w)
	}
	more, err := s.SpoolClaim(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(more) != 2 || more[0].ID != items[2].ID || more[1].ID != items[3].ID {
		t.Fatalf("second claim = %v, want the two not claimed", ids(more))
	}
	if none, err := s.SpoolClaim(ctx, 10, time.Hour); err != nil || len(none) != 0 {
		t.Fatalf("a claim while all are held = %v, %v; want none", ids(none), err)
	}

	// Retry: claimable again once its time has come, with the reason.
	if err := s.SpoolRetry(ctx, items[1].ID, time.Now().Add(-time.Second), "store down"); err != nil {
		t.Fatal(err)
	}
	again, err := s.SpoolClaim(ctx, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].ID != items[1].ID || again[0].Attempts != 2 || again[0].Error != "store down" {
		t.Fatalf("claim after a retry = %+v, want item %d with attempts 2 and the reason", again, items[1].ID)
	}
	if err := s.SpoolRetry(ctx, items[1].ID, time.Now().Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	if none, err := s.SpoolClaim(ctx, 10, time.Hour); err != nil || len(none) != 0 {
		t.Fatalf("a claim before the retry time = %v, %v; want none", ids(none), err)
	}

	// Fail: kept with the reason, never claimed, counted apart.
	if err := s.SpoolFail(ctx, items[2].ID, "no report in this message"); err != nil {
		t.Fatal(err)
	}
	failed, err := s.SpoolFailed(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].ID != items[2].ID || failed[0].Error != "no report in this message" ||
		!failed[0].Failed || failed[0].Detail != items[2].Detail {
		t.Fatalf("SpoolFailed = %+v, want item %d with its reason", failed, items[2].ID)
	}

	// Done: gone.
	if err := s.SpoolDone(ctx, []int64{items[0].ID, items[3].ID}); err != nil {
		t.Fatal(err)
	}
	st, err = s.SpoolStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.SpoolStats{Queued: 1, Failed: 1, Oldest: items[1].ReceivedAt.UTC().Truncate(time.Microsecond)}); st != want {
		t.Errorf("SpoolStats at the end = %+v, want %+v", st, want)
	}
	// The failed row is not a queued one.
	if at, ok, err := s.SpoolOldest(ctx); err != nil || !ok || !at.Equal(st.Oldest) {
		t.Errorf("SpoolOldest = %v, %v, %v; want %v", at, ok, err, st.Oldest)
	}

	// A lease that runs out: the row is claimed again.
	late := spoolItems(1, "late")
	if err := s.SpoolPut(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SpoolClaim(ctx, 10, 50*time.Millisecond); err != nil || len(got) != 1 || got[0].ID != late[0].ID {
		t.Fatalf("claim = %v, %v; want the new item", ids(got), err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, err := s.SpoolClaim(ctx, 10, time.Hour); err != nil || len(got) != 1 || got[0].ID != late[0].ID || got[0].Attempts != 2 {
		t.Fatalf("claim after the lease ran out = %+v, %v; want the item again, attempts 2", got, err)
	}
}

// testSpoolTwoInstances: two instances claiming the same spool at once
// each take different rows, and together all of them.
func testSpoolTwoInstances(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	a, b := open(t, opts), open(t, opts)
	ctx := t.Context()
	const n = 200
	if err := a.SpoolPut(ctx, spoolItems(n, "x")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := make(map[int64]int)
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b, a, b} {
		wg.Go(func() {
			for {
				got, err := s.SpoolClaim(ctx, 7, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					seen[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d distinct rows claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("row %d claimed %d times", id, c)
		}
	}
}

func ids(items []*store.SpoolItem) []int64 {
	var l []int64
	for _, it := range items {
		l = append(l, it.ID)
	}
	return l
}
