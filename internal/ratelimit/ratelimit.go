// Package ratelimit bounds how often a client may do something: one token
// bucket per key (a client network, an account), with memory bounded under
// a flood of keys, and the client address of an HTTP request behind
// trusted proxies. Report intake and sign-in use it.
package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter keeps one token bucket per key, bounded in number: two
// generations of maps, the older dropped when the newer fills up, so that
// memory stays bounded under a flood of keys while a key seen recently
// keeps its bucket. It is safe for concurrent use.
type Limiter[K comparable] struct {
	limit rate.Limit
	burst int
	max   int // per generation

	mu        sync.Mutex
	cur, prev map[K]*rate.Limiter
}

// New returns a Limiter allowing limit events per second per key, in
// bursts of burst, remembering about maxKeys keys.
func New[K comparable](limit rate.Limit, burst, maxKeys int) *Limiter[K] {
	per := max(1, maxKeys/2)
	return &Limiter[K]{limit: limit, burst: max(1, burst), max: per, cur: make(map[K]*rate.Limiter)}
}

// Allow takes one token for key; when none is left it says how long until
// one is.
func (l *Limiter[K]) Allow(key K, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.cur[key]
	if !ok {
		if b, ok = l.prev[key]; ok {
			delete(l.prev, key)
		} else {
			b = rate.NewLimiter(l.limit, l.burst)
		}
		if len(l.cur) >= l.max {
			l.prev, l.cur = l.cur, make(map[K]*rate.Limiter, l.max)
		}
		l.cur[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	r := b.ReserveN(now, 1)
	defer r.CancelAt(now)
	if !r.OK() {
		return false, time.Second
	}
	return false, r.DelayFrom(now)
}

// ClientKey groups clients for limits: an IPv4 address alone, IPv6
// addresses by /64, the usual allocation to one site.
func ClientKey(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	p, _ := a.Prefix(a.BitLen())
	return p
}

// RemoteIP parses the address of a connection's peer ("host:port").
func RemoteIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// ClientAddr returns the address of the client of r: the connection's
// peer, or, when the peer is one of the trusted proxies, the right-most
// X-Forwarded-For entry that is not a trusted proxy.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := RemoteIP(r.RemoteAddr)
	if len(trusted) == 0 || !contains(trusted, peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a forged or broken entry: trust nothing to its left
			}
			a = a.Unmap()
			if !contains(trusted, a) {
				return a
			}
		}
	}
	return peer
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
