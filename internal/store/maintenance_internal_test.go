package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
)

// TestUpgradeFromFirstSchema: a database made by the first release's
// schema (migration 1 only: domains, policy versions, the key/value area
// with certificates, locks) is upgraded by Open to the newest schema, and
// nothing in it is lost.
func TestUpgradeFromFirstSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	w, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, SQLiteFile), true))
	if err != nil {
		t.Fatal(err)
	}
	migrateTo(ctx, t, goose.DialectSQLite3, "sqlite", w, 1)
	at := sqliteDialect().timeArg
	created := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		name := fmt.Sprintf("d%d.example", i)
		if _, err := w.ExecContext(ctx, `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, version, created_at, updated_at)
			VALUES ($1, 'enforce', '["mx.example"]', 86400, '["mailto:x@example.net"]', 'id2', 2, $2, $2)`, name, at(created)); err != nil {
			t.Fatal(err)
		}
		for v := 1; v <= 2; v++ {
			if _, err := w.ExecContext(ctx, `INSERT INTO policy_versions (domain, version, policy_id, mode, mx, max_age, policy, created_at)
				VALUES ($1, $2, $3, 'testing', '["mx.example"]', 86400, 'version: STSv1', $4)`, name, v, fmt.Sprintf("id%d", v), at(created)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO kv (key, value, modified) VALUES ('certmagic/certificates/x/a.crt', x'0102', $1)`, at(created)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, nil, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open the first schema's database: %v", err)
	}
	defer st.Close()
	ms, err := MigrationStatus(ctx, nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !m.Applied {
			t.Errorf("migration %s not applied", m.Name)
		}
	}
	ds, err := st.Domains(ctx)
	if err != nil || len(ds) != 3 {
		t.Fatalf("domains after the upgrade: %d, %v", len(ds), err)
	}
	for _, d := range ds {
		vs, err := st.PolicyVersions(ctx, d.Name)
		if err != nil || len(vs) != 2 || d.PolicyID != "id2" || d.Mode != "enforce" || len(d.RUA) != 1 || d.OrgID == 0 || !d.CreatedAt.Equal(created) {
			t.Errorf("%s after the upgrade: %+v, %d versions, %v", d.Name, d, len(vs), err)
		}
	}
	if v, err := st.Get(ctx, "certmagic/certificates/x/a.crt"); err != nil || string(v) != "\x01\x02" {
		t.Errorf("certificate after the upgrade: %q, %v", v, err)
	}
	if o, err := st.OrgByName(ctx, "default"); err != nil || o.ID != ds[0].OrgID {
		t.Errorf("organization of the old domains: %+v, %v", o, err)
	}
}

// TestBackupWhileWriting: a backup taken while another goroutine commits
// domains is a consistent database holding a prefix of them, and Restore
// puts it back, keeping what it replaces, but not while serve runs.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := Open(ctx, slog.New(slog.DiscardHandler), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	org := &Org{Name: "o"}
	if err := st.CreateOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	var (
		written atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("w%05d.example", i)
			now := normTime(time.Now())
			d := &Domain{Name: name, Mode: "testing", MX: []string{"mx.example"}, MaxAge: 86400, PolicyID: "id", Version: 1, OrgID: org.ID, CreatedAt: now, UpdatedAt: now}
			v := &PolicyVersion{Domain: name, Version: 1, PolicyID: "id", Mode: "testing", MX: d.MX, MaxAge: 86400, Policy: "p", CreatedAt: now}
			if err := st.CreateDomain(ctx, d, v); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	})
	for written.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	err = st.Backup(ctx, backup)
	during := written.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Backup(ctx, backup); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("backup over an existing file: %v", err)
	}
	info, err := CheckDatabase(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	if info.Domains < 50 || info.Domains > during || info.Orgs != 1 {
		t.Errorf("backup holds %d domains, %d organizations; %d were written before it began and %d when it ended", info.Domains, info.Orgs, 50, during)
	}
	total := written.Load()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restore refuses while serve holds the data directory.
	unlock, err := LockServe(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, dir, backup); err == nil || !strings.Contains(err.Error(), "moat serve is running") {
		t.Errorf("restore while serving: %v", err)
	}
	unlock()
	if _, err := Restore(ctx, dir, backup); err != nil {
		t.Fatal(err)
	}
	st, err = Open(ctx, nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ds, _ := st.Domains(ctx)
	if int64(len(ds)) != info.Domains {
		t.Errorf("restored database has %d domains, the backup %d", len(ds), info.Domains)
	}
	// The replaced database is kept, with everything written.
	kept, _ := filepath.Glob(filepath.Join(dir, SQLiteFile+".replaced-*"))
	var main string
	for _, k := range kept {
		if !strings.HasSuffix(k, "-wal") && !strings.HasSuffix(k, "-shm") {
			main = k
		}
	}
	if main == "" {
		t.Fatalf("the replaced database was not kept: %v", kept)
	}
	if old, err := CheckDatabase(ctx, main); err != nil || old.Domains != total {
		t.Errorf("kept database: %d domains, %v; %d were written", old.Domains, err, total)
	}
	// A file that is no database is refused with a reason.
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("not a database at all"), 0o600)
	if _, err := Restore(ctx, dir, junk); err == nil || !strings.Contains(err.Error(), "not an SQLite database") {
		t.Errorf("restore of junk: %v", err)
	}
}
