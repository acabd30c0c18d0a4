package store

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// TestDecompose: the blocks of decompose are aligned, disjoint and cover
// the period exactly, with at most two ranges per span.
func TestDecompose(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	spanSets := [][]int{{0}, {0, 4, 8}, {0, 2, 4, 6, 8}, {0, 1}, {0, 3, 6, 9}}
	bounds := func() int64 {
		switch rnd.IntN(10) {
		case 0:
			return noStart
		case 1:
			return noEnd
		}
		return rnd.Int64N(3000) - 1000
	}
	for range 5000 {
		spans := spanSets[rnd.IntN(len(spanSets))]
		from, to := bounds(), bounds()
		if from == noEnd {
			from = noStart
		}
		if to == noStart {
			to = noEnd
		}
		got := decompose(from, to, spans)
		name := fmt.Sprintf("decompose(%d, %d, %v) = %v", from, to, spans, got)
		if from >= to {
			if len(got) != 0 {
				t.Fatalf("%s, want nothing", name)
			}
			continue
		}
		perSpan := map[int]int{}
		for _, b := range got {
			perSpan[b.span]++
			size := int64(1) << b.span
			if !slices.Contains(spans, b.span) || b.from >= b.to ||
				b.from != noStart && floorMod(b.from, size) != 0 || b.to != noEnd && floorMod(b.to, size) != 0 {
				t.Fatalf("%s: %v is not a range of aligned blocks of a span given", name, b)
			}
		}
		for x := int64(-1100); x < 2100; x++ {
			covered := 0
			for _, b := range got {
				start := x - floorMod(x, int64(1)<<b.span)
				if b.from <= start && start < b.to {
					covered++
				}
			}
			if in := from <= x && x < to; in && covered != 1 || !in && covered != 0 {
				t.Fatalf("%s: day %d is in %d blocks", name, x, covered)
			}
		}
		for s, n := range perSpan {
			if n > 2 {
				t.Fatalf("%s: %d ranges of span %d", name, n, s)
			}
		}
	}
}

// TestDerivedRollups: on both databases, after random reports and hosting
// changes, every derived table answers every query it can answer as
// tlsrpt_daily does, for every scope; and no derived row is 0 or negative.
func TestDerivedRollups(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"sqlite", func(t *testing.T) Options { return Options{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) Options { return Options{URL: pgtest.NewDatabase(t)} }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			st, err := Open(t.Context(), nil, db.opts(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			testDerivedRollups(t, st.(*sqlStore))
		})
	}
}

func testDerivedRollups(t *testing.T, s *sqlStore) {
	ctx := t.Context()
	rnd := rand.New(rand.NewPCG(3, 4))
	var orgs []int64
	for _, name := range []string{"a", "b", "c"} {
		o := &Org{Name: name}
		if err := s.CreateOrg(ctx, o); err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o.ID)
	}
	domains := []string{"d0.example", "d1.example", "d2.example", "d3.example", "d4.example", "d5.example"}
	hosted := map[string]bool{}
	toggle := func(d string) {
		if hosted[d] {
			if err := s.DeleteDomain(ctx, d); err != nil {
				t.Fatal(err)
			}
		} else {
			dd := &Domain{Name: d, Mode: "testing", OrgID: orgs[rnd.IntN(len(orgs))], MaxAge: 86400}
			if err := s.CreateDomain(ctx, dd, &PolicyVersion{PolicyID: "1", Mode: "testing", Policy: "version: STSv1"}); err != nil {
				t.Fatal(err)
			}
		}
		hosted[d] = !hosted[d]
	}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pick := func(l ...string) string { return l[rnd.IntN(len(l))] }
	n := 0
	for range 10 {
		var batch []*TLSRPTReport
		for range 30 {
			n++
			d := base.AddDate(0, 0, rnd.IntN(700)-350)
			if rnd.IntN(20) == 0 {
				d = time.Date(1969, 12, 15+rnd.IntN(30), 7, 0, 0, 0, time.UTC)
			}
			domain := pick(domains...)
			r := &TLSRPTReport{Source: "https", Raw: fmt.Appendf(nil, "report %d", n), Status: ReportOK,
				OrganizationName: pick("Google", "Microsoft", "Yahoo"), ReportID: fmt.Sprint(n), StartTime: d,
				EndTime: d.Add(24*time.Hour - time.Second), Domains: []string{domain}}
			for range 1 + rnd.IntN(4) {
				ru := TLSRPTRollup{Day: d, Domain: domain, PolicyType: pick("sts", "sts", "tlsa"),
					ResultType:   pick("success", "success", "certificate-expired", "validation-failure"),
					Organization: r.OrganizationName, Sessions: int64(rnd.IntN(50))}
				if ru.ResultType != "success" {
					ru.SendingIP, ru.ReceivingMX = pick("192.0.2.1", "192.0.2.2", ""), pick("mx1."+domain, "mx2."+domain, "")
				}
				r.Rollups = append(r.Rollups, ru)
			}
			batch = append(batch, r)
		}
		if _, err := s.InsertTLSRPT(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for range rnd.IntN(3) {
			toggle(pick(domains...))
		}
	}

	checkDerived(t, s, rnd, orgs, base, 30)
}

