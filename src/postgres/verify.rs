//! Verification: per table row counts and an order-independent content hash, plus object
//! counts (tables, indexes, sequences with values, views, functions, extensions). Tables are
//! hashed on a few connections at once, largest first, optionally all inside one exported
//! snapshot (the one pg_dump copies), so OLD can be read while it is being dumped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};

use super::{Endpoint, literal};

/// How a row is hashed. Both sides of a comparison must use the same one; a fingerprint
/// stored by an older pgshift (no `row_hash`) is `Md5Text`, and is re-read the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowHash {
    /// md5 of the row's text: every value through its output function (slow: ~1 µs a row).
    #[default]
    Md5Text,
    /// Per column, the type's own 64-bit hash where its equality is identity (integers, text
    /// in the C collation, uuid, timestamps, booleans, arrays of those), the hash of the value's
    /// text otherwise; XOR-ed with a seed per column position. 3-9× cheaper than `Md5Text`.
    Typed,
    /// xxh3-64 of each row as `COPY … TO STDOUT` sends it (text format, the database's own
    /// encoding, this module's session settings; stored columns only), summed: what pgshift's
    /// own copy computes from the very rows it writes to the backup and NEW
    /// (`postgres::copy`). Hashed in pgshift, not in the server.
    CopyLine,
}

/// `schema.table` → (rows, hash of rows).
pub type TableHashes = BTreeMap<String, (i64, String)>;

/// How to read a fingerprint.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub row_hash: RowHash,
    /// Connections hashing tables at once (at least 1).
    pub connections: usize,
    /// An exported snapshot (`pg_export_snapshot()`) every connection reads in.
    pub snapshot: Option<String>,
    /// Tables already hashed (as pg_restore finished loading them): taken as they are.
    pub known: TableHashes,
}

/// Session settings under which row text does not depend on what was copied from the app.
pub(crate) const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET IntervalStyle = 'postgres'";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `schema.table` → (rows, hash of rows).
    pub tables: BTreeMap<String, (i64, String)>,
    /// Materialized views: derived data, refreshed by the restore under NEW's settings.
    #[serde(default)]
    pub matviews: BTreeMap<String, (i64, String)>,
    /// Object kind → count.
    pub objects: BTreeMap<String, i64>,
    /// `schema.sequence` → last_value.
    pub sequences: BTreeMap<String, Option<i64>>,
    pub extensions: Vec<String>,
    /// How the table hashes were made.
    #[serde(default)]
    pub row_hash: RowHash,
    /// Object kind → one line per object of the app's, as the catalog describes it (see
    /// `catalog::KINDS`); compared as sets. Empty in fingerprints an older pgshift stored.
    #[serde(default)]
    pub catalog: BTreeMap<String, Vec<String>>,
}

impl Fingerprint {
    pub fn rows(&self) -> i64 {
        self.tables.values().map(|(n, _)| n).sum()
    }
}

pub(crate) const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// Objects that belong to an extension are the extension's, not the app's.
pub(crate) const NOT_EXTENSION_MEMBER: &str =
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')";

/// The type's own extended hash function where hash equality is value identity, for the
/// type as `regtype` prints it (pg_catalog types only; anything else is hashed as text).
fn typed_hash(regtype: &str, col: &str, seed: usize) -> String {
    match regtype {
        "smallint" => format!("hashint2extended({col}, {seed})"),
        "integer" => format!("hashint4extended({col}, {seed})"),
        "bigint" => format!("hashint8extended({col}, {seed})"),
        "oid" => format!("hashoidextended({col}, {seed})"),
        "boolean" => format!("hashint4extended({col}::int, {seed})"),
        "text" | "character varying" => format!("hashtextextended({col} COLLATE \"C\", {seed})"),
        "character" => format!("hashbpcharextended({col} COLLATE \"C\", {seed})"),
        "uuid" => format!("uuid_hash_extended({col}, {seed})"),
        "timestamp without time zone" => format!("timestamp_hash_extended({col}, {seed})"),
        // Exact: the session runs in UTC, which has no ambiguous local times.
        "timestamp with time zone" => {
            format!("timestamp_hash_extended({col} AT TIME ZONE 'UTC', {seed})")
        }
        "time without time zone" => format!("time_hash_extended({col}, {seed})"),
        "smallint[]" | "integer[]" | "bigint[]" => format!("hash_array_extended({col}, {seed})"),
        "text[]" | "character varying[]" => {
            format!("hash_array_extended({col} COLLATE \"C\", {seed})")
        }
        _ => format!("hashtextextended({col}::text COLLATE \"C\", {seed})"),
    }
}

