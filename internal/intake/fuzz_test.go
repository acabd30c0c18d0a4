package intake

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// nullStore accepts every batch without keeping it, so that fuzzing runs
// fast and in bounded memory.
type nullStore struct {
	fakeStore
	n atomic.Int64
}

func (s *nullStore) InsertTLSRPT(_ context.Context, reps []*store.TLSRPTReport) ([]store.InsertResult, error) {
	res := make([]store.InsertResult, len(reps))
	for i := range res {
		res[i].ID = s.n.Add(1)
	}
	return res, nil
}

// rfcExample is the report of RFC 8460 §4.4 (shortened policy strings).
const rfcExample = `{"organization-name":"Company-X","date-range":{"start-datetime":"2016-04-01T00:00:00Z",` +
	`"end-datetime":"2016-04-01T23:59:59Z"},"contact-info":"sts-reporting@company-x.example",` +
	`"report-id":"5065427c-23d3-47ca-b6e0-946ea0e8c4be","policies":[{"policy":{"policy-type":"sts",` +
	`"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example","max_age: 86400"],` +
	`"policy-domain":"company-y.example","mx-host":"*.mail.company-y.example"},"summary":{` +
	`"total-successful-session-count":5326,"total-failure-session-count":303},"failure-details":[{` +
	`"result-type":"certificate-expired","sending-mta-ip":"2001:db8:abcd:0012::1","receiving-mx-hostname":` +
	`"mx1.mail.company-y.example","failed-session-count":100},{"result-type":"starttls-not-supported",` +
	`"sending-mta-ip":"2001:db8:abcd:0013::1","receiving-mx-hostname":"mx2.mail.company-y.example",` +
	`"receiving-ip":"203.0.113.56","failed-session-count":200,"additional-information":` +
	`"https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"},{"result-type":` +
	`"validation-failure","sending-mta-ip":"198.51.100.62","receiving-ip":"203.0.113.58",` +
	`"receiving-mx-hostname":"mx-backup.mail.company-y.example","failed-session-count":3,` +
	`"failure-reason-code":"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}]}]}`

func FuzzHTTPHandler(f *testing.F) {
	f.Add("application/tlsrpt+json", []byte(rfcExample))
	f.Add("application/tlsrpt+gzip", gzipped(f, []byte(rfcExample)))
	f.Add("application/octet-stream", zipped(f, "report.json", []byte(rfcExample)))
	f.Add("text/plain; charset=\"utf-8\"", []byte(`{"organization-name":null,"policies":{}}`))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\n\r\n{}\r\n--x--"))
	f.Add("", []byte{})
	f.Add("application/tlsrpt+gzip", []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add(";;;=", []byte("\xef\xbb\xbf{\"policies\":[{\"summary\":{\"total-failure-session-count\":-1}}]}"))
	st := &nullStore{}
	ing := startIngester(f, st, nil, IngestOpts{MaxDecompressed: 1 << 20})
	h := NewHTTPHandler(nil, ing, HTTPOpts{MaxBody: 64 << 10, RatePerIP: -1})
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest("POST", ReportPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("content type %q, %d bytes: answered %d %q", ctype, len(body), w.Code, w.Body.String())
		}
		if w.Code != 200 && !strings.Contains(w.Body.String(), " ") {
			t.Errorf("answer %d without a reason: %q", w.Code, w.Body.String())
		}
	})
}

