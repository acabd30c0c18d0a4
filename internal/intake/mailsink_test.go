package intake

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// mailWith builds a multipart/mixed message whose attachments are parts,
// each a media type and its bytes (sent base64).
func mailWith(parts ...any) []byte {
	var b bytes.Buffer
	b.WriteString("From: r@sender.example\r\nTo: tlsrpt@reports.example.net\r\nSubject: reports\r\n")
	b.WriteString("Message-ID: <m1@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n")
	b.WriteString("--B\r\nContent-Type: text/plain\r\n\r\nreports attached\r\n")
	for i := 0; i+1 < len(parts); i += 2 {
		fmt.Fprintf(&b, "--B\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n", parts[i], base64.StdEncoding.EncodeToString(parts[i+1].([]byte)))
	}
	b.WriteString("--B--\r\n")
	return b.Bytes()
}

func TestMailSink(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{MaxDecompressed: 64 << 10})
	sink := NewMailSink(ing, SourceIMAP)
	a := reportJSON("Org A", "a-1", "customer.example", 10, 1)
	b := reportJSON("Org B", "b-1", "customer.example", 5, 0)
	big := reportJSON("Org C", "c-1", "customer.example", 1, 0)
	big = append(big[:len(big)-1], []byte(`,"padding":"`+strings.Repeat("x", 70<<10)+`"}`)...)
	tests := []struct {
		name string
		mail []byte
		want MailOutcome
	}{
		{"two reports", mailWith("application/tlsrpt+json", a, "application/tlsrpt+gzip", gzipped(t, b)), MailOutcome{Stored: 2}},
		{"again: duplicates", mailWith("application/tlsrpt+json", a, "application/tlsrpt+json", b), MailOutcome{Duplicates: 2}},
		{"one report in two forms", mailWith("application/tlsrpt+gzip", gzipped(t, a), "application/tlsrpt+json", a), MailOutcome{Duplicates: 1}},
		{"a damaged report", mailWith("application/tlsrpt+json", []byte(`{"organization-name":"Org D","report-id":`)), MailOutcome{Stored: 1, Invalid: 1}},
		{"a valid report beside a damaged one", mailWith("application/tlsrpt+json", []byte(`{"policies":[`), "application/tlsrpt+json", reportJSON("Org E", "e-1", "customer.example", 1, 0)), MailOutcome{Stored: 1}},
		{"a DMARC aggregate report without records", mailWith("application/xml", []byte("<feedback></feedback>")), MailOutcome{Stored: 1}},
		{"no report", mailWith("application/pdf", []byte("%PDF-1.7")), MailOutcome{NotReport: "x"}},
		{"too large decompressed", mailWith("application/tlsrpt+gzip", gzipped(t, big)), MailOutcome{TooLarge: "x"}},
	}
	for _, tt := range tests {
		got, err := sink.StoreMail(t.Context(), tt.mail, "imap://r@imap.example/INBOX uid=1")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if (got.NotReport != "") != (tt.want.NotReport != "") || (got.TooLarge != "") != (tt.want.TooLarge != "") ||
			got.Stored != tt.want.Stored || got.Invalid != tt.want.Invalid || got.Duplicates != tt.want.Duplicates {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
		if (got.Unstorable() == "") != (tt.want.NotReport == "" && tt.want.TooLarge == "") {
			t.Errorf("%s: Unstorable %q", tt.name, got.Unstorable())
		}
	}
	reps, err := st.TLSRPTReports(t.Context(), store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 4 {
		t.Errorf("%d reports stored, want 4 (A, B, the damaged one, E)", len(reps))
	}
	for _, r := range reps {
		if r.Source != SourceIMAP || !strings.Contains(r.SourceDetail, "uid=1 message-id=m1@sender.example") {
			t.Errorf("report %d: source %q, detail %q", r.ID, r.Source, r.SourceDetail)
		}
	}

	// An ingester that stopped: a temporary error, nothing final.
	stopped := NewIngester(nil, st, nil, IngestOpts{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := stopped.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mail := mailWith("application/tlsrpt+json", reportJSON("Org F", "f-1", "customer.example", 1, 0))
	if _, err := NewMailSink(stopped, SourceIMAP).StoreMail(t.Context(), mail, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("stopped ingester: err %v, want ErrClosed", err)
	}
}
