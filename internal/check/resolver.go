package check

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Resolver is the DNS client the checker uses. *net.Resolver satisfies it.
// It must be safe for concurrent use. A name that does not exist or has no
// records of the type asked must give an error for which
// dnsname.IsNotFound is true (an empty answer with a nil error is taken
// the same way); any other error means the lookup failed.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// cachingResolver is the resolver of one check. It asks each question
// once (concurrent askers wait for the first), bounds the queries in
// flight, makes names absolute so that no resolv.conf search list adds
// queries, and counts queries and their time for Timings.
type cachingResolver struct {
	r   Resolver
	sem chan struct{}

	mu      sync.Mutex
	calls   map[lookupKey]*lookupCall
	queries int
	hits    int
	spent   time.Duration
}

type lookupKey struct {
	kind, network, name string
}

type lookupCall struct {
	done  chan struct{}
	txt   []string
	mx    []*net.MX
	ips   []netip.Addr
	names []string
	err   error
}

func newCachingResolver(r Resolver, parallel int) *cachingResolver {
	return &cachingResolver{r: r, sem: make(chan struct{}, parallel), calls: map[lookupKey]*lookupCall{}}
}

// absolute appends the root dot to a host name, so that a resolver never
// tries search-list suffixes after NXDOMAIN.
func absolute(name string) string {
	if name == "" || strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// do runs fn once per key; concurrent callers share the outcome.
func (c *cachingResolver) do(ctx context.Context, k lookupKey, fn func(*lookupCall)) *lookupCall {
	k.name = strings.ToLower(k.name)
	c.mu.Lock()
	if call, ok := c.calls[k]; ok {
		c.hits++
		c.mu.Unlock()
		select {
		case <-call.done:
			return call
		case <-ctx.Done():
			return &lookupCall{err: &net.DNSError{Err: ctx.Err().Error(), Name: k.name, IsTimeout: true}}
		}
	}
	call := &lookupCall{done: make(chan struct{})}
	c.calls[k] = call
	c.mu.Unlock()
	defer close(call.done)
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		call.err = &net.DNSError{Err: ctx.Err().Error(), Name: k.name, IsTimeout: true}
		return call
	}
	start := time.Now()
	fn(call)
	took := time.Since(start)
	<-c.sem
	c.mu.Lock()
	c.queries++
	c.spent += took
	c.mu.Unlock()
	return call
}

func (c *cachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	call := c.do(ctx, lookupKey{kind: "TXT", name: absolute(name)}, func(l *lookupCall) {
		l.txt, l.err = c.r.LookupTXT(ctx, absolute(name))
	})
	return call.txt, call.err
}

func (c *cachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	call := c.do(ctx, lookupKey{kind: "MX", name: absolute(name)}, func(l *lookupCall) {
		l.mx, l.err = c.r.LookupMX(ctx, absolute(name))
	})
	// Callers get their own copies: net.MX values are pointers.
	out := make([]*net.MX, len(call.mx))
	for i, m := range call.mx {
		cp := *m
		out[i] = &cp
	}
	return out, call.err
}

func (c *cachingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	call := c.do(ctx, lookupKey{kind: "IP", network: network, name: absolute(host)}, func(l *lookupCall) {
		l.ips, l.err = c.r.LookupNetIP(ctx, network, absolute(host))
	})
	return append([]netip.Addr(nil), call.ips...), call.err
}

func (c *cachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	call := c.do(ctx, lookupKey{kind: "PTR", name: addr}, func(l *lookupCall) {
		l.names, l.err = c.r.LookupAddr(ctx, addr)
	})
	return append([]string(nil), call.names...), call.err
}

// stats returns the number of queries sent, the cache hits and the time
// the queries took in all.
func (c *cachingResolver) stats() (queries, hits int, spent time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queries, c.hits, c.spent
}
