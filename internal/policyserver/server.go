// Package policyserver serves hosted MTA-STS policies (RFC 8461 §3.2 and
// §3.3) at https://mta-sts.<domain>/.well-known/mta-sts.txt for every domain
// of the serving snapshot, with certificates obtained on demand by ACME
// (RFC 8555; HTTP-01, and TLS-ALPN-01 of RFC 8737) for hosted policy hosts
// only. Certificates, the ACME account, challenge tokens and locks live in
// the shared store (see Storage), so every instance serves the same
// certificates and only one of them orders each. With a development CA
// (package devca) no ACME is used at all.
//
// The request path reads only the in-memory snapshot: no database access,
// no allocation beyond the Content-Length value.
package policyserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/snapshot"
)

// Errors.
var (
	// ErrOptions: New was given unusable arguments or options; the message
	// names the field.
	ErrOptions = errors.New("policyserver: invalid options")
	// ErrNotHosted: a TLS client or an ACME decision asked for a name that
	// is not "mta-sts.<hosted domain>". No certificate is served or ordered.
	ErrNotHosted = errors.New("policyserver: not a hosted policy host")
	// ErrServeOnce: Serve was called twice, or after Shutdown.
	ErrServeOnce = errors.New("policyserver: Serve may be called once, before Shutdown")
)

// Options configures a Server. Every zero value means the documented
// default.
type Options struct {
	// ACMECA is the ACME directory URL. Default: Let's Encrypt production
	// (certmagic.LetsEncryptProductionCA).
	ACMECA string
	// ACMEEmail is the contact address of the ACME account. Default: none.
	ACMEEmail string
	// ACMECARoot is a PEM file of root certificates trusted for talking to
	// the ACME server, instead of the system roots: for a private or test
	// ACME CA. Default: system roots.
	ACMECARoot string
	// DisableHTTPChallenge stops answering HTTP-01 on the HTTP listener
	// (it is disabled anyway when Serve gets no HTTP listener).
	DisableHTTPChallenge bool
	// DisableTLSALPNChallenge stops answering TLS-ALPN-01 on the HTTPS
	// listener.
	DisableTLSALPNChallenge bool
	// DevCA, when set, issues every certificate locally and no ACME is used
	// (`moat serve --dev`); the KV may then be nil.
	DevCA *devca.CA
	// CertCacheCapacity bounds the certificates held in memory; beyond it
	// certmagic evicts at random and reloads from the store on demand.
	// Default 10,000.
	CertCacheCapacity int
	// LockTTL is the expiry of certificate locks in the store, refreshed
	// every LockTTL/3 while held (see StorageOptions.LockTTL). Default 2
	// minutes.
	LockTTL time.Duration
	// ReadHeaderTimeout bounds reading request headers, and the TLS
	// handshake with it (slowloris). Default 10 seconds. The first
	// handshake for a newly hosted name waits for the ACME order inside
	// the handshake; when that takes longer than this, that one client
	// fails and later ones get the certificate, now cached and stored.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. Default 20 seconds.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 30 seconds.
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 60 seconds.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers; larger requests get 431.
	// A policy request needs a few hundred bytes. Default 8 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout bounds the graceful shutdown Serve performs when its
	// context ends. Default 10 seconds.
	ShutdownTimeout time.Duration
	// Services are other host names served on the same HTTPS listener, each
	// by its handler (e.g. the report intake host), with certificates from
	// the same machinery. Names are matched case-insensitively, without
	// port or trailing dot.
	Services map[string]http.Handler
	// NoPolicies serves no MTA-STS policy and obtains no certificate for
	// policy hosts: only the Services hosts (an instance that runs report
	// intake or the dashboard without the policy role).
	NoPolicies bool
	// OnCertificate, when set, is told of every certificate obtained or
	// renewed by ACME, and of the first one the development CA issues for
	// a name in this process: the name and the leaf. It runs in the
	// goroutine that obtained the certificate (for an on-demand name, the
	// first handshake), so it should be quick.
	OnCertificate func(ctx context.Context, name string, leaf *x509.Certificate)
}

