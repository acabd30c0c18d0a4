package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"path/filepath"
	"strings"
	"testing"
)

// TestStmtCache drives the writer's statement cache through database/sql:
// repeated statements, the same query nested in its own open rows, and
// more distinct statements than the cache holds.
func TestStmtCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg, err := sql.Open("sqlite", "")
	if err != nil {
		t.Fatal(err)
	}
	drv := reg.Driver()
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(&cachingConnector{dsn: sqliteDSN(filepath.Join(t.TempDir(), "c.db"), true), drv: drv})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The same query while its rows are open: a statement of its own.
	const q = `SELECT k, v FROM t WHERE k >= $1 ORDER BY k`
	rows, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var (
			k int
			v string
		)
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		var inner int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+q+`)`, k).Scan(&inner); err != nil || inner != 50-k {
			t.Fatalf("nested count from %d: %d, %v; want %d", k, inner, err, 50-k)
		}
		var k2 int
		if err := tx.QueryRowContext(ctx, q, k).Scan(&k2, &v); err != nil || k2 != k {
			t.Fatalf("nested same query from %d: %d, %v", k, k2, err)
		}
		n++
	}
	if err := rows.Close(); err != nil || n != 50 {
		t.Fatalf("outer rows: %d, %v; want 50", n, err)
	}
	// More distinct texts than the cache keeps: the oldest are evicted.
	for i := range 2*stmtCacheSize + 10 {
		var v string
		if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT v FROM t WHERE k = $1 AND %d = %d`, i, i), i%50).Scan(&v); err != nil || v != fmt.Sprint("v", i%50) {
			t.Fatalf("statement %d: %q, %v", i, v, err)
		}
	}
	// A statement too long to keep: prepared and closed each time.
	long := `SELECT count(*) FROM t WHERE k IN (` + strings.Repeat("-1, ", stmtCacheMaxText/4) + `$1)`
	for range 3 {
		var c int
		if err := tx.QueryRowContext(ctx, long, 7).Scan(&c); err != nil || c != 1 {
			t.Fatalf("long statement: %d, %v", c, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var count int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&count); err != nil || count != 50 {
		t.Fatalf("after commit: %d rows, %v", count, err)
	}
}

// TestBulkStatements: on SQLite a bulk INSERT goes in statements whose row
// counts are powers of two within sqliteBulkParams, all rows in order, and
// each statement's text fits the statement cache; on PostgreSQL in as few
// statements as maxBulkParams allows.
func TestBulkStatements(t *testing.T) {
	t.Parallel()
	for _, ncols := range []int{1, 5, 9, 18, 300} {
		for _, rows := range []int{0, 1, 2, 3, 7, 64, 200, 1000, 4097} {
			for _, anon := range []bool{true, false} {
				b := &bulk{head: "INSERT INTO t (" + strings.Repeat("c, ", ncols-1) + "c)", ncols: ncols, anon: anon}
				for i := range rows * ncols {
					b.args = append(b.args, i)
				}
				next, stmts, sizes := 0, 0, map[int]bool{}
				err := b.each(func(q string, args []any) error {
					stmts++
					n := len(args) / ncols
					if len(args)%ncols != 0 || n == 0 {
						t.Fatalf("%d cols: a statement of %d values", ncols, len(args))
					}
					if strings.Count(q, "?")+strings.Count(q, "$") != len(args) {
						t.Fatalf("%d cols: %d values for the text %.80q...", ncols, len(args), q)
					}
					for _, a := range args {
						if a.(int) != next {
							t.Fatalf("%d cols, %d rows: value %v where %d was due", ncols, rows, a, next)
						}
						next++
					}
					if anon {
						if n&(n-1) != 0 || (n > 1 && len(args) > sqliteBulkParams) || len(q) > stmtCacheMaxText && n > 1 {
							t.Errorf("%d cols: a statement of %d rows (%d values, %d bytes)", ncols, n, len(args), len(q))
						}
						sizes[n] = true
					} else if len(args) > maxBulkParams && n > 1 {
						t.Errorf("%d cols: %d values in one statement", ncols, len(args))
					}
					return nil
				})
				if err != nil || next != rows*ncols {
					t.Fatalf("%d cols, %d rows: %d values gone through, %v", ncols, rows, next, err)
				}
				if want := (rows*ncols + maxBulkParams/ncols*ncols - 1) / max(1, maxBulkParams/ncols*ncols); !anon && stmts != want {
					t.Errorf("postgres, %d cols, %d rows: %d statements, want %d", ncols, rows, stmts, want)
				}
				if anon && len(sizes) > bits.Len(uint(max(1, sqliteBulkParams/ncols))) {
					t.Errorf("sqlite, %d cols, %d rows: %d row counts", ncols, rows, len(sizes))
				}
			}
		}
	}
}
