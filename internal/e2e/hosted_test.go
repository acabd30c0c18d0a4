package e2e

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/store/pgtest"
)

// customer is the hosted domain.
const customer = "customer.test"

// customerZone is what the owner of customer.test publishes, once
// (DESIGN.md, "Hosted MTA-STS: how delegation works").
const customerZone = `
$ORIGIN customer.test.
mta-sts      CNAME  mta-sts.sts.test.
_mta-sts     CNAME  customer.test._mta-sts.sts.test.
_smtp._tls   CNAME  customer.test._smtp._tls.sts.test.
`

// wantTLSRPT is the TLS-RPT record senders find for customer.test: Moat's
// report address and endpoint, derived from the intake settings.
const wantTLSRPT = "v=TLSRPTv1; rua=mailto:tlsrpt@reports.sts.test,https://reports.sts.test/v1/tlsrpt"

// changeDeadline is the product's promise, not a measurement: a change is
// served by every instance within seconds (DESIGN.md, "Data flow"). The
// tests poll until it is, and fail only when it is not by then.
const changeDeadline = 5 * time.Second

// spec is the policy configured for customer.test.
var spec = hosting.Spec{
	Mode:   "testing",
	MX:     []string{"mx1.customer.test", "*.mx.customer.test"},
	MaxAge: 86400,
}

// startResolver starts the recursive resolver that senders and Pebble's
// validation authority use. The customer zone is served by a separate DNS
// server; the resolver forwards names under it there and names under the
// service zone to the Moat DNS server at moatDNS, and follows the
// customer's CNAMEs from one into the other, as a real resolver does.
func startResolver(t *testing.T, moatDNS string) *dnstest.Server {
	t.Helper()
	customer := dnstest.Start(t, customerZone, nil)
	return dnstest.Start(t, "", map[string]string{"customer.test.": customer.Addr, serviceZone: moatDNS})
}

// sender looks at customer.test as a sending MTA does (RFC 8461 §3): the
// TXT record, then the policy over HTTPS, through one resolver and one
// Moat instance's HTTPS port.
type sender struct {
	res   *dnstest.Server
	fetch *mtasts.Fetcher
}

func newSender(res *dnstest.Server, roots *x509.CertPool, port int) *sender {
	return &sender{res: res, fetch: mtasts.NewFetcher(mtasts.FetchOpts{
		Resolver: res.Resolver(),
		RootCAs:  roots,
		Port:     port,
	})}
}