func (o *Options) setDefaults() {
	if o.ACMECA == "" {
		o.ACMECA = certmagic.LetsEncryptProductionCA
	}
	if o.CertCacheCapacity <= 0 {
		o.CertCacheCapacity = 10000
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 20 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 8 << 10
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
}

// Server is the HTTPS policy server with its HTTP companion for ACME
// HTTP-01 challenges.
type Server struct {
	log     *slog.Logger
	snaps   *snapshot.Holder
	kv      KV
	opts    Options
	roots   *x509.CertPool // trusted for the ACME server; nil: system roots
	handler http.Handler

	services map[string]http.Handler // lower-case host → handler
	ready    chan struct{}           // closed once Serve has built the TLS config
	getCert  func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	mu       sync.Mutex
	started  bool
	closed   bool
	https    *http.Server
	plain    *http.Server
	cache    *certmagic.Cache
	storage  *Storage
	stopOnce sync.Once

	devIssued sync.Map // name → struct{}: dev certificates reported to OnCertificate

	// Counts for metrics.
	policyCounts                                *statusCounts
	serviceCounts                               map[string]*statusCounts
	refused                                     atomic.Uint64
	ordersStarted, ordersObtained, ordersFailed atomic.Uint64
}

// New returns a Server serving the policies of snaps. kv holds the
// certificates and locks; it may be nil only with opts.DevCA.
func New(log *slog.Logger, snaps *snapshot.Holder, kv KV, opts Options) (*Server, error) {
	if log == nil {
		return nil, fmt.Errorf("%w: nil logger", ErrOptions)
	}
	if snaps == nil {
		return nil, fmt.Errorf("%w: nil snapshot holder", ErrOptions)
	}
	if kv == nil && opts.DevCA == nil {
		return nil, fmt.Errorf("%w: a KV store is required unless DevCA is set", ErrOptions)
	}
	opts.setDefaults()
	s := &Server{log: log, snaps: snaps, kv: kv, opts: opts, ready: make(chan struct{}), services: map[string]http.Handler{}}
	s.serviceCounts = map[string]*statusCounts{}
	for name, h := range opts.Services {
		host := snapshot.Normalize(strings.ToLower(name))
		c := new(statusCounts)
		s.serviceCounts[host] = c
		s.services[host] = counted(h, c)
	}
	ph := &handler{snaps: snaps, counts: new(statusCounts)}
	s.policyCounts = ph.counts
	var policies http.Handler = ph
	if opts.NoPolicies {
		policies = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
	}
	s.handler = policies
	if len(s.services) > 0 {
		s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := s.services[hostOnly(r.Host)]; h != nil {
				h.ServeHTTP(w, r)
				return
			}
			policies.ServeHTTP(w, r)
		})
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		s.handler = logged(log, "https", s.handler)
	}
	if opts.ACMECARoot != "" && opts.DevCA == nil {
		pem, err := os.ReadFile(opts.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("%w: ACMECARoot: %w", ErrOptions, err)
		}
		s.roots = x509.NewCertPool()
		if !s.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ACMECARoot %s: no PEM certificate found", ErrOptions, opts.ACMECARoot)
		}
	}
	return s, nil
}

// Handler returns the policy handler the HTTPS listener serves.
func (s *Server) Handler() http.Handler { return s.handler }

// hosted reports whether name (a Host header or TLS server name) is
// "mta-sts.<domain>" for a domain of the current snapshot. It never blocks.
func (s *Server) hosted(name string) bool {
	if len(s.services) > 0 && s.services[hostOnly(name)] != nil {
		return true
	}
	if s.opts.NoPolicies {
		return false
	}
	d := policyDomain(name)
	return d != "" && s.snaps.Load().Lookup(d) != nil
}

// hostOnly lower-cases a Host header or server name and removes a port and
// a trailing dot.
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	return snapshot.Normalize(host)
}

// GetCertificate returns the certificate for a hosted policy host or a
// Services name, for other TLS listeners of the process (the report
// intake's own listener, SMTP STARTTLS). It waits until Serve has set up
// the certificate machinery, or fails when the handshake's context ends.
func (s *Server) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	select {
	case <-s.ready:
	case <-hello.Context().Done():
		return nil, hello.Context().Err()
	}
	return s.getCert(hello)
}

// decide is certmagic's on-demand DecisionFunc: certificates are obtained
// and renewed only for hosted policy hosts, decided from the in-memory
// snapshot.
func (s *Server) decide(_ context.Context, name string) error {
	if !s.hosted(name) {
		return fmt.Errorf("%w: %q", ErrNotHosted, name)
	}
	return nil
}

