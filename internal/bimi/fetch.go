package bimi

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
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// IPResolver resolves host names; *net.Resolver implements it. It must be
// safe for concurrent use.
type IPResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// FetchOpts configures Fetch. The zero value is usable and safe.
type FetchOpts struct {
	// Resolver resolves the URL's host; nil means net.DefaultResolver.
	Resolver IPResolver
	// RootCAs verifies the server certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// AllowAddr is asked about every resolved address before it is
	// dialled and returns an error to refuse it; nil means PublicOnly.
	// The address checked is the address dialled, so a name that
	// resolves differently a second time (DNS rebinding) gains nothing.
	AllowAddr func(netip.Addr) error
	// Timeout bounds the whole fetch, redirects included; zero means 15 s.
	Timeout time.Duration
	// MaxSize bounds the body in bytes; zero means 64 KiB, enough for an
	// SVG indicator (the BIMI Group recommends at most 32 KiB) and for a
	// PEM evidence document (a VMC chain is a few KiB).
	MaxSize int64
	// Port, when not zero, is dialled instead of the URL's port (tests).
	Port int
}

// Fetched is a fetched document.
type Fetched struct {
	URL         string // the final URL, after redirects
	ContentType string // the media type of the Content-Type header, lower-case, without parameters
	Body        []byte
	Certs       []*x509.Certificate // the final server's chain as presented
}

// FetchError says why a fetch failed. It wraps ErrFetch and the cause
// (ErrAddressRefused when the address guard refused every address).
type FetchError struct {
	URL    string // the URL being fetched when it failed
	Reason string
	Err    error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("bimi: fetch %s: %s", e.URL, e.Reason)
}

// Unwrap returns ErrFetch and the cause.
func (e *FetchError) Unwrap() []error { return []error{ErrFetch, e.Err} }

// maxRedirects is the number of redirects Fetch follows.
const maxRedirects = 3

// Fetch gets an https URL, the indicator of l= or the evidence document of
// a=, as draft §7.5 says: over HTTPS only, with a certificate that chains
// to a trusted root, following at most 3 redirects and only to https. The
// host is resolved through opts.Resolver and every address is checked by
// opts.AllowAddr before it is dialled; the body is bounded by MaxSize and
// the whole exchange by Timeout. A status other than 200 is an error.
// Errors are *FetchError.
func Fetch(ctx context.Context, rawURL string, opts FetchOpts) (*Fetched, error) {
	ferr := func(u, reason string, err error) error {
		return &FetchError{URL: u, Reason: reason, Err: err}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, ferr(rawURL, "not a URL", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, ferr(rawURL, "only https URLs are fetched (draft §7.5)", nil)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	maxSize := opts.MaxSize
	if maxSize <= 0 {
		maxSize = 64 << 10
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	d := &dialer{opts: opts}
	tr := &http.Transport{
		Proxy:                  nil, // never through an environment proxy
		DialContext:            d.dial,
		TLSClientConfig:        &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 32 << 10,
		DisableKeepAlives:      true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			// Draft §7.5: the indicator MUST be retrieved over HTTPS.
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %s, which is not https", req.URL.Redacted())
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, ferr(rawURL, "cannot build the request", err)
	}
	req.Header.Set("User-Agent", "moat-check (BIMI)")
	req.Header.Set("Accept", "image/svg+xml, application/x-pem-file, */*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		return nil, ferr(rawURL, describe(err, timeout), err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK {
		return nil, ferr(final, fmt.Sprintf("HTTP status %d, want 200", resp.StatusCode), nil)
	}
	if resp.ContentLength > maxSize {
		return nil, ferr(final, fmt.Sprintf("Content-Length %d is over the %d byte limit", resp.ContentLength, maxSize), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSize+1))
	if err != nil {
		return nil, ferr(final, describe(err, timeout), err)
	}
	if int64(len(body)) > maxSize {
		return nil, ferr(final, fmt.Sprintf("body is over the %d byte limit", maxSize), nil)
	}
	f := &Fetched{URL: final, Body: body}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			f.ContentType = mt
		} else {
			f.ContentType = strings.ToLower(strings.TrimSpace(ct))
		}
	}
	if resp.TLS != nil {
		f.Certs = resp.TLS.PeerCertificates
	}
	return f, nil
}

// describe turns a transport error into a short reason.
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timeout after %s", timeout)
	}
	if errors.Is(err, ErrAddressRefused) {
		return "refused address: " + innermost(err)
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return "certificate not valid: " + cve.Err.Error()
	}
	return innermost(err)
}

// innermost returns the text of the error below url.Error, which repeats
// the URL.
func innermost(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// dialer resolves and dials, refusing disallowed addresses.
type dialer struct {
	opts FetchOpts
}

func (d *dialer) dial(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if d.opts.Port != 0 {
		port = strconv.Itoa(d.opts.Port)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		var r IPResolver = net.DefaultResolver
		if d.opts.Resolver != nil {
			r = d.opts.Resolver
		}
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no address", host)
		}
	}
	allow := d.opts.AllowAddr
	if allow == nil {
		allow = PublicOnly
	}
	var errs []error
	var nd net.Dialer
	for _, a := range addrs {
		a = a.WithZone("")
		if err := allow(a); err != nil {
			// Wrapped so that errors.Is(err, ErrAddressRefused) holds
			// whatever error AllowAddr returns.
			if !errors.Is(err, ErrAddressRefused) {
				err = fmt.Errorf("%w: %s: %w", ErrAddressRefused, a, err)
			}
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		// The address checked is the address dialled.
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
