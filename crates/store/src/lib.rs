//! # aqiqat-store
//!
//! One SQL handle, [`Db`], over either embedded SQLite (the default: a file in the data
//! directory, nothing to install) or a PostgreSQL server (`--database-url postgres://…`, when
//! several machines share one evidence log and job table). The evidence log and the server's
//! job store are written once against the [`Sql`] trait and run unchanged on both.
//!
//! The bridge is deliberately small: statements are written with `?1, ?2…` placeholders (the
//! PostgreSQL side rewrites them to `$1, $2…`), arguments are integers, text or bytes
//! ([`Arg`]), and rows come back as the same three kinds ([`Row`]). Where the two dialects
//! differ (schema, pragmas), the caller asks [`Sql::dialect`] and says each explicitly.
//!
//! **Owns:** connecting, dialect bridging, transactions with a write lock, error classes.
//! **Must not touch:** any table or schema: those belong to the crates that own the data.
//!
//! The PostgreSQL client is synchronous (the `postgres` crate, which drives its own small
//! runtime). Call it from plain threads, `spawn_blocking` or `block_in_place`, never directly
//! on an async executor's thread; dropping a handle there is made safe here.

pub mod private;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// Where a database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file, created when absent.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:pass@host:port/db?options=…`).
    Postgres(String),
}

impl Location {
    /// A `--database-url`: `postgres://` or `postgresql://` URLs name a server; `sqlite:PATH`
    /// or a plain path names an SQLite file.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.parse::<postgres::Config>()
                .map_err(|e| DbError::other(format!("database URL: {e}")))?;
            Ok(Location::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Ok(Location::Sqlite(PathBuf::from(
                path.trim_start_matches("//"),
            )))
        } else if url.contains("://") {
            Err(DbError::other(format!(
                "database URL {:?}: only postgres:// URLs and SQLite paths are supported",
                redact(url)
            )))
        } else {
            Ok(Location::Sqlite(PathBuf::from(url)))
        }
    }

    /// For messages and logs: the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact(url),
        }
    }
}

/// A URL with any `user:password@` password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// How hard each SQLite commit holds on to the disk. PostgreSQL's equivalent is
/// `synchronous_commit`, set per connection to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit.
    Full,
    /// A power cut may lose the last commits, never corrupt (a killed process loses nothing).
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A UNIQUE, foreign-key or append-only rule said no: the statement's fault.
    Constraint,
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DbError {
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Other,
            message: message.into(),
        }
    }

    pub fn is_constraint(&self) -> bool {
        self.kind == ErrorKind::Constraint
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                ErrorKind::Constraint
            }
            _ => ErrorKind::Other,
        };
        Self {
            kind,
            message: format!("sqlite: {e}"),
        }
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        // SQLSTATE class 23 is "integrity constraint violation".
        let kind = match e.code() {
            Some(code) if code.code().starts_with("23") => ErrorKind::Constraint,
            _ => ErrorKind::Other,
        };
        let message = match e.as_db_error() {
            Some(db) => format!("postgres: {}", db.message()),
            None => format!("postgres: {e}"),
        };
        Self { kind, message }
    }
}

/// One statement argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<u64> for Arg<'_> {
    fn from(v: u64) -> Self {
        Arg::Int(Some(
            i64::try_from(v).expect("integers stored here fit in i64"),
        ))
    }
}
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(Some(v))
    }
}
impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(Some(v))
    }
}

