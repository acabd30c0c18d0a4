// Package dnsserver is Moat's authoritative DNS server for the service zone
// that the operator delegates to it (DESIGN.md, "Hosted MTA-STS: how
// delegation works").
//
// For every hosted domain D of the current snapshot it serves
//
//	D._mta-sts.<zone>.    TXT "v=STSv1; id=..."        (RFC 8461 §3.1)
//	D._smtp._tls.<zone>.  TXT "v=TLSRPTv1; rua=..."    (RFC 8460 §3)
//	D._report._dmarc.R.   TXT "v=DMARC1"               (RFC 7489 §7.1)
//
// (R each domain of Options.DMARCReportDomains inside the zone), plus the SOA and NS records at the apex and the A/AAAA records of
// Options.Hosts. It follows RFC 1034/1035 (authoritative answers), RFC 2308
// (negative answers carry the SOA), RFC 8020 (NODATA, not NXDOMAIN, for
// empty non-terminals), RFC 6891 (EDNS(0)), RFC 7766 (DNS over TCP) and
// RFC 8482 (minimal answers to ANY).
//
// Choices where the RFCs leave room: ANY gets one RRset that exists at
// the name (the TXT record, the SOA at the apex, A before AAAA; RFC 8482
// §4.1), over UDP and TCP alike; classes other than IN, zone transfers and
// names outside the zone get REFUSED; NOTIFY, UPDATE and other opcodes get
// NOTIMP; TSIG records are ignored (the response is unsigned); EDNS
// options are accepted and ignored, none is echoed.
//
// The query path is hand-written: Answer parses the header and question
// without allocating, looks the name up in the lock-free snapshot and
// writes the response into the caller's buffer from bytes precomputed in
// New. miekg/dns is used only by the tests.
package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/snapshot"
)

// Errors returned by New and Serve.
var (
	// ErrOptions means Options is invalid; the message names the field and
	// the value. Fix the configuration.
	ErrOptions = errors.New("dnsserver: invalid options")
	// ErrServerClosed is returned by Serve and ListenAndServe after
	// Shutdown. It is not a failure.
	ErrServerClosed = errors.New("dnsserver: server closed")
	// ErrListen means ListenAndServe could not open its sockets.
	ErrListen = errors.New("dnsserver: listen")
)

// Defaults of the Options fields.
const (
	DefaultTTL            = 5 * time.Minute
	DefaultNegativeTTL    = 5 * time.Minute
	DefaultSOARefresh     = time.Hour
	DefaultSOARetry       = 10 * time.Minute
	DefaultSOAExpire      = 14 * 24 * time.Hour
	DefaultMaxUDPSize     = 1232 // DNS flag day 2020: fits any path's MTU without fragmentation
	DefaultMaxTCPConns    = 512
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultTCPIOTimeout   = 2 * time.Second
)

// Options configures a Server. The zero value of every field except Zone
// means its default.
type Options struct {
	// Zone is the service zone delegated to Moat, e.g. "sts.example.net".
	// Required. Case and a trailing dot are ignored.
	Zone string
	// Nameservers are the NS names of the zone, the first one also the SOA
	// MNAME. Default: ns1.<Zone>. A name inside the zone should have its
	// addresses in Hosts (they are then also sent as glue with NS answers);
	// New logs a warning when one has none.
	Nameservers []string
	// Hostmaster is the SOA RNAME, as a mailbox ("hostmaster@example.net")
	// or in DNS form ("hostmaster.example.net"). Default: hostmaster.<Zone>.
	Hostmaster string
	// Hosts are the A and AAAA records served for names inside the zone
	// (the zone apex included): the policy host such as mta-sts.<Zone> and
	// in-zone name servers. Names under _mta-sts.<Zone> and _tls.<Zone> are
	// reserved for the hosted domains and rejected.
	Hosts map[string][]netip.Addr
	// DMARCReportDomains are the domains of the DMARC report addresses
	// Moat receives at (intake.dmarc_addresses). For each one inside the
	// zone and every hosted domain D, D._report._dmarc.<domain> answers
	// TXT "v=DMARC1": RFC 7489 §7.1 has a receiver send reports about D to
	// an address outside D's organizational domain only when that record
	// authorizes it. Domains outside the zone are ignored (their own DNS
	// must publish the record).
	DMARCReportDomains []string
	// TTL is the TTL of the TXT, NS, SOA, A and AAAA records. Default 5m.
	TTL time.Duration
	// NegativeTTL is the SOA MINIMUM, how long resolvers cache NXDOMAIN
	// and NODATA (RFC 2308 §4). Default 5m.
	NegativeTTL time.Duration
	// SOARefresh, SOARetry and SOAExpire fill the SOA fields of the same
	// names (RFC 1035 §3.3.13). Moat has no secondaries of its own, but
	// operators may run some. Defaults 1h, 10m, 14 days.
	SOARefresh, SOARetry, SOAExpire time.Duration
	// MaxUDPSize is the EDNS(0) UDP payload size Moat advertises, and the
	// largest UDP response it sends (RFC 6891 §6.2.5). 512 to 65535;
	// default 1232.
	MaxUDPSize int
	// UDPReaders is how many goroutines read each UDP socket. Default
	// GOMAXPROCS.
	UDPReaders int
	// MaxTCPConns bounds the concurrent TCP connections per listener;
	// connections over the limit are closed at once. Default 512.
	MaxTCPConns int
	// TCPIdleTimeout is how long a TCP connection may wait for its next
	// query (RFC 7766 §6.2.3). Default 10s.
	TCPIdleTimeout time.Duration
	// TCPIOTimeout bounds reading the rest of a query once its length has
	// arrived, and writing a response. Default 2s.
	TCPIOTimeout time.Duration
}