// guard wraps a GetCertificate callback so that names that are not hosted
// fail the handshake before any cache, store or ACME work, TLS-ALPN-01
// challenge handshakes included.
func (s *Server) guard(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if !s.hosted(hello.ServerName) {
			s.refused.Add(1)
			return nil, fmt.Errorf("%w: server name %q", ErrNotHosted, hello.ServerName)
		}
		return get(hello)
	}
}

const acmeChallengePrefix = "/.well-known/acme-challenge/"

// plainHandler serves the HTTP listener: ACME HTTP-01 challenges for hosted
// policy hosts, 404 for everything else. It never redirects to HTTPS.
func (s *Server) plainHandler(iss *certmagic.ACMEIssuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = hdrNoSniff
		if iss != nil && strings.HasPrefix(r.URL.Path, acmeChallengePrefix) && s.hosted(r.Host) && iss.HandleHTTPChallenge(w, r) {
			return
		}
		notFound(w)
	})
}

// Serve serves policies over TLS on httpsLn (a plain TCP listener; Serve
// adds TLS) and, when httpLn is not nil, ACME HTTP-01 challenges on httpLn.
// It blocks until ctx ends (then it shuts down gracefully within
// Options.ShutdownTimeout), Shutdown is called, or a listener fails; it
// returns nil after a shutdown, else the listener's error. Serve may be
// called once.
//
// certmagic answers challenges on its own listeners at ListenHost and the
// challenge ports; Serve points those at httpsLn's and httpLn's addresses,
// so that certmagic finds them taken by us and starts no listener.
func (s *Server) Serve(ctx context.Context, httpsLn, httpLn net.Listener) error {
	if httpsLn == nil {
		return fmt.Errorf("%w: nil HTTPS listener", ErrOptions)
	}
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return ErrServeOnce
	}
	s.started = true
	tlsCfg := &tls.Config{
		// TLS 1.2 is the floor of current interoperable TLS (RFC 8996
		// deprecates 1.0 and 1.1); sending MTAs support it.
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	}
	var iss *certmagic.ACMEIssuer
	if s.opts.DevCA != nil {
		tlsCfg.GetCertificate = s.guard(s.devCertificates(s.opts.DevCA.GetCertificateFunc(s.hosted)))
	} else {
		magic, issuer, err := s.newCertmagic(httpsLn, httpLn)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		iss = issuer
		tlsCfg.GetCertificate = s.guard(magic.GetCertificate)
		if !s.opts.DisableTLSALPNChallenge {
			// RFC 8737 §3: the validation handshake offers only "acme-tls/1";
			// certmagic's GetCertificate answers it with the challenge cert.
			tlsCfg.NextProtos = append(tlsCfg.NextProtos, acmez.ACMETLS1Protocol)
		}
	}
	s.getCert = tlsCfg.GetCertificate
	close(s.ready)
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	base := func(net.Listener) context.Context { return ctx }
	s.https = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ErrorLog:          errLog,
		BaseContext:       base,
		// A non-nil map disables HTTP/2: policy fetches are one request per
		// connection, where HTTP/2 only adds cost and attack surface. An
		// "acme-tls/1" connection is done once its handshake is.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			acmez.ACMETLS1Protocol: func(_ *http.Server, c *tls.Conn, _ http.Handler) { _ = c.Close() },
		},
	}
	if httpLn != nil {
		plain := s.plainHandler(iss)
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			plain = logged(s.log, "http", plain)
		}
		s.plain = &http.Server{
			Handler:           plain,
			ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
			ReadTimeout:       s.opts.ReadTimeout,
			WriteTimeout:      s.opts.WriteTimeout,
			IdleTimeout:       s.opts.IdleTimeout,
			MaxHeaderBytes:    s.opts.MaxHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       base,
		}
	}
	https, plain := s.https, s.plain
	s.mu.Unlock()

	attrs := []any{"https", httpsLn.Addr().String(), "acme", s.opts.DevCA == nil}
	if httpLn != nil {
		attrs = append(attrs, "http", httpLn.Addr().String())
	}
	s.log.Info("policy server listening", attrs...)

	errc := make(chan error, 2)
	running := 1
	go func() { errc <- https.Serve(tls.NewListener(httpsLn, tlsCfg)) }()
	if plain != nil {
		running++
		go func() { errc <- plain.Serve(httpLn) }()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		running--
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	serr := s.Shutdown(sctx)
	cancel()
	for ; running > 0; running-- {
		if err := <-errc; first == nil {
			first = err
		}
	}
	if first == nil || errors.Is(first, http.ErrServerClosed) {
		return serr
	}
	return fmt.Errorf("policyserver: serve: %w", first)
}

