// Package storetest is the contract test suite of store.Store, run against
// every implementation (SQLite and PostgreSQL):
//
//	func TestSQLite(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Options {
//			return store.Options{DataDir: t.TempDir()}
//		})
//	}
//
// The suite opens stores itself with store.Open, because some tests need
// two instances on one database or a reopen after Close.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Run runs the whole contract suite as subtests of t. fresh returns Options
// naming a new, empty database each time it is called; the suite may open
// those Options several times (concurrently too) and closes every store it
// opens.
func Run(t *testing.T, fresh func(t *testing.T) store.Options) {
	tests := []struct {
		name string
		fn   func(t *testing.T, fresh func(t *testing.T) store.Options)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExists", testCreateExists},
		{"CreateInvalid", testCreateInvalid},
		{"Domains", testDomains},
		{"UpdateWithoutVersion", testUpdateWithoutVersion},
		{"UpdateWithVersion", testUpdateWithVersion},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateInconsistent", testUpdateInconsistent},
		{"UpdateNotFound", testUpdateNotFound},
		{"Delete", testDelete},
		{"Serial", testSerial},
		{"KVPutGet", testKVPutGet},
		{"KVStat", testKVStat},
		{"KVList", testKVList},
		{"KVDelete", testKVDelete},
		{"LockExclusive", testLockExclusive},
		{"LockExtend", testLockExtend},
		{"LockExpiry", testLockExpiry},
		{"LockUnlock", testLockUnlock},
		{"LockRace", testLockRace},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"TwoInstances", testTwoInstances},
		{"Changes", testChanges},
		{"OpenConcurrently", testOpenConcurrently},
		{"Reopen", testReopen},
		{"ReportDedup", testReportDedup},
		{"ReportInvalidInput", testReportInvalidInput},
		{"ReportByID", testReportByID},
		{"ReportList", testReportList},
		{"ReportRollups", testReportRollups},
		{"RollupsDerived", testRollupsDerived},
		{"ReportsConcurrent", testReportsConcurrent},
		{"Orgs", testOrgs},
		{"Branding", testBranding},
		{"Users", testUsers},
		{"Memberships", testMemberships},
		{"Sessions", testSessions},
		{"SetPassword", testSetPassword},
		{"Tokens", testTokens},
		{"Invitations", testInvitations},
		{"AcceptInvitationConcurrent", testAcceptInvitationConcurrent},
		{"Checks", testChecks},
		{"DomainState", testDomainState},
		{"Overview", testOverview},
		{"OverviewLarge", testOverviewLarge},
		{"IntakeLog", testIntakeLog},
		{"TenantIsolation", testTenantIsolation},
		{"DMARCStore", testDMARCStore},
		{"DMARCInvalid", testDMARCInvalid},
		{"DMARCFailures", testDMARCFailures},
		{"SenderCache", testSenderCache},
		{"Spool", testSpool},
		{"SpoolTwoInstances", testSpoolTwoInstances},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // every test has a database of its own
			tc.fn(t, fresh)
		})
	}
}

// open opens a store on opts and closes it when t ends.
func open(t *testing.T, opts store.Options) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), slog.New(slog.NewTextHandler(t.Output(), nil)), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openFresh opens a store on a new database.
func openFresh(t *testing.T, fresh func(t *testing.T) store.Options) store.Store {
	t.Helper()
	return open(t, fresh(t))
}

// baseTime is a creation time with nanoseconds and a zone, to check that the
// store returns UTC at (at least) microsecond precision.
func baseTime() time.Time {
	return time.Date(2026, 11, 22, 11, 15, 0, 123456789, time.FixedZone("CET", 3600))
}

// policyText is the policy file of a domain's settings, as hosting would
// serve it.
func policyText(mode string, mx []string, maxAge int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: STSv1\r\nmode: %s\r\n", mode)
	for _, m := range mx {
		fmt.Fprintf(&b, "mx: %s\r\n", m)
	}
	fmt.Fprintf(&b, "max_age: %d\r\n", maxAge)
	return b.String()
}

// newDomain returns a domain and its first policy version.
func newDomain(name string) (*store.Domain, *store.PolicyVersion) {
	base := baseTime()
	d := &store.Domain{
		Name:      name,
		Mode:      "testing",
		MX:        []string{"mx1." + name, "*.backup.example.net"},
		MaxAge:    86400,
		RUA:       []string{"mailto:tlsrpt@" + name},
		PolicyID:  "20261122T101500Z",
		Version:   1,
		CreatedAt: base,
		UpdatedAt: base,
	}
	return d, versionOf(d, base)
}