// Server answers DNS queries for the service zone from a snapshot.Holder.
// It is safe for concurrent use.
type Server struct {
	log   *slog.Logger
	snaps *snapshot.Holder

	zone       string   // lower-case, no trailing dot
	zoneLabels []string // labels of zone
	maxUDP     int

	// Precomputed wire bytes. Templates hold compression pointers to the
	// zone apex that are patched per query (see tmpl).
	soaAnswer tmpl   // SOA RR at the apex, TTL = TTL
	soaAuth   tmpl   // SOA RR for the authority section, TTL = min(TTL, MINIMUM)
	nsAnswer  []byte // NS RRset with owner 0xC00C (the apex is the question)
	nsCount   int
	glue      [][]byte // one A/AAAA RR each, owners compressed against offset 12
	ttl       [4]byte

	hosts   map[string]*host // full lower-case names
	hostENT map[string]bool  // empty non-terminals above the hosts
	// reportDomains are the DMARC report domains inside the zone.
	reportDomains []reportDomain

	tcpMax     int
	tcpIdle    time.Duration
	tcpIO      time.Duration
	udpReaders int
	noBatch    bool // tests: use the portable UDP path on Linux too
	// logQueries writes a debug line per query (with the client's
	// address, which the batched UDP path does not decode: it is off then).
	logQueries bool

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	serving sync.WaitGroup

	stats stats // answers sent, for metrics
}

// reportDomain is a DMARC report domain inside the zone: its name and how
// many labels it has in front of the zone's.
type reportDomain struct {
	name string
	rel  int
}

// host is what is served at one name of Options.Hosts: the A and AAAA
// RRsets with owner 0xC00C (the question name).
type host struct {
	a, aaaa         []byte
	aCount, aaaaCnt int
}

// tmpl is a precomputed record with compression pointers to the zone apex
// whose offset is only known per query.
type tmpl struct {
	b        []byte
	ptrs     []int // offsets in b of 2-byte pointers to patch with 0xC000|apexOff
	serialAt int   // offset in b of the SOA SERIAL
}

func (t *tmpl) append(dst []byte, apexOff int, serial uint32) []byte {
	start := len(dst)
	dst = append(dst, t.b...)
	for _, p := range t.ptrs {
		binary.BigEndian.PutUint16(dst[start+p:], 0xC000|uint16(apexOff))
	}
	binary.BigEndian.PutUint32(dst[start+t.serialAt:], serial)
	return dst
}

func seconds(field string, d, def time.Duration) (uint32, error) {
	if d == 0 {
		d = def
	}
	// RFC 2181 §8: TTLs are unsigned 31-bit values.
	if d < 0 || d > (1<<31-1)*time.Second {
		return 0, fmt.Errorf("%w: %s %v: want from 1s to 68 years", ErrOptions, field, d)
	}
	return uint32(d / time.Second), nil
}

