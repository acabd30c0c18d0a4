package main

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/tlsrpt"
)

// The benchmark counts on Moat storing every generated report as a valid
// one without warnings (run.sh checks it on the stored reports); these
// tests say which report broke it when the decoder or the generator
// changes.

func TestReportsConform(t *testing.T) {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, size := range []string{sizeSmall, sizeLarge} {
		seen := map[string]bool{}
		for i := range 7 { // every organization and domain rotation
			s := newSpec(size, "test", i, day)
			js := reportJSON(s)
			rep, warns, err := tlsrpt.Decode(js)
			if err != nil {
				t.Fatalf("%s report %d: %v\n%s", size, i, err, js)
			}
			if len(warns) > 0 {
				t.Errorf("%s report %d: decoder warnings %v", size, i, warns)
			}
			if errs := tlsrpt.Validate(rep); len(errs) > 0 {
				t.Errorf("%s report %d: not RFC 8460: %v", size, i, errs)
			}
			if rep.ReportID != "test."+strconv.Itoa(i) || seen[rep.ReportID] {
				t.Errorf("%s report %d: report-id %q, want the distinct test.%d", size, i, rep.ReportID, i)
			}
			seen[rep.ReportID] = true
			if !rep.DateRange.Start.Equal(day) {
				t.Errorf("%s report %d: start %v, want %v", size, i, rep.DateRange.Start, day)
			}
			details := 0
			for _, p := range rep.Policies {
				details += len(p.FailureDetails)
			}
			want := 2
			if size == sizeLarge {
				want = largeDetails
			}
			if details != want {
				t.Errorf("%s report %d: %d failure details, want %d", size, i, details, want)
			}
		}
	}
}

func TestReportSizes(t *testing.T) {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		size     string
		min, max int // bytes of JSON, as bench/README.md states them
	}{
		{sizeSmall, 900, 1200},
		{sizeLarge, 20000, 24000},
	} {
		js := reportJSON(newSpec(c.size, "r1a2b3c4d5e6", 12345, day))
		if len(js) < c.min || len(js) > c.max {
			t.Errorf("%s report: %d bytes of JSON, want %d to %d", c.size, len(js), c.min, c.max)
		}
	}
}

func TestReportMailExtracts(t *testing.T) {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	const rcpt = "tlsrpt@reports.sts.moat.test"
	for _, gz := range []bool{true, false} {
		s := newSpec(sizeLarge, "mail", 3, day)
		js := reportJSON(s)
		att := js
		if gz {
			att = gzipped(js)
		}
		msg, err := tlsrpt.ExtractMessage(bytes.NewReader(reportMail(s, rcpt, att, gz)), 0)
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if msg.ReportDomain != s.domain || msg.ReportSubmitter != s.submitter {
			t.Errorf("gzip %v: TLS-Report-Domain %q, TLS-Report-Submitter %q; want %q, %q",
				gz, msg.ReportDomain, msg.ReportSubmitter, s.domain, s.submitter)
		}
		wantType := "application/tlsrpt+json"
		if gz {
			wantType = "application/tlsrpt+gzip"
		}
		if p := msg.Parts[0]; p.MediaType != wantType {
			t.Errorf("gzip %v: first part %q, want %q", gz, p.MediaType, wantType)
		}
		got, _, err := tlsrpt.Decompress(msg.Parts[0].Data, 0)
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if !bytes.Equal(got, js) {
			t.Errorf("gzip %v: the attachment is not the report", gz)
		}
	}
}
