package policyserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/snapshot"
)

const testPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n"

func testHolder(domains ...string) *snapshot.Holder {
	var h snapshot.Holder
	h.Store(testSnapshot(1, domains...))
	return &h
}

// testSnapshot hosts each domain with a policy naming it.
func testSnapshot(serial int64, domains ...string) *snapshot.Snapshot {
	ds := make([]*snapshot.Domain, 0, len(domains))
	for _, d := range domains {
		ds = append(ds, &snapshot.Domain{Name: d, PolicyID: "1", Policy: []byte(policyFor(d))})
	}
	return snapshot.New(serial, time.Now(), ds)
}

func policyFor(domain string) string {
	return strings.Replace(testPolicy, "example.test", domain, 1)
}

func serve(h http.Handler, method, host, target string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := NewHandler(testHolder("example.test", "other.example"))
	want := policyFor("example.test")
	tests := []struct {
		method, host, target string
		status               int
		body                 string // checked when status is 200
	}{
		{"GET", "mta-sts.example.test", PolicyPath, 200, want},
		{"GET", "MTA-STS.EXAMPLE.TEST", PolicyPath, 200, want},
		{"GET", "Mta-Sts.Example.Test", PolicyPath, 200, want},
		{"GET", "mta-sts.example.test:443", PolicyPath, 200, want},
		{"GET", "mta-sts.example.test.", PolicyPath, 200, want},
		{"GET", "mta-sts.example.test.:8443", PolicyPath, 200, want},
		{"GET", "mta-sts.example.test", PolicyPath + "?x=1&y=%2F", 200, want},
		{"GET", "mta-sts.other.example", PolicyPath, 200, policyFor("other.example")},
		{"HEAD", "mta-sts.example.test", PolicyPath, 200, ""},
		{"POST", "mta-sts.example.test", PolicyPath, 405, ""},
		{"PUT", "mta-sts.example.test", PolicyPath, 405, ""},
		{"DELETE", "mta-sts.example.test", PolicyPath, 405, ""},
		{"OPTIONS", "mta-sts.example.test", PolicyPath, 405, ""},
		{"GET", "mta-sts.unknown.test", PolicyPath, 404, ""},
		{"POST", "mta-sts.unknown.test", PolicyPath, 404, ""},
		{"GET", "example.test", PolicyPath, 404, ""},
		{"GET", "www.example.test", PolicyPath, 404, ""},
		{"GET", "mta-sts.sub.example.test", PolicyPath, 404, ""},
		{"GET", "mta-sts.example.test..", PolicyPath, 404, ""},
		{"GET", "mta-sts.", PolicyPath, 404, ""},
		{"GET", "mta-sts..", PolicyPath, 404, ""},
		{"GET", "mta-stsXexample.test", PolicyPath, 404, ""},
		{"GET", "", PolicyPath, 404, ""},
		{"GET", "[::1]:443", PolicyPath, 404, ""},
		{"GET", "127.0.0.1", PolicyPath, 404, ""},
		{"GET", "mta-sts.example.test", "/", 404, ""},
		{"GET", "mta-sts.example.test", PolicyPath + "/", 404, ""},
		{"GET", "mta-sts.example.test", "/.well-known/MTA-STS.txt", 404, ""},
		{"GET", "mta-sts.example.test", "//.well-known/mta-sts.txt", 404, ""},
		{"GET", "mta-sts.example.test", "/.well-known/../.well-known/mta-sts.txt", 404, ""},
		{"GET", "mta-sts.example.test", "/.well-known/acme-challenge/x", 404, ""},
		{"POST", "mta-sts.example.test", "/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+" "+tt.target, func(t *testing.T) {
			w := serve(h, tt.method, tt.host, tt.target)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.status, w.Body)
			}
			if loc := w.Header().Get("Location"); loc != "" {
				t.Errorf("Location %q: must never redirect", loc)
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			switch tt.status {
			case 200:
				wantLen := len(tt.body)
				if tt.method == "HEAD" {
					wantLen = len(want)
					if w.Body.Len() != 0 {
						t.Errorf("HEAD body %q, want none", w.Body)
					}
				} else if w.Body.String() != tt.body {
					t.Errorf("body %q, want %q", w.Body, tt.body)
				}
				if got := w.Header().Get("Content-Length"); got != strconv.Itoa(wantLen) {
					t.Errorf("Content-Length %q, want %d", got, wantLen)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", got)
				}
			case 405:
				if got := w.Header().Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow %q, want %q", got, "GET, HEAD")
				}
			case 404:
				if w.Body.Len() == 0 || w.Body.Len() > 64 {
					t.Errorf("404 body %q: want a short text", w.Body)
				}
			}
		})
	}
}

