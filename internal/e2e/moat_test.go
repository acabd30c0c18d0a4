package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/policyserver"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

// The operator's side: Moat's service zone and policy host.
const (
	serviceZone = "sts.test"
	policyHost  = "mta-sts.sts.test"
	// pollInterval is how often each instance's watcher polls the store.
	pollInterval = 100 * time.Millisecond
)

// settings are the hosting settings every instance of a test shares, as
// `moat serve` builds them from its configuration.
func settings() hosting.Settings {
	return hosting.Settings{
		Zone:       serviceZone,
		PolicyHost: policyHost,
		RUA:        []string{"mailto:tlsrpt@reports.sts.test"},
	}
}

// moat is one running instance of Moat: a store handle, the hosting
// service over it, the snapshot watcher, the authoritative DNS server for
// the service zone, and (after servePolicies) the HTTPS policy server with
// its HTTP listener for ACME challenges. Everything stops when the test
// ends, before the store is closed.
type moat struct {
	name    string
	st      store.Store
	svc     *hosting.Service
	holder  *snapshot.Holder
	dnsAddr string // UDP and TCP

	httpsLn, httpLn net.Listener
	httpsPort       int

	ctx  context.Context
	logs *testLogs

	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
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

// startMoat wires an instance over st as `moat serve` does: first
// snapshot, watcher, DNS server on 127.0.0.1 (UDP and TCP on one port), and
// the HTTPS and HTTP listeners, not served yet (Pebble needs their ports
// before the policy server can be configured with it).
func startMoat(t *testing.T, logs *testLogs, name string, st store.Store) *moat {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &moat{name: name, st: st, svc: hosting.New(st, settings(), nil), holder: new(snapshot.Holder), ctx: ctx, logs: logs}
	t.Cleanup(func() {
		cancel()
		m.wg.Wait()
		// The policy server closed them if it ran; closing again is
		// harmless.
		for _, l := range []net.Listener{m.httpsLn, m.httpLn} {
			if l != nil {
				_ = l.Close()
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, err := range m.errs {
			t.Errorf("moat %s: %v", name, err)
		}
	})
	log := logs.logger("moat-" + name)

	watcher := hosting.NewWatcher(log, st, settings(), m.holder, pollInterval)
	if _, err := watcher.Refresh(t.Context(), true); err != nil {
		t.Fatalf("moat %s: first snapshot: %v", name, err)
	}
	m.run("watcher", func() error { watcher.Run(ctx); return nil })

	loopback := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	dns, err := dnsserver.New(log, m.holder, dnsserver.Options{
		Zone:  serviceZone,
		Hosts: map[string][]netip.Addr{policyHost: loopback, "ns1." + serviceZone: loopback},
	})
	if err != nil {
		t.Fatalf("moat %s: dnsserver: %v", name, err)
	}
	pc, l := dnstest.Listen(t)
	m.dnsAddr = pc.LocalAddr().String()
	m.run("dns server", func() error { return dns.Serve(ctx, pc, l) })

	if m.httpsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if m.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	m.httpsPort = m.httpsLn.Addr().(*net.TCPAddr).Port
	return m
}

// httpPort is the port of the HTTP listener (ACME HTTP-01).
func (m *moat) httpPort() int { return m.httpLn.Addr().(*net.TCPAddr).Port }

// servePolicies starts the policy server with certificates from p.
func (m *moat) servePolicies(t *testing.T, p *pebbleCA) {
	t.Helper()
	ps, err := policyserver.New(m.logs.logger("moat-"+m.name), m.holder, m.st, policyserver.Options{
		ACMECA:     p.dirURL,
		ACMECARoot: p.rootFile,
		ACMEEmail:  "ops@sts.test",
		// The first handshake for a new policy host waits for the ACME
		// order; under -race on a busy machine that may take a while.
		ReadHeaderTimeout: time.Minute,
	})
	if err != nil {
		t.Fatalf("moat %s: policyserver: %v", m.name, err)
	}
	m.run("policy server", func() error { return ps.Serve(m.ctx, m.httpsLn, m.httpLn) })
}

// run runs fn until the instance stops; an error it returns fails the test.
func (m *moat) run(what string, fn func() error) {
	m.wg.Go(func() {
		if err := fn(); err != nil {
			m.mu.Lock()
			m.errs = append(m.errs, fmt.Errorf("%s: %w", what, err))
			m.mu.Unlock()
		}
	})
}
