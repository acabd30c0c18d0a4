package policyserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/moatmail/moat/internal/store"
)

// KV is the part of store.Store that certificate storage uses: a key/value
// area with expiring named locks, shared by every Moat instance on the same
// database. Methods must be safe for concurrent use by goroutines and
// processes.
type KV interface {
	// Put stores value under key, replacing any earlier value.
	Put(ctx context.Context, key string, value []byte) error
	// Get returns the value of key; store.ErrNotFound if absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// Stat describes key; store.ErrNotFound if absent.
	Stat(ctx context.Context, key string) (store.KeyInfo, error)
	// Delete removes key and every key under key+"/"; store.ErrNotFound if
	// none existed.
	Delete(ctx context.Context, key string) error
	// List returns the full keys under prefix+"/": all depths when
	// recursive, otherwise the direct children (a child directory once, as
	// its path). store.ErrNotFound if there are none.
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
	// TryLock takes the named lock for owner until ttl has passed;
	// store.ErrLocked if another owner holds it unexpired. Taking a lock
	// one already holds extends it.
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) error
	// Unlock releases the named lock if owner holds it; store.ErrNotFound
	// if owner does not hold it.
	Unlock(ctx context.Context, name, owner string) error
}

var (
	_ KV                = store.Store(nil)
	_ certmagic.Storage = (*Storage)(nil)
)

// Storage errors.
var (
	// ErrStorageClosed: Lock was called after Close.
	ErrStorageClosed = errors.New("policyserver: certificate storage closed")
	// ErrNotLocked: Unlock was called for a lock this Storage does not
	// hold (a programming error in the caller).
	ErrNotLocked = errors.New("policyserver: lock not held")
)

// StorageOptions configures a Storage. The zero value is ready to use.
type StorageOptions struct {
	// Prefix namespaces keys and lock names in the KV: certmagic's key
	// "a/b" is stored as Prefix+"/a/b". Default "certmagic".
	Prefix string
	// LockTTL is how long a lock stays valid in the KV without being
	// refreshed. A held lock is refreshed every LockTTL/3, so it only
	// expires when its holder died or lost the database for that long; a
	// shorter TTL frees the locks of a dead instance sooner, a longer one
	// tolerates longer database stalls. Default 2 minutes.
	LockTTL time.Duration
	// LockPoll is how long Lock waits between attempts while another owner
	// holds the lock. Default 1 second.
	LockPoll time.Duration
	// Owner identifies this Storage as lock owner in the KV. Default: host
	// name, process id and random bytes, unique per Storage value.
	Owner string
	// Logger receives warnings about lock refreshes that failed. Default:
	// discard.
	Logger *slog.Logger
}

// Storage is a certmagic.Storage on a KV, so that certificates, the ACME
// account, challenge tokens and locks are shared by every instance using the
// same store. Load, List and Stat report absent keys with an error wrapping
// fs.ErrNotExist, as certmagic requires. It is safe for concurrent use; call
// Close when done to stop lock refreshing and release held locks.
type Storage struct {
	kv     KV
	prefix string
	ttl    time.Duration
	poll   time.Duration
	owner  string
	log    *slog.Logger

	mu     sync.Mutex
	closed bool
	locks  map[string]*heldLock // by certmagic lock name
}

// heldLock is a lock taken, or being taken, by this Storage.
type heldLock struct {
	acquired  bool               // the KV lock is ours
	releasing bool               // Unlock or Close is releasing it
	stop      context.CancelFunc // stops the refresher
	stopped   chan struct{}      // closed when the refresher has returned
	done      chan struct{}      // closed when the lock is released locally
}

// NewStorage returns a Storage on kv.
func NewStorage(kv KV, opts StorageOptions) *Storage {
	s := &Storage{
		kv:     kv,
		prefix: opts.Prefix,
		ttl:    opts.LockTTL,
		poll:   opts.LockPoll,
		owner:  opts.Owner,
		log:    opts.Logger,
		locks:  make(map[string]*heldLock),
	}
	if s.prefix == "" {
		s.prefix = "certmagic"
	}
	if s.ttl <= 0 {
		s.ttl = 2 * time.Minute
	}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	if s.owner == "" {
		s.owner = defaultOwner()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Owner returns the lock owner id of s.
func (s *Storage) Owner() string { return s.owner }

// kvKey maps a certmagic key to a KV key.
func (s *Storage) kvKey(key string) string {
	if key == "" {
		return s.prefix
	}
	return s.prefix + "/" + key
}

func notExist(op, key string, err error) error {
	return fmt.Errorf("policyserver: storage %s %q: %w (%w)", op, key, fs.ErrNotExist, err)
}

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if err := s.kv.Put(ctx, s.kvKey(key), value); err != nil {
		return fmt.Errorf("policyserver: storage store %q: %w", key, err)
	}
	return nil
}

// Load returns the value at key; an error wrapping fs.ErrNotExist if absent.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.kv.Get(ctx, s.kvKey(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil, notExist("load", key, err)
	}
	if err != nil {
		return nil, fmt.Errorf("policyserver: storage load %q: %w", key, err)
	}
	return v, nil
}

