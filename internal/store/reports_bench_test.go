package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/pgtest"
)

// benchReport returns a small, realistic parsed report (about 1 KB of JSON,
// one policy, two failure details, three rollups), unique by n.
func benchReport(n int) *store.TLSRPTReport {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n%30)
	domain := fmt.Sprintf("customer%d.example", n%500)
	org := []string{"Google Inc.", "Microsoft Corporation", "Yahoo", "Comcast"}[n%4]
	id := fmt.Sprintf("%s_%d@%s", d.Format(time.DateOnly), n, domain)
	raw := fmt.Sprintf(`{"organization-name":%q,"date-range":{"start-datetime":"%s","end-datetime":"%s"},`+
		`"contact-info":"smtp-tls-reporting@example.com","report-id":%q,"policies":[{"policy":{"policy-type":"sts",`+
		`"policy-string":["version: STSv1","mode: testing","mx: mx1.%[5]s","mx: mx2.%[5]s","max_age: 604800"],`+
		`"policy-domain":%[5]q,"mx-host":["mx1.%[5]s","mx2.%[5]s"]},"summary":{"total-successful-session-count":%[6]d,`+
		`"total-failure-session-count":3},"failure-details":[{"result-type":"certificate-expired",`+
		`"sending-mta-ip":"209.85.220.%[7]d","receiving-mx-hostname":"mx1.%[5]s","receiving-ip":"192.0.2.25",`+
		`"failed-session-count":2},{"result-type":"starttls-not-supported","sending-mta-ip":"209.85.220.%[7]d",`+
		`"receiving-mx-hostname":"mx2.%[5]s","receiving-ip":"192.0.2.26","failed-session-count":1,`+
		`"additional-information":"https://transparencyreport.google.com/"}]}]}`,
		org, d.Format(time.RFC3339), d.Add(24*time.Hour-time.Second).Format(time.RFC3339), id, domain, 100+n%50, n%250)
	ip := fmt.Sprintf("209.85.220.%d", n%250)
	return &store.TLSRPTReport{
		Source: "https", SourceDetail: "203.0.113.9", Raw: []byte(raw), MediaType: "application/tlsrpt+json",
		Status: store.ReportOK, OrganizationName: org, ReportID: id, ContactInfo: "smtp-tls-reporting@example.com",
		StartTime: d, EndTime: d.Add(24*time.Hour - time.Second), Domains: []string{domain}, Hosted: true,
		Successful: int64(100 + n%50), Failed: 3, Normalized: []byte(raw),
		Policies: []store.TLSRPTPolicy{{Type: "sts", Domain: domain, Strings: strings.Split("version: STSv1,mode: testing", ","),
			MXHosts: []string{"mx1." + domain, "mx2." + domain}, Successful: int64(100 + n%50), Failed: 3,
			Failures: []store.TLSRPTFailure{
				{ResultType: "certificate-expired", SendingMTAIP: ip, ReceivingMX: "mx1." + domain, ReceivingIP: "192.0.2.25", Sessions: 2},
				{ResultType: "starttls-not-supported", SendingMTAIP: ip, ReceivingMX: "mx2." + domain, ReceivingIP: "192.0.2.26", Sessions: 1},
			}}},
		Rollups: []store.TLSRPTRollup{
			{Day: d, Domain: domain, PolicyType: "sts", ResultType: "success", Organization: org, Sessions: int64(100 + n%50)},
			{Day: d, Domain: domain, PolicyType: "sts", ResultType: "certificate-expired", Organization: org, SendingIP: ip, ReceivingMX: "mx1." + domain, Sessions: 2},
			{Day: d, Domain: domain, PolicyType: "sts", ResultType: "starttls-not-supported", Organization: org, SendingIP: ip, ReceivingMX: "mx2." + domain, Sessions: 1},
		},
	}
}

// BenchmarkInsertTLSRPT measures durable intake: batches of new reports,
// each batch one committed transaction (on SQLite one fsync of the WAL, with
// synchronous=FULL). It reports reports/s; the gain from batching is the
// point of InsertTLSRPT taking batches.
func BenchmarkInsertTLSRPT(b *testing.B) {
	dbs := []struct {
		name string
		opts func(b *testing.B) store.Options
	}{
		{"sqlite", func(b *testing.B) store.Options { return store.Options{DataDir: b.TempDir()} }},
		{"postgres", func(b *testing.B) store.Options { return store.Options{URL: pgtest.NewDatabase(b)} }},
	}
	for _, db := range dbs {
		for _, size := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", db.name, size), func(b *testing.B) {
				st, err := store.Open(b.Context(), nil, db.opts(b))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				n, batches := 0, 0
				for b.Loop() {
					batch := make([]*store.TLSRPTReport, size)
					for i := range batch {
						batch[i] = benchReport(n)
						n++
					}
					res, err := st.InsertTLSRPT(b.Context(), batch)
					if err != nil {
						b.Fatal(err)
					}
					if res[0].Duplicate {
						b.Fatalf("report %d is a duplicate", n-size)
					}
					batches++
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "reports/s")
				b.ReportMetric(float64(batches)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}
