package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

func testCreateGet(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	d, v := newDomain("example.com")
	d.OrgID = testOrg(t, s)
	want, wantV := *d, *v
	if err := s.CreateDomain(ctx, d, v); err != nil {
		t.Fatalf("CreateDomain: %v", err)
	}
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, &want)

	vs, err := s.PolicyVersions(ctx, "example.com")
	if err != nil {
		t.Fatalf("PolicyVersions: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("PolicyVersions: %d versions, want 1", len(vs))
	}
	checkVersion(t, vs[0], &wantV)

	// Empty lists come back empty, an IDN A-label as it was.
	d2, v2 := newDomain("xn--bcher-kva.example")
	d2.OrgID = d.OrgID
	d2.Mode, d2.MX, d2.RUA = "none", nil, nil
	v2.Mode, v2.MX, v2.Policy = "none", nil, "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"
	if err := s.CreateDomain(ctx, d2, v2); err != nil {
		t.Fatalf("CreateDomain(%s): %v", d2.Name, err)
	}
	got, err = s.Domain(ctx, d2.Name)
	if err != nil {
		t.Fatalf("Domain(%s): %v", d2.Name, err)
	}
	if len(got.MX) != 0 || len(got.RUA) != 0 || got.Mode != "none" {
		t.Errorf("Domain(%s) = %+v, want mode none and no MX, no RUA", d2.Name, *got)
	}
	vs, err = s.PolicyVersions(ctx, d2.Name)
	if err != nil || len(vs) != 1 || vs[0].Policy != v2.Policy || len(vs[0].MX) != 0 {
		t.Errorf("PolicyVersions(%s) = %v, %v; want one version with policy %q", d2.Name, vs, err, v2.Policy)
	}

	_, err = s.Domain(ctx, "missing.example")
	wantErr(t, "Domain(missing)", err, store.ErrNotFound, "missing.example")
	_, err = s.PolicyVersions(ctx, "missing.example")
	wantErr(t, "PolicyVersions(missing)", err, store.ErrNotFound, "missing.example")
}

func testCreateExists(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	first := create(t, s, "example.com")
	n := serial(t, s)

	d, v := newDomain("example.com")
	d.OrgID = first.OrgID
	d.Mode, v.Mode = "enforce", "enforce"
	d.PolicyID, v.PolicyID = "other", "other"
	err := s.CreateDomain(ctx, d, v)
	wantErr(t, "second CreateDomain", err, store.ErrExists, "example.com")

	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, first)
	if vs, err := s.PolicyVersions(ctx, "example.com"); err != nil || len(vs) != 1 || vs[0].PolicyID != first.PolicyID {
		t.Errorf("PolicyVersions after failed create = %v, %v; want only the first version", vs, err)
	}
	if got := serial(t, s); got != n {
		t.Errorf("Serial after failed create = %d, want %d (unchanged)", got, n)
	}
}

func testCreateInvalid(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	n := serial(t, s)
	tests := []struct {
		name string
		edit func(d *store.Domain, v *store.PolicyVersion)
	}{
		{"first version not 1", func(d *store.Domain, v *store.PolicyVersion) { d.Version, v.Version = 2, 2 }},
		{"version for another domain", func(d *store.Domain, v *store.PolicyVersion) { v.Domain = "other.example" }},
		{"policy id differs", func(d *store.Domain, v *store.PolicyVersion) { v.PolicyID = "other" }},
		{"upper-case name", func(d *store.Domain, v *store.PolicyVersion) { d.Name, v.Domain = "Example.com", "Example.com" }},
		{"trailing dot", func(d *store.Domain, v *store.PolicyVersion) { d.Name, v.Domain = "example.com.", "example.com." }},
		{"empty name", func(d *store.Domain, v *store.PolicyVersion) { d.Name, v.Domain = "", "" }},
	}
	org := testOrg(t, s)
	for _, tc := range tests {
		d, v := newDomain("example.com")
		d.OrgID = org
		tc.edit(d, v)
		if err := s.CreateDomain(ctx, d, v); err == nil {
			t.Errorf("%s: CreateDomain succeeded, want an error", tc.name)
		} else if errors.Is(err, store.ErrExists) {
			t.Errorf("%s: CreateDomain: %v, want a validation error", tc.name, err)
		}
	}
	// The organization: required, and existing.
	d, v := newDomain("example.com")
	err := s.CreateDomain(ctx, d, v)
	wantErr(t, "CreateDomain without an organization", err, store.ErrInvalidArg, "organization")
	d.OrgID = org + 1000
	err = s.CreateDomain(ctx, d, v)
	wantErr(t, "CreateDomain for an unknown organization", err, store.ErrNotFound, "organization")
	if l, err := s.Domains(ctx); err != nil || len(l) != 0 {
		t.Errorf("Domains after invalid creates = %d domains, %v; want none", len(l), err)
	}
	if got := serial(t, s); got != n {
		t.Errorf("Serial after invalid creates = %d, want %d (unchanged)", got, n)
	}
}

