package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/leader"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// LeaseName is the store lock of the leader lease.
const LeaseName = "moat/leader"

// leaderPart campaigns for the leader lease (internal/leader) and, while
// this instance leads, runs the background jobs of leaderJobs. It runs on
// instances with the intake or web role: an edge (dns, policy) keeps off
// the report data.
type leaderPart struct {
	g     *group
	lease *leader.Lease

	mu        sync.Mutex
	pruned    map[[2]string]int64 // rows by table and action, since start
	lastPrune time.Time           // end of the last successful retention run
}

func (*leaderPart) Name() string { return "leader" }

func (p *leaderPart) Start(ctx context.Context, env *Env) error {
	jobs := p.jobs(env)
	p.lease = leader.New(env.Store, LeaseName, leader.Options{TTL: env.Config.Store.LeaseTTL, Log: env.Log})
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error {
		p.lease.Run(rctx, func(ctx context.Context) { leader.RunJobs(ctx, env.Log, env.Store, jobs) })
		return nil
	})
	return nil
}

func (p *leaderPart) Stop(ctx context.Context) error { return p.g.stop(ctx) }

// Leading reports whether this instance leads now.
func (p *leaderPart) leading() bool { return p.lease != nil && p.lease.Leading() }

// jobs are the leader's background jobs. A new one is a leader.Job here:
// its Run must return soon after its context ends (leadership lost or
// shutdown), and do its writes in short transactions.
func (p *leaderPart) jobs(env *Env) []leader.Job {
	return []leader.Job{
		{Name: "retention", Every: 24 * time.Hour, Run: func(ctx context.Context) error {
			return p.retention(ctx, env)
		}},
		{Name: "senders", Every: time.Hour, Run: func(ctx context.Context) error {
			return warmSenders(ctx, env)
		}},
	}
}

// warmSenders looks up the reverse DNS and SPF results of the DMARC
// sources of the last 30 days that the cache lacks (bounded worker pool,
// time-outs), off the request and intake paths: the dashboard and the API
// read only the cache.
func warmSenders(ctx context.Context, env *Env) error {
	if env.Config.Dev {
		// --dev asks no outside DNS server; moat reports dmarc senders
		// looks the sources up on demand.
		return nil
	}
	cat, err := senders.Builtin()
	if err != nil {
		return err
	}
	start := time.Now()
	a := senders.NewAnalyzer(env.Store, env.Store, &net.Resolver{}, cat, senders.Options{})
	domains, sources, err := a.Warm(ctx, start.AddDate(0, 0, -30))
	if err != nil {
		return err
	}
	env.Log.Info("senders: reverse DNS and SPF of the DMARC sources up to date", "domains", domains, "sources", sources,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Retention returns the retention periods of c.
func Retention(c *config.Config) store.Retention {
	return store.Retention{
		Raw:     time.Duration(c.Retention.Raw),
		Reports: time.Duration(c.Retention.Reports),
		Rollups: time.Duration(c.Retention.Rollups),
	}
}

// retention prunes what is older than the retention periods.
func (p *leaderPart) retention(ctx context.Context, env *Env) error {
	res, err := env.Store.Prune(ctx, Retention(env.Config), store.PruneOptions{})
	p.mu.Lock()
	if p.pruned == nil {
		p.pruned = map[[2]string]int64{}
	}
	for _, c := range res.Counts {
		p.pruned[[2]string{c.Table, c.Action}] += c.Rows
	}
	if err == nil {
		p.lastPrune = time.Now()
	}
	p.mu.Unlock()
	attrs := []any{}
	for _, c := range res.Counts {
		attrs = append(attrs, slog.Group(c.Table+"."+c.Setting, "action", c.Action, "before", c.Before, "rows", c.Rows,
			"took", c.Took.Round(time.Millisecond)))
	}
	if res.Reclaimed > 0 {
		attrs = append(attrs, "reclaimed_bytes", res.Reclaimed)
	}
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	env.Log.Info("retention: pruned", attrs...)
	if res.AutoVacuum == "none" || res.AutoVacuum == "full" {
		env.Log.Warn("retention: the SQLite database gives no freed space back to the file system (made by an older Moat); run moat migrate (or moat reports prune) once, at a quiet time, to convert it",
			"auto_vacuum", res.AutoVacuum)
	}
	return nil
}
