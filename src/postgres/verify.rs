//! Verification: per table row counts and an order-independent content hash, plus object
//! counts (tables, indexes, sequences with values, views, functions, extensions), read from
//! OLD and NEW concurrently, tables two at a time per side.

use std::collections::BTreeMap;

use color_eyre::eyre::Result;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor};

use super::Endpoint;

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
}

impl Fingerprint {
    pub fn rows(&self) -> i64 {
        self.tables.values().map(|(n, _)| n).sum()
    }
}

const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// Objects that belong to an extension are the extension's, not the app's.
const NOT_EXTENSION_MEMBER: &str =
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')";

pub async fn fingerprint(ep: &Endpoint, database: &str) -> Result<Fingerprint> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Row text must not depend on session settings copied from the app.
                conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET statement_timeout = 0; SET IntervalStyle = 'postgres'")
                    .await?;
                Ok(())
            })
        })
        .connect_with(ep.options(database))
        .await?;
    let tables: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND {USER_SCHEMAS} AND {NOT_EXTENSION_MEMBER} ORDER BY 1"
    )))
    .fetch_all(&pool)
    .await?;
    let matview_names: Vec<String> = tables
        .iter()
        .filter(|(_, k)| k == "m")
        .map(|(t, _)| t.clone())
        .collect();
    let hashed: Vec<(String, (i64, String))> = futures::stream::iter(tables.into_iter().map(|(t, _)| {
        let pool = pool.clone();
        async move {
            // Sum of the first 64 bits of each row's md5: independent of physical order.
            let sql = format!(
                "SELECT count(*)::bigint, coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM {t} t"
            );
            let row: (i64, String) = sqlx::query_as(AssertSqlSafe(sql)).fetch_one(&pool).await?;
            Ok::<_, sqlx::Error>((t, row))
        }
    }))
    .buffer_unordered(2)
    .try_collect()
    .await?;

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
            .fetch_one(&pool)
            .await?;
        objects.insert(kind.to_string(), n);
    }
    let sequences: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    let extensions: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension ORDER BY 1")
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    let (matviews, tables): (BTreeMap<_, _>, BTreeMap<_, _>) = hashed
        .into_iter()
        .partition(|(t, _)| matview_names.contains(t));
    Ok(Fingerprint {
        tables,
        matviews,
        objects,
        sequences: sequences.into_iter().collect(),
        extensions,
    })
}

/// Every difference between OLD's and NEW's fingerprints, in words.
pub fn differences(old: &Fingerprint, new: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
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
