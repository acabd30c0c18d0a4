package senders

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// benchRows makes n rollup rows of example.com from n/5 sources, in the
// proportions of a real domain: most passing through known services, some
// forwarded, some misconfigured, some unknown; and what DNS said about
// them.
func benchRows(n int) ([]store.DMARCRollupRow, Facts) {
	rows := make([]store.DMARCRollupRow, 0, n)
	facts := Facts{PTR: map[string]store.PTRRecord{}, SPF: map[string]store.SPFAuth{}}
	for i := range n {
		src := i / 5
		ip := netip.AddrFrom4([4]byte{198, 18, byte(src >> 8), byte(src)}).String()
		if src >= 1<<16 {
			ip = netip.AddrFrom4([4]byte{198, 19, byte(src >> 8), byte(src)}).String()
		}
		r := row(ip, int64(1+i%17), func(r *store.DMARCRow) {})
		switch src % 10 {
		case 0, 1, 2, 3, 4: // Google, passing
			r.DKIM, r.DKIMDomain, r.DKIMSelector, r.DKIMResult, r.DKIMAligned = "pass", "example.com", "google", "pass", true
			r.SPFDomain, r.SPFResult = "example.com", "pass"
			facts.PTR[ip] = store.PTRRecord{IP: ip, Names: []string{fmt.Sprintf("mail-%d.google.com", src)}, Confirmed: fmt.Sprintf("mail-%d.google.com", src)}
			facts.SPF[ip] = store.SPFAuth{Result: "pass"}
		case 5: // forwarded
			r.DKIM, r.DKIMDomain, r.DKIMResult, r.DKIMAligned = "pass", "example.com", "pass", true
			r.SPFDomain, r.SPFResult = "example.com", "fail"
			facts.SPF[ip] = store.SPFAuth{Result: "softfail"}
		case 6, 7: // Amazon SES without DKIM for the domain
			r.EnvelopeFrom, r.SPFDomain, r.SPFResult = "amazonses.com", "amazonses.com", "pass"
			r.DKIMDomain, r.DKIMResult = "amazonses.com", "pass"
			facts.PTR[ip] = store.PTRRecord{IP: ip, Error: "nxdomain"}
		default: // unknown
			r.SPFDomain, r.SPFResult = "example.com", "fail"
			facts.PTR[ip] = store.PTRRecord{IP: ip, Error: "nxdomain"}
			facts.SPF[ip] = store.SPFAuth{Result: "fail"}
		}
		rows = append(rows, r)
	}
	return rows, facts
}

// BenchmarkClassify classifies 100,000 rollup rows (20,000 sources).
func BenchmarkClassify(b *testing.B) {
	rows, facts := benchRows(100000)
	cat := builtin(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if s := Classify("example.com", rows, facts, cat); len(s) != 20000 {
			b.Fatalf("%d sources", len(s))
		}
	}
}

// BenchmarkImpact computes p=reject over the sources of 100,000 rows.
func BenchmarkImpact(b *testing.B) {
	rows, facts := benchRows(100000)
	sources := Classify("example.com", rows, facts, builtin(b))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ComputeImpact("example.com", sources, Policy{P: "reject", Pct: 50}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchRows checks the benchmark's data: the classes come out in the
// proportions it was made with.
func TestBenchRows(t *testing.T) {
	t.Parallel()
	rows, facts := benchRows(1000)
	got := map[Class]int{}
	for _, s := range Classify("example.com", rows, facts, builtin(t)) {
		got[s.Class]++
	}
	if got[Compliant] != 100 || got[Forwarded] != 20 || got[Misconfigured] != 40 || got[Unknown] != 40 {
		t.Errorf("classes %v", got)
	}
}
