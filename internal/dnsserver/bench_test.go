package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/snapshot"
)

const benchDomains = 100_000

// benchSnapshot hosts n domains under a few suffixes, each with an STS and
// a TLS-RPT record of realistic length.
func benchSnapshot(n int) *snapshot.Snapshot {
	suffixes := []string{"com", "net", "org", "co.uk", "de", "example"}
	ds := make([]*snapshot.Domain, n)
	for i := range ds {
		name := fmt.Sprintf("customer%d.%s", i, suffixes[i%len(suffixes)])
		ds[i] = &snapshot.Domain{
			Name:         name,
			STSRecord:    fmt.Sprintf("v=STSv1; id=20261122T%06dZ", i),
			TLSRPTRecord: "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net,https://reports.example.net/v1/tlsrpt",
		}
	}
	return snapshot.New(testSerial, time.Unix(0, 0), ds)
}

// benchQueries are the queries of BenchmarkAnswer, as resolvers send them
// (EDNS, 0x20 mixed case where noted).
func benchQueries(tb testing.TB) map[string][]byte {
	q := func(name string, qtype uint16) []byte {
		m := question(name, qtype, true)
		m.Id = 0xBEEF
		return pack(tb, m)
	}
	return map[string][]byte{
		"sts":      q("customer4242.com._mta-sts.sts.example.net.", dns.TypeTXT),
		"tlsrpt":   q("customer4243.net._smtp._tls.sts.example.net.", dns.TypeTXT),
		"0x20":     q("CuStOmEr4242.CoM._mTa-StS.sTs.ExAmPlE.nEt.", dns.TypeTXT),
		"nodata":   q("customer4242.com._mta-sts.sts.example.net.", dns.TypeA),
		"nxdomain": q("not-hosted.com._mta-sts.sts.example.net.", dns.TypeTXT),
		"soa":      q("sts.example.net.", dns.TypeSOA),
		"refused":  q("example.org.", dns.TypeA),
	}
}

// BenchmarkAnswer measures the pure query-to-response function with
// 100,000 hosted domains.
func BenchmarkAnswer(b *testing.B) {
	var h snapshot.Holder
	h.Store(benchSnapshot(benchDomains))
	srv, err := New(slog.New(slog.DiscardHandler), &h, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, maxMsg)
	for _, name := range []string{"sts", "tlsrpt", "0x20", "nodata", "nxdomain", "soa", "refused"} {
		query := benchQueries(b)[name]
		b.Run(name, func(b *testing.B) {
			if srv.Answer(query, buf, UDP) == nil {
				b.Fatal("no response")
			}
			b.ReportAllocs()
			for b.Loop() {
				srv.Answer(query, buf, UDP)
			}
		})
	}
}

// BenchmarkUDP measures real round trips over 127.0.0.1: clients on their
// own sockets, each with one query outstanding, against the server's UDP
// readers. Client and server share the machine; cpu-ns/op is the CPU time
// of the whole process (both sides) per query.
// "batch" is the recvmmsg/sendmmsg path (Linux), "single" one datagram per
// system call.
func BenchmarkUDP(b *testing.B) {
	for _, batch := range []bool{true, false} {
		for _, readers := range []int{1, 2} {
			name := fmt.Sprintf("single/readers=%d", readers)
			if batch {
				name = fmt.Sprintf("batch/readers=%d", readers)
			}
			b.Run(name, func(b *testing.B) { benchUDP(b, readers, batch) })
		}
	}
}

func benchUDP(b *testing.B, readers int, batch bool) {
	var h snapshot.Holder
	h.Store(benchSnapshot(benchDomains))
	opts := testOptions()
	opts.UDPReaders = readers
	srv, err := New(slog.New(slog.DiscardHandler), &h, opts)
	if err != nil {
		b.Fatal(err)
	}
	srv.noBatch = !batch
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), pc, nil) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-errc
	}()
	query := benchQueries(b)["sts"]
	addr := pc.LocalAddr().(*net.UDPAddr)
	var lost atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.SetParallelism(2) // clients per GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		q := append([]byte{}, query...)
		resp := make([]byte, 2048)
		for pb.Next() {
			if _, err := c.Write(q); err != nil {
				b.Error(err)
				return
			}
			if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Read(resp); err != nil {
				lost.Add(1) // a dropped datagram: carry on
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if n := lost.Load(); n > int64(b.N)/100 {
		b.Errorf("%d of %d queries unanswered", n, b.N)
	}
}
