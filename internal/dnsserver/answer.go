package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"github.com/moatmail/moat/internal/snapshot"
)

// Proto is the transport a query arrived on; it decides the response size
// limit.
type Proto uint8

// Transports.
const (
	UDP Proto = iota // responses limited to 512 bytes or the EDNS(0) size
	TCP              // responses up to 65535 bytes
)

// String is "udp" or "tcp".
func (p Proto) String() string {
	if p == TCP {
		return "tcp"
	}
	return "udp"
}

// Wire constants (RFC 1035 §3.2, §4.1; RFC 6891).
const (
	headerLen = 12
	optLen    = 11 // an OPT RR without options

	typeA     = 1
	typeNS    = 2
	typeSOA   = 6
	typeTXT   = 16
	typeAAAA  = 28
	typeOPT   = 41
	typeTKEY  = 249
	typeTSIG  = 250
	typeIXFR  = 251
	typeAXFR  = 252
	typeMAILB = 253
	typeMAILA = 254
	typeANY   = 255

	classIN = 1

	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16 // extended: the upper 8 bits go into the OPT TTL

	flagQR = 0x80 // byte 2
	flagAA = 0x04
	flagTC = 0x02
	flagRD = 0x01
	maskOp = 0x78
	flagCD = 0x10 // byte 3

	ednsDO = 0x8000
)

// query is what Answer extracts from a query message. It lives on the
// stack.
type query struct {
	qend    int // offset of the end of the question
	wireLen int // length of the question name in wire form
	qtype   uint16
	qclass  uint16
	nlabels int
	weird   bool // a label holds a '.': the name cannot exist here
	// starts are the offsets, relative to the name, of each label's
	// length byte.
	starts [128]uint8
	// lw is the question name lower-cased with every length byte replaced
	// by '.': lw[1:wireLen-1] is the dotted name, and the dotted name from
	// label k on is lw[starts[k]+1:wireLen-1].
	lw [maxNameWire + 1]byte

	edns        bool
	ednsSize    int
	ednsVersion uint8
	ednsDO      bool
}

// dotted returns the lower-cased name from label k on as a string that
// aliases q.lw; it must not outlive q.
func (q *query) dotted(k int) string {
	from := int(q.starts[k]) + 1
	n := q.wireLen - 1 - from
	if n <= 0 {
		return ""
	}
	return unsafe.String(&q.lw[from], n)
}

// label returns label k, lower-cased, aliasing q.lw.
func (q *query) label(k int) string {
	from := int(q.starts[k]) + 1
	to := q.wireLen - 1
	if k+1 < q.nlabels {
		to = int(q.starts[k+1])
	}
	return unsafe.String(&q.lw[from], to-from)
}

