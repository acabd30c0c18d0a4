// Package server assembles Moat's running system, `moat serve`, from a
// validated configuration and an open store: the snapshot watcher, the
// report ingester, the authoritative DNS server, the HTTPS policy server
// with its certificate manager and HTTP challenge listener, and the report
// intake listeners (HTTPS and SMTP). It is the one place where these are
// wired together; the command, the end-to-end tests and the benchmarks all
// start it.
//
// Every component is a Part. Start starts the parts in order and returns
// once every listener is bound, so that a listener configured on port 0
// reports the port it got (Addr). Shutdown stops them in the reverse order
// and waits for every goroutine: the listeners stop before the ingester, so
// that each report they accepted is committed and answered before the
// ingester ends.
//
// Coming components (the dashboard and API, the IMAP poller, the scheduler)
// plug in as Parts made by the PartFuncs of Options.Parts, which see the
// shared Env (the store, the serving snapshot, the report ingester); a Part
// that serves HTTP on the HTTPS listener for its own host names implements
// HTTPSHoster.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

// Errors.
var (
	// ErrState: Start was called twice, or after Shutdown.
	ErrState = errors.New("server: Start may be called once, before Shutdown")
	// ErrConfig: the configuration cannot be served as it is; the message
	// names the setting.
	ErrConfig = errors.New("server: configuration")
)

// Listener names, the keys of Addrs.
const (
	ListenerDNS    = "dns"    // UDP and TCP, the same port
	ListenerHTTPS  = "https"  // policy server, intake host and other HTTPS hosts
	ListenerHTTP   = "http"   // ACME HTTP-01 challenges
	ListenerReport = "report" // intake.report_listen
	ListenerSMTP   = "smtp"   // intake.smtp_listen
)

// A Part is one component of the running system.
//
// Start binds the part's listeners (reporting each with Env.Bound), starts
// its goroutines and returns; it must not block while serving. ctx bounds
// the start only: a part runs until Stop. An error from Start aborts the
// start of the whole system, and the parts started before it are stopped.
//
// Stop stops the part and waits for its goroutines; ctx bounds a graceful
// stop, after which the part closes what is left at once. Stop is called
// once, only after a successful Start.
type Part interface {
	Name() string
	Start(ctx context.Context, env *Env) error
	Stop(ctx context.Context) error
}

// HTTPSHoster is implemented by a Part that serves HTTP requests on the
// HTTPS listener for host names of its own (the dashboard on web.host).
// HTTPSHosts is called once, by New; certificates for those names come from
// the same machinery as the policy hosts'.
type HTTPSHoster interface {
	HTTPSHosts() map[string]http.Handler
}

// A PartFunc makes a part of the system. New calls it, before anything
// starts, with the environment the parts share.
type PartFunc func(env *Env) (Part, error)

// Options are the optional settings of New.
type Options struct {
	// Parts make further components, started after the built-in ones in
	// this order and stopped before them in the reverse order.
	Parts []PartFunc
}

// Server is the assembled system. Its methods are safe for concurrent use.
type Server struct {
	log   *slog.Logger
	cfg   *config.Config
	st    store.Store
	parts []Part
	env   *Env

	mu      sync.Mutex
	state   int // 0 new, 1 started, 2 shut down
	started []Part
	addrs   map[string]string

	failc chan error
}

// Env is what the running system shares with its parts.
type Env struct {
	Log       *slog.Logger
	Config    *config.Config
	Store     store.Store
	Snapshots *snapshot.Holder
	// Settings are the hosting settings derived from Config.
	Settings hosting.Settings
	// Ingester stores reports; it runs from its part's Start to its Stop,
	// which comes after every later part's Stop, so that what a later
	// part submitted is committed and answered.
	Ingester *intake.Ingester
	// HTTPSHosts are the handlers of the HTTPS listener's non-policy host
	// names: the intake host's and those of HTTPSHoster parts.
	HTTPSHosts map[string]http.Handler

	srv           *Server
	getCert       func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	reportHandler http.Handler
}

// New assembles the system over st, which must stay open until Shutdown
// returns. c must have passed Validate and ValidateServe.
func New(log *slog.Logger, c *config.Config, st store.Store, opts Options) (*Server, error) {
	if c.Intake.ReportListen != "" && c.Intake.ReportTLS && c.HTTPS.Listen == "" {
		return nil, fmt.Errorf("%w: intake.report_tls needs the certificate machinery of the HTTPS listener (https.listen); set intake.report_tls: false behind a TLS proxy", ErrConfig)
	}
	s := &Server{log: log, cfg: c, st: st, addrs: map[string]string{}, failc: make(chan error, 1)}
	holder := new(snapshot.Holder)
	var mp *metricsPart
	iopts := intake.IngestOpts{MaxDecompressed: c.Intake.MaxReportJSON, MaxDMARCXML: c.Intake.MaxDMARCXML,
		Spool: st, SpoolOpts: intake.SpoolOpts{MaxDelay: c.Intake.SpoolMaxDelay}}
	if c.Metrics.Listen != "" {
		mp = newMetricsPart(s)
		iopts.OnCommit = func(d time.Duration, _ int, err error) {
			mp.commit.Observe(d.Seconds())
			if err != nil {
				mp.commitErrs.Add(1)
			}
		}
	}
	ing := intake.NewIngester(log, st, func(domain string) bool { return holder.Load().Lookup(domain) != nil }, iopts)
	s.env = &Env{
		Log: log, Config: c, Store: st, Snapshots: holder, Settings: HostingSettings(c), Ingester: ing,
		HTTPSHosts: map[string]http.Handler{}, srv: s,
		reportHandler: intake.NewHTTPHandler(log, ing, intake.HTTPOpts{MaxBody: c.Intake.MaxReportSize, RatePerIP: c.Intake.RatePerIP}),
	}
	if c.Intake.Host != "" && c.HasRole(config.RoleIntake) {
		// POST /v1/tlsrpt on the HTTPS listener for the intake host; the
		// certificate for it comes from the same machinery.
		s.env.HTTPSHosts[c.Intake.Host] = s.env.reportHandler
	}
	var extra []Part
	for _, build := range opts.Parts {
		p, err := build(s.env)
		if err != nil {
			return nil, err
		}
		extra = append(extra, p)
		h, ok := p.(HTTPSHoster)
		if !ok {
			continue
		}
		for name, handler := range h.HTTPSHosts() {
			if _, dup := s.env.HTTPSHosts[name]; dup {
				return nil, fmt.Errorf("%w: HTTPS host %q is served by two parts", ErrConfig, name)
			}
			s.env.HTTPSHosts[name] = handler
		}
	}
	s.parts = append(builtinParts(c), extra...)
	if mp != nil {
		// Last: its /readyz says whether every other part has started.
		s.parts = append(s.parts, mp)
	}
	return s, nil
}

