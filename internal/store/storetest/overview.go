package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// Stored checks, the state of hosted domains (verification, certificates,
// events) and the domain overview.

// hostFor hosts name for the organization org in mode.
func hostFor(t *testing.T, s store.DomainStore, name string, org int64, mode string) *store.Domain {
	t.Helper()
	d, v := newDomain(name)
	d.OrgID, d.Mode, v.Mode = org, mode, mode
	if err := s.CreateDomain(t.Context(), d, v); err != nil {
		t.Fatalf("CreateDomain(%s): %v", name, err)
	}
	return d
}

// checkRecord stores a check of domain for org and returns it.
func checkRecord(t *testing.T, s store.Tenant, org int64, domain string, at time.Time, score int, grade string) *store.CheckRecord {
	t.Helper()
	c := &store.CheckRecord{OrgID: org, Domain: domain, CheckedAt: at, Score: score, Grade: grade,
		Report: fmt.Appendf(nil, `{"domain":%q,"score":%d,"grade":%q,"findings":[%s]}`, domain, score, grade,
			strings.Repeat(`{"id":"mta-sts","status":"ok"},`, 50)+`{}`)}
	if err := s.InsertCheck(t.Context(), c); err != nil {
		t.Fatalf("InsertCheck(%s): %v", domain, err)
	}
	return c
}

func testChecks(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	// Checks are of any domain, hosted or not.
	c1 := checkRecord(t, ten, o.ID, "example.com", baseTime(), 62, "D")
	c2 := checkRecord(t, ten, o.ID, "example.com", baseTime().Add(time.Hour), 91, "A")
	checkRecord(t, ten, o.ID, "example.net", baseTime(), 10, "F")
	if c1.ID == 0 || c2.ID == c1.ID {
		t.Fatalf("InsertCheck ids %d, %d", c1.ID, c2.ID)
	}
	got, err := ten.Check(ctx, c1.ID)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got.ID != c1.ID || got.OrgID != o.ID || got.Domain != "example.com" || got.Score != 62 || got.Grade != "D" ||
		!bytes.Equal(got.Report, c1.Report) {
		t.Errorf("Check = %+v, want %+v", got, c1)
	}
	checkTime(t, "CheckedAt", got.CheckedAt, baseTime())
	l, err := ten.Checks(ctx, "example.com", 0)
	if err != nil || len(l) != 2 || l[0].ID != c2.ID || l[1].ID != c1.ID {
		t.Fatalf("Checks = %v, %v; want %d, %d (newest first)", l, err, c2.ID, c1.ID)
	}
	if l[0].Report != nil || l[0].Score != 91 || l[0].Grade != "A" {
		t.Errorf("Checks[0] = %+v: want score and grade without the report", l[0])
	}
	if l, err := ten.Checks(ctx, "example.com", 1); err != nil || len(l) != 1 || l[0].ID != c2.ID {
		t.Errorf("Checks(limit 1) = %v, %v", l, err)
	}
	if l, err := ten.Checks(ctx, "nothing.example", 0); err != nil || len(l) != 0 {
		t.Errorf("Checks(never checked) = %v, %v; want none", l, err)
	}
	_, err = ten.Checks(ctx, "example.com", -1)
	wantErr(t, "Checks(negative limit)", err, store.ErrInvalidArg, "")
	_, err = ten.Check(ctx, c2.ID+100)
	wantErr(t, "Check(missing)", err, store.ErrNotFound, "check")

	for _, bad := range []store.CheckRecord{{OrgID: o.ID, Domain: "Example.com"}, {OrgID: o.ID}, {Domain: "example.com"}} {
		err := ten.InsertCheck(ctx, &bad)
		wantErr(t, fmt.Sprintf("InsertCheck(%+v)", bad), err, store.ErrInvalidArg, "")
	}
	err = s.Scoped(store.Scope{Operator: true}).InsertCheck(ctx, &store.CheckRecord{OrgID: o.ID + 100, Domain: "example.com"})
	wantErr(t, "InsertCheck(missing organization)", err, store.ErrNotFound, "organization")
}

