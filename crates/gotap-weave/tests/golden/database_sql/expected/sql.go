//line input/sql.go:1
// Trimmed from Go 1.26 database/sql/sql.go: the join points of rules/database_sql.yaml.

package sql; import _ "unsafe"

import (
	"context"
	"database/sql/driver"
)

func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (Result, error) {
//line gotap-rule-database-sql-db-exec.go:1
if gotapSQLStart != nil && db != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, db, query); gotapEnd != nil {
		gotapRes, gotapErr := db.ExecContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRes, gotapErr
	}
}
/*line input/sql.go:10:92*/
	var res Result
	var err error

	err = db.retry(func(strategy connReuseStrategy) error {
		res, err = db.exec(ctx, query, args, strategy)
		return err
	})

	return res, err
}

func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*Rows, error) {
//line gotap-rule-database-sql-db-query.go:1
if gotapSQLStart != nil && db != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, db, query); gotapEnd != nil {
		gotapRows, gotapErr := db.QueryContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRows, gotapErr
	}
}
/*line input/sql.go:22:92*/
	var rows *Rows
	var err error

	err = db.retry(func(strategy connReuseStrategy) error {
		rows, err = db.query(ctx, query, args, strategy)
		return err
	})

	return rows, err
}

func (c *Conn) ExecContext(ctx context.Context, query string, args ...any) (Result, error) {
//line gotap-rule-database-sql-conn-exec.go:1
if gotapSQLStart != nil && c != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, c.db, query); gotapEnd != nil {
		gotapRes, gotapErr := c.ExecContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRes, gotapErr
	}
}
/*line input/sql.go:34:93*/
	dc, release, err := c.grabConn(ctx)
	if err != nil {
		return nil, err
	}
	return c.db.execDC(ctx, dc, release, query, args)
}

func (c *Conn) QueryContext(ctx context.Context, query string, args ...any) (*Rows, error) {
//line gotap-rule-database-sql-conn-query.go:1
if gotapSQLStart != nil && c != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, c.db, query); gotapEnd != nil {
		gotapRows, gotapErr := c.QueryContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRows, gotapErr
	}
}
/*line input/sql.go:42:93*/
	dc, release, err := c.grabConn(ctx)
	if err != nil {
		return nil, err
	}
	return c.db.queryDC(ctx, nil, dc, release, query, args)
}

func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (Result, error) {
//line gotap-rule-database-sql-tx-exec.go:1
if gotapSQLStart != nil && tx != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, tx.db, query); gotapEnd != nil {
		gotapRes, gotapErr := tx.ExecContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRes, gotapErr
	}
}
/*line input/sql.go:50:92*/
	dc, release, err := tx.grabConn(ctx)
	if err != nil {
		return nil, err
	}
	return tx.db.execDC(ctx, dc, release, query, args)
}

func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*Rows, error) {
//line gotap-rule-database-sql-tx-query.go:1
if gotapSQLStart != nil && tx != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, tx.db, query); gotapEnd != nil {
		gotapRows, gotapErr := tx.QueryContext(gotapCtx, query, args...)
		gotapEnd(gotapErr)
		return gotapRows, gotapErr
	}
}
/*line input/sql.go:58:92*/
	dc, release, err := tx.grabConn(ctx)
	if err != nil {
		return nil, err
	}

	return tx.db.queryDC(ctx, tx.ctx, dc, release, query, args)
}

func (s *Stmt) ExecContext(ctx context.Context, args ...any) (Result, error) {
//line gotap-rule-database-sql-stmt-exec.go:1
if gotapSQLStart != nil && s != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, s.db, s.query); gotapEnd != nil {
		gotapRes, gotapErr := s.ExecContext(gotapCtx, args...)
		gotapEnd(gotapErr)
		return gotapRes, gotapErr
	}
}
/*line input/sql.go:67:79*/
	s.closemu.RLock()
	defer s.closemu.RUnlock()

	var res Result
	err := s.db.retry(func(strategy connReuseStrategy) error {
		dc, releaseConn, ds, err := s.connStmt(ctx, strategy)
		if err != nil {
			return err
		}

		res, err = resultFromStatement(ctx, dc.ci, ds, args...)
		releaseConn(err)
		return err
	})

	return res, err
}

