package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
)

// devConfig is `moat serve --dev` with every listener on 127.0.0.1:0 and
// the report listener too.
func devConfig(t *testing.T, extra map[string]string) *config.Config {
	t.Helper()
	flags := map[string]string{
		"dev": "true", "data": t.TempDir(), "zone": "sts.test",
		"dns-listen": "127.0.0.1:0", "https-listen": "127.0.0.1:0", "http-listen": "127.0.0.1:0",
		"smtp-listen": "127.0.0.1:0", "report-listen": "127.0.0.1:0", "metrics-listen": "",
	}
	for k, v := range extra {
		flags[k] = v
	}
	c, err := config.Load(config.Source{Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	return c
}

func openStore(t *testing.T, c *config.Config) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), slog.New(slog.DiscardHandler), store.Options{DataDir: c.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// start starts the assembly and shuts it down when the test ends, checking
// that the shutdown is clean.
func start(t *testing.T, c *config.Config, st store.Store, opts server.Options) *server.Server {
	t.Helper()
	srv, err := server.New(slog.New(slog.DiscardHandler), c, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

func devRoots(t *testing.T, c *config.Config) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.DataDir, "dev-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b)
	return roots
}

const report = `{"organization-name":"Sender","date-range":{"start-datetime":"2026-11-01T00:00:00Z","end-datetime":"2026-11-01T23:59:59Z"},"contact-info":"tls@sender.example","report-id":"r1","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.test"},"summary":{"total-successful-session-count":5,"total-failure-session-count":0}}]}`

// TestStartEveryListenerOnPortZero starts the whole system with every
// listener on port 0 and talks to each bound address with a real client.
func TestStartEveryListenerOnPortZero(t *testing.T) {
	t.Parallel()
	c := devConfig(t, nil)
	st := openStore(t, c)
	o := &store.Org{Name: "test"}
	if err := st.CreateOrg(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := hosting.New(st, server.HostingSettings(c), nil).Add(t.Context(), "example.test", hosting.Spec{Org: o.ID, MX: []string{"mx.example.test"}}); err != nil {
		t.Fatal(err)
	}
	srv := start(t, c, st, server.Options{})
	addrs := srv.Addrs()
	for _, name := range []string{server.ListenerDNS, server.ListenerHTTPS, server.ListenerHTTP, server.ListenerReport, server.ListenerSMTP} {
		a := addrs[name]
		if _, port, err := net.SplitHostPort(a); err != nil || port == "0" {
			t.Fatalf("listener %s bound to %q", name, a)
		}
	}
	roots := devRoots(t, c)

	// DNS, over UDP and TCP on the same port.
	for _, proto := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("example.test._mta-sts.sts.test.", dns.TypeTXT)
		in, _, err := (&dns.Client{Net: proto}).Exchange(m, addrs[server.ListenerDNS])
		if err != nil {
			t.Fatalf("dns %s: %v", proto, err)
		}
		if len(in.Answer) != 1 || !strings.HasPrefix(in.Answer[0].(*dns.TXT).Txt[0], "v=STSv1; id=") {
			t.Errorf("dns %s answer: %v", proto, in)
		}
	}
	// The authorization of DMARC reports about a hosted domain to the
	// default DMARC address, dmarc@reports.sts.test (RFC 7489 §7.1).
	m := new(dns.Msg)
	m.SetQuestion("example.test._report._dmarc.reports.sts.test.", dns.TypeTXT)
	if in, err := dns.Exchange(m, addrs[server.ListenerDNS]); err != nil || len(in.Answer) != 1 || in.Answer[0].(*dns.TXT).Txt[0] != "v=DMARC1" {
		t.Errorf("dns: DMARC report authorization: %v, %v", in, err)
	}

	// The policy over HTTPS, and the intake host on the same listener.
	https := client(addrs[server.ListenerHTTPS], &tls.Config{RootCAs: roots})
	body := get(t, https, "https://mta-sts.example.test/.well-known/mta-sts.txt", 200)
	if !strings.Contains(body, "mx: mx.example.test\r\n") {
		t.Errorf("policy: %q", body)
	}
	// The certificate of the policy host is recorded for the dashboard.
	evs, err := st.Scoped(store.Scope{Operator: true}).DomainEvents(t.Context(), "example.test", time.Time{}, time.Now().Add(time.Hour))
	if err != nil || len(evs) != 1 || evs[0].Kind != "certificate" || !strings.Contains(evs[0].Detail, "issued by") {
		t.Errorf("certificate events %+v, %v", evs, err)
	}
	post(t, https, "https://reports.sts.test/v1/tlsrpt", report, 200)

	// The HTTP listener answers challenges only.
	get(t, client(addrs[server.ListenerHTTP], nil), "http://mta-sts.example.test/", 404)

	// SMTP, with STARTTLS and the intake host's certificate.
	sc, err := smtp.DialStartTLS(addrs[server.ListenerSMTP], &tls.Config{ServerName: "reports.sts.test", RootCAs: roots})
	if err != nil {
		t.Fatalf("smtp: %v", err)
	}
	if err := sc.Quit(); err != nil {
		t.Errorf("smtp QUIT: %v", err)
	}
}

// TestReportListenerWithoutSNI: a TLS client that sends no server name to
// the report listener gets the intake host's certificate, as SMTP STARTTLS
// clients do, and its report is stored.
func TestReportListenerWithoutSNI(t *testing.T) {
	t.Parallel()
	c := devConfig(t, nil)
	st := openStore(t, c)
	srv := start(t, c, st, server.Options{})
	roots := devRoots(t, c)
	var got []string
	conf := &tls.Config{
		// No ServerName: Go sends no SNI for an IP address; the certificate
		// is verified by hand against the intake host below.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf := cs.PeerCertificates[0]
			got = leaf.DNSNames
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: c.Intake.Host, Roots: roots, Intermediates: inter})
			return err
		},
	}
	if cs := func() tls.ConnectionState {
		conn, err := tls.Dial("tcp", srv.Addr(server.ListenerReport), conf)
		if err != nil {
			t.Fatalf("handshake without SNI: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState()
	}(); cs.ServerName != "" {
		t.Fatalf("the client sent SNI %q", cs.ServerName)
	}
	if !slices.Contains(got, "reports.sts.test") {
		t.Errorf("certificate names %v, want the intake host", got)
	}
	// The same through HTTP: a report posted to the bare address.
	post(t, client(srv.Addr(server.ListenerReport), conf), "https://"+srv.Addr(server.ListenerReport)+"/v1/tlsrpt", report, 200)
	// A client asking for another name gets the intake host's certificate
	// too: this listener serves nothing else.
	named := conf.Clone()
	named.ServerName = "mta-sts.other.test"
	post(t, client(srv.Addr(server.ListenerReport), named), "https://mta-sts.other.test/v1/tlsrpt", strings.Replace(report, `"r1"`, `"r2"`, 1), 200)
	reps, err := st.TLSRPTReports(t.Context(), store.ReportFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Errorf("%d reports stored, want 2", len(reps))
	}
}

// recorder is a Part that binds a listener and records the order of starts
// and stops.
type recorder struct {
	name string
	log  *[]string
	mu   *sync.Mutex
	fail error
	l    net.Listener
	host string
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Start(ctx context.Context, env *server.Env) error {
	r.mu.Lock()
	*r.log = append(*r.log, "start "+r.name)
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.l = l
	env.Bound(r.name, l.Addr())
	if env.Snapshots.Load() == nil || env.Ingester == nil {
		return errors.New("started before the snapshot and the ingester")
	}
	return nil
}

func (r *recorder) Stop(context.Context) error {
	r.mu.Lock()
	*r.log = append(*r.log, "stop "+r.name)
	r.mu.Unlock()
	return r.l.Close()
}

func (r *recorder) HTTPSHosts() map[string]http.Handler {
	if r.host == "" {
		return nil
	}
	return map[string]http.Handler{r.host: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from "+r.name)
	})}
}

// TestParts: registered parts start after the built-in ones, in order,
// report their addresses, serve their HTTPS hosts on the HTTPS listener,
// and stop in the reverse order.
func TestParts(t *testing.T) {
	t.Parallel()
	c := devConfig(t, map[string]string{"report-listen": "", "smtp-listen": "", "dns-listen": "", "http-listen": ""})
	st := openStore(t, c)
	var (
		log []string
		mu  sync.Mutex
	)
	a := &recorder{name: "web", log: &log, mu: &mu, host: "web.sts.test"}
	b := &recorder{name: "poller", log: &log, mu: &mu}
	srv, err := server.New(slog.New(slog.DiscardHandler), c, st, server.Options{Parts: parts(a, b)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if srv.Addr("web") == "" || srv.Addr("poller") == "" || srv.Addr(server.ListenerDNS) != "" {
		t.Errorf("addresses %v", srv.Addrs())
	}
	// The part's host is served on the HTTPS listener with a certificate.
	https := client(srv.Addr(server.ListenerHTTPS), &tls.Config{RootCAs: devRoots(t, c)})
	if got := get(t, https, "https://web.sts.test/", 200); got != "hello from web" {
		t.Errorf("web host: %q", got)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"start web", "start poller", "stop poller", "stop web"}; !slices.Equal(log, want) {
		t.Errorf("order %v, want %v", log, want)
	}
	// Every listener is closed after Shutdown.
	if _, err := net.DialTimeout("tcp", srv.Addr(server.ListenerHTTPS), time.Second); err == nil {
		t.Error("the HTTPS listener still accepts after Shutdown")
	}
	if err := srv.Start(t.Context()); !errors.Is(err, server.ErrState) {
		t.Errorf("Start after Shutdown: %v", err)
	}
}

// TestStartFailureStopsStarted: a part that fails to start aborts Start,
// and what was started before it is stopped (its listeners closed).
func TestStartFailureStopsStarted(t *testing.T) {
	t.Parallel()
	c := devConfig(t, map[string]string{"report-listen": "", "smtp-listen": "", "http-listen": ""})
	st := openStore(t, c)
	var (
		log []string
		mu  sync.Mutex
	)
	a := &recorder{name: "first", log: &log, mu: &mu}
	b := &recorder{name: "broken", log: &log, mu: &mu, fail: errors.New("cannot bind")}
	srv, err := server.New(slog.New(slog.DiscardHandler), c, st, server.Options{Parts: parts(a, b)})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "broken: cannot bind") {
		t.Fatalf("Start: %v", err)
	}
	if want := []string{"start first", "start broken", "stop first"}; !slices.Equal(log, want) {
		t.Errorf("order %v, want %v", log, want)
	}
	for _, name := range []string{server.ListenerHTTPS, server.ListenerDNS} {
		if _, err := net.DialTimeout("tcp", srv.Addr(name), time.Second); err == nil {
			t.Errorf("%s still accepts after a failed start", name)
		}
	}
}

// TestStartPortTaken: a listener whose address is taken fails Start with
// a message naming the part.
func TestStartPortTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := devConfig(t, map[string]string{"smtp-listen": taken.Addr().String()})
	st := openStore(t, c)
	srv, err := server.New(slog.New(slog.DiscardHandler), c, st, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "smtp intake: smtp listener") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start: %v", err)
	}
}

