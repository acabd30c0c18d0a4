package mtasts_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/testpki"
)

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"

// fetchEnv is a DNS server that resolves every name under "test" to
// 127.0.0.1 and an HTTPS server with one virtual host per test domain.
type fetchEnv struct {
	ca       *testpki.CA
	srv      *httpsServer
	resolver *net.Resolver
}

func newFetchEnv(t *testing.T, hosts map[string]*vhost, tlsCfg *tls.Config) *fetchEnv {
	t.Helper()
	z := newZone()
	z.addrs["test"] = net.IPv4(127, 0, 0, 1)
	z.blackhole = []string{"slowdns.test"}
	z.add(t, "mta-sts.v6only.example. 60 IN AAAA ::1") // nothing listens there
	e := &fetchEnv{resolver: newResolver(startDNS(t, z), false)}
	e.ca = testpki.NewCA(t, "Fetch test CA")
	// Hosts without a certificate get a valid one for their name.
	for name, h := range hosts {
		if h.cert == nil {
			h.cert = e.ca.Valid(t, name)
		}
	}
	def := ""
	for name := range hosts {
		def = name
	}
	e.srv = newHTTPSServer(t, hosts, def, tlsCfg)
	return e
}

func (e *fetchEnv) fetcher(opts mtasts.FetchOpts) *mtasts.Fetcher {
	if opts.Resolver == nil {
		opts.Resolver = e.resolver
	}
	if opts.RootCAs == nil {
		opts.RootCAs = e.ca.Pool
	}
	if opts.Port == 0 {
		opts.Port = e.srv.port
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	return mtasts.NewFetcher(opts)
}

func TestFetchGood(t *testing.T) {
	t.Parallel()
	var gotReq *http.Request
	var mu sync.Mutex
	env := newFetchEnv(t, map[string]*vhost{
		"mta-sts.good.test": {handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			gotReq = r.Clone(context.Background())
			mu.Unlock()
			policyHandler(goodPolicy).ServeHTTP(w, r)
		})},
	}, nil)
	res, err := env.fetcher(mtasts.FetchOpts{UserAgent: "moat-test/1"}).Fetch(context.Background(), "Good.Test.")
	if err != nil {
		t.Fatal(err)
	}
	if res.Policy == nil || res.Policy.Mode != mtasts.ModeEnforce || !res.Policy.Match("mail.example.com") {
		t.Errorf("policy %+v", res.Policy)
	}
	if string(res.Body) != goodPolicy || res.MediaType != "text/plain" || res.StatusCode != 200 {
		t.Errorf("body %q media type %q status %d", res.Body, res.MediaType, res.StatusCode)
	}
	if res.URL != "https://mta-sts.good.test/.well-known/mta-sts.txt" {
		t.Errorf("URL %q", res.URL)
	}
	if res.Addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(env.srv.port)) {
		t.Errorf("Addr %v", res.Addr)
	}
	if res.TLS == nil || res.TLS.Version < tls.VersionTLS12 || len(res.Certs) == 0 || res.Certs[0].DNSNames[0] != "mta-sts.good.test" {
		t.Errorf("TLS %+v certs %v", res.TLS, res.Certs)
	}
	// RFC 8461 §7.1: SNI carries the Policy Host; the Host header is the
	// Policy Host without a port.
	if snis := env.srv.serverNames(); len(snis) != 1 || snis[0] != "mta-sts.good.test" {
		t.Errorf("SNI %q", snis)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotReq.Host != "mta-sts.good.test" || gotReq.Method != http.MethodGet || gotReq.URL.Path != "/.well-known/mta-sts.txt" {
		t.Errorf("request %s %s %s", gotReq.Method, gotReq.Host, gotReq.URL)
	}
	if gotReq.Header.Get("User-Agent") != "moat-test/1" {
		t.Errorf("User-Agent %q", gotReq.Header.Get("User-Agent"))
	}
}

