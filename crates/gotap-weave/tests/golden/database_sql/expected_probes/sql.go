//line input/sql.go:1
// Trimmed from Go 1.26 database/sql/sql.go: the join points of rules/database_sql.yaml.

package sql

import (
	"context"
	"database/sql/driver"
)

func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (Result, error) {
//line gotap-rule-databasesql-probe-db-exec.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && db != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRes, gotapErr := db.ExecContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-db-query.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && db != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRows, gotapErr := db.QueryContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-conn-exec.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && c != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRes, gotapErr := c.ExecContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, c.db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-conn-query.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && c != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRows, gotapErr := c.QueryContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, c.db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-tx-exec.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && tx != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRes, gotapErr := tx.ExecContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, tx.db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-tx-query.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && tx != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRows, gotapErr := tx.QueryContext(gotapCtx, query, args...)
		gotapProbeSQLEnd(gotapRec, tx.db, query, gotapErr)
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
//line gotap-rule-databasesql-probe-stmt-exec.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && s != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRes, gotapErr := s.ExecContext(gotapCtx, args...)
		gotapProbeSQLEnd(gotapRec, s.db, s.query, gotapErr)
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
//line gotap-rule-databasesql-probe-stmt-query.go:1
if gotapProbeSemaphore[0]|gotapBatchSemaphore[0] != 0 && s != nil && ctx != nil {
	if gotapCtx, gotapRec := gotapProbeSQLBegin(ctx); gotapRec != nil {
		gotapRows, gotapErr := s.QueryContext(gotapCtx, args...)
		gotapProbeSQLEnd(gotapRec, s.db, s.query, gotapErr)
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
//line gotap-rule-databasesql-probe-open.go:1
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
//line gotap-rule-databasesql-probe-close.go:1
gotapDBServers.Delete(db)
defer gotapBatchFlush()
/*line input/sql.go:159:30*/
	db.mu.Lock()
	if db.closed { // Make DB.Close idempotent
		db.mu.Unlock()
		return nil
	}
	return db.closeLocked()
}
