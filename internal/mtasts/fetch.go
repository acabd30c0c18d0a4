package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
)

// WellKnownPath is the path of the policy on the Policy Host (RFC 8461 §3.2).
const WellKnownPath = "/.well-known/mta-sts.txt"

// PolicyHost returns the Policy Host of a policy domain: "mta-sts." +
// domain, lower-cased, without a trailing dot (RFC 8461 §3.2).
func PolicyHost(domain string) string {
	return "mta-sts." + strings.ToLower(strings.TrimSuffix(domain, "."))
}

// PolicyURL returns the URL of the policy of a policy domain:
// "https://mta-sts.<domain>/.well-known/mta-sts.txt" (RFC 8461 §3.2).
func PolicyURL(domain string) string {
	return "https://" + PolicyHost(domain) + WellKnownPath
}

// HostResolver resolves a host name to addresses. *net.Resolver satisfies
// it. network is "ip"; an empty answer with a nil error is treated as a
// resolution failure. Implementations must be safe for concurrent use.
type HostResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ HostResolver = (*net.Resolver)(nil)

// FetchOpts configures a Fetcher. The zero value of every field means its
// default.
type FetchOpts struct {
	// Resolver resolves the Policy Host for the dialer. Default: a
	// net.Resolver with the system configuration.
	Resolver HostResolver
	// RootCAs are the trusted roots for the Policy Host certificate.
	// Default (nil): the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the whole fetch: resolution, connection, TLS, request
	// and body. Default: one minute, the value suggested by RFC 8461 §3.3.
	// A shorter deadline on the context passed to Fetch also applies.
	Timeout time.Duration
	// MaxBodySize is the largest policy body accepted, in bytes. Default:
	// 64 KiB, the size suggested by RFC 8461 §3.3.
	MaxBodySize int64
	// Port is the TCP port dialed. Default: 443. Only tests change it; the
	// URL and the Host header never carry a port.
	Port int
	// AllowAddr, if set, is asked about every address the Policy Host
	// resolves to before it is dialed; an address for which it returns an
	// error is skipped. The address checked is the one dialed, so DNS
	// answers cannot bypass it. Default: every address is allowed.
	AllowAddr func(netip.Addr) error
	// Now is the clock for certificate validity. Default: time.Now.
	Now func() time.Time
	// UserAgent, if set, is sent as the User-Agent header. Default: Go's.
	UserAgent string
}

// Fetcher fetches MTA-STS policies over HTTPS (RFC 8461 §3.3). It is safe
// for concurrent use. It keeps no connections open between fetches, so it
// needs no closing.
type Fetcher struct {
	resolver  HostResolver
	roots     *x509.CertPool
	timeout   time.Duration
	maxBody   int64
	port      int
	allowAddr func(netip.Addr) error
	now       func() time.Time
	userAgent string
	client    *http.Client
}

// NewFetcher returns a Fetcher with its own HTTP transport.
func NewFetcher(opts FetchOpts) *Fetcher {
	f := &Fetcher{
		resolver:  opts.Resolver,
		roots:     opts.RootCAs,
		timeout:   opts.Timeout,
		maxBody:   opts.MaxBodySize,
		port:      opts.Port,
		allowAddr: opts.AllowAddr,
		now:       opts.Now,
		userAgent: opts.UserAgent,
	}
	if f.resolver == nil {
		f.resolver = &net.Resolver{}
	}
	if f.timeout <= 0 {
		f.timeout = time.Minute
	}
	if f.maxBody <= 0 {
		f.maxBody = 64 << 10
	}
	if f.port <= 0 {
		f.port = 443
	}
	if f.now == nil {
		f.now = time.Now
	}
	transport := &http.Transport{
		// Never use a proxy from the environment: the policy host is
		// contacted directly, at an address checked by AllowAddr.
		Proxy: nil,
		// RFC 8461 §3.3: policies are retrieved via HTTPS only. The URL is
		// always https; plain dials are refused as a safety net.
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, fmt.Errorf("%w: plain HTTP is never used", ErrFetchConnect)
		},
		DialTLSContext: f.dialTLS,
		// A fresh connection per fetch: every fetch verifies the
		// certificate at its own time and nothing is left open.
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	f.client = &http.Client{
		Transport: transport,
		// RFC 8461 §3.3: HTTP 3xx redirects MUST NOT be followed. The 3xx
		// response is returned and reported as ErrFetchRedirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// RFC 8461 §3.3: HTTP caching MUST NOT be used. net/http has no
		// cache and Fetch sends no conditional request headers.
	}
	return f
}