func TestFetchHTTPRules(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int64
	status := func(code int, loc string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				targetHits.Add(1)
				policyHandler(goodPolicy).ServeHTTP(w, r)
				return
			}
			if loc != "" {
				w.Header().Set("Location", loc)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(goodPolicy))
		})
	}
	contentType := func(ct string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			_, _ = w.Write([]byte(goodPolicy))
		})
	}
	hosts := map[string]*vhost{
		"mta-sts.r301.test":     {handler: status(301, "/elsewhere")},
		"mta-sts.r302.test":     {handler: status(302, "https://mta-sts.good.test/elsewhere")},
		"mta-sts.r307.test":     {handler: status(307, "/elsewhere")},
		"mta-sts.r308.test":     {handler: status(308, "/elsewhere")},
		"mta-sts.r304.test":     {handler: status(304, "")},
		"mta-sts.s404.test":     {handler: status(404, "")},
		"mta-sts.s500.test":     {handler: status(500, "")},
		"mta-sts.s204.test":     {handler: status(204, "")},
		"mta-sts.s203.test":     {handler: status(203, "")},
		"mta-sts.utf8.test":     {handler: contentType("text/plain; charset=utf-8")},
		"mta-sts.upper.test":    {handler: contentType("TEXT/Plain")},
		"mta-sts.latin1.test":   {handler: contentType("text/plain; charset=iso-8859-1")},
		"mta-sts.badparam.test": {handler: contentType("text/plain; charset")},
		"mta-sts.html.test":     {handler: contentType("text/html; charset=utf-8")},
		"mta-sts.octet.test":    {handler: contentType("application/octet-stream")},
		"mta-sts.notype.test":   {handler: contentType("")},
		"mta-sts.plains.test":   {handler: contentType("text/plains")},
		"mta-sts.garbage.test":  {handler: policyHandler("garbage")},
		"mta-sts.nomx.test":     {handler: policyHandler("version: STSv1\nmode: enforce\nmax_age: 86400")},
	}
	env := newFetchEnv(t, hosts, nil)
	f := env.fetcher(mtasts.FetchOpts{})
	for _, tc := range []struct {
		domain    string
		err       []error
		status    int
		location  string
		mediaType string
	}{
		{"r301.test", []error{mtasts.ErrFetchRedirect, mtasts.ErrFetchStatus}, 301, "/elsewhere", ""},
		{"r302.test", []error{mtasts.ErrFetchRedirect, mtasts.ErrFetchStatus}, 302, "https://mta-sts.good.test/elsewhere", ""},
		{"r307.test", []error{mtasts.ErrFetchRedirect}, 307, "/elsewhere", ""},
		{"r308.test", []error{mtasts.ErrFetchRedirect}, 308, "/elsewhere", ""},
		{"r304.test", []error{mtasts.ErrFetchRedirect, mtasts.ErrFetchStatus}, 304, "", ""},
		{"s404.test", []error{mtasts.ErrFetchStatus}, 404, "", ""},
		{"s500.test", []error{mtasts.ErrFetchStatus}, 500, "", ""},
		{"s204.test", []error{mtasts.ErrFetchStatus}, 204, "", ""},
		{"s203.test", []error{mtasts.ErrFetchStatus}, 203, "", ""},
		{"utf8.test", nil, 0, "", ""},
		{"upper.test", nil, 0, "", ""},
		{"latin1.test", nil, 0, "", ""},   // RFC 8461 §3.2: other parameters are ignored
		{"badparam.test", nil, 0, "", ""}, // a malformed parameter is ignored too
		{"html.test", []error{mtasts.ErrFetchMediaType}, 0, "", "text/html"},
		{"octet.test", []error{mtasts.ErrFetchMediaType}, 0, "", "application/octet-stream"},
		{"notype.test", []error{mtasts.ErrFetchMediaType}, 0, "", ""},
		{"plains.test", []error{mtasts.ErrFetchMediaType}, 0, "", "text/plains"},
		{"garbage.test", []error{mtasts.ErrPolicySyntax}, 0, "", ""},
		{"nomx.test", []error{mtasts.ErrPolicyMX}, 0, "", ""},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			res, err := f.Fetch(context.Background(), tc.domain)
			if tc.err == nil {
				if err != nil || res.Policy == nil {
					t.Fatalf("got %v, want a policy", err)
				}
				return
			}
			for _, want := range tc.err {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not match %v", err, want)
				}
			}
			var fe *mtasts.FetchError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FetchError", err)
			}
			if fe.StatusCode != tc.status || fe.Location != tc.location || fe.MediaType != tc.mediaType {
				t.Errorf("status %d location %q media type %q", fe.StatusCode, fe.Location, fe.MediaType)
			}
			if fe.Domain != tc.domain || !strings.Contains(err.Error(), "https://mta-sts."+tc.domain+"/") {
				t.Errorf("error %q does not name the domain and URL", err)
			}
			if tc.status != 0 && !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			if res == nil || res.Certs == nil {
				t.Errorf("result %+v lacks the certificates", res)
			}
		})
	}
	// RFC 8461 §3.3: redirects MUST NOT be followed.
	if n := targetHits.Load(); n != 0 {
		t.Errorf("a redirect target was fetched %d times", n)
	}
	// An invalid policy is returned with its body for display.
	res, err := f.Fetch(context.Background(), "garbage.test")
	if err == nil || res == nil || string(res.Body) != "garbage" || res.Policy != nil {
		t.Errorf("garbage: result %+v, %v", res, err)
	}
}

