package leader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Job is background work that runs on the leader only, every Every.
type Job struct {
	// Name identifies the job in logs and in the store (where its last
	// run is kept); unique among the jobs.
	Name string
	// Every is the time from the start of one run to the start of the
	// next, whichever instance leads.
	Every time.Duration
	// Run does the work once. It must return promptly when ctx ends (the
	// leadership did); an error is logged and the run retried after
	// min(Every, 1h).
	Run func(ctx context.Context) error
}

// KV keeps when each job last ran, so that an instance that becomes leader
// does not run again what the previous leader ran just before:
// store.Store implements it. Get returns an error wrapping
// store.ErrNotFound for a key never put.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
}

// recordTimeout bounds the write of a finished run's time, which is made
// even after the leadership ended.
const recordTimeout = 5 * time.Second

// jobKey is where the start of a job's last successful run is kept.
func jobKey(name string) string { return "moat/jobs/" + name + "/last" }

// RunJobs runs each job when it is due, until ctx ends, then waits for the
// runs under way (which see ctx end) and returns. It is meant as the work
// of Lease.Run: a job's first run on a new leader comes Every after the
// last run recorded in kv, at once when there is none or it is overdue.
func RunJobs(ctx context.Context, log *slog.Logger, kv KV, jobs []Job) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { runJob(ctx, log, kv, j) })
	}
	wg.Wait()
}

func runJob(ctx context.Context, log *slog.Logger, kv KV, j Job) {
	retry := min(j.Every, time.Hour)
	for {
		next := time.Now()
		b, err := kv.Get(ctx, jobKey(j.Name))
		switch {
		case err == nil:
			var last time.Time
			if perr := last.UnmarshalText(b); perr != nil {
				log.Warn("leader: job: unreadable time of the last run; running now", "job", j.Name, "err", perr)
			} else {
				next = last.Add(j.Every)
			}
		case errors.Is(err, store.ErrNotFound):
		case ctx.Err() != nil:
			return
		default:
			log.Warn("leader: job: reading the time of the last run", "job", j.Name, "err", err)
			next = time.Now().Add(retry)
		}
		if !sleep(ctx, time.Until(next)) {
			return
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			continue // read the time again
		}
		start := time.Now().UTC()
		log.Info("leader: job starting", "job", j.Name)
		if err := j.Run(ctx); err != nil {
			if ctx.Err() != nil {
				log.Info("leader: job stopped: the leadership ended", "job", j.Name, "err", err)
				return
			}
			log.Error("leader: job failed", "job", j.Name, "err", err, "retry_in", retry)
			if !sleep(ctx, retry) {
				return
			}
			continue
		}
		log.Info("leader: job done", "job", j.Name, "took", time.Since(start).Round(time.Millisecond))
		text, _ := start.MarshalText() // a UTC time always marshals
		// The run is done even when the leadership ended as it finished:
		// record it regardless, or the next leader would run it again at
		// once.
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		err = kv.Put(pctx, jobKey(j.Name), text)
		pcancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("leader: job: recording the run", "job", j.Name, "err", err)
			if !sleep(ctx, retry) { // rather than run it again at once
				return
			}
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
