package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ListenerMetrics is the name of metrics.listen in the addresses.
const ListenerMetrics = "metrics"

// metricsPart serves /metrics (Prometheus, a registry of its own),
// /healthz and /readyz on metrics.listen. It is started last, so that
// /readyz can say whether every listener is bound.
type metricsPart struct {
	srv        *Server
	reg        *prometheus.Registry
	http       *http.Server
	wg         sync.WaitGroup
	commit     prometheus.Histogram
	commitErrs atomic.Uint64 // ingester commits that failed
	errs       atomic.Uint64 // store errors seen by the metrics themselves
}

// newMetricsPart builds the registry; the ingester's commits are timed
// from the start (New wires OnCommit to the histogram).
func newMetricsPart(s *Server) *metricsPart {
	p := &metricsPart{srv: s, reg: prometheus.NewRegistry()}
	p.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "moat_intake_commit_seconds",
		Help:    "Time of one commit of the report ingester (a batch of reports in one transaction).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		p.commit, &moatCollector{p: p})
	return p
}

func (*metricsPart) Name() string { return "metrics" }

func (p *metricsPart) Start(ctx context.Context, env *Env) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", env.Config.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	env.Bound(ListenerMetrics, l.Addr())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(env.Log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if why := p.notReady(r.Context()); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(why + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	p.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(env.Log.Handler(), slog.LevelDebug)}
	p.wg.Go(func() {
		if err := p.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Fail(p.Name(), err)
		}
	})
	return nil
}

func (p *metricsPart) Stop(ctx context.Context) error {
	err := p.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, p.http.Close())
	}
	p.wg.Wait()
	return err
}

// notReady says why the instance should get no traffic yet, or "".
func (p *metricsPart) notReady(ctx context.Context) string {
	s := p.srv
	s.mu.Lock()
	started := s.state == 1 && len(s.started) >= len(s.parts)-1 // every part but perhaps this one
	s.mu.Unlock()
	if !started {
		return "starting: not every listener is bound yet"
	}
	if snap := s.env.Snapshots.Load(); snap == nil || snap.Built().IsZero() {
		return "no serving snapshot yet"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.st.Serial(ctx); err != nil {
		return "the store does not answer: " + err.Error()
	}
	return ""
}

// moatCollector reads the parts' counters at each scrape.
type moatCollector struct{ p *metricsPart }

var (
	descDNS = prometheus.NewDesc("moat_dns_answers_total", "DNS answers sent, by query type and response code.",
		[]string{"qtype", "rcode"}, nil)
	descHTTPS = prometheus.NewDesc("moat_https_requests_total", "HTTPS requests answered on the HTTPS listener, by host (policy for every MTA-STS policy host, else the service host) and status class.",
		[]string{"host", "status"}, nil)
	descRefused = prometheus.NewDesc("moat_tls_handshakes_refused_total", "TLS handshakes refused: the server name is neither a hosted policy host nor a service host.", nil, nil)
	descOrders  = prometheus.NewDesc("moat_acme_orders_total", "ACME certificate orders, by outcome: started, obtained (issued or renewed), failed.",
		[]string{"outcome"}, nil)
	descCerts   = prometheus.NewDesc("moat_certificates", "Policy-host certificates recorded in the store.", nil, nil)
	descExpSoon = prometheus.NewDesc("moat_certificates_expiring", "Policy-host certificates that expire within the given number of days (or have expired).",
		[]string{"within_days"}, nil)
	descExpMin = prometheus.NewDesc("moat_certificate_soonest_expiry_timestamp_seconds", "When the policy-host certificate that expires first expires (Unix time).", nil, nil)
	descIntake = prometheus.NewDesc("moat_intake_reports_total", "Reports the ingester answered, by outcome: acknowledged (stored or duplicate), duplicate, failed (not stored: the store failed).",
		[]string{"outcome"}, nil)
	descOutcomes = prometheus.NewDesc("moat_intake_outcomes_total", "Reports the ingester answered, by kind (tlsrpt, dmarc: aggregate, dmarc_failure), path (https, smtp, imap, import, api) and outcome (stored, invalid: stored but unreadable, conflict: a DMARC report kept aside, duplicate, failed: not stored).",
		[]string{"kind", "path", "outcome"}, nil)
	descCommits = prometheus.NewDesc("moat_intake_commits_total", "Transactions the ingester committed.", nil, nil)
	descQueue   = prometheus.NewDesc("moat_intake_queue_depth", "Reports waiting for the ingester's writer.", nil, nil)
	descSpool   = prometheus.NewDesc("moat_intake_spool_messages", "Report mail in the spool waiting for its reports to be stored (intake.smtp_spool), as this instance last counted.", nil, nil)
	descSpooled = prometheus.NewDesc("moat_intake_spool_processed_total", "Spooled messages this instance processed, by result: stored (their reports committed) or failed (kept, never retried).", []string{"result"}, nil)
	descSnapN   = prometheus.NewDesc("moat_snapshot_domains", "Hosted domains in the serving snapshot.", nil, nil)
	descSnapAge = prometheus.NewDesc("moat_snapshot_age_seconds", "Time since the serving snapshot was built.", nil, nil)
	descRebuild = prometheus.NewDesc("moat_snapshot_rebuild_seconds", "Time the last snapshot rebuild took.", nil, nil)
	descBuilds  = prometheus.NewDesc("moat_snapshot_rebuilds_total", "Serving snapshots built.", nil, nil)
	descLeader  = prometheus.NewDesc("moat_leader", "1 while this instance holds the leader lease and runs the background jobs (retention), else 0.", nil, nil)
	descPruned  = prometheus.NewDesc("moat_retention_pruned_rows_total", "Rows retention deleted (action delete) or whose raw bytes it cleared (action clear raw), by table, since this instance started.",
		[]string{"table", "action"}, nil)
	descPruneAt = prometheus.NewDesc("moat_retention_last_success_timestamp_seconds", "When retention last completed on this instance (Unix time).", nil, nil)
	descStore   = prometheus.NewDesc("moat_store_errors_total", "Store errors seen by background work: snapshot refreshes and ingester commits that failed, and metrics reads.", nil, nil)
)

func (c *moatCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDNS, descHTTPS, descRefused, descOrders, descCerts, descExpSoon, descExpMin,
		descIntake, descOutcomes, descCommits, descQueue, descSpool, descSpooled, descSnapN, descSnapAge, descRebuild, descBuilds, descStore, descLeader,
		descPruned, descPruneAt} {
		ch <- d
	}
}