/// The aggregate that hashes one table: row count and the sum of row hashes (order-free).
fn table_sql(table: &str, columns: &[(String, String)], how: RowHash) -> String {
    match how {
        // Sum of the first 64 bits of each row's md5: independent of physical order.
        RowHash::Md5Text => format!(
            "SELECT count(*)::bigint, coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM ONLY {table} t"
        ),
        RowHash::Typed | RowHash::CopyLine => {
            let row = if columns.is_empty() {
                "0::bigint".to_string()
            } else {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (col, ty))| {
                        // A NULL hashes to its column's seed.
                        format!(
                            "coalesce({}, {})",
                            typed_hash(ty, &format!("t.{col}"), i + 1),
                            i + 1
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" # ")
            };
            format!("SELECT count(*)::bigint, coalesce(sum({row}), 0)::text FROM ONLY {table} t")
        }
    }
}

/// `COPY … TO STDOUT` of a table's (or materialized view's) stored columns, as pgshift's own
/// copy reads them.
fn copy_to(table: &str, stored: &[String], matview: bool) -> String {
    let cols = stored.join(", ");
    if matview {
        let cols = if cols.is_empty() {
            "*".to_string()
        } else {
            cols
        };
        format!("COPY (SELECT {cols} FROM {table}) TO STDOUT")
    } else if cols.is_empty() {
        format!("COPY {table} TO STDOUT")
    } else {
        format!("COPY {table} ({cols}) TO STDOUT")
    }
}

/// Rows as the database's own encoding has them (what pgshift's copy wrote).
async fn copy_encoding(conn: &mut PgConnection) -> Result<()> {
    let enc = super::copy::database_encoding(conn).await?;
    conn.execute(AssertSqlSafe(format!(
        "SET client_encoding = {}",
        literal(&enc)
    )))
    .await?;
    Ok(())
}

/// (rows, hash) of one table: a COPY hashed here, or the server's aggregate.
async fn hash_one(conn: &mut PgConnection, sql: String) -> Result<(i64, String)> {
    if sql.starts_with("COPY ") {
        return Ok(super::copy::hash_copy(conn, &sql).await?.value());
    }
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_one(conn).await?)
}

async fn session(ep: &Endpoint, database: &str, snapshot: Option<&str>) -> Result<PgConnection> {
    let mut conn = ep.connect(database).await?;
    conn.execute(SESSION).await?;
    if let Some(id) = snapshot {
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        conn.execute(AssertSqlSafe(format!(
            "SET TRANSACTION SNAPSHOT {}",
            literal(id)
        )))
        .await?;
    }
    Ok(conn)
}