// parseQuestion reads the single question at offset 12 of msg. A name with
// compression pointers or extended label types is refused (false): nothing
// precedes the question for a pointer to point at (RFC 1035 §4.1.4), and
// RFC 6891 §5 deprecates extended labels.
func parseQuestion(msg []byte, q *query) bool {
	off := headerLen
	for {
		if off >= len(msg) {
			return false
		}
		l := int(msg[off])
		rel := off - headerLen
		q.lw[rel] = '.'
		if l == 0 {
			off++
			break
		}
		if l > 63 || rel+1+l+1 > maxNameWire || off+1+l > len(msg) {
			return false
		}
		q.starts[q.nlabels] = uint8(rel)
		q.nlabels++
		for i := off + 1; i <= off+l; i++ {
			c := msg[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			} else if c == '.' {
				q.weird = true
			}
			q.lw[i-headerLen] = c
		}
		off += 1 + l
	}
	q.wireLen = off - headerLen
	if off+4 > len(msg) {
		return false
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.qend = off + 4
	return true
}

// skipName returns the offset after the possibly compressed name at off,
// or -1.
func skipName(msg []byte, off int) int {
	for n := 0; n < 128; n++ {
		if off >= len(msg) {
			return -1
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		case l > 63:
			return -1
		}
		off += 1 + l
	}
	return -1
}

// parseAdditional walks the additional section for the OPT RR (RFC 6891
// §6.1). It returns false for a malformed section.
func parseAdditional(msg []byte, q *query, count int) bool {
	off := q.qend
	for range count {
		name := off
		if off = skipName(msg, off); off < 0 || off+10 > len(msg) {
			return false
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		class := binary.BigEndian.Uint16(msg[off+2:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		rd := off + 10
		if off = rd + rdlen; off > len(msg) {
			return false
		}
		if typ != typeOPT {
			continue // e.g. TSIG: not supported, the query is answered unsigned
		}
		// RFC 6891 §6.1.1: more than one OPT RR, or an owner that is not
		// the root, MUST get FORMERR.
		if q.edns || msg[name] != 0 {
			return false
		}
		q.edns = true
		q.ednsSize = int(class)
		q.ednsVersion = uint8(ttl >> 16)
		q.ednsDO = ttl&ednsDO != 0
		// Options must be well formed; none is acted upon (unknown
		// options are ignored, RFC 6891 §6.1.2).
		for o := rd; o < off; {
			if o+4 > off {
				return false
			}
			o += 4 + int(binary.BigEndian.Uint16(msg[o+2:]))
			if o > off {
				return false
			}
		}
	}
	return true
}

// Answer computes the response to the query message query, writing it into
// buf (which it reuses from index 0, growing it when too small), and
// returns it; nil means that nothing must be sent. It never panics on any
// input and, with a buffer of at least 64 KiB, does not allocate for
// queries about existing names.
func (s *Server) Answer(query, buf []byte, proto Proto) []byte {
	return s.appendResponse(buf[:0], query, proto, netip.AddrPort{})
}

// appendResponse appends the response to msg, from client from, to dst and
// counts it (and logs it, at debug level).
func (s *Server) appendResponse(dst, msg []byte, proto Proto, from netip.AddrPort) []byte {
	n := len(dst)
	out := s.buildResponse(dst, msg, proto)
	if out != nil {
		s.stats.count(out[n:])
	}
	if s.logQueries {
		var resp []byte // nil: nothing is sent
		if out != nil {
			resp = out[n:]
		}
		s.logQuery(msg, resp, proto, from)
	}
	return out
}

// buildResponse appends the response to msg to dst. Compression pointers
// are offsets from the start of the response, which is dst[len(dst):].
func (s *Server) buildResponse(dst, msg []byte, proto Proto) []byte {
	// RFC 1035 §4.1.1: a header is 12 bytes; without one there is no ID to
	// answer with.
	if len(msg) < headerLen {
		return nil
	}
	// Never answer a response (QR set): that would loop between servers.
	if msg[2]&flagQR != 0 {
		return nil
	}
	var q query
	qdcount := binary.BigEndian.Uint16(msg[4:])
	hasQ := qdcount == 1 && parseQuestion(msg, &q)
	if msg[2]&maskOp != 0 { // only QUERY (opcode 0) is implemented
		return s.appendError(dst, msg, &q, hasQ, rcodeNotImp)
	}
	// One question exactly (RFC 9619), no answer or authority records in a
	// query.
	if !hasQ || binary.BigEndian.Uint16(msg[6:]) != 0 || binary.BigEndian.Uint16(msg[8:]) != 0 {
		return s.appendError(dst, msg, &q, hasQ, rcodeFormErr)
	}
	if !parseAdditional(msg, &q, int(binary.BigEndian.Uint16(msg[10:]))) {
		return s.appendError(dst, msg, &q, true, rcodeFormErr)
	}
	// RFC 6891 §6.1.3: a version we do not implement MUST get BADVERS.
	if q.edns && q.ednsVersion > 0 {
		return s.appendError(dst, msg, &q, true, rcodeBadVers)
	}
	if q.qclass != classIN {
		return s.appendError(dst, msg, &q, true, rcodeRefused)
	}
	switch q.qtype {
	case typeOPT: // RFC 6891 §6.1.1: OPT is a pseudo-RR, not a question
		return s.appendError(dst, msg, &q, true, rcodeFormErr)
	case typeTKEY, typeTSIG, typeMAILA, typeMAILB:
		return s.appendError(dst, msg, &q, true, rcodeNotImp)
	}

	// Is the name in the zone? Compare the dotted name from the zone's
	// first label on; a label holding a '.' cannot fake a boundary since
	// the label count is fixed.
	rel := q.nlabels - len(s.zoneLabels)
	if rel < 0 || q.dotted(rel) != s.zone {
		// Not authoritative: RFC 1035 §4.1.1 REFUSED.
		return s.appendError(dst, msg, &q, true, rcodeRefused)
	}
	if q.qtype == typeAXFR || q.qtype == typeIXFR {
		return s.appendError(dst, msg, &q, true, rcodeRefused) // no zone transfers
	}
	apexOff := headerLen + int(q.starts[rel])

	base := len(dst)
	dst = append(dst, msg[0], msg[1],
		flagQR|msg[2]&(maskOp|flagRD)|flagAA, msg[3]&flagCD,
		0, 1, 0, 0, 0, 0, 0, 0)
	dst = append(dst, msg[headerLen:q.qend]...)
	qEnd := len(dst)

	limit := 65535
	if proto == UDP {
		limit = 512
		if q.edns {
			// RFC 6891 §6.2.5: sizes below 512 are treated as 512.
			limit = min(max(q.ednsSize, 512), s.maxUDP)
		}
	}
	if q.edns {
		limit -= optLen
	}

	snap := s.snaps.Load()
	serial := uint32(snap.Serial())
	var an, ns int
	rcode := rcodeNoError
	glue := false

	// neg writes a negative answer: RFC 2308 §3 puts the SOA in the
	// authority section of NXDOMAIN and NODATA.
	neg := func(rc int) {
		rcode = rc
		dst = s.soaAuth.append(dst, apexOff, serial)
		ns = 1
	}

	switch {
	case rel == 0: // the apex
		switch q.qtype {
		case typeSOA, typeANY: // RFC 8482 §4.1: ANY gets the SOA alone
			dst = s.soaAnswer.append(dst, headerLen, serial)
			an = 1
		case typeNS:
			dst = append(dst, s.nsAnswer...)
			an = s.nsCount
			glue = true
		default:
			if n := s.appendHost(&dst, s.hosts[s.zone], q.qtype); n > 0 {
				an = n
			} else {
				neg(rcodeNoError)
			}
		}
	case q.weird:
		neg(rcodeNXDomain)
	default:
		k, auth := s.reportAuth(&q, rel)
		switch {
		case auth == authReport:
			an, rcode = s.appendTXT(&dst, snap, &q, k, recDMARCAuth)
		case auth == authDMARC: // _dmarc.<report domain>: an empty non-terminal
			an, rcode = 0, rcodeNXDomain
			if snap.Len() > 0 {
				rcode = rcodeNoError
			}
		case q.label(rel-1) == "_mta-sts":
			an, rcode = s.appendTXT(&dst, snap, &q, rel-1, recSTS)
		case q.label(rel-1) == "_tls":
			if rel >= 2 && q.label(rel-2) == "_smtp" {
				an, rcode = s.appendTXT(&dst, snap, &q, rel-2, recTLSRPT)
			} else if rel == 1 && snap.Len() > 0 {
				an, rcode = 0, rcodeNoError // _tls.<zone>: empty non-terminal
			} else {
				an, rcode = 0, rcodeNXDomain
			}
		default:
			name := q.dotted(0)
			if h := s.hosts[name]; h != nil {
				if an = s.appendHost(&dst, h, q.qtype); an == 0 {
					rcode = rcodeNoError
				}
			} else if s.hostENT[name] {
				rcode = rcodeNoError
			} else {
				rcode = rcodeNXDomain
			}
		}
		if an == 0 {
			neg(rcode)
		}
	}

	if len(dst)-base > limit {
		if proto == TCP {
			// Cannot happen with the records we serve; fail safe.
			return s.appendError(dst[:base], msg, &q, true, rcodeServFail)
		}
		// RFC 2181 §9: when the answer does not fit, set TC and send no
		// partial RRset; the client retries over TCP (RFC 7766 §5).
		dst = dst[:qEnd]
		dst[base+2] |= flagTC
		an, ns, glue = 0, 0, false
	}
	ar := 0
	if glue {
		// Additional data is optional: add what fits (RFC 2181 §9).
		for _, rr := range s.glue {
			if len(dst)-base+len(rr) > limit {
				break
			}
			dst = append(dst, rr...)
			ar++
		}
	}
	if q.edns {
		dst = s.appendOPT(dst, 0, q.ednsDO)
		ar++
	}
	dst[base+3] |= byte(rcode)
	binary.BigEndian.PutUint16(dst[base+6:], uint16(an))
	binary.BigEndian.PutUint16(dst[base+8:], uint16(ns))
	binary.BigEndian.PutUint16(dst[base+10:], uint16(ar))
	return dst
}

// appendHost appends the A or AAAA RRset of h asked for by qtype (for ANY,
// the A RRset if there is one, RFC 8482 §4.1) and returns the RR count.
func (s *Server) appendHost(dst *[]byte, h *host, qtype uint16) int {
	if h == nil {
		return 0
	}
	switch {
	case qtype == typeA || qtype == typeANY && h.aCount > 0:
		*dst = append(*dst, h.a...)
		return h.aCount
	case qtype == typeAAAA || qtype == typeANY:
		*dst = append(*dst, h.aaaa...)
		return h.aaaaCnt
	}
	return 0
}

// The TXT records served per hosted domain.
type recKind uint8

const (
	recSTS       recKind = iota // D._mta-sts.<zone>
	recTLSRPT                   // D._smtp._tls.<zone>
	recDMARCAuth                // D._report._dmarc.<report domain>
)

// dmarcAuth is the record authorizing reports about a hosted domain to
// Moat's DMARC addresses (RFC 7489 §7.1: "v=DMARC1" suffices).
const dmarcAuth = "v=DMARC1"

// Where a name lies with respect to the DMARC report domains.
const (
	authNone   = iota
	authDMARC  // _dmarc.<report domain>
	authReport // _report._dmarc.<report domain> or a name below it
)

// reportAuth says whether the name of q (rel labels in front of the zone)
// is _dmarc.<report domain> or lies under _report._dmarc.<report domain>,
// and for the latter how many labels k are in front of _report.
func (s *Server) reportAuth(q *query, rel int) (k, where int) {
	for _, rd := range s.reportDomains {
		base := rel - rd.rel // the first label of the report domain
		if base < 1 || q.label(base-1) != "_dmarc" || q.dotted(base) != rd.name {
			continue
		}
		if base == 1 {
			return 0, authDMARC
		}
		if q.label(base-2) == "_report" {
			return base - 2, authReport
		}
	}
	return 0, authNone
}

// appendTXT answers a name under _mta-sts.<zone>, _smtp._tls.<zone> or
// _report._dmarc.<report domain> (rec) whose labels in front of the
// service labels are 0 to k-1. It returns the answer count and RCODE; with
// no answer the caller adds the SOA.
func (s *Server) appendTXT(dst *[]byte, snap *snapshot.Snapshot, q *query, k int, rec recKind) (int, int) {
	if k == 0 {
		// _mta-sts.<zone>, _smtp._tls.<zone> or _report._dmarc.<report
		// domain> itself: an empty
		// non-terminal while any domain is hosted. RFC 8020: NXDOMAIN
		// would deny every name below.
		if snap.Len() > 0 {
			return 0, rcodeNoError
		}
		return 0, rcodeNXDomain
	}
	// The hosted domain is labels 0..k-1: lw[1:starts[k]].
	name := unsafe.String(&q.lw[1], int(q.starts[k])-1)
	var txt string
	if d := snap.Lookup(name); d != nil {
		switch rec {
		case recSTS:
			txt = d.STSRecord
		case recTLSRPT:
			txt = d.TLSRPTRecord
		case recDMARCAuth:
			txt = dmarcAuth
		}
	}
	if txt == "" || q.qtype != typeTXT && q.qtype != typeANY {
		// No record here. The name still exists when a hosted domain
		// lies below it (RFC 8020) or when it has a record of another
		// type than asked (NODATA).
		if txt != "" || snap.HasDescendant(name) {
			return 0, rcodeNoError
		}
		return 0, rcodeNXDomain
	}
	// RFC 1035 §3.3.14: a TXT RDATA is one or more <character-string>s of
	// at most 255 bytes; longer values are split and concatenated by the
	// reader (RFC 7208 §3.3, RFC 8461 §3.1).
	n := len(txt) + (len(txt)+254)/255
	b := appendRRHeader(*dst, typeTXT, s.ttl, n)
	for len(txt) > 255 {
		b = append(b, 255)
		b = append(b, txt[:255]...)
		txt = txt[255:]
	}
	b = append(b, byte(len(txt)))
	b = append(b, txt...)
	*dst = b
	return 1, rcodeNoError
}

// appendOPT appends our OPT RR (RFC 6891 §6.1.2): our UDP payload size,
// the upper bits of the RCODE, version 0, and the DO bit copied from the
// query (RFC 3225 §3).
func (s *Server) appendOPT(dst []byte, rcode int, do bool) []byte {
	var flags byte
	if do {
		flags = ednsDO >> 8
	}
	return append(dst, 0, 0, typeOPT, byte(s.maxUDP>>8), byte(s.maxUDP),
		byte(rcode>>4), 0, flags, 0, 0, 0)
}

// appendError appends a response without records: the header with rcode,
// the question when it was parsed, and an OPT RR when the query had one.
func (s *Server) appendError(dst, msg []byte, q *query, withQ bool, rcode int) []byte {
	base := len(dst)
	dst = append(dst, msg[0], msg[1],
		flagQR|msg[2]&(maskOp|flagRD), msg[3]&flagCD|byte(rcode&0xF),
		0, 0, 0, 0, 0, 0, 0, 0)
	if withQ {
		dst[base+5] = 1
		dst = append(dst, msg[headerLen:q.qend]...)
	}
	if q.edns {
		dst = s.appendOPT(dst, rcode, q.ednsDO)
		dst[base+11] = 1
	}
	return dst
}
