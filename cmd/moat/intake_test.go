package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/moatmail/moat/internal/testlog"
)

// corpusDirs are the TLS-RPT samples of ../shared/corpora.
var corpusDirs = []string{
	"parsedmarc/samples/smtp_tls",
	"mox/testdata/tlsreports",
	"stalwart-mail-auth/resources/tlsrpt",
	"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports",
}

const corpora = "../../../shared/corpora"

// reportSums adds up, from the JSON of distinct reports (by organization
// and report id), the sessions the reports state in their summaries.
func reportSums(t *testing.T, docs [][]byte) (reports int, successful, failed int64) {
	t.Helper()
	seen := map[string]bool{}
	for _, js := range docs {
		var doc struct {
			Org      string `json:"organization-name"`
			ID       string `json:"report-id"`
			Policies []struct {
				Summary struct {
					S json.Number `json:"total-successful-session-count"`
					F json.Number `json:"total-failure-session-count"`
				} `json:"summary"`
			} `json:"policies"`
		}
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatalf("corpus report: %v", err)
		}
		if seen[doc.Org+"\x00"+doc.ID] {
			continue
		}
		seen[doc.Org+"\x00"+doc.ID] = true
		reports++
		for _, p := range doc.Policies {
			s, _ := p.Summary.S.Int64()
			f, _ := p.Summary.F.Int64()
			successful += s
			failed += f
		}
	}
	return reports, successful, failed
}

