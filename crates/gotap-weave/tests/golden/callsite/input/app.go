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
	n, err := strconv.Atoi(trim(in))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strconv.Itoa(n))
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