func TestFetchCertificates(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Cert test CA")
	now := time.Now()
	var nilCA *testpki.CA
	hosts := map[string]*vhost{
		"mta-sts.good.test":       {cert: ca.Valid(t, "mta-sts.good.test")},
		"mta-sts.wildcard.test":   {cert: ca.Valid(t, "*.wildcard.test")},
		"mta-sts.toowild.test":    {cert: ca.Valid(t, "*.test")},
		"mta-sts.expired.test":    {cert: ca.Leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mta-sts.expired.test")},
		"mta-sts.notyet.test":     {cert: ca.Leaf(t, now.Add(24*time.Hour), now.Add(48*time.Hour), "mta-sts.notyet.test")},
		"mta-sts.selfsigned.test": {cert: nilCA.Valid(t, "mta-sts.selfsigned.test")},
		"mta-sts.wrongname.test":  {cert: ca.Valid(t, "wrongname.test", "www.wrongname.test")},
		// RFC 8461 §3.3: matching is performed only against DNS-IDs; a
		// name in the subject CN alone does not count.
		"mta-sts.cnonly.test": {cert: ca.Sign(t, &x509.Certificate{
			Subject: pkix.Name{CommonName: "mta-sts.cnonly.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})},
	}
	for _, h := range hosts {
		h.handler = policyHandler(goodPolicy)
	}
	env := newFetchEnv(t, hosts, nil)
	f := env.fetcher(mtasts.FetchOpts{RootCAs: ca.Pool})
	hostnameErr, authorityErr, invalidErr := new(x509.HostnameError), new(x509.UnknownAuthorityError), new(x509.CertificateInvalidError)
	for domain, wantAs := range map[string]any{
		"good.test":       nil,
		"wildcard.test":   nil, // RFC 8461 §3.3: "*" as the complete left-most label
		"toowild.test":    hostnameErr,
		"expired.test":    invalidErr,
		"notyet.test":     invalidErr,
		"selfsigned.test": authorityErr,
		"wrongname.test":  hostnameErr,
		"cnonly.test":     hostnameErr,
	} {
		t.Run(domain, func(t *testing.T) {
			res, err := f.Fetch(context.Background(), domain)
			if wantAs == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, mtasts.ErrFetchTLS) || !errors.As(err, wantAs) {
				t.Fatalf("got %v, want ErrFetchTLS wrapping %T", err, wantAs)
			}
			if res == nil || len(res.Certs) == 0 || res.TLS != nil {
				t.Errorf("result %+v: want the presented certificates and no TLS state", res)
			}
		})
	}
	// The clock is FetchOpts.Now: a valid certificate seen from the future.
	late := env.fetcher(mtasts.FetchOpts{RootCAs: ca.Pool, Now: func() time.Time { return now.Add(72 * time.Hour) }})
	_, err := late.Fetch(context.Background(), "good.test")
	var cie x509.CertificateInvalidError
	if !errors.As(err, &cie) || cie.Reason != x509.Expired {
		t.Errorf("good cert 72h later: %v, want expired", err)
	}
	// Without the test CA among the roots, the chain is not trusted.
	other := testpki.NewCA(t, "Unrelated CA")
	_, err = env.fetcher(mtasts.FetchOpts{RootCAs: other.Pool}).Fetch(context.Background(), "good.test")
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("untrusted roots: %v", err)
	}
}

// RFC 8461 §7.2: TLS 1.2 or later; a server limited to TLS 1.1 fails.
func TestFetchOldTLS(t *testing.T) {
	t.Parallel()
	env := newFetchEnv(t, map[string]*vhost{"mta-sts.old.test": {handler: policyHandler(goodPolicy)}},
		&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	_, err := env.fetcher(mtasts.FetchOpts{}).Fetch(context.Background(), "old.test")
	if !errors.Is(err, mtasts.ErrFetchTLS) {
		t.Fatalf("got %v, want ErrFetchTLS", err)
	}
}

func TestFetchSize(t *testing.T) {
	t.Parallel()
	pad := func(n int) string { // a valid policy of exactly n bytes
		p := goodPolicy + "x: "
		return p + strings.Repeat("a", n-len(p)-2) + "\r\n"
	}
	chunked := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			for i := 0; i < len(body); i += 1000 {
				_, _ = w.Write([]byte(body[i:min(i+1000, len(body))]))
				w.(http.Flusher).Flush()
			}
		})
	}
	gzipped := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				policyHandler(body).ServeHTTP(w, r)
				return
			}
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(b.Bytes())
		})
	}
	big := goodPolicy + "x: " + strings.Repeat("a", 1<<20) + "\r\n"
	env := newFetchEnv(t, map[string]*vhost{
		"mta-sts.exact.test":       {handler: policyHandler(pad(200))},
		"mta-sts.over.test":        {handler: policyHandler(pad(201))},
		"mta-sts.chunkexact.test":  {handler: chunked(pad(200))},
		"mta-sts.chunkover.test":   {handler: chunked(pad(201))},
		"mta-sts.default64k.test":  {handler: policyHandler(pad(64 << 10))},
		"mta-sts.defaultover.test": {handler: chunked(pad(64<<10 + 1))},
		"mta-sts.gzip.test":        {handler: gzipped(goodPolicy)},
		"mta-sts.gzipbomb.test":    {handler: gzipped(big)},
	}, nil)
	small := env.fetcher(mtasts.FetchOpts{MaxBodySize: 200})
	def := env.fetcher(mtasts.FetchOpts{})
	for _, tc := range []struct {
		f       *mtasts.Fetcher
		domain  string
		tooBig  bool
		bodyLen int
	}{
		{small, "exact.test", false, 200},
		{small, "over.test", true, 0},
		{small, "chunkexact.test", false, 200},
		{small, "chunkover.test", true, 0},
		{def, "default64k.test", false, 64 << 10},
		{def, "defaultover.test", true, 0},
		{def, "gzip.test", false, len(goodPolicy)},
		{def, "gzipbomb.test", true, 0}, // the limit applies to decoded bytes
	} {
		res, err := tc.f.Fetch(context.Background(), tc.domain)
		if tc.tooBig {
			if !errors.Is(err, mtasts.ErrFetchTooLarge) {
				t.Errorf("%s: got %v, want ErrFetchTooLarge", tc.domain, err)
			}
			continue
		}
		if err != nil || len(res.Body) != tc.bodyLen {
			t.Errorf("%s: got %v, body of %d bytes; want %d", tc.domain, err, len(res.Body), tc.bodyLen)
		}
	}
}