func testDomainState(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	ten := s.Scoped(store.Scope{Orgs: []int64{o.ID}})
	hostFor(t, s, "example.com", o.ID, "testing")
	n := serial(t, s)

	if l, err := ten.DomainEvents(ctx, "example.com", time.Time{}, time.Time{}); err != nil || len(l) != 0 {
		t.Errorf("DomainEvents before any = %v, %v; want none", l, err)
	}
	for i, at := range []time.Time{day(1), day(10), day(20)} {
		if err := s.RecordCertificate(ctx, "example.com", at, at.AddDate(0, 0, 90), fmt.Sprintf("renewal %d", i)); err != nil {
			t.Fatalf("RecordCertificate: %v", err)
		}
	}
	err := s.RecordCertificate(ctx, "missing.example", day(1), day(2), "")
	wantErr(t, "RecordCertificate(not hosted)", err, store.ErrNotFound, "missing.example")
	l, err := ten.DomainEvents(ctx, "example.com", day(5), day(20))
	if err != nil || len(l) != 1 || l[0].Detail != "renewal 1" || l[0].Kind != "certificate" || l[0].Domain != "example.com" {
		t.Fatalf("DomainEvents(day 5 to 20) = %v, %v; want renewal 1 (until excluded)", l, err)
	}
	checkTime(t, "event At", l[0].At, day(10))
	if l, _ := ten.DomainEvents(ctx, "example.com", time.Time{}, time.Time{}); len(l) != 3 || l[0].Detail != "renewal 0" || l[2].Detail != "renewal 2" {
		t.Errorf("DomainEvents(all) = %v, want the three, oldest first", l)
	}
	_, err = ten.DomainEvents(ctx, "missing.example", time.Time{}, time.Time{})
	wantErr(t, "DomainEvents(not hosted)", err, store.ErrNotFound, "missing.example")

	verify := []byte(`[{"name":"mta-sts.example.com","status":"ok"}]`)
	if err := ten.RecordVerify(ctx, "example.com", day(21), verify); err != nil {
		t.Fatalf("RecordVerify: %v", err)
	}
	err = ten.RecordVerify(ctx, "missing.example", day(21), verify)
	wantErr(t, "RecordVerify(not hosted)", err, store.ErrNotFound, "missing.example")
	ov, err := ten.Overview(ctx, store.OverviewQuery{Now: day(22)})
	if err != nil || len(ov) != 1 {
		t.Fatalf("Overview = %v, %v", ov, err)
	}
	checkTime(t, "VerifiedAt", ov[0].VerifiedAt, day(21))
	checkTime(t, "CertIssuedAt", ov[0].CertIssuedAt, day(20))
	checkTime(t, "CertExpires", ov[0].CertExpires, day(20).AddDate(0, 0, 90))
	if !bytes.Equal(ov[0].Verify, verify) {
		t.Errorf("Verify = %s, want %s", ov[0].Verify, verify)
	}
	if got := serial(t, s); got != n {
		t.Errorf("Serial after certificates and verification = %d, want %d: nothing served changed", got, n)
	}

	// The events go with the domain; the certificate stays (certmagic
	// keeps it too).
	if err := s.DeleteDomain(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	hostFor(t, s, "example.com", o.ID, "testing")
	if l, err := ten.DomainEvents(ctx, "example.com", time.Time{}, time.Time{}); err != nil || len(l) != 0 {
		t.Errorf("DomainEvents of the re-added domain = %v, %v; want none", l, err)
	}
	ov, _ = ten.Overview(ctx, store.OverviewQuery{Now: day(22)})
	if len(ov) != 1 || !ov[0].VerifiedAt.IsZero() || ov[0].Verify != nil || ov[0].CertExpires.IsZero() {
		t.Errorf("Overview of the re-added domain = %+v: want no verification, the certificate kept", ov)
	}
}

// overviewFixture hosts the overview test's domains with reports, checks
// and certificates, and returns the store, the organizations acme and
// beta, and what each domain's summary must hold.
type overviewFixture struct {
	s          store.Store
	acme, beta *store.Org
	want       map[string]*store.DomainSummary
}

// The overview's window ends at day 22: days 15 to 21 count.
func overviewNow() time.Time { return day(22) }

func newOverviewFixture(t *testing.T, fresh func(t *testing.T) store.Options) *overviewFixture {
	s := openFresh(t, fresh)
	ctx := t.Context()
	f := &overviewFixture{s: s, acme: newOrg(t, s, "acme", 0), beta: newOrg(t, s, "beta", 0), want: map[string]*store.DomainSummary{}}
	for _, d := range []struct {
		name, mode string
		org        *store.Org
	}{
		{"alpha.example", "testing", f.acme}, {"bravo.example", "enforce", f.acme}, {"charlie.example", "enforce", f.beta},
		{"delta.example", "none", f.beta}, {"echo.example", "testing", f.acme}, {"x_y.example", "testing", f.acme},
		{"xay.example", "testing", f.acme},
	} {
		dom := hostFor(t, s, d.name, d.org.ID, d.mode)
		f.want[d.name] = &store.DomainSummary{Domain: *dom, OrgName: d.org.Name}
	}
	// Reports: the days just outside the window do not count; a
	// duplicate received later does not make a newer report.
	rep := func(id, domain string, d time.Time, received time.Time, ok int64, failed int64) *store.TLSRPTReport {
		var fails []fail
		if failed > 0 {
			fails = append(fails, fail{"certificate-expired", "192.0.2.1", "mx1." + domain, failed})
		}
		r := newReport("Sender", id, domain, d, "sts", ok, fails...)
		r.ReceivedAt = received
		return r
	}
	r1 := baseTime()
	insert(t, s,
		rep("a15", "alpha.example", day(15), r1, 100, 10),
		rep("a14", "alpha.example", day(14), r1.Add(-time.Hour), 0, 1000),
		rep("a22", "alpha.example", day(22), r1.Add(-2*time.Hour), 0, 1000),
		rep("b21", "bravo.example", day(21), r1.Add(time.Hour), 50, 50),
		rep("d18", "delta.example", day(18), r1.Add(-24*time.Hour), 10, 0),
		rep("z18", "zulu.example", day(18), r1, 10, 10), // not hosted
	)
	insert(t, s, rep("a15", "alpha.example", day(15), r1.Add(48*time.Hour), 100, 10)) // a duplicate
	f.want["alpha.example"].LastReport, f.want["alpha.example"].Sessions7d, f.want["alpha.example"].Failed7d = r1, 110, 10
	f.want["bravo.example"].LastReport, f.want["bravo.example"].Sessions7d, f.want["bravo.example"].Failed7d = r1.Add(time.Hour), 100, 50
	f.want["delta.example"].LastReport, f.want["delta.example"].Sessions7d = r1.Add(-24*time.Hour), 10

	// Checks: the newest of the domain's organization counts.
	op := s.Scoped(store.Scope{Operator: true})
	checkRecord(t, op, f.acme.ID, "alpha.example", day(10), 50, "F")
	checkRecord(t, op, f.acme.ID, "alpha.example", day(12), 95, "A")
	checkRecord(t, op, f.beta.ID, "alpha.example", day(13), 10, "F") // another organization's
	checkRecord(t, op, f.acme.ID, "bravo.example", day(11), 70, "C")
	checkRecord(t, op, f.beta.ID, "charlie.example", day(11), 70, "C")
	for name, c := range map[string]struct {
		score int
		grade string
		at    time.Time
	}{"alpha.example": {95, "A", day(12)}, "bravo.example": {70, "C", day(11)}, "charlie.example": {70, "C", day(11)}} {
		f.want[name].Score, f.want[name].Grade, f.want[name].CheckedAt = c.score, c.grade, c.at
	}
	// Certificates.
	for name, issued := range map[string]time.Time{"alpha.example": day(5), "bravo.example": day(1), "delta.example": day(9)} {
		if err := s.RecordCertificate(ctx, name, issued, issued.AddDate(0, 0, 90), "issued"); err != nil {
			t.Fatal(err)
		}
		f.want[name].CertIssuedAt, f.want[name].CertExpires = issued, issued.AddDate(0, 0, 90)
	}
	return f
}

// names lists the domains of a page.
func names(l []*store.DomainSummary) []string {
	out := make([]string, len(l))
	for i, d := range l {
		out[i] = d.Name
	}
	return out
}

func testOverview(t *testing.T, fresh func(t *testing.T) store.Options) {
	f := newOverviewFixture(t, fresh)
	ctx := t.Context()
	op := f.s.Scoped(store.Scope{Operator: true})

	// Every field of every summary.
	all, err := op.Overview(ctx, store.OverviewQuery{Now: overviewNow()})
	if err != nil {
		t.Fatalf("Overview: %v", err)
	}
	if len(all) != len(f.want) {
		t.Fatalf("Overview = %v, want %d domains", names(all), len(f.want))
	}
	for _, got := range all {
		want := f.want[got.Name]
		checkDomain(t, &got.Domain, &want.Domain)
		if got.OrgName != want.OrgName || got.Sessions7d != want.Sessions7d || got.Failed7d != want.Failed7d ||
			got.Score != want.Score || got.Grade != want.Grade || got.Cursor == "" {
			t.Errorf("summary of %s = org %s, sessions %d, failed %d, score %d, grade %q, cursor %q; want %s, %d, %d, %d, %q",
				got.Name, got.OrgName, got.Sessions7d, got.Failed7d, got.Score, got.Grade, got.Cursor,
				want.OrgName, want.Sessions7d, want.Failed7d, want.Score, want.Grade)
		}
		for _, tm := range []struct {
			what      string
			got, want time.Time
		}{
			{"LastReport", got.LastReport, want.LastReport}, {"CheckedAt", got.CheckedAt, want.CheckedAt},
			{"CertIssuedAt", got.CertIssuedAt, want.CertIssuedAt}, {"CertExpires", got.CertExpires, want.CertExpires},
		} {
			if tm.want.IsZero() {
				if !tm.got.IsZero() {
					t.Errorf("%s of %s = %v, want none", tm.what, got.Name, tm.got)
				}
				continue
			}
			checkTime(t, tm.what+" of "+got.Name, tm.got, tm.want)
		}
	}

	const nulls = "charlie.example echo.example x_y.example xay.example"
	for _, tc := range []struct {
		sort string
		desc bool
		want string
	}{
		{"", false, "alpha.example bravo.example charlie.example delta.example echo.example x_y.example xay.example"},
		{"name", true, "xay.example x_y.example echo.example delta.example charlie.example bravo.example alpha.example"},
		{"mode", false, "bravo.example charlie.example delta.example alpha.example echo.example x_y.example xay.example"},
		{"mode", true, "alpha.example echo.example x_y.example xay.example delta.example bravo.example charlie.example"},
		{"failure_rate", false, "delta.example alpha.example bravo.example " + nulls},
		{"failure_rate", true, "bravo.example alpha.example delta.example " + nulls},
		{"last_report", false, "delta.example alpha.example bravo.example " + nulls},
		{"last_report", true, "bravo.example alpha.example delta.example " + nulls},
		{"grade", false, "alpha.example bravo.example charlie.example delta.example echo.example x_y.example xay.example"},
		{"grade", true, "bravo.example charlie.example alpha.example delta.example echo.example x_y.example xay.example"},
		{"expiry", false, "bravo.example alpha.example delta.example " + nulls},
		{"expiry", true, "delta.example alpha.example bravo.example " + nulls},
	} {
		q := store.OverviewQuery{Sort: tc.sort, Desc: tc.desc, Now: overviewNow()}
		got, err := op.Overview(ctx, q)
		if err != nil {
			t.Fatalf("Overview(%s, desc %v): %v", tc.sort, tc.desc, err)
		}
		if g := strings.Join(names(got), " "); g != tc.want {
			t.Errorf("Overview(%s, desc %v) =\n  %s\nwant\n  %s", tc.sort, tc.desc, g, tc.want)
		}
		// Every page size gives the same order, page after page: page
		// boundaries fall between equal keys and among absent ones.
		for limit := 1; limit <= 3; limit++ {
			var paged []string
			q.Limit, q.After = limit, ""
			for range 20 {
				page, err := op.Overview(ctx, q)
				if err != nil {
					t.Fatalf("Overview(%s, desc %v, limit %d, after %q): %v", tc.sort, tc.desc, limit, q.After, err)
				}
				if len(page) > limit {
					t.Fatalf("Overview(limit %d) returned %d rows", limit, len(page))
				}
				paged = append(paged, names(page)...)
				if len(page) < limit {
					break
				}
				q.After = page[len(page)-1].Cursor
			}
			if g := strings.Join(paged, " "); g != tc.want {
				t.Errorf("Overview(%s, desc %v) in pages of %d =\n  %s\nwant\n  %s", tc.sort, tc.desc, limit, g, tc.want)
			}
		}
	}

	// Filters, and CountDomains with them.
	for _, tc := range []struct {
		q    store.OverviewQuery
		want string
	}{
		{store.OverviewQuery{Match: "X_Y"}, "x_y.example"},
		{store.OverviewQuery{Match: "HA"}, "alpha.example charlie.example"},
		{store.OverviewQuery{Match: "%"}, ""},
		{store.OverviewQuery{Match: "ha.ex"}, "alpha.example"},
		{store.OverviewQuery{Mode: "enforce"}, "bravo.example charlie.example"},
		{store.OverviewQuery{Org: f.beta.ID}, "charlie.example delta.example"},
		{store.OverviewQuery{Org: f.acme.ID, Mode: "testing", Match: "o."}, "echo.example"},
		{store.OverviewQuery{Org: f.acme.ID, Match: "x"}, "alpha.example bravo.example echo.example x_y.example xay.example"},
		{store.OverviewQuery{Org: f.beta.ID + 100}, ""},
		// An exact name: not x_y.example for xay.example, nor a part.
		{store.OverviewQuery{Name: "xay.example"}, "xay.example"},
		{store.OverviewQuery{Name: "x_y.example"}, "x_y.example"},
		{store.OverviewQuery{Name: "alpha"}, ""},
		{store.OverviewQuery{Name: "charlie.example", Org: f.beta.ID}, "charlie.example"},
		{store.OverviewQuery{Name: "charlie.example", Org: f.acme.ID}, ""},
	} {
		tc.q.Now = overviewNow()
		got, err := op.Overview(ctx, tc.q)
		if err != nil {
			t.Fatalf("Overview(%+v): %v", tc.q, err)
		}
		if g := strings.Join(names(got), " "); g != tc.want {
			t.Errorf("Overview(%+v) = %q, want %q", tc.q, g, tc.want)
		}
		n, err := op.CountDomains(ctx, tc.q)
		if err != nil || n != int64(len(got)) {
			t.Errorf("CountDomains(%+v) = %d, %v; want %d", tc.q, n, err, len(got))
		}
	}
	if n, err := op.CountDomains(ctx, store.OverviewQuery{Limit: 1}); err != nil || n != int64(len(f.want)) {
		t.Errorf("CountDomains(all) = %d, %v; want %d", n, err, len(f.want))
	}

	// Refused queries.
	nameCursor := all[0].Cursor
	gradeAll, err := op.Overview(ctx, store.OverviewQuery{Sort: "grade", Now: overviewNow()})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.OverviewQuery{
		{Sort: "popularity"}, {Mode: "strict"}, {Limit: -1}, {Org: -1}, {After: "!!"}, {After: "bm90IGpzb24"},
		{Sort: "grade", After: nameCursor}, {Desc: true, After: nameCursor}, {Sort: "grade", Desc: true, After: gradeAll[0].Cursor},
	} {
		_, err := op.Overview(ctx, q)
		wantErr(t, fmt.Sprintf("Overview(%+v)", q), err, store.ErrInvalidArg, "")
	}
	_, err = op.CountDomains(ctx, store.OverviewQuery{Mode: "strict"})
	wantErr(t, "CountDomains(mode strict)", err, store.ErrInvalidArg, "strict")
}

// testOverviewLarge pages through more domains than one page holds, with
// many equal keys, and checks that every domain comes exactly once.
func testOverviewLarge(t *testing.T, fresh func(t *testing.T) store.Options) {
	s := openFresh(t, fresh)
	ctx := t.Context()
	o := newOrg(t, s, "acme", 0)
	op := s.Scoped(store.Scope{Operator: true})
	var want []string
	for i := range 45 {
		name := fmt.Sprintf("d%02d.example", i)
		hostFor(t, s, name, o.ID, []string{"testing", "enforce", "none"}[i%3])
		want = append(want, name)
		if i%4 == 0 {
			checkRecord(t, op, o.ID, name, baseTime(), 50+i%2, "F")
		}
	}
	for _, sort := range []string{"name", "mode", "grade", "failure_rate", "expiry", "last_report"} {
		for _, desc := range []bool{false, true} {
			full, err := op.Overview(ctx, store.OverviewQuery{Sort: sort, Desc: desc, Now: overviewNow()})
			if err != nil {
				t.Fatal(err)
			}
			q := store.OverviewQuery{Sort: sort, Desc: desc, Limit: 7, Now: overviewNow()}
			var got []string
			for {
				page, err := op.Overview(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, names(page)...)
				if len(page) < q.Limit {
					break
				}
				q.After = page[len(page)-1].Cursor
			}
			if !slices.Equal(got, names(full)) {
				t.Errorf("Overview(%s, desc %v) in pages of 7 =\n  %v\nwant\n  %v", sort, desc, got, names(full))
			}
			sorted := slices.Clone(got)
			slices.Sort(sorted)
			if !slices.Equal(sorted, want) {
				t.Errorf("Overview(%s, desc %v): domains %v, want each of %v once", sort, desc, sorted, want)
			}
		}
	}
}
