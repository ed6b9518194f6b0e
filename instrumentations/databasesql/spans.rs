//! database/sql's spans (compiled into gotap-spans as `gotap_spans::databasesql`,
//! crates/gotap-spans/build.rs). Database client spans (OpenTelemetry stable database conventions). A strategy describes one
//! call of a database/sql query or exec with [`DbQuery`] and gets the span from [`client_span`];
//! the compile-time runtime (instrumentations/databasesql/runtime/sql.go, go/gotaprt/internal/sqltext) mirrors these rules
//! line for line.
//!
//! The query text is exported sanitized: string and numeric literals become `?` (placeholders,
//! identifiers and comments are kept), so a query written with inline values never exports them.
//! Operation and collection names are parsed from that text only when that is unambiguous.
use crate::SpanFrame;
use crate::sink::{collect_one, SpanSink, StatusRef, ValueRef};
use crate::{Span, SpanKind};
use std::borrow::Cow;

pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const DB_QUERY_TEXT: &str = "db.query.text";
pub const DB_OPERATION_NAME: &str = "db.operation.name";
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
pub const DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
pub const DB_NAMESPACE: &str = "db.namespace";

/// Instrumentation scope of database/sql client spans.
pub const SCOPE: &str = "gotap/database/sql";

/// Error texts of Go values that are outcomes, not failures: `sql.ErrNoRows` and
/// `driver.ErrSkip` (the driver asks database/sql to take its slower path).
pub const NOT_FAILURES: &[&str] = &[
    "sql: no rows in result set",
    "driver: skip fast-path; continue as if unimplemented",
];

/// What a strategy saw of one query or exec.
#[derive(Debug, Clone, Default)]
pub struct DbQuery {
    /// Go import path of the driver's type (`reflect.TypeOf(db.Driver())`, pointer removed),
    /// e.g. `modernc.org/sqlite` or `github.com/jackc/pgx/v5/stdlib`.
    pub driver_package: String,
    /// The SQL as the application passed it (for a prepared statement: the prepared text).
    pub query: String,
    pub error: Option<DbError>,
}

/// Where a query goes, from the DSN given to `sql.Open` (each `None` when unknown):
/// `server.address` (host name or IP, no port), `server.port`, `db.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbServer {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub namespace: Option<String>,
}

/// A failed call: the Go type of the error (`%T`, e.g. `*sqlite.Error`), its text, and the
/// database's status code when the driver exposes one (`SQLState()` of pgx and lib/pq errors,
/// e.g. `42P01`).
#[derive(Debug, Clone, Default)]
pub struct DbError {
    pub type_name: String,
    pub message: String,
    pub status_code: Option<String>,
}

/// Driver import-path prefixes → `db.system.name` (well-known values of the conventions).
const SYSTEMS: &[(&str, &str)] = &[
    ("modernc.org/sqlite", "sqlite"),
    ("github.com/mattn/go-sqlite3", "sqlite"),
    ("github.com/glebarez/go-sqlite", "sqlite"),
    ("github.com/ncruces/go-sqlite3", "sqlite"),
    ("github.com/lib/pq", "postgresql"),
    ("github.com/jackc/pgx", "postgresql"),
    ("github.com/go-sql-driver/mysql", "mysql"),
    ("github.com/microsoft/go-mssqldb", "microsoft.sql_server"),
    ("github.com/denisenkom/go-mssqldb", "microsoft.sql_server"),
    ("github.com/sijms/go-ora", "oracle.db"),
    ("github.com/godror/godror", "oracle.db"),
    ("github.com/ClickHouse/clickhouse-go", "clickhouse"),
    ("github.com/trinodb/trino-go-client", "trino"),
];

/// `db.system.name` of a driver from its package path; `other_sql` when unknown.
pub fn system_name(driver_package: &str) -> &'static str {
    for (prefix, system) in SYSTEMS {
        if driver_package == *prefix
            || driver_package
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('/'))
        {
            return system;
        }
    }
    "other_sql"
}

/// What [`scan`] learns from a query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQuery {
    /// The text with literals replaced by `?`.
    pub sanitized: String,
    /// First keyword, upper-cased (`SELECT`); `None` for a query starting with `WITH` or with no word.
    pub operation: Option<String>,
    /// The one table a simple SELECT/INSERT/UPDATE/DELETE/REPLACE names, unquoted
    /// (`"public"."users"` → `public.users`).
    pub collection: Option<String>,
}