func (s *Stmt) QueryContext(ctx context.Context, args ...any) (*Rows, error) {
//line gotap-rule-database-sql-stmt-query.go:1
if gotapSQLStart != nil && s != nil && ctx != nil {
	if gotapCtx, gotapEnd := gotapSQLBegin(ctx, s.db, s.query); gotapEnd != nil {
		gotapRows, gotapErr := s.QueryContext(gotapCtx, args...)
		gotapEnd(gotapErr)
		return gotapRows, gotapErr
	}
}
/*line input/sql.go:86:79*/
	s.closemu.RLock()
	defer s.closemu.RUnlock()

	var rowsi driver.Rows
	var rows *Rows

	err := s.db.retry(func(strategy connReuseStrategy) error {
		dc, releaseConn, ds, err := s.connStmt(ctx, strategy)
		if err != nil {
			return err
		}

		rowsi, err = rowsiFromStatement(ctx, dc.ci, ds, args...)
		if err == nil {
			// Note: ownership of ci passes to the *Rows, to be freed
			// with releaseConn.
			rows = &Rows{
				dc:    dc,
				rowsi: rowsi,
				// releaseConn set below
			}
			// addDep must be added before initContextClose or it could attempt
			// to removeDep before it has been added.
			s.db.addDep(s, rows)

			// releaseConn must be set before initContextClose or it could
			// release the connection before it is set.
			rows.releaseConn = func(err error) {
				releaseConn(err)
				s.db.removeDep(s, rows)
			}
			var txctx context.Context
			if s.cg != nil {
				txctx = s.cg.txCtx()
			}
			rows.initContextClose(ctx, txctx)
			return nil
		}

		releaseConn(err)
		return err
	})

	return rows, err
}

// The methods without a context are left alone: they call the ones above.
func (db *DB) Query(query string, args ...any) (*Rows, error) {
	return db.QueryContext(context.Background(), query, args...)
}


// Open and Close: the DSN's server is recorded per DB and forgotten at Close.
func Open(driverName, dataSourceName string) (*DB, error) {
//line gotap-rule-database-sql-open.go:1
return gotapOpen(driverName, dataSourceName)
/*line input/sql.go:140:60*/
	driversMu.RLock()
	driveri, ok := drivers[driverName]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("sql: unknown driver %q (forgotten import?)", driverName)
	}

	if driverCtx, ok := driveri.(driver.DriverContext); ok {
		connector, err := driverCtx.OpenConnector(dataSourceName)
		if err != nil {
			return nil, err
		}
		return OpenDB(connector), nil
	}

	return OpenDB(dsnConnector{dsn: dataSourceName, driver: driveri}), nil
}

func (db *DB) Close() error {
//line gotap-rule-database-sql-close.go:1
gotapDBServers.Delete(db)
/*line input/sql.go:159:30*/
	db.mu.Lock()
	if db.closed { // Make DB.Close idempotent
		db.mu.Unlock()
		return nil
	}
	return db.closeLocked()
}


//line gotap-rule-database-sql-db-query-declarations.go:1
// gotapSQLStart starts a client span for a query on a database of driver drv at
// address:port (each "" or 0 when unknown) holding database namespace; it returns the
// context for the call and the function ending the span, or a nil end when ctx is the one
// it returned (the advice's own second call).
var gotapSQLStart func(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error))

//go:linkname gotapSetSQLStart
func gotapSetSQLStart(f func(ctx context.Context, drv driver.Driver, address string, port int, namespace, query string) (context.Context, func(error))) {
	gotapSQLStart = f
}

// gotapSQLBegin calls the hook with db's driver and server (parsed at Open: gotap_dsn.go).
func gotapSQLBegin(ctx context.Context, db *DB, query string) (context.Context, func(error)) {
	srv := gotapServerOf(db)
	return gotapSQLStart(ctx, db.Driver(), srv.address, srv.port, srv.namespace, query)
}

