//go:build linux

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", to read what the instances stored
	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/dnstest"
)

// The operator's side, as every instance is configured.
const (
	serviceZone = "sts.test"
	intakeHost  = "reports.sts.test"
	intakeRcpt  = "tlsrpt@reports.sts.test"
)

// configYAML is the configuration every instance of a cluster reads: every
// listener on 127.0.0.1 port 0, the ACME server (%[1]s, trusting %[2]s),
// the poll interval (%[3]s), the database (%[4]s, empty for SQLite in
// --data). Intake by HTTP on its own plain listener (as behind a TLS
// proxy) and by SMTP without STARTTLS, so that intake needs no
// certificate and the ACME orders counted are the policy hosts' only;
// the API on web.listen in plain HTTP (behind a "proxy" on 127.0.0.1).
const configYAML = `
zone: sts.test
policy_host: mta-sts.sts.test
database: %[4]q
log:
  level: debug
dns:
  listen: 127.0.0.1:0
  hosts:
    mta-sts.sts.test: [127.0.0.1]
    ns1.sts.test: [127.0.0.1]
https:
  listen: 127.0.0.1:0
  read_header_timeout: 1m
http:
  listen: 127.0.0.1:0
acme:
  ca: %[1]s
  ca_root: %[2]s
  email: ops@sts.test
intake:
  report_listen: 127.0.0.1:0
  report_tls: false
  smtp_listen: 127.0.0.1:0
  rate_per_ip: 100000
web:
  listen: 127.0.0.1:0
  trusted_proxies: [127.0.0.1/32]
metrics:
  listen: 127.0.0.1:0
store:
  poll_interval: %[3]s
`

// customers are the hosted domains the tests use; Pebble's resolver
// knows their policy hosts.
var customers = []string{"alpha.test", "bravo.test", "charlie.test", "delta.test", "echo.test", "foxtrot.test", "golf.test", "hotel.test"}

// cluster is what the instances of one test share: the database, the
// configuration file and the ACME server.
type cluster struct {
	t       *testing.T
	dbURL   string // "" for SQLite
	config  string // the configuration file
	acme    *acmeCA
	dnsAddr string // the resolver Pebble validates through
	logs    *logBuf
}

// newCluster prepares a cluster on the database at dbURL ("" for SQLite)
// with store.poll_interval poll. Pebble is started by validateOn.
func newCluster(t *testing.T, dbURL string, poll time.Duration) *cluster {
	t.Helper()
	if moatBin == "" {
		t.Fatal("the moat binary was not built")
	}
	c := &cluster{t: t, dbURL: dbURL, logs: newLogBuf(t, "pebble")}
	c.acme = newACME(t, c.logs)
	var zone strings.Builder
	for _, d := range customers {
		fmt.Fprintf(&zone, "mta-sts.%s. 60 IN A 127.0.0.1\n", d)
	}
	c.dnsAddr = dnstest.Start(t, zone.String(), nil).Addr
	c.config = filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(c.config, fmt.Appendf(nil, configYAML, c.acme.dirURL, c.acme.rootFile, poll, dbURL), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// validateOn starts Pebble's CA, validating challenges on inst's ports.
func (c *cluster) validateOn(inst *instance) {
	c.t.Helper()
	c.acme.start(c.t, c.logs, c.dnsAddr, port(inst.addr("http")), port(inst.addr("https")))
}

// moatEnv is the environment of the moat processes: ours without MOAT_
// variables, which would change their configuration.
func moatEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MOAT_") {
			env = append(env, kv)
		}
	}
	return env
}