/// A name (keyword or identifier, possibly qualified and quoted: held unquoted, with whether a
/// part was quoted; a quoted name is never a keyword) or one punctuation character (strings and
/// numbers are `?` and `0`).
#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Word(Cow<'a, str>, bool),
    Punct(char),
}

impl Tok<'_> {
    /// The keyword this token is, if it is an unquoted word.
    fn keyword(&self) -> Option<&str> {
        match self {
            Tok::Word(w, false) => Some(w),
            _ => None,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'
}

/// How a database writes literals, from `db.system.name`: which quotes delimit strings and
/// whether a backslash escapes the next character inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `'…'` standard strings (no backslash escapes), `E'…'` escape strings, `$$…$$` and
    /// `$tag$…$tag$` dollar-quoted strings; `"…"` are identifiers.
    Postgres,
    /// `'…'` and `"…"` strings, both with backslash escapes; `` `…` `` identifiers.
    MySql,
    /// `'…'` and `"…"` strings (SQLite takes a double-quoted word that names no column as a
    /// string), no backslash escapes.
    Sqlite,
    /// Any other system: `'…'` strings where a backslash is taken as an escape (a string that
    /// ends in a backslash then hides more than it should rather than less), `"…"` identifiers.
    Other,
    /// SQL Server: as `Other`, plus `[…]` identifiers.
    SqlServer,
}

impl Dialect {
    pub fn of(system: &str) -> Dialect {
        match system {
            "postgresql" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            "sqlite" => Dialect::Sqlite,
            "microsoft.sql_server" => Dialect::SqlServer,
            _ => Dialect::Other,
        }
    }
    fn double_quoted_strings(self) -> bool {
        matches!(self, Dialect::MySql | Dialect::Sqlite)
    }
    fn backslash_escapes(self) -> bool {
        matches!(self, Dialect::MySql | Dialect::Other | Dialect::SqlServer)
    }
    /// The closing byte of a quoted identifier opened by `c`: backticks always; double quotes
    /// where they are no strings, and in SQLite where a string cannot be (right after
    /// FROM/INTO/UPDATE/JOIN, or inside a name begun there); `[…]` in SQLite and SQL Server only
    /// (elsewhere `[` is an array or a subscript, whose numbers must still be hidden).
    fn ident_quote(self, c: u8, table_context: bool) -> Option<u8> {
        match c {
            b'`' => Some(b'`'),
            b'"' if !self.double_quoted_strings() || (self == Dialect::Sqlite && table_context) => {
                Some(b'"')
            }
            b'[' if matches!(self, Dialect::Sqlite | Dialect::SqlServer) => Some(b']'),
            _ => None,
        }
    }
}

