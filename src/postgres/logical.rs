//! Native logical replication from OLD to NEW, for the logical strategy: what OLD must offer,
//! the publication and the slot (created over a replication connection so that it exports
//! the snapshot the backup is taken in), the subscription on NEW, lag, sequences, row counts,
//! and dropping all of it again. Every name derives from the app's name, so any pgshift
//! process (a resumed one, a rollback) finds what an earlier one created.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use sqlx::PgConnection;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::process::{PassFile, conninfo};
use super::{Endpoint, PasswordMethod, exec, hash_password, ident, literal};
use crate::inventory::Secret;

/// The replication objects of one app's migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Logical slot on OLD (also the subscription's `slot_name`).
    pub slot: String,
    /// Publication in OLD's database.
    pub publication: String,
    /// Subscription in NEW's database.
    pub subscription: String,
    /// A login role on OLD with REPLICATION, fresh password, only for the subscription.
    pub role: String,
}

impl Names {
    /// `pgshift_<app>_<hash>`: slot names allow only `[a-z0-9_]`, so the app's name is folded
    /// and a hash of the real name keeps `a-b` and `a_b` apart.
    pub fn for_app(app: &str) -> Self {
        let folded: String = app
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(36)
            .collect();
        let mut h: u32 = 0x811c_9dc5;
        for b in app.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let base = format!("pgshift_{folded}_{h:08x}");
        Self {
            slot: base.clone(),
            publication: base.clone(),
            subscription: base.clone(),
            role: format!("{base}_repl"),
        }
    }
}

const USER_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// Why OLD's database cannot use the logical strategy (empty: it can). Tables without a
/// primary key or replica identity are never published: OLD would then refuse the app's own
/// UPDATE and DELETE on them. Large objects and unlogged tables are not replicated.
pub async fn blockers(admin: &Endpoint, database: &str) -> Result<Vec<String>> {
    let mut conn = admin.connect(database).await?;
    let mut out = server_blockers(&mut conn).await?;
    let no_key: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND {USER_SCHEMAS}
            AND NOT (c.relreplident = 'f'
                  OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
                  OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
          ORDER BY 1"
    )))
    .fetch_all(&mut conn)
    .await?;
    if !no_key.is_empty() {
        out.push(format!(
            "table(s) without a primary key or replica identity: {} (published, OLD would refuse the app's own UPDATE and DELETE on them)",
            shown(&no_key)
        ));
    }
    let unlogged: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relpersistence = 'u' AND {USER_SCHEMAS} ORDER BY 1"
    )))
    .fetch_all(&mut conn)
    .await?;
    if !unlogged.is_empty() {
        out.push(format!(
            "unlogged table(s), which logical replication does not carry: {}",
            shown(&unlogged)
        ));
    }
    let lobs: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_largeobject_metadata")
        .fetch_one(&mut conn)
        .await?;
    if lobs > 0 {
        out.push(format!(
            "{lobs} large object(s), which logical replication does not carry"
        ));
    }
    Ok(out)
}

/// Names for one line: control characters (a newline in a table's name) escaped.
fn shown(names: &[String]) -> String {
    names
        .join(", ")
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What OLD's server lacks: wal_level = logical, a free replication slot and WAL sender.
pub async fn server_blockers(conn: &mut PgConnection) -> Result<Vec<String>> {
    let (wal_level, slots, used_slots, senders, used_senders): (String, String, i64, String, i64) =
        sqlx::query_as(
            "SELECT current_setting('wal_level'), current_setting('max_replication_slots'),
                    (SELECT count(*) FROM pg_replication_slots),
                    current_setting('max_wal_senders'),
                    (SELECT count(*) FROM pg_stat_replication)",
        )
        .fetch_one(conn)
        .await?;
    let mut out = Vec::new();
    if wal_level != "logical" {
        out.push(format!(
            "OLD's server runs wal_level = {wal_level}; logical replication needs wal_level = logical (a restart)"
        ));
    }
    let slots: i64 = slots.parse().unwrap_or(0);
    if slots - used_slots < 1 {
        out.push(format!(
            "OLD's server has no free replication slot ({used_slots} of max_replication_slots = {slots} in use)"
        ));
    }
    let senders: i64 = senders.parse().unwrap_or(0);
    if senders - used_senders < 1 {
        out.push(format!(
            "OLD's server has no free WAL sender ({used_senders} of max_wal_senders = {senders} in use)"
        ));
    }
    Ok(out)
}

/// The tables a publication lists: permanent user tables (partitions as themselves).
pub async fn published_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND {USER_SCHEMAS} ORDER BY 1"
    )))
    .fetch_all(conn)
    .await?)
}