// cli runs a moat command on the cluster's database and returns its
// standard output; it fails the test when the command fails.
func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	out, err := c.tryCLI(args...)
	if err != nil {
		c.t.Fatalf("moat %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *cluster) tryCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args, "--config", c.config)
	cmd := exec.CommandContext(ctx, moatBin, args...)
	cmd.Env = moatEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// addDomain hosts domain through the CLI and returns its policy id.
func (c *cluster) addDomain(domain, mode string) string {
	c.t.Helper()
	out := c.cli("domains", "add", domain, "--mx", "mx."+domain, "--mode", mode, "--json")
	return policyID(c.t, out)
}

// setMode changes domain's mode through the CLI and returns the new id.
func (c *cluster) setMode(domain, mode string) string {
	c.t.Helper()
	return policyID(c.t, c.cli("domains", "set", domain, "--mode", mode, "--json"))
}

func policyID(t *testing.T, out string) string {
	t.Helper()
	var v struct {
		PolicyID string `json:"policy_id"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.PolicyID == "" {
		t.Fatalf("no policy_id in %q: %v", out, err)
	}
	return v.PolicyID
}

// instance is one `moat serve` process.
type instance struct {
	name   string
	cmd    *exec.Cmd
	out    *logBuf
	addrs  map[string]string
	exited chan struct{} // closed when the process has exited
}

// start runs `moat serve` on the cluster's configuration and waits until
// it has written its listeners' addresses. It is stopped (SIGTERM) when the
// test ends, its output logged if the test failed.
func (c *cluster) start(name string) *instance {
	c.t.Helper()
	data := filepath.Join(c.t.TempDir(), "data")
	addrs := filepath.Join(c.t.TempDir(), "addrs.json")
	args := []string{"serve", "--config", c.config, "--data", data, "--addrs-file", addrs}
	return c.run(name, exec.Command(moatBin, args...), addrs)
}

// run starts cmd (which ends up as `moat serve ... --addrs-file addrsFile`)
// as instance name.
func (c *cluster) run(name string, cmd *exec.Cmd, addrsFile string) *instance {
	c.t.Helper()
	t := c.t
	inst := &instance{name: name, cmd: cmd, out: newLogBuf(t, "moat "+name), exited: make(chan struct{})}
	cmd.Env = moatEnv()
	cmd.Stdout, cmd.Stderr = inst.out, inst.out
	// The child dies with the test process, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("moat %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait() // its end is what exited says; killed ones fail
		close(inst.exited)
	}()
	t.Cleanup(func() {
		inst.stop(t)
		if strings.Contains(inst.out.String(), "WARNING: DATA RACE") {
			t.Errorf("moat %s reported a data race", inst.name)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(addrsFile)
		if err == nil {
			if err := json.Unmarshal(b, &inst.addrs); err != nil {
				t.Fatalf("moat %s: --addrs-file: %v\n%s", name, err, b)
			}
			return inst
		}
		select {
		case <-inst.exited:
			t.Fatalf("moat %s exited before it listened:\n%s", name, inst.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("moat %s wrote no --addrs-file within 30s:\n%s", name, inst.out.String())
		}
	}
}

// stop ends the process with SIGTERM (SIGKILL after 20 s).
func (inst *instance) stop(t *testing.T) {
	select {
	case <-inst.exited:
		return
	default:
	}
	_ = inst.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-inst.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("moat %s did not stop within 20s of SIGTERM", inst.name)
		_ = inst.cmd.Process.Kill()
		<-inst.exited
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (inst *instance) kill(t *testing.T) {
	t.Helper()
	if err := inst.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill moat %s: %v", inst.name, err)
	}
	<-inst.exited
}

// addr returns the address of the named listener.
func (inst *instance) addr(name string) string {
	a := inst.addrs[name]
	if a == "" {
		panic(fmt.Sprintf("moat %s has no %s listener: %v", inst.name, name, inst.addrs))
	}
	return a
}

func port(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		panic(fmt.Sprintf("listener address %q: %v", addr, err))
	}
	return int(ap.Port())
}

// txtID asks inst's DNS server for domain's MTA-STS record (RFC 8461
// §3.1, the name customers CNAME _mta-sts.<domain> to) and returns its id.
func (inst *instance) txtID(ctx context.Context, domain string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(domain+"._mta-sts."+serviceZone), dns.TypeTXT)
	cl := &dns.Client{Timeout: time.Second}
	in, _, err := cl.ExchangeContext(ctx, m, inst.addr("dns"))
	if err != nil {
		return "", fmt.Errorf("moat %s DNS: %w", inst.name, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		return "", fmt.Errorf("moat %s DNS: rcode %s", inst.name, dns.RcodeToString[in.Rcode])
	}
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			rec := strings.Join(txt.Txt, "")
			if _, id, ok := strings.Cut(rec, "id="); ok {
				return strings.TrimSuffix(strings.TrimSpace(id), ";"), nil
			}
		}
	}
	return "", fmt.Errorf("moat %s DNS: no STSv1 TXT record for %s", inst.name, domain)
}

// policy fetches domain's policy from inst's HTTPS listener over a fresh
// TLS connection, as a sending MTA does (RFC 8461 §3.3), trusting roots
// only, and returns the body and the certificate's serial number.
func (inst *instance) policy(ctx context.Context, roots *x509.CertPool, domain string) (string, *big.Int, error) {
	host := "mta-sts." + domain
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, inst.addr("https"))
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("moat %s HTTPS: %w", inst.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, fmt.Errorf("moat %s HTTPS: %w", inst.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("moat %s HTTPS: %s: %q", inst.name, resp.Status, body)
	}
	return string(body), resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// served checks that inst serves id in DNS and a policy with mode over
// HTTPS for domain.
func (inst *instance) served(ctx context.Context, roots *x509.CertPool, domain, id, mode string) error {
	got, err := inst.txtID(ctx, domain)
	if err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("moat %s DNS: id %s, want %s", inst.name, got, id)
	}
	body, _, err := inst.policy(ctx, roots, domain)
	if err != nil {
		return err
	}
	if !hasMode(body, mode) {
		return fmt.Errorf("moat %s HTTPS: policy %q, want mode %s", inst.name, body, mode)
	}
	return nil
}

// hasMode reports whether the policy body has the line "mode: <mode>"
// (RFC 8461 §3.2: lines end with CRLF or LF).
func hasMode(body, mode string) bool {
	for line := range strings.Lines(body) {
		if strings.TrimRight(line, "\r\n") == "mode: "+mode {
			return true
		}
	}
	return false
}

// waitFor calls check every interval until it returns nil and returns how
// long that took; it fails the test after limit with the last error.
func waitFor(t *testing.T, what string, limit, interval time.Duration, check func(context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		ccancel()
		if err == nil {
			return time.Since(start)
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v: %v", what, limit, last)
		case <-time.After(interval):
		}
	}
}

// report is a TLS-RPT report (RFC 8460 §4) from organization org with id,
// for policy domain; pad adds that many bytes of failure details.
func report(org, id, domain string, pad int) []byte {
	details := ""
	if pad > 0 {
		details = fmt.Sprintf(`,"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.%s","failed-session-count":1,"additional-information":%q}]`, domain, strings.Repeat("x", pad))
	}
	return fmt.Appendf(nil, `{"organization-name":%q,"date-range":{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"tlsrpt@sender.example","report-id":%q,"policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx.%[3]s","max_age: 86400"],"policy-domain":%[3]q,"mx-host":["mx.%[3]s"]},"summary":{"total-successful-session-count":10,"total-failure-session-count":1}%[4]s}]}`,
		org, id, domain, details)
}

// post sends a report to inst's report listener (POST /v1/tlsrpt, RFC 8460
// §5.4) and returns the status and the Retry-After header.
func (inst *instance) post(ctx context.Context, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+inst.addr("report")+"/v1/tlsrpt", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Host = intakeHost
	req.Header.Set("Content-Type", "application/tlsrpt+json")
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// plainClient talks to the plain HTTP listeners, without keep-alive so
// that a killed instance shows at once.
var plainClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get fetches path from inst's listener (metrics, web) and returns the
// status and the body.
func (inst *instance) get(ctx context.Context, listener, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.addr(listener)+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric returns the value of the sample named exactly (with labels) in
// inst's /metrics, or an error when absent.
func (inst *instance) metric(ctx context.Context, sample string) (float64, error) {
	code, body, err := inst.get(ctx, "metrics", "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("moat %s /metrics: %d", inst.name, code)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			return f, err
		}
	}
	return 0, fmt.Errorf("moat %s /metrics: no sample %s", inst.name, sample)
}

// mail sends a report by SMTP (RFC 8460 §5.3) to inst's intake, without
// STARTTLS, and returns the server's refusal, if any.
func (inst *instance) mail(body []byte, id string) error {
	c, err := smtp.Dial(inst.addr("smtp"))
	if err != nil {
		return err
	}
	defer c.Close()
	msg := "From: reports@sender.example\r\nTo: " + intakeRcpt + "\r\nSubject: Report Domain: x Submitter: sender.example Report-ID: <" + id + ">\r\n" +
		"TLS-Report-Domain: x\r\nTLS-Report-Submitter: sender.example\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nA TLS report.\r\n" +
		"--b\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=report.json\r\n\r\n" +
		base64Lines(body) + "--b--\r\n"
	if err := c.Mail("reports@sender.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt(intakeRcpt, nil); err != nil {
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

// base64Lines encodes b in lines of 76 characters (RFC 2045 §6.8), as
// report senders attach reports: an SMTP line is at most 1000 octets.
func base64Lines(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\r\n")
	return out.String()
}

// storedReports returns how many times each report id of organization org
// is stored in the PostgreSQL database at url.
func storedReports(t *testing.T, url, org string) map[string]int {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT report_id FROM tlsrpt_reports WHERE organization = $1`, org)
	if err != nil {
		t.Fatalf("read the stored reports: %v", err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// logsEnv, set to "1", logs every process's output even when its test
// passes.
const logsEnv = "MOAT_CLUSTER_LOGS"

// logBuf collects a process's output, bounded, and logs it when the test
// fails (or with MOAT_CLUSTER_LOGS=1).
type logBuf struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

const maxLog = 8 << 20

func newLogBuf(t *testing.T, who string) *logBuf {
	l := &logBuf{}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
		if t.Failed() || os.Getenv(logsEnv) == "1" {
			t.Logf("%s output:\n%s", who, l.buf.String())
		}
	})
	return l
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && l.buf.Len()+len(p) <= maxLog {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// smtpCode returns the SMTP reply code of err, or 0.
func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
