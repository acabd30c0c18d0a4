package dnsserver

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary messages to Answer: it must never panic, must
// drop only what it should (no header, or a response), and whatever it
// sends must parse, carry the query's ID and, when it has a question,
// the query's question byte for byte; over UDP it must fit 512 bytes or
// the EDNS size.
func FuzzAnswer(f *testing.F) {
	srv := newTestServer(f, testOptions(), testDomains())
	seed := func(m *dns.Msg) { f.Add(pack(f, m)) }
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"customer.com._mta-sts.sts.example.net.", dns.TypeTXT},
		{"customer.com._smtp._tls.sts.example.net.", dns.TypeTXT},
		{"CUSTOMER.com._MTA-STS.sts.EXAMPLE.net.", dns.TypeTXT},
		{"customer.com._mta-sts.sts.example.net.", dns.TypeANY},
		{"huge.example._smtp._tls.sts.example.net.", dns.TypeTXT},
		{"com._mta-sts.sts.example.net.", dns.TypeTXT},
		{"nothing.sts.example.net.", dns.TypeAAAA},
		{"sts.example.net.", dns.TypeNS},
		{"sts.example.net.", dns.TypeSOA},
		{"sts.example.net.", dns.TypeAXFR},
		{"example.org.", dns.TypeA},
	} {
		seed(question(q.name, q.qtype, false))
		seed(question(q.name, q.qtype, true))
	}
	m := question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false)
	m.SetEdns0(512, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
	seed(m)
	m = question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, true)
	m.IsEdns0().SetVersion(1)
	seed(m)
	m = question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false)
	m.Opcode = dns.OpcodeNotify
	seed(m)
	// Compression pointers in the question and the additional section.
	f.Add([]byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 16, 0, 1})
	f.Add([]byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 's', 't', 's', 0, 0, 16, 0, 1, 0xC0, 12, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1})
	f.Add(make([]byte, 12))

	buf := make([]byte, maxMsg)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, proto := range []Proto{UDP, TCP} {
			resp := srv.Answer(msg, buf, proto)
			if resp == nil {
				if len(msg) >= headerLen && msg[2]&0x80 == 0 {
					t.Fatalf("dropped a query")
				}
				continue
			}
			if len(msg) < headerLen || msg[2]&0x80 != 0 {
				t.Fatalf("answered a message without header or a response")
			}
			var r dns.Msg
			if err := r.Unpack(resp); err != nil {
				t.Fatalf("response does not parse: %v\nquery % x\nresponse % x", err, msg, resp)
			}
			if r.Id != binary.BigEndian.Uint16(msg) || !r.Response {
				t.Fatalf("id %d qr %v, want %d and a response", r.Id, r.Response, binary.BigEndian.Uint16(msg))
			}
			if len(r.Question) > 1 {
				t.Fatalf("%d questions", len(r.Question))
			}
			if len(r.Question) == 1 {
				// The question must be the query's first one, as sent.
				var q query
				if !parseQuestion(msg, &q) {
					t.Fatalf("echoed a question that does not parse")
				}
				if !bytes.Equal(resp[headerLen:q.qend], msg[headerLen:q.qend]) {
					t.Fatalf("question not echoed byte for byte")
				}
			}
			if proto == UDP {
				limit := 512
				if opt := r.IsEdns0(); opt != nil {
					limit = max(limit, DefaultMaxUDPSize)
				}
				if len(resp) > limit {
					t.Fatalf("%d-byte UDP response, limit %d", len(resp), limit)
				}
			}
		}
	})
}