func TestFetchNetworkErrors(t *testing.T) {
	stop := make(chan struct{})
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	slowBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("version: STSv1\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	env := newFetchEnv(t, map[string]*vhost{
		"mta-sts.good.test":     {handler: policyHandler(goodPolicy)},
		"mta-sts.hang.test":     {handler: hang},
		"mta-sts.slowbody.test": {handler: slowBody},
	}, nil)
	t.Cleanup(func() { close(stop) }) // runs before the server closes

	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	// A port that accepts TCP connections and never speaks TLS.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var silentConns sync.WaitGroup
	silentConns.Add(1)
	go func() {
		defer silentConns.Done()
		var held []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = silent.Close()
		silentConns.Wait()
	})
	silentPort := silent.Addr().(*net.TCPAddr).Port

	refuseAll := func(a netip.Addr) error { return fmt.Errorf("%v is loopback", a) }
	var asked []netip.Addr
	var askedMu sync.Mutex
	allowAll := func(a netip.Addr) error {
		askedMu.Lock()
		asked = append(asked, a)
		askedMu.Unlock()
		return nil
	}
	// Timeouts short enough for a fast test; the two that must get past
	// the TLS handshake before timing out get more, so that a loaded
	// machine still times out in the intended step.
	short := 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		opts   mtasts.FetchOpts
		domain string
		want   []error
	}{
		{"nxdomain", mtasts.FetchOpts{}, "nowhere.example", []error{mtasts.ErrFetchDNS}},
		{"dns timeout", mtasts.FetchOpts{Timeout: short}, "slowdns.test", []error{mtasts.ErrFetchDNS, mtasts.ErrFetchTimeout}},
		{"refused port", mtasts.FetchOpts{Port: closedPort}, "good.test", []error{mtasts.ErrFetchConnect}},
		{"v6 address, nothing listening", mtasts.FetchOpts{}, "v6only.example", []error{mtasts.ErrFetchConnect}},
		{"AllowAddr refuses", mtasts.FetchOpts{AllowAddr: refuseAll}, "good.test", []error{mtasts.ErrFetchAddrRefused}},
		{"AllowAddr allows", mtasts.FetchOpts{AllowAddr: allowAll}, "good.test", nil},
		{"TLS handshake never answered", mtasts.FetchOpts{Timeout: short, Port: silentPort}, "good.test", []error{mtasts.ErrFetchTLS, mtasts.ErrFetchTimeout}},
		{"no response", mtasts.FetchOpts{Timeout: 3 * short}, "hang.test", []error{mtasts.ErrFetchTimeout, mtasts.ErrFetchConnect}},
		{"slow body", mtasts.FetchOpts{Timeout: 3 * short}, "slowbody.test", []error{mtasts.ErrFetchTimeout, mtasts.ErrFetchConnect}},
		{"empty domain", mtasts.FetchOpts{}, "", []error{mtasts.ErrInvalidDomain}},
		{"space", mtasts.FetchOpts{}, "a b.test", []error{mtasts.ErrInvalidDomain}},
		{"path", mtasts.FetchOpts{}, "good.test/evil", []error{mtasts.ErrInvalidDomain}},
		{"userinfo", mtasts.FetchOpts{}, "x@good.test", []error{mtasts.ErrInvalidDomain}},
		{"port", mtasts.FetchOpts{}, "good.test:8443", []error{mtasts.ErrInvalidDomain}},
		{"literal", mtasts.FetchOpts{}, "[127.0.0.1]", []error{mtasts.ErrInvalidDomain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := env.fetcher(tc.opts).Fetch(context.Background(), tc.domain)
			if tc.want == nil {
				if err != nil || res.Policy == nil {
					t.Fatalf("got %v", err)
				}
				askedMu.Lock()
				defer askedMu.Unlock()
				if len(asked) != 1 || asked[0] != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("AllowAddr asked about %v", asked)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not match %v", err, w)
				}
			}
			if !slices.Contains(tc.want, mtasts.ErrFetchTimeout) && errors.Is(err, mtasts.ErrFetchTimeout) {
				t.Errorf("error %v claims a timeout", err)
			}
			if errors.Is(err, mtasts.ErrFetchAddrRefused) && (res != nil || !strings.Contains(err.Error(), "127.0.0.1 is loopback")) {
				t.Errorf("refusal %v: result %+v, want nil and the hook's reason", err, res)
			}
			if errors.Is(err, mtasts.ErrInvalidDomain) && res != nil {
				t.Errorf("result %+v for an invalid domain", res)
			}
		})
	}
}