/// `args![a, b, c]`: statement arguments from anything with an [`Arg`] conversion.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::Arg::from($a)),*][..] };
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Blob(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Arg::Int(None) | Arg::Text(None) | Arg::Blob(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

impl postgres::types::ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match *self {
            // Integers meet whatever integer column the schema chose.
            Arg::Int(Some(v)) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Arg::Int(Some(v)) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Arg::Int(Some(v)) if *ty == Type::BOOL => (v != 0).to_sql(ty, out),
            Arg::Int(Some(v)) => v.to_sql(ty, out),
            Arg::Text(Some(s)) => s.to_sql(ty, out),
            Arg::Blob(Some(b)) => b.to_sql(ty, out),
            Arg::Int(None) | Arg::Text(None) | Arg::Blob(None) => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One row read back; getters name the column by position and say what they expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::other(format!("column {i} is not in the row")))
    }

    fn wrong(&self, i: usize, want: &str) -> DbError {
        DbError::other(format!(
            "column {i}: expected {want}, found {:?}",
            self.0[i]
        ))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.cell(i)? {
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Null => Ok(None),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| self.wrong(i, "an integer"))
    }

    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.cell(i)? {
            Cell::Text(s) => Ok(Some(s.clone())),
            Cell::Null => Ok(None),
            _ => Err(self.wrong(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or_else(|| self.wrong(i, "text"))
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.cell(i)? {
            Cell::Blob(b) => Ok(b.clone()),
            _ => Err(self.wrong(i, "bytes")),
        }
    }
}

/// What both a connection and a transaction can do.
pub trait Sql {
    fn dialect(&self) -> Dialect;
    /// Runs one statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError>;
    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError>;
    /// Runs several `;`-separated statements without arguments (schemas).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;

    fn query_opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    fn query_one(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Row, DbError> {
        self.query_opt(sql, args)?
            .ok_or_else(|| DbError::other("the query returned no row"))
    }
}

/// `?1` → `$1`: the one placeholder difference between the dialects.
fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

// ---- SQLite ----

fn sqlite_rows(stmt: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
    use rusqlite::types::ValueRef;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Text(v.to_string()),
                ValueRef::Text(t) => Cell::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| DbError::other(format!("column {i}: {e}")))?
                        .to_owned(),
                ),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            });
        }
        out.push(Row(cells));
    }
    Ok(out)
}

impl Sql for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.prepare_cached(sql)?;
        sqlite_rows(&mut stmt, args)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.execute_batch(sql)?)
    }
}

// ---- PostgreSQL ----

type Statements = HashMap<String, postgres::Statement>;

fn pg_statement<C: postgres::GenericClient>(
    client: &mut C,
    cache: &mut Statements,
    sql: &str,
) -> Result<postgres::Statement, DbError> {
    if let Some(stmt) = cache.get(sql) {
        return Ok(stmt.clone());
    }
    let stmt = client.prepare(&postgres_placeholders(sql))?;
    cache.insert(sql.to_owned(), stmt.clone());
    Ok(stmt)
}

fn pg_params<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, DbError> {
    use postgres::types::Type;
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Blob)
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        } else {
            return Err(DbError::other(format!(
                "column {} has type {ty}, which this store does not read",
                column.name()
            )));
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

fn pg_execute<C: postgres::GenericClient>(
    client: &mut C,
    cache: &mut Statements,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<u64, DbError> {
    let stmt = pg_statement(client, cache, sql)?;
    Ok(client.execute(&stmt, &pg_params(args))?)
}

fn pg_query<C: postgres::GenericClient>(
    client: &mut C,
    cache: &mut Statements,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<Row>, DbError> {
    let stmt = pg_statement(client, cache, sql)?;
    client
        .query(&stmt, &pg_params(args))?
        .iter()
        .map(pg_row)
        .collect()
}

struct Pg {
    client: postgres::Client,
    statements: Statements,
}

/// Holds the PostgreSQL client so that dropping it on an async executor thread (where its
/// private runtime may not block) hands it to a plain thread instead of panicking.
struct PgHandle(Option<Box<Pg>>);

impl Drop for PgHandle {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(pg));
        }
    }
}

impl PgHandle {
    fn get(&mut self) -> &mut Pg {
        self.0.as_mut().expect("present until dropped")
    }
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(PgHandle),
}

/// A database connection: SQLite or PostgreSQL.
pub struct Db {
    conn: Conn,
    location: Location,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({})", self.location.describe())
    }
}

/// Every write transaction takes this PostgreSQL advisory lock, the counterpart of SQLite's
/// `BEGIN IMMEDIATE`: writers queue one behind the other, readers never wait.
const WRITE_LOCK: i64 = 0x6171_6971_6174; // "aqiqat"