// TestNewRefusesDuplicateHost: two parts cannot claim one HTTPS host, nor
// the intake host.
func TestNewRefusesDuplicateHost(t *testing.T) {
	t.Parallel()
	c := devConfig(t, nil)
	var mu sync.Mutex
	var log []string
	for _, ps := range [][]server.Part{
		{&recorder{name: "a", host: "web.sts.test", log: &log, mu: &mu}, &recorder{name: "b", host: "web.sts.test", log: &log, mu: &mu}},
		{&recorder{name: "a", host: c.Intake.Host, log: &log, mu: &mu}},
	} {
		if _, err := server.New(slog.New(slog.DiscardHandler), c, nil, server.Options{Parts: parts(ps...)}); !errors.Is(err, server.ErrConfig) {
			t.Errorf("New: %v, want ErrConfig", err)
		}
	}
}

// parts makes PartFuncs of ready parts.
func parts(ps ...server.Part) []server.PartFunc {
	var fs []server.PartFunc
	for _, p := range ps {
		fs = append(fs, func(*server.Env) (server.Part, error) { return p, nil })
	}
	return fs
}

// client sends every request to addr, whatever the URL's host.
func client(addr string, tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func get(t *testing.T, c *http.Client, url string, want int) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

func post(t *testing.T, c *http.Client, url, body string, want int) {
	t.Helper()
	resp, err := c.Post(url, "application/tlsrpt+json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("POST %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
}

// TestStartFailureAfterEveryListener: a part that fails after every
// built-in listener started stops them all at once, even those whose
// serving goroutine had not begun yet.
func TestStartFailureAfterEveryListener(t *testing.T) {
	t.Parallel()
	c := devConfig(t, nil)
	st := openStore(t, c)
	var mu sync.Mutex
	var log []string
	broken := &recorder{name: "broken", log: &log, mu: &mu, fail: errors.New("cannot bind")}
	srv, err := server.New(slog.New(slog.DiscardHandler), c, st, server.Options{Parts: parts(broken)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := srv.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "broken: cannot bind") || strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a failed start took %v to stop what it started", d)
	}
	for _, name := range []string{server.ListenerSMTP, server.ListenerHTTPS, server.ListenerReport} {
		if _, err := net.DialTimeout("tcp", srv.Addr(name), time.Second); err == nil {
			t.Errorf("%s still accepts after a failed start", name)
		}
	}
}

// TestRoles: an edge (dns,policy) runs no intake; a core (intake) serves
// no policy, on the same configuration otherwise.
func TestRoles(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Edge: DNS and policies; the intake listeners configured are not run.
	c := devConfig(t, map[string]string{"roles": "dns,policy"})
	st := openStore(t, c)
	if _, err := hosting.New(st, server.HostingSettings(c), nil).Add(ctx, "example.test", hosting.Spec{Org: org(t, st), MX: []string{"mx.example.test"}}); err != nil {
		t.Fatal(err)
	}
	edge := start(t, c, st, server.Options{})
	if a := edge.Addrs(); a[server.ListenerSMTP] != "" || a[server.ListenerReport] != "" || a[server.ListenerDNS] == "" {
		t.Errorf("edge listeners %v", a)
	}
	https := client(edge.Addr(server.ListenerHTTPS), &tls.Config{RootCAs: devRoots(t, c)})
	get(t, https, "https://mta-sts.example.test/.well-known/mta-sts.txt", 200)
	if resp, err := https.Post("https://reports.sts.test/v1/tlsrpt", "application/tlsrpt+json", strings.NewReader(report)); err == nil {
		resp.Body.Close()
		t.Error("the edge took a report on the intake host")
	}

	// Core: intake only; policies are not served, not even their
	// certificates.
	c2 := devConfig(t, map[string]string{"roles": "intake", "data": c.DataDir})
	core := start(t, c2, st, server.Options{})
	if a := core.Addrs(); a[server.ListenerDNS] != "" || a[server.ListenerSMTP] == "" || a[server.ListenerHTTPS] == "" {
		t.Errorf("core listeners %v", a)
	}
	https2 := client(core.Addr(server.ListenerHTTPS), &tls.Config{RootCAs: devRoots(t, c2)})
	if resp, err := https2.Get("https://mta-sts.example.test/.well-known/mta-sts.txt"); err == nil {
		resp.Body.Close()
		t.Error("the intake-only instance serves a policy")
	}
	post(t, https2, "https://reports.sts.test/v1/tlsrpt", report, 200)

	if _, err := config.Load(config.Source{Flags: map[string]string{"roles": "dns,mail"}}); err == nil || !strings.Contains(err.Error(), `roles "mail"`) {
		t.Errorf("unknown role: %v", err)
	}
}

// dmarcMail is a mail holding a DMARC aggregate report (RFC 7489 §7.2.1.1).
const dmarcMail = "From: dmarc@receiver.example\r\nTo: dmarc@reports.sts.test\r\n" +
	"Subject: Report Domain: example.test Submitter: receiver.example Report-ID: <d1>\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: text/xml\r\n\r\n" +
	`<?xml version="1.0"?><feedback><report_metadata><org_name>Receiver</org_name><email>dmarc@receiver.example</email>` +
	`<report_id>d1</report_id><date_range><begin>1793491200</begin><end>1793577599</end></date_range></report_metadata>` +
	`<policy_published><domain>example.test</domain><p>none</p></policy_published>` +
	`<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated><disposition>none</disposition>` +
	`<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.test</header_from></identifiers>` +
	`<auth_results><spf><domain>example.test</domain><result>pass</result></spf></auth_results></record></feedback>` + "\r\n"

// org returns the id of an organization created for the test.
func org(t *testing.T, st store.Store) int64 {
	t.Helper()
	o := &store.Org{Name: "test-org"}
	if err := st.CreateOrg(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	return o.ID
}

// TestMetrics: /metrics counts what the listeners did (and promtool
// accepts it), /healthz and /readyz answer.
func TestMetrics(t *testing.T) {
	t.Parallel()
	c := devConfig(t, map[string]string{"metrics-listen": "127.0.0.1:0"})
	st := openStore(t, c)
	if _, err := hosting.New(st, server.HostingSettings(c), nil).Add(t.Context(), "example.test", hosting.Spec{Org: org(t, st), MX: []string{"mx.example.test"}}); err != nil {
		t.Fatal(err)
	}
	srv := start(t, c, st, server.Options{})
	m := new(dns.Msg)
	m.SetQuestion("example.test._mta-sts.sts.test.", dns.TypeTXT)
	if _, err := dns.Exchange(m, srv.Addr(server.ListenerDNS)); err != nil {
		t.Fatal(err)
	}
	m.SetQuestion("nothere.test._mta-sts.sts.test.", dns.TypeTXT)
	if _, err := dns.Exchange(m, srv.Addr(server.ListenerDNS)); err != nil {
		t.Fatal(err)
	}
	https := client(srv.Addr(server.ListenerHTTPS), &tls.Config{RootCAs: devRoots(t, c)})
	get(t, https, "https://mta-sts.example.test/.well-known/mta-sts.txt", 200)
	get(t, https, "https://mta-sts.example.test/elsewhere", 404)
	post(t, https, "https://reports.sts.test/v1/tlsrpt", report, 200)
	// A DMARC aggregate report by SMTP, to the default DMARC address.
	sc, err := smtp.DialStartTLS(srv.Addr(server.ListenerSMTP), &tls.Config{ServerName: "reports.sts.test", RootCAs: devRoots(t, c)})
	if err != nil {
		t.Fatalf("smtp: %v", err)
	}
	if err := sc.SendMail("dmarc@receiver.example", []string{"dmarc@reports.sts.test"}, strings.NewReader(dmarcMail)); err != nil {
		t.Fatalf("smtp: DMARC report: %v", err)
	}
	if err := sc.Quit(); err != nil {
		t.Errorf("smtp QUIT: %v", err)
	}

	base := "http://" + srv.Addr(server.ListenerMetrics)
	plain := &http.Client{Timeout: 10 * time.Second}
	// The mail was answered once spooled (intake.smtp_spool, the
	// default); its report is stored once the intake is quiet.
	body := get(t, plain, base+"/metrics", 200)
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(body, `moat_intake_spool_processed_total{result="stored"} 1`); {
		if time.Now().After(deadline) {
			t.Fatalf("the spooled DMARC report not stored after 15 s:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
		body = get(t, plain, base+"/metrics", 200)
	}
	for _, want := range []string{
		`moat_dns_answers_total{qtype="TXT",rcode="NOERROR"} 1`,
		`moat_dns_answers_total{qtype="TXT",rcode="NXDOMAIN"} 1`,
		`moat_https_requests_total{host="policy",status="2xx"} 1`,
		`moat_https_requests_total{host="policy",status="4xx"} 1`,
		`moat_https_requests_total{host="reports.sts.test",status="2xx"} 1`,
		`moat_intake_reports_total{outcome="acknowledged"} 2`,
		`moat_intake_outcomes_total{kind="tlsrpt",outcome="stored",path="https"} 1`,
		`moat_intake_outcomes_total{kind="dmarc",outcome="stored",path="smtp"} 1`,
		`moat_intake_commit_seconds_count 3`, // the HTTPS report, the spooled mail, its report
		`moat_intake_spool_processed_total{result="stored"} 1`,
		`moat_snapshot_domains 1`,
		`moat_certificates 1`, // the dev CA's certificate of mta-sts.example.test
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if got := get(t, plain, base+"/healthz", 200); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	if got := get(t, plain, base+"/readyz", 200); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	// The sample Grafana dashboard asks only for metrics that exist.
	dash, err := os.ReadFile("../../dist/grafana/moat.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil || len(d.Panels) == 0 {
		t.Fatalf("dist/grafana/moat.json: %v", err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`moat_[a-z_]+`).FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
				if !strings.Contains(body, "# TYPE "+base+" ") {
					t.Errorf("the Grafana dashboard asks for %s, which /metrics does not have", name)
				}
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found (Debian package prometheus)")
		}
		t.Skip("promtool not found (Debian package prometheus): the exposition format is not checked")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestLeaderRetention: of two instances on one database, one leads
// (moat_leader 1, the other 0) and runs retention at once: an old report
// is deleted, a recent one kept, and the rows pruned are counted in the
// leader's metrics. When the leader stops, the other takes over.
func TestLeaderRetention(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c1 := devConfig(t, map[string]string{"metrics-listen": "127.0.0.1:0"})
	st := openStore(t, c1)
	old, fresh := time.Now().AddDate(-3, 0, 0), time.Now().Add(-time.Hour)
	var ids []int64
	for i, end := range []time.Time{old, fresh} {
		res, err := st.InsertTLSRPT(ctx, []*store.TLSRPTReport{{Source: "import", Raw: fmt.Appendf(nil, "report %d", i),
			Status: store.ReportOK, OrganizationName: "Example", ReportID: fmt.Sprint(i), StartTime: end.Add(-24 * time.Hour),
			EndTime: end, Domains: []string{"example.test"}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res[0].ID)
	}
	c2 := devConfig(t, map[string]string{"metrics-listen": "127.0.0.1:0", "data": c1.DataDir})
	c1.Store.LeaseTTL, c2.Store.LeaseTTL = 3*time.Second, 3*time.Second // attempts every second
	srvs := []*server.Server{start(t, c1, st, server.Options{}), nil}
	srv2, err := server.New(slog.New(slog.DiscardHandler), c2, openStore(t, c2), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srvs[1] = srv2
	defer func() { _ = srv2.Shutdown(context.Background()) }()

	plain := &http.Client{Timeout: 10 * time.Second}
	leading := func(s *server.Server) bool {
		return strings.Contains(get(t, plain, "http://"+s.Addr(server.ListenerMetrics)+"/metrics", 200), "\nmoat_leader 1\n")
	}
	deadline := time.Now().Add(20 * time.Second)
	var leader int
	for {
		a, b := leading(srvs[0]), leading(srvs[1])
		if a && b {
			t.Fatal("both instances lead")
		}
		if a || b {
			if b {
				leader = 1
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no instance leads")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		_, err := st.TLSRPTReportByID(ctx, ids[0])
		if errors.Is(err, store.ErrNotFound) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the old report was not pruned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.TLSRPTReportByID(ctx, ids[1]); err != nil {
		t.Errorf("the recent report: %v", err)
	}
	for {
		body := get(t, plain, "http://"+srvs[leader].Addr(server.ListenerMetrics)+"/metrics", 200)
		if strings.Contains(body, `moat_retention_pruned_rows_total{action="delete",table="tlsrpt_reports"} 1`) &&
			strings.Contains(body, "moat_retention_last_success_timestamp_seconds ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's metrics lack the pruned report:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The leader stops and releases the lease: the other leads soon.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srvs[leader].Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	other := srvs[1-leader]
	for !leading(other) {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatal("the other instance did not take over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
