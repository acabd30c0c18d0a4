package auth

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// TestPrincipals: who acts where with which scope, on a real store.
func TestPrincipals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org := func(name string, parent int64) *store.Org {
		o := &store.Org{Name: name, ParentID: parent}
		if err := st.CreateOrg(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	user := func(email string, op bool, roles map[*store.Org]string) *store.User {
		u := &store.User{Email: email, PasswordHash: "x", Operator: op}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for o, r := range roles {
			if err := st.SetMembership(ctx, u.ID, o.ID, r); err != nil {
				t.Fatal(err)
			}
		}
		return u
	}
	// "aaa-customer" sorts before "msp": the owner still starts in msp.
	msp := org("msp", 0)
	cust := org("aaa-customer", msp.ID)
	other := org("other", 0)
	owner := user("owner@msp.example", false, map[*store.Org]string{msp: store.RoleOwner})
	viewer := user("viewer@msp.example", false, map[*store.Org]string{msp: store.RoleViewer})
	custUser := user("user@cust.example", false, map[*store.Org]string{cust: store.RoleAdmin})
	op := user("op@example.net", true, nil)
	nobody := user("nobody@example.net", false, nil)

	scope := func(p *Principal) []int64 { s := p.Tenant.Scope().Orgs; slices.Sort(s); return s }
	p, err := ForSession(ctx, st, owner, nil, 0)
	if err != nil || p.Org.ID != msp.ID || p.Role != store.RoleOwner || len(p.Orgs) != 2 || !slices.Equal(scope(p), []int64{msp.ID, cust.ID}) {
		t.Errorf("MSP owner: org %v role %s orgs %d scope %v, %v", p.Org, p.Role, len(p.Orgs), scope(p), err)
	}
	// Switched into the customer: its scope only, the MSP role.
	if p, err = ForSession(ctx, st, owner, nil, cust.ID); err != nil || p.Role != store.RoleOwner || !slices.Equal(scope(p), []int64{cust.ID}) {
		t.Errorf("MSP owner in the customer: %+v, %v", p, err)
	}
	if _, err = ForSession(ctx, st, owner, nil, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MSP owner into another org: %v", err)
	}
	// A viewer of the MSP does not manage its customers.
	if p, err = ForSession(ctx, st, viewer, nil, 0); err != nil || len(p.Orgs) != 1 || !slices.Equal(scope(p), []int64{msp.ID}) || p.Can(PermWrite) {
		t.Errorf("MSP viewer: orgs %d scope %v, %v", len(p.Orgs), scope(p), err)
	}
	// A customer never sees its parent.
	if p, err = ForSession(ctx, st, custUser, nil, 0); err != nil || len(p.Orgs) != 1 || !slices.Equal(scope(p), []int64{cust.ID}) {
		t.Errorf("customer user: %+v, %v", p, err)
	}
	if _, err = ForSession(ctx, st, custUser, nil, msp.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("customer into its MSP: %v", err)
	}
	if p, err = ForSession(ctx, st, op, nil, other.ID); err != nil || !p.Tenant.Scope().Operator || p.Org.ID != other.ID {
		t.Errorf("operator: %+v, %v", p, err)
	}
	if _, err = ForSession(ctx, st, nobody, nil, 0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("member of nothing: %v", err)
	}
	// Tokens: write is admin (with the MSP's customers), read is viewer.
	w := &store.Token{OrgID: msp.ID, Scope: store.ScopeWrite}
	if p, err = ForToken(ctx, st, w); err != nil || p.Role != store.RoleAdmin || !slices.Equal(scope(p), []int64{msp.ID, cust.ID}) {
		t.Errorf("write token: %+v, %v", p, err)
	}
	r := &store.Token{OrgID: msp.ID, Scope: store.ScopeRead}
	if p, err = ForToken(ctx, st, r); err != nil || p.Role != store.RoleViewer || !slices.Equal(scope(p), []int64{msp.ID}) || p.Can(PermWrite) {
		t.Errorf("read token: %+v, %v", p, err)
	}
}
