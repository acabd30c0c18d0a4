package hosting

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

// STSRecord is the _mta-sts TXT value for a policy id (RFC 8461 §3.1).
func STSRecord(id string) string {
	return (&mtasts.Record{Version: "STSv1", ID: id}).String()
}

// TLSRPTRecord is the _smtp._tls TXT value of d (RFC 8460 §3): Moat's own
// report URIs, then the domain's extra ones. It is "" when there are none,
// since a TLS-RPT record without rua is invalid.
func (s Settings) TLSRPTRecord(d *store.Domain) string {
	rua := make([]string, 0, len(s.RUA)+len(d.RUA))
	rua = append(rua, s.RUA...)
	for _, u := range d.RUA {
		if !contains(rua, u) {
			rua = append(rua, u)
		}
	}
	if len(rua) == 0 {
		return ""
	}
	return "v=TLSRPTv1; rua=" + strings.Join(rua, ",")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Serving builds what is served for d.
func (s Settings) Serving(d *store.Domain) *snapshot.Domain {
	return &snapshot.Domain{
		Name:         d.Name,
		PolicyID:     d.PolicyID,
		Policy:       policyOf(d),
		STSRecord:    STSRecord(d.PolicyID),
		TLSRPTRecord: s.TLSRPTRecord(d),
	}
}

// Watcher keeps a snapshot.Holder current with the store: it polls the
// store's change serial and rebuilds the snapshot when it grows, so changes
// made by any process (the CLI, another instance) are served within one
// poll interval.
type Watcher struct {
	log      *slog.Logger
	st       store.Store
	set      Settings
	holder   *snapshot.Holder
	interval time.Duration
	now      func() time.Time

	rebuilds    atomic.Int64 // snapshots built
	lastRebuild atomic.Int64 // how long the last one took, ns
	failures    atomic.Int64 // refreshes that failed
}

// Stats says how many snapshots were built, how long the last build took,
// and how many refreshes failed (the store did not answer).
func (w *Watcher) Stats() (rebuilds int64, last time.Duration, failures int64) {
	return w.rebuilds.Load(), time.Duration(w.lastRebuild.Load()), w.failures.Load()
}

// NewWatcher returns a Watcher publishing into holder. interval 0 means one
// second.
func NewWatcher(log *slog.Logger, st store.Store, set Settings, holder *snapshot.Holder, interval time.Duration) *Watcher {
	if interval <= 0 {
		interval = time.Second
	}
	return &Watcher{log: log, st: st, set: set, holder: holder, interval: interval, now: time.Now}
}

// Refresh rebuilds and publishes the snapshot if the store changed since
// the current one was built (or always when force is set). It reports
// whether it published.
func (w *Watcher) Refresh(ctx context.Context, force bool) (bool, error) {
	serial, err := w.st.Serial(ctx)
	if err != nil {
		return false, err
	}
	cur := w.holder.Load()
	if !force && !cur.Built().IsZero() && serial == cur.Serial() {
		return false, nil
	}
	// The serial is read before the domains: a change committed in between
	// shows up as a larger serial at the next poll, never as a lost update.
	start := w.now()
	domains, err := w.st.Domains(ctx)
	if err != nil {
		return false, err
	}
	served := make([]*snapshot.Domain, len(domains))
	for i, d := range domains {
		served[i] = w.set.Serving(d)
	}
	w.holder.Store(snapshot.New(serial, w.now(), served))
	w.rebuilds.Add(1)
	w.lastRebuild.Store(int64(w.now().Sub(start)))
	w.log.Info("serving snapshot rebuilt", "serial", serial, "domains", len(served), "duration", w.now().Sub(start).Round(time.Millisecond))
	return true, nil
}

// Run refreshes when the store says something changed (PostgreSQL's
// notifications: within milliseconds of a change by any instance) and
// every interval in any case (the fallback when notifications are lost,
// and the only way on SQLite), until ctx ends. Errors are logged and
// retried at the next tick; the last good snapshot keeps being served.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	changes := w.st.Changes(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
		if _, err := w.Refresh(ctx, false); err != nil && ctx.Err() == nil {
			w.failures.Add(1)
			w.log.Warn("snapshot refresh failed; still serving the previous one", "err", err)
		}
	}
}