/// A hash of the database's schema (relations, columns, types, indexes): DDL on OLD while NEW
/// catches up changes it, and DDL is not replicated.
pub const SCHEMA_HASH_SQL: &str = "SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), ''))
  FROM (SELECT c.oid::regclass::text || ' ' || c.relkind || ' ' || coalesce(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull, '') AS x
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p', 'i', 'S', 'v', 'm', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') s";

pub async fn schema_hash(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar(SCHEMA_HASH_SQL).fetch_one(conn).await?)
}

/// The schema hash as of an exported snapshot.
pub async fn schema_hash_in(admin: &Endpoint, database: &str, snapshot: &str) -> Result<String> {
    let mut conn = admin.connect(database).await?;
    exec(
        &mut conn,
        format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            literal(snapshot)
        ),
    )
    .await?;
    let h = schema_hash(&mut conn).await?;
    exec(&mut conn, "COMMIT".into()).await?;
    Ok(h)
}

/// `CREATE PUBLICATION … FOR TABLE …` of the given tables (already there: kept).
pub async fn create_publication(
    admin: &Endpoint,
    database: &str,
    names: &Names,
    tables: &[String],
) -> Result<()> {
    let mut conn = admin.connect(database).await?;
    let sql = if tables.is_empty() {
        format!("CREATE PUBLICATION {}", ident(&names.publication))
    } else {
        // regclass text is already quoted where it must be.
        format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            ident(&names.publication),
            tables.join(", ")
        )
    };
    exec(&mut conn, sql)
        .await
        .wrap_err("creating the publication on OLD")
}

/// A logical slot created over a replication connection that stays open (a `psql` child in
/// `replication=database` mode, idle): its exported snapshot lives as long as this does.
pub struct SlotHolder {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    _pass: PassFile,
    /// The exported snapshot (for `SET TRANSACTION SNAPSHOT`, `pg_dump --snapshot`).
    pub snapshot: String,
    /// The slot's consistent point: NEW receives every change committed after it.
    pub lsn: String,
}

