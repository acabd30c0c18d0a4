package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Options {
		return store.Options{DataDir: t.TempDir()}
	})
}

// childDirEnv tells a re-executed test binary to act as the second process
// of TestSQLiteTwoProcesses.
const childDirEnv = "MOAT_STORE_TEST_CHILD_DIR"

const perProcess = 15

// increment records one more policy version of example.com, max_age + 1.
func increment(ctx context.Context, s store.Store) error {
	_, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		d.MaxAge++
		d.Version++
		d.PolicyID = fmt.Sprintf("id%d", d.Version)
		return &store.PolicyVersion{Domain: d.Name, Version: d.Version, PolicyID: d.PolicyID,
			Mode: d.Mode, MX: d.MX, MaxAge: d.MaxAge, Policy: fmt.Sprintf("max_age: %d\r\n", d.MaxAge)}, nil
	})
	return err
}

// TestSQLiteChild is the second process of TestSQLiteTwoProcesses; it does
// nothing in a normal run.
func TestSQLiteChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestSQLiteTwoProcesses")
	}
	s, err := store.Open(t.Context(), nil, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Start together with the parent: say ready, wait for its go.
	if err := s.Put(t.Context(), "child/ready", nil); err != nil {
		t.Fatal(err)
	}
	waitKey(t, s, "parent/go")
	for range perProcess {
		if err := increment(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(t.Context(), "child/k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLiteTwoProcesses runs read-modify-write transactions from two
// processes on one database file at once: none is lost and none fails.
func TestSQLiteTwoProcesses(t *testing.T) {
	t.Parallel()
	if os.Getenv(childDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := t.Context()
	dir := t.TempDir()
	s, err := store.Open(ctx, nil, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := &store.Org{Name: "test"}
	if err := s.CreateOrg(ctx, o); err != nil {
		t.Fatal(err)
	}
	d := &store.Domain{Name: "example.com", Mode: "testing", MX: []string{"mx.example.com"}, MaxAge: 100, PolicyID: "id1", Version: 1, OrgID: o.ID}
	if err := s.CreateDomain(ctx, d, &store.PolicyVersion{PolicyID: "id1", Version: 1, Mode: "testing", MaxAge: 100}); err != nil {
		t.Fatal(err)
	}

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSQLiteChild$", "-test.count=1")
	child.Env = append(os.Environ(), childDirEnv+"="+dir)
	out := make(chan error, 1)
	var buf bytes.Buffer
	child.Stdout, child.Stderr = &buf, &buf
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { out <- child.Wait() }() // owner: this test; ends when the child exits
	waitKey(t, s, "child/ready")
	if err := s.Put(ctx, "parent/go", nil); err != nil {
		t.Fatal(err)
	}
	for range perProcess {
		if err := increment(ctx, s); err != nil {
			t.Error(err)
			break
		}
		if _, err := s.Domains(ctx); err != nil {
			t.Error(err)
			break
		}
	}
	if err := <-out; err != nil {
		t.Fatalf("child process: %v\n%s", err, buf.Bytes())
	}
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxAge != 100+2*perProcess || got.Version != 1+2*perProcess {
		t.Errorf("after %d increments in each of two processes: max_age %d version %d, want %d and %d",
			perProcess, got.MaxAge, got.Version, 100+2*perProcess, 1+2*perProcess)
	}
	vs, err := s.PolicyVersions(ctx, "example.com")
	if err != nil || len(vs) != 1+2*perProcess {
		t.Errorf("PolicyVersions: %d, %v; want %d versions", len(vs), err, 1+2*perProcess)
	}
	if v, err := s.Get(ctx, "child/k"); err != nil || string(v) != "v" {
		t.Errorf("key written by the child: %q, %v", v, err)
	}
}

// waitKey polls until key exists.
func waitKey(t *testing.T, s store.Store, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		if _, err := s.Get(ctx, key); err == nil {
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("waiting for key %s: %v", key, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("key %s did not appear", key)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
