package spf

import (
	"context"
	"net"
	"net/netip"
)

// Resolver is the DNS client the walker and Lookup use. *net.Resolver
// satisfies it. Implementations must be safe for concurrent use: Walk
// issues the lookups of one level of the tree in parallel. Names are
// passed fully qualified, with a trailing dot. An empty answer without
// error is treated as NODATA.
//
// Errors: an error for which dnsname.IsNotFound is true (a *net.DNSError
// with IsNotFound set) means NXDOMAIN or NODATA
// (a "void lookup", RFC 7208 §4.6.4); any other error is a temporary
// error (RFC 7208 §2.6.6).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)
