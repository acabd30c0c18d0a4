package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// The accounts part of the suite: store.AccountStore, and the Tenant
// methods on organizations, members, tokens and invitations (within one
// scope; the isolation between scopes is tenant.go's).

// user creates a user with email and returns it.
func user(t *testing.T, s store.Store, email string) *store.User {
	t.Helper()
	u := &store.User{Email: email, PasswordHash: "argon2id of " + email} // the store does not interpret it
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// newOrg creates an organization and returns it.
func newOrg(t *testing.T, s store.Store, name string, parent int64) *store.Org {
	t.Helper()
	o := &store.Org{Name: name, DisplayName: strings.ToUpper(name) + " Inc.", ParentID: parent}
	if err := s.CreateOrg(t.Context(), o); err != nil {
		t.Fatalf("CreateOrg(%s): %v", name, err)
	}
	return o
}

// session creates a session of u looking at org, expiring at expires.
func session(t *testing.T, s store.Store, id string, u *store.User, org int64, expires time.Time) *store.Session {
	t.Helper()
	ses := &store.Session{ID: id, UserID: u.ID, OrgID: org, CreatedAt: baseTime(), LastSeen: baseTime(),
		ExpiresAt: expires, IP: "192.0.2.7", UserAgent: "Mozilla/5.0"}
	if err := s.CreateSession(t.Context(), ses); err != nil {
		t.Fatalf("CreateSession(%s): %v", id, err)
	}
	return ses
}

// hasSession reports whether session id exists and is unexpired at
// baseTime.
func hasSession(t *testing.T, s store.Store, id string) bool {
	t.Helper()
	_, err := s.SessionByID(t.Context(), id, baseTime())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SessionByID(%s): %v", id, err)
	}
	return err == nil
}

