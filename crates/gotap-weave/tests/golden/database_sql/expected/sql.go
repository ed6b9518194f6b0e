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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, c.db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, c.db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, tx.db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, tx.db.Driver(), query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, s.db.Driver(), s.query); gotapEnd != nil {
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
	if gotapCtx, gotapEnd := gotapSQLStart(ctx, s.db.Driver(), s.query); gotapEnd != nil {
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



//line gotap-rule-database-sql-db-query-declarations.go:1
// gotapSQLStart starts a client span for a query on a database of driver drv; it returns
// the context for the call and the function ending the span, or a nil end when ctx is the
// one it returned (the advice's own second call).
var gotapSQLStart func(ctx context.Context, drv driver.Driver, query string) (context.Context, func(error))

//go:linkname gotapSetSQLStart
func gotapSetSQLStart(f func(context.Context, driver.Driver, string) (context.Context, func(error))) {
	gotapSQLStart = f
}

