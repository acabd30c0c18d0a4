package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// migrateTo brings the schema of db to version, as an older Moat left it.
func migrateTo(ctx context.Context, t *testing.T, dia goose.Dialect, dir string, db *sql.DB, version int64) {
	t.Helper()
	fsys, err := fs.Sub(migrations, "migrations/"+dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(dia, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		t.Fatalf("migrate to %d: %v", version, err)
	}
}

// TestMigrateAccounts: migration 3 keeps the domains hosted before
// organizations existed, under the organization "default", and fills in
// the newest report of each domain; on a database without domains it
// creates no organization.
func TestMigrateAccounts(t *testing.T) {
	t.Parallel()
	type db struct {
		name string
		dia  goose.Dialect
		d    dialect
		open func(t *testing.T) (*sql.DB, Options)
	}
	dbs := []db{
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
	}
	for _, tc := range dbs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			received := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

			w, opts := tc.open(t)
			migrateTo(ctx, t, tc.dia, tc.name, w, 2)
			at := tc.d.timeArg
			for _, name := range []string{"b.example", "a.example"} {
				if _, err := w.ExecContext(ctx, `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version, created_at, updated_at)
					VALUES ($1, 'testing', '["mx.example"]', 86400, '[]', 'id1', 1, $2, $2)`, name, at(created)); err != nil {
					t.Fatal(err)
				}
				if _, err := w.ExecContext(ctx, `INSERT INTO policy_versions (domain, version, policy_id, mode, mx, max_age, policy, created_at)
					VALUES ($1, 1, 'id1', 'testing', '["mx.example"]', 86400, 'version: STSv1', $2)`, name, at(created)); err != nil {
					t.Fatal(err)
				}
			}
			var id int64
			if err := w.QueryRowContext(ctx, `INSERT INTO tlsrpt_reports (received_at, source, source_detail, raw, raw_gzip,
				raw_size, digest, media_type, dkim, status, error, warnings, organization, report_id, contact, dated,
				start_time, end_time, domains, hosted, successful, failed, normalized)
				VALUES ($1, 'https', '', $2, false, 2, 'digest', '', '', 'ok', '', '[]', 'Org', 'r1', '', 3, $1, $1,
				'["a.example"]', true, 1, 0, $2) RETURNING id`, at(received), []byte("{}")).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ExecContext(ctx, `INSERT INTO tlsrpt_report_domains (domain, end_time, report, start_time)
				VALUES ('a.example', $1, $2, $1)`, at(received), id); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			st, err := Open(ctx, nil, opts)
			if err != nil {
				t.Fatalf("Open after migration 2: %v", err)
			}
			defer st.Close()
			orgs, err := st.Orgs(ctx)
			if err != nil || len(orgs) != 1 || orgs[0].Name != "default" || orgs[0].DisplayName != "Default" ||
				orgs[0].ParentID != 0 || !orgs[0].CreatedAt.Equal(created) {
				t.Fatalf("Orgs after migration = %+v, %v; want default, created with the first domain", orgs, err)
			}
			ds, err := st.Domains(ctx)
			if err != nil || len(ds) != 2 {
				t.Fatalf("Domains after migration = %v, %v", ds, err)
			}
			for _, d := range ds {
				if d.OrgID != orgs[0].ID {
					t.Errorf("domain %s: organization %d, want default (%d)", d.Name, d.OrgID, orgs[0].ID)
				}
			}
			ov, err := st.Scoped(Scope{Orgs: []int64{orgs[0].ID}}).Overview(ctx, OverviewQuery{})
			if err != nil || len(ov) != 2 || !ov[0].LastReport.Equal(received) || !ov[1].LastReport.IsZero() {
				t.Errorf("Overview after migration = %+v, %v; want a.example's report of %v", ov, err, received)
			}
			// A domain cannot lose its organization.
			if _, err := st.(*sqlStore).w.ExecContext(ctx, `UPDATE domains SET org_id = NULL`); err == nil {
				t.Error("domains.org_id took NULL")
			}

			// Without domains, no organization.
			w, opts = tc.open(t)
			migrateTo(ctx, t, tc.dia, tc.name, w, 2)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			empty, err := Open(ctx, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer empty.Close()
			if orgs, err := empty.Orgs(ctx); err != nil || len(orgs) != 0 {
				t.Errorf("Orgs of a migrated empty database = %v, %v; want none", orgs, err)
			}
		})
	}
}
