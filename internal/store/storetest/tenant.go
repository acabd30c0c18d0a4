package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// The isolation between tenants: organizations A and B, and the MSP P,
// A's parent, with rows of every kind in each. For every Tenant method,
// scope {A} neither sees nor changes B's rows (nor P's), scope {P, A} sees
// A's and P's, the empty scope sees nothing, and the operator sees all.
// Each scope condition in the store's SQL is the only guard of what it
// guards, so dropping any one of them makes a check here fail.

// isolation holds the fixture's rows.
type isolation struct {
	s         store.Store
	p, a, b   *store.Org
	ua, ub    *store.User
	tokA      *store.Token
	tokB      *store.Token
	invB      *store.Invitation
	checkA    *store.CheckRecord
	checkB    *store.CheckRecord // of B, for a.example: A's domain, B's check
	reports   map[string]int64   // "a", "b", "ab", "u" (not hosted), "bad" (invalid)
	dmarc     *dmarcIsolation
	opT, aT   store.Tenant
	paT, bT   store.Tenant
	emptyT    store.Tenant
	allScopes []namedTenant
}

type namedTenant struct {
	name string
	t    store.Tenant
}

func newIsolation(t *testing.T, fresh func(t *testing.T) store.Options) *isolation {
	s := openFresh(t, fresh)
	ctx := t.Context()
	x := &isolation{s: s, reports: map[string]int64{}}
	x.p = newOrg(t, s, "p-msp", 0)
	x.a = newOrg(t, s, "a-customer", x.p.ID)
	x.b = newOrg(t, s, "b-other", 0)
	x.opT = s.Scoped(store.Scope{Operator: true})
	x.aT = s.Scoped(store.Scope{Orgs: []int64{x.a.ID}})
	x.paT = s.Scoped(store.Scope{Orgs: []int64{x.p.ID, x.a.ID}})
	x.bT = s.Scoped(store.Scope{Orgs: []int64{x.b.ID}})
	x.emptyT = s.Scoped(store.Scope{})
	x.allScopes = []namedTenant{{"operator", x.opT}, {"{A}", x.aT}, {"{P,A}", x.paT}, {"{B}", x.bT}, {"{}", x.emptyT}}

	// Domains, with events, certificates and verification.
	hostFor(t, s, "a.example", x.a.ID, "testing")
	hostFor(t, s, "b.example", x.b.ID, "enforce")
	hostFor(t, s, "p.example", x.p.ID, "none")
	for _, d := range []string{"a.example", "b.example", "p.example"} {
		if err := s.RecordCertificate(ctx, d, day(1), day(1).AddDate(0, 0, 90), "issued"); err != nil {
			t.Fatal(err)
		}
		if err := x.opT.RecordVerify(ctx, d, day(2), []byte(`["ok"]`)); err != nil {
			t.Fatal(err)
		}
	}
	// Reports: of A's domain, of B's, of both, of a domain nobody hosts,
	// and one that could not be parsed.
	ab := newReport("Sender", "ab", "a.example", day(20), "sts", 3)
	ab.Domains = []string{"a.example", "b.example"}
	bad := invalidReport("{")
	res := insert(t, s, newReport("Sender", "a", "a.example", day(20), "sts", 1), newReport("Sender", "b", "b.example", day(20), "sts", 2),
		ab, newReport("Sender", "u", "u.example", day(20), "sts", 4), bad)
	for i, name := range []string{"a", "b", "ab", "u", "bad"} {
		x.reports[name] = res[i].ID
	}
	x.dmarc = newDMARCIsolation(t, s)
	// Users, memberships, sessions, tokens, invitations, branding, checks.
	x.ua, x.ub = user(t, s, "ua@example.com"), user(t, s, "ub@example.com")
	for _, m := range []struct {
		u *store.User
		o *store.Org
	}{{x.ua, x.a}, {x.ub, x.b}} {
		if err := s.SetMembership(ctx, m.u.ID, m.o.ID, store.RoleOwner); err != nil {
			t.Fatal(err)
		}
	}
	session(t, s, "ses-ub", x.ub, x.b.ID, baseTime().Add(time.Hour))
	x.tokA = &store.Token{OrgID: x.a.ID, Name: "a", Scope: store.ScopeRead, Hash: "tok-a"}
	x.tokB = &store.Token{OrgID: x.b.ID, Name: "b", Scope: store.ScopeWrite, Hash: "tok-b"}
	x.invB = &store.Invitation{OrgID: x.b.ID, Role: store.RoleAdmin, Hash: "inv-b", ExpiresAt: baseTime().Add(time.Hour)}
	for _, err := range []error{
		x.opT.CreateToken(ctx, x.tokA), x.opT.CreateToken(ctx, x.tokB),
		x.opT.CreateInvitation(ctx, &store.Invitation{OrgID: x.a.ID, Role: store.RoleViewer, Hash: "inv-a", ExpiresAt: baseTime().Add(time.Hour)}),
		x.opT.CreateInvitation(ctx, x.invB),
		x.opT.SetBranding(ctx, x.b.ID, "B", "#123456", "image/png", []byte("png of b")),
		x.opT.SetBranding(ctx, x.a.ID, "A", "#654321", "image/png", []byte("png of a")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	x.checkA = checkRecord(t, x.opT, x.a.ID, "a.example", day(3), 90, "A")
	x.checkB = checkRecord(t, x.opT, x.b.ID, "a.example", day(4), 10, "F")
	checkRecord(t, x.opT, x.b.ID, "b.example", day(4), 20, "F")
	return x
}

// notFound fails t unless err is store.ErrNotFound.
func notFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: error %v, want store.ErrNotFound", what, err)
	}
}

