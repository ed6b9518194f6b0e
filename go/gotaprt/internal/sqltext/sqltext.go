// Package sqltext sanitizes SQL for db.query.text and scrubs literals out of drivers' error
// texts, line for line as instrumentations/databasesql/spans.rs does (spans of probe sites and of
// gotap run): both strategies must export the same text for the same query. The corpus
// testdata/sanitize.txt is run against both. Kept apart from package gotaprt so that its
// test links without a woven standard library.
package sqltext

import (
	"slices"
	"sort"
	"strings"
)

// Parsed is what Scan learns from a query (db::ParsedQuery).
type Parsed struct {
	Sanitized, Operation, Collection string
}

// sqlTok is a name (a keyword or identifier, possibly qualified and quoted: word holds it
// unquoted, "public"."users" → public.users) or one punctuation byte; strings and numbers are
// punctuation too ('?', '0'), as in db.rs. A quoted name is never a keyword.
type sqlTok struct {
	word   string
	quoted bool
	punct  byte
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdent(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' || c == '.'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// sqlDialect mirrors db::Dialect: how a system writes literals.
type sqlDialect int

const (
	dialectOther sqlDialect = iota
	dialectPostgres
	dialectMySQL
	dialectSQLite
	dialectSQLServer
)

func dialectOf(system string) sqlDialect {
	switch system {
	case "postgresql":
		return dialectPostgres
	case "mysql", "mariadb":
		return dialectMySQL
	case "sqlite":
		return dialectSQLite
	case "microsoft.sql_server":
		return dialectSQLServer
	}
	return dialectOther
}

func (d sqlDialect) doubleQuotedStrings() bool { return d == dialectMySQL || d == dialectSQLite }
func (d sqlDialect) backslashEscapes() bool {
	return d == dialectMySQL || d == dialectOther || d == dialectSQLServer
}

// identQuote mirrors Dialect::ident_quote: the closing byte of a quoted identifier opened by c,
// 0 when c opens none. Backticks always do; double quotes where they are no strings, and in
// SQLite where a string cannot be (right after FROM/INTO/UPDATE/JOIN, or inside a name begun
// there); [brackets] in SQLite and SQL Server only (elsewhere `[` is an array or subscript).
func (d sqlDialect) identQuote(c byte, tableContext bool) byte {
	switch {
	case c == '`':
		return '`'
	case c == '"' && (!d.doubleQuotedStrings() || d == dialectSQLite && tableContext):
		return '"'
	case c == '[' && (d == dialectSQLite || d == dialectSQLServer):
		return ']'
	}
	return 0
}

// sqlTableContext mirrors db::table_context: the last token introduces a table (FROM, INTO,
// UPDATE, JOIN; not the FROM of IS [NOT] DISTINCT FROM, whose operand may be a string).
func sqlTableContext(toks []sqlTok) bool {
	n := len(toks)
	if n == 0 || toks[n-1].word == "" || toks[n-1].quoted {
		return false
	}
	w := toks[n-1].word
	if strings.EqualFold(w, "FROM") {
		return n < 2 || toks[n-2].quoted || !strings.EqualFold(toks[n-2].word, "DISTINCT")
	}
	return strings.EqualFold(w, "INTO") || strings.EqualFold(w, "UPDATE") || strings.EqualFold(w, "JOIN")
}

// sqlName mirrors db::name_end: the name starting at i (words, quoted identifiers and the dots
// between them, as one qualified name), its end and its text unquoted; quoted when a part was.
func sqlName(q string, i int, d sqlDialect, tableContext bool) (end int, name string, quoted bool) {
	var b strings.Builder
	for i < len(q) {
		if cl := d.identQuote(q[i], tableContext); cl != 0 {
			quoted = true
			j := i + 1
			for j < len(q) {
				if q[j] == cl {
					if cl != ']' && j+1 < len(q) && q[j+1] == cl {
						b.WriteByte(cl)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			i = min(j+1, len(q))
			if i+1 < len(q) && q[i] == '.' && (isIdentStart(q[i+1]) || d.identQuote(q[i+1], tableContext) != 0) {
				b.WriteByte('.')
				i++
				continue
			}
			break
		}
		if !isIdentStart(q[i]) {
			break
		}
		j := i
		for j < len(q) && isIdent(q[j]) {
			j++
		}
		b.WriteString(q[i:j])
		i = j
		if !(q[j-1] == '.' && i < len(q) && d.identQuote(q[i], tableContext) != 0) {
			break
		}
	}
	return i, b.String(), quoted
}

// sqlStringEnd mirrors db::string_end.
func sqlStringEnd(q string, i int, quote byte, backslash bool) int {
	i++
	for i < len(q) {
		switch {
		case backslash && q[i] == '\\':
			i += 2
		case q[i] == quote:
			if i+1 < len(q) && q[i+1] == quote {
				i += 2
			} else {
				return i + 1
			}
		default:
			i++
		}
	}
	return len(q)
}

// sqlDollarEnd mirrors db::dollar_end: -1 when the '$' at i opens no dollar quote.
func sqlDollarEnd(q string, i int) int {
	j := i + 1
	if j < len(q) && isIdentStart(q[j]) {
		for j < len(q) && (isAlnum(q[j]) || q[j] == '_') {
			j++
		}
	}
	if j >= len(q) || q[j] != '$' {
		return -1
	}
	tag := q[i : j+1]
	if k := strings.Index(q[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(q)
}

// Scan mirrors db::scan_for with the dialect of system (a db.system.name).
func Scan(q, system string) Parsed {
	return scanSQLLiterals(q, dialectOf(system), nil)
}

// scanSQLLiterals mirrors db::scan_literals: literal, when not nil, is called with the byte range
// of each string literal replaced.
func scanSQLLiterals(q string, d sqlDialect, literal func(start, end int)) Parsed {
	var out strings.Builder
	out.Grow(len(q))
	var toks []sqlTok
	i := 0
	pg := d == dialectPostgres
	for i < len(q) {
		c := q[i]
		start := i
		end := -1
		tableCtx := sqlTableContext(toks)
		if d.identQuote(c, tableCtx) != 0 || isIdentStart(c) && !(pg && (c == 'E' || c == 'e') && i+1 < len(q) && q[i+1] == '\'') {
			var name string
			var quoted bool
			i, name, quoted = sqlName(q, i, d, tableCtx)
			out.WriteString(q[start:i])
			toks = append(toks, sqlTok{word: name, quoted: quoted})
			continue
		}
		switch {
		case c == '\'' || c == '"' && d.doubleQuotedStrings():
			end = sqlStringEnd(q, i, c, d.backslashEscapes())
		case pg && (c == 'E' || c == 'e') && i+1 < len(q) && q[i+1] == '\'':
			end = sqlStringEnd(q, i+1, '\'', true)
		case pg && c == '$':
			end = sqlDollarEnd(q, i)
		}
		switch {
		case end >= 0:
			i = end
			if literal != nil {
				literal(start, end)
			}
			out.WriteByte('?')
			toks = append(toks, sqlTok{punct: '?'})
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			out.WriteString(q[start:i])
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i += 2
			for i < len(q) && !(q[i] == '*' && i+1 < len(q) && q[i+1] == '/') {
				i++
			}
			i = min(i+2, len(q))
			out.WriteString(q[start:i])
		case isDigit(c):
			glued := start > 0 && isIdent(q[start-1]) && q[start-1] != '.'
			for i < len(q) && (isAlnum(q[i]) || q[i] == '.' || q[i] == '_') {
				i++
			}
			if glued {
				out.WriteString(q[start:i])
			} else {
				out.WriteByte('?')
			}
			toks = append(toks, sqlTok{punct: '0'})
		default:
			// Any other byte; a multi-byte character is copied whole.
			n := 1
			if c >= 0x80 {
				for n < 4 && i+n < len(q) && q[i+n]&0xC0 == 0x80 {
					n++
				}
			}
			i += n
			out.WriteString(q[start:i])
			if !isSpace(c) {
				toks = append(toks, sqlTok{punct: c})
			}
		}
	}
	p := Parsed{Sanitized: out.String()}
	first := -1
	for j, t := range toks {
		if t.word != "" || t.quoted || t.punct != '(' {
			first = j
			break
		}
	}
	if first >= 0 && toks[first].word != "" && !toks[first].quoted && !strings.EqualFold(toks[first].word, "WITH") {
		p.Operation = strings.ToUpper(toks[first].word)
		p.Collection = sqlCollection(p.Operation, toks, first)
	}
	return p
}

// ScrubError mirrors db::scrub_error: the error text of a failed query without the query's
// string literals (drivers quote the statement, or the offending token or value), then without
// the inside of any quoted run left.
func ScrubError(msg, query, system string) string {
	d := dialectOf(system)
	var lits []string
	add := func(v string) {
		if len(v) < 3 || slices.Contains(lits, v) {
			return
		}
		lits = append(lits, v)
	}
	scanSQLLiterals(query, d, func(start, end int) {
		body := sqlLiteralBody(query[start:end], d)
		add(body)
		add(sqlUnescape(body))
	})
	sort.SliceStable(lits, func(a, b int) bool { return len(lits[a]) > len(lits[b]) })
	for _, l := range lits {
		msg = strings.ReplaceAll(msg, l, "?")
	}
	var out strings.Builder
	out.Grow(len(msg))
	copied := 0
	for i := 0; i < len(msg); {
		q := msg[i]
		if q != '\'' && q != '"' && q != '`' {
			i++
			continue
		}
		out.WriteString(msg[copied : i+1])
		out.WriteByte('?')
		p := strings.IndexByte(msg[i+1:], q)
		if p < 0 {
			copied, i = len(msg), len(msg)
			break
		}
		i += 1 + p
		copied = i
		i++
	}
	out.WriteString(msg[copied:])
	return out.String()
}

// sqlLiteralBody mirrors db::literal_body.
func sqlLiteralBody(lit string, d sqlDialect) string {
	if d == dialectPostgres && (lit[0] == 'E' || lit[0] == 'e') {
		lit = lit[1:]
	}
	if lit[0] == '$' {
		open := len(lit)
		if p := strings.IndexByte(lit[1:], '$'); p >= 0 {
			open = p + 2
		}
		tag, body := lit[:open], lit[open:]
		if b, ok := strings.CutSuffix(body, tag); ok {
			return b
		}
		return body
	}
	body := lit[1:]
	if b, ok := strings.CutSuffix(body, lit[:1]); ok {
		return b
	}
	return body
}

// sqlUnescape mirrors db::unescape.
func sqlUnescape(body string) string {
	var v strings.Builder
	v.Grow(len(body))
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\\' && i+1 < len(body):
			v.WriteByte(body[i+1])
			i += 2
		case (c == '\'' || c == '"') && i+1 < len(body) && body[i+1] == c:
			v.WriteByte(c)
			i += 2
		default:
			v.WriteByte(c)
			i++
		}
	}
	return v.String()
}

func sqlCollection(op string, toks []sqlTok, first int) string {
	switch op {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE":
	default:
		return ""
	}
	intro := -1
	for j, t := range toks {
		if t.word == "" || t.quoted {
			continue
		}
		w := t.word
		if strings.EqualFold(w, "FROM") || strings.EqualFold(w, "JOIN") || strings.EqualFold(w, "INTO") || (j == first && op == "UPDATE") {
			if intro >= 0 {
				return ""
			}
			intro = j
		}
	}
	if intro < 0 || intro+1 >= len(toks) || toks[intro+1].word == "" {
		return ""
	}
	if intro+2 < len(toks) && toks[intro+2].word == "" && !toks[intro+2].quoted && toks[intro+2].punct == ',' {
		return ""
	}
	return toks[intro+1].word
}