impl SlotHolder {
    /// Close the replication connection (the slot stays).
    pub async fn close(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// `CREATE_REPLICATION_SLOT name LOGICAL pgoutput EXPORT_SNAPSHOT` (the PostgreSQL 13
/// spelling, which later servers accept too).
pub async fn create_slot(
    psql: &Path,
    admin: &Endpoint,
    database: &str,
    names: &Names,
    run_dir: &Path,
) -> Result<SlotHolder> {
    let pass = PassFile::new(run_dir, &[admin])?;
    let mut cmd = tokio::process::Command::new(psql);
    cmd.arg(format!(
        "{} replication=database",
        conninfo(admin, database)
    ))
    .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
    .env("PGPASSFILE", pass.path())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec. The
    // replication connection must never outlive pgshift (kill -9 included).
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .wrap_err_with(|| format!("starting {}", psql.display()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| eyre!("psql has no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| eyre!("psql has no stdout"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| eyre!("psql has no stderr"))?;
    stdin
        .write_all(
            format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT;\n",
                ident(&names.slot)
            )
            .as_bytes(),
        )
        .await?;
    stdin.flush().await?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
    let line = match line {
        Ok(Ok(Some(l))) => l,
        _ => {
            let _ = child.kill().await;
            let mut err = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut BufReader::new(stderr), &mut err)
                .await;
            return Err(eyre!(
                "creating replication slot {} on OLD: {}",
                names.slot,
                err.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    };
    // slot_name|consistent_point|snapshot_name|output_plugin
    let f: Vec<&str> = line.split('|').collect();
    let (Some(lsn), Some(snapshot)) = (f.get(1), f.get(2)) else {
        let _ = child.kill().await;
        return Err(eyre!(
            "unexpected answer to CREATE_REPLICATION_SLOT: {line}"
        ));
    };
    Ok(SlotHolder {
        lsn: lsn.to_string(),
        snapshot: snapshot.to_string(),
        child,
        stdin: Some(stdin),
        _pass: pass,
    })
}

/// Does NEW's database have the subscription?
pub async fn has_subscription(conn: &mut PgConnection, names: &Names) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
                         WHERE s.subname = $1 AND d.datname = current_database())",
    )
    .bind(&names.subscription)
    .fetch_one(conn)
    .await?)
}

/// The subscription on NEW to the existing slot, copying nothing (NEW has the snapshot's
/// data already): it streams what OLD committed after the slot's consistent point. It logs in
/// to OLD as a role of its own with a fresh password, dropped with the slot. Already there:
/// kept as it is (its replication origin knows what it applied; a new one would not).
pub async fn subscribe(
    old_admin: &Endpoint,
    old_database: &str,
    new_admin: &Endpoint,
    new_database: &str,
    names: &Names,
    password: &Secret,
) -> Result<bool> {
    let mut new = new_admin.connect(new_database).await?;
    drop_restored_publication(&mut new, names).await?;
    if has_subscription(&mut new, names).await? {
        return Ok(false);
    }
    let mut old = old_admin.connect(old_database).await?;
    let method: String = sqlx::query_scalar("SELECT current_setting('password_encryption')")
        .fetch_one(&mut old)
        .await?;
    let method = PasswordMethod::from_setting(&method).unwrap_or(PasswordMethod::ScramSha256);
    let verifier = hash_password(method, &names.role, password.expose());
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&names.role)
            .fetch_one(&mut old)
            .await?;
    exec(
        &mut old,
        format!(
            "{} ROLE {} LOGIN REPLICATION PASSWORD {}",
            if exists { "ALTER" } else { "CREATE" },
            ident(&names.role),
            literal(&verifier)
        ),
    )
    .await
    .wrap_err("creating the subscription's role on OLD")?;
    let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let conn = format!(
        "host={} port={} user={} password={} dbname={} application_name={}",
        q(&old_admin.host),
        old_admin.port,
        q(&names.role),
        q(password.expose()),
        q(old_database),
        q(&names.subscription)
    );
    exec(
        &mut new,
        format!(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, slot_name = {}, copy_data = false, enabled = true)",
            ident(&names.subscription),
            literal(&conn),
            ident(&names.publication),
            literal(&names.slot)
        ),
    )
    .await
    .map_err(|e| eyre!("creating the subscription on NEW: {}", one_line(&e.to_string())))?;
    Ok(true)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The slot as OLD sees it: bytes of WAL NEW has not confirmed, and whether a WAL sender
/// streams from it. None: no such slot.
pub async fn slot_lag(conn: &mut PgConnection, names: &Names) -> Result<Option<(i64, bool)>> {
    Ok(sqlx::query_as(
        "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint, active
           FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(&names.slot)
    .fetch_optional(conn)
    .await?)
}

pub async fn current_lsn(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(conn)
        .await?)
}

/// Wait until NEW has confirmed (applied and flushed) everything up to `target`, or fail
/// after `limit`.
pub async fn wait_confirmed(
    conn: &mut PgConnection,
    names: &Names,
    target: &str,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false), active
               FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&names.slot)
        .bind(target)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            None => return Err(eyre!("replication slot {} is gone from OLD", names.slot)),
            Some((true, _)) => return Ok(started.elapsed()),
            Some((false, _)) if started.elapsed() > limit => {
                return Err(eyre!(
                    "NEW did not confirm OLD's changes up to {target} within {} s",
                    limit.as_secs()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Set NEW's sequences to OLD's values (replication does not carry them). The number set.
pub async fn copy_sequences(
    old: &mut PgConnection,
    new: &mut PgConnection,
) -> Result<Vec<(String, i64)>> {
    let seqs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences
          WHERE last_value IS NOT NULL ORDER BY 1",
    )
    .fetch_all(old)
    .await?;
    if !seqs.is_empty() {
        let sql = seqs
            .iter()
            .map(|(s, v)| format!("SELECT setval({}::regclass, {v}, true);", literal(s)))
            .collect::<String>();
        exec(new, sql).await.wrap_err("setting NEW's sequences")?;
    }
    Ok(seqs)
}

/// Exact row counts of the tables.
pub async fn counts(conn: &mut PgConnection, tables: &[String]) -> Result<Vec<(String, i64)>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let sql = tables
        .iter()
        .map(|t| format!("SELECT {}::text, count(*) FROM {t}", literal(t)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?)
}

/// The publication as the backup carried it to NEW (pg_dump dumps publications): NEW must
/// not publish anything of pgshift's.
pub async fn drop_restored_publication(conn: &mut PgConnection, names: &Names) -> Result<bool> {
    let there: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(&names.publication)
            .fetch_one(&mut *conn)
            .await?;
    if there {
        exec(
            conn,
            format!("DROP PUBLICATION {}", ident(&names.publication)),
        )
        .await?;
    }
    Ok(there)
}

/// Drop the subscription from NEW's database, keeping OLD's slot out of it (the slot is
/// dropped on OLD directly: NEW may not reach OLD), and the restored publication. True if
/// there was a subscription.
pub async fn drop_subscription(conn: &mut PgConnection, names: &Names) -> Result<bool> {
    drop_restored_publication(conn, names).await?;
    if !has_subscription(conn, names).await? {
        return Ok(false);
    }
    let s = ident(&names.subscription);
    exec(conn, format!("ALTER SUBSCRIPTION {s} DISABLE")).await?;
    exec(
        conn,
        format!("ALTER SUBSCRIPTION {s} SET (slot_name = NONE)"),
    )
    .await?;
    exec(conn, format!("DROP SUBSCRIPTION {s}")).await?;
    Ok(true)
}

/// Drop the slot (ending the WAL sender that holds it), the publication and the role on OLD.
/// What was there, for the log.
pub async fn drop_on_old(admin: &Endpoint, database: &str, names: &Names) -> Result<Vec<String>> {
    let mut dropped = Vec::new();
    let mut conn = admin.connect(database).await?;
    let started = Instant::now();
    loop {
        let active: Option<Option<i32>> =
            sqlx::query_scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1")
                .bind(&names.slot)
                .fetch_optional(&mut conn)
                .await?;
        let Some(pid) = active else { break };
        if let Some(pid) = pid {
            let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&mut conn)
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match sqlx::query("SELECT pg_drop_replication_slot($1)")
            .bind(&names.slot)
            .execute(&mut conn)
            .await
        {
            Ok(_) => {
                dropped.push(format!("slot {}", names.slot));
                break;
            }
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                return Err(eyre!(
                    "could not drop replication slot {} on OLD: {}",
                    names.slot,
                    one_line(&e.to_string())
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let publication: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(&names.publication)
            .fetch_one(&mut conn)
            .await?;
    if publication {
        exec(
            &mut conn,
            format!("DROP PUBLICATION {}", ident(&names.publication)),
        )
        .await?;
        dropped.push(format!("publication {}", names.publication));
    }
    let role: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&names.role)
            .fetch_one(&mut conn)
            .await?;
    if role {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        )
        .bind(&names.role)
        .execute(&mut conn)
        .await;
        exec(&mut conn, format!("DROP ROLE {}", ident(&names.role))).await?;
        dropped.push(format!("role {}", names.role));
    }
    Ok(dropped)
}

/// A fresh password for the subscription's role.
pub fn fresh_password() -> Secret {
    use rand::Rng;
    let s: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    Secret::new(s)
}

/// The psql beside pg_dump.
pub fn psql(pg_bin: &Path) -> PathBuf {
    pg_bin.join("psql")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_slot_names_and_keep_apps_apart() {
        let a = Names::for_app("shop-live");
        assert!(a.slot.starts_with("pgshift_shop_live_"));
        assert!(
            a.slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        assert!(a.role.len() <= 63 && a.slot.len() <= 63);
        assert_ne!(a, Names::for_app("shop_live"));
        assert_eq!(a, Names::for_app("shop-live"));
        let long = Names::for_app(&"x".repeat(200));
        assert!(long.role.len() <= 63, "{}", long.role);
    }
}