// New validates opts and precomputes the records that do not depend on the
// snapshot. log receives start, stop and error messages, never one per
// query.
func New(log *slog.Logger, snaps *snapshot.Holder, opts Options) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if snaps == nil {
		return nil, fmt.Errorf("%w: nil snapshot holder", ErrOptions)
	}
	if opts.Zone == "" {
		return nil, fmt.Errorf("%w: Zone is required", ErrOptions)
	}
	zone, zoneLabels, err := parseName("Zone", opts.Zone)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: log, snaps: snaps, zone: zone, zoneLabels: zoneLabels,
		hosts: map[string]*host{}, hostENT: map[string]bool{},
		done: make(chan struct{}),
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		s.logQueries, s.noBatch = true, true
	}

	ttl, err := seconds("TTL", opts.TTL, DefaultTTL)
	if err != nil {
		return nil, err
	}
	var soa [5]uint32 // serial (patched), refresh, retry, expire, minimum
	for i, f := range []struct {
		name   string
		d, def time.Duration
	}{
		{"SOARefresh", opts.SOARefresh, DefaultSOARefresh},
		{"SOARetry", opts.SOARetry, DefaultSOARetry},
		{"SOAExpire", opts.SOAExpire, DefaultSOAExpire},
		{"NegativeTTL", opts.NegativeTTL, DefaultNegativeTTL},
	} {
		if soa[i+1], err = seconds(f.name, f.d, f.def); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(s.ttl[:], ttl)

	s.maxUDP = opts.MaxUDPSize
	if s.maxUDP == 0 {
		s.maxUDP = DefaultMaxUDPSize
	}
	if s.maxUDP < 512 || s.maxUDP > 65535 {
		return nil, fmt.Errorf("%w: MaxUDPSize %d: want from 512 to 65535", ErrOptions, opts.MaxUDPSize)
	}
	s.udpReaders = opts.UDPReaders
	if s.udpReaders <= 0 {
		s.udpReaders = runtime.GOMAXPROCS(0)
	}
	s.tcpMax = opts.MaxTCPConns
	if s.tcpMax <= 0 {
		s.tcpMax = DefaultMaxTCPConns
	}
	s.tcpIdle = opts.TCPIdleTimeout
	if s.tcpIdle <= 0 {
		s.tcpIdle = DefaultTCPIdleTimeout
	}
	s.tcpIO = opts.TCPIOTimeout
	if s.tcpIO <= 0 {
		s.tcpIO = DefaultTCPIOTimeout
	}

	if err := s.addHosts(opts.Hosts); err != nil {
		return nil, err
	}
	for _, d := range opts.DMARCReportDomains {
		name, labels, err := parseName("DMARCReportDomains", d)
		if err != nil {
			return nil, err
		}
		if !isBelow(name, zone) || slices.ContainsFunc(s.reportDomains, func(r reportDomain) bool { return r.name == name }) {
			continue
		}
		for _, reserved := range []string{"_mta-sts." + zone, "_tls." + zone} {
			if isBelow(name, reserved) {
				return nil, fmt.Errorf("%w: DMARCReportDomains %q: names under %q are reserved for the hosted domains", ErrOptions, d, reserved)
			}
		}
		s.reportDomains = append(s.reportDomains, reportDomain{name: name, rel: len(labels) - len(zoneLabels)})
	}

	// Name servers.
	nsNames := opts.Nameservers
	if len(nsNames) == 0 {
		nsNames = []string{"ns1." + zone}
	}
	var nsLabels [][]string
	seen := map[string]bool{}
	for _, n := range nsNames {
		name, labels, err := parseName("Nameservers", n)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		nsLabels = append(nsLabels, labels)
		if isBelow(name, zone) {
			h := s.hosts[name]
			if h == nil {
				log.Warn("dns: in-zone name server has no address in Hosts; resolvers cannot reach it through this zone",
					"nameserver", name, "zone", zone)
				continue
			}
			s.glue = append(s.glue, splitRRs(h.a, h.aCount, labels, zoneLabels)...)
			s.glue = append(s.glue, splitRRs(h.aaaa, h.aaaaCnt, labels, zoneLabels)...)
		}
	}
	for _, labels := range nsLabels {
		rdata := appendName(nil, labels, zoneLabels, headerLen)
		s.nsAnswer = appendRRHeader(s.nsAnswer, typeNS, s.ttl, len(rdata))
		s.nsAnswer = append(s.nsAnswer, rdata...)
		s.nsCount++
	}

	// SOA (RFC 1035 §3.3.13).
	rname := []string{"hostmaster"}
	rname = append(rname, zoneLabels...)
	if opts.Hostmaster != "" {
		if rname, err = parseMailbox(opts.Hostmaster); err != nil {
			return nil, err
		}
	}
	negTTL := min(ttl, soa[4]) // RFC 2308 §3: min(SOA TTL, MINIMUM)
	var negTTLb [4]byte
	binary.BigEndian.PutUint32(negTTLb[:], negTTL)
	s.soaAnswer = s.soaTemplate(nsLabels[0], rname, s.ttl, soa)
	s.soaAuth = s.soaTemplate(nsLabels[0], rname, negTTLb, soa)
	return s, nil
}