// corpusJSON returns the .json reports of the corpora, or skips.
func corpusJSON(t *testing.T) map[string][]byte {
	t.Helper()
	if _, err := os.Stat(corpora); err != nil {
		t.Skipf("corpora not available at %s: %v", corpora, err)
	}
	out := map[string][]byte{}
	for _, d := range corpusDirs {
		files, _ := filepath.Glob(filepath.Join(corpora, d, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	if len(out) == 0 {
		t.Fatal("no .json reports found in the corpora")
	}
	return out
}

type summaryJSON struct {
	TotalSuccessful int64 `json:"total_successful_sessions"`
	TotalFailed     int64 `json:"total_failed_sessions"`
	Rows            []struct {
		ResultType string `json:"result_type"`
		Failed     int64  `json:"failed_sessions"`
	} `json:"rows"`
}

func TestImportAndReportsCLI(t *testing.T) {
	t.Parallel()
	js := corpusJSON(t)
	data := t.TempDir()
	var paths []string
	for _, d := range corpusDirs {
		paths = append(paths, filepath.Join(corpora, d))
	}
	out := mustMoat(t, append([]string{"import", "--json", "--data", data}, paths...)...)
	var imp importJSON
	if err := json.Unmarshal([]byte(out), &imp); err != nil {
		t.Fatalf("import --json: %v\n%s", err, out)
	}
	if imp.Invalid != 0 || len(imp.Errors) != 0 || len(imp.NotReports) != 0 || imp.Reports == 0 {
		t.Errorf("import: %+v", imp)
	}
	// The .json files hold every distinct report of the corpora but the
	// ones that only come as mail; the mail-only ones are counted from the
	// store below, so compare the totals over what the JSON files hold by
	// importing them alone into a second directory.
	data2 := t.TempDir()
	var docs [][]byte
	var files []string
	for f, b := range js {
		docs = append(docs, b)
		files = append(files, f)
	}
	mustMoat(t, append([]string{"import", "--data", data2}, files...)...)
	n, succ, fail := reportSums(t, docs)
	out = mustMoat(t, "reports", "tlsrpt", "summary", "--since", "", "--data", data2, "--json")
	var sum summaryJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.TotalSuccessful != succ || sum.TotalFailed != fail {
		t.Errorf("summary of %d reports: %d successful, %d failed; the reports sum to %d and %d", n, sum.TotalSuccessful, sum.TotalFailed, succ, fail)
	}

	// List, show and show --raw over the first import.
	out = mustMoat(t, "reports", "tlsrpt", "list", "--data", data, "--json")
	var list struct {
		Total   int64 `json:"total"`
		Reports []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if list.Total != int64(imp.Reports) || len(list.Reports) != imp.Reports {
		t.Fatalf("list: %d reports (total %d), import stored %d", len(list.Reports), list.Total, imp.Reports)
	}
	id := fmt.Sprint(list.Reports[0].ID)
	if out := mustMoat(t, "reports", "tlsrpt", "show", id, "--data", data); !strings.Contains(out, "normalized report:") || !strings.Contains(out, "organization:") {
		t.Errorf("show:\n%s", out)
	}
	raw := mustMoat(t, "reports", "tlsrpt", "show", id, "--raw", "--data", data)
	if !json.Valid([]byte(raw)) && !strings.HasPrefix(raw, "\x1f\x8b") && !strings.HasPrefix(raw, "PK") {
		t.Errorf("show --raw is neither JSON nor a compressed report: %.60q", raw)
	}
	for _, by := range []string{"result", "source", "mx", "day", "domain"} {
		if out := mustMoat(t, "reports", "tlsrpt", "summary", "--since", "", "--by", by, "--data", data); !strings.Contains(out, "TLS sessions reported for all domains") {
			t.Errorf("summary --by %s:\n%s", by, out)
		}
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"reports", "tlsrpt", "summary", "--by", "color"}, []string{"--by", "color"}},
		{[]string{"reports", "tlsrpt", "summary", "--since", "yesterday"}, []string{"--since", "yesterday"}},
		{[]string{"reports", "tlsrpt", "show", "abc"}, []string{"report id", "abc"}},
		{[]string{"reports", "tlsrpt", "show", "99999"}, []string{"no TLS report with id 99999"}},
		{[]string{"reports", "tlsrpt", "list", "--status", "bad"}, []string{"--status", "bad"}},
		{[]string{"import", filepath.Join(t.TempDir(), "missing.json")}, []string{"could not be read"}},
	} {
		code, _, errs := moat(t, append(tc.args, "--data", data)...)
		if code != exitError {
			t.Errorf("moat %v: exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("moat %v: stderr %q lacks %q", tc.args, errs, w)
			}
		}
	}
}

// devServe runs `moat serve --dev` in-process on free ports (port 0 for
// every listener) and returns, once it is up, the addresses its listeners
// got (from --addrs-file) and the data directory.
func devServe(t *testing.T, extra ...string) (addrs map[string]string, data string) {
	t.Helper()
	data = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	done := make(chan int)
	addrsFile := filepath.Join(t.TempDir(), "addrs.json")
	args := append([]string{"serve", "--dev", "--data", data, "--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--smtp-listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--addrs-file", addrsFile}, extra...)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d: %s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return waitAddrs(t, addrsFile, func() string { return stdout.String() + stderr.String() }), data
}

// waitAddrs waits for `moat serve --addrs-file file` to write the
// addresses of its listeners, and returns them.
func waitAddrs(t *testing.T, file string, output func() string) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var addrs map[string]string
		if err := json.Unmarshal(b, &addrs); err != nil {
			t.Fatalf("--addrs-file: %v\n%s", err, b)
		}
		return addrs
	}
	t.Fatalf("serve wrote no --addrs-file within 20s:\n%s", output())
	return nil
}

