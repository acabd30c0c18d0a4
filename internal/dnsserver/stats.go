package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/moatmail/moat/internal/reqid"
)

// The query types counted apart; others are counted as "other".
var statTypes = [...]struct {
	code uint16
	name string
}{{1, "A"}, {2, "NS"}, {5, "CNAME"}, {6, "SOA"}, {15, "MX"}, {16, "TXT"}, {28, "AAAA"}, {255, "ANY"}}

const statOther = len(statTypes) // index of "other"

// stats counts the answers sent, by query type and response code: one
// atomic add per answer, no allocation.
type stats struct {
	n [len(statTypes) + 1][16]atomic.Uint64
}

// count records the answer resp (a DNS message this server built).
func (st *stats) count(resp []byte) {
	if len(resp) < headerLen {
		return
	}
	t := statOther
	// The question section echoes the query: skip its name, read QTYPE.
	if resp[4] != 0 || resp[5] != 0 {
		o := headerLen
		for o < len(resp) && resp[o] != 0 {
			o += 1 + int(resp[o])
		}
		if o+3 <= len(resp) {
			qtype := uint16(resp[o+1])<<8 | uint16(resp[o+2])
			for i, st := range statTypes {
				if st.code == qtype {
					t = i
					break
				}
			}
		}
	}
	st.n[t][resp[3]&0x0f].Add(1)
}

// rcodeNames are the names of the response codes counted.
var rcodeNames = [16]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
	"NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15"}

// Counts calls fn for every (query type, response code) with a non-zero
// count of answers sent since the server was made.
func (s *Server) Counts(fn func(qtype, rcode string, n uint64)) {
	for t := range s.stats.n {
		name := "other"
		if t < len(statTypes) {
			name = statTypes[t].name
		}
		for rc := range s.stats.n[t] {
			if v := s.stats.n[t][rc].Load(); v > 0 {
				fn(name, rcodeNames[rc], v)
			}
		}
	}
}

// logQuery writes a debug line about a query and its response (nil when
// none was sent), under a request id (package reqid) beside the DNS
// message id.
func (s *Server) logQuery(msg, resp []byte, proto Proto, from netip.AddrPort) {
	attrs := []any{"req", reqid.New(), "client", from, "proto", proto.String()}
	if len(msg) >= headerLen {
		attrs = append(attrs, "dns_id", binary.BigEndian.Uint16(msg))
	}
	var q query
	if len(msg) >= headerLen && binary.BigEndian.Uint16(msg[4:]) == 1 && parseQuestion(msg, &q) {
		qtype := fmt.Sprintf("TYPE%d", q.qtype) // RFC 3597 §5
		for _, st := range statTypes {
			if st.code == q.qtype {
				qtype = st.name
			}
		}
		name := "."
		if q.wireLen > 1 {
			name = string(q.lw[1:q.wireLen-1]) + "."
		}
		attrs = append(attrs, "name", name, "type", qtype)
	}
	if len(resp) < headerLen {
		s.log.Debug("dns query not answered", attrs...)
		return
	}
	s.log.Debug("dns query", append(attrs, "rcode", rcodeNames[resp[3]&0x0f], "answers", binary.BigEndian.Uint16(resp[6:]),
		"bytes", len(resp), "truncated", resp[2]&0x02 != 0)...)
}