/// Whether the last token introduces a table (FROM, INTO, UPDATE, JOIN), where SQLite reads a
/// double-quoted token as a name; not the FROM of `IS [NOT] DISTINCT FROM`, whose operand may be
/// a string.
fn table_context(toks: &[Tok]) -> bool {
    let Some(w) = toks.last().and_then(Tok::keyword) else {
        return false;
    };
    if w.eq_ignore_ascii_case("FROM") {
        return !toks.len().checked_sub(2).is_some_and(|i| {
            toks[i]
                .keyword()
                .is_some_and(|p| p.eq_ignore_ascii_case("DISTINCT"))
        });
    }
    ["INTO", "UPDATE", "JOIN"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

/// The name starting at `i`: words, quoted identifiers and the dots between them, as one
/// qualified name (`"public"."users"`, `main.[t]`). Its end, its text unquoted (a doubled quote
/// is one) and whether a part was quoted.
fn name_end(b: &[u8], mut i: usize, d: Dialect, table_context: bool) -> (usize, Vec<u8>, bool) {
    let mut name = Vec::new();
    let mut quoted = false;
    while i < b.len() {
        if let Some(cl) = d.ident_quote(b[i], table_context) {
            quoted = true;
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == cl {
                    if cl != b']' && b.get(j + 1) == Some(&cl) {
                        name.push(cl);
                        j += 2;
                        continue;
                    }
                    break;
                }
                name.push(b[j]);
                j += 1;
            }
            i = (j + 1).min(b.len());
            if i + 1 < b.len()
                && b[i] == b'.'
                && (is_ident_start(b[i + 1] as char)
                    || d.ident_quote(b[i + 1], table_context).is_some())
            {
                name.push(b'.');
                i += 1;
                continue;
            }
            break;
        }
        if !is_ident_start(b[i] as char) {
            break;
        }
        let mut j = i;
        while j < b.len() && is_ident(b[j] as char) {
            j += 1;
        }
        name.extend_from_slice(&b[i..j]);
        i = j;
        if !(b[j - 1] == b'.' && i < b.len() && d.ident_quote(b[i], table_context).is_some()) {
            break;
        }
    }
    (i, name, quoted)
}

/// The end of the quoted string whose opening quote `q` is at `i` (the index after its closing
/// quote, or the text's end when it is not closed): a doubled quote is an escaped one, and with
/// `backslash` a backslash escapes the next byte.
fn string_end(b: &[u8], i: usize, q: u8, backslash: bool) -> usize {
    let mut i = i + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// A PostgreSQL dollar quote opening at `i` (`$$` or `$tag$`, the tag an identifier without `$`):
/// the end of the whole string (after its closing tag, or the text's end). `None` when `$` at `i`
/// opens none (`$1` is a placeholder).
fn dollar_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    Some(
        b[body..]
            .windows(tag.len())
            .position(|w| w == tag)
            .map_or(b.len(), |p| body + p + tag.len()),
    )
}

/// Sanitizes a query and extracts its operation and collection, with the literal rules of
/// `Dialect::Other`; see [`scan_for`].
pub fn scan(query: &str) -> ParsedQuery {
    scan_for(query, Dialect::Other)
}

/// Sanitizes a query and extracts its operation and collection. Byte-level ASCII rules only, so
/// the Go mirror (go/gotaprt/internal/sqltext) gives the same result for any input: strings (as
/// `dialect` writes them: see [`Dialect`]) and numbers not inside an identifier become `?`; `--`
/// and `/* */` comments and quoted identifiers are copied unchanged and are not words. The
/// corpus go/gotaprt/internal/sqltext/testdata/sanitize.txt is checked against both.
pub fn scan_for(query: &str, dialect: Dialect) -> ParsedQuery {
    scan_literals(query, dialect, &mut |_, _| {})
}

/// [`scan_for`], calling `literal` with the byte range of each string literal it replaced.
fn scan_literals(
    query: &str,
    dialect: Dialect,
    literal: &mut dyn FnMut(usize, usize),
) -> ParsedQuery {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut toks: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        let start = i;
        let pg = dialect == Dialect::Postgres;
        let table_ctx = table_context(&toks);
        let escape_string = pg && (c == 'E' || c == 'e') && b.get(i + 1) == Some(&b'\'');
        if dialect.ident_quote(b[i], table_ctx).is_some() || (is_ident_start(c) && !escape_string) {
            let (end, name, quoted) = name_end(b, i, dialect, table_ctx);
            i = end;
            out.push_str(&query[start..i]);
            let name = if quoted {
                Cow::Owned(String::from_utf8_lossy(&name).into_owned())
            } else {
                Cow::Borrowed(&query[start..i])
            };
            toks.push(Tok::Word(name, quoted));
            continue;
        }
        let string_end = if c == '\'' || (c == '"' && dialect.double_quoted_strings()) {
            Some(string_end(b, i, b[i], dialect.backslash_escapes()))
        } else if escape_string {
            Some(string_end(b, i + 1, b'\'', true))
        } else if pg && c == '$' {
            dollar_end(b, i)
        } else {
            None
        };
        if let Some(end) = string_end {
            i = end;
            literal(start, end);
            out.push('?');
            toks.push(Tok::Punct('?'));
        } else if c == '-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push_str(&query[start..i]);
        } else if c == '/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
            out.push_str(&query[start..i]);
        } else if c.is_ascii_digit() {
            // A number not glued to an identifier (`$1`, `t2` are kept whole above or below).
            let glued = start > 0 && is_ident(b[start - 1] as char) && b[start - 1] != b'.';
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            if glued {
                out.push_str(&query[start..i]);
            } else {
                out.push('?');
            }
            toks.push(Tok::Punct('0'));
        } else {
            // Any other byte, including the rest of a multi-byte character, is copied as is.
            let len = query[i..].chars().next().map_or(1, char::len_utf8);
            i += len;
            out.push_str(&query[start..i]);
            if !c.is_ascii_whitespace() {
                toks.push(Tok::Punct(c));
            }
        }
    }
    let first = toks.iter().position(|t| *t != Tok::Punct('('));
    let operation = match first.and_then(|f| toks[f].keyword()) {
        Some(w) if !w.is_empty() && !w.eq_ignore_ascii_case("WITH") => Some(w.to_ascii_uppercase()),
        _ => None,
    };
    let collection = operation
        .as_deref()
        .and_then(|op| collection(op, &toks, first.unwrap_or(0)));
    ParsedQuery {
        sanitized: out,
        operation,
        collection,
    }
}

