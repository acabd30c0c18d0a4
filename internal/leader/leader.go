// Package leader elects one instance of Moat, among those sharing a
// database, to run background work (retention, and the coming scheduler):
// a lease on a named lock of the store, taken by one owner for a time to
// live (TTL) and renewed every TTL/3 while its holder runs.
//
// Safety: the work of a leader runs with a context that is cancelled when
// a renewal fails, when the lease is found taken by another owner, and in
// any case once 3/4 of the TTL has passed since the start of the last
// renewal that succeeded (a renewal that hangs on a slow database). The
// store lets another owner take the lease only when the TTL has passed
// since that renewal (by the database's clock on PostgreSQL, by the
// machine's on SQLite), so a leader has a quarter of the TTL to stop its
// work before anyone else can start: work must return promptly once its
// context is done. Liveness: a leader that dies stops renewing; the others
// try every TTL/3, so one takes over within about 4/3 of the TTL.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Locker is the store of leases; store.Store implements it.
//
// TryLock takes the named lock for owner until ttl has passed, or extends
// it when owner holds it already; it returns an error wrapping
// store.ErrLocked when another owner holds it unexpired, and another error
// when it could not tell. Unlock releases it if owner holds it. Both must
// be safe for concurrent use, also by several processes on one database.
type Locker interface {
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) error
	Unlock(ctx context.Context, name, owner string) error
}

// DefaultTTL is the lease's time to live when Options.TTL is zero.
const DefaultTTL = 30 * time.Second

// Options are the optional settings of New.
type Options struct {
	// TTL is how long the lease lasts without renewal; renewals come every
	// TTL/3. Zero: DefaultTTL.
	TTL time.Duration
	// Owner identifies this contender in the lock table; it must be unique
	// among the contenders. Empty: host name, process id and a random
	// suffix.
	Owner string
	// Log receives one line when leadership is gained or lost. Nil: none.
	Log *slog.Logger
	// OnChange, if set, is called with true once this contender leads (before
	// its work starts) and with false once it stopped leading (after its
	// work returned).
	OnChange func(leading bool)
}

// Lease is one contender for the lease of a name.
type Lease struct {
	locker  Locker
	name    string
	ttl     time.Duration
	owner   string
	log     *slog.Logger
	change  func(bool)
	leading atomic.Bool
}

// New returns a contender for the lease name on locker. Nothing happens
// before Run.
func New(locker Locker, name string, opts Options) *Lease {
	l := &Lease{locker: locker, name: name, ttl: opts.TTL, owner: opts.Owner, log: opts.Log, change: opts.OnChange}
	if l.ttl <= 0 {
		l.ttl = DefaultTTL
	}
	if l.owner == "" {
		l.owner = DefaultOwner()
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// DefaultOwner is a contender id unique to this process: host name,
// process id and 6 random bytes.
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner returns the id this contender takes the lease under.
func (l *Lease) Owner() string { return l.owner }

// TTL returns the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Leading reports whether this contender leads now (its work may run).
func (l *Lease) Leading() bool { return l.leading.Load() }

// Run campaigns for the lease until ctx ends: it tries to take it every
// TTL/3 and, each time it does, runs work with a context that ends when
// the leadership does (see the package doc), renewing the lease meanwhile.
// When work returns early, the lease is kept until ctx ends. On the end of
// ctx, Run cancels work, waits for it, releases the lease so that another
// contender takes over at once, and returns.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context)) {
	every := l.ttl / 3
	for {
		start := time.Now()
		err := l.try(ctx, start.Add(every))
		switch {
		case err == nil:
			l.lead(ctx, start, work)
		case ctx.Err() != nil:
		case errors.Is(err, store.ErrLocked):
		default:
			l.log.Warn("leader: cannot reach the lease", "lease", l.name, "owner", l.owner, "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		// The next attempt a period after this one began.
		t := time.NewTimer(time.Until(start.Add(every)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// try takes or renews the lease, giving up at deadline.
func (l *Lease) try(ctx context.Context, deadline time.Time) error {
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return l.locker.TryLock(tctx, l.name, l.owner, l.ttl)
}

// safe is how long after the start of a successful take or renewal the
// lease is surely still ours: the rest of the TTL is the time work has to
// stop before another contender can take the lease.
func (l *Lease) safe() time.Duration { return l.ttl - l.ttl/4 }

// lead runs work while the lease taken at start is kept.
func (l *Lease) lead(ctx context.Context, start time.Time, work func(context.Context)) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Leadership ends by itself at the end of the safe period unless a
	// renewal moves it on.
	expiry := time.AfterFunc(time.Until(start.Add(l.safe())), cancel)
	defer expiry.Stop()

	l.leading.Store(true)
	l.log.Info("leader: gained leadership", "lease", l.name, "owner", l.owner, "ttl", l.ttl)
	if l.change != nil {
		l.change(true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	workDone := done

	why := "stopping"
	renew := time.NewTicker(l.ttl / 3)
	defer renew.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-wctx.Done():
			if ctx.Err() == nil {
				why = "the lease was not renewed in time"
			}
			break loop
		case <-workDone:
			workDone = nil // keep the lease; nothing else to do until ctx ends
		case <-renew.C:
			rstart := time.Now()
			err := l.try(wctx, rstart.Add(l.safe()))
			if err == nil && wctx.Err() == nil && expiry.Stop() {
				expiry.Reset(time.Until(rstart.Add(l.safe())))
				continue
			}
			switch {
			case ctx.Err() != nil:
			case err == nil || wctx.Err() != nil:
				why = "the lease was not renewed in time"
			case errors.Is(err, store.ErrLocked):
				why = "the lease was taken by another instance"
			default:
				why = "renewal failed: " + err.Error()
			}
			break loop
		}
	}
	cancel()
	<-done
	l.leading.Store(false)
	if l.change != nil {
		l.change(false)
	}
	if ctx.Err() != nil {
		// Hand over at once rather than after the TTL.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := l.locker.Unlock(uctx, l.name, l.owner); err != nil && !errors.Is(err, store.ErrNotFound) {
			l.log.Warn("leader: releasing the lease", "lease", l.name, "owner", l.owner, "err", err)
		}
		ucancel()
		l.log.Info("leader: gave up leadership", "lease", l.name, "owner", l.owner, "why", why)
		return
	}
	l.log.Warn("leader: lost leadership", "lease", l.name, "owner", l.owner, "why", why)
}