// checkDerived compares the answers of every derived table to those of
// tlsrpt_daily for n random queries around base, in the scopes of the
// operator, of orgs[0], of the other orgs and of nobody, and checks that no
// derived row is 0 or negative.
func checkDerived(t *testing.T, s *sqlStore, rnd *rand.Rand, orgs []int64, base time.Time, n int) {
	t.Helper()
	ctx := t.Context()
	tenants := []*tenant{s.op(), {s: s, sc: Scope{Orgs: orgs[:1]}}, {s: s, sc: Scope{Orgs: orgs[1:]}}, {s: s, sc: Scope{}}}
	names := []string{"day", "policy_type", "result_type", "organization", "sending_ip", "receiving_mx", "domain"}
	day := func() time.Time {
		if rnd.IntN(6) == 0 {
			return time.Time{}
		}
		if rnd.IntN(10) == 0 {
			return time.Date(1969, 12, 10+rnd.IntN(40), 0, 0, 0, 0, time.UTC)
		}
		return base.AddDate(0, 0, rnd.IntN(760)-380).Add(time.Duration(rnd.IntN(3)) * 11 * time.Hour)
	}
	for i := range n {
		var cols []string
		for _, c := range names {
			if rnd.IntN(3) == 0 {
				cols = append(cols, c)
			}
		}
		rnd.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
		q := RollupQuery{Since: day(), Until: day(), GroupBy: cols}
		if rnd.IntN(4) == 0 {
			q.PolicyType = "sts"
		}
		var dests []func(*RollupRow) any
		for _, c := range cols {
			dests = append(dests, rollupDest(c))
		}
		for ti, tn := range tenants {
			text, args := tn.dailyQuery(q, cols)
			want, err := s.rollupRows(ctx, cols, text, args, dests)
			if err != nil {
				t.Fatal(err)
			}
			for _, dt := range rollupTables() {
				if !hasCols(dt, q, cols) {
					continue
				}
				text, args := tn.derivedQuery(dt, q, cols)
				got, err := s.rollupRows(ctx, cols, text, args, dests)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, want, func(a, b RollupRow) bool {
					return a.Day.Equal(b.Day) && a.Day.Location() == b.Day.Location() && sameRow(a, b)
				}) {
					t.Errorf("query %d, tenant %d, %s: %+v =\n%v\nwant (tlsrpt_daily)\n%v", i, ti, dt.name, q, got, want)
				}
			}
		}
	}
	for _, dt := range rollupTables() {
		var bad int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+dt.name+` WHERE sessions <= 0`).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if bad > 0 {
			t.Errorf("%s: %d rows without sessions", dt.name, bad)
		}
	}
}

// hasCols reports whether dt holds the columns q groups and filters by.
func hasCols(dt rollupTable, q RollupQuery, cols []string) bool {
	for _, c := range cols {
		if c != "day" && !slices.Contains(dt.cols, c) {
			return false
		}
	}
	return q.PolicyType == "" || slices.Contains(dt.cols, "policy_type")
}

func sameRow(a, b RollupRow) bool {
	a.Day, b.Day = time.Time{}, time.Time{}
	return a == b
}

