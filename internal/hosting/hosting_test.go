package hosting

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/mtasts"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

var testSettings = Settings{
	Zone:       "sts.example.net",
	PolicyHost: "mta-sts.example.net",
	RUA:        []string{"mailto:tlsrpt@reports.example.net"},
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), discard(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// testOrg returns the id of the organization "test" in st, creating it
// when absent.
func testOrg(t *testing.T, st store.Store) int64 {
	t.Helper()
	o, err := st.OrgByName(context.Background(), "test")
	if errors.Is(err, store.ErrNotFound) {
		o = &store.Org{Name: "test"}
		err = st.CreateOrg(context.Background(), o)
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func newService(t *testing.T) (*Service, store.Store, *clock) {
	st := openStore(t, t.TempDir())
	c := &clock{t: time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)}
	return New(st, testSettings, c.now), st, c
}

func TestAddValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newService(t)
	for _, tc := range []struct {
		name       string
		domain     string
		spec       Spec
		field, val string
	}{
		{"unknown mode", "a.example", Spec{Mode: "strict", MX: []string{"mx.a.example"}}, "mode", "strict"},
		{"malformed pattern", "a.example", Spec{MX: []string{"mx..a.example"}}, "mx", "mx..a.example"},
		{"wildcard in the middle", "a.example", Spec{MX: []string{"mx.*.a.example"}}, "mx", "mx.*.a.example"},
		{"ip literal", "a.example", Spec{MX: []string{"192.0.2.1"}}, "mx", "192.0.2.1"},
		{"max_age too large", "a.example", Spec{MX: []string{"mx.a.example"}, MaxAge: 31557601}, "max_age", "31557601"},
		{"negative max_age", "a.example", Spec{MX: []string{"mx.a.example"}, MaxAge: -1}, "max_age", "-1"},
		{"no mx in testing", "a.example", Spec{}, "mx", ""},
		{"no mx in enforce", "a.example", Spec{Mode: "enforce"}, "mx", ""},
		{"bad rua", "a.example", Spec{MX: []string{"mx.a.example"}, RUA: []string{"http://r.example/"}}, "rua", "http://r.example/"},
		{"bad domain", "not a domain", Spec{MX: []string{"mx.a.example"}}, "domain", "not a domain"},
		{"single label", "localhost", Spec{MX: []string{"mx.a.example"}}, "domain", "localhost"},
		{"underscore", "a_b.example", Spec{MX: []string{"mx.a.example"}}, "domain", "a_b.example"},
		{"public suffix", "co.uk", Spec{MX: []string{"mx.a.example"}}, "domain", "co.uk"},
		{"invalid A-label", "xn--zz.example", Spec{MX: []string{"mx.a.example"}}, "domain", "xn--zz.example"},
		{"underscore in pattern", "a.example", Spec{MX: []string{"mx.a_b.example"}}, "mx", "mx.a_b.example"},
		{"wildcard over a TLD", "a.example", Spec{MX: []string{"*.com"}}, "mx", "*.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Add(ctx, tc.domain, tc.spec)
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Add = %v, want a *FieldError", err)
			}
			if fe.Field != tc.field || fe.Value != tc.val {
				t.Errorf("error names field %q value %q, want %q %q (%v)", fe.Field, fe.Value, tc.field, tc.val, err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.val) {
				t.Errorf("message %q does not name the field and value", err)
			}
		})
	}
	if ds, _ := s.List(ctx); len(ds) != 0 {
		t.Fatalf("refused writes stored %d domains", len(ds))
	}
}

// TestNameErrorsAreDnsname: domain and mx errors carry dnsname's reason
// and error.
func TestNameErrorsAreDnsname(t *testing.T) {
	t.Parallel()
	s, _, _ := newService(t)
	_, err := s.Add(context.Background(), "a_b.example", Spec{MX: []string{"mx.a.example"}})
	var de *dnsname.Error
	if !errors.As(err, &de) || !errors.Is(err, dnsname.ErrInvalid) {
		t.Fatalf("Add = %v, want a *dnsname.Error inside", err)
	}
	// The same text as dnsname gives (and moat check prints).
	const want = `invalid domain name "a_b.example": label "a_b" has the character '_' (host names are letters, digits and hyphens, RFC 1123 §2.1)`
	if err.Error() != want || de.Error() != want {
		t.Errorf("Add = %q, want %q", err, want)
	}
}

// TestLegacyNames: a domain stored under older rules (an underscore) can
// be shown and removed, not changed.
func TestLegacyNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := newService(t)
	d := &store.Domain{Name: "a_b.example", Mode: "none", MaxAge: 100, OrgID: testOrg(t, st)}
	if err := st.CreateDomain(ctx, d, &store.PolicyVersion{PolicyID: "id1", Version: 1, Mode: "none", MaxAge: 100}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "A_B.example."); err != nil {
		t.Errorf("Get = %v", err)
	}
	mode := "testing"
	if _, _, err := s.Set(ctx, "a_b.example", Change{Mode: &mode}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Set = %v, want ErrInvalid", err)
	}
	if err := s.Remove(ctx, "a_b.example"); err != nil {
		t.Errorf("Remove = %v", err)
	}
}

func TestAddNormalizesAndVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := newService(t)
	d, err := s.Add(ctx, "Bücher.Example.", Spec{Org: testOrg(t, st), MX: []string{"MX1.Bücher.example", "*.Mail.Example", "mx1.xn--bcher-kva.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "xn--bcher-kva.example" {
		t.Errorf("name %q, want the lower-case A-label", d.Name)
	}
	if got := strings.Join(d.MX, " "); got != "mx1.xn--bcher-kva.example *.mail.example" {
		t.Errorf("mx %q: want A-labels, lower case, duplicates removed", got)
	}
	if d.Mode != "testing" || d.MaxAge != DefaultMaxAge || d.Version != 1 || d.PolicyID != "20261122T101500Z" {
		t.Errorf("defaults: %+v", d)
	}
	if _, err := s.Add(ctx, "xn--bcher-kva.example", Spec{Org: testOrg(t, st), MX: []string{"mx.example"}}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Add = %v, want ErrExists", err)
	}
	_, vs, err := s.Get(ctx, "bücher.example")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Get = %v, %d versions", err, len(vs))
	}
	p, err := mtasts.ParsePolicy([]byte(vs[0].Policy))
	if err != nil {
		t.Fatalf("stored policy does not parse: %v\n%s", err, vs[0].Policy)
	}
	if p.Mode != "testing" || len(p.MX) != 2 || p.MaxAge != DefaultMaxAge {
		t.Errorf("stored policy %+v", p)
	}
	if !strings.HasSuffix(vs[0].Policy, "\r\n") || strings.Contains(strings.ReplaceAll(vs[0].Policy, "\r\n", ""), "\n") {
		t.Errorf("policy lines must end in CRLF (RFC 8461 §3.2): %q", vs[0].Policy)
	}
}

// TestAddOrganization: a domain is added for an organization that exists;
// a missing one is not mistaken for a missing domain.
func TestAddOrganization(t *testing.T) {
	ctx := context.Background()
	s, st, _ := newService(t)
	org := testOrg(t, st)
	d, err := s.Add(ctx, "example.com", Spec{Org: org, MX: []string{"mx.example.com"}})
	if err != nil || d.OrgID != org {
		t.Fatalf("Add = %+v, %v; want organization %d", d, err, org)
	}
	_, err = s.Add(ctx, "example.net", Spec{MX: []string{"mx.example.net"}})
	if !errors.Is(err, store.ErrInvalidArg) {
		t.Errorf("Add without an organization = %v, want store.ErrInvalidArg", err)
	}
	_, err = s.Add(ctx, "example.net", Spec{Org: org + 1, MX: []string{"mx.example.net"}})
	var nh *NotHostedError
	if !errors.Is(err, store.ErrNotFound) || errors.As(err, &nh) {
		t.Errorf("Add for a missing organization = %v, want store.ErrNotFound and no *NotHostedError", err)
	}
}

func TestSetRecordsVersionWithNewID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, clk := newService(t)
	if _, err := s.Add(ctx, "example.com", Spec{Org: testOrg(t, st), MX: []string{"mx.example.com"}}); err != nil {
		t.Fatal(err)
	}
	serial0, _ := st.Serial(ctx)

	// A change of mode in the same second: new version, new distinct id.
	enforce := "enforce"
	d, changed, err := s.Set(ctx, "example.com", Change{Mode: &enforce})
	if err != nil || !changed {
		t.Fatalf("Set = %v, changed %v", err, changed)
	}
	if d.Version != 2 || d.PolicyID == "20261122T101500Z" || !mtasts.ValidID(d.PolicyID) {
		t.Errorf("after same-second change: version %d id %q", d.Version, d.PolicyID)
	}
	id2 := d.PolicyID

	// Only the extra rua changes: the policy is the same, no new version,
	// but the change serial grows (the TLS-RPT record changes).
	rua := []string{"https://r.example.com/tlsrpt"}
	d, changed, err = s.Set(ctx, "example.com", Change{RUA: &rua})
	if err != nil || changed || d.Version != 2 || d.PolicyID != id2 {
		t.Fatalf("rua-only Set: err %v changed %v version %d id %q", err, changed, d.Version, d.PolicyID)
	}
	if serial, _ := st.Serial(ctx); serial <= serial0 {
		t.Errorf("serial %d did not grow from %d", serial, serial0)
	}

	// Setting the same values again changes nothing.
	if _, changed, _ = s.Set(ctx, "example.com", Change{Mode: &enforce}); changed {
		t.Error("unchanged mode recorded a new version")
	}

	// A later change gets the new time as id.
	clk.t = clk.t.Add(time.Hour)
	d, changed, err = s.Set(ctx, "example.com", Change{MX: []string{"mx.example.com", "*.backup.example.com"}})
	if err != nil || !changed || d.PolicyID != "20261122T111500Z" || d.Version != 3 {
		t.Fatalf("Set mx: err %v changed %v id %q version %d", err, changed, d.PolicyID, d.Version)
	}

	// A refused change leaves everything as it was.
	bad := int64(MaxMaxAge + 1)
	if _, _, err := s.Set(ctx, "example.com", Change{MaxAge: &bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Set max_age too large = %v", err)
	}
	d, vs, err := s.Get(ctx, "example.com")
	if err != nil || d.Version != 3 || len(vs) != 3 {
		t.Fatalf("after refused change: %v version %d, %d versions", err, d.Version, len(vs))
	}
	seen := map[string]bool{}
	for i, v := range vs {
		if seen[v.PolicyID] {
			t.Errorf("policy id %s used twice", v.PolicyID)
		}
		seen[v.PolicyID] = true
		if want := int64(3 - i); v.Version != want {
			t.Errorf("versions not newest first: %d at %d", v.Version, i)
		}
	}
	if vs[0].Mode != "enforce" || vs[2].Mode != "testing" {
		t.Errorf("version modes %s..%s", vs[0].Mode, vs[2].Mode)
	}

	if err := s.Remove(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Set(ctx, "example.com", Change{Mode: &enforce}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Set on removed domain = %v, want ErrNotFound", err)
	}
}

func TestPolicyID(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		now     time.Time
		prev    string
		version int64
		want    string
	}{
		{t0, "", 1, "20261122T101500Z"},
		{t0, "20261122T101500Z", 2, "20261122T101500Z2"},
		{t0, "20261122T101500Z2", 3, "20261122T101500Z3"},
		{t0.Add(time.Second), "20261122T101500Z3", 4, "20261122T101501Z"},
		{t0.Add(-time.Hour), "20261122T101500Z", 5, "20261122T101500Z5"}, // clock stepped back
		{t0, "legacy", 2, "20261122T101500Z"},
	} {
		if got := PolicyID(tc.now, tc.prev, tc.version); got != tc.want || !mtasts.ValidID(got) {
			t.Errorf("PolicyID(%v, %q, %d) = %q, want %q", tc.now, tc.prev, tc.version, got, tc.want)
		}
	}
}

func TestWatcherSeesOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	// Two stores on one database stand for `moat serve` and the CLI.
	served, cli := openStore(t, dir), openStore(t, dir)
	s := New(cli, testSettings, nil)
	var h snapshot.Holder
	w := NewWatcher(discard(), served, testSettings, &h, time.Second)
	if ok, err := w.Refresh(ctx, false); err != nil || !ok {
		t.Fatalf("first Refresh = %v, %v; want a published empty snapshot", ok, err)
	}
	if ok, _ := w.Refresh(ctx, false); ok {
		t.Fatal("Refresh without changes rebuilt the snapshot")
	}
	d, err := s.Add(ctx, "example.com", Spec{Org: testOrg(t, cli), MX: []string{"mx.example.com"}, RUA: []string{"https://r.example.com/v1/tlsrpt"}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.Refresh(ctx, false); err != nil || !ok {
		t.Fatalf("Refresh after a change = %v, %v", ok, err)
	}
	got := h.Load().Lookup("example.com")
	if got == nil {
		t.Fatal("added domain not in the snapshot")
	}
	if got.STSRecord != "v=STSv1; id="+d.PolicyID {
		t.Errorf("STS record %q", got.STSRecord)
	}
	if want := "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net,https://r.example.com/v1/tlsrpt"; got.TLSRPTRecord != want {
		t.Errorf("TLS-RPT record %q, want %q", got.TLSRPTRecord, want)
	}
	if want := "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 604800\r\n"; string(got.Policy) != want {
		t.Errorf("policy %q, want %q", got.Policy, want)
	}
	if err := s.Remove(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	if h.Load().Lookup("example.com") != nil {
		t.Error("removed domain still served")
	}
}

func TestTLSRPTRecordWithoutRUA(t *testing.T) {
	t.Parallel()
	set := Settings{Zone: "sts.example.net"}
	if got := set.TLSRPTRecord(&store.Domain{Name: "example.com"}); got != "" {
		t.Errorf("no rua anywhere: record %q, want none", got)
	}
	d := &store.Domain{Name: "example.com", RUA: []string{"mailto:a@example.com"}}
	if got := set.TLSRPTRecord(d); got != "v=TLSRPTv1; rua=mailto:a@example.com" {
		t.Errorf("record %q", got)
	}
}

func TestRecords(t *testing.T) {
	t.Parallel()
	d := &store.Domain{Name: "customer.com", PolicyID: "20261122T101500Z"}
	got := []string{}
	for _, r := range testSettings.Delegation(d.Name) {
		got = append(got, r.Zone())
	}
	want := []string{
		"mta-sts.customer.com.\tCNAME\tmta-sts.example.net.",
		"_mta-sts.customer.com.\tCNAME\tcustomer.com._mta-sts.sts.example.net.",
		"_smtp._tls.customer.com.\tCNAME\tcustomer.com._smtp._tls.sts.example.net.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("delegation:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	self := testSettings.SelfPublished(d)
	if len(self) != 3 || self[1].Zone() != "_mta-sts.customer.com.\tTXT\t\"v=STSv1; id=20261122T101500Z\"" ||
		self[2].Value != "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net" {
		t.Errorf("self-published records: %+v", self)
	}
}
