package policyserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/snapshot"
)

// testLog returns a logger writing to the test's output while the test
// runs and discarding afterwards (certmagic may log from its own
// goroutines late).
func testLog(t *testing.T, level slog.Level) *slog.Logger {
	t.Helper()
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	done bool
	w    io.Writer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type running struct {
	srv       *Server
	httpsAddr string
	httpAddr  string // "" when no HTTP listener
}

// start runs srv on the given listeners until the test ends; the cleanup
// shuts it down and checks that Serve returned nil.
func start(t *testing.T, srv *Server, httpsLn, httpLn net.Listener) *running {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), httpsLn, httpLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r := &running{srv: srv, httpsAddr: httpsLn.Addr().String()}
	if httpLn != nil {
		r.httpAddr = httpLn.Addr().String()
	}
	return r
}

// startDev runs a server with a fresh development CA; it returns the
// server and a pool trusting the CA, read from dev-ca.pem.
func startDev(t *testing.T, holder *snapshot.Holder, opts Options) (*running, *x509.CertPool) {
	t.Helper()
	return startDevLogged(t, holder, opts, testLog(t, slog.LevelInfo))
}

// startDevLogged is startDev with the server's logger.
func startDevLogged(t *testing.T, holder *snapshot.Holder, opts Options, log *slog.Logger) (*running, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	ca, err := devca.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts.DevCA = ca
	srv, err := New(log, holder, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, srv, listen(t), listen(t))
	pemBytes, err := os.ReadFile(filepath.Join(dir, devca.RootFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("dev-ca.pem holds no certificate")
	}
	return r, pool
}

// client returns an HTTP client that dials addr whatever the URL host is,
// trusts roots, and reports redirects instead of following them.
func client(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestDevCAServesPolicy(t *testing.T) {
	t.Parallel()
	holder := testHolder("example.test")
	r, roots := startDev(t, holder, Options{})
	c := client(r.httpsAddr, roots)

	code, hdr, body := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt")
	if code != 200 || body != policyFor("example.test") {
		t.Fatalf("GET policy: %d %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	code, hdr, body = get(t, c, "HEAD", "https://MTA-STS.example.test/.well-known/mta-sts.txt?q=1")
	if code != 200 || body != "" || hdr.Get("Content-Length") != strconv.Itoa(len(policyFor("example.test"))) {
		t.Fatalf("HEAD policy: %d %q %v", code, body, hdr)
	}
	if code, _, _ := get(t, c, "POST", "https://mta-sts.example.test/.well-known/mta-sts.txt"); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}

	// Names that are not hosted get no certificate: the handshake fails.
	for _, name := range []string{"mta-sts.other.test", "example.test", "www.example.test"} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.httpsAddr,
			&tls.Config{ServerName: name, RootCAs: roots})
		if err == nil {
			_ = conn.Close()
			t.Errorf("handshake for %q succeeded", name)
		}
	}
	// No SNI at all (a client connecting by IP address).
	conn, err := tls.Dial("tcp", r.httpsAddr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		_ = conn.Close()
		t.Error("handshake without SNI succeeded")
	}

	// A domain added to the snapshot is served at once, certificate included.
	holder.Store(testSnapshot(2, "example.test", "new.test"))
	if code, _, body := get(t, c, "GET", "https://mta-sts.new.test/.well-known/mta-sts.txt"); code != 200 || body != policyFor("new.test") {
		t.Fatalf("new domain: %d %q", code, body)
	}
	// A removed one is not, not even with its cached certificate.
	holder.Store(testSnapshot(3, "new.test"))
	conn, err = tls.Dial("tcp", r.httpsAddr, &tls.Config{ServerName: "mta-sts.example.test", RootCAs: roots})
	if err == nil {
		_ = conn.Close()
		t.Error("handshake for a removed domain succeeded")
	}
}

// TestNoRedirect sends paths that a ServeMux would redirect; the server must
// answer 404 without Location, over TLS and on the HTTP listener.
func TestNoRedirect(t *testing.T) {
	t.Parallel()
	r, roots := startDev(t, testHolder("example.test"), Options{})
	for _, target := range []string{"//.well-known/mta-sts.txt", "/.well-known/./mta-sts.txt", "/.well-known", "/.well-known/mta-sts.txt/"} {
		conn, err := tls.Dial("tcp", r.httpsAddr, &tls.Config{ServerName: "mta-sts.example.test", RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		resp := rawRequest(t, conn, "GET "+target+" HTTP/1.1\r\nHost: mta-sts.example.test\r\nConnection: close\r\n\r\n")
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
			t.Errorf("https %s: %d Location %q, want 404 without redirect", target, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	c := client(r.httpAddr, nil)
	for _, url := range []string{
		"http://mta-sts.example.test/.well-known/mta-sts.txt",
		"http://mta-sts.example.test/",
		"http://mta-sts.example.test/.well-known/acme-challenge/abc",
	} {
		code, hdr, _ := get(t, c, "GET", url)
		if code != 404 || hdr.Get("Location") != "" {
			t.Errorf("http %s: %d Location %q, want 404 without redirect", url, code, hdr.Get("Location"))
		}
	}
}

func rawRequest(t *testing.T, conn net.Conn, req string) *http.Response {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// waitClosed reads from conn until the server closes it; it fails the test
// if the client-side limit passes first.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: server kept the connection open", what)
	}
}

func TestHostileTraffic(t *testing.T) {
	t.Parallel()
	holder := testHolder("example.test")
	r, roots := startDev(t, holder, Options{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, MaxHeaderBytes: 4096})
	c := client(r.httpsAddr, roots)
	healthy := func(when string) {
		t.Helper()
		if code, _, body := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt"); code != 200 || body != policyFor("example.test") {
			t.Fatalf("%s: policy request got %d %q", when, code, body)
		}
	}

	// Slow connections that send nothing, half a TLS record, or half an
	// HTTP request, held open while normal requests go on.
	var slow []net.Conn
	for i, prefix := range []string{"", "\x16\x03\x01\x02", ""} {
		addr := r.httpsAddr
		if i == 2 {
			addr = r.httpAddr
			prefix = "GET / HTTP/1.1\r\nHost: mta-sts.example.test\r\nX-A: "
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, prefix); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, conn)
	}
	healthy("with slow connections open")
	for i, conn := range slow {
		waitClosed(t, conn, "slowloris "+[]string{"silent TLS", "partial TLS record", "partial HTTP headers"}[i])
		_ = conn.Close()
	}

	// Garbage instead of a ClientHello.
	for _, garbage := range []string{
		strings.Repeat("\x00", 512),
		"GET / HTTP/1.1\r\nHost: mta-sts.example.test\r\n\r\n",
		"\x16\x03\x01\xff\xff" + strings.Repeat("\xaa", 4096),
	} {
		conn, err := net.Dial("tcp", r.httpsAddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, garbage)
		waitClosed(t, conn, "garbage")
		_ = conn.Close()
	}
	healthy("after garbage")

	// Oversized headers: 431, connection closed, server unaffected.
	conn, err := tls.Dial("tcp", r.httpsAddr, &tls.Config{ServerName: "mta-sts.example.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	resp := rawRequest(t, conn, "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.test\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: %d, want 431", resp.StatusCode)
	}
	healthy("after oversized headers")
}

func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	log := testLog(t, slog.LevelInfo)
	if _, err := New(log, testHolder(), nil, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("New without KV or DevCA: err = %v, want ErrOptions", err)
	}
	if _, err := New(log, nil, newMemKV(), Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("New without snapshot: err = %v, want ErrOptions", err)
	}
	bad := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(log, testHolder(), newMemKV(), Options{ACMECARoot: bad}); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), bad) {
		t.Errorf("New with bad ACMECARoot: err = %v, want ErrOptions naming the file", err)
	}
	if _, err := New(log, testHolder(), newMemKV(), Options{ACMECARoot: bad + ".missing"}); !errors.Is(err, ErrOptions) {
		t.Errorf("New with missing ACMECARoot: err = %v, want ErrOptions", err)
	}

	// Cancelling Serve's context shuts down cleanly and releases the ports.
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(log, testHolder("example.test"), nil, Options{DevCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	httpsLn := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, httpsLn, nil) }()
	c := client(httpsLn.Addr().String(), ca.Pool())
	if code, _, _ := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt"); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if conn, err := net.Dial("tcp", httpsLn.Addr().String()); err == nil {
		_ = conn.Close()
		t.Error("listener still accepting after shutdown")
	}
	if err := srv.Serve(context.Background(), listen(t), nil); !errors.Is(err, ErrServeOnce) {
		t.Errorf("second Serve: err = %v, want ErrServeOnce", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestServices serves another host name (the report intake) on the same
// listener with a certificate from the same machinery, and lends that
// machinery to another TLS listener through GetCertificate.
func TestServices(t *testing.T) {
	t.Parallel()
	intake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "intake "+r.URL.Path) })
	r, roots := startDev(t, testHolder("example.test"), Options{Services: map[string]http.Handler{"Reports.Example.NET.": intake}})
	c := client(r.httpsAddr, roots)
	if code, _, body := get(t, c, "POST", "https://reports.example.net/v1/tlsrpt"); code != 200 || body != "intake /v1/tlsrpt" {
		t.Fatalf("service host: %d %q", code, body)
	}
	if code, _, body := get(t, c, "GET", "https://mta-sts.example.test/.well-known/mta-sts.txt"); code != 200 || body != policyFor("example.test") {
		t.Fatalf("policy beside a service: %d %q", code, body)
	}

	ln := tls.NewListener(listen(t), &tls.Config{GetCertificate: r.srv.GetCertificate})
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = conn.(*tls.Conn).Handshake()
				conn.Close()
			}()
		}
	}()
	for name, ok := range map[string]bool{"reports.example.net": true, "mta-sts.example.test": true, "other.example.net": false} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: name, RootCAs: roots})
		if (err == nil) != ok {
			t.Errorf("GetCertificate for %s on another listener: err %v, want success %v", name, err, ok)
		}
		if err == nil {
			conn.Close()
		}
	}
}