// TestMigrateRollups: migration 4 fills the derived rollups from
// tlsrpt_daily, by the organizations hosting the domains (0 for a domain
// nobody hosts), on both databases.
func TestMigrateRollups(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		dia  goose.Dialect
		d    dialect
		open func(t *testing.T) (*sql.DB, Options)
	}{
		{"sqlite", goose.DialectSQLite3, sqliteDialect(), func(t *testing.T) (*sql.DB, Options) {
			dir := t.TempDir()
			w, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, SQLiteFile), true))
			if err != nil {
				t.Fatal(err)
			}
			return w, Options{DataDir: dir}
		}},
		{"postgres", goose.DialectPostgres, postgresDialect(), func(t *testing.T) (*sql.DB, Options) {
			url := pgtest.NewDatabase(t)
			w, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			return w, Options{URL: url}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rnd := rand.New(rand.NewPCG(5, 6))
			w, opts := tc.open(t)
			migrateTo(ctx, t, tc.dia, tc.name, w, 3)
			at := tc.d.timeArg
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			var orgs []int64
			for _, name := range []string{"a", "b"} {
				var id int64
				if err := w.QueryRowContext(ctx, `INSERT INTO orgs (name, display_name, accent, logo, logo_type, created_at)
					VALUES ($1, $1, '', $2, '', $3) RETURNING id`, name, []byte{}, at(created)).Scan(&id); err != nil {
					t.Fatal(err)
				}
				orgs = append(orgs, id)
			}
			for i, name := range []string{"a1.example", "a2.example", "b1.example"} {
				if _, err := w.ExecContext(ctx, `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version,
					created_at, updated_at, org_id) VALUES ($1, 'testing', '[]', 86400, '[]', 'id1', 1, $2, $2, $3)`,
					name, at(created), orgs[i/2]); err != nil {
					t.Fatal(err)
				}
			}
			base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			pick := func(l ...string) string { return l[rnd.IntN(len(l))] }
			tx, err := w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 600 {
				d := base.AddDate(0, 0, rnd.IntN(700)-350)
				if rnd.IntN(20) == 0 {
					d = time.Date(1969, 12, 15+rnd.IntN(30), 0, 0, 0, 0, time.UTC)
				}
				result, ip, mx := pick("success", "success", "certificate-expired"), "", ""
				if result != "success" {
					ip, mx = pick("192.0.2.1", "192.0.2.2"), pick("mx1.example", "")
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO tlsrpt_daily (domain, day, policy_type, result_type,
					organization, sending_ip, receiving_mx, sessions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
					ON CONFLICT (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx)
					DO UPDATE SET sessions = tlsrpt_daily.sessions + excluded.sessions`,
					pick("a1.example", "a2.example", "b1.example", "nobody.example"), at(d), pick("sts", "tlsa"),
					result, pick("Google", "Yahoo"), ip, mx, 1+rnd.IntN(100)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := Open(ctx, nil, opts)
			if err != nil {
				t.Fatalf("Open after migration 3: %v", err)
			}
			defer st.Close()
			checkDerived(t, st.(*sqlStore), rnd, orgs, base, 40)
		})
	}
}

// TestDerivedRollupsConcurrent: batches of reports stored while their
// domains are hosted and deleted, side by side (on PostgreSQL; SQLite's
// writers take turns), leave the derived tables what tlsrpt_daily says.
func TestDerivedRollupsConcurrent(t *testing.T) {
	t.Parallel()
	for _, db := range []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"sqlite", func(t *testing.T) Options { return Options{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) Options { return Options{URL: pgtest.NewDatabase(t)} }},
	} {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			st, err := Open(t.Context(), nil, db.opts(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			s := st.(*sqlStore)
			ctx := t.Context()
			var orgs []int64
			for _, name := range []string{"a", "b"} {
				o := &Org{Name: name}
				if err := s.CreateOrg(ctx, o); err != nil {
					t.Fatal(err)
				}
				orgs = append(orgs, o.ID)
			}
			domains := []string{"d0.example", "d1.example", "d2.example"}
			base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 3 {
				wg.Go(func() {
					for b := range 15 {
						var batch []*TLSRPTReport
						for i := range 6 {
							domain, d := domains[(b+i)%len(domains)], base.AddDate(0, 0, (w*7+b*3+i)%40)
							batch = append(batch, &TLSRPTReport{Source: "https", Raw: fmt.Appendf(nil, "%d-%d-%d", w, b, i),
								Status: ReportOK, Domains: []string{domain}, Rollups: []TLSRPTRollup{
									{Day: d, Domain: domain, PolicyType: "sts", ResultType: "success", Organization: "G", Sessions: int64(1 + i)},
									{Day: d, Domain: domain, PolicyType: "sts", ResultType: "certificate-expired", Organization: "G",
										SendingIP: fmt.Sprint("192.0.2.", w), ReceivingMX: "mx." + domain, Sessions: 1},
								}})
						}
						if _, err := s.InsertTLSRPT(ctx, batch); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Go(func() {
				for i := range 24 {
					d := domains[i%len(domains)]
					if i/len(domains)%2 == 0 {
						err := s.CreateDomain(ctx, &Domain{Name: d, Mode: "testing", OrgID: orgs[i%2], MaxAge: 86400},
							&PolicyVersion{PolicyID: "1", Mode: "testing", Policy: "version: STSv1"})
						if err != nil {
							errs <- err
							return
						}
					} else if err := s.DeleteDomain(ctx, d); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			checkDerived(t, s, rand.New(rand.NewPCG(7, 8)), orgs, base, 20)
		})
	}
}