// versionOf returns the policy version describing d's current settings.
func versionOf(d *store.Domain, at time.Time) *store.PolicyVersion {
	return &store.PolicyVersion{
		Domain:    d.Name,
		Version:   d.Version,
		PolicyID:  d.PolicyID,
		Mode:      d.Mode,
		MX:        slices.Clone(d.MX),
		MaxAge:    d.MaxAge,
		Policy:    policyText(d.Mode, d.MX, d.MaxAge),
		CreatedAt: at,
	}
}

// bump changes d's served policy (max_age + 1) and returns the new version,
// the way hosting does inside UpdateDomain.
func bump(d *store.Domain, at time.Time) *store.PolicyVersion {
	d.MaxAge++
	d.Version++
	d.PolicyID = fmt.Sprintf("id%d", d.Version)
	d.UpdatedAt = at
	return versionOf(d, at)
}

// testOrg returns the id of the organization "test", creating it when
// absent.
func testOrg(t *testing.T, s store.Store) int64 {
	t.Helper()
	return org(t, s, "test")
}

// org returns the id of the organization named name, creating it when
// absent (concurrent callers included).
func org(t *testing.T, s store.Store, name string) int64 {
	t.Helper()
	o, err := s.OrgByName(t.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		o = &store.Org{Name: name}
		err = s.CreateOrg(t.Context(), o)
		if errors.Is(err, store.ErrExists) {
			o, err = s.OrgByName(t.Context(), name)
		}
	}
	if err != nil {
		t.Fatalf("organization %s: %v", name, err)
	}
	return o.ID
}

// create hosts name for the organization "test".
func create(t *testing.T, s store.Store, name string) *store.Domain {
	t.Helper()
	d, v := newDomain(name)
	d.OrgID = testOrg(t, s)
	if err := s.CreateDomain(t.Context(), d, v); err != nil {
		t.Fatalf("CreateDomain(%s): %v", name, err)
	}
	return d
}

func serial(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.Serial(t.Context())
	if err != nil {
		t.Fatalf("Serial: %v", err)
	}
	return n
}

// checkTime reports whether got is want, in UTC, at microsecond precision
// or better.
func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s = %v: location %v, want UTC", what, got, got.Location())
	}
	if d := got.Sub(want); d <= -time.Microsecond || d >= time.Microsecond {
		t.Errorf("%s = %v, want %v (±1µs)", what, got, want.UTC())
	}
}

func checkDomain(t *testing.T, got, want *store.Domain) {
	t.Helper()
	if got == nil {
		t.Fatalf("domain = nil, want %s", want.Name)
	}
	if got.Name != want.Name || got.OrgID != want.OrgID || got.Mode != want.Mode || got.MaxAge != want.MaxAge ||
		got.PolicyID != want.PolicyID || got.Version != want.Version ||
		!slices.Equal(got.MX, want.MX) || !slices.Equal(got.RUA, want.RUA) {
		t.Errorf("domain =\n%+v\nwant\n%+v", *got, *want)
	}
	checkTime(t, want.Name+" CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, want.Name+" UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func checkVersion(t *testing.T, got, want *store.PolicyVersion) {
	t.Helper()
	if got.Domain != want.Domain || got.Version != want.Version || got.PolicyID != want.PolicyID ||
		got.Mode != want.Mode || !slices.Equal(got.MX, want.MX) || got.MaxAge != want.MaxAge ||
		got.Policy != want.Policy {
		t.Errorf("policy version =\n%+v\nwant\n%+v", *got, *want)
	}
	checkTime(t, fmt.Sprintf("%s version %d CreatedAt", want.Domain, want.Version), got.CreatedAt, want.CreatedAt)
}

// wantErr checks that err wraps target and names what was looked up.
func wantErr(t *testing.T, what string, err, target error, mention string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Errorf("%s: error %q does not name %q", what, err, mention)
	}
}

// eventually calls f every few milliseconds until it returns nil, and fails
// t with f's last error after a generous deadline. For waiting on time to
// pass (lock expiry) without long fixed sleeps.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still failing after 10s: %v", what, err)
		case <-tick.C:
		}
	}
}
