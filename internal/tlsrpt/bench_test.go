package tlsrpt

import (
	"bytes"
	"fmt"
	"testing"
)

// bigReport builds a report with one policy and n failure details.
func bigReport(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"organization-name":"Example","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"contact-info":"tlsrpt@example.net","report-id":"big","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.example.com","max_age: 86400"],"policy-domain":"example.com","mx-host":["mx.example.com"]},"summary":{"total-successful-session-count":1000,"total-failure-session-count":`)
	fmt.Fprintf(&b, "%d", n)
	b.WriteString(`},"failure-details":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.%d","receiving-mx-hostname":"mx.example.com","receiving-ip":"198.51.100.%d","failed-session-count":1,"failure-reason-code":"X509_V_ERR_CERT_HAS_EXPIRED"}`, i%256, i%256)
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

// BenchmarkDecode decodes a report of about 1 MB (5,000 failure details).
func BenchmarkDecode(b *testing.B) {
	data := bigReport(5000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
