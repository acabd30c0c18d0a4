package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/store"
)

// moat runs the command line in-process and returns its exit code, stdout
// and stderr.
func moat(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustMoat(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := moat(t, args...)
	if code != exitOK {
		t.Fatalf("moat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func TestDomainsCLI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	out := mustMoat(t, "domains", "add", "Example.TEST.", "--mx", "mx1.example.test", "--mx", "*.backup.example.test", "--data", data, "--zone", "sts.test", "--json")
	var d domainView
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("add --json: %v\n%s", err, out)
	}
	if d.Domain != "example.test" || d.Mode != "testing" || d.MaxAge != 604800 || len(d.MX) != 2 || d.Version != 1 {
		t.Errorf("add --json = %+v", d)
	}

	out = mustMoat(t, "domains", "set", "example.test", "--mode", "enforce", "--max-age", "86400", "--data", data, "--json")
	var set struct {
		domainView
		PolicyChanged bool `json:"policy_changed"`
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil {
		t.Fatal(err)
	}
	if !set.PolicyChanged || set.Version != 2 || set.PolicyID == d.PolicyID || set.Mode != "enforce" {
		t.Errorf("set --json = %+v (first id %s)", set, d.PolicyID)
	}

	out = mustMoat(t, "domains", "show", "example.test", "--data", data, "--json")
	var show domainView
	if err := json.Unmarshal([]byte(out), &show); err != nil {
		t.Fatal(err)
	}
	if len(show.Versions) != 2 || show.Versions[0].PolicyID != set.PolicyID || !strings.Contains(show.Policy, "mode: enforce\r\n") {
		t.Errorf("show --json = %+v", show)
	}
	if out := mustMoat(t, "domains", "show", "example.test", "--data", data); !strings.Contains(out, "mode: enforce") || !strings.Contains(out, "VERSION") {
		t.Errorf("show:\n%s", out)
	}

	out = mustMoat(t, "domains", "list", "--data", data)
	if !regexp.MustCompile(`example\.test\s+enforce\s+mx1\.example\.test,\*\.backup\.example\.test\s+86400`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}

	out = mustMoat(t, "domains", "records", "example.test", "--data", data, "--zone", "sts.test", "--policy-host", "mta-sts.example.net")
	for _, want := range []string{
		"mta-sts.example.test.\tCNAME\tmta-sts.example.net.",
		"_mta-sts.example.test.\tCNAME\texample.test._mta-sts.sts.test.",
		"_smtp._tls.example.test.\tCNAME\texample.test._smtp._tls.sts.test.",
		"_mta-sts.example.test.\tTXT\t\"v=STSv1; id=" + set.PolicyID + "\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("records lacks %q:\n%s", want, out)
		}
	}

	// Errors name the field and the value; nothing is written.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"domains", "add", "b.test", "--mx", "mx.b.test", "--mode", "strict"}, []string{"mode", `"strict"`}},
		{[]string{"domains", "add", "b.test", "--mx", "mx..b.test"}, []string{"mx", `"mx..b.test"`}},
		{[]string{"domains", "add", "b.test", "--mx", "mx.b.test", "--max-age", "31557601"}, []string{"max_age", "31557601"}},
		{[]string{"domains", "add", "b.test"}, []string{"mx", "at least one"}},
		{[]string{"domains", "add", "example.test", "--mx", "mx.example.test"}, []string{"example.test", "already"}},
		{[]string{"domains", "set", "nothere.test", "--mode", "none"}, []string{"no hosted domain", "nothere.test"}},
		{[]string{"domains", "set", "example.test"}, []string{"nothing to change"}},
		{[]string{"domains", "rm", "nothere.test"}, []string{"no hosted domain", "nothere.test"}},
		{[]string{"domains", "records", "example.test"}, []string{"zone", "not configured"}},
		{[]string{"domains", "list", "--log-level", "loud"}, []string{"log.level", "loud"}},
	} {
		code, out, errs := moat(t, append(tc.args, "--data", data)...)
		if code != exitError {
			t.Errorf("moat %v: exit %d, want %d (stdout %q)", tc.args, code, exitError, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("moat %v: stderr %q does not name %q", tc.args, errs, w)
			}
		}
	}
	if out := mustMoat(t, "domains", "list", "--data", data, "--json"); strings.Count(out, `"domain"`) != 1 {
		t.Errorf("refused writes changed the list:\n%s", out)
	}

	if out := mustMoat(t, "domains", "rm", "example.test", "--data", data); !strings.Contains(out, "removed example.test") {
		t.Errorf("rm: %q", out)
	}
	if out := mustMoat(t, "domains", "list", "--data", data, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("list after rm: %q", out)
	}
}

func TestVerifyCLIExitCodes(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustMoat(t, "domains", "add", "customer.test", "--mx", "mx.customer.test", "--data", data)
	res := dnstest.Start(t, `customer.test. MX 10 mx.customer.test.`, nil)
	code, out, errs := moat(t, "domains", "verify", "customer.test", "--data", data, "--zone", "sts.test", "--resolver", res.Addr, "--json")
	if code != exitNotGreen {
		t.Fatalf("verify with nothing published: exit %d, want %d\n%s%s", code, exitNotGreen, out, errs)
	}
	var v struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Status string `json:"status"`
			Fix    string `json:"fix"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.OK || len(v.Checks) != 3 || v.Checks[1].Fix != "publish _mta-sts.customer.test.\tCNAME\tcustomer.test._mta-sts.sts.test." {
		t.Errorf("verify --json = %+v", v)
	}
	// An unreachable resolver is an operational error.
	dead, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := dead.LocalAddr().String()
	dead.Close()
	if code, _, _ := moat(t, "domains", "verify", "customer.test", "--data", data, "--zone", "sts.test", "--resolver", addr, "--timeout", "300ms"); code != exitNotGreen && code != exitError {
		t.Errorf("verify against a dead resolver: exit %d", code)
	}
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "moat.yaml")
	os.WriteFile(file, []byte("zone: sts.example.net\ndatabase: postgres://moat:secret@db.example.net/moat\n"), 0o600)
	out := mustMoat(t, "config", "show", "--config", file, "--json")
	if !strings.Contains(out, `"zone": "sts.example.net"`) || strings.Contains(out, "secret") {
		t.Errorf("config show must show the zone and hide the password:\n%s", out)
	}
	os.WriteFile(file, []byte("zone: sts.example.net\nzonee: typo\n"), 0o600)
	code, _, errs := moat(t, "config", "show", "--config", file)
	if code != exitError || !strings.Contains(errs, "line 2") || !strings.Contains(errs, "zonee") {
		t.Errorf("unknown key: exit %d, stderr %q", code, errs)
	}
}

// TestServeDev runs `moat serve --dev` in-process on free ports, adds a
// domain with the CLI as another process would, and queries DNS and HTTPS
// with real clients, as the README's quick start does with dig and curl.
func TestServeDev(t *testing.T) {
	t.Parallel()
	addrs, data := devServe(t, "--zone", "sts.test")
	dnsAddr, httpsAddr := addrs["dns"], addrs["https"]

	txt := func(domain string) string {
		m := new(dns.Msg)
		m.SetQuestion(domain+"._mta-sts.sts.test.", dns.TypeTXT)
		in, err := dns.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Answer) == 0 {
			return dns.RcodeToString[in.Rcode]
		}
		return strings.Join(in.Answer[0].(*dns.TXT).Txt, "")
	}
	pem, err := os.ReadFile(filepath.Join(data, "dev-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, httpsAddr)
		},
	}}
	policy := func(domain string) string {
		resp, err := client.Get("https://mta-sts." + domain + "/.well-known/mta-sts.txt")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		return resp.Status + "\n" + string(b)
	}

	if got := txt("demo.moat.test"); !strings.HasPrefix(got, "v=STSv1; id=") {
		t.Errorf("demo TXT = %q", got)
	}
	if got := txt("example.test"); got != "NXDOMAIN" {
		t.Errorf("TXT before add = %q, want NXDOMAIN", got)
	}

	// The CLI writes to the same data directory while serve runs.
	mustMoat(t, "domains", "add", "example.test", "--mx", "mx1.example.test", "--data", data)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		// RFC-level deadline of the product: served within 5 seconds.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("%s not served within 5s", what)
	}
	var id1 string
	waitFor("added domain", func() bool { id1 = txt("example.test"); return strings.HasPrefix(id1, "v=STSv1; id=") })
	if got := policy("example.test"); got != "200 OK\nversion: STSv1\r\nmode: testing\r\nmx: mx1.example.test\r\nmax_age: 604800\r\n" {
		t.Errorf("policy = %q", got)
	}

	mustMoat(t, "domains", "set", "example.test", "--mode", "enforce", "--data", data)
	waitFor("enforce policy", func() bool {
		return strings.Contains(policy("example.test"), "mode: enforce\r\n") && txt("example.test") != id1
	})
	show := mustMoat(t, "domains", "show", "example.test", "--data", data, "--json")
	var d domainView
	json.Unmarshal([]byte(show), &d)
	if got := txt("example.test"); got != "v=STSv1; id="+d.PolicyID {
		t.Errorf("TXT %q does not carry the stored id %s", got, d.PolicyID)
	}
	if got := policy("unknown.test"); strings.HasPrefix(got, "200") {
		t.Errorf("a domain not hosted got a policy: %q", got)
	}

	// The demo domain is the organization "demo"'s, and so, the only
	// organization, is the domain the CLI added.
	withStore(t, data, func(st store.Store) {
		o, err := st.OrgByName(context.Background(), DemoOrg)
		if err != nil {
			t.Fatalf("organization %s: %v", DemoOrg, err)
		}
		for _, name := range []string{DemoDomain, "example.test"} {
			if d, err := st.Domain(context.Background(), name); err != nil || d.OrgID != o.ID {
				t.Errorf("%s = %+v, %v; want it in %s (%d)", name, d, err, DemoOrg, o.ID)
			}
		}
	})
}
