// Package reqid makes the request ids that Moat's logs carry: one per
// HTTP request, DNS query logged, SMTP connection and message, so that the
// lines of one request can be found together, and a client that quotes
// the id (X-Request-Id) can be matched with them.
//
// An id is a random prefix drawn once per process and a counter, in
// base 36: unique among the instances of a cluster (the prefix is 40
// random bits) and cheap (no system call per id), and ids of one process
// sort in the order they were made within a prefix.
package reqid

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"strings"
	"sync/atomic"
)

var (
	prefix = newPrefix()
	n      atomic.Uint64
)

func newPrefix() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// New returns a new id, such as "k3f9q2ab-1f4".
func New() string {
	return prefix + "-" + strconv.FormatUint(n.Add(1), 36)
}

// Sub returns the id of the n-th part of the request id (n from 1): the
// messages of an SMTP connection, "k3f9q2ab-1f4.2".
func Sub(id string, n int) string {
	return id + "." + strconv.Itoa(n)
}