// FetchResult is what a fetch obtained. Fields that were not reached are
// zero.
type FetchResult struct {
	URL         string
	Addr        netip.AddrPort       // address of the Policy Host connected to
	TLS         *tls.ConnectionState // nil when the handshake failed
	Certs       []*x509.Certificate  // chain presented by the server, leaf first, also when verification failed
	StatusCode  int                  // HTTP status
	ContentType string               // Content-Type header as sent
	MediaType   string               // its media type, lower-cased ("" when absent or unparsable)
	Body        []byte               // the body, when it was read
	Policy      *Policy              // the parsed policy, when valid
}

// FetchError is the error of Fetcher.Fetch. Err wraps the sentinel of the
// rule that failed (ErrFetchDNS, ErrFetchTLS, ErrFetchStatus, ...) or the
// *PolicyError of an invalid policy.
type FetchError struct {
	Domain     string
	URL        string
	StatusCode int    // the HTTP status, for ErrFetchStatus and ErrFetchRedirect
	Location   string // the Location header, for ErrFetchRedirect
	MediaType  string // the media type seen, for ErrFetchMediaType ("" when absent)
	Err        error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("%v (fetching %s)", e.Err, e.URL)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Fetch fetches and parses the policy of domain from
// https://mta-sts.<domain>/.well-known/mta-sts.txt, applying every rule of
// RFC 8461 §3.3. domain is an A-label host name; one trailing dot is
// ignored.
//
// On error the result is still returned when the exchange got far enough to
// have something to show (certificates, status, body); it is nil when
// nothing was obtained. The error is a *FetchError.
func (f *Fetcher) Fetch(ctx context.Context, domain string) (*FetchResult, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	u := PolicyURL(domain)
	res := &FetchResult{URL: u}
	fail := func(fe *FetchError) (*FetchResult, error) {
		fe.Domain, fe.URL = domain, u
		if res.Addr.IsValid() || res.Certs != nil {
			return res, fe
		}
		return nil, fe
	}
	if err := dnsname.Check(domain, dnsname.Host); err != nil {
		return fail(&FetchError{Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)})
	}
	if err := dnsname.Check(PolicyHost(domain), dnsname.Host); err != nil {
		// The Policy Host adds "mta-sts." and may pass the length limit.
		return fail(&FetchError{Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)})
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// The transport dials on a context that keeps the request's values but
	// not its deadline, and reports a timeout during the dial as a bare
	// context error: the dialer records its step here so that the error
	// names it.
	st := &fetchStep{}
	ctx = context.WithValue(ctx, fetchStepKey{}, st)
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if ap, err := netip.ParseAddrPort(info.Conn.RemoteAddr().String()); err == nil {
				res.Addr = ap
			}
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
	if err != nil {
		return fail(&FetchError{Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)})
	}
	if f.userAgent != "" {
		req.Header.Set("User-Agent", f.userAgent)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			res.Certs = cve.UnverifiedCertificates
		}
		return fail(&FetchError{Err: f.classify(ctx, st, err)})
	}
	defer func() { _ = resp.Body.Close() }()
	if ctx.Err() != nil {
		// The deadline passed while the response was on its way: the
		// transport may still hand over a response the server cut
		// short when its side of the request was canceled.
		return fail(&FetchError{Err: f.classify(ctx, st, fmt.Errorf("%w: waiting for the response: %w", ErrFetchConnect, context.Cause(ctx)))})
	}
	if resp.TLS != nil {
		res.TLS = resp.TLS
		res.Certs = resp.TLS.PeerCertificates
	}
	res.StatusCode = resp.StatusCode
	res.ContentType = resp.Header.Get("Content-Type")

	// RFC 8461 §3.3: policies are only valid if the HTTP response code is
	// 200; 3xx redirects MUST NOT be followed.
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc := resp.Header.Get("Location")
		to := ""
		if loc != "" {
			to = " to " + quote(loc)
		}
		return fail(&FetchError{StatusCode: resp.StatusCode, Location: loc,
			Err: fmt.Errorf("%w: %w: HTTP %s%s; redirects are not followed", ErrFetchRedirect, ErrFetchStatus, resp.Status, to)})
	}
	if resp.StatusCode != http.StatusOK {
		return fail(&FetchError{StatusCode: resp.StatusCode, Err: fmt.Errorf("%w: HTTP %s", ErrFetchStatus, resp.Status)})
	}

	// RFC 8461 §3.2: senders SHOULD validate that the media type is
	// "text/plain"; parameters (charset and others) are ignored.
	mt, _, err := mime.ParseMediaType(res.ContentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		mt = ""
	}
	res.MediaType = mt
	if mt != "text/plain" {
		seen := "no Content-Type header"
		if res.ContentType != "" {
			seen = "Content-Type " + quote(res.ContentType)
		}
		return fail(&FetchError{MediaType: mt, Err: fmt.Errorf("%w: %s", ErrFetchMediaType, seen)})
	}

	// RFC 8461 §3.3: senders MAY limit the size of the response body.
	if resp.ContentLength > f.maxBody {
		return fail(&FetchError{Err: fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes", ErrFetchTooLarge, resp.ContentLength, f.maxBody)})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBody+1))
	if err == nil && ctx.Err() != nil {
		// The deadline can close the connection while the server is
		// ending a response it has cut short: a body read past the
		// deadline is not trusted to be complete.
		err = context.Cause(ctx)
	}
	if err != nil {
		return fail(&FetchError{Err: f.classify(ctx, st, fmt.Errorf("%w: reading body: %w", ErrFetchConnect, err))})
	}
	if int64(len(body)) > f.maxBody {
		return fail(&FetchError{Err: fmt.Errorf("%w: body exceeds the limit of %d bytes", ErrFetchTooLarge, f.maxBody)})
	}
	res.Body = body

	p, err := ParsePolicy(body)
	if err != nil {
		return fail(&FetchError{Err: err})
	}
	res.Policy = p
	return res, nil
}

// fetchStep is the step of a fetch the dialer is in, shared with Fetch
// through the request context.
type fetchStep struct {
	mu   sync.Mutex
	step error // ErrFetchDNS, ErrFetchConnect or ErrFetchTLS
}

type fetchStepKey struct{}

func setStep(ctx context.Context, step error) {
	if st, ok := ctx.Value(fetchStepKey{}).(*fetchStep); ok {
		st.mu.Lock()
		st.step = step
		st.mu.Unlock()
	}
}

func (st *fetchStep) get() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.step
}

// classify makes sure err names the failed step and whether time ran out.
func (f *Fetcher) classify(ctx context.Context, st *fetchStep, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	known := false
	for _, s := range []error{ErrFetchDNS, ErrFetchAddrRefused, ErrFetchConnect, ErrFetchTLS} {
		if errors.Is(err, s) {
			known = true
			break
		}
	}
	if !known {
		// The dial was abandoned (timeout, cancellation) in the step the
		// dialer recorded, or the connection was made and the HTTP
		// exchange failed (reset, malformed response, ...).
		step := st.get()
		if step == nil {
			step = ErrFetchConnect
		}
		err = fmt.Errorf("%w: %w", step, err)
	}
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w after %v: %w", ErrFetchTimeout, f.timeout, err)
	}
	return err
}