/// The text of a failed query's error without the literals the sanitizer took out of `query`:
/// drivers quote the statement, or the offending token or value, in their messages
/// (`near "'secret'": syntax error`, `invalid input syntax for type integer: "secret"`). Each
/// string literal of the query of at least 3 bytes, as written and with its escapes undone,
/// becomes `?` (longest first), then so does the inside of every quoted run left in the message
/// (`'…'`, `"…"`, `` `…` ``, to the end when not closed): identifiers quoted there go too.
pub fn scrub_error(message: &str, query: &str, dialect: Dialect) -> String {
    let mut lits: Vec<String> = Vec::new();
    scan_literals(query, dialect, &mut |s, e| {
        let body = literal_body(&query.as_bytes()[s..e], dialect);
        for v in [body.to_vec(), unescape(body)] {
            if v.len() >= 3 && !lits.iter().any(|l| l.as_bytes() == v.as_slice()) {
                lits.push(String::from_utf8_lossy(&v).into_owned());
            }
        }
    });
    // Stable: equal lengths keep the query's order (as sort.SliceStable in Go).
    lits.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let mut msg = message.to_owned();
    for l in &lits {
        if msg.contains(l.as_str()) {
            msg = msg.replace(l.as_str(), "?");
        }
    }
    let b = msg.as_bytes();
    let mut out = String::with_capacity(msg.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let q = b[i];
        if q == b'\'' || q == b'"' || q == b'`' {
            out.push_str(&msg[copied..=i]);
            out.push('?');
            match b[i + 1..].iter().position(|&c| c == q) {
                Some(p) => {
                    i += 1 + p;
                    copied = i;
                    i += 1;
                }
                None => {
                    copied = b.len();
                    i = b.len();
                }
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&msg[copied..]);
    out
}

/// The inside of a string literal as written (quotes, `E` and dollar tags removed; an unclosed
/// one to its end).
fn literal_body(lit: &[u8], dialect: Dialect) -> &[u8] {
    let lit = if dialect == Dialect::Postgres && matches!(lit.first(), Some(b'E' | b'e')) {
        &lit[1..]
    } else {
        lit
    };
    if lit.first() == Some(&b'$') {
        let open = lit[1..]
            .iter()
            .position(|&c| c == b'$')
            .map_or(lit.len(), |p| p + 2);
        let body = &lit[open.min(lit.len())..];
        let tag = &lit[..open.min(lit.len())];
        return body.strip_suffix(tag).unwrap_or(body);
    }
    let q = lit[0];
    let body = &lit[1..];
    body.strip_suffix(&[q]).unwrap_or(body)
}

/// `''` → `'`, `""` → `"`, `\x` → `x`: how drivers usually print a value back.
fn unescape(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c == b'\\' && i + 1 < body.len() {
            v.push(body[i + 1]);
            i += 2;
        } else if (c == b'\'' || c == b'"') && body.get(i + 1) == Some(&c) {
            v.push(c);
            i += 2;
        } else {
            v.push(c);
            i += 1;
        }
    }
    v
}

/// The table of a simple statement: exactly one FROM/JOIN/INTO (or the UPDATE that starts it),
/// followed by a name (unquoted here) that is not followed by a comma.
fn collection(op: &str, toks: &[Tok], first: usize) -> Option<String> {
    if !matches!(op, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE") {
        return None;
    }
    let mut intro = None;
    for (i, t) in toks.iter().enumerate() {
        if let Some(w) = t.keyword() {
            let kw = ["FROM", "JOIN", "INTO"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
                || (i == first && op == "UPDATE");
            if kw {
                if intro.is_some() {
                    return None;
                }
                intro = Some(i);
            }
        }
    }
    let i = intro?;
    match (toks.get(i + 1), toks.get(i + 2)) {
        (Some(Tok::Word(_, _)), Some(Tok::Punct(','))) => None,
        (Some(Tok::Word(name, _)), _) if !name.is_empty() => Some(name.to_string()),
        _ => None,
    }
}

/// `error.type` of a failed call: the database's status code (as the conventions ask) when there
/// is one, `timeout` / `canceled` for context errors, else the Go type.
pub fn error_type(e: &DbError) -> String {
    if let Some(code) = e.status_code.as_deref().filter(|c| !c.is_empty()) {
        code.to_owned()
    } else if e.message.contains("context deadline exceeded") {
        "timeout".to_owned()
    } else if e.message.contains("context canceled") {
        "canceled".to_owned()
    } else if e.type_name.is_empty() {
        "_OTHER".to_owned()
    } else {
        e.type_name.clone()
    }
}

/// The CLIENT span of one query or exec: `SELECT orders`, `SELECT`, or the system name.
pub fn client_span(q: &DbQuery, f: SpanFrame) -> Span {
    client_span_to(q, &DbServer::default(), f)
}

/// [`client_span`] with the database's address and namespace: `db.namespace`, then
/// `server.address` and `server.port` (the port only with an address), each left out when unknown.
pub fn client_span_to(q: &DbQuery, server: &DbServer, f: SpanFrame) -> Span {
    collect_one(|out| client_span_into(q, server, &f, out))
}

/// [`client_span_to`] into a sink (see [`crate::sink`]).
pub fn client_span_into<S: SpanSink + ?Sized>(
    q: &DbQuery,
    server: &DbServer,
    f: &SpanFrame,
    out: &mut S,
) {
    let system = system_name(&q.driver_package);
    let dialect = Dialect::of(system);
    let parsed = scan_for(&q.query, dialect);
    out.begin(f, SCOPE);
    out.attr(DB_SYSTEM_NAME, ValueRef::Static(system));
    out.attr(DB_QUERY_TEXT, ValueRef::Str(&parsed.sanitized));
    if let Some(op) = &parsed.operation {
        out.attr(DB_OPERATION_NAME, ValueRef::Str(op));
    }
    if let Some(c) = &parsed.collection {
        out.attr(DB_COLLECTION_NAME, ValueRef::Str(c));
    }
    if let Some(ns) = server.namespace.as_deref().filter(|n| !n.is_empty()) {
        out.attr(DB_NAMESPACE, ValueRef::Str(ns));
    }
    if let Some(a) = server.address.as_deref().filter(|a| !a.is_empty()) {
        out.attr(crate::semconv::SERVER_ADDRESS, ValueRef::Str(a));
        if let Some(p) = server.port.filter(|&p| p > 0) {
            out.attr(crate::semconv::SERVER_PORT, ValueRef::Int(p as i64));
        }
    }
    let mut status = StatusRef::Unset;
    let message;
    if let Some(e) = q
        .error
        .as_ref()
        .filter(|e| !NOT_FAILURES.contains(&e.message.as_str()))
    {
        message = scrub_error(&e.message, &q.query, dialect);
        status = StatusRef::Error(&message);
        if let Some(code) = e.status_code.as_deref().filter(|c| !c.is_empty()) {
            out.attr(DB_RESPONSE_STATUS_CODE, ValueRef::Str(code));
        }
        out.attr(crate::semconv::ERROR_TYPE, ValueRef::Str(&error_type(e)));
    }
    match (&parsed.operation, &parsed.collection) {
        (Some(op), Some(c)) => out.end(&[op, " ", c], SpanKind::Client, status),
        (Some(op), None) => out.end(&[op], SpanKind::Client, status),
        _ => out.end(&[system], SpanKind::Client, status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::{Status, Value};
    use std::sync::Arc;

    fn frame() -> SpanFrame {
        SpanFrame {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            start_unix_nano: 1,
            end_unix_nano: 2,
            resource: Arc::new(Resource::default()),
        }
    }

    fn parsed(q: &str) -> (String, Option<String>, Option<String>) {
        let p = scan(q);
        (p.sanitized, p.operation, p.collection)
    }

    /// SDK mode's order (instrumentations/databasesql/runtime/sql.go): namespace, address, port; each omitted when unknown.
    #[test]
    fn server_and_namespace_attributes() {
        let q = DbQuery {
            driver_package: "github.com/lib/pq".into(),
            query: "SELECT 1".into(),
            error: None,
        };
        let all = DbServer {
            address: Some("db.internal".into()),
            port: Some(5432),
            namespace: Some("shop".into()),
        };
        let s = client_span_to(&q, &all, frame());
        let tail: Vec<(&str, Value)> = s.attributes[s.attributes.len() - 3..].to_vec();
        assert_eq!(
            tail,
            [
                (DB_NAMESPACE, Value::from("shop")),
                (crate::semconv::SERVER_ADDRESS, Value::from("db.internal")),
                (crate::semconv::SERVER_PORT, Value::Int(5432))
            ]
        );
        let port_only = DbServer {
            port: Some(5432),
            namespace: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            client_span_to(&q, &port_only, frame()).attributes,
            client_span(&q, frame()).attributes,
            "no address: no port either"
        );
        let no_port = DbServer {
            address: Some("10.0.0.7".into()),
            port: Some(0),
            ..Default::default()
        };
        let s = client_span_to(&q, &no_port, frame());
        assert_eq!(
            (
                s.attr(crate::semconv::SERVER_ADDRESS),
                s.attr(crate::semconv::SERVER_PORT)
            ),
            (Some(&Value::from("10.0.0.7")), None)
        );
    }

    #[test]
    fn systems_from_driver_packages() {
        assert_eq!(system_name("modernc.org/sqlite"), "sqlite");
        assert_eq!(system_name("github.com/jackc/pgx/v5/stdlib"), "postgresql");
        assert_eq!(system_name("github.com/lib/pq"), "postgresql");
        assert_eq!(system_name("github.com/go-sql-driver/mysql"), "mysql");
        // A prefix must end at a path element.
        assert_eq!(system_name("github.com/lib/pqx"), "other_sql");
        assert_eq!(system_name("main"), "other_sql");
    }

    #[test]
    fn simple_statements_name_their_table() {
        let s = |q| parsed(q);
        assert_eq!(
            s("SELECT id, total FROM orders WHERE id = ?"),
            (
                "SELECT id, total FROM orders WHERE id = ?".into(),
                Some("SELECT".into()),
                Some("orders".into())
            )
        );
        assert_eq!(
            s("insert into main.orders (a) values ($1)").1.as_deref(),
            Some("INSERT")
        );
        assert_eq!(
            s("insert into main.orders (a) values ($1)").2.as_deref(),
            Some("main.orders")
        );
        assert_eq!(
            s("UPDATE orders SET paid = 1 WHERE id = $2").2.as_deref(),
            Some("orders")
        );
        assert_eq!(s("DELETE FROM orders").2.as_deref(), Some("orders"));
        assert_eq!(
            s("SELECT * FROM orders FOR UPDATE").2.as_deref(),
            Some("orders")
        );
        assert_eq!(
            s("INSERT INTO t (k) VALUES (?) ON CONFLICT (k) DO UPDATE SET v = 1")
                .2
                .as_deref(),
            Some("t")
        );
    }

    #[test]
    fn ambiguous_statements_have_no_table() {
        for q in [
            "SELECT * FROM a JOIN b ON a.id = b.id",
            "SELECT * FROM a, b",
            "SELECT * FROM (SELECT 1) x",
            "INSERT INTO a SELECT * FROM b",
            "SELECT 1",
            "CREATE TABLE orders (id INTEGER)",
        ] {
            assert_eq!(scan(q).collection, None, "{q}");
        }
        assert_eq!(scan("WITH x AS (SELECT 1) SELECT * FROM x").operation, None);
        assert_eq!(scan("  (SELECT 1)").operation.as_deref(), Some("SELECT"));
        assert_eq!(scan("").operation, None);
    }

    /// A corpus field with its escapes (backslash n, t, backslash) undone.
    fn corpus_field(f: &str) -> String {
        let mut out = String::new();
        let mut it = f.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        }
        out
    }

    /// The corpus go/gotaprt/internal/sqltext/sqltext_test.go runs too: both strategies
    /// sanitize texts and error messages alike, per dialect.
    #[test]
    fn shared_corpus_per_dialect() {
        let corpus = include_str!("../../go/gotaprt/internal/sqltext/testdata/sanitize.txt");
        let mut n = 0;
        for line in corpus
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let f: Vec<String> = line.split('\t').map(corpus_field).collect();
            let dialect = Dialect::of(&f[1]);
            match (f[0].as_str(), f.len()) {
                ("query", 4) => assert_eq!(scan_for(&f[2], dialect).sanitized, f[3], "{line}"),
                ("error", 5) => assert_eq!(scrub_error(&f[3], &f[2], dialect), f[4], "{line}"),
                _ => panic!("bad corpus line {line:?}"),
            }
            n += 1;
        }
        assert!(n > 30, "{n} cases");
    }

    /// The corpus go/gotaprt/internal/sqltext/sqltext_test.go runs too: both strategies give
    /// the same operation and collection (so the same span name), quoted identifiers included.
    #[test]
    fn shared_corpus_names() {
        let corpus = include_str!("../../go/gotaprt/internal/sqltext/testdata/names.txt");
        let mut n = 0;
        for line in corpus
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let f: Vec<String> = line.split('\t').map(corpus_field).collect();
            assert_eq!(f.len(), 4, "bad corpus line {line:?}");
            let want = |v: &String| (v != "-").then(|| v.clone());
            let p = scan_for(&f[1], Dialect::of(&f[0]));
            assert_eq!(
                (p.operation, p.collection),
                (want(&f[2]), want(&f[3])),
                "{line}"
            );
            n += 1;
        }
        assert!(n > 30, "{n} cases");
    }

    /// Quoted identifiers name the table in the span name, unquoted (semconv:
    /// `{db.operation.name} {db.collection.name}`).
    #[test]
    fn quoted_table_names_the_span() {
        for (pkg, q, name) in [
            (
                "modernc.org/sqlite",
                "SELECT * FROM \"users\" WHERE id = ?",
                "SELECT users",
            ),
            (
                "github.com/lib/pq",
                "SELECT * FROM \"public\".\"users\"",
                "SELECT public.users",
            ),
            (
                "github.com/go-sql-driver/mysql",
                "SELECT * FROM `users`",
                "SELECT users",
            ),
            ("modernc.org/sqlite", "DELETE FROM [users]", "DELETE users"),
        ] {
            let s = client_span(
                &DbQuery {
                    driver_package: pkg.into(),
                    query: q.into(),
                    error: None,
                },
                frame(),
            );
            assert_eq!(s.name, name, "{q}");
            assert_eq!(
                s.attr(DB_COLLECTION_NAME),
                Some(&Value::from(name.split_once(' ').unwrap().1)),
                "{q}"
            );
        }
    }

    /// The span's status message is scrubbed with the driver's dialect.
    #[test]
    fn failed_query_status_has_no_literal() {
        let s = client_span(
            &DbQuery {
                driver_package: "modernc.org/sqlite".into(),
                query: "SELECT 'secret' FROM".into(),
                error: Some(DbError {
                    type_name: "*sqlite.Error".into(),
                    message: "SQL logic error: near \"'secret'\": syntax error (1)".into(),
                    status_code: None,
                }),
            },
            frame(),
        );
        assert_eq!(
            s.status,
            Status::Error("SQL logic error: near \"?\": syntax error (1)".into())
        );
        let s = client_span(
            &DbQuery {
                driver_package: "github.com/jackc/pgx/v5/stdlib".into(),
                query: "SELECT $q$secret$q$, \"Col\" FROM t".into(),
                error: None,
            },
            frame(),
        );
        assert_eq!(
            s.attr(DB_QUERY_TEXT),
            Some(&Value::from("SELECT ?, \"Col\" FROM t"))
        );
    }

    #[test]
    fn literals_are_sanitized_placeholders_kept() {
        assert_eq!(
            scan("SELECT * FROM t WHERE a = 'it''s' AND b = 42 AND c = -1.5e3").sanitized,
            "SELECT * FROM t WHERE a = ? AND b = ? AND c = -?"
        );
        assert_eq!(
            scan("SELECT $1, t2.c3, :name, @p1 FROM t2 LIMIT 10").sanitized,
            "SELECT $1, t2.c3, :name, @p1 FROM t2 LIMIT ?"
        );
        assert_eq!(scan("SELECT 'unterminated").sanitized, "SELECT ?");
        assert_eq!(
            scan("SELECT \"it's\" -- it's 1\n/* 2 */ FROM é").sanitized,
            "SELECT \"it's\" -- it's 1\n/* 2 */ FROM é"
        );
    }

    #[test]
    fn span_name_attributes_and_status() {
        let q = DbQuery {
            driver_package: "modernc.org/sqlite".into(),
            query: "SELECT total FROM orders WHERE id = 7".into(),
            error: None,
        };
        let s = client_span(&q, frame());
        assert_eq!(s.name, "SELECT orders");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.scope, SCOPE);
        assert_eq!(
            s.attributes,
            vec![
                (DB_SYSTEM_NAME, Value::from("sqlite")),
                (
                    DB_QUERY_TEXT,
                    Value::from("SELECT total FROM orders WHERE id = ?")
                ),
                (DB_OPERATION_NAME, Value::from("SELECT")),
                (DB_COLLECTION_NAME, Value::from("orders")),
            ]
        );
        assert_eq!(s.status, Status::Unset);

        let err = DbError {
            type_name: "*sqlite.Error".into(),
            message: "SQL logic error: no such table: nope (1)".into(),
            status_code: None,
        };
        let s = client_span(
            &DbQuery {
                driver_package: "github.com/lib/pq".into(),
                query: "BEGIN".into(),
                error: Some(err),
            },
            frame(),
        );
        assert_eq!(s.name, "BEGIN");
        assert_eq!(
            s.attr(crate::semconv::ERROR_TYPE),
            Some(&Value::from("*sqlite.Error"))
        );
        assert_eq!(
            s.status,
            Status::Error("SQL logic error: no such table: nope (1)".into())
        );
        assert_eq!(s.attr(DB_RESPONSE_STATUS_CODE), None);

        // A SQLSTATE is the status code and the error type.
        let err = DbError {
            type_name: "*pgconn.PrepareError".into(),
            message: "relation \"nope\" does not exist".into(),
            status_code: Some("42P01".into()),
        };
        let s = client_span(
            &DbQuery {
                driver_package: "github.com/jackc/pgx/v5/stdlib".into(),
                query: "SELECT * FROM nope".into(),
                error: Some(err),
            },
            frame(),
        );
        assert_eq!(s.attr(DB_RESPONSE_STATUS_CODE), Some(&Value::from("42P01")));
        assert_eq!(
            s.attr(crate::semconv::ERROR_TYPE),
            Some(&Value::from("42P01"))
        );

        let s = client_span(
            &DbQuery {
                driver_package: "x/y".into(),
                query: "-- nothing".into(),
                error: None,
            },
            frame(),
        );
        assert_eq!(s.name, "other_sql");
    }

    #[test]
    fn no_rows_and_skip_are_not_errors() {
        for m in NOT_FAILURES {
            let e = DbError {
                type_name: "*errors.errorString".into(),
                message: (*m).into(),
                status_code: None,
            };
            let s = client_span(
                &DbQuery {
                    driver_package: "modernc.org/sqlite".into(),
                    query: "SELECT 1".into(),
                    error: Some(e),
                },
                frame(),
            );
            assert_eq!(s.status, Status::Unset);
            assert_eq!(s.attr(crate::semconv::ERROR_TYPE), None);
        }
        let timeout = DbError {
            type_name: "context.deadlineExceededError".into(),
            message: "context deadline exceeded".into(),
            status_code: None,
        };
        assert_eq!(error_type(&timeout), "timeout");
    }
}
