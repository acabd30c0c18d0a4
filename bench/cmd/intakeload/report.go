package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Report sizes. Both follow the shape of RFC 8460 Appendix B: one "sts"
// policy with its policy-string, mx-host and summary, then failure details.
const (
	// sizeSmall is a typical daily report: one policy, two failure details
	// (about 1 KB of JSON).
	sizeSmall = "small"
	// sizeLarge is a report of a receiving domain with many problems: the
	// same policy with largeDetails failure details from many sending IPs
	// and MX hosts, every result type (about 20 KB of JSON).
	sizeLarge = "large"

	largeDetails = 80
	domains      = 1000 // policy domains the reports are spread over
)

// organizations send the reports; the report-id makes each one distinct.
var organizations = [...]struct{ name, contact, submitter string }{
	{"Company-X", "sts-reporting@company-x.example", "company-x.example"},
	{"Mail Provider B", "tlsrpt@provider-b.example", "provider-b.example"},
	{"Example Hosting", "smtp-tls-reporting@example-hosting.example", "example-hosting.example"},
}

var resultTypes = [...]string{
	"certificate-expired", "starttls-not-supported", "validation-failure",
	"certificate-host-mismatch", "certificate-not-trusted", "sts-webpki-invalid",
}

// reportSpec is what one generated report is about.
type reportSpec struct {
	org       int
	domain    string
	reportID  string
	day       time.Time
	large     bool
	seq       int
	submitter string
}

func newSpec(size, run string, i int, day time.Time) reportSpec {
	org := i % len(organizations)
	return reportSpec{
		org:       org,
		domain:    "customer" + strconv.Itoa(i%domains) + ".example",
		reportID:  run + "." + strconv.Itoa(i),
		day:       day,
		large:     size == sizeLarge,
		seq:       i,
		submitter: organizations[org].submitter,
	}
}

// reportJSON writes the report as compact JSON, the way large senders send
// it.
func reportJSON(s reportSpec) []byte {
	var b bytes.Buffer
	o := organizations[s.org]
	d := s.domain
	start := s.day.Format(time.RFC3339)
	end := s.day.Add(24*time.Hour - time.Second).Format(time.RFC3339)
	fmt.Fprintf(&b, `{"organization-name":%q,"date-range":{"start-datetime":%q,"end-datetime":%q},`+
		`"contact-info":%q,"report-id":%q,"policies":[{"policy":{"policy-type":"sts",`+
		`"policy-string":["version: STSv1","mode: testing","mx: mx1.%s","mx: mx2.%s","max_age: 604800"],`+
		`"policy-domain":%q,"mx-host":["mx1.%s","mx2.%s"]},`,
		o.name, start, end, o.contact, s.reportID, d, d, d, d, d)
	if !s.large {
		expired, starttls := 1+s.seq%3, 2+s.seq%7
		fmt.Fprintf(&b, `"summary":{"total-successful-session-count":%d,"total-failure-session-count":%d},`+
			`"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"2001:db8:abcd:12::%x",`+
			`"receiving-mx-hostname":"mx1.%s","failed-session-count":%d},`+
			`{"result-type":"starttls-not-supported","sending-mta-ip":"198.51.100.%d",`+
			`"receiving-mx-hostname":"mx2.%s","receiving-ip":"203.0.113.56","failed-session-count":%d,`+
			`"additional-information":"https://reports.%s/report_info?id=%s#StarttlsNotSupported"}]}]}`,
			5000+s.seq%400, expired+starttls, s.seq%4096, d, expired, s.seq%256, d, starttls, o.submitter, s.reportID)
		return b.Bytes()
	}
	var counts [largeDetails]int
	failed := 0
	for k := range counts {
		counts[k] = 1 + (s.seq*7+k*13)%40
		failed += counts[k]
	}
	fmt.Fprintf(&b, `"summary":{"total-successful-session-count":%d,"total-failure-session-count":%d},"failure-details":[`,
		200000+s.seq%10000, failed)
	// Sending IPs, receiving IPs and counts vary as in a real report of
	// many senders' MTAs, so that gzip does no better than on real ones
	// (about 9:1 here).
	r := rand.New(rand.NewPCG(uint64(s.seq), 8460))
	for k := range largeDetails {
		if k > 0 {
			b.WriteByte(',')
		}
		ip := fmt.Sprintf("%s.%d", [...]string{"192.0.2", "198.51.100", "203.0.113"}[r.IntN(3)], r.IntN(256))
		if k%2 == 0 {
			ip = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16))
		}
		mx := 1 + r.IntN(2)
		fmt.Fprintf(&b, `{"result-type":%q,"sending-mta-ip":%q,"receiving-mx-hostname":"mx%d.%s",`+
			`"receiving-mx-helo":"mx%d-%d.%s","receiving-ip":"203.0.113.%d","failed-session-count":%d`,
			resultTypes[k%len(resultTypes)], ip, mx, d, mx, r.IntN(100), d, r.IntN(256), counts[k])
		switch k % len(resultTypes) {
		case 0:
			b.WriteString(`,"failure-reason-code":"X509_V_ERR_CERT_HAS_EXPIRED"`)
		case 2:
			b.WriteString(`,"failure-reason-code":"X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"`)
		case 5:
			fmt.Fprintf(&b, `,"additional-information":"https://reports.%s/info?id=%s&detail=%x"`, o.submitter, s.reportID, r.Uint64())
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(data) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return b.Bytes()
}

// reportMail is the report as an RFC 8460 §5.3 message: multipart/report
// with report-type "tlsrpt", a human-readable part and the report as a
// base64 attachment named as §5.3 suggests. It is not DKIM-signed (see
// bench/README.md).
func reportMail(s reportSpec, rcpt string, report []byte, gz bool) []byte {
	mediaType, ext := "application/tlsrpt+json", ".json"
	if gz {
		mediaType, ext = "application/tlsrpt+gzip", ".json.gz"
	}
	start, end := s.day.Unix(), s.day.Add(24*time.Hour-time.Second).Unix()
	boundary := "----=_report_" + strconv.Itoa(s.seq)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: TLS Reporting <noreply-tlsrpt@%s>\r\n", s.submitter)
	fmt.Fprintf(&b, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&b, "Date: %s\r\n", s.day.Add(26*time.Hour).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s@%s>\r\n", s.domain, s.submitter, s.reportID, s.submitter)
	fmt.Fprintf(&b, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", s.domain, s.submitter)
	fmt.Fprintf(&b, "Message-ID: <%s.tlsrpt@%s>\r\nMIME-Version: 1.0\r\n", s.reportID, s.submitter)
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(&b, "This is an aggregate TLS report from %s.\r\n\r\n--%s\r\n", s.submitter, boundary)
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\n", mediaType)
	fmt.Fprintf(&b, "Content-Disposition: attachment;\r\n\tfilename=\"%s!%s!%d!%d!%s%s\"\r\n\r\n",
		s.submitter, s.domain, start, end, s.reportID, ext)
	enc := base64.StdEncoding.EncodeToString(report)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}
