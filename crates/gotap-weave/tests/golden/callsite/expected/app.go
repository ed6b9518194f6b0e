//line input/app.go:1
package app

import (
	"context"
	dbsql "database/sql"
	"strconv"
)

type Store struct {
	db *dbsql.DB
}

// Multi-value results, an argument with a side effect, a call nested in another.
func (s *Store) Parse(in string) (int, error) {
	n, err := /*line gotap-rule-atoi.go:1:1*/gotapAfter(/*line input/app.go:15:12*/strconv.Atoi(/*line gotap-rule-trim.go:1:1*/func() string {
	gotapCalls++
	return /*line input/app.go:15:25*/trim(in)/*line gotap-rule-trim.go:1:1*/
}()/*line input/app.go:15:33*/)/*line gotap-rule-atoi.go:1:1*/)/*line input/app.go:15:34*/
	if err != nil {
		return 0, err
	}
	return /*line gotap-rule-atoi.go:1:1*/gotapAfter(/*line input/app.go:19:9*/strconv.Atoi(strconv.Itoa(n))/*line gotap-rule-atoi.go:1:1*/)/*line input/app.go:19:38*/
}

func trim(s string) string { return s }

func (s *Store) Names(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name FROM t")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Not strconv.Atoi: a local variable of the same name (object resolution, or go/types, tells).
func shadowed() (int, error) {
	strconv := struct{ Atoi func(string) (int, error) }{Atoi: func(string) (int, error) { return 0, nil }}
	return strconv.Atoi("1")
}


//line gotap-rule-atoi-declarations.go:1
func gotapAfter[T any](v T, err error) (T, error) {
	gotapCalls++
	return v, err
}

var gotapCalls int