impl Db {
    /// Connects. SQLite files are opened in WAL mode, waiting up to 10 s on a busy writer,
    /// with foreign keys enforced.
    pub fn open(location: &Location, durability: Durability) -> Result<Self, DbError> {
        let conn = match location {
            Location::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| DbError::other(format!("{}: {e}", parent.display())))?;
                }
                let conn = rusqlite::Connection::open(path)
                    .map_err(|e| DbError::other(format!("{}: {e}", path.display())))?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(
                    None,
                    "synchronous",
                    match durability {
                        Durability::Full => "FULL",
                        Durability::Normal => "NORMAL",
                    },
                )?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                Conn::Sqlite(conn)
            }
            Location::Postgres(url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| {
                    DbError::other(format!("cannot connect to {}: {e}", location.describe()))
                })?;
                client.batch_execute(match durability {
                    Durability::Full => "SET synchronous_commit = on",
                    Durability::Normal => "SET synchronous_commit = off",
                })?;
                Conn::Postgres(PgHandle(Some(Box::new(Pg {
                    client,
                    statements: HashMap::new(),
                }))))
            }
        };
        Ok(Self {
            conn,
            location: location.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQLite connection, for what only SQLite has (pragmas, checkpoints).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back
    /// otherwise. Write transactions are serialised across processes (SQLite: `BEGIN
    /// IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock).
    pub fn write_transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let mut tx = Tx(TxConn::Sqlite(tx));
                let value = f(&mut tx)?;
                let TxConn::Sqlite(tx) = tx.0 else {
                    unreachable!()
                };
                tx.commit().map_err(DbError::from)?;
                Ok(value)
            }
            Conn::Postgres(handle) => {
                let pg = handle.get();
                let mut tx = pg.client.transaction().map_err(DbError::from)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .map_err(DbError::from)?;
                let mut tx = Tx(TxConn::Postgres(tx, &mut pg.statements));
                let value = f(&mut tx)?;
                let TxConn::Postgres(tx, _) = tx.0 else {
                    unreachable!()
                };
                tx.commit().map_err(DbError::from)?;
                Ok(value)
            }
        }
    }
}

impl Sql for Db {
    fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => c.execute(sql, args),
            Conn::Postgres(h) => {
                let pg = h.get();
                pg_execute(&mut pg.client, &mut pg.statements, sql, args)
            }
        }
    }

    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => Sql::query(c, sql, args),
            Conn::Postgres(h) => {
                let pg = h.get();
                pg_query(&mut pg.client, &mut pg.statements, sql, args)
            }
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => c.batch(sql),
            Conn::Postgres(h) => Ok(h.get().client.batch_execute(sql)?),
        }
    }
}

enum TxConn<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(postgres::Transaction<'a>, &'a mut Statements),
}

/// An open write transaction (see [`Db::write_transaction`]).
pub struct Tx<'a>(TxConn<'a>);