func testOrgs(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	if l, err := s.Orgs(ctx); err != nil || len(l) != 0 {
		t.Fatalf("Orgs of an empty store = %v, %v", l, err)
	}
	msp := &store.Org{Name: "msp", Accent: "#0B7285", CreatedAt: baseTime()}
	if err := s.CreateOrg(ctx, msp); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if msp.ID == 0 || msp.DisplayName != "msp" || msp.Accent != "#0b7285" {
		t.Errorf("CreateOrg filled in %+v: want an id, the name as display name, the accent lower-case", msp)
	}
	checkTime(t, "CreatedAt", msp.CreatedAt, baseTime())
	acme := &store.Org{Name: "acme", DisplayName: "ACME Corp.", ParentID: msp.ID}
	if err := s.CreateOrg(ctx, acme); err != nil {
		t.Fatalf("CreateOrg(acme): %v", err)
	}
	if acme.CreatedAt.IsZero() {
		t.Error("CreateOrg left CreatedAt zero")
	}
	for _, get := range []func() (*store.Org, error){
		func() (*store.Org, error) { return s.Org(ctx, acme.ID) },
		func() (*store.Org, error) { return s.OrgByName(ctx, "acme") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("Org: %v", err)
		}
		if got.ID != acme.ID || got.Name != "acme" || got.DisplayName != "ACME Corp." || got.ParentID != msp.ID ||
			got.Accent != "" || got.LogoType != "" {
			t.Errorf("Org = %+v, want %+v", got, acme)
		}
		checkTime(t, "Org CreatedAt", got.CreatedAt, acme.CreatedAt)
	}
	if got, err := s.Org(ctx, msp.ID); err != nil || got.ParentID != 0 {
		t.Errorf("Org(msp) = %+v, %v; want ParentID 0", got, err)
	}
	l, err := s.Orgs(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "acme" || l[1].Name != "msp" {
		t.Errorf("Orgs = %v, %v; want acme, msp", l, err)
	}

	_, err = s.Org(ctx, acme.ID+100)
	wantErr(t, "Org(missing)", err, store.ErrNotFound, "organization")
	_, err = s.OrgByName(ctx, "missing")
	wantErr(t, "OrgByName(missing)", err, store.ErrNotFound, "missing")
	err = s.CreateOrg(ctx, &store.Org{Name: "acme"})
	wantErr(t, "CreateOrg(taken)", err, store.ErrExists, "acme")
	err = s.CreateOrg(ctx, &store.Org{Name: "orphan", ParentID: acme.ID + 100})
	wantErr(t, "CreateOrg(unknown parent)", err, store.ErrNotFound, "parent")
	for _, o := range []store.Org{
		{Name: ""}, {Name: "ACME"}, {Name: "a_b"}, {Name: "a.b"}, {Name: strings.Repeat("a", 64)},
		{Name: "x", Accent: "red"}, {Name: "x", Accent: "#12345g"}, {Name: "x", LogoType: "image/png"},
		{Name: "x", ParentID: -1},
	} {
		err := s.CreateOrg(ctx, &o)
		wantErr(t, fmt.Sprintf("CreateOrg(%+v)", o), err, store.ErrInvalidArg, "")
	}
	if l, _ := s.Orgs(ctx); len(l) != 2 {
		t.Errorf("refused creates left %d organizations, want 2", len(l))
	}

	// An MSP creates customers: the parent must be in its scope.
	mspT := s.Scoped(store.Scope{Orgs: []int64{msp.ID}})
	cust := &store.Org{Name: "customer", ParentID: msp.ID}
	if err := mspT.CreateOrg(ctx, cust); err != nil || cust.ID == 0 {
		t.Fatalf("tenant CreateOrg = %v (id %d)", err, cust.ID)
	}
	err = mspT.CreateOrg(ctx, &store.Org{Name: "top"})
	wantErr(t, "tenant CreateOrg without a parent", err, store.ErrInvalidArg, "parent")
	err = mspT.CreateOrg(ctx, &store.Org{Name: "sub", ParentID: acme.ID})
	wantErr(t, "tenant CreateOrg under an organization outside", err, store.ErrNotFound, "")
	if _, err := s.OrgByName(ctx, "sub"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused customer exists: %v", err)
	}
}

func testBranding(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	_, _, err := ten.Logo(ctx, o.ID)
	wantErr(t, "Logo before one is set", err, store.ErrNotFound, "logo")

	logo := bytes.Repeat([]byte("\x89PNG\r\n\x1a\n"), 100)
	if err := ten.SetBranding(ctx, o.ID, "ACME Corporation", "#AB12CD", "image/png", logo); err != nil {
		t.Fatalf("SetBranding: %v", err)
	}
	typ, got, err := ten.Logo(ctx, o.ID)
	if err != nil || typ != "image/png" || !bytes.Equal(got, logo) {
		t.Errorf("Logo = %q, %d bytes, %v; want image/png, %d bytes", typ, len(got), err, len(logo))
	}
	g, err := ten.Org(ctx, o.ID)
	if err != nil || g.DisplayName != "ACME Corporation" || g.Accent != "#ab12cd" || g.LogoType != "image/png" {
		t.Errorf("Org after SetBranding = %+v, %v", g, err)
	}

	for _, tc := range []struct {
		name, display, accent, typ string
		logo                       []byte
	}{
		{"empty display name", " ", "", "", nil},
		{"bad accent", "A", "#abc", "", nil},
		{"logo without type", "A", "", "", logo},
		{"type without logo", "A", "", "image/png", nil},
		{"not an image", "A", "", "text/html", logo},
		{"parameters", "A", "", "image/svg+xml; charset=utf-8", logo},
		{"too large", "A", "", "image/png", make([]byte, 1<<20+1)},
	} {
		err := ten.SetBranding(ctx, o.ID, tc.display, tc.accent, tc.typ, tc.logo)
		wantErr(t, "SetBranding "+tc.name, err, store.ErrInvalidArg, "")
	}
	err = ten.SetBranding(ctx, o.ID+100, "X", "", "", nil)
	wantErr(t, "SetBranding(missing)", err, store.ErrNotFound, "organization")

	// No logo: removed.
	if err := ten.SetBranding(ctx, o.ID, "ACME", "", "", nil); err != nil {
		t.Fatalf("SetBranding without a logo: %v", err)
	}
	_, _, err = ten.Logo(ctx, o.ID)
	wantErr(t, "Logo after removal", err, store.ErrNotFound, "logo")
	if g, _ := s.Org(ctx, o.ID); g.LogoType != "" || g.Accent != "" || g.DisplayName != "ACME" {
		t.Errorf("Org after removal = %+v", g)
	}
}

func testUsers(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	u := &store.User{Email: "  Alice@Example.COM ", PasswordHash: "hash1", Operator: true, CreatedAt: baseTime(),
		PasswordChangedAt: baseTime()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == 0 || u.Email != "alice@example.com" {
		t.Errorf("CreateUser filled in %+v: want an id and the email lower-case", u)
	}
	checkTime(t, "PasswordChangedAt", u.PasswordChangedAt, baseTime())
	bob := user(t, s, "bob@example.com")
	for _, get := range []func() (*store.User, error){
		func() (*store.User, error) { return s.User(ctx, u.ID) },
		func() (*store.User, error) { return s.UserByEmail(ctx, "ALICE@example.com") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		if got.ID != u.ID || got.Email != u.Email || got.PasswordHash != "hash1" || !got.Operator {
			t.Errorf("User = %+v, want %+v", got, u)
		}
		checkTime(t, "User CreatedAt", got.CreatedAt, baseTime())
		checkTime(t, "User PasswordChangedAt", got.PasswordChangedAt, baseTime())
	}
	if got, err := s.User(ctx, bob.ID); err != nil || got.Operator {
		t.Errorf("User(bob) = %+v, %v; want not an operator", got, err)
	}
	l, err := s.Users(ctx)
	if err != nil || len(l) != 2 || l[0].Email != "alice@example.com" || l[1].Email != "bob@example.com" {
		t.Errorf("Users = %v, %v", l, err)
	}
	err = s.CreateUser(ctx, &store.User{Email: "ALICE@EXAMPLE.COM"})
	wantErr(t, "CreateUser(taken, other case)", err, store.ErrExists, "alice@example.com")
	for _, e := range []string{"", "alice", "  "} {
		err = s.CreateUser(ctx, &store.User{Email: e})
		wantErr(t, fmt.Sprintf("CreateUser(%q)", e), err, store.ErrInvalidArg, "")
	}
	_, err = s.User(ctx, bob.ID+100)
	wantErr(t, "User(missing)", err, store.ErrNotFound, "user")
	_, err = s.UserByEmail(ctx, "carol@example.com")
	wantErr(t, "UserByEmail(missing)", err, store.ErrNotFound, "carol@example.com")

	// Deleting a user takes its memberships and sessions; what it created
	// stays, without its creator.
	o := newOrg(t, s, "acme", 0)
	if err := s.SetMembership(ctx, bob.ID, o.ID, store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	session(t, s, "bob-session", bob, o.ID, baseTime().Add(time.Hour))
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	tok := &store.Token{OrgID: o.ID, Name: "ci", Scope: store.ScopeRead, Hash: "tokhash", Prefix: "moat_ab", CreatedBy: bob.ID}
	if err := ten.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	inv := &store.Invitation{OrgID: o.ID, Email: "carol@example.com", Role: store.RoleViewer, Hash: "invhash",
		CreatedBy: bob.ID, ExpiresAt: baseTime().Add(time.Hour)}
	if err := ten.CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.User(ctx, bob.ID)
	wantErr(t, "User after DeleteUser", err, store.ErrNotFound, "user")
	if ms, err := ten.Members(ctx, o.ID); err != nil || len(ms) != 0 {
		t.Errorf("Members after DeleteUser = %v, %v; want none", ms, err)
	}
	if hasSession(t, s, "bob-session") {
		t.Error("the deleted user's session remains")
	}
	if k, err := s.TokenByHash(ctx, "tokhash"); err != nil || k.CreatedBy != 0 {
		t.Errorf("token of the deleted user = %+v, %v; want it kept with CreatedBy 0", k, err)
	}
	if i, err := s.InvitationByHash(ctx, "invhash"); err != nil || i.CreatedBy != 0 {
		t.Errorf("invitation of the deleted user = %+v, %v; want it kept with CreatedBy 0", i, err)
	}
	err = s.DeleteUser(ctx, bob.ID)
	wantErr(t, "second DeleteUser", err, store.ErrNotFound, "user")
}

func testMemberships(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	acme, beta := newOrg(t, s, "acme", 0), newOrg(t, s, "beta", 0)
	alice, bob := user(t, s, "alice@example.com"), user(t, s, "bob@example.com")
	set := func(u *store.User, o *store.Org, role string) {
		t.Helper()
		if err := s.SetMembership(ctx, u.ID, o.ID, role); err != nil {
			t.Fatalf("SetMembership(%s, %s, %s): %v", u.Email, o.Name, role, err)
		}
	}
	set(alice, beta, store.RoleViewer)
	set(alice, acme, store.RoleViewer)
	set(alice, acme, store.RoleOwner) // a change of role
	set(bob, acme, store.RoleAdmin)

	ms, err := s.Memberships(ctx, alice.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Memberships(alice) = %v, %v; want 2", ms, err)
	}
	if m := ms[0]; m.OrgName != "acme" || m.OrgID != acme.ID || m.Role != store.RoleOwner || m.UserID != alice.ID ||
		m.Email != "alice@example.com" || m.CreatedAt.IsZero() {
		t.Errorf("Memberships(alice)[0] = %+v, want owner of acme", m)
	}
	if m := ms[1]; m.OrgName != "beta" || m.Role != store.RoleViewer {
		t.Errorf("Memberships(alice)[1] = %+v, want viewer of beta", m)
	}
	if ms, err := s.Memberships(ctx, bob.ID+100); err != nil || len(ms) != 0 {
		t.Errorf("Memberships(missing user) = %v, %v; want none", ms, err)
	}
	ten := s.Scoped(store.Scope{Orgs: []int64{acme.ID}})
	ms, err = ten.Members(ctx, acme.ID)
	if err != nil || len(ms) != 2 || ms[0].Email != "alice@example.com" || ms[1].Email != "bob@example.com" ||
		ms[1].Role != store.RoleAdmin || ms[1].OrgName != "acme" {
		t.Errorf("Members(acme) = %v, %v; want alice (owner), bob (admin)", ms, err)
	}

	err = s.SetMembership(ctx, alice.ID, acme.ID, "root")
	wantErr(t, "SetMembership(unknown role)", err, store.ErrInvalidArg, "root")
	err = s.SetMembership(ctx, bob.ID+100, acme.ID, store.RoleViewer)
	wantErr(t, "SetMembership(missing user)", err, store.ErrNotFound, "")
	err = s.SetMembership(ctx, alice.ID, beta.ID+100, store.RoleViewer)
	wantErr(t, "SetMembership(missing organization)", err, store.ErrNotFound, "")

	// Taking bob out of acme ends his sessions there, and only there.
	set(bob, beta, store.RoleViewer)
	session(t, s, "bob-acme", bob, acme.ID, baseTime().Add(time.Hour))
	session(t, s, "bob-beta", bob, beta.ID, baseTime().Add(time.Hour))
	session(t, s, "alice-acme", alice, acme.ID, baseTime().Add(time.Hour))
	if err := ten.RemoveMembership(ctx, bob.ID, acme.ID); err != nil {
		t.Fatalf("RemoveMembership: %v", err)
	}
	if hasSession(t, s, "bob-acme") || !hasSession(t, s, "bob-beta") || !hasSession(t, s, "alice-acme") {
		t.Error("RemoveMembership: want bob's session in acme ended, his session in beta and alice's kept")
	}
	if ms, _ := ten.Members(ctx, acme.ID); len(ms) != 1 {
		t.Errorf("Members after RemoveMembership = %v, want alice only", ms)
	}
	err = ten.RemoveMembership(ctx, bob.ID, acme.ID)
	wantErr(t, "second RemoveMembership", err, store.ErrNotFound, "membership")
}

func testSessions(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	u := user(t, s, "alice@example.com")
	exp := baseTime().Add(time.Hour)
	ses := session(t, s, "s1", u, 0, exp)
	got, err := s.SessionByID(ctx, "s1", baseTime())
	if err != nil {
		t.Fatalf("SessionByID: %v", err)
	}
	if got.ID != "s1" || got.UserID != u.ID || got.OrgID != 0 || got.IP != "192.0.2.7" || got.UserAgent != "Mozilla/5.0" {
		t.Errorf("SessionByID = %+v, want %+v", got, ses)
	}
	checkTime(t, "ExpiresAt", got.ExpiresAt, exp)
	checkTime(t, "LastSeen", got.LastSeen, baseTime())
	checkTime(t, "CreatedAt", got.CreatedAt, baseTime())

	// Expiry: valid before, gone at and after.
	if _, err := s.SessionByID(ctx, "s1", exp.Add(-time.Microsecond)); err != nil {
		t.Errorf("SessionByID just before expiry: %v", err)
	}
	_, err = s.SessionByID(ctx, "s1", exp)
	wantErr(t, "SessionByID at expiry", err, store.ErrNotFound, "session")

	// Sliding expiry and the current organization.
	seen, exp2 := baseTime().Add(30*time.Minute), baseTime().Add(90*time.Minute)
	if err := s.TouchSession(ctx, "s1", o.ID, seen, exp2); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	got, err = s.SessionByID(ctx, "s1", exp.Add(time.Minute))
	if err != nil || got.OrgID != o.ID {
		t.Fatalf("SessionByID after TouchSession = %+v, %v; want it alive in acme", got, err)
	}
	checkTime(t, "LastSeen after touch", got.LastSeen, seen)
	checkTime(t, "ExpiresAt after touch", got.ExpiresAt, exp2)
	err = s.TouchSession(ctx, "s1", o.ID, exp2, exp2.Add(time.Hour))
	wantErr(t, "TouchSession of an expired session", err, store.ErrNotFound, "session")
	err = s.TouchSession(ctx, "missing", o.ID, seen, exp2)
	wantErr(t, "TouchSession(missing)", err, store.ErrNotFound, "session")

	err = s.CreateSession(ctx, &store.Session{ID: "s1", UserID: u.ID, ExpiresAt: exp})
	wantErr(t, "CreateSession(taken id)", err, store.ErrExists, "session")
	err = s.CreateSession(ctx, &store.Session{ID: "s2", UserID: u.ID + 100, ExpiresAt: exp})
	wantErr(t, "CreateSession(missing user)", err, store.ErrNotFound, "user")
	err = s.CreateSession(ctx, &store.Session{ID: "s2", UserID: u.ID, OrgID: o.ID + 100, ExpiresAt: exp})
	wantErr(t, "CreateSession(missing organization)", err, store.ErrNotFound, "organization")
	for _, bad := range []store.Session{{UserID: u.ID, ExpiresAt: exp}, {ID: "s3", UserID: u.ID}} {
		err = s.CreateSession(ctx, &bad)
		wantErr(t, fmt.Sprintf("CreateSession(%+v)", bad), err, store.ErrInvalidArg, "")
	}

	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.SessionByID(ctx, "s1", baseTime())
	wantErr(t, "SessionByID after DeleteSession", err, store.ErrNotFound, "session")
	err = s.DeleteSession(ctx, "s1")
	wantErr(t, "second DeleteSession", err, store.ErrNotFound, "session")
}

func testSetPassword(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	alice, bob := user(t, s, "alice@example.com"), user(t, s, "bob@example.com")
	exp := baseTime().Add(time.Hour)
	for _, id := range []string{"a1", "a2", "a3"} {
		session(t, s, id, alice, 0, exp)
	}
	session(t, s, "b1", bob, 0, exp)
	before, err := s.User(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, alice.ID, "hash2", "a2"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	after, err := s.User(ctx, alice.ID)
	if err != nil || after.PasswordHash != "hash2" || !after.PasswordChangedAt.After(before.PasswordChangedAt) {
		t.Errorf("User after SetPassword = %+v, %v; want hash2 and a later PasswordChangedAt than %v", after, err, before.PasswordChangedAt)
	}
	for id, want := range map[string]bool{"a1": false, "a2": true, "a3": false, "b1": true} {
		if got := hasSession(t, s, id); got != want {
			t.Errorf("session %s after SetPassword keeping a2: exists %v, want %v", id, got, want)
		}
	}
	if err := s.SetPassword(ctx, alice.ID, "hash3", ""); err != nil {
		t.Fatalf("SetPassword keeping none: %v", err)
	}
	if hasSession(t, s, "a2") || !hasSession(t, s, "b1") {
		t.Error("SetPassword keeping no session: want alice's sessions gone, bob's kept")
	}
	err = s.SetPassword(ctx, bob.ID+100, "x", "")
	wantErr(t, "SetPassword(missing user)", err, store.ErrNotFound, "user")
}

func testTokens(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	u := user(t, s, "alice@example.com")
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	if l, err := ten.Tokens(ctx, o.ID); err != nil || len(l) != 0 {
		t.Fatalf("Tokens of a new organization = %v, %v", l, err)
	}
	k1 := &store.Token{OrgID: o.ID, Name: "deploy", Scope: store.ScopeWrite, Hash: "h1", Prefix: "moat_1a", CreatedBy: u.ID,
		CreatedAt: baseTime()}
	k2 := &store.Token{OrgID: o.ID, Name: "cli", Scope: store.ScopeRead, Hash: "h2", Prefix: "moat_2b", CreatedAt: baseTime().Add(time.Minute)}
	for _, k := range []*store.Token{k1, k2} {
		if err := ten.CreateToken(ctx, k); err != nil || k.ID == 0 {
			t.Fatalf("CreateToken(%s) = %v (id %d)", k.Name, err, k.ID)
		}
	}
	got, err := s.TokenByHash(ctx, "h1")
	if err != nil || got.ID != k1.ID || got.OrgID != o.ID || got.Name != "deploy" || got.Scope != store.ScopeWrite ||
		got.Prefix != "moat_1a" || got.CreatedBy != u.ID || !got.LastUsed.IsZero() || !got.RevokedAt.IsZero() {
		t.Errorf("TokenByHash = %+v, %v; want %+v", got, err, k1)
	}
	used := baseTime().Add(time.Hour)
	if err := s.TouchToken(ctx, k1.ID, used); err != nil {
		t.Fatalf("TouchToken: %v", err)
	}
	if got, err := s.TokenByHash(ctx, "h1"); err != nil {
		t.Errorf("TokenByHash after TouchToken: %v", err)
	} else {
		checkTime(t, "LastUsed after TouchToken", got.LastUsed, used)
	}
	err = s.TouchToken(ctx, k2.ID+100, used)
	wantErr(t, "TouchToken(missing)", err, store.ErrNotFound, "token")

	revoked := baseTime().Add(2 * time.Hour)
	if err := ten.RevokeToken(ctx, k1.ID, revoked); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	_, err = s.TokenByHash(ctx, "h1")
	wantErr(t, "TokenByHash of a revoked token", err, store.ErrNotFound, "token")
	if err := ten.RevokeToken(ctx, k1.ID, revoked.Add(time.Hour)); err != nil {
		t.Errorf("second RevokeToken: %v", err)
	}
	l, err := ten.Tokens(ctx, o.ID)
	if err != nil || len(l) != 2 || l[0].Name != "cli" || l[1].Name != "deploy" {
		t.Fatalf("Tokens = %v, %v; want cli, deploy (newest first, revoked included)", l, err)
	}
	checkTime(t, "RevokedAt", l[1].RevokedAt, revoked)
	checkTime(t, "LastUsed", l[1].LastUsed, used)
	if !l[0].RevokedAt.IsZero() || l[0].CreatedBy != 0 {
		t.Errorf("Tokens[0] = %+v: want active, made by the CLI", l[0])
	}
	err = ten.RevokeToken(ctx, k2.ID+100, revoked)
	wantErr(t, "RevokeToken(missing)", err, store.ErrNotFound, "token")

	err = ten.CreateToken(ctx, &store.Token{OrgID: o.ID, Name: "again", Scope: store.ScopeRead, Hash: "h2"})
	wantErr(t, "CreateToken(taken hash)", err, store.ErrExists, "")
	for _, bad := range []store.Token{
		{OrgID: o.ID, Name: "", Scope: store.ScopeRead, Hash: "x"},
		{OrgID: o.ID, Name: "x", Scope: "admin", Hash: "x"},
		{OrgID: o.ID, Name: "x", Scope: store.ScopeRead},
		{Name: "x", Scope: store.ScopeRead, Hash: "x"},
	} {
		err = ten.CreateToken(ctx, &bad)
		wantErr(t, fmt.Sprintf("CreateToken(%+v)", bad), err, store.ErrInvalidArg, "")
	}
	err = s.Scoped(store.Scope{Operator: true}).CreateToken(ctx, &store.Token{OrgID: o.ID + 100, Name: "x", Scope: store.ScopeRead, Hash: "x"})
	wantErr(t, "CreateToken(missing organization)", err, store.ErrNotFound, "organization")
	_, err = ten.Tokens(ctx, o.ID+100)
	wantErr(t, "Tokens(missing organization)", err, store.ErrNotFound, "organization")
}

func testInvitations(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	owner, carol := user(t, s, "owner@example.com"), user(t, s, "carol@example.com")
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	exp := baseTime().Add(7 * 24 * time.Hour)
	inv := &store.Invitation{OrgID: o.ID, Email: "Carol@Example.com", Role: store.RoleAdmin, Hash: "i1", CreatedBy: owner.ID,
		CreatedAt: baseTime(), ExpiresAt: exp}
	if err := ten.CreateInvitation(ctx, inv); err != nil || inv.ID == 0 || inv.Email != "carol@example.com" {
		t.Fatalf("CreateInvitation = %v (%+v)", err, inv)
	}
	late := &store.Invitation{OrgID: o.ID, Role: store.RoleViewer, Hash: "i2", CreatedAt: baseTime().Add(time.Minute), ExpiresAt: baseTime().Add(time.Hour)}
	if err := ten.CreateInvitation(ctx, late); err != nil {
		t.Fatal(err)
	}
	l, err := ten.Invitations(ctx, o.ID)
	if err != nil || len(l) != 2 || l[0].Hash != "i2" || l[1].Hash != "i1" {
		t.Fatalf("Invitations = %v, %v; want i2, i1", l, err)
	}
	got, err := s.InvitationByHash(ctx, "i1")
	if err != nil || got.ID != inv.ID || got.OrgID != o.ID || got.Role != store.RoleAdmin || got.CreatedBy != owner.ID ||
		!got.AcceptedAt.IsZero() || got.AcceptedBy != 0 {
		t.Errorf("InvitationByHash = %+v, %v", got, err)
	}
	checkTime(t, "ExpiresAt", got.ExpiresAt, exp)

	// Accepted once, not twice, not after expiry.
	at := baseTime().Add(time.Hour)
	acc, err := s.AcceptInvitation(ctx, "i1", carol.ID, at)
	if err != nil || acc.ID != inv.ID || acc.AcceptedBy != carol.ID {
		t.Fatalf("AcceptInvitation = %+v, %v", acc, err)
	}
	checkTime(t, "AcceptedAt", acc.AcceptedAt, at)
	if ms, _ := s.Memberships(ctx, carol.ID); len(ms) != 1 || ms[0].OrgID != o.ID || ms[0].Role != store.RoleAdmin {
		t.Errorf("Memberships after AcceptInvitation = %v, want admin of acme", ms)
	}
	_, err = s.AcceptInvitation(ctx, "i1", owner.ID, at)
	wantErr(t, "second AcceptInvitation", err, store.ErrNotFound, "invitation")
	_, err = s.AcceptInvitation(ctx, "i2", owner.ID, baseTime().Add(time.Hour))
	wantErr(t, "AcceptInvitation at expiry", err, store.ErrNotFound, "invitation")
	_, err = s.AcceptInvitation(ctx, "missing", owner.ID, at)
	wantErr(t, "AcceptInvitation(missing)", err, store.ErrNotFound, "invitation")
	if got, _ := s.InvitationByHash(ctx, "i1"); got == nil || got.AcceptedBy != carol.ID {
		t.Errorf("InvitationByHash after acceptance = %+v: want it found, accepted by carol", got)
	}
	if l, _ := ten.Invitations(ctx, o.ID); len(l) != 1 || l[0].Hash != "i2" {
		t.Errorf("Invitations after acceptance = %v, want the open i2 (expired, still listed)", l)
	}

	// A member keeps the stronger role.
	for _, tc := range []struct{ hash, role, want string }{{"v", store.RoleViewer, store.RoleAdmin}, {"o", store.RoleOwner, store.RoleOwner}} {
		i := &store.Invitation{OrgID: o.ID, Role: tc.role, Hash: tc.hash, ExpiresAt: exp}
		if err := ten.CreateInvitation(ctx, i); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcceptInvitation(ctx, tc.hash, carol.ID, at); err != nil {
			t.Fatal(err)
		}
		if ms, _ := s.Memberships(ctx, carol.ID); len(ms) != 1 || ms[0].Role != tc.want {
			t.Errorf("after accepting a %s invitation: memberships %v, want role %s", tc.role, ms, tc.want)
		}
	}
	i3 := &store.Invitation{OrgID: o.ID, Role: store.RoleViewer, Hash: "i3", ExpiresAt: exp}
	if err := ten.CreateInvitation(ctx, i3); err != nil {
		t.Fatal(err)
	}
	_, err = s.AcceptInvitation(ctx, "i3", carol.ID+100, at)
	wantErr(t, "AcceptInvitation by a missing user", err, store.ErrNotFound, "user")
	if got, _ := s.InvitationByHash(ctx, "i3"); got == nil || !got.AcceptedAt.IsZero() {
		t.Errorf("invitation after a refused acceptance = %+v, want open", got)
	}

	// Withdrawn: gone; an accepted one cannot be.
	if err := ten.DeleteInvitation(ctx, i3.ID); err != nil {
		t.Fatalf("DeleteInvitation: %v", err)
	}
	_, err = s.InvitationByHash(ctx, "i3")
	wantErr(t, "InvitationByHash after DeleteInvitation", err, store.ErrNotFound, "invitation")
	err = ten.DeleteInvitation(ctx, i3.ID)
	wantErr(t, "second DeleteInvitation", err, store.ErrNotFound, "invitation")
	err = ten.DeleteInvitation(ctx, inv.ID)
	wantErr(t, "DeleteInvitation of an accepted one", err, store.ErrNotFound, "invitation")

	err = ten.CreateInvitation(ctx, &store.Invitation{OrgID: o.ID, Role: store.RoleViewer, Hash: "i2", ExpiresAt: exp})
	wantErr(t, "CreateInvitation(taken hash)", err, store.ErrExists, "")
	for _, bad := range []store.Invitation{
		{OrgID: o.ID, Role: "root", Hash: "x", ExpiresAt: exp},
		{OrgID: o.ID, Role: store.RoleViewer, ExpiresAt: exp},
		{OrgID: o.ID, Role: store.RoleViewer, Hash: "x"},
		{Role: store.RoleViewer, Hash: "x", ExpiresAt: exp},
	} {
		err = ten.CreateInvitation(ctx, &bad)
		wantErr(t, fmt.Sprintf("CreateInvitation(%+v)", bad), err, store.ErrInvalidArg, "")
	}
}

// testAcceptInvitationConcurrent: of users accepting one invitation at
// once, through two store instances, exactly one succeeds.
func testAcceptInvitationConcurrent(t *testing.T, fresh func(t *testing.T) store.Options) {
	opts := fresh(t)
	stores := []store.Store{open(t, opts), open(t, opts)}
	s := stores[0]
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	const n = 8
	users := make([]*store.User, n)
	for i := range users {
		users[i] = user(t, s, fmt.Sprintf("u%d@example.com", i))
	}
	inv := &store.Invitation{OrgID: o.ID, Role: store.RoleAdmin, Hash: "once", ExpiresAt: baseTime().Add(time.Hour)}
	if err := s.Scoped(store.Scope{Operator: true}).CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []int64
		errs []error
	)
	start := make(chan struct{})
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := stores[i%2].AcceptInvitation(ctx, "once", u.ID, baseTime())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, u.ID)
			case !errors.Is(err, store.ErrNotFound):
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 || len(won) != 1 {
		t.Fatalf("concurrent AcceptInvitation: %d succeeded (want 1), errors %v", len(won), errs)
	}
	ms, err := s.Scoped(store.Scope{Orgs: []int64{o.ID}}).Members(ctx, o.ID)
	if err != nil || len(ms) != 1 || ms[0].UserID != won[0] {
		t.Errorf("Members = %v, %v; want only the winner %d", ms, err, won[0])
	}
	if got, _ := s.InvitationByHash(ctx, "once"); got == nil || got.AcceptedBy != won[0] {
		t.Errorf("invitation = %+v, want accepted by %d", got, won[0])
	}
}