pub async fn fingerprint(ep: &Endpoint, database: &str, how: &ReadOptions) -> Result<Fingerprint> {
    let mut conns = Vec::new();
    for _ in 0..how.connections.max(1) {
        conns.push(session(ep, database, how.snapshot.as_deref()).await?);
    }
    // Largest first, so the big table does not start last and finish alone.
    let tables: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER} ORDER BY 3 DESC, 1"
    )))
    .fetch_all(&mut conns[0])
    .await?;
    let columns: Vec<(String, String, String, bool)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname), quote_ident(a.attname), a.atttypid::regtype::text, a.attgenerated <> ''
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped AND {USER_SCHEMAS} ORDER BY 1, a.attnum"
    )))
    .fetch_all(&mut conns[0])
    .await?;
    let mut by_table: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, col, ty, generated) in columns {
        if !generated {
            stored.entry(t.clone()).or_default().push(col.clone());
        }
        by_table.entry(t).or_default().push((col, ty));
    }
    let matview_names: Vec<String> = tables
        .iter()
        .filter(|(_, k, _)| k == "m")
        .map(|(t, _, _)| t.clone())
        .collect();
    let mut hashed: Vec<(String, (i64, String))> = tables
        .iter()
        .filter_map(|(t, _, _)| how.known.get(t).map(|h| (t.clone(), h.clone())))
        .collect();
    let queue: Arc<Mutex<VecDeque<(String, String)>>> = Arc::new(Mutex::new(
        tables
            .into_iter()
            .filter(|(t, _, _)| !how.known.contains_key(t))
            .map(|(t, kind, _)| {
                let sql = match how.row_hash {
                    RowHash::CopyLine => {
                        copy_to(&t, stored.get(&t).map_or(&[][..], |c| c), kind == "m")
                    }
                    h => table_sql(&t, by_table.get(&t).map_or(&[][..], |c| c), h),
                };
                (t, sql)
            })
            .collect(),
    ));
    if how.row_hash == RowHash::CopyLine {
        for c in conns.iter_mut() {
            copy_encoding(c).await?;
        }
    }
    let workers = conns.iter_mut().map(|conn| {
        let queue = queue.clone();
        async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((t, sql)) = next else { break };
                let row = hash_one(conn, sql).await?;
                out.push((t, row));
            }
            Ok::<_, color_eyre::eyre::Report>(out)
        }
    });
    for part in futures::future::try_join_all(workers).await? {
        hashed.extend(part);
    }
    let mut main = conns
        .into_iter()
        .next()
        .ok_or_else(|| color_eyre::eyre::eyre!("no connection to {database}"))?;

    let mut objects = BTreeMap::new();
    for (kind, sql) in [
        (
            "tables",
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
            ),
        ),
        (
            "indexes",
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I') AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
            ),
        ),
        (
            "sequences",
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
            ),
        ),
        (
            "views",
            format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
            ),
        ),
        (
            "functions",
            format!(
                "SELECT count(*) FROM pg_proc c JOIN pg_namespace n ON n.oid = c.pronamespace WHERE {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
            ),
        ),
        (
            "constraints",
            format!(
                "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {USER_SCHEMAS}"
            ),
        ),
    ] {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut main)
            .await?;
        objects.insert(kind.to_string(), n);
    }
    let sequences: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1",
    )
    .fetch_all(&mut main)
    .await?;
    let extensions: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension ORDER BY 1")
            .fetch_all(&mut main)
            .await?;
    let catalog = super::catalog::read(&mut main).await?;
    // Ends the snapshot's transaction, if any: it only read.
    let _ = sqlx::Connection::close(main).await;
    let (matviews, tables): (BTreeMap<_, _>, BTreeMap<_, _>) = hashed
        .into_iter()
        .partition(|(t, _)| matview_names.contains(t));
    Ok(Fingerprint {
        tables,
        matviews,
        objects,
        sequences: sequences.into_iter().collect(),
        extensions,
        row_hash: how.row_hash,
        catalog,
    })
}

/// The table a pg_restore verbose line says it finished loading (`finished item N TABLE DATA
/// name`: the bare name, no schema).
pub fn loaded_table(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pg_restore: finished item ")?;
    let (_, rest) = rest.split_once(' ')?;
    rest.strip_prefix("TABLE DATA ")
}