func FuzzSMTPSession(f *testing.F) {
	mail := string(reportMail("application/tlsrpt+gzip", gzipped(f, []byte(rfcExample))))
	f.Add("EHLO client.example\r\nMAIL FROM:<r@sender.example>\r\nRCPT TO:<" + testRcpt + ">\r\nDATA\r\n" + mail + ".\r\nQUIT\r\n")
	f.Add("HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<a@elsewhere.example>\r\nRCPT TO:<" + testRcpt + ">\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
	f.Add("EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999\r\nRSET\r\nNOOP\r\nVRFY root\r\nQUIT\r\n")
	f.Add("EHLO x\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<" + testRcpt + ">\r\nBDAT 5 LAST\r\nhello")
	f.Add("EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello")
	f.Add("AUTH PLAIN AGFAYg==\r\nDATA\r\n.\r\n\r\n\x00\xff")
	f.Add("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<" + testRcpt + "> NOTIFY=SUCCESS ORCPT=rfc822;x\r\nDATA\r\n..\r\n.\r\n")
	ing := startIngester(f, &nullStore{}, nil, IngestOpts{MaxDecompressed: 1 << 20})
	serverTLS, _ := testTLS(f)
	srv := NewSMTPServer(nil, ing, SMTPOpts{Recipients: []string{testRcpt}, TLSConfig: serverTLS,
		Resolver: mapResolver{}, MaxMessageBytes: 1 << 20, ReadTimeout: 5 * time.Second, MaxConnectionsPerIP: 1000})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Serve: %v", err)
		}
	})
	addr := l.Addr().String()
	f.Fuzz(func(t *testing.T, session string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// Write the session, then half-close: the server sees the end of
		// input wherever it stands.
		go func() {
			_, _ = conn.Write([]byte(session))
			_ = conn.(*net.TCPConn).CloseWrite()
		}()
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("server did not finish the session within the deadline")
				}
				return // EOF or reset: the session is over
			}
			if len(line) < 4 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-') {
				// After STARTTLS the server speaks TLS.
				if strings.Contains(session, "STARTTLS") {
					return
				}
				t.Fatalf("malformed reply line %q", line)
			}
		}
	})
}

// InsertDMARC reads every aggregate report's records, as the store does,
// and keeps nothing.
func (s *nullStore) InsertDMARC(_ context.Context, b store.DMARCBatch) (store.DMARCBatchResult, error) {
	var res store.DMARCBatchResult
	for _, r := range b.Reports {
		d := store.DMARCResult{ID: s.n.Add(1), Status: r.Status, Error: r.Error}
		if r.Rows != nil {
			end, err := r.Rows(func(row *store.DMARCRow) error {
				if row.Messages < 0 {
					return errors.New("negative count")
				}
				return nil
			})
			if err != nil {
				return store.DMARCBatchResult{}, err
			}
			d.Records, d.Messages = end.Records, end.Messages
			if end.Error != "" {
				d.Status, d.Error = store.ReportInvalid, end.Error
			}
		}
		res.Reports = append(res.Reports, d)
	}
	for range b.Failures {
		res.Failures = append(res.Failures, store.InsertResult{ID: s.n.Add(1)})
	}
	return res, nil
}

// FuzzSubmitFile: an uploaded file of any bytes (report files, mail,
// mbox) is stored, or refused as no report or too large; nothing panics
// and every stored report says its kind.
func FuzzSubmitFile(f *testing.F) {
	agg := dmarcXML("Receiver", "f-1", "a.example", 2, 3)
	f.Add(agg)
	f.Add(gzipped(f, agg))
	f.Add(zipped(f, "r.xml", agg))
	f.Add(agg[:len(agg)/2])
	f.Add(dmarcMail("application/gzip", "r.xml.gz", gzipped(f, agg)))
	f.Add(failureMail(1))
	f.Add([]byte("From a@b Mon Nov  2 10:00:00 2026\n" + string(lf(failureMail(2))) + "\nFrom c@d Mon Nov  2 10:00:01 2026\nSubject: x\n\nhi\n"))
	f.Add([]byte(rfcExample))
	f.Add([]byte(`<?xml version="1.0"?><feedback><record><row><count>-1</count></row></record>`))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff})
	st := &nullStore{}
	ing := startIngester(f, st, nil, IngestOpts{MaxDecompressed: 1 << 20, MaxDMARCXML: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ing.SubmitFile(context.Background(), Submission{Source: SourceAPI, SourceDetail: "fuzz", Data: data},
			FileOpts{MaxMessageBytes: 1 << 20})
		switch {
		case errors.Is(err, ErrNotReport), errors.Is(err, ErrTooLarge):
			if !strings.Contains(err.Error(), ": ") {
				t.Errorf("refusal without a reason: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("%d bytes: %v", len(data), err)
		}
		stored := 0
		for _, it := range items {
			if it.Result == nil {
				if it.NotReport == "" {
					t.Errorf("an item with neither a report nor a reason: %+v", it)
				}
				continue
			}
			stored++
			if it.Result.Kind == "" || it.Result.ID == 0 || it.Result.Status == "" {
				t.Errorf("stored report %+v", it.Result)
			}
		}
		if stored == 0 {
			t.Errorf("no report stored and no error: %+v", items)
		}
	})
}
