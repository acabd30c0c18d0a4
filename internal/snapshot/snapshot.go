// Package snapshot holds what Moat serves on its hot paths (DNS answers and
// MTA-STS policy files) as an immutable value, swapped atomically when the
// hosted domains change. Readers never lock and never touch the database.
package snapshot

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Domain is what is served for one hosted domain. All fields are immutable
// once the snapshot is published.
type Domain struct {
	Name     string // A-label, lower-case, no trailing dot: "example.com"
	PolicyID string // current policy id
	// Policy is the exact MTA-STS policy file body served at
	// https://mta-sts.<Name>/.well-known/mta-sts.txt.
	Policy []byte
	// STSRecord is the TXT value of <Name>._mta-sts.<zone>:
	// "v=STSv1; id=<PolicyID>".
	STSRecord string
	// TLSRPTRecord is the TXT value of <Name>._smtp._tls.<zone>, or "" when
	// no rua is configured (then no TXT record is served).
	TLSRPTRecord string
}

// Snapshot is an immutable view of every hosted domain.
type Snapshot struct {
	serial  int64
	built   time.Time
	domains map[string]*Domain
	// reversed holds every name reversed byte by byte, sorted, so that
	// HasDescendant is a binary search.
	reversed []string
}

// New builds a snapshot from domains. It takes ownership of the slice
// elements; callers must not change them afterwards.
func New(serial int64, built time.Time, domains []*Domain) *Snapshot {
	m := make(map[string]*Domain, len(domains))
	for _, d := range domains {
		m[d.Name] = d
	}
	rev := make([]string, 0, len(m))
	for name := range m {
		rev = append(rev, reverse(name))
	}
	sort.Strings(rev)
	return &Snapshot{serial: serial, built: built, domains: m, reversed: rev}
}

func reverse(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}

// HasDescendant reports whether some hosted domain lies strictly below
// name (is "<label>.<name>"). DNS servers use it to answer NODATA rather
// than NXDOMAIN for empty non-terminals (RFC 8020). name must be
// normalized; "" means the root and is true when any domain is hosted.
func (s *Snapshot) HasDescendant(name string) bool {
	if s == nil || len(s.reversed) == 0 {
		return false
	}
	if name == "" {
		return true
	}
	// Search for the first reversed name >= reverse(name)+"." without
	// building that string: cmpRev compares it byte by byte.
	n := len(name) + 1
	i := sort.Search(len(s.reversed), func(i int) bool { return cmpRev(s.reversed[i], name) >= 0 })
	if i == len(s.reversed) {
		return false
	}
	r := s.reversed[i]
	return len(r) > n && cmpRev(r[:n], name) == 0
}

// cmpRev compares r with reverse(name)+"." as strings.
func cmpRev(r, name string) int {
	n := len(name) + 1
	for j := 0; j < n && j < len(r); j++ {
		var c byte = '.'
		if j < len(name) {
			c = name[len(name)-1-j]
		}
		if r[j] != c {
			if r[j] < c {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(r) < n:
		return -1
	case len(r) > n:
		return 1
	}
	return 0
}

// Serial is the store change serial the snapshot was built from.
func (s *Snapshot) Serial() int64 { return s.serial }

// Built is when the snapshot was built.
func (s *Snapshot) Built() time.Time { return s.built }

// Len is the number of hosted domains.
func (s *Snapshot) Len() int { return len(s.domains) }

// Lookup returns the hosted domain name, or nil. name must already be
// lower-case without a trailing dot; use Normalize for names from the wire.
func (s *Snapshot) Lookup(name string) *Domain {
	if s == nil {
		return nil
	}
	return s.domains[name]
}

// Range calls fn for every domain, in no particular order, until fn
// returns false.
func (s *Snapshot) Range(fn func(*Domain) bool) {
	for _, d := range s.domains {
		if !fn(d) {
			return
		}
	}
}

// Normalize lower-cases an ASCII domain name and removes one trailing dot.
// It allocates only when the name has upper-case letters.
func Normalize(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// Holder publishes the current snapshot. The zero value holds an empty
// snapshot. It is safe for concurrent use.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

var empty = &Snapshot{domains: map[string]*Domain{}}

// Load returns the current snapshot, never nil.
func (h *Holder) Load() *Snapshot {
	if s := h.p.Load(); s != nil {
		return s
	}
	return empty
}

// Store publishes s.
func (h *Holder) Store(s *Snapshot) { h.p.Store(s) }
