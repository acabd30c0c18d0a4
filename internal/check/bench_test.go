package check_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/check/fakenet"
)

// BenchmarkCheckLatency measures the wall time of a full check of a domain
// with two MX hosts when every DNS answer takes 50 ms (the goal:
// under 1.5 s), and reports what it is made of: the longest dependency
// chain of steps, against the sum of all DNS lookups a sequential checker
// would wait for.
//
//	go test -run '^$' -bench CheckLatency -benchtime 5x ./internal/check/
func BenchmarkCheckLatency(b *testing.B) {
	const delay = 50 * time.Millisecond
	d := perfect(b, "perfect.test")
	w := &world{pages: map[string]response{}}
	w.add(d)
	fmt.Fprintf(&w.zone, "logo.good.test. 60 IN A %s\nmx1.good.test. 60 IN A %s\nmx2.good.test. 60 IN A %s\n", ipWeb, ipGood1, ipGood2)
	n := fakenet.Start(b, fakenet.Spec{
		Zone: w.zone.String(),
		SMTP: []fakenet.SMTPHost{{Addr: ipGood1, Hostname: "mx1.good.test"}, {Addr: ipGood2, Hostname: "mx2.good.test"}},
		HTTPS: []fakenet.HTTPSHost{
			{Addr: ipWeb, Names: []string{"mta-sts.perfect.test", "logo.good.test"}, Handler: w.pagesHandler()},
		},
	})
	n.DNS.SetDelay(delay)
	c := checker(n, true, nil)

	var wall, dnsTime, chain time.Duration
	var queries int
	var last *check.Report
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rep, err := c.Check(context.Background(), "perfect.test")
		if err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
		if rep.Grade != "A" {
			b.Fatalf("grade %s, want A:\n%s", rep.Grade, dump(rep))
		}
		dnsTime += rep.Timings.DNSTime
		queries += rep.Timings.DNSQueries
		chain += chainTime(rep)
		last = rep
	}
	b.StopTimer()
	runs := time.Duration(b.N)
	b.ReportMetric(float64(wall/runs)/float64(time.Millisecond), "wall-ms/check")
	b.ReportMetric(float64(chain/runs)/float64(time.Millisecond), "chain-ms/check")
	b.ReportMetric(float64(dnsTime/runs)/float64(time.Millisecond), "dns-sum-ms/check")
	b.ReportMetric(float64(queries)/float64(b.N), "dns-queries/check")
	b.Log(breakdown(last))
}

// chainTime is the time the steps of the critical path took.
func chainTime(rep *check.Report) time.Duration {
	byName := map[string]check.Step{}
	for _, s := range rep.Timings.Steps {
		byName[s.Name] = s
	}
	var d time.Duration
	for _, name := range rep.Timings.CriticalPath {
		d += byName[name].Duration
	}
	return d
}

// breakdown renders the timings of a report.
func breakdown(rep *check.Report) string {
	var b strings.Builder
	t := rep.Timings
	fmt.Fprintf(&b, "wall %v; %d DNS queries (+%d answered from the check's cache) taking %v in sum; critical path %s\n",
		t.Total.Round(time.Millisecond), t.DNSQueries, t.DNSCacheHits, t.DNSTime.Round(time.Millisecond), strings.Join(t.CriticalPath, " → "))
	for _, s := range t.Steps {
		after := ""
		if s.After != "" {
			after = " (after " + s.After + ")"
		}
		fmt.Fprintf(&b, "  %7.1f ms + %7.1f ms  %s%s\n", float64(s.Start)/1e6, float64(s.Duration)/1e6, s.Name, after)
	}
	return b.String()
}
