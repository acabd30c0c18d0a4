package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
)

// The operator's side: Moat's service zone and policy host.
const (
	serviceZone = "sts.test"
	policyHost  = "mta-sts.sts.test"
)

// configYAML is the configuration of every instance, as an operator
// writes it: the listeners on 127.0.0.1, port 0, the ACME server (%[1]s,
// trusting the root in %[2]s), and a poll interval short enough for the
// tests' deadlines.
const configYAML = `
zone: sts.test
policy_host: mta-sts.sts.test
data: %[3]s
dns:
  listen: 127.0.0.1:0
  hosts:
    mta-sts.sts.test: [127.0.0.1]
    ns1.sts.test: [127.0.0.1]
https:
  listen: 127.0.0.1:0
  # The first handshake for a new policy host waits for the ACME order;
  # under -race on a busy machine that may take a while.
  read_header_timeout: 1m
http:
  listen: 127.0.0.1:0
acme:
  ca: %[1]s
  ca_root: %[2]s
  email: ops@sts.test
intake:
  smtp_listen: ""
store:
  poll_interval: %[4]s
`

// moat is one running instance of Moat: the configuration, the store, the
// hosting service over it (what the CLI uses), and the assembly `moat
// serve` runs. It stops when the test ends, before the store is closed.
type moat struct {
	name string
	cfg  *config.Config
	st   store.Store
	svc  *hosting.Service
	srv  *server.Server
}

// openStore opens a store with opts and closes it when the test ends,
// after every server registered later has stopped.
func openStore(t *testing.T, logs *testLogs, who string, opts store.Options) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), logs.logger(who), opts)
	if err != nil {
		t.Fatalf("open store %s: %v", who, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store %s: %v", who, err)
		}
	})
	return st
}

// startMoat starts an instance over st as `moat serve` does, from a
// configuration file, with its certificates from p's ACME server.
func startMoat(t *testing.T, logs *testLogs, name string, st store.Store, p *pebbleCA) *moat {
	t.Helper()
	return startMoatPolling(t, logs, name, st, p, 100*time.Millisecond)
}

// startMoatPolling is startMoat with store.poll_interval poll.
func startMoatPolling(t *testing.T, logs *testLogs, name string, st store.Store, p *pebbleCA, poll time.Duration) *moat {
	t.Helper()
	file := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, configYAML, p.dirURL, p.rootFile, t.TempDir(), poll), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(config.Source{File: file})
	if err != nil {
		t.Fatalf("moat %s: config: %v", name, err)
	}
	if err := c.ValidateServe(); err != nil {
		t.Fatalf("moat %s: config: %v", name, err)
	}
	srv, err := server.New(logs.logger("moat-"+name), c, st, server.Options{})
	if err != nil {
		t.Fatalf("moat %s: %v", name, err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatalf("moat %s: start: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("moat %s: shutdown: %v", name, err)
		}
	})
	return &moat{name: name, cfg: c, st: st, svc: hosting.New(st, server.HostingSettings(c), nil), srv: srv}
}

// customerSpec is spec for the organization "customer", created in the
// instance's store when absent.
func (m *moat) customerSpec(t *testing.T) hosting.Spec {
	t.Helper()
	o, err := m.st.OrgByName(t.Context(), "customer")
	if errors.Is(err, store.ErrNotFound) {
		o = &store.Org{Name: "customer"}
		err = m.st.CreateOrg(t.Context(), o)
	}
	if err != nil {
		t.Fatalf("moat %s: organization: %v", m.name, err)
	}
	s := spec
	s.Org = o.ID
	return s
}

// dnsAddr is the address of the instance's DNS server (UDP and TCP).
func (m *moat) dnsAddr() string { return m.srv.Addr(server.ListenerDNS) }

// httpPort is the port of the HTTP listener (ACME HTTP-01).
func (m *moat) httpPort() int { return port(m.srv.Addr(server.ListenerHTTP)) }

// httpsPort is the port of the HTTPS listener (policies, TLS-ALPN-01).
func (m *moat) httpsPort() int { return port(m.srv.Addr(server.ListenerHTTPS)) }

func port(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		panic(fmt.Sprintf("listener address %q: %v", addr, err))
	}
	return int(ap.Port())
}