// same fails t unless got and want hold the same strings, in order.
func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func testTenantIsolation(t *testing.T, fresh func(t *testing.T) store.Options) {
	x := newIsolation(t, fresh)
	ctx := t.Context()

	if sc := x.paT.Scope(); sc.Operator || !slices.Equal(sc.Orgs, []int64{x.p.ID, x.a.ID}) {
		t.Errorf("Scope() = %+v", sc)
	}
	orgIDs := []int64{x.p.ID, x.a.ID}
	scoped := x.s.Scoped(store.Scope{Orgs: orgIDs})
	orgIDs[0] = x.b.ID // the tenant keeps its own copy
	if sc := scoped.Scope(); sc.Orgs[0] != x.p.ID {
		t.Errorf("Scoped did not copy the scope: %+v", sc)
	}

	t.Run("Domains", func(t *testing.T) {
		want := map[string][]string{
			"operator": {"a.example", "b.example", "p.example"}, "{A}": {"a.example"},
			"{P,A}": {"a.example", "p.example"}, "{B}": {"b.example"}, "{}": nil,
		}
		for _, tn := range x.allScopes {
			l, err := tn.t.Domains(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range l {
				got = append(got, d.Name)
			}
			same(t, tn.name+" Domains", got, want[tn.name]...)
			for _, d := range []string{"a.example", "b.example", "p.example"} {
				visible := slices.Contains(want[tn.name], d)
				_, err := tn.t.Domain(ctx, d)
				_, verr := tn.t.PolicyVersions(ctx, d)
				_, eerr := tn.t.DomainEvents(ctx, d, time.Time{}, time.Time{})
				for what, err := range map[string]error{"Domain": err, "PolicyVersions": verr, "DomainEvents": eerr} {
					if visible && err != nil {
						t.Errorf("%s %s(%s): %v", tn.name, what, d, err)
					} else if !visible {
						notFound(t, fmt.Sprintf("%s %s(%s)", tn.name, what, d), err)
					}
				}
			}
		}
		// Changes to B's domain from {A} and {}: refused, nothing changed.
		for _, tn := range []namedTenant{{"{A}", x.aT}, {"{}", x.emptyT}} {
			called := false
			_, err := tn.t.UpdateDomain(ctx, "b.example", func(d *store.Domain) (*store.PolicyVersion, error) {
				called = true
				d.MaxAge = 1
				return nil, nil
			})
			notFound(t, tn.name+" UpdateDomain(b)", err)
			if called {
				t.Errorf("%s UpdateDomain(b) called fn with B's domain", tn.name)
			}
			notFound(t, tn.name+" DeleteDomain(b)", tn.t.DeleteDomain(ctx, "b.example"))
			notFound(t, tn.name+" RecordVerify(b)", tn.t.RecordVerify(ctx, "b.example", day(9), []byte(`["changed"]`)))
			d, v := newDomain("new-b.example")
			d.OrgID = x.b.ID
			notFound(t, tn.name+" CreateDomain for B", tn.t.CreateDomain(ctx, d, v))
		}
		d, err := x.s.Domain(ctx, "b.example")
		if err != nil || d.MaxAge != 86400 {
			t.Errorf("B's domain after refused changes = %+v, %v", d, err)
		}
		if _, err := x.s.Domain(ctx, "new-b.example"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a domain for B was created from outside: %v", err)
		}
		if ov, _ := x.opT.Overview(ctx, store.OverviewQuery{Match: "b.example"}); len(ov) != 1 || string(ov[0].Verify) != `["ok"]` {
			t.Errorf("B's verification after a refused RecordVerify = %+v", ov)
		}
		// Within the scope they work.
		if _, err := x.aT.UpdateDomain(ctx, "a.example", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.RUA = nil
			return nil, nil
		}); err != nil {
			t.Errorf("{A} UpdateDomain(a): %v", err)
		}
		if err := x.aT.RecordVerify(ctx, "a.example", day(9), []byte(`["ok"]`)); err != nil {
			t.Errorf("{A} RecordVerify(a): %v", err)
		}
		d, v := newDomain("new-a.example")
		d.OrgID = x.a.ID
		if err := x.paT.CreateDomain(ctx, d, v); err != nil {
			t.Errorf("{P,A} CreateDomain for A: %v", err)
		}
		if err := x.paT.DeleteDomain(ctx, "new-a.example"); err != nil {
			t.Errorf("{P,A} DeleteDomain(new-a): %v", err)
		}
	})

	t.Run("Overview", func(t *testing.T) {
		want := map[string]string{"operator": "a.example b.example p.example", "{A}": "a.example",
			"{P,A}": "a.example p.example", "{B}": "b.example", "{}": ""}
		for _, tn := range x.allScopes {
			for _, sort := range []string{"name", "grade", "failure_rate"} {
				ov, err := tn.t.Overview(ctx, store.OverviewQuery{Sort: sort, Now: day(22)})
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(names(ov), " "); got != want[tn.name] {
					t.Errorf("%s Overview(%s) = %q, want %q", tn.name, sort, got, want[tn.name])
				}
				for _, d := range ov {
					if d.Name == "a.example" && (d.Score != 90 || d.Sessions7d != 4) {
						t.Errorf("%s Overview: a.example score %d, sessions %d; want A's check (90) and 1+3 sessions", tn.name, d.Score, d.Sessions7d)
					}
				}
			}
			n, err := tn.t.CountDomains(ctx, store.OverviewQuery{})
			if err != nil || n != int64(len(strings.Fields(want[tn.name]))) {
				t.Errorf("%s CountDomains = %d, %v", tn.name, n, err)
			}
		}
		if ov, _ := x.aT.Overview(ctx, store.OverviewQuery{Org: x.b.ID}); len(ov) != 0 {
			t.Errorf("{A} Overview(org B) = %v, want nothing", names(ov))
		}
		for _, tn := range x.allScopes {
			ov, err := tn.t.Overview(ctx, store.OverviewQuery{Name: "b.example"})
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Contains(want[tn.name], "b.example"); want != (len(ov) == 1) || len(ov) > 1 {
				t.Errorf("%s Overview(name b.example) = %v", tn.name, names(ov))
			}
		}
	})

	t.Run("Reports", func(t *testing.T) {
		want := map[string][]string{
			"operator": {"a", "b", "ab", "u", "bad"}, "{A}": {"a", "ab"}, "{P,A}": {"a", "ab"}, "{B}": {"b", "ab"}, "{}": nil,
		}
		for _, tn := range x.allScopes {
			for _, f := range []store.ReportFilter{{}, {Domain: "b.example"}, {Since: day(1)}} {
				l, err := tn.t.TLSRPTReports(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				got := map[int64]bool{}
				for _, r := range l {
					got[r.ID] = true
				}
				var wantN int
				for _, name := range want[tn.name] {
					inFilter := f.Domain == "" || name == "b" || name == "ab"
					if inFilter {
						wantN++
						if !got[x.reports[name]] {
							t.Errorf("%s TLSRPTReports(%+v) lacks report %s", tn.name, f, name)
						}
					}
				}
				if len(l) != wantN {
					t.Errorf("%s TLSRPTReports(%+v): %d reports, want %d", tn.name, f, len(l), wantN)
				}
				// By pages of one, the same.
				pf, paged := f, 0
				pf.Limit = 1
				for range 10 {
					page, err := tn.t.TLSRPTReports(ctx, pf)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					if !got[page[0].ID] {
						t.Errorf("%s TLSRPTReports(%+v) by pages lists report %d", tn.name, f, page[0].ID)
					}
					paged++
					pf.After = page[0].Key
				}
				if paged != wantN {
					t.Errorf("%s TLSRPTReports(%+v) by pages: %d reports, want %d", tn.name, f, paged, wantN)
				}
				if n, err := tn.t.CountTLSRPTReports(ctx, f); err != nil || n != int64(wantN) {
					t.Errorf("%s CountTLSRPTReports(%+v) = %d, %v; want %d", tn.name, f, n, err, wantN)
				}
			}
			for name, id := range x.reports {
				_, err := tn.t.TLSRPTReportByID(ctx, id)
				if slices.Contains(want[tn.name], name) {
					if err != nil {
						t.Errorf("%s TLSRPTReportByID(%s): %v", tn.name, name, err)
					}
				} else {
					notFound(t, fmt.Sprintf("%s TLSRPTReportByID(%s)", tn.name, name), err)
				}
			}
		}
		wantRollups := map[string]string{"operator": "a.example:4 b.example:2 u.example:4", "{A}": "a.example:4",
			"{P,A}": "a.example:4", "{B}": "b.example:2", "{}": ""}
		for _, tn := range x.allScopes {
			rows, err := tn.t.TLSRPTRollups(ctx, store.RollupQuery{GroupBy: []string{"domain"}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s:%d", r.Domain, r.Sessions))
			}
			if g := strings.Join(got, " "); g != wantRollups[tn.name] {
				t.Errorf("%s TLSRPTRollups by domain = %q, want %q", tn.name, g, wantRollups[tn.name])
			}
			if rows, _ := tn.t.TLSRPTRollups(ctx, store.RollupQuery{Domain: "b.example"}); tn.name == "{A}" && (len(rows) != 1 || rows[0].Sessions != 0) {
				t.Errorf("{A} TLSRPTRollups(b.example) = %+v, want a total of 0", rows)
			}
		}
		// Every table the rollups of all domains are read from.
		wantTotal := map[string]int64{"operator": 10, "{A}": 4, "{P,A}": 4, "{B}": 2, "{}": 0}
		for _, g := range [][]string{nil, {"result_type"}, {"day", "result_type"}, {"organization", "day"},
			{"organization", "sending_ip", "result_type"}, {"receiving_mx", "result_type"}, {"domain", "result_type"},
			{"domain", "day", "organization", "sending_ip", "receiving_mx"}} {
			for _, tn := range x.allScopes {
				for _, q := range []store.RollupQuery{{GroupBy: g}, {GroupBy: g, Since: day(1), Until: day(30)}} {
					rows, err := tn.t.TLSRPTRollups(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					var n int64
					for _, r := range rows {
						n += r.Sessions
					}
					if n != wantTotal[tn.name] {
						t.Errorf("%s TLSRPTRollups(%+v): %d sessions, want %d", tn.name, q, n, wantTotal[tn.name])
					}
				}
			}
		}
	})

	t.Run("IntakeLog", func(t *testing.T) {
		want := map[string][]string{
			"operator": {"a", "b", "ab", "u", "bad"}, "{A}": {"a", "ab"}, "{P,A}": {"a", "ab"}, "{B}": {"b", "ab"}, "{}": nil,
		}
		for _, tn := range x.allScopes {
			l, err := tn.t.IntakeLog(ctx, store.IntakeQuery{Kind: store.KindTLSRPT})
			if err != nil {
				t.Fatal(err)
			}
			var got, wantIDs []string
			for _, e := range l {
				got = append(got, fmt.Sprint(e.ReportID))
			}
			for _, name := range want[tn.name] {
				wantIDs = append([]string{fmt.Sprint(x.reports[name])}, wantIDs...) // newest first
			}
			same(t, tn.name+" IntakeLog report ids", got, wantIDs...)
		}
	})

	t.Run("DMARC", func(t *testing.T) { testDMARCIsolation(t, x, x.dmarc) })

	t.Run("Orgs", func(t *testing.T) {
		want := map[string][]string{
			"operator": {"a-customer", "b-other", "p-msp"}, "{A}": {"a-customer"}, "{P,A}": {"a-customer", "p-msp"},
			"{B}": {"b-other"}, "{}": nil,
		}
		for _, tn := range x.allScopes {
			l, err := tn.t.Orgs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range l {
				got = append(got, o.Name)
			}
			same(t, tn.name+" Orgs", got, want[tn.name]...)
			for _, o := range []*store.Org{x.p, x.a, x.b} {
				visible := slices.Contains(want[tn.name], o.Name)
				_, err := tn.t.Org(ctx, o.ID)
				_, _, lerr := tn.t.Logo(ctx, o.ID)
				_, merr := tn.t.Members(ctx, o.ID)
				_, kerr := tn.t.Tokens(ctx, o.ID)
				_, ierr := tn.t.Invitations(ctx, o.ID)
				for what, err := range map[string]error{"Org": err, "Members": merr, "Tokens": kerr, "Invitations": ierr} {
					if visible && err != nil {
						t.Errorf("%s %s(%s): %v", tn.name, what, o.Name, err)
					} else if !visible {
						notFound(t, fmt.Sprintf("%s %s(%s)", tn.name, what, o.Name), err)
					}
				}
				if !visible || o == x.p { // P has no logo
					notFound(t, fmt.Sprintf("%s Logo(%s)", tn.name, o.Name), lerr)
				} else if lerr != nil {
					t.Errorf("%s Logo(%s): %v", tn.name, o.Name, lerr)
				}
			}
		}
		// What {P,A} sees of A's rows.
		if ms, _ := x.paT.Members(ctx, x.a.ID); len(ms) != 1 || ms[0].UserID != x.ua.ID {
			t.Errorf("{P,A} Members(A) = %v, want ua", ms)
		}
		if ks, _ := x.paT.Tokens(ctx, x.a.ID); len(ks) != 1 || ks[0].Hash != "tok-a" {
			t.Errorf("{P,A} Tokens(A) = %v, want tok-a", ks)
		}
		if is, _ := x.paT.Invitations(ctx, x.a.ID); len(is) != 1 || is[0].Hash != "inv-a" {
			t.Errorf("{P,A} Invitations(A) = %v, want inv-a", is)
		}
	})

	t.Run("OrgChanges", func(t *testing.T) {
		for _, tn := range []namedTenant{{"{A}", x.aT}, {"{}", x.emptyT}} {
			notFound(t, tn.name+" CreateOrg under B", tn.t.CreateOrg(ctx, &store.Org{Name: "under-b", ParentID: x.b.ID}))
			notFound(t, tn.name+" SetBranding(B)", tn.t.SetBranding(ctx, x.b.ID, "Hacked", "", "", nil))
			notFound(t, tn.name+" SetMembership(ub, B)", tn.t.SetMembership(ctx, x.ub.ID, x.b.ID, store.RoleViewer))
			notFound(t, tn.name+" RemoveMembership(ub, B)", tn.t.RemoveMembership(ctx, x.ub.ID, x.b.ID))
			notFound(t, tn.name+" CreateToken for B", tn.t.CreateToken(ctx, &store.Token{OrgID: x.b.ID, Name: "x", Scope: store.ScopeWrite, Hash: "x-" + tn.name}))
			notFound(t, tn.name+" RevokeToken(B's)", tn.t.RevokeToken(ctx, x.tokB.ID, baseTime()))
			notFound(t, tn.name+" CreateInvitation for B", tn.t.CreateInvitation(ctx, &store.Invitation{OrgID: x.b.ID, Role: store.RoleOwner,
				Hash: "y-" + tn.name, ExpiresAt: baseTime().Add(time.Hour)}))
			notFound(t, tn.name+" DeleteInvitation(B's)", tn.t.DeleteInvitation(ctx, x.invB.ID))
			notFound(t, tn.name+" InsertCheck for B", tn.t.InsertCheck(ctx, &store.CheckRecord{OrgID: x.b.ID, Domain: "b.example"}))
		}
		// B is as it was.
		if _, err := x.s.OrgByName(ctx, "under-b"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a customer of B was created from outside: %v", err)
		}
		if o, _ := x.s.Org(ctx, x.b.ID); o == nil || o.DisplayName != "B" || o.LogoType != "image/png" {
			t.Errorf("B after refused branding = %+v", o)
		}
		if ms, _ := x.bT.Members(ctx, x.b.ID); len(ms) != 1 || ms[0].Role != store.RoleOwner {
			t.Errorf("B's members after refused changes = %v, want ub, owner", ms)
		}
		if !hasSession(t, x.s, "ses-ub") {
			t.Error("ub's session in B ended by a refused RemoveMembership")
		}
		if ks, _ := x.bT.Tokens(ctx, x.b.ID); len(ks) != 1 || !ks[0].RevokedAt.IsZero() {
			t.Errorf("B's tokens after refused changes = %+v, want tok-b only, active", ks)
		}
		if is, _ := x.bT.Invitations(ctx, x.b.ID); len(is) != 1 || is[0].ID != x.invB.ID {
			t.Errorf("B's invitations after refused changes = %+v, want inv-b only", is)
		}
		if cs, _ := x.bT.Checks(ctx, "b.example", 0); len(cs) != 1 {
			t.Errorf("B's checks after a refused InsertCheck = %v, want one", cs)
		}
		// An MSP's scope makes customers, and adds people to what it sees.
		if err := x.paT.CreateOrg(ctx, &store.Org{Name: "a-sub", ParentID: x.p.ID}); err != nil {
			t.Errorf("{P,A} CreateOrg under P: %v", err)
		}
		if err := x.aT.SetMembership(ctx, x.ub.ID, x.a.ID, store.RoleViewer); err != nil {
			t.Errorf("{A} SetMembership(ub, A): %v", err)
		}
		if err := x.aT.RemoveMembership(ctx, x.ub.ID, x.a.ID); err != nil {
			t.Errorf("{A} RemoveMembership(ub, A): %v", err)
		}
	})

	t.Run("Checks", func(t *testing.T) {
		for _, tc := range []struct {
			tn   namedTenant
			want []int64 // of a.example
		}{
			{namedTenant{"operator", x.opT}, []int64{x.checkB.ID, x.checkA.ID}}, {namedTenant{"{A}", x.aT}, []int64{x.checkA.ID}},
			{namedTenant{"{P,A}", x.paT}, []int64{x.checkA.ID}}, {namedTenant{"{B}", x.bT}, []int64{x.checkB.ID}},
			{namedTenant{"{}", x.emptyT}, nil},
		} {
			l, err := tc.tn.t.Checks(ctx, "a.example", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, c := range l {
				got = append(got, c.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s Checks(a.example) = %v, want %v", tc.tn.name, got, tc.want)
			}
			for _, c := range []*store.CheckRecord{x.checkA, x.checkB} {
				_, err := tc.tn.t.Check(ctx, c.ID)
				if slices.Contains(tc.want, c.ID) {
					if err != nil {
						t.Errorf("%s Check(%d): %v", tc.tn.name, c.ID, err)
					}
				} else {
					notFound(t, fmt.Sprintf("%s Check(%d)", tc.tn.name, c.ID), err)
				}
			}
		}
	})
}