func devRoots(t *testing.T, data string) *x509.CertPool {
	pem, err := os.ReadFile(filepath.Join(data, "dev-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return roots
}

// reportClient posts to addr whatever the URL's host, trusting roots.
func reportClient(addr string, roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestServeIntake sends the corpus reports to `moat serve --dev` by HTTPS
// and by SMTP with STARTTLS, as senders do, and reads them back with the
// CLI.
func TestServeIntake(t *testing.T) {
	t.Parallel()
	js := corpusJSON(t)
	addrs, data := devServe(t)
	smtpAddr := addrs["smtp"]
	roots := devRoots(t, data)
	c := reportClient(addrs["https"], roots)
	// --dev stores the demo's reports first: count what is added.
	summary := func() summaryJSON {
		var sum summaryJSON
		out := mustMoat(t, "reports", "tlsrpt", "summary", "--since", "", "--data", data, "--json")
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	before := summary()
	var docs [][]byte
	i := 0
	for _, b := range js {
		docs = append(docs, b)
		if i%2 == 0 {
			// Half by HTTPS POST.
			resp, err := c.Post("https://reports.sts.moat.test/v1/tlsrpt", "application/tlsrpt+json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
		} else {
			// Half by mail, over STARTTLS.
			sendReportMail(t, smtpAddr, roots, b)
		}
		i++
	}
	n, succ, fail := reportSums(t, docs)
	// The mail was answered once spooled (intake.smtp_spool, the
	// default): its reports are stored once the intake is quiet.
	after := summary()
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, gotFail := after.TotalSuccessful-before.TotalSuccessful, after.TotalFailed-before.TotalFailed
		if got == succ && gotFail == fail {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("summary of %d reports sent live, 30 s after: %d successful, %d failed; the reports sum to %d and %d", n, got, gotFail, succ, fail)
		}
		time.Sleep(100 * time.Millisecond)
		after = summary()
	}

	// A mail that is not a report is refused with a reason; nothing is
	// stored for it.
	err := sendMail(smtpAddr, roots, "tlsrpt@reports.sts.moat.test", "Subject: hello\r\n\r\njust saying hi\r\n")
	if err == nil || !strings.Contains(err.Error(), "no TLS report") {
		t.Errorf("a mail that is not a report: %v", err)
	}
	// Relaying is refused at RCPT.
	if err := sendMail(smtpAddr, roots, "someone@example.org", "Subject: x\r\n\r\nx\r\n"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("relay attempt: %v", err)
	}
}

func sendReportMail(t *testing.T, addr string, roots *x509.CertPool, report []byte) {
	t.Helper()
	msg := "From: reports@sender.example\r\nTo: tlsrpt@reports.sts.moat.test\r\nSubject: Report Domain: x Submitter: sender.example Report-ID: <1>\r\n" +
		"TLS-Report-Domain: x\r\nTLS-Report-Submitter: sender.example\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nA TLS report.\r\n" +
		"--b\r\nContent-Type: application/tlsrpt+json\r\nContent-Disposition: attachment; filename=report.json\r\n\r\n" +
		string(report) + "\r\n--b--\r\n"
	if err := sendMail(addr, roots, "tlsrpt@reports.sts.moat.test", msg); err != nil {
		t.Fatalf("SMTP: %v", err)
	}
}

func sendMail(addr string, roots *x509.CertPool, to, msg string) error {
	c, err := smtp.DialStartTLS(addr, &tls.Config{ServerName: "reports.sts.moat.test", RootCAs: roots})
	if err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	defer c.Close()
	if err := c.Mail("reports@sender.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// childEnv makes the test binary run `moat serve` instead of the tests
// (TestMain), for TestServeSIGKILL.
const childEnv = "MOAT_TEST_SERVE_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestServeSIGKILL kills `moat serve` with SIGKILL in the middle of a
// stream of reports and checks that every report it acknowledged (HTTP
// 200) is stored.
func TestServeSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: the SIGKILL test runs moat serve as a child process and kills it; make test runs it")
	}
	data := t.TempDir()
	addrsFile := filepath.Join(t.TempDir(), "addrs.json")
	args := []string{"serve", "--dev", "--data", data, "--dns-listen", "", "--https-listen", "127.0.0.1:0",
		"--http-listen", "", "--smtp-listen", "", "--web-listen", "", "--metrics-listen", "", "--addrs-file", addrsFile}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The per-IP rate limit would otherwise answer 429 to this one client.
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"), "MOAT_INTAKE_RATE_PER_IP=100000")
	var childOut testlog.Buffer
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}() // runs after the deferred unlock below: killed is only read then
	addrs := waitAddrs(t, addrsFile, childOut.String)

	c := reportClient(addrs["https"], devRoots(t, data))
	var (
		mu    sync.Mutex
		acked []string
		sent  atomic.Int64
	)
	const killAfter, maxReports = 150, 2000
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				n := sent.Add(1)
				if n > maxReports {
					return
				}
				id := fmt.Sprintf("kill-test-%d", n)
				body := fmt.Sprintf(`{"organization-name":"Killer","date-range":{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"k@example.org","report-id":%q,"policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx.example.com","max_age: 86400"],"policy-domain":"example.com","mx-host":["mx.example.com"]},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}`, id)
				resp, err := c.Post("https://reports.sts.moat.test/v1/tlsrpt", "application/tlsrpt+json", strings.NewReader(body))
				if err != nil {
					continue // the server is gone: not acknowledged
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked = append(acked, id)
					if len(acked) == killAfter {
						once.Do(func() {
							cmd.Process.Signal(syscall.SIGKILL)
							killed = true
						})
					}
					mu.Unlock()
				}
			}
		})
	}
	// Stop the senders shortly after the kill.
	go func() {
		for time.Now().Before(deadline) {
			mu.Lock()
			k := killed
			mu.Unlock()
			if k {
				time.Sleep(200 * time.Millisecond)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
	}()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !killed {
		t.Fatalf("only %d reports acknowledged before the deadline; the kill never happened", len(acked))
	}
	cmd.Wait()
	out := mustMoat(t, "reports", "tlsrpt", "list", "--limit", "10000", "--data", data, "--json")
	var list struct {
		Reports []struct {
			ReportID string `json:"report_id"`
		} `json:"reports"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, r := range list.Reports {
		stored[r.ReportID] = true
	}
	lost := 0
	for _, id := range acked {
		if !stored[id] {
			lost++
		}
	}
	t.Logf("acknowledged %d, stored %d (attempted %d) when moat serve was killed", len(acked), len(stored), min(sent.Load(), maxReports))
	if lost > 0 {
		t.Fatalf("%d acknowledged reports lost after SIGKILL", lost)
	}
}

// TestServeSpool: `moat serve` with intake.smtp_spool (the default; set
// here with a shorter delay) answers report mail
// once it is spooled, stores the reports afterwards (the CLI sees them),
// and still refuses mail without a report.
func TestServeSpool(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(cfg, []byte("intake:\n  smtp_spool: true\n  spool_max_delay: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, data := devServe(t, "--config", cfg)
	roots := devRoots(t, data)
	count := func() int64 {
		var l struct {
			Total int64 `json:"total"`
		}
		out := mustMoat(t, "reports", "tlsrpt", "list", "--data", data, "--json", "--limit", "1", "--since", "")
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return l.Total
	}
	before := count()
	const n = 5
	for i := range n {
		sendReportMail(t, addrs["smtp"], roots, []byte(fmt.Sprintf(`{"organization-name":"Sender","date-range":`+
			`{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"tlsrpt@sender.example",`+
			`"report-id":"spool-%d","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing",`+
			`"mx: mx1.a.example","max_age: 86400"],"policy-domain":"a.example","mx-host":["mx1.a.example"]},`+
			`"summary":{"total-successful-session-count":%d,"total-failure-session-count":0}}]}`, i, 10+i)))
	}
	deadline := time.Now().Add(30 * time.Second)
	for count()-before != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d reports stored 30 s after %d were spooled", count()-before, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	err := sendMail(addrs["smtp"], roots, "tlsrpt@reports.sts.moat.test", "Subject: hello\r\n\r\njust saying hi\r\n")
	if err == nil || !strings.Contains(err.Error(), "no TLS report") {
		t.Errorf("a mail that is not a report: %v", err)
	}
}