// id returns the policy id of customer.test's TXT record.
func (s *sender) id(ctx context.Context) (string, error) {
	rec, _, err := mtasts.LookupRecord(ctx, s.res.Resolver(), customer)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// observe returns the TXT id and the fetched policy.
func (s *sender) observe(ctx context.Context) (string, *mtasts.FetchResult, error) {
	id, err := s.id(ctx)
	if err != nil {
		return "", nil, err
	}
	fr, err := s.fetch.Fetch(ctx, customer)
	if err != nil {
		return id, nil, err
	}
	return id, fr, nil
}

// waitID polls until the TXT record of customer.test carries id.
func waitID(t *testing.T, who string, s *sender, id string) {
	t.Helper()
	var got string
	err := poll(t.Context(), func(ctx context.Context) (err error) {
		if got, err = s.id(ctx); err == nil && got != id {
			err = fmt.Errorf("TXT id %s", got)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: the TXT record of %s does not carry id %s within %v: %v", who, customer, id, changeDeadline, err)
	}
}

// waitServed polls until s sees, through DNS and HTTPS, the latest policy
// version that st records for customer.test, which must be want's, and
// returns the fetched policy.
func waitServed(t *testing.T, who string, s *sender, st store.Store, want *store.Domain) (*mtasts.FetchResult, *store.PolicyVersion) {
	t.Helper()
	v := latest(t, st)
	if v.PolicyID != want.PolicyID || v.Version != want.Version {
		t.Fatalf("%s: the store's latest version is %d with id %s, the service returned %d with id %s", who, v.Version, v.PolicyID, want.Version, want.PolicyID)
	}
	var fr *mtasts.FetchResult
	err := poll(t.Context(), func(ctx context.Context) error {
		id, got, err := s.observe(ctx)
		switch {
		case err != nil:
			return err
		case id != v.PolicyID:
			return fmt.Errorf("TXT id %s, want %s", id, v.PolicyID)
		case string(got.Body) != v.Policy:
			return fmt.Errorf("policy %q, want %q", got.Body, v.Policy)
		}
		fr = got
		return nil
	})
	if err != nil {
		t.Fatalf("%s: version %d (id %s) of %s not served within %v: %v", who, v.Version, v.PolicyID, customer, changeDeadline, err)
	}
	return fr, v
}

// poll calls check every 50 ms until it returns nil, and gives up after
// changeDeadline with the last error that was not caused by the deadline
// itself.
func poll(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, changeDeadline)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

// latest returns the newest policy version of customer.test in st.
func latest(t *testing.T, st store.Store) *store.PolicyVersion {
	t.Helper()
	vs, err := st.PolicyVersions(t.Context(), customer)
	if err != nil || len(vs) == 0 {
		t.Fatalf("policy versions of %s: %d, %v", customer, len(vs), err)
	}
	return vs[0]
}

// fetchFirst fetches the policy the first time, when the instance orders
// the certificate inside the TLS handshake.
func fetchFirst(t *testing.T, who string, s *sender) *mtasts.FetchResult {
	t.Helper()
	fr, err := s.fetch.Fetch(t.Context(), customer)
	if err != nil {
		t.Fatalf("%s: fetch the policy of %s: %v", who, customer, err)
	}
	return fr
}

// checkPolicy checks that fr is version v of the policy with mode, the MX
// patterns and max_age of spec, over a certificate for the policy host
// that p issued.
func checkPolicy(t *testing.T, who string, fr *mtasts.FetchResult, v *store.PolicyVersion, mode string, p *pebbleCA) {
	t.Helper()
	got := fr.Policy
	if got.Mode != mtasts.Mode(mode) || !slices.Equal(got.MX, spec.MX) || got.MaxAge != spec.MaxAge {
		t.Errorf("%s: served policy mode %s, mx %q, max_age %d; configured mode %s, mx %q, max_age %d",
			who, got.Mode, got.MX, got.MaxAge, mode, spec.MX, spec.MaxAge)
	}
	if string(fr.Body) != v.Policy {
		t.Errorf("%s: served policy %q, store's version %d is %q", who, fr.Body, v.Version, v.Policy)
	}
	leaf := fr.Certs[0]
	if err := leaf.VerifyHostname(mtasts.PolicyHost(customer)); err != nil {
		t.Errorf("%s: served certificate: %v", who, err)
	}
	if !p.issued(leaf) {
		t.Errorf("%s: served certificate (serial %x) was not issued by Pebble", who, leaf.SerialNumber)
	}
}

// checkDelegation runs what `moat domains verify` does through res and
// wants every name delegated and answering what Moat serves for d.
func checkDelegation(t *testing.T, m *moat, res *dnstest.Server, d *store.Domain) {
	t.Helper()
	ctx := t.Context()
	who := "moat " + m.name
	checks := server.HostingSettings(m.cfg).Verify(ctx, hosting.DNSResolver{Addr: res.Addr}, d)
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
		if c.Status != hosting.StatusOK {
			t.Errorf("%s: verify %s: status %s, want %s (found %q, detail %q, fix %q)", who, c.Name, c.Status, hosting.StatusOK, c.Found, c.Detail, c.Fix)
		}
	}
	want := []string{"mta-sts.customer.test.", "_mta-sts.customer.test.", "_smtp._tls.customer.test."}
	if !slices.Equal(names, want) {
		t.Errorf("%s: verify checked %q, want %q", who, names, want)
	}
	// RFC 8460 §3: the TLS-RPT record, found through its CNAME.
	txt, err := res.Resolver().LookupTXT(ctx, "_smtp._tls."+customer)
	if err != nil || !slices.Equal(txt, []string{wantTLSRPT}) {
		t.Errorf("%s: TXT _smtp._tls.%s: %q, %v; want %q", who, customer, txt, err, wantTLSRPT)
	}
}

// enforce switches customer.test to mode enforce through m's service.
func enforce(t *testing.T, m *moat, before *store.Domain) *store.Domain {
	t.Helper()
	mode := "enforce"
	d, changed, err := m.svc.Set(t.Context(), customer, hosting.Change{Mode: &mode})
	if err != nil || !changed {
		t.Fatalf("moat %s: set mode enforce: changed %v, %v", m.name, changed, err)
	}
	// RFC 8461 §3.1: the id MUST change when the policy changes.
	if d.PolicyID == before.PolicyID || d.Version != before.Version+1 {
		t.Fatalf("moat %s: after the change: version %d id %s, before: version %d id %s", m.name, d.Version, d.PolicyID, before.Version, before.PolicyID)
	}
	return d
}

// TestHostedMTASTSWithPebble runs one Moat on SQLite as `moat serve` does
// and checks the whole delegation: the TXT record through the customer's
// CNAME, the policy over HTTPS with a certificate ordered from Pebble on
// the first fetch, `moat domains verify`, and a mode change reaching DNS
// and HTTPS together within the deadline.
func TestHostedMTASTSWithPebble(t *testing.T) {
	logs := newTestLogs(t)
	st := openStore(t, logs, "sqlite", store.Options{DataDir: t.TempDir()})
	p := newPebble(t, logs)
	m := startMoat(t, logs, "a", st, p)
	res := startResolver(t, m.dnsAddr())
	p.start(t, logs, res.Addr, m.httpPort(), m.httpsPort())
	snd := newSender(res, p.roots, m.httpsPort())
	ctx := t.Context()

	d, err := m.svc.Add(ctx, customer, m.customerSpec(t))
	if err != nil {
		t.Fatalf("add %s: %v", customer, err)
	}
	// The id is served from Moat's zone, reached through the CNAME of the
	// customer zone (RFC 8461 §3.1: senders follow CNAMEs).
	waitID(t, "moat a", snd, d.PolicyID)
	if n := p.orders(); n != 0 {
		t.Errorf("%d ACME orders before the first policy fetch, want 0 (certificates are ordered on demand)", n)
	}
	fr := fetchFirst(t, "moat a", snd)
	v := latest(t, st)
	if v.PolicyID != d.PolicyID {
		t.Fatalf("store's latest version has id %s, Add returned %s", v.PolicyID, d.PolicyID)
	}
	checkPolicy(t, "moat a", fr, v, "testing", p)
	// The certificate Pebble issued is recorded for the dashboard: its
	// dates in the overview and an event on the domain's charts.
	rows, err := st.Scoped(store.Scope{Operator: true}).Overview(ctx, store.OverviewQuery{Match: customer, Now: time.Now()})
	if err != nil || len(rows) != 1 || !rows[0].CertExpires.Equal(fr.Certs[0].NotAfter.UTC()) {
		t.Errorf("overview of %s after the first fetch: %v, %v; want the certificate's expiry %v", customer, rows[0].CertExpires, err, fr.Certs[0].NotAfter)
	}
	if n := p.orders(); n != 1 {
		t.Errorf("%d ACME orders after the first fetch, want 1", n)
	}
	serial := fr.Certs[0].SerialNumber
	checkDelegation(t, m, res, d)

	// The certificate is Pebble's, not one any client trusts: a sender
	// with the system roots refuses it (RFC 8461 §3.3).
	sys := mtasts.NewFetcher(mtasts.FetchOpts{Resolver: res.Resolver(), Port: m.httpsPort()})
	if _, err := sys.Fetch(ctx, customer); !errors.Is(err, mtasts.ErrFetchTLS) {
		t.Errorf("fetch trusting the system roots: %v, want %v", err, mtasts.ErrFetchTLS)
	}

	d2 := enforce(t, m, d)
	fr2, v2 := waitServed(t, "moat a", snd, st, d2)
	checkPolicy(t, "moat a", fr2, v2, "enforce", p)
	if fr2.Certs[0].SerialNumber.Cmp(serial) != 0 || p.orders() != 1 {
		t.Errorf("after the change: certificate serial %x (was %x), %d orders; want the same certificate and 1 order", fr2.Certs[0].SerialNumber, serial, p.orders())
	}
	checkDelegation(t, m, res, d2)

	// A domain no longer hosted has neither a TXT record nor a policy
	// host: senders see no policy (RFC 8461 §3.1) and Moat presents no
	// certificate for it.
	if err := m.svc.Remove(ctx, customer); err != nil {
		t.Fatalf("remove %s: %v", customer, err)
	}
	err = poll(ctx, func(ctx context.Context) error {
		if _, err := snd.id(ctx); !errors.Is(err, mtasts.ErrNoRecord) {
			return fmt.Errorf("TXT lookup: %w, want %w", err, mtasts.ErrNoRecord)
		}
		if _, err := snd.fetch.Fetch(ctx, customer); !errors.Is(err, mtasts.ErrFetchTLS) {
			return fmt.Errorf("policy fetch: %w, want %w", err, mtasts.ErrFetchTLS)
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s still served %v after its removal: %v", customer, changeDeadline, err)
	}
}

// TestHostedMTASTSSharedPostgres runs two Moat instances on one PostgreSQL
// database, as several machines do: the certificate instance A orders is
// served by B without a second order, and a change made through A is
// served by B's DNS and HTTPS within the deadline.
func TestHostedMTASTSSharedPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	logs := newTestLogs(t)
	stA := openStore(t, logs, "postgres-a", store.Options{URL: url})
	stB := openStore(t, logs, "postgres-b", store.Options{URL: url})
	p := newPebble(t, logs)
	a := startMoat(t, logs, "a", stA, p)
	b := startMoat(t, logs, "b", stB, p)
	resA := startResolver(t, a.dnsAddr())
	resB := startResolver(t, b.dnsAddr())
	// Pebble validates against instance A.
	p.start(t, logs, resA.Addr, a.httpPort(), a.httpsPort())
	sndA := newSender(resA, p.roots, a.httpsPort())
	sndB := newSender(resB, p.roots, b.httpsPort())

	d, err := a.svc.Add(t.Context(), customer, a.customerSpec(t))
	if err != nil {
		t.Fatalf("add %s through moat a: %v", customer, err)
	}
	waitID(t, "moat a", sndA, d.PolicyID)
	waitID(t, "moat b", sndB, d.PolicyID)

	frA := fetchFirst(t, "moat a", sndA)
	checkPolicy(t, "moat a", frA, latest(t, stA), "testing", p)
	if n := p.orders(); n != 1 {
		t.Fatalf("%d ACME orders after moat a's first fetch, want 1", n)
	}
	serial := frA.Certs[0].SerialNumber

	// B finds the certificate in the shared store.
	frB := fetchFirst(t, "moat b", sndB)
	checkPolicy(t, "moat b", frB, latest(t, stB), "testing", p)
	if got := frB.Certs[0].SerialNumber; got.Cmp(serial) != 0 {
		t.Errorf("moat b served certificate serial %x, moat a %x: want the same", got, serial)
	}
	if n := p.orders(); n != 1 {
		t.Errorf("%d ACME orders after moat b served, want 1", n)
	}
	checkDelegation(t, b, resB, d)

	d2 := enforce(t, a, d)
	frB2, vB2 := waitServed(t, "moat b", sndB, stB, d2)
	checkPolicy(t, "moat b", frB2, vB2, "enforce", p)
	frA2, vA2 := waitServed(t, "moat a", sndA, stA, d2)
	checkPolicy(t, "moat a", frA2, vA2, "enforce", p)
	if n := p.orders(); n != 1 {
		t.Errorf("%d ACME orders after the change, want 1", n)
	}
	checkDelegation(t, b, resB, d2)
}

// TestChangePropagationNotify: with polling set to a minute, a change made
// through one instance on PostgreSQL is served by another within a second:
// the store's notifications, not the polling, carry it.
func TestChangePropagationNotify(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	logs := newTestLogs(t)
	stA := openStore(t, logs, "postgres-a", store.Options{URL: url})
	stB := openStore(t, logs, "postgres-b", store.Options{URL: url})
	p := newPebble(t, logs) // no certificate is asked for: DNS only
	a := startMoatPolling(t, logs, "a", stA, p, time.Minute)
	b := startMoatPolling(t, logs, "b", stB, p, time.Minute)
	resB := startResolver(t, b.dnsAddr())
	sndB := newSender(resB, nil, b.httpsPort())
	org := &store.Org{Name: "propagation"}
	if err := stA.CreateOrg(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	sp := spec
	sp.Org = org.ID
	var worst time.Duration
	for i := range 5 {
		start := time.Now()
		var d *store.Domain
		var err error
		if i == 0 {
			d, err = a.svc.Add(t.Context(), customer, sp)
		} else {
			mode := []string{"enforce", "testing"}[i%2]
			d, _, err = a.svc.Set(t.Context(), customer, hosting.Change{Mode: &mode})
		}
		if err != nil {
			t.Fatal(err)
		}
		for {
			if id, err := sndB.id(t.Context()); err == nil && id == d.PolicyID {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("change %d not served by moat b within 1s (polling is every minute)", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("a change made through moat a was served by moat b's DNS within %v (worst of 5)", worst.Round(time.Millisecond))
}