// A canceled context is reported as such, not as a timeout.
func TestFetchCanceled(t *testing.T) {
	t.Parallel()
	env := newFetchEnv(t, map[string]*vhost{"mta-sts.good.test": {handler: policyHandler(goodPolicy)}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := env.fetcher(mtasts.FetchOpts{}).Fetch(ctx, "good.test")
	if !errors.Is(err, context.Canceled) || errors.Is(err, mtasts.ErrFetchTimeout) {
		t.Errorf("got %v, want context.Canceled and no timeout", err)
	}
}

// RFC 8461 §3.3: HTTP caching MUST NOT be used: every fetch reaches the
// server, on a new connection, without conditional headers.
func TestFetchNoCache(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	var conditional atomic.Int64
	env := newFetchEnv(t, map[string]*vhost{"mta-sts.cache.test": {handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		policyHandler(goodPolicy).ServeHTTP(w, r)
	})}}, nil)
	f := env.fetcher(mtasts.FetchOpts{})
	for range 3 {
		if _, err := f.Fetch(context.Background(), "cache.test"); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 3 || conditional.Load() != 0 {
		t.Errorf("%d requests reached the server (want 3), %d conditional", hits.Load(), conditional.Load())
	}
	if n := len(env.srv.serverNames()); n != 3 {
		t.Errorf("%d TLS handshakes, want one per fetch", n)
	}
}

// Proxies from the environment are never used.
func TestFetchIgnoresProxyEnvironment(t *testing.T) {
	env := newFetchEnv(t, map[string]*vhost{"mta-sts.good.test": {handler: policyHandler(goodPolicy)}}, nil)
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("https_proxy", "http://127.0.0.1:1")
	if _, err := env.fetcher(mtasts.FetchOpts{}).Fetch(context.Background(), "good.test"); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyURL(t *testing.T) {
	t.Parallel()
	if got := mtasts.PolicyURL("Example.COM."); got != "https://mta-sts.example.com/.well-known/mta-sts.txt" {
		t.Errorf("PolicyURL = %q", got)
	}
	if got := mtasts.PolicyHost("example.com"); got != "mta-sts.example.com" {
		t.Errorf("PolicyHost = %q", got)
	}
}