/// Hash tables as pg_restore finishes loading them, named on `names`, on one connection: NEW
/// is hashed while its indexes are still being built. A name that is not exactly one table
/// of the user's schemas is left to the full fingerprint.
pub async fn hash_as_loaded(
    ep: &Endpoint,
    database: &str,
    row_hash: RowHash,
    mut names: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<TableHashes> {
    let mut out = TableHashes::new();
    let mut conn: Option<PgConnection> = None;
    while let Some(name) = names.recv().await {
        let c = match &mut conn {
            Some(c) => c,
            None => {
                let mut c = session(ep, database, None).await?;
                if row_hash == RowHash::CopyLine {
                    copy_encoding(&mut c).await?;
                }
                conn.insert(c)
            }
        };
        let found: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $1 AND c.relkind = 'r' AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER}"
        )))
        .bind(&name)
        .fetch_all(&mut *c)
        .await?;
        let [(table,)] = &found[..] else { continue };
        let columns: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT quote_ident(attname), atttypid::regtype::text, attgenerated <> '' FROM pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
        .bind(table)
        .fetch_all(&mut *c)
        .await?;
        let sql = match row_hash {
            RowHash::CopyLine => {
                let stored: Vec<String> = columns
                    .iter()
                    .filter(|(_, _, generated)| !generated)
                    .map(|(col, _, _)| col.clone())
                    .collect();
                copy_to(table, &stored, false)
            }
            h => {
                let columns: Vec<(String, String)> =
                    columns.into_iter().map(|(col, ty, _)| (col, ty)).collect();
                table_sql(table, &columns, h)
            }
        };
        let row = hash_one(c, sql).await?;
        out.insert(table.clone(), row);
    }
    if let Some(c) = conn {
        let _ = sqlx::Connection::close(c).await;
    }
    Ok(out)
}

/// Every difference between OLD's and NEW's fingerprints, in words.
pub fn differences(old: &Fingerprint, new: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    if old.row_hash != new.row_hash {
        out.push(format!(
            "fingerprints were made with different row hashes ({:?} on OLD, {:?} on NEW)",
            old.row_hash, new.row_hash
        ));
    }
    for (t, (rows, hash)) in &old.tables {
        match new.tables.get(t) {
            None => out.push(format!("table {t} missing on NEW")),
            Some((r, _)) if r != rows => {
                out.push(format!("table {t}: {rows} rows on OLD, {r} on NEW"))
            }
            Some((_, h)) if h != hash => {
                out.push(format!("table {t}: same row count, different content"))
            }
            Some(_) => {}
        }
    }
    for t in new.tables.keys().filter(|t| !old.tables.contains_key(*t)) {
        out.push(format!("table {t} exists only on NEW"));
    }
    for (k, n) in &old.objects {
        let m = new.objects.get(k).copied().unwrap_or(0);
        if m != *n {
            out.push(format!("{k}: {n} on OLD, {m} on NEW"));
        }
    }
    if old.sequences != new.sequences {
        for (s, v) in &old.sequences {
            let w = new.sequences.get(s).copied().flatten();
            if w != *v {
                out.push(format!("sequence {s}: {v:?} on OLD, {w:?} on NEW"));
            }
        }
    }
    for (m, (rows, _)) in &old.matviews {
        match new.matviews.get(m) {
            None => out.push(format!("materialized view {m} missing on NEW")),
            Some((r, _)) if r != rows => out.push(format!(
                "materialized view {m}: {rows} rows on OLD, {r} on NEW"
            )),
            Some(_) => {}
        }
    }
    out.extend(super::catalog::differences(&old.catalog, &new.catalog));
    if old.extensions != new.extensions {
        out.push(format!(
            "extensions: [{}] on OLD, [{}] on NEW",
            old.extensions.join(", "),
            new.extensions.join(", ")
        ));
    }
    out
}

/// Differences that lose no data: materialized views whose content differs although their
/// row counts match (their definition depends on session settings at refresh time).
pub fn warnings(old: &Fingerprint, new: &Fingerprint) -> Vec<String> {
    old.matviews
        .iter()
        .filter_map(|(m, (rows, hash))| match new.matviews.get(m) {
            Some((r, h)) if r == rows && h != hash => Some(format!(
                "materialized view {m}: same row count, different content (it depends on session settings such as TimeZone at refresh time; REFRESH it on NEW as the app does)"
            )),
            _ => None,
        })
        .collect()
}
