package intake

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"
)

// benchDMARCMail is a DMARC aggregate report mail of n records, gzipped as
// large providers send them.
func benchDMARCMail(b testing.TB, id string, n int) []byte {
	var xml bytes.Buffer
	if err := writeDMARCReport(&xml, id, n); err != nil {
		b.Fatal(err)
	}
	return dmarcMail("application/gzip", "receiver.example!a.example!1!2.xml.gz", gzipped(b, xml.Bytes()))
}

// BenchmarkSMTPPerConnection measures reports stored durably by SMTP with
// one message per connection, as MTAs deliver reports (connect, EHLO,
// MAIL, RCPT, DATA, QUIT), from 16 parallel clients: TLS-RPT reports of
// about 1 KB of JSON and DMARC aggregate reports of 1 and 32 records.
// The CPU is the client's and the server's together; bench/run.sh intake
// measures the server alone beside smtp-sink.
func BenchmarkSMTPPerConnection(b *testing.B) {
	for _, bc := range []struct {
		name string
		rcpt string
		msg  func(i int) []byte
	}{
		{"tlsrpt-1k", testRcpt, func(i int) []byte { return reportMail("application/tlsrpt+gzip", gzipped(b, benchReport(int64(i)))) }},
		{"dmarc-1rec", testDMARCRcpt, func(i int) []byte { return benchDMARCMail(b, fmt.Sprintf("bench-%d", i), 1) }},
		{"dmarc-32rec", testDMARCRcpt, func(i int) []byte { return benchDMARCMail(b, fmt.Sprintf("bench-%d", i), 32) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := openStore(b)
			ing := startIngester(b, st, nil, IngestOpts{})
			srv := NewSMTPServer(nil, ing, SMTPOpts{Recipients: []string{testRcpt}, DMARCRecipients: []string{testDMARCRcpt},
				Resolver: mapResolver{}, MaxConnectionsPerIP: 1000})
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, l) }()
			b.Cleanup(func() { cancel(); <-done })
			addr := l.Addr().String()
			msgs := make([][]byte, b.N)
			for i := range msgs {
				msgs[i] = bc.msg(i)
			}
			var n atomic.Int64
			b.SetParallelism(8) // 16 clients on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sendOne(addr, bc.rcpt, msgs[n.Add(1)-1]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportRate(b, ing, len(msgs[0]))
		})
	}
}

// sendOne delivers msg over a connection of its own.
func sendOne(addr, rcpt string, msg []byte) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("bench.example"); err != nil {
		return err
	}
	if err := c.Mail("reports@sender.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return err
	}
	if !strings.Contains(resp.StatusText, "stored") {
		return fmt.Errorf("answer %q, want stored", resp.StatusText)
	}
	return c.Quit()
}
