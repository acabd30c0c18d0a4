package intake

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"
)

// benchReport is a realistic report (one STS policy, two failure details)
// of about 1 KB of JSON, unique by n.
func benchReport(n int64) []byte {
	domain := fmt.Sprintf("customer%d.example", n%500)
	return []byte(fmt.Sprintf(`{"organization-name":"Google Inc.","date-range":{"start-datetime":"2026-11-01T00:00:00Z",`+
		`"end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"smtp-tls-reporting@google.com",`+
		`"report-id":"2026-11-01T00:00:00Z_%[1]s_%[2]d","policies":[{"policy":{"policy-type":"sts",`+
		`"policy-string":["version: STSv1","mode: testing","mx: mx1.%[1]s","mx: mx2.%[1]s","max_age: 604800"],`+
		`"policy-domain":"%[1]s","mx-host":["mx1.%[1]s","mx2.%[1]s"]},"summary":{"total-successful-session-count":%[3]d,`+
		`"total-failure-session-count":3},"failure-details":[{"result-type":"certificate-expired",`+
		`"sending-mta-ip":"209.85.220.%[4]d","receiving-mx-hostname":"mx1.%[1]s","receiving-ip":"192.0.2.25",`+
		`"failed-session-count":2},{"result-type":"starttls-not-supported","sending-mta-ip":"209.85.220.%[4]d",`+
		`"receiving-mx-hostname":"mx2.%[1]s","receiving-ip":"192.0.2.26","failed-session-count":1,`+
		`"additional-information":"https://transparencyreport.google.com/"}]}]}`, domain, n, 100+n%50, n%250))
}

// reportRate reports durable reports per second and the mean batch size.
func reportRate(b *testing.B, ing *Ingester, size int) {
	s := ing.Stats()
	b.ReportMetric(float64(s.Reports)/b.Elapsed().Seconds(), "reports/s")
	if s.Batches > 0 {
		b.ReportMetric(float64(s.Reports)/float64(s.Batches), "reports/commit")
	}
	b.ReportMetric(float64(size), "report-bytes")
}

// BenchmarkIngestHTTP measures reports stored durably (committed to SQLite
// before the 200) by POST /v1/tlsrpt from parallel clients over keep-alive
// HTTP connections, gzipped reports of about 1 KB of JSON.
func BenchmarkIngestHTTP(b *testing.B) {
	st := openStore(b)
	ing := startIngester(b, st, nil, IngestOpts{})
	srv := &http.Server{Handler: NewHTTPHandler(nil, ing, HTTPOpts{RatePerIP: -1})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	url := "http://" + l.Addr().String() + ReportPath
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	size := len(benchReport(0))
	// The senders' work (building and compressing reports) is done
	// before the clock starts.
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = gzipped(b, benchReport(int64(i)))
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[n.Add(1)-1]
			resp, err := client.Post(url, "application/tlsrpt+gzip", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, ing, size)
}

// BenchmarkIngestSMTP measures reports stored durably (committed before
// the 250) by SMTP from parallel clients, each delivering many messages
// over one connection (MAIL, RCPT, DATA per report; no TLS), with the
// report gzipped in a multipart/report message of about 2 KB.
func BenchmarkIngestSMTP(b *testing.B) {
	st := openStore(b)
	ing := startIngester(b, st, nil, IngestOpts{})
	srv := NewSMTPServer(nil, ing, SMTPOpts{Recipients: []string{testRcpt}, Resolver: mapResolver{}, MaxConnectionsPerIP: 1000})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	b.Cleanup(func() { cancel(); <-done })
	addr := l.Addr().String()
	size := len(reportMail("application/tlsrpt+gzip", gzipped(b, benchReport(0))))
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = reportMail("application/tlsrpt+gzip", gzipped(b, benchReport(int64(i))))
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		c := smtp.NewClient(conn)
		defer c.Close()
		if err := c.Hello("bench.example"); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			msg := msgs[n.Add(1)-1]
			if err := c.Mail("tlsrpt@sender.example", nil); err != nil {
				b.Error(err)
				return
			}
			if err := c.Rcpt(testRcpt, nil); err != nil {
				b.Error(err)
				return
			}
			w, err := c.Data()
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := w.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if err := w.Close(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, ing, size)
}