// newCertmagic builds the certificate cache, config and ACME issuer with
// our storage and logger (never certmagic's package-level defaults). It is
// called with s.mu held.
func (s *Server) newCertmagic(httpsLn, httpLn net.Listener) (*certmagic.Config, *certmagic.ACMEIssuer, error) {
	tlsHost, tlsPort, err := listenAddr(httpsLn)
	if err != nil {
		return nil, nil, err
	}
	tmpl := certmagic.ACMEIssuer{
		CA:                      s.opts.ACMECA,
		Email:                   s.opts.ACMEEmail,
		Agreed:                  true,
		TrustedRoots:            s.roots,
		DisableTLSALPNChallenge: s.opts.DisableTLSALPNChallenge,
		DisableHTTPChallenge:    s.opts.DisableHTTPChallenge || httpLn == nil,
		ListenHost:              tlsHost,
		AltTLSALPNPort:          tlsPort,
	}
	if !tmpl.DisableHTTPChallenge {
		_, httpPort, err := listenAddr(httpLn)
		if err != nil {
			return nil, nil, err
		}
		tmpl.AltHTTPPort = httpPort
	}
	zl := newZapLogger(s.log.Handler()).Named("certmagic")
	tmpl.Logger = zl
	storage := NewStorage(s.kv, StorageOptions{LockTTL: s.opts.LockTTL, Logger: s.log})
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Capacity:         s.opts.CertCacheCapacity,
		Logger:           zl,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage:  storage,
		Logger:   zl,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: s.decide},
		OnEvent:  s.onEvent,
		// Non-nil so that New does not build a default issuer.
		Issuers: []certmagic.Issuer{},
	})
	iss := certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{iss}
	s.cache, s.storage = cache, storage
	return magic, iss, nil
}

// listenAddr returns the host ("" for a wildcard address) and port of l.
func listenAddr(l net.Listener) (string, int, error) {
	host, portStr, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return "", 0, fmt.Errorf("%w: listener address %q: %w", ErrOptions, l.Addr(), err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return "", 0, fmt.Errorf("%w: listener address %q has no TCP port", ErrOptions, l.Addr())
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	return host, port, nil
}

// Shutdown stops accepting connections, waits for active requests until
// ctx ends, stops certificate maintenance and releases the certificate
// locks this instance holds. It is safe to call more than once and before
// Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	https, plain, cache, storage := s.https, s.plain, s.cache, s.storage
	s.mu.Unlock()
	var errs []error
	if https != nil {
		if err := https.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("policyserver: shutdown https: %w", err))
		}
	}
	if plain != nil {
		if err := plain.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("policyserver: shutdown http: %w", err))
		}
	}
	s.stopOnce.Do(func() {
		if cache != nil {
			cache.Stop()
		}
		if storage != nil {
			if err := storage.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// devCertificates reports the first certificate the development CA issues
// for each name to Options.OnCertificate.
func (s *Server) devCertificates(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.opts.OnCertificate == nil {
		return get
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hello)
		if err == nil && c.Leaf != nil {
			name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
			if _, seen := s.devIssued.LoadOrStore(name, struct{}{}); !seen {
				s.opts.OnCertificate(hello.Context(), name, c.Leaf)
			}
		}
		return c, err
	}
}

// onEvent is certmagic's event hook: a certificate obtained or renewed is
// read back from the storage and reported to Options.OnCertificate.
func (s *Server) onEvent(ctx context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtaining":
		s.ordersStarted.Add(1)
	case "cert_failed":
		s.ordersFailed.Add(1)
	case "cert_obtained":
		s.ordersObtained.Add(1)
	}
	if event != "cert_obtained" || s.opts.OnCertificate == nil {
		return nil
	}
	name, _ := data["identifier"].(string)
	path, _ := data["certificate_path"].(string)
	if name == "" || path == "" {
		return nil
	}
	s.mu.Lock()
	storage := s.storage
	s.mu.Unlock()
	if storage == nil {
		return nil
	}
	b, err := storage.Load(ctx, path)
	if err != nil {
		s.log.Warn("certificate obtained but not readable from the store", "name", name, "err", err)
		return nil
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		s.log.Warn("certificate obtained but not parsable", "name", name, "err", err)
		return nil
	}
	s.opts.OnCertificate(ctx, name, leaf)
	return nil
}
