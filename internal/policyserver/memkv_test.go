package policyserver

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// memKV is an in-memory KV following the store.Store contract for the
// key/value area and locks.
type memKV struct {
	reads atomic.Int64 // Get, Stat and List calls

	mu    sync.Mutex
	vals  map[string]memVal
	locks map[string]memLock
}

type memVal struct {
	v   []byte
	mod time.Time
}

type memLock struct {
	owner   string
	expires time.Time
}

var _ KV = (*memKV)(nil)

func newMemKV() *memKV {
	return &memKV{vals: map[string]memVal{}, locks: map[string]memLock{}}
}

func (m *memKV) Put(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vals[key] = memVal{v: append([]byte(nil), value...), mod: time.Now().UTC()}
	return nil
}

func (m *memKV) Get(_ context.Context, key string) ([]byte, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return append([]byte(nil), v.v...), nil
}

func (m *memKV) Stat(_ context.Context, key string) (store.KeyInfo, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	if !ok {
		return store.KeyInfo{}, store.ErrNotFound
	}
	return store.KeyInfo{Key: key, Size: int64(len(v.v)), Modified: v.mod}, nil
}

func (m *memKV) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.vals {
		if k == key || strings.HasPrefix(k, key+"/") {
			delete(m.vals, k)
			n++
		}
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func (m *memKV) List(_ context.Context, prefix string, recursive bool) ([]string, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	p := prefix + "/"
	for k := range m.vals {
		if !strings.HasPrefix(k, p) {
			continue
		}
		if recursive {
			seen[k] = true
			continue
		}
		rest := k[len(p):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		seen[p+rest] = true
	}
	if len(seen) == 0 {
		return nil, store.ErrNotFound
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memKV) TryLock(_ context.Context, name, owner string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if l, ok := m.locks[name]; ok && l.owner != owner && now.Before(l.expires) {
		return store.ErrLocked
	}
	m.locks[name] = memLock{owner: owner, expires: now.Add(ttl)}
	return nil
}

func (m *memKV) Unlock(_ context.Context, name, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.locks[name]
	if !ok || l.owner != owner {
		return store.ErrNotFound
	}
	delete(m.locks, name)
	return nil
}

// keys returns every stored key, sorted.
func (m *memKV) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.vals))
	for k := range m.vals {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lockHolder returns the owner of an unexpired lock, or "".
func (m *memKV) lockHolder(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.locks[name]; ok && time.Now().Before(l.expires) {
		return l.owner
	}
	return ""
}