impl Sql for Tx<'_> {
    fn dialect(&self) -> Dialect {
        match self.0 {
            TxConn::Sqlite(_) => Dialect::Sqlite,
            TxConn::Postgres(..) => Dialect::Postgres,
        }
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match &mut self.0 {
            TxConn::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(args.iter()))? as u64)
            }
            TxConn::Postgres(tx, cache) => pg_execute(tx, cache, sql, args),
        }
    }

    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        match &mut self.0 {
            TxConn::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                sqlite_rows(&mut stmt, args)
            }
            TxConn::Postgres(tx, cache) => pg_query(tx, cache, sql, args),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.0 {
            TxConn::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            TxConn::Postgres(tx, _) => Ok(tx.batch_execute(sql)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_only_where_numbered() {
        assert_eq!(
            postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 OR d = '?'"
        );
    }

    #[test]
    fn urls_name_their_backend_and_hide_passwords() {
        assert_eq!(
            Location::parse("postgres://u:secret@localhost:5432/db").unwrap(),
            Location::Postgres("postgres://u:secret@localhost:5432/db".into())
        );
        assert_eq!(
            Location::parse("postgres://u:secret@localhost/db")
                .unwrap()
                .describe(),
            "postgres://u:***@localhost/db"
        );
        assert_eq!(
            Location::parse("sqlite:/tmp/x.sqlite").unwrap(),
            Location::Sqlite("/tmp/x.sqlite".into())
        );
        assert_eq!(
            Location::parse("data/x.sqlite").unwrap(),
            Location::Sqlite("data/x.sqlite".into())
        );
        let err = Location::parse("mysql://u:pw@h/db").unwrap_err();
        assert!(err.message.contains("mysql://u:***@h/db"), "{err}");
    }

    fn round_trips_every_kind_and_rolls_back_failed_transactions(location: &Location) {
        let mut db = Db::open(location, Durability::Full).unwrap();
        db.batch(match db.dialect() {
            Dialect::Sqlite => "CREATE TABLE t (i INTEGER PRIMARY KEY, s TEXT, b BLOB)",
            Dialect::Postgres => "CREATE TABLE t (i BIGINT PRIMARY KEY, s TEXT, b BYTEA)",
        })
        .unwrap();
        db.execute(
            "INSERT INTO t(i, s, b) VALUES (?1, ?2, ?3)",
            args![7i64, "x", &b"\x00\xff"[..]],
        )
        .unwrap();
        let row = db
            .query_one("SELECT i, s, b FROM t WHERE i = ?1", args![7i64])
            .unwrap();
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.text(1).unwrap(), "x");
        assert_eq!(row.blob(2).unwrap(), vec![0, 255]);
        assert!(row.text(0).is_err(), "an integer is not text");

        let dup = db
            .execute("INSERT INTO t(i) VALUES (?1)", args![7i64])
            .unwrap_err();
        assert!(dup.is_constraint(), "{dup}");

        let failed: Result<(), DbError> = db.write_transaction(|tx| {
            tx.execute("INSERT INTO t(i) VALUES (?1)", args![8i64])?;
            Err(DbError::other("changed my mind"))
        });
        assert!(failed.is_err());
        let n = db.query_one("SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(n.int(0).unwrap(), 1, "the failed transaction left nothing");
        db.execute(
            "INSERT INTO t(i, s, b) VALUES (?1, ?2, ?3)",
            &[Arg::from(9i64), Arg::Text(None), Arg::Blob(None)],
        )
        .unwrap();
        let nulls = db
            .query_one("SELECT s, b, i FROM t WHERE i = ?1", args![9i64])
            .unwrap();
        assert_eq!(nulls.0, vec![Cell::Null, Cell::Null, Cell::Int(9)]);
    }

    #[test]
    fn sqlite_round_trips_every_kind_and_rolls_back_failed_transactions() {
        let dir = tempfile::tempdir().unwrap();
        round_trips_every_kind_and_rolls_back_failed_transactions(&Location::Sqlite(
            dir.path().join("t.sqlite"),
        ));
    }

    #[test]
    fn postgres_round_trips_every_kind_and_rolls_back_failed_transactions() {
        let schema = testing::TestSchema::create();
        round_trips_every_kind_and_rolls_back_failed_transactions(&schema.location());
    }
}

/// A PostgreSQL schema of its own for one test, dropped when the value is dropped: tests run
/// in parallel against one server without seeing each other's tables.
pub mod testing {
    use super::*;

    /// The variable that names the test server.
    pub const URL_VARIABLE: &str = "AQIQAT_TEST_DATABASE_URL";
    /// The server, role and database `.ci/postgres` makes on loopback, used when the
    /// variable is unset.
    pub const DEFAULT_URL: &str = "postgres://aqiqat:aqiqat@127.0.0.1:5432/aqiqat_test";

    pub struct TestSchema {
        /// Connects straight into the schema (through `search_path`).
        pub url: String,
        admin: String,
        schema: String,
    }

    impl TestSchema {
        /// Makes a fresh schema on the server named by `AQIQAT_TEST_DATABASE_URL` (else
        /// [`DEFAULT_URL`]). Panics when it cannot: a test that needs PostgreSQL must not pass
        /// without it.
        pub fn create() -> Self {
            let admin = std::env::var(URL_VARIABLE)
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_URL.to_owned());
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let schema = format!(
                "t_{}_{}_{}",
                std::process::id(),
                nanos % 1_000_000_000_000,
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut client =
                postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
                    panic!(
                        "these tests need a PostgreSQL server and cannot reach {}: {e}. \
                         `bash .ci/postgres` starts one on loopback; {URL_VARIABLE} names \
                         another",
                        Location::Postgres(admin.clone()).describe()
                    )
                });
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create a test schema");
            let separator = if admin.contains('?') { '&' } else { '?' };
            let url = format!("{admin}{separator}options=-csearch_path%3D{schema}");
            Self { url, admin, schema }
        }

        pub fn location(&self) -> Location {
            Location::Postgres(self.url.clone())
        }
    }

    impl Drop for TestSchema {
        fn drop(&mut self) {
            let (admin, schema) = (self.admin.clone(), self.schema.clone());
            // A plain thread: the drop may happen on an async test's executor.
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
                }
            })
            .join();
        }
    }
}