func (c *moatCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.srv
	var storeErrs uint64
	leading := 0.0
	for _, part := range s.parts {
		switch p := part.(type) {
		case *leaderPart:
			if p.leading() {
				leading = 1
			}
			p.mu.Lock()
			for k, n := range p.pruned {
				ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(n), k[0], k[1])
			}
			if !p.lastPrune.IsZero() {
				ch <- prometheus.MustNewConstMetric(descPruneAt, prometheus.GaugeValue, float64(p.lastPrune.Unix()))
			}
			p.mu.Unlock()
		case *dnsPart:
			if p.srv != nil {
				p.srv.Counts(func(qtype, rcode string, n uint64) {
					ch <- prometheus.MustNewConstMetric(descDNS, prometheus.CounterValue, float64(n), qtype, rcode)
				})
			}
		case *policyPart:
			if p.ps != nil {
				st := p.ps.Stats()
				for host, byStatus := range st.Requests {
					for status, n := range byStatus {
						ch <- prometheus.MustNewConstMetric(descHTTPS, prometheus.CounterValue, float64(n), host, status)
					}
				}
				ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.HandshakesRefused))
				ch <- prometheus.MustNewConstMetric(descOrders, prometheus.CounterValue, float64(st.OrdersStarted), "started")
				ch <- prometheus.MustNewConstMetric(descOrders, prometheus.CounterValue, float64(st.OrdersObtained), "obtained")
				ch <- prometheus.MustNewConstMetric(descOrders, prometheus.CounterValue, float64(st.OrdersFailed), "failed")
			}
		case *snapshotPart:
			if p.w != nil {
				builds, last, failures := p.w.Stats()
				ch <- prometheus.MustNewConstMetric(descRebuild, prometheus.GaugeValue, last.Seconds())
				ch <- prometheus.MustNewConstMetric(descBuilds, prometheus.CounterValue, float64(builds))
				storeErrs += uint64(failures) //nolint:gosec // a count
			}
		}
	}
	if ing := s.env.Ingester; ing != nil {
		st := ing.Stats()
		ch <- prometheus.MustNewConstMetric(descIntake, prometheus.CounterValue, float64(st.Reports), "acknowledged")
		ch <- prometheus.MustNewConstMetric(descIntake, prometheus.CounterValue, float64(st.Duplicates), "duplicate")
		ch <- prometheus.MustNewConstMetric(descIntake, prometheus.CounterValue, float64(st.Failures), "failed")
		for k, n := range st.Outcomes {
			ch <- prometheus.MustNewConstMetric(descOutcomes, prometheus.CounterValue, float64(n), k.Kind, k.Source, k.Outcome)
		}
		ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(st.Batches))
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(ing.QueueDepth()))
		ch <- prometheus.MustNewConstMetric(descSpool, prometheus.GaugeValue, float64(ing.SpoolQueued()))
		ch <- prometheus.MustNewConstMetric(descSpooled, prometheus.CounterValue, float64(ing.SpoolDone()), "stored")
		ch <- prometheus.MustNewConstMetric(descSpooled, prometheus.CounterValue, float64(ing.SpoolFailed()), "failed")
		storeErrs += c.p.commitErrs.Load()
	}
	if snap := s.env.Snapshots.Load(); snap != nil {
		ch <- prometheus.MustNewConstMetric(descSnapN, prometheus.GaugeValue, float64(snap.Len()))
		ch <- prometheus.MustNewConstMetric(descSnapAge, prometheus.GaugeValue, time.Since(snap.Built()).Seconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if exp, err := s.st.CertificateExpiries(ctx); err != nil {
		c.p.errs.Add(1)
	} else {
		now := time.Now()
		ch <- prometheus.MustNewConstMetric(descCerts, prometheus.GaugeValue, float64(len(exp)))
		for _, days := range []int{7, 14, 30} {
			n := 0
			for _, t := range exp {
				if t.Sub(now) < time.Duration(days)*24*time.Hour {
					n++
				}
			}
			ch <- prometheus.MustNewConstMetric(descExpSoon, prometheus.GaugeValue, float64(n), fmt.Sprint(days))
		}
		if len(exp) > 0 {
			soonest := exp[0]
			for _, t := range exp[1:] {
				if t.Before(soonest) {
					soonest = t
				}
			}
			ch <- prometheus.MustNewConstMetric(descExpMin, prometheus.GaugeValue, float64(soonest.Unix()))
		}
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leading)
	ch <- prometheus.MustNewConstMetric(descStore, prometheus.CounterValue, float64(storeErrs+c.p.errs.Load()))
}