// HostingSettings returns the hosting settings of c: what every hosted
// domain's records and policy host are derived from.
func HostingSettings(c *config.Config) hosting.Settings {
	return hosting.Settings{Zone: c.Zone, PolicyHost: c.PolicyHost, RUA: c.PublishedRUA()}
}

// Start starts every part in order and returns when all of them are
// listening. On an error it stops the parts it started and returns the
// error, naming the part.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.state != 0 {
		s.mu.Unlock()
		return ErrState
	}
	s.state = 1
	s.mu.Unlock()
	for _, p := range s.parts {
		if err := p.Start(ctx, s.env); err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			serr := s.stopAll(sctx)
			cancel()
			return errors.Join(fmt.Errorf("%s: %w", p.Name(), err), serr)
		}
		s.mu.Lock()
		s.started = append(s.started, p)
		s.mu.Unlock()
	}
	return nil
}

// Shutdown stops the started parts in the reverse order of their start and
// waits for each. It returns the errors of their stops. It is safe to call
// more than once, and before or without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.state = 2
	s.mu.Unlock()
	return s.stopAll(ctx)
}

func (s *Server) stopAll(ctx context.Context) error {
	var errs []error
	for {
		s.mu.Lock()
		n := len(s.started)
		if n == 0 {
			s.mu.Unlock()
			return errors.Join(errs...)
		}
		p := s.started[n-1]
		s.started = s.started[:n-1]
		s.mu.Unlock()
		if err := p.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		}
	}
}

// Failed delivers the first error of a part that stopped on its own while
// running (a listener that died). The caller should shut down.
func (s *Server) Failed() <-chan error { return s.failc }

// Addr returns the address the named listener is bound to ("127.0.0.1:5353"),
// or "" when it is not configured or not started. Names: the Listener
// constants, and those that parts report.
func (s *Server) Addr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Addrs returns every bound listener's address, by name.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.addrs)
}

// Snapshots is the holder of what DNS and HTTPS serve.
func (s *Server) Snapshots() *snapshot.Holder { return s.env.Snapshots }

// Ingester is the report ingester; it runs between Start and Shutdown.
func (s *Server) Ingester() *intake.Ingester { return s.env.Ingester }

// Bound records the address a part's listener got, under name.
func (e *Env) Bound(name string, addr net.Addr) { e.boundString(name, addr.String()) }

func (e *Env) boundString(name, addr string) {
	e.srv.mu.Lock()
	e.srv.addrs[name] = addr
	e.srv.mu.Unlock()
}

// Fail reports that a running part stopped on its own with err; the system
// shuts down (see Server.Failed). Only the first failure is kept.
func (e *Env) Fail(name string, err error) {
	select {
	case e.srv.failc <- fmt.Errorf("%s: %w", name, err):
	default:
	}
}

// CertificateFor returns a GetCertificate function that answers every TLS
// client, whatever server name it sends or none, with the certificate of
// host, from the HTTPS listener's machinery (ACME or the development CA).
// Sending MTAs and report senders often send no SNI, or a name they looked
// up. It returns nil when no HTTPS listener is configured.
func (e *Env) CertificateFor(host string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if e.getCert == nil {
		return nil
	}
	get := e.getCert
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		h := *hello
		h.ServerName = host
		return get(&h)
	}
}

// group runs the goroutines of a part: each reports an unexpected end to
// the system through Env.Fail; stop cancels their context and waits.
type group struct {
	name     string
	cancel   context.CancelFunc
	stopping atomic.Bool
	wg       sync.WaitGroup
}

// start begins a group whose context carries ctx's values but not its
// cancellation: a part runs until Stop, not until the start ends.
func startGroup(ctx context.Context, name string) (*group, context.Context) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &group{name: name, cancel: cancel}, rctx
}

// goServe runs fn; an error it returns while the group is not being
// stopped is a failure of the system.
func (g *group) goServe(rctx context.Context, env *Env, fn func() error) {
	g.wg.Go(func() {
		err := fn()
		if g.stopping.Load() || rctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		env.Fail(g.name, err)
	})
}

// beginStop marks the group as stopping: its goroutines may now return
// without that being a failure.
func (g *group) beginStop() { g.stopping.Store(true) }

// stop cancels the group and waits for its goroutines until ctx ends.
func (g *group) stop(ctx context.Context) error {
	g.beginStop()
	g.cancel()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not stop in time: %w", ctx.Err())
	}
}
