package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// DMARC aggregate reports (RFC 7489 §7.2, appendix C; RFC 9990), for
// -kind dmarc: the shape large mailbox providers send, one policy domain,
// records of source IPs with their DKIM and SPF results.
const (
	dmarcSmallRecords = 1  // about 1.1 KB of XML
	dmarcLargeRecords = 32 // about 20 KB of XML
)

var dmarcOrgs = [...]struct{ name, email, domain string }{
	{"google.com", "noreply-dmarc-support@google.com", "google.com"},
	{"Yahoo", "dmarchelp@yahooinc.com", "yahoo.com"},
	{"Mail.Provider.example", "dmarc-reports@provider-b.example", "provider-b.example"},
}

// dmarcXML returns the aggregate report of s.
func dmarcXML(s reportSpec) []byte {
	n := dmarcSmallRecords
	if s.large {
		n = dmarcLargeRecords
	}
	var b bytes.Buffer
	writeDMARC(&b, s, n)
	return b.Bytes()
}

// writeDMARC writes the aggregate report of s with n records to b.
func writeDMARC(b io.Writer, s reportSpec, n int) {
	o := dmarcOrgs[s.org]
	begin, end := s.day.Unix(), s.day.Add(24*time.Hour-time.Second).Unix()
	fmt.Fprintf(b, `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>%s</org_name>
    <email>%s</email>
    <report_id>%s</report_id>
    <date_range>
      <begin>%d</begin>
      <end>%d</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>%s</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>none</p>
    <sp>none</sp>
    <pct>100</pct>
  </policy_published>
`, o.name, o.email, s.reportID, begin, end, s.domain)
	r := rand.New(rand.NewPCG(uint64(s.seq), 7489))
	for k := range n {
		ip := fmt.Sprintf("%s.%d", [...]string{"192.0.2", "198.51.100", "203.0.113"}[r.IntN(3)], r.IntN(256))
		if k%3 == 2 {
			ip = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16))
		}
		dkim, spf := "pass", "pass"
		switch k % 5 {
		case 1:
			dkim = "fail"
		case 3:
			dkim, spf = "fail", "fail"
		}
		fmt.Fprintf(b, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>%s</dkim>
        <spf>%s</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>%s</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>%s</domain>
        <result>%s</result>
        <selector>s%d</selector>
      </dkim>
      <spf>
        <domain>bounce.%s</domain>
        <result>%s</result>
      </spf>
    </auth_results>
  </record>
`, ip, 1+r.IntN(200), dkim, spf, s.domain, s.domain, dkim, r.IntN(4), s.domain, spf)
	}
	_, _ = io.WriteString(b, "</feedback>\n")
}

// writeDMARCFile writes one gzipped aggregate report of n records to
// path, as a stream (a million records are about 600 MB of XML).
func writeDMARCFile(path, runID string, n int) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	zw := gzip.NewWriter(bw)
	cw := bufio.NewWriterSize(zw, 256<<10)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	writeDMARC(cw, newSpec(sizeLarge, runID, 0, day), n)
	if err := cw.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// dmarcMail is the report as RFC 7489 §7.2.1.1 sends it: the gzipped XML
// attached (application/gzip, base64) under the subject the RFC gives,
// with a short text part, as large providers send them. It is not
// DKIM-signed (see bench/README.md).
func dmarcMail(s reportSpec, rcpt string, report []byte, gz bool) []byte {
	o := dmarcOrgs[s.org]
	begin, end := s.day.Unix(), s.day.Add(24*time.Hour-time.Second).Unix()
	mediaType, ext := "text/xml", ".xml"
	if gz {
		mediaType, ext = "application/gzip", ".xml.gz"
	}
	name := fmt.Sprintf("%s!%s!%d!%d%s", o.domain, s.domain, begin, end, ext)
	boundary := "----=_dmarc_" + strconv.Itoa(s.seq)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: DMARC Reports <%s>\r\n", o.email)
	fmt.Fprintf(&b, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&b, "Date: %s\r\n", s.day.Add(26*time.Hour).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", s.domain, o.domain, s.reportID)
	fmt.Fprintf(&b, "Message-ID: <%s.dmarc@%s>\r\nMIME-Version: 1.0\r\n", s.reportID, o.domain)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(&b, "This is an aggregate report from %s.\r\n\r\n--%s\r\n", o.domain, boundary)
	fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n", mediaType, name)
	fmt.Fprintf(&b, "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n", name)
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
