package store

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/moatmail/moat/internal/store/pgtest"
)

// TestMigrateDMARC: migration 5 keeps the intake log (ids, and the id
// sequence: an id once used is not handed out again), marks its rows as
// TLS-RPT submissions, and lets DMARC submissions join it.
func TestMigrateDMARC(t *testing.T) {
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
			at := tc.d.timeArg(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
			w, opts := tc.open(t)
			migrateTo(ctx, t, tc.dia, tc.name, w, 3)
			for _, outcome := range []string{"stored", "invalid"} {
				if _, err := w.ExecContext(ctx, `INSERT INTO intake_log (at, source, detail, outcome, report, reason, reporter,
					report_name, domains) VALUES ($1, 'smtp', 'from=<a@b>', $2, NULL, '', 'Org', 'r1', '[]')`, at, outcome); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.ExecContext(ctx, `DELETE FROM intake_log WHERE outcome = 'invalid'`); err != nil {
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
			op := st.Scoped(Scope{Operator: true})
			log, err := op.IntakeLog(ctx, IntakeQuery{})
			if err != nil || len(log) != 1 || log[0].ID != 1 || log[0].Kind != KindTLSRPT || log[0].Outcome != "stored" || log[0].Reporter != "Org" {
				t.Fatalf("intake log after migration = %+v, %v", log, err)
			}
			if _, err := st.InsertDMARC(ctx, DMARCBatch{Reports: []*DMARCReport{{Source: "import", Raw: []byte("x"),
				Status: ReportInvalid, Error: "not XML", Pct: -1}}}); err != nil {
				t.Fatal(err)
			}
			log, err = op.IntakeLog(ctx, IntakeQuery{Kind: KindDMARC})
			if err != nil || len(log) != 1 || log[0].ID != 3 || log[0].Outcome != OutcomeInvalid || log[0].Reason != "not XML" {
				t.Errorf("the DMARC submission's log row = %+v, %v; want id 3 (2 was used before)", log, err)
			}
		})
	}
}
