package dnsname

import (
	"errors"
	"net"
)

// IsNotFound reports whether err, from a resolver, says that the name does
// not exist or has no records of the type asked (NXDOMAIN or NODATA, RFC
// 2308): a *net.DNSError with IsNotFound set, as *net.Resolver returns
// and as every resolver interface in Moat promises. Such an answer is a
// finding ("no record"); any other error is a failed lookup whose answer is
// unknown.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// NotFound returns the error a resolver gives for a name without records
// of the type asked: IsNotFound is true for it.
func NotFound(name string) error {
	return &net.DNSError{Err: "no such record", Name: name, IsNotFound: true}
}