// dialTLS resolves the Policy Host with the configured resolver, checks
// each address with AllowAddr, connects, and completes the TLS handshake.
func (f *Fetcher) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetchConnect, err)
	}
	setStep(ctx, ErrFetchDNS)
	addrs, err := f.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetchDNS, host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s: no addresses", ErrFetchDNS, host)
	}
	var allowed []netip.Addr
	var refused []error
	for _, a := range addrs {
		a = a.Unmap()
		if f.allowAddr != nil {
			if err := f.allowAddr(a); err != nil {
				refused = append(refused, fmt.Errorf("%s: %w", a, err))
				continue
			}
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetchAddrRefused, host, errors.Join(refused...))
	}
	setStep(ctx, ErrFetchConnect)
	var dialer net.Dialer
	var dialErrs []error
	for _, a := range allowed {
		target := net.JoinHostPort(a.String(), strconv.Itoa(f.port))
		conn, err := dialer.DialContext(ctx, "tcp", target)
		if err != nil {
			dialErrs = append(dialErrs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		setStep(ctx, ErrFetchTLS)
		tc := tls.Client(conn, &tls.Config{
			// RFC 8461 §7.1: the SNI extension MUST contain the name of
			// the Policy Host. The same name is verified: RFC 8461 §3.3
			// requires a certificate valid for the "mta-sts" DNS-ID (RFC
			// 6125, DNS-ID only, wildcard as the whole left-most label),
			// chaining to a trusted root, and non-expired.
			ServerName: host,
			RootCAs:    f.roots,
			Time:       f.now,
			// RFC 8461 §7.2: TLS 1.2 or higher.
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			// The host answered: a certificate or protocol problem is the
			// verdict for this fetch, other addresses are not tried.
			return nil, fmt.Errorf("%w: %s at %s: %w", ErrFetchTLS, host, target, err)
		}
		// Past the handshake, failures belong to the HTTP exchange.
		setStep(ctx, ErrFetchConnect)
		return tc, nil
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrFetchConnect, host, errors.Join(dialErrs...))
}
