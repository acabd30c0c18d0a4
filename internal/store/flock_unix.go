//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock on path (created if absent), waiting for
// it while ctx allows, and returns the function that releases it. The kernel
// releases it too if the process dies. SQLite migrations run under it; it is
// a file of its own because SQLite's locks on the database file must not be
// disturbed.
func lockFile(ctx context.Context, path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("migration lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("migration lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
	return func() error {
		// Closing the file releases the lock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("migration lock %s: %w", path, err)
		}
		return nil
	}, nil
}

// lockServe takes the serve lock of dataDir: shared by every moat serve on
// it, exclusive (without waiting) for Restore, which fails while one runs.
func lockServe(dataDir string, shared bool) (unlock func() error, err error) {
	path := filepath.Join(dataDir, "moat.serve.lock")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve lock: %w", err)
	}
	how := syscall.LOCK_EX | syscall.LOCK_NB
	if shared {
		how = syscall.LOCK_SH | syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("moat serve is running on %s: stop it first", dataDir)
		}
		return nil, fmt.Errorf("serve lock %s: %w", path, err)
	}
	return f.Close, nil
}
