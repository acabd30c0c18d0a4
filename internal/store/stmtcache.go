package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// The SQLite writer's statement cache. modernc.org/sqlite parses the SQL
// text of every ExecContext and QueryContext anew (sqlite3_prepare); the
// writer runs the same few statements for every report (and the bulk
// INSERTs with the same few row counts), and their parsing took 6–10% of
// the intake's CPU. The writer's one connection is wrapped so that
// database/sql prepares every statement through it (it offers no
// ExecerContext or QueryerContext), and the wrapper keeps up to
// stmtCacheSize prepared statements by SQL text, least recently used out
// first. A statement is handed out to one user at a time: a query whose
// rows are still open when the same text runs again gets a statement of
// its own, closed after use as before.

// stmtCacheSize bounds the statements kept per writer connection, and
// stmtCacheMaxText the SQL text of a statement kept: a bulk INSERT of
// hundreds of rows (thousands of parameters) is parsed once for all its
// rows anyway, and a prepared one holds megabytes (128 of them took the
// import of a report of a million records from 120 to 516 MB).
const (
	stmtCacheSize    = 64
	stmtCacheMaxText = 4 << 10
)

// cachingConnector opens SQLite connections wrapped in a statement cache.
type cachingConnector struct {
	dsn string
	drv driver.Driver // modernc.org/sqlite's, as registered under "sqlite"
}

var _ driver.Connector = (*cachingConnector)(nil)

func (c *cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close() // the type is the error
		return nil, fmt.Errorf("store: the sqlite driver's connection is a %T, which lacks a method the statement cache needs", conn)
	}
	return &cachingConn{c: inner, byText: make(map[string]*list.Element), lru: list.New()}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what the cache needs of modernc.org/sqlite's connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.SessionResetter
	driver.Validator
	driver.Pinger
}

// cachingConn is one connection and its prepared statements. database/sql
// uses a connection from one goroutine at a time, so it has no lock.
type cachingConn struct {
	c      sqliteConn
	byText map[string]*list.Element // of *cachedStmt
	lru    *list.List               // front: the most recently used
}

var (
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
)

// cachedStmt is a prepared statement of the cache; inUse while handed out.
type cachedStmt struct {
	conn    *cachingConn
	text    string
	s       driver.Stmt
	inUse   bool
	evicted bool // out of the cache: closed when given back
}

func (cc *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return cc.PrepareContext(context.Background(), query)
}

func (cc *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if e, ok := cc.byText[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.inUse {
			return cc.c.PrepareContext(ctx, query) // a nested use: a statement of its own
		}
		cs.inUse = true
		cc.lru.MoveToFront(e)
		return cs, nil
	}
	if len(query) > stmtCacheMaxText {
		return cc.c.PrepareContext(ctx, query) // closed after use, as without the cache
	}
	s, err := cc.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{conn: cc, text: query, s: s, inUse: true}
	cc.byText[query] = cc.lru.PushFront(cs)
	if cc.lru.Len() > stmtCacheSize {
		old := cc.lru.Back().Value.(*cachedStmt)
		cc.lru.Remove(cc.lru.Back())
		delete(cc.byText, old.text)
		old.evicted = true
		if !old.inUse {
			if err := old.s.Close(); err != nil {
				return nil, errors.Join(err, cs.Close())
			}
		}
	}
	return cs, nil
}

func (cc *cachingConn) Close() error {
	var errs []error
	for e := cc.lru.Front(); e != nil; e = e.Next() {
		errs = append(errs, e.Value.(*cachedStmt).s.Close())
	}
	cc.lru.Init()
	clear(cc.byText)
	return errors.Join(append(errs, cc.c.Close())...)
}

//nolint:staticcheck // driver.Conn requires Begin; database/sql calls BeginTx
func (cc *cachingConn) Begin() (driver.Tx, error) {
	return cc.c.BeginTx(context.Background(), driver.TxOptions{})
}

func (cc *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return cc.c.BeginTx(ctx, opts)
}

func (cc *cachingConn) ResetSession(ctx context.Context) error { return cc.c.ResetSession(ctx) }

func (cc *cachingConn) IsValid() bool { return cc.c.IsValid() }

func (cc *cachingConn) Ping(ctx context.Context) error { return cc.c.Ping(ctx) }

// Close gives the statement back to the cache (database/sql closes a
// statement it prepared for one Exec or Query once done with it).
func (cs *cachedStmt) Close() error {
	cs.inUse = false
	if cs.evicted {
		return cs.s.Close()
	}
	return nil
}

func (cs *cachedStmt) NumInput() int { return cs.s.NumInput() }

//nolint:staticcheck // driver.Stmt requires Exec; database/sql calls ExecContext
func (cs *cachedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return cs.s.Exec(args) //nolint:staticcheck // see above
}

//nolint:staticcheck // driver.Stmt requires Query; database/sql calls QueryContext
func (cs *cachedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return cs.s.Query(args) //nolint:staticcheck // see above
}

func (cs *cachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s, ok := cs.s.(driver.StmtExecContext); ok {
		return s.ExecContext(ctx, args)
	}
	return nil, fmt.Errorf("store: the sqlite driver's statement is a %T, without ExecContext", cs.s)
}

func (cs *cachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s, ok := cs.s.(driver.StmtQueryContext); ok {
		return s.QueryContext(ctx, args)
	}
	return nil, fmt.Errorf("store: the sqlite driver's statement is a %T, without QueryContext", cs.s)
}