func TestHandlerSnapshotSwap(t *testing.T) {
	t.Parallel()
	holder := testHolder("example.test")
	h := NewHandler(holder)
	if w := serve(h, "GET", "mta-sts.example.test", PolicyPath); w.Code != 200 || w.Body.String() != policyFor("example.test") {
		t.Fatalf("before swap: %d %q", w.Code, w.Body)
	}
	if w := serve(h, "GET", "mta-sts.new.test", PolicyPath); w.Code != 404 {
		t.Fatalf("new domain before swap: %d", w.Code)
	}
	changed := &snapshot.Domain{Name: "example.test", PolicyID: "2", Policy: []byte("version: STSv1\r\nmode: testing\r\nmx: mx2.example.test\r\nmax_age: 600\r\n")}
	holder.Store(snapshot.New(2, time.Now(), []*snapshot.Domain{changed, {Name: "new.test", Policy: []byte(policyFor("new.test"))}}))
	if w := serve(h, "GET", "mta-sts.example.test", PolicyPath); w.Code != 200 || !bytes.Equal(w.Body.Bytes(), changed.Policy) {
		t.Fatalf("after swap: %d %q, want the new policy", w.Code, w.Body)
	}
	if w := serve(h, "GET", "mta-sts.new.test", PolicyPath); w.Code != 200 {
		t.Fatalf("new domain after swap: %d", w.Code)
	}
	holder.Store(testSnapshot(3))
	if w := serve(h, "GET", "mta-sts.example.test", PolicyPath); w.Code != 404 {
		t.Fatalf("removed domain: %d, want 404", w.Code)
	}
}

func TestPolicyDomain(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"mta-sts.example.com":        "example.com",
		"MTA-STS.Example.COM.":       "example.com",
		"mta-sts.example.com:443":    "example.com",
		"mta-sts.example.com.:443":   "example.com",
		"mta-sts.a":                  "a",
		"mta-sts.":                   "",
		"mta-sts":                    "",
		"example.com":                "",
		"[::1]:443":                  "",
		"[mta-sts.example.com]":      "",
		"xmta-sts.example.com":       "",
		"mta-sts.xn--bcher-kva.test": "xn--bcher-kva.test",
	} {
		if got := policyDomain(host); got != want {
			t.Errorf("policyDomain(%q) = %q, want %q", host, got, want)
		}
	}
}

// FuzzHandler checks the handler's invariants on arbitrary Host headers,
// paths and methods: it answers 200, 404 or 405 only; 200 only for GET or
// HEAD of the policy path on a Host naming "mta-sts." plus a hosted domain,
// and then with exactly that domain's policy.
func FuzzHandler(f *testing.F) {
	// RFC 8461 §3.2 example policy host, plus variants.
	f.Add("GET", "mta-sts.example.com", PolicyPath)
	f.Add("HEAD", "MTA-STS.EXAMPLE.COM.:443", PolicyPath)
	f.Add("POST", "mta-sts.example.com", PolicyPath)
	f.Add("GET", "mta-sts.example.net", "/")
	f.Add("GET", "[::1]:443", PolicyPath)
	f.Add("GET", "mta-sts.:", PolicyPath)
	domains := []string{"example.com", "example.net", "a.b.example.org"}
	h := NewHandler(testHolder(domains...))
	f.Fuzz(func(t *testing.T, method, host, path string) {
		r := &http.Request{Method: method, Host: host, URL: &url.URL{Path: path}, Header: http.Header{}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 404, 405:
		default:
			t.Fatalf("status %d for %q %q %q", w.Code, method, host, path)
		}
		if w.Code == 404 {
			return
		}
		if path != PolicyPath {
			t.Fatalf("status %d for path %q", w.Code, path)
		}
		// The host must name one hosted domain, case-insensitively, with an
		// optional trailing dot and port.
		var match string
		for _, d := range domains {
			base := "mta-sts." + d
			rest, ok := cutPrefixFold(host, base)
			if !ok {
				continue
			}
			rest = strings.TrimPrefix(rest, ".")
			if rest == "" || (rest[0] == ':' && !strings.Contains(rest[1:], ":") && !strings.Contains(rest, "]")) {
				match = d
			}
		}
		if match == "" {
			t.Fatalf("status %d for host %q naming no hosted domain", w.Code, host)
		}
		if w.Code == 405 {
			if method == "GET" || method == "HEAD" {
				t.Fatalf("405 for %s", method)
			}
			return
		}
		if method != "GET" && method != "HEAD" {
			t.Fatalf("200 for method %q", method)
		}
		if method == "GET" && w.Body.String() != policyFor(match) {
			t.Fatalf("host %q got body %q, want policy of %s", host, w.Body, match)
		}
	})
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// discardWriter is a reusable ResponseWriter that keeps nothing, so that
// the benchmark measures the handler alone.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkHandler serves policy requests for random hosted domains of a
// 100,000-domain snapshot, plus one miss in eight.
func BenchmarkHandler(b *testing.B) {
	const n = 100000
	names := make([]string, n)
	ds := make([]*snapshot.Domain, n)
	for i := range ds {
		names[i] = "customer" + strconv.Itoa(i) + ".example"
		ds[i] = &snapshot.Domain{Name: names[i], PolicyID: "1", Policy: []byte(policyFor(names[i]))}
	}
	var holder snapshot.Holder
	holder.Store(snapshot.New(1, time.Now(), ds))
	h := NewHandler(&holder)
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		host := "mta-sts." + names[(i*7919)%n]
		if i%8 == 0 {
			host = "mta-sts.unknown" + strconv.Itoa(i) + ".example"
		}
		reqs[i] = &http.Request{Method: "GET", Host: host, URL: &url.URL{Path: PolicyPath}, Header: http.Header{}}
	}
	w := &discardWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.code != 200 && w.code != 404 {
			b.Fatalf("status %d", w.code)
		}
	}
}
