package dmarc

import (
	"context"
	"net"
	"net/netip"
)

// Resolver is the DNS client Lookup and VerifyExternalReporting use; only
// LookupTXT is called (the method set matches package spf's so one value
// serves both). *net.Resolver satisfies it. Implementations must be safe
// for concurrent use: Lookup and TreeWalk query several names at once.
// Names are passed fully qualified, with a trailing dot.
//
// Errors: an error for which dnsname.IsNotFound is true (a *net.DNSError
// with IsNotFound set) means NXDOMAIN or NODATA (no record at the name);
// any other error is a temporary error.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)