func testDomains(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	l, err := s.Domains(ctx)
	if err != nil || len(l) != 0 {
		t.Fatalf("Domains of an empty store = %v, %v; want none, no error", l, err)
	}
	names := []string{"c.example", "a.example", "b.example", "a-b.example", "a.example.net"}
	want := map[string]*store.Domain{}
	for _, n := range names {
		want[n] = create(t, s, n)
	}
	l, err = s.Domains(ctx)
	if err != nil {
		t.Fatalf("Domains: %v", err)
	}
	var got []string
	for _, d := range l {
		got = append(got, d.Name)
		checkDomain(t, d, want[d.Name])
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted) // bytewise: "a-b.example" < "a.example" < "a.example.net"
	if !slices.Equal(got, sorted) {
		t.Errorf("Domains = %v, want %v", got, sorted)
	}
}

func testUpdateWithoutVersion(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	want := create(t, s, "example.com")
	at := baseTime().Add(time.Hour)
	d, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		checkDomain(t, d, want) // fn sees the stored row
		d.RUA = append(d.RUA, "https://reports.example.net/v1/tlsrpt")
		d.UpdatedAt = at
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateDomain: %v", err)
	}
	want.RUA = append(want.RUA, "https://reports.example.net/v1/tlsrpt")
	want.UpdatedAt = at
	checkDomain(t, d, want)
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, want)
	if vs, err := s.PolicyVersions(ctx, "example.com"); err != nil || len(vs) != 1 {
		t.Errorf("PolicyVersions = %d versions, %v; want 1 (no new version recorded)", len(vs), err)
	}
}

func testUpdateWithVersion(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	want := create(t, s, "example.com")
	wantVs := []*store.PolicyVersion{versionOf(want, baseTime())}
	for i := range 2 {
		at := baseTime().Add(time.Duration(i+1) * time.Minute)
		d, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.Mode = "enforce"
			return bump(d, at), nil
		})
		if err != nil {
			t.Fatalf("UpdateDomain %d: %v", i, err)
		}
		want.Mode = "enforce"
		wantVs = append(wantVs, bump(want, at))
		checkDomain(t, d, want)
	}
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, want)
	if got.Version != 3 || got.PolicyID != "id3" {
		t.Errorf("Domain: version %d id %q, want 3 id3", got.Version, got.PolicyID)
	}
	vs, err := s.PolicyVersions(ctx, "example.com")
	if err != nil {
		t.Fatalf("PolicyVersions: %v", err)
	}
	if len(vs) != 3 {
		t.Fatalf("PolicyVersions: %d versions, want 3", len(vs))
	}
	for i, v := range vs { // newest first
		checkVersion(t, v, wantVs[len(wantVs)-1-i])
	}
}

func testUpdateFnError(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	want := create(t, s, "example.com")
	n := serial(t, s)
	errBoom := errors.New("boom")
	d, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		d.Mode = "enforce"
		v := bump(d, baseTime().Add(time.Hour))
		return v, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("UpdateDomain: error %v, want fn's error %v", err, errBoom)
	}
	if d != nil {
		t.Errorf("UpdateDomain returned domain %+v with an error", *d)
	}
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, want)
	if vs, err := s.PolicyVersions(ctx, "example.com"); err != nil || len(vs) != 1 {
		t.Errorf("PolicyVersions = %d versions, %v; want 1 (rolled back)", len(vs), err)
	}
	if got := serial(t, s); got != n {
		t.Errorf("Serial after failed update = %d, want %d", got, n)
	}
}

