package policyserver

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"
)

func TestStorageContract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newMemKV()
	s := NewStorage(kv, StorageOptions{})
	t.Cleanup(func() { _ = s.Close(ctx) })

	if _, err := s.Load(ctx, "certificates/x/x.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load absent: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "certificates/x/x.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat absent: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "certificates", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List absent: err = %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "certificates") {
		t.Error("Exists on an empty store")
	}
	if err := s.Delete(ctx, "certificates/none"); err != nil {
		t.Errorf("Delete absent: %v, want nil", err)
	}

	files := map[string]string{
		"certificates/ca/a.test/a.test.crt":   "cert-a",
		"certificates/ca/a.test/a.test.key":   "key-a",
		"certificates/ca/b.test/b.test.crt":   "cert-b",
		"acme/ca/users/x@example.test/x.json": "account",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%q) = %q, %v; want %q", k, got, err, v)
		}
		info, err := s.Stat(ctx, k)
		if err != nil || !info.IsTerminal || info.Size != int64(len(v)) || info.Key != k || info.Modified.IsZero() {
			t.Errorf("Stat(%q) = %+v, %v", k, info, err)
		}
	}
	// Keys are namespaced in the KV.
	if got := kv.keys(); !slices.Contains(got, "certmagic/certificates/ca/a.test/a.test.crt") {
		t.Errorf("KV keys %q lack the certmagic/ prefix", got)
	}
	// Directories.
	info, err := s.Stat(ctx, "certificates/ca")
	if err != nil || info.IsTerminal {
		t.Errorf("Stat(dir) = %+v, %v; want a non-terminal key", info, err)
	}
	if !s.Exists(ctx, "certificates") || !s.Exists(ctx, "certificates/ca/a.test/a.test.key") {
		t.Error("Exists false for a directory or file")
	}
	got, err := s.List(ctx, "certificates/ca", false)
	if want := []string{"certificates/ca/a.test", "certificates/ca/b.test"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List(non-recursive) = %q, %v; want %q", got, err, want)
	}
	got, err = s.List(ctx, "certificates", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/b.test/b.test.crt"} {
		if !slices.Contains(got, want) {
			t.Errorf("List(recursive) = %q, missing %q", got, want)
		}
	}
	// Overwrite.
	if err := s.Store(ctx, "certificates/ca/b.test/b.test.crt", []byte("cert-b2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "certificates/ca/b.test/b.test.crt"); string(got) != "cert-b2" {
		t.Errorf("after overwrite Load = %q", got)
	}
	// Delete a directory removes everything under it.
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.test/a.test.crt") || s.Exists(ctx, "certificates/ca/a.test") {
		t.Error("Delete(dir) left keys behind")
	}
	if !s.Exists(ctx, "certificates/ca/b.test/b.test.crt") {
		t.Error("Delete(dir) removed a sibling")
	}
}

func TestStorageLockAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newMemKV()
	s1 := NewStorage(kv, StorageOptions{LockPoll: 5 * time.Millisecond})
	s2 := NewStorage(kv, StorageOptions{LockPoll: 5 * time.Millisecond})
	t.Cleanup(func() { _ = s1.Close(ctx); _ = s2.Close(ctx) })
	if s1.Owner() == s2.Owner() {
		t.Fatal("two Storage values share an owner id")
	}
	if err := s1.Lock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	if got := kv.lockHolder("certmagic/issue_cert_a.test"); got != s1.Owner() {
		t.Fatalf("KV lock holder %q, want %q", got, s1.Owner())
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := s2.Lock(short, "issue_cert_a.test")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second instance got a held lock: err = %v", err)
	}
	// Other names are independent.
	if err := s2.Lock(ctx, "issue_cert_b.test"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Unlock(ctx, "issue_cert_b.test"); err != nil {
		t.Fatal(err)
	}

	acquired := make(chan error, 1)
	go func() { acquired <- s2.Lock(ctx, "issue_cert_a.test") }()
	if err := s1.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if got := kv.lockHolder("certmagic/issue_cert_a.test"); got != s2.Owner() {
		t.Fatalf("KV lock holder %q, want %q", got, s2.Owner())
	}
	if err := s1.Unlock(ctx, "issue_cert_a.test"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock of a lock not held: err = %v, want ErrNotLocked", err)
	}
	if err := s2.Unlock(ctx, "issue_cert_a.test"); err != nil {
		t.Fatal(err)
	}
	if got := kv.lockHolder("certmagic/issue_cert_a.test"); got != "" {
		t.Errorf("lock still held by %q after Unlock", got)
	}
}

func TestStorageLockWithinInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewStorage(newMemKV(), StorageOptions{LockPoll: 5 * time.Millisecond})
	t.Cleanup(func() { _ = s.Close(ctx) })
	if err := s.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	// The KV alone would let the same owner in again; the Storage must not.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := s.Lock(short, "x")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second goroutine got a held lock: err = %v", err)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- s.Lock(ctx, "x") }()
	if err := s.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
}

// TestStorageLockRefresh holds a lock for several TTLs: the refresher must
// keep the other instance out all that time.
func TestStorageLockRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newMemKV()
	s1 := NewStorage(kv, StorageOptions{LockTTL: 450 * time.Millisecond, LockPoll: 10 * time.Millisecond})
	s2 := NewStorage(kv, StorageOptions{LockTTL: 450 * time.Millisecond, LockPoll: 10 * time.Millisecond})
	t.Cleanup(func() { _ = s1.Close(ctx); _ = s2.Close(ctx) })
	if err := s1.Lock(ctx, "renew"); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	defer cancel()
	if err := s2.Lock(wait, "renew"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock taken over while its holder refreshed it: err = %v", err)
	}
}

func TestStorageCloseReleasesLocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newMemKV()
	s1 := NewStorage(kv, StorageOptions{})
	s2 := NewStorage(kv, StorageOptions{})
	t.Cleanup(func() { _ = s2.Close(ctx) })
	for _, name := range []string{"a", "b"} {
		if err := s1.Lock(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if got := kv.lockHolder("certmagic/" + name); got != "" {
			t.Errorf("lock %s still held by %q after Close", name, got)
		}
		// Free at once for the other instance (one TryLock, no polling).
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := s2.Lock(short, name); err != nil {
			t.Errorf("lock %s after Close: %v", name, err)
		}
		cancel()
	}
	if err := s1.Lock(ctx, "c"); !errors.Is(err, ErrStorageClosed) {
		t.Errorf("Lock after Close: err = %v, want ErrStorageClosed", err)
	}
}

// TestStorageLockExpiredHolder: a lock left by a dead instance is taken
// over once its TTL passes.
func TestStorageLockExpiredHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newMemKV()
	if err := kv.TryLock(ctx, "certmagic/stale", "dead-instance", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s := NewStorage(kv, StorageOptions{LockPoll: 10 * time.Millisecond})
	t.Cleanup(func() { _ = s.Close(ctx) })
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Lock(wait, "stale"); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if got := kv.lockHolder("certmagic/stale"); got != s.Owner() {
		t.Fatalf("holder %q, want %q", got, s.Owner())
	}
}
