//! The control store: runs, steps, step logs, failures, backups, leases and each app's state.
//! SQLite (one file, the embedded default) or PostgreSQL; migrations are embedded per dialect
//! and applied on open. Queries are runtime `query_as`, written once in the subset both
//! dialects share (`$n` placeholders, `ON CONFLICT`).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::domain::AppState as AppStateKind;
use crate::error::UserError;
use crate::inventory::Inventory;

#[macro_use]
mod macros {
    /// Run the same query text on whichever pool the store has.
    macro_rules! on_pool {
        ($store:expr, $pool:ident => $body:expr) => {
            match $store {
                Store::Sqlite($pool) => $body,
                Store::Postgres($pool) => $body,
            }
        };
    }
}
mod apply;
mod console_reads;
mod journal;
mod probes;
mod queued;
mod report_reads;
mod runs;
mod work_lease;
mod work_queue;
mod writer;

pub use journal::{Advance, FailureRecord, Journal};
pub use writer::{BackupRecord, Began, BeginRun};

pub use console_reads::{AppRunSpan, RunLogLine, RunningStep};
pub use probes::ProbeRow;
pub use report_reads::PausedSpan;
pub use runs::{BackupRow, FailureRow, Lease, LeaseHolder, LogRow, StepRow};
pub use work_lease::{LeaseKeeper, LeaseLoss};
pub use work_queue::{Claim, Fence, FenceLost, WorkItem, WorkOutcome, WorkState, WorkerRow};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// An app's migration state as the store knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AppState {
    pub name: String,
    #[sqlx(try_from = "String")]
    pub state: AppStateKind,
    pub paused: bool,
    pub current_service: Option<String>,
    /// The app's image must be rebuilt (its NEW role was md5-hashed for an old libpq).
    #[sqlx(default)]
    pub needs_rebuild: bool,
}

impl Store {
    /// Open (creating a SQLite file if needed) and migrate. A bad URL or unreachable server
    /// is the operator's to fix: it names the store, never its password.
    pub async fn open(url: &str) -> Result<Self> {
        let shown = mask_url(url);
        let cannot_open =
            |e: sqlx::Error| UserError::new(format!("cannot open store {shown}: {e}"));
        let migrating = || format!("migrating store {shown}");
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| UserError::new(format!("store {shown}: {e}")))?;
            // One plain connection first: a pool retries refused connections until its
            // timeout, and an operator with a typo should hear about it at once.
            let probe = tokio::time::timeout(
                Duration::from_secs(10),
                sqlx::PgConnection::connect_with(&opts),
            )
            .await
            .map_err(|_| {
                UserError::new(format!("cannot open store {shown}: timed out after 10 s"))
            })?
            .map_err(cannot_open)?;
            probe.close().await.ok();
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .map_err(cannot_open)?;
            POSTGRES_MIGRATIONS
                .run(&pool)
                .await
                .wrap_err_with(migrating)?;
            Store::Postgres(pool)
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            let path = Path::new(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    UserError::new(format!(
                        "store {shown}: cannot create {}: {e}",
                        dir.display()
                    ))
                })?;
            }
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a crash of pgshift (what resume needs); only
                // an OS crash can lose the last transactions. FULL costs an fsync per step.
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // One connection: SQLite has one writer anyway, and several connections of one
            // process only take turns through busy-waits.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                // A local file does not go stale: no ping before every use (a round trip each).
                .test_before_acquire(false)
                .connect_with(opts)
                .await
                .map_err(cannot_open)?;
            SQLITE_MIGRATIONS
                .run(&pool)
                .await
                .wrap_err_with(migrating)?;
            Store::Sqlite(pool)
        } else {
            return Err(UserError::new(format!(
                "store {shown}: expected a sqlite://PATH or postgres://… URL"
            ))
            .into());
        };
        Ok(store)
    }

    pub fn dialect(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Record every inventory app, keeping the state of apps already known.
    pub async fn sync_inventory(&self, inv: &Inventory) -> Result<()> {
        let now = now();
        let sql = "INSERT INTO apps (name, region, environment, customer, libpq, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (name) DO UPDATE SET region = excluded.region,
                     environment = excluded.environment, customer = excluded.customer,
                     libpq = excluded.libpq";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for a in &inv.apps {
                sqlx::query(sql)
                    .bind(&a.name)
                    .bind(&a.region)
                    .bind(a.environment.to_string())
                    .bind(&a.customer)
                    .bind(a.client.to_string())
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every app's state, by name.
    pub async fn app_states(&self) -> Result<HashMap<String, AppState>> {
        let sql = "SELECT name, state, paused <> 0 AS paused, current_service, needs_rebuild <> 0 AS needs_rebuild FROM apps";
        let rows: Vec<AppState> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|r| (r.name.clone(), r)).collect())
    }

    /// One app's state.
    pub async fn app_state(&self, app: &str) -> Result<Option<AppState>> {
        let sql = "SELECT name, state, paused <> 0 AS paused, current_service, needs_rebuild <> 0 AS needs_rebuild FROM apps WHERE name = $1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).bind(app).fetch_optional(pool).await?);
        Ok(row)
    }

    /// Forget every app's migration state (after `lab reset` re-seeded the servers).
    pub(super) async fn reset_app_states(&self) -> Result<u64> {
        let sql = "UPDATE apps SET state = 'pending', paused = 0, current_service = NULL, needs_rebuild = 0, updated_at = $1";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(now()).execute(pool).await?.rows_affected());
        Ok(n)
    }

    /// Forget one app's migration state (after `lab reset --app`).
    pub(super) async fn reset_app_state(&self, app: &str) -> Result<()> {
        let sql = "UPDATE apps SET state = 'pending', paused = 0, current_service = NULL, needs_rebuild = 0, updated_at = $1 WHERE name = $2";
        on_pool!(self, pool => { sqlx::query(sql).bind(now()).bind(app).execute(pool).await?; });
        Ok(())
    }

    /// Every log line of an app's steps, oldest first.
    pub async fn app_log_lines(&self, app: &str) -> Result<Vec<String>> {
        let sql = "SELECT l.line FROM step_logs l JOIN steps s ON s.id = l.step_id WHERE s.app = $1 ORDER BY l.id";
        let rows: Vec<String> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(app).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Applied migration versions, for `info`.
    pub async fn schema_version(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let v: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(v)
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub use crate::inventory::mask_url;

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn store_url_password_is_masked() {
        assert_eq!(
            mask_url("postgres://ops:hunter2@db:5432/pgshift"),
            "postgres://ops:****@db:5432/pgshift"
        );
        assert_eq!(
            mask_url("sqlite:///var/lib/pgshift/pgshift.db"),
            "sqlite:///var/lib/pgshift/pgshift.db"
        );
    }
}