// soaTemplate builds an SOA RR whose owner and in-zone RDATA names are
// pointers to the apex.
func (s *Server) soaTemplate(mname, rname []string, ttl [4]byte, soa [5]uint32) tmpl {
	var t tmpl
	var rdata []byte
	var ptrs []int
	for _, n := range [][]string{mname, rname} {
		rdata = appendName(rdata, n, s.zoneLabels, 0)
		if _, ok := relativeTo(n, s.zoneLabels); ok {
			ptrs = append(ptrs, len(rdata)-2)
		}
	}
	serialAt := len(rdata)
	for _, v := range soa {
		rdata = binary.BigEndian.AppendUint32(rdata, v)
	}
	// The owner is the apex too: a pointer patched like the others.
	t.b = appendRRHeader(nil, typeSOA, ttl, len(rdata))
	t.ptrs = []int{0}
	off := len(t.b)
	t.b = append(t.b, rdata...)
	for _, p := range ptrs {
		t.ptrs = append(t.ptrs, off+p)
	}
	t.serialAt = off + serialAt
	return t
}

// appendRRHeader appends the owner 0xC00C (the question name), type, class
// IN, TTL and RDLENGTH.
func appendRRHeader(b []byte, typ uint16, ttl [4]byte, rdlen int) []byte {
	return append(b, 0xC0, headerLen, byte(typ>>8), byte(typ), 0, classIN,
		ttl[0], ttl[1], ttl[2], ttl[3], byte(rdlen>>8), byte(rdlen))
}

// addHosts validates Options.Hosts and precomputes their RRsets.
func (s *Server) addHosts(hosts map[string][]netip.Addr) error {
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic errors
	for _, n := range names {
		name, labels, err := parseName("Hosts", n)
		if err != nil {
			return err
		}
		if !isBelow(name, s.zone) {
			return fmt.Errorf("%w: Hosts %q: outside the zone %q", ErrOptions, n, s.zone)
		}
		for _, reserved := range []string{"_mta-sts." + s.zone, "_tls." + s.zone} {
			if isBelow(name, reserved) {
				return fmt.Errorf("%w: Hosts %q: names under %q are reserved for the hosted domains", ErrOptions, n, reserved)
			}
		}
		if len(hosts[n]) == 0 {
			return fmt.Errorf("%w: Hosts %q: no addresses", ErrOptions, n)
		}
		h := s.hosts[name]
		if h == nil {
			h = &host{}
			s.hosts[name] = h
		}
		for _, a := range hosts[n] {
			if !a.IsValid() || a.Zone() != "" {
				return fmt.Errorf("%w: Hosts %q: address %q is not a plain IPv4 or IPv6 address", ErrOptions, n, a)
			}
			a = a.Unmap()
			if a.Is4() {
				b := a.As4()
				h.a = appendRRHeader(h.a, typeA, s.ttl, 4)
				h.a = append(h.a, b[:]...)
				h.aCount++
			} else {
				b := a.As16()
				h.aaaa = appendRRHeader(h.aaaa, typeAAAA, s.ttl, 16)
				h.aaaa = append(h.aaaa, b[:]...)
				h.aaaaCnt++
			}
		}
		// Every name between the host and the apex exists (RFC 8020).
		for i := 1; i < len(labels)-len(s.zoneLabels); i++ {
			s.hostENT[strings.Join(labels[i:], ".")] = true
		}
	}
	return nil
}

// splitRRs turns an RRset whose owners are 0xC00C into single RRs owned by
// name (compressed against the apex at offset 12, as in NS answers).
func splitRRs(set []byte, n int, name, zone []string) [][]byte {
	var out [][]byte
	owner := appendName(nil, name, zone, headerLen)
	for range n {
		rdlen := int(binary.BigEndian.Uint16(set[10:12]))
		rr := append([]byte{}, owner...)
		rr = append(rr, set[2:12+rdlen]...)
		out = append(out, rr)
		set = set[12+rdlen:]
	}
	return out
}
