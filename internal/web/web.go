// Package web is Moat's dashboard and REST API, one server.Part of `moat
// serve`: pages rendered on the server (html/template, htmx for partial
// updates, SVG charts) and the JSON API under /api/v1 (package api), for
// the organizations, users and API tokens of the store.
//
// It is served on the HTTPS listener for web.host (its certificate from the
// same machinery as the policy hosts) and, when web.listen is set, on a
// listener of its own: TLS with the web host's certificate, or plain HTTP
// under --dev and behind the trusted proxies of web.trusted_proxies.
//
// Safe to expose: passwords hashed with argon2id, sessions stored
// server-side (the cookie holds a random secret; the store its hash) in
// HttpOnly, SameSite=Lax, Secure cookies; sign-in rate-limited per client
// address and per account; every state-changing request checked by Go's
// cross-origin protection; a Content-Security-Policy without inline script,
// frame-ancestors 'none', Referrer-Policy and nosniff on every response.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/server"
)

// ListenerWeb is the name of web.listen in the server's addresses.
const ListenerWeb = "web"

// Options are the optional settings of New.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Password are the argon2id parameters of new password hashes; the
	// zero value means auth.DefaultParams.
	Password auth.Params
	// API serves /api/v1/ (package api); nil answers 404 there.
	API http.Handler
	// Pages registers the dashboard's pages on the mux, after the
	// sign-in, sign-out and static routes.
	Pages func(mux *http.ServeMux, s *Server)
}

// Server is the dashboard and API. It implements server.Part and
// server.HTTPSHoster.
type Server struct {
	log     *slog.Logger
	cfg     *config.Config
	st      auth.Store
	opts    Options
	trusted []netip.Prefix
	handler http.Handler
	tmpl    *templates

	ipLimit   *ratelimit.Limiter[netip.Prefix]
	userLimit *ratelimit.Limiter[string]
	// dummyHash is verified when a sign-in names an unknown account, so
	// that the answer takes as long as for a known one (no account
	// enumeration by timing). Made at the first sign-in.
	dummyHash func() string

	srv  *http.Server
	wg   sync.WaitGroup
	addr string
}

var (
	_ server.Part        = (*Server)(nil)
	_ server.HTTPSHoster = (*Server)(nil)
)

// New builds the dashboard and API over st.
func New(log *slog.Logger, c *config.Config, st auth.Store, opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Password == (auth.Params{}) {
		opts.Password = auth.DefaultParams
	}
	trusted, err := c.TrustedProxies()
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: log, cfg: c, st: st, opts: opts, trusted: trusted,
		// Sign-in attempts: 10 a minute per client network, bursts of 10;
		// 5 a minute per account, bursts of 10 (a guessing attacker spread
		// over many addresses still gets 7,200 guesses a day at most, and
		// argon2id makes each cost the server 60 ms: both are logged).
		ipLimit:   ratelimit.New[netip.Prefix](10.0/60, 10, 100000),
		userLimit: ratelimit.New[string](5.0/60, 10, 100000),
	}
	s.dummyHash = sync.OnceValue(func() string {
		h, _ := auth.HashPassword("not the password of anybody", opts.Password)
		return h
	})
	templates, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s.tmpl = templates
	s.handler = s.routes(templates)
	return s, nil
}

// Name implements server.Part.
func (s *Server) Name() string { return "web" }

// Handler is the dashboard and API, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPSHosts serves the dashboard on the HTTPS listener for web.host.
func (s *Server) HTTPSHosts() map[string]http.Handler {
	if s.cfg.Web.Host == "" {
		return nil
	}
	return map[string]http.Handler{s.cfg.Web.Host: s.handler}
}

// plainHTTP reports whether web.listen serves plain HTTP: under --dev, or
// behind trusted proxies that terminate TLS.
func (s *Server) plainHTTP() bool { return s.cfg.Dev || len(s.trusted) > 0 }

// secureCookies reports whether cookies are marked Secure: always but on
// the plain HTTP of --dev (a browser on http://127.0.0.1 would not send
// them back).
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || len(s.trusted) > 0 || !s.cfg.Dev
}

// Start binds web.listen, when set.
func (s *Server) Start(ctx context.Context, env *server.Env) error {
	addr := s.cfg.Web.Listen
	if addr == "" {
		return nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("web listener: %w", err)
	}
	env.Bound(ListenerWeb, l.Addr())
	s.addr = l.Addr().String()
	if !s.plainHTTP() {
		get := env.CertificateFor(s.cfg.Web.Host)
		if get == nil {
			_ = l.Close()
			return fmt.Errorf("%w: web.listen serves TLS with the certificate of web.host, which needs the HTTPS listener (https.listen); behind a TLS-terminating proxy list it in web.trusted_proxies", server.ErrConfig)
		}
		l = tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: get, NextProtos: []string{"h2", "http/1.1"}})
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Fail(s.Name(), err)
		}
	})
	s.log.Info("dashboard listening", "addr", s.addr, "tls", !s.plainHTTP(), "host", s.cfg.Web.Host)
	return nil
}

// Stop lets requests in progress finish until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	s.wg.Wait()
	return err
}
