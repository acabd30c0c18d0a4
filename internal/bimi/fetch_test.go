package bimi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/testpki"
)

// mapResolver resolves names from a map; other names do not exist.
type mapResolver map[string]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := m[host]
	if !ok {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

func allowAll(netip.Addr) error { return nil }

// startTLS starts an HTTPS server on 127.0.0.1 with a certificate for
// names and returns its port.
func startTLS(t *testing.T, ca *testpki.CA, h http.Handler, names ...string) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*ca.Valid(t, names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

const goodSVG = `<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 1 1"><title>t</title></svg>`

func TestFetch(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Moat Test CA")
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/logo.svg", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
		w.Write([]byte(goodSVG))
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello"))
	})
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://logo.example/logo.svg", http.StatusFound)
	})
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n == 0 {
			http.Redirect(w, r, "/logo.svg", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-evil", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/logo.svg", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(70<<10))
		w.Write(make([]byte, 70<<10))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 70; i++ {
			w.Write(make([]byte, 1<<10))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	port := startTLS(t, ca, mux, "logo.example", "evil.example")
	res := mapResolver{"logo.example": "127.0.0.1", "evil.example": "127.0.0.2"}
	opts := FetchOpts{Resolver: res, RootCAs: ca.Pool, AllowAddr: allowAll, Port: port}
	ctx := context.Background()

	f, err := Fetch(ctx, "https://logo.example/logo.svg", opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Body) != goodSVG || f.ContentType != "image/svg+xml" || f.URL != "https://logo.example/logo.svg" || len(f.Certs) != 1 || f.Certs[0].Subject.CommonName != "logo.example" {
		t.Errorf("got %+v", f)
	}
	if p := CheckSVG(f.Body); len(p) != 0 {
		t.Errorf("fetched SVG: %+v", p)
	}
	f, err = Fetch(ctx, "https://logo.example/plain", opts)
	if err != nil || f.ContentType != "text/plain" {
		t.Errorf("plain: %+v, %v", f, err)
	}

	// Three redirects are followed, the fourth is not.
	f, err = Fetch(ctx, "https://logo.example/hop/2", opts)
	if err != nil || f.URL != "https://logo.example/logo.svg" {
		t.Errorf("3 redirects: %+v, %v", f, err)
	}
	if _, err := Fetch(ctx, "https://logo.example/hop/3", opts); err == nil || !strings.Contains(err.Error(), "more than 3 redirects") {
		t.Errorf("4 redirects: got %v", err)
	}

	errTests := []struct {
		name, url string
		opts      FetchOpts
		reason    string
		is        error
	}{
		{"redirect to http", "https://logo.example/to-http", opts, "not https", ErrFetch},
		{"http URL", "http://logo.example/logo.svg", opts, "only https", ErrFetch},
		{"too large", "https://logo.example/big", opts, "Content-Length 71680 is over the 65536 byte limit", ErrFetch},
		{"too large chunked", "https://logo.example/big-chunked", opts, "body is over the 65536 byte limit", ErrFetch},
		{"small limit", "https://logo.example/logo.svg", FetchOpts{Resolver: res, RootCAs: ca.Pool, AllowAddr: allowAll, Port: port, MaxSize: 10}, "over the 10 byte limit", ErrFetch},
		{"not found", "https://logo.example/missing.svg", opts, "HTTP status 404", ErrFetch},
		{"unknown host", "https://nowhere.example/logo.svg", opts, "no such host", ErrFetch},
		{"untrusted", "https://logo.example/logo.svg", FetchOpts{Resolver: res, AllowAddr: allowAll, Port: port}, "certificate not valid", ErrFetch},
		{"wrong name", "https://other.example/logo.svg", FetchOpts{Resolver: mapResolver{"other.example": "127.0.0.1"}, RootCAs: ca.Pool, AllowAddr: allowAll, Port: port}, "other.example", ErrFetch},
		{"timeout", "https://logo.example/slow", FetchOpts{Resolver: res, RootCAs: ca.Pool, AllowAddr: allowAll, Port: port, Timeout: 300 * time.Millisecond}, "timeout after 300ms", ErrFetch},
		// The default guard refuses loopback.
		{"loopback refused", "https://logo.example/logo.svg", FetchOpts{Resolver: res, RootCAs: ca.Pool, Port: port}, "127.0.0.1 is loopback", ErrAddressRefused},
		{"IP literal refused", "https://127.0.0.1/logo.svg", FetchOpts{RootCAs: ca.Pool, Port: port}, "loopback", ErrAddressRefused},
		// A redirect is checked again: evil.example resolves to a
		// refused address.
		{"redirect refused", "https://logo.example/to-evil", FetchOpts{Resolver: res, RootCAs: ca.Pool, Port: port, AllowAddr: func(a netip.Addr) error {
			if a == netip.MustParseAddr("127.0.0.2") {
				return errors.New("not for you")
			}
			return nil
		}}, "127.0.0.2: not for you", ErrAddressRefused},
	}
	for _, tc := range errTests {
		before := hits.Load()
		f, err := Fetch(ctx, tc.url, tc.opts)
		var fe *FetchError
		if !errors.As(err, &fe) || !errors.Is(err, tc.is) {
			t.Errorf("%s: got %+v, %v", tc.name, f, err)
			continue
		}
		if !strings.Contains(fe.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want %q", tc.name, fe.Reason, tc.reason)
		}
		if errors.Is(tc.is, ErrAddressRefused) && hits.Load() != before {
			t.Errorf("%s: the server was reached", tc.name)
		}
	}
}