// Delete removes key and everything under it. An absent key is not an
// error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	err := s.kv.Delete(ctx, s.kvKey(key))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("policyserver: storage delete %q: %w", key, err)
	}
	return nil
}

// Exists reports whether key exists as a value or as a directory (a prefix
// of other keys).
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys under path (certmagic keys, not KV keys): direct
// children, or all descendants when recursive. An error wrapping
// fs.ErrNotExist when there are none.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	keys, err := s.kv.List(ctx, s.kvKey(path), recursive)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notExist("list", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("policyserver: storage list %q: %w", path, err)
	}
	out := make([]string, 0, len(keys))
	strip := s.prefix + "/"
	for _, k := range keys {
		if !strings.HasPrefix(k, strip) {
			return nil, fmt.Errorf("policyserver: storage list %q: store returned key %q outside %q", path, k, strip)
		}
		out = append(out, k[len(strip):])
	}
	return out, nil
}

// Stat describes key. A directory (a prefix of stored keys) is reported
// with IsTerminal false and no size or time. An error wrapping
// fs.ErrNotExist when key is neither.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	info, err := s.kv.Stat(ctx, s.kvKey(key))
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: info.Modified, Size: info.Size, IsTerminal: true}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return certmagic.KeyInfo{}, fmt.Errorf("policyserver: storage stat %q: %w", key, err)
	}
	keys, lerr := s.kv.List(ctx, s.kvKey(key), false)
	if lerr == nil && len(keys) > 0 {
		return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
	}
	if lerr != nil && !errors.Is(lerr, store.ErrNotFound) {
		return certmagic.KeyInfo{}, fmt.Errorf("policyserver: storage stat %q: %w", key, lerr)
	}
	return certmagic.KeyInfo{}, notExist("stat", key, err)
}

// Lock takes the named lock, waiting while another owner (another Storage,
// usually another instance) or another goroutine using s holds it. It
// polls the KV every LockPoll and gives up when ctx ends. While held, the
// lock is refreshed every LockTTL/3 until Unlock or Close.
func (s *Storage) Lock(ctx context.Context, name string) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("%w: lock %q", ErrStorageClosed, name)
		}
		if h, ok := s.locks[name]; ok {
			done := h.done
			s.mu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return fmt.Errorf("policyserver: lock %q: %w", name, ctx.Err())
			}
		}
		h := &heldLock{done: make(chan struct{})}
		s.locks[name] = h
		s.mu.Unlock()

		if err := s.acquire(ctx, name); err != nil {
			s.mu.Lock()
			delete(s.locks, name)
			s.mu.Unlock()
			close(h.done)
			return err
		}
		rctx, cancel := context.WithCancel(context.Background())
		s.mu.Lock()
		h.acquired = true
		h.stop = cancel
		h.stopped = make(chan struct{})
		s.mu.Unlock()
		go s.refresh(rctx, name, h.stopped)
		return nil
	}
}

// acquire polls the KV lock until it is ours or ctx ends.
func (s *Storage) acquire(ctx context.Context, name string) error {
	key := s.kvKey(name)
	for {
		err := s.kv.TryLock(ctx, key, s.owner, s.ttl)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("policyserver: lock %q: %w", name, err)
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("policyserver: lock %q: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// refresh extends the KV lock every ttl/3 until ctx ends; it closes stopped
// when it returns.
func (s *Storage) refresh(ctx context.Context, name string, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := s.kv.TryLock(ctx, s.kvKey(name), s.owner, s.ttl)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("refreshing certificate lock failed", "lock", name, "owner", s.owner, "err", err)
			}
		}
	}
}

// Unlock releases the named lock taken by Lock. It returns ErrNotLocked if
// s does not hold it. A lock that expired meanwhile is not an error.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.locks[name]
	if !ok || !h.acquired || h.releasing {
		s.mu.Unlock()
		return fmt.Errorf("%w: unlock %q", ErrNotLocked, name)
	}
	h.releasing = true
	s.mu.Unlock()
	return s.release(ctx, name, h)
}

// release stops the refresher, frees the KV lock and only then lets local
// waiters in, so that none of them extends the KV lock before it is freed.
func (s *Storage) release(ctx context.Context, name string, h *heldLock) error {
	h.stop()
	<-h.stopped
	err := s.kv.Unlock(ctx, s.kvKey(name), s.owner)
	s.mu.Lock()
	delete(s.locks, name)
	s.mu.Unlock()
	close(h.done)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("policyserver: unlock %q: %w", name, err)
	}
	return nil
}

// Close stops refreshing and releases every lock s holds; later Lock calls
// fail with ErrStorageClosed. Other methods keep working.
func (s *Storage) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	names := make([]string, 0, len(s.locks))
	held := make([]*heldLock, 0, len(s.locks))
	for name, h := range s.locks {
		if h.acquired && !h.releasing {
			h.releasing = true
			names = append(names, name)
			held = append(held, h)
		}
	}
	s.mu.Unlock()
	var errs []error
	for i, h := range held {
		if err := s.release(ctx, names[i], h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