// testUpdateInconsistent checks that the store refuses updates that would
// break its invariants, writing nothing.
func testUpdateInconsistent(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	want := create(t, s, "example.com")
	n := serial(t, s)
	tests := []struct {
		name string
		fn   func(d *store.Domain) (*store.PolicyVersion, error)
	}{
		{"rename", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.Name = "other.example"
			return nil, nil
		}},
		{"version changed without a policy version", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.Version++
			d.PolicyID = "new"
			return nil, nil
		}},
		{"skipped version number", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.Version += 2
			d.PolicyID = "new"
			return versionOf(d, baseTime()), nil
		}},
		{"reused version number", func(d *store.Domain) (*store.PolicyVersion, error) {
			d.PolicyID = "new"
			return versionOf(d, baseTime()), nil
		}},
	}
	for _, tc := range tests {
		if _, err := s.UpdateDomain(ctx, "example.com", tc.fn); err == nil {
			t.Errorf("%s: UpdateDomain succeeded, want an error", tc.name)
		}
	}
	got, err := s.Domain(ctx, "example.com")
	if err != nil {
		t.Fatalf("Domain: %v", err)
	}
	checkDomain(t, got, want)
	if _, err := s.Domain(ctx, "other.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain(other.example) after refused rename: %v, want ErrNotFound", err)
	}
	if vs, err := s.PolicyVersions(ctx, "example.com"); err != nil || len(vs) != 1 {
		t.Errorf("PolicyVersions = %d versions, %v; want 1", len(vs), err)
	}
	if got := serial(t, s); got != n {
		t.Errorf("Serial after refused updates = %d, want %d", got, n)
	}
}

func testUpdateNotFound(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	called := false
	_, err := s.UpdateDomain(t.Context(), "missing.example", func(d *store.Domain) (*store.PolicyVersion, error) {
		called = true
		return nil, nil
	})
	wantErr(t, "UpdateDomain(missing)", err, store.ErrNotFound, "missing.example")
	if called {
		t.Error("UpdateDomain called fn for a missing domain")
	}
}

func testDelete(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	create(t, s, "example.com")
	keep := create(t, s, "example.net")
	if _, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		return bump(d, baseTime().Add(time.Hour)), nil
	}); err != nil {
		t.Fatalf("UpdateDomain: %v", err)
	}
	if err := s.DeleteDomain(ctx, "example.com"); err != nil {
		t.Fatalf("DeleteDomain: %v", err)
	}
	_, err := s.Domain(ctx, "example.com")
	wantErr(t, "Domain after delete", err, store.ErrNotFound, "example.com")
	_, err = s.PolicyVersions(ctx, "example.com")
	wantErr(t, "PolicyVersions after delete", err, store.ErrNotFound, "example.com")
	err = s.DeleteDomain(ctx, "example.com")
	wantErr(t, "second DeleteDomain", err, store.ErrNotFound, "example.com")

	// The versions went with the domain: a new domain of that name starts
	// again at version 1 with only that version (a leftover version 1
	// would collide, a leftover version 2 would be listed).
	create(t, s, "example.com")
	vs, err := s.PolicyVersions(ctx, "example.com")
	if err != nil || len(vs) != 1 || vs[0].Version != 1 {
		t.Errorf("PolicyVersions of the recreated domain = %v, %v; want only version 1", vs, err)
	}
	// The other domain is untouched.
	got, err := s.Domain(ctx, "example.net")
	if err != nil {
		t.Fatalf("Domain(example.net): %v", err)
	}
	checkDomain(t, got, keep)
}

func testSerial(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	last := serial(t, s)
	grew := func(what string) {
		t.Helper()
		n := serial(t, s)
		if n <= last {
			t.Errorf("Serial after %s = %d, want more than %d", what, n, last)
		}
		last = n
	}
	same := func(what string) {
		t.Helper()
		if n := serial(t, s); n != last {
			t.Errorf("Serial after %s = %d, want %d (unchanged)", what, n, last)
		}
	}

	create(t, s, "example.com")
	grew("CreateDomain")
	if _, err := s.Domain(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Domains(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PolicyVersions(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	same("reads")
	if _, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		d.RUA = nil
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	grew("UpdateDomain without a version")
	if _, err := s.UpdateDomain(ctx, "example.com", func(d *store.Domain) (*store.PolicyVersion, error) {
		return bump(d, baseTime().Add(time.Hour)), nil
	}); err != nil {
		t.Fatal(err)
	}
	grew("UpdateDomain with a version")
	if _, err := s.UpdateDomain(ctx, "missing.example", func(d *store.Domain) (*store.PolicyVersion, error) {
		return nil, nil
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateDomain(missing): %v", err)
	}
	same("UpdateDomain of a missing domain")
	if err := s.DeleteDomain(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	grew("DeleteDomain")
	if err := s.DeleteDomain(ctx, "example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteDomain(missing): %v", err)
	}
	same("DeleteDomain of a missing domain")
}
