package senders

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/store"
)

// Resolver is the DNS client of this package: reverse DNS, the forward
// confirmation of its names, and what SPF evaluation asks. *net.Resolver
// satisfies it. Implementations must be safe for concurrent use; an error
// for which dnsname.IsNotFound is true means NXDOMAIN or NODATA.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// RDNSOptions tunes ReverseDNS. The zero value means the defaults.
type RDNSOptions struct {
	// Workers bounds the lookups in flight. Zero means 16.
	Workers int
	// Timeout bounds one address's lookups (PTR and forward
	// confirmation). Zero means 3 seconds.
	Timeout time.Duration
	// TTL is how long names found are used. Zero means 7 days.
	TTL time.Duration
	// NegativeTTL is how long "no PTR record" (NXDOMAIN or NODATA) is
	// used before the address is looked up again. Zero means 6 hours.
	NegativeTTL time.Duration
	// FailureTTL is how long a failure to learn anything (a time-out, a
	// server failure) is used. Zero means 30 minutes.
	FailureTTL time.Duration
	// MaxNames bounds the PTR names kept and forward-checked per
	// address. Zero means 3.
	MaxNames int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o RDNSOptions) withDefaults() RDNSOptions {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 7 * 24 * time.Hour
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 6 * time.Hour
	}
	if o.FailureTTL <= 0 {
		o.FailureTTL = 30 * time.Minute
	}
	if o.MaxNames <= 0 {
		o.MaxNames = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ReverseDNS finds the names of source addresses: PTR records, of which
// the first whose A or AAAA records give the address back is the
// forward-confirmed name. Answers are cached in the store. It is safe for
// concurrent use.
type ReverseDNS struct {
	r     Resolver
	cache store.SenderCache
	o     RDNSOptions
}

// NewReverseDNS returns a ReverseDNS asking r and caching in cache.
func NewReverseDNS(r Resolver, cache store.SenderCache, o RDNSOptions) *ReverseDNS {
	return &ReverseDNS{r: r, cache: cache, o: o.withDefaults()}
}

// Resolve returns the reverse DNS of ips (canonical address text; others
// are left out) by address. Entries of the cache that have not expired
// are used as they are; with lookup, the others are looked up in the
// worker pool, each within the time-out, and stored; without lookup (a
// request path) the cache is all, expired entries included. When ctx ends
// during the lookups, what was found is stored and returned with ctx's
// error.
func (d *ReverseDNS) Resolve(ctx context.Context, ips []string, lookup bool) (map[string]store.PTRRecord, error) {
	var valid []string
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && a.String() == ip {
			valid = append(valid, ip)
		}
	}
	cached, err := d.cache.PTRs(ctx, valid)
	if err != nil {
		return nil, err
	}
	if !lookup {
		return cached, nil
	}
	now := d.o.Now()
	var todo []string
	for _, ip := range valid {
		if c, ok := cached[ip]; !ok || !c.ExpiresAt.After(now) {
			todo = append(todo, ip)
		}
	}
	slices.Sort(todo)
	todo = slices.Compact(todo)
	found := d.lookupAll(ctx, todo)
	recs := make([]store.PTRRecord, 0, len(found))
	for _, ip := range todo {
		if p, ok := found[ip]; ok {
			cached[ip] = p
			recs = append(recs, p)
		}
	}
	// Stored even when ctx ended: what was learned is kept.
	if err := d.cache.PutPTRs(context.WithoutCancel(ctx), recs); err != nil {
		return nil, err
	}
	return cached, ctx.Err()
}

// lookupAll looks ips up in at most Workers goroutines; it returns when
// all are done or ctx ends (the lookups in flight are canceled with it).
func (d *ReverseDNS) lookupAll(ctx context.Context, ips []string) map[string]store.PTRRecord {
	out := make(map[string]store.PTRRecord, len(ips))
	if len(ips) == 0 {
		return out
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan string)
	)
	for range min(d.o.Workers, len(ips)) {
		wg.Go(func() {
			for ip := range jobs {
				p, ok := d.lookup(ctx, ip)
				if !ok {
					continue
				}
				mu.Lock()
				out[ip] = p
				mu.Unlock()
			}
		})
	}
feed:
	for _, ip := range ips {
		select {
		case jobs <- ip:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return out
}

// lookup finds the names of one address; ok is false when ctx ended (the
// caller's, not the time-out: nothing was learned).
func (d *ReverseDNS) lookup(ctx context.Context, ip string) (store.PTRRecord, bool) {
	addr := netip.MustParseAddr(ip)
	lctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	names, err := d.r.LookupAddr(lctx, ip)
	if ctx.Err() != nil {
		return store.PTRRecord{}, false
	}
	now := d.o.Now()
	p := store.PTRRecord{IP: ip, CheckedAt: now}
	for _, n := range names {
		n = strings.TrimSuffix(strings.ToLower(n), ".")
		if n == "" || dnsname.CheckLength(n) != nil || slices.Contains(p.Names, n) {
			continue
		}
		p.Names = append(p.Names, n)
		if len(p.Names) == d.o.MaxNames {
			break
		}
	}
	if len(p.Names) == 0 {
		p.Error = lookupFailure(lctx, err)
		p.ExpiresAt = now.Add(d.o.NegativeTTL)
		if p.Error != "nxdomain" {
			p.ExpiresAt = now.Add(d.o.FailureTTL)
		}
		return p, true
	}
	// Forward confirmation (FCrDNS): a name counts only if it leads back
	// to the address; anyone can publish any PTR name for their own
	// addresses.
	for _, n := range p.Names {
		addrs, err := d.r.LookupNetIP(lctx, "ip", n+".")
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == addr.Unmap() {
				p.Confirmed = n
				break
			}
		}
		if p.Confirmed != "" {
			break
		}
	}
	p.ExpiresAt = now.Add(d.o.TTL)
	return p, true
}

// lookupFailure says why a lookup found no name: "nxdomain" (no PTR
// record, or NODATA), "timeout", "servfail", or "error".
func lookupFailure(ctx context.Context, err error) string {
	var de *net.DNSError
	switch {
	case err == nil, dnsname.IsNotFound(err):
		return "nxdomain"
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil, errors.As(err, &de) && de.IsTimeout:
		return "timeout"
	case errors.As(err, &de) && de.IsTemporary:
		return "servfail"
	}
	return "error"
}
