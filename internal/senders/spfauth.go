package senders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"

	"github.com/moatmail/moat/internal/store"
)

// SPFOptions tunes SPFChecker. The zero value means the defaults.
type SPFOptions struct {
	// Workers bounds the evaluations in flight. Zero means 8.
	Workers int
	// Timeout bounds one evaluation (every lookup of the record tree).
	// Zero means 10 seconds.
	Timeout time.Duration
	// CacheTTL is how long the checker's resolver keeps an answer (the
	// record tree is the same for every source). Zero means 10 minutes.
	CacheTTL time.Duration
	// CacheSize bounds the answers it keeps. Zero means 10,000.
	CacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o SPFOptions) withDefaults() SPFOptions {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Minute
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// SPFChecker tells whether a domain's own SPF record authorizes source
// addresses: RFC 7208 check_host() for the sender postmaster@domain
// (§2.4: the MAIL FROM identity), at most once per domain, address and
// UTC day; results are cached in the store, DNS answers in memory. It is
// safe for concurrent use.
type SPFChecker struct {
	r     *cachingResolver
	cache store.SenderCache
	o     SPFOptions
}

// NewSPFChecker returns an SPFChecker asking r and caching in cache.
func NewSPFChecker(r Resolver, cache store.SenderCache, o SPFOptions) *SPFChecker {
	o = o.withDefaults()
	return &SPFChecker{r: newCachingResolver(r, o), cache: cache, o: o}
}

// Check returns the result of domain's SPF record for each of ips (by
// address; invalid addresses are left out) for today, UTC: the cached
// result, else, with evaluate, one evaluated now in the worker pool and
// stored. Without evaluate (a request path) only the cache answers: today's
// result, else the latest of the seven days before.
func (c *SPFChecker) Check(ctx context.Context, domain string, ips []string, evaluate bool) (map[string]store.SPFAuth, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	now := c.o.Now().UTC()
	var valid []string
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && a.String() == ip {
			valid = append(valid, ip)
		}
	}
	got, err := c.cache.SPFAuths(ctx, domain, now, valid)
	if err != nil {
		return nil, err
	}
	if !evaluate {
		return c.cachedBefore(ctx, domain, now, valid, got)
	}
	var todo []string
	for _, ip := range valid {
		if _, ok := got[ip]; !ok {
			todo = append(todo, ip)
		}
	}
	slices.Sort(todo)
	todo = slices.Compact(todo)
	if len(todo) == 0 {
		return got, nil
	}
	// The first evaluation alone fills the resolver's cache with the
	// record tree; the others then mostly match addresses in memory.
	var (
		mu   sync.Mutex
		recs []store.SPFAuth
	)
	put := func(a store.SPFAuth) {
		mu.Lock()
		got[a.SourceIP] = a
		recs = append(recs, a)
		mu.Unlock()
	}
	if a, ok := c.evaluate(ctx, domain, todo[0], now); ok {
		put(a)
	}
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range min(c.o.Workers, len(todo)-1) {
		wg.Go(func() {
			for ip := range jobs {
				if a, ok := c.evaluate(ctx, domain, ip, now); ok {
					put(a)
				}
			}
		})
	}
feed:
	for _, ip := range todo[1:] {
		select {
		case jobs <- ip:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := c.cache.PutSPFAuths(context.WithoutCancel(ctx), recs); err != nil {
		return nil, err
	}
	return got, ctx.Err()
}

// cacheOnlyDays is how many days before today a cache-only Check looks
// back for the results it lacks.
const cacheOnlyDays = 7

// cachedBefore completes got with the latest result of the days before
// now, back to cacheOnlyDays.
func (c *SPFChecker) cachedBefore(ctx context.Context, domain string, now time.Time, ips []string, got map[string]store.SPFAuth) (map[string]store.SPFAuth, error) {
	for back := 1; back <= cacheOnlyDays && len(got) < len(ips); back++ {
		var missing []string
		for _, ip := range ips {
			if _, ok := got[ip]; !ok {
				missing = append(missing, ip)
			}
		}
		older, err := c.cache.SPFAuths(ctx, domain, now.AddDate(0, 0, -back), missing)
		if err != nil {
			return nil, err
		}
		maps.Copy(got, older)
	}
	return got, nil
}

// evaluate runs check_host() for one address; ok is false when ctx ended.
func (c *SPFChecker) evaluate(ctx context.Context, domain, ip string, now time.Time) (store.SPFAuth, bool) {
	ectx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	res, err := spf.CheckHostWithSender(net.ParseIP(ip), domain, "postmaster@"+domain,
		spf.WithContext(ectx), spf.WithResolver(c.r))
	if ctx.Err() != nil {
		return store.SPFAuth{}, false
	}
	a := store.SPFAuth{Domain: domain, SourceIP: ip, Day: utcDay(now), Result: string(res), CheckedAt: now}
	if ectx.Err() != nil && res != spf.Pass {
		a.Result, a.Error = string(spf.TempError), fmt.Sprintf("evaluation timed out after %s", c.o.Timeout)
	} else if err != nil && (res == spf.TempError || res == spf.PermError) {
		a.Error = err.Error()
	}
	if _, known := spfKnown[a.Result]; !known {
		a.Result, a.Error = string(spf.PermError), fmt.Sprintf("unexpected result %q", res)
	}
	return a, true
}

var spfKnown = map[string]struct{}{"pass": {}, "fail": {}, "softfail": {}, "neutral": {}, "none": {}, "temperror": {}, "permerror": {}}

// cachingResolver remembers answers (errors included, a failure being an
// answer too) for CacheTTL, at most CacheSize of them; names are asked
// fully qualified. blitiri.com.ar/go/spf calls it.
type cachingResolver struct {
	r   Resolver
	o   SPFOptions
	mu  sync.Mutex
	ans map[string]*cached
}

type cached struct {
	done    chan struct{} // closed once v and err are set
	v       any
	err     error
	expires time.Time
}

var _ spf.DNSResolver = (*cachingResolver)(nil)

func newCachingResolver(r Resolver, o SPFOptions) *cachingResolver {
	return &cachingResolver{r: r, o: o, ans: map[string]*cached{}}
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return strings.ToLower(name)
	}
	return strings.ToLower(name) + "."
}

// do answers key from the cache or by ask; concurrent misses of one key
// ask once and share the answer.
func do[T any](ctx context.Context, c *cachingResolver, key string, ask func() (T, error)) (T, error) {
	now := c.o.Now()
	c.mu.Lock()
	a, ok := c.ans[key]
	if ok && a.done != nil {
		select {
		case <-a.done:
			if !a.expires.After(now) {
				ok = false
			}
		default:
		}
	}
	if ok {
		c.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		v, _ := a.v.(T)
		return v, a.err
	}
	if len(c.ans) >= c.o.CacheSize {
		for k, e := range c.ans {
			select {
			case <-e.done:
				if !e.expires.After(now) {
					delete(c.ans, k)
				}
			default:
			}
		}
	}
	a = &cached{done: make(chan struct{})}
	keep := len(c.ans) < c.o.CacheSize
	if keep {
		c.ans[key] = a
	}
	c.mu.Unlock()
	v, err := ask()
	a.v, a.err, a.expires = v, err, now.Add(c.o.CacheTTL)
	close(a.done)
	if keep && err != nil && !isAnswer(err) {
		// A time-out or a canceled context is not an answer: forgotten.
		c.mu.Lock()
		if c.ans[key] == a {
			delete(c.ans, key)
		}
		c.mu.Unlock()
	}
	return v, err
}

// isAnswer reports whether err is what the DNS said (no such name or
// record), rather than a failure to ask.
func isAnswer(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func (c *cachingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return do(ctx, c, "TXT "+fqdn(name), func() ([]string, error) { return c.r.LookupTXT(ctx, fqdn(name)) })
}

func (c *cachingResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return do(ctx, c, "MX "+fqdn(name), func() ([]*net.MX, error) { return c.r.LookupMX(ctx, fqdn(name)) })
}

func (c *cachingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return do(ctx, c, "IP "+fqdn(host), func() ([]net.IPAddr, error) { return c.r.LookupIPAddr(ctx, fqdn(host)) })
}

func (c *cachingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return do(ctx, c, "PTR "+addr, func() ([]string, error) { return c.r.LookupAddr(ctx, addr) })
}

// utcDay is the UTC midnight of t's day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
