package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/store"
)

// withStore opens the store of a data directory for a look or a change
// between commands, and closes it before returning.
func withStore(t *testing.T, data string, fn func(st store.Store)) {
	t.Helper()
	st, err := store.Open(context.Background(), nil, store.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	fn(st)
}

// TestDomainsAddOrganization: domains add hosts for the only organization,
// creates "default" when there is none, and refuses to guess among
// several.
func TestDomainsAddOrganization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	mustMoat(t, "domains", "add", "a.test", "--mx", "mx.a.test", "--data", data)
	withStore(t, data, func(st store.Store) {
		o, err := st.OrgByName(ctx, defaultOrg)
		if err != nil || o.DisplayName != "Default" {
			t.Fatalf("organization default = %+v, %v", o, err)
		}
		if d, err := st.Domain(ctx, "a.test"); err != nil || d.OrgID != o.ID {
			t.Errorf("a.test = %+v, %v; want it in default (%d)", d, err, o.ID)
		}
		if err := st.CreateOrg(ctx, &store.Org{Name: "other"}); err != nil {
			t.Fatal(err)
		}
	})
	code, _, errs := moat(t, "domains", "add", "b.test", "--mx", "mx.b.test", "--data", data)
	if code != exitError || !strings.Contains(errs, "2 organizations (default, other)") {
		t.Errorf("domains add with two organizations: exit %d, stderr %q", code, errs)
	}
	withStore(t, data, func(st store.Store) {
		if _, err := st.Domain(ctx, "b.test"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("b.test was added: %v", err)
		}
	})

	// The only organization, whatever its name.
	data = t.TempDir()
	var acme int64
	withStore(t, data, func(st store.Store) {
		o := &store.Org{Name: "acme"}
		if err := st.CreateOrg(ctx, o); err != nil {
			t.Fatal(err)
		}
		acme = o.ID
	})
	mustMoat(t, "domains", "add", "c.test", "--mx", "mx.c.test", "--data", data)
	withStore(t, data, func(st store.Store) {
		if d, err := st.Domain(ctx, "c.test"); err != nil || d.OrgID != acme {
			t.Errorf("c.test = %+v, %v; want it in acme (%d)", d, err, acme)
		}
		if orgs, _ := st.Orgs(ctx); len(orgs) != 1 {
			t.Errorf("organizations = %v, want acme only", orgs)
		}
	})
}
