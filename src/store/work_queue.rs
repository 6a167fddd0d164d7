//! The work queue of regional workers (issue #16): a fleet run's apps, claimed by workers on
//! any host through the shared store, with a lease per claim and a fencing token per app.
//!
//! - A region's concurrency holds across all workers: a claimer first updates its region's
//!   row (a row lock on PostgreSQL, the write lock on SQLite), then counts the region's live
//!   claims in a fresh snapshot, so two claimers of one region take turns and neither can
//!   miss the other's claim.
//! - Every claim takes a new token from `fences` (only ever incremented), so a takeover of an
//!   expired claim carries a higher token than the claim it replaces.
//! - A lease is judged by the store's clock alone (milliseconds read in the claim's first
//!   statement, or in the statement that checks it): workers' clocks never enter.
//! - A heartbeat, a completion and every fenced write match the item by (app, token) and an
//!   unexpired lease; once a lease lapses or is taken over, its holder's writes change nothing.
//!   A fenced write updates the item's row first, in the transaction of the state write, so a
//!   takeover (which skips locked rows on PostgreSQL, and waits for the write lock on SQLite)
//!   cannot slip between the check and the write.

use std::time::Duration;

use color_eyre::eyre::Result;
use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::Store;
use super::queued::{Exec, run_exec};
use crate::domain::AppState;

/// The store's clock in milliseconds since the epoch, per dialect.
const PG_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const SQLITE_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// Statements that read the store's clock carry `NOW_MS`, replaced per dialect.
fn with_now(store: &Store, sql: &'static str) -> AssertSqlSafe<String> {
    let now = match store {
        Store::Sqlite(_) => SQLITE_NOW_MS,
        Store::Postgres(_) => PG_NOW_MS,
    };
    AssertSqlSafe(sql.replace("NOW_MS", now))
}

/// Where a work item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    Queued,
    Claimed,
    Done,
    Failed,
}

impl WorkState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Queued => "queued",
            WorkState::Claimed => "claimed",
            WorkState::Done => "done",
            WorkState::Failed => "failed",
        }
    }
}

impl TryFrom<String> for WorkState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "queued" => WorkState::Queued,
            "claimed" => WorkState::Claimed,
            "done" => WorkState::Done,
            "failed" => WorkState::Failed,
            _ => return Err(format!("unknown work item state {s:?}")),
        })
    }
}

/// How a worker's claim of an app ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOutcome {
    /// The app reached its end (migrated, or failed and rolled back): no one runs it again.
    Done,
    /// The app's run failed and needs a human.
    Failed,
}

/// One claim of one app: what every side effect of its holder carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub app: String,
    pub token: i64,
}

/// What `claim_work` handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub fleet_run: i64,
    pub app: String,
    pub region: String,
    pub fence: Fence,
    /// When the lease lapses, on the store's clock (ms since the epoch).
    pub expires_ms: i64,
    /// 1 for a first claim; more when this claim takes over an expired one.
    pub attempt: i64,
    /// This claim took over a lapsed lease (the app may be mid-run: resume it).
    pub takeover: bool,
}

/// A work item as the store has it (for a console, tests, a coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkItem {
    pub app: String,
    pub region: String,
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub state: WorkState,
    pub holder: Option<String>,
    pub token: Option<i64>,
    pub expires_ms: Option<i64>,
    pub attempts: i64,
}

/// A side effect was refused: the claim it carried is no longer the app's live one.
#[derive(Debug, thiserror::Error)]
#[error("{app}: fencing token {token} is no longer current (the lease lapsed or was taken over)")]
pub struct FenceLost {
    pub app: String,
    pub token: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

const LOCK_REGION: &str = "UPDATE work_regions SET last_claim_ms = NOW_MS
    WHERE fleet_run = $1 AND region = $2 RETURNING concurrency, last_claim_ms";

/// PostgreSQL: count, pick, take a token and claim in one statement (its snapshot is taken
/// after the region's row lock was granted, so it sees every earlier claimer's commit).
const PG_CLAIM: &str = "WITH live AS (
      SELECT count(*) AS n FROM work_items
      WHERE fleet_run = $1 AND region = $2 AND state = 'claimed' AND expires_ms > $3),
    pick AS (
      SELECT w.app, w.state AS was FROM work_items w
      WHERE w.fleet_run = $1 AND w.region = $2
        AND (w.state = 'queued' OR (w.state = 'claimed' AND w.expires_ms <= $3))
        AND (SELECT n FROM live) < $4
      ORDER BY (w.state = 'claimed') DESC, w.seq
      LIMIT 1 FOR UPDATE SKIP LOCKED),
    fence AS (
      INSERT INTO fences (app, token) SELECT app, 1 FROM pick
      ON CONFLICT (app) DO UPDATE SET token = fences.token + 1
      RETURNING app, token)
    UPDATE work_items w SET state = 'claimed', holder = $5, token = fence.token,
      expires_ms = $3 + $6, attempts = w.attempts + 1
    FROM fence, pick
    WHERE w.fleet_run = $1 AND w.app = fence.app AND pick.app = fence.app
    RETURNING w.app, w.token, w.expires_ms, w.attempts, pick.was = 'claimed'";

/// SQLite: the same steps as separate statements, under the write lock the region's update
/// took (one writer at a time on one machine: what SKIP LOCKED buys PostgreSQL).
const SQLITE_LIVE: &str = "SELECT count(*) FROM work_items
    WHERE fleet_run = $1 AND region = $2 AND state = 'claimed' AND expires_ms > $3";
const SQLITE_PICK: &str = "SELECT app, state = 'claimed' FROM work_items
    WHERE fleet_run = $1 AND region = $2
      AND (state = 'queued' OR (state = 'claimed' AND expires_ms <= $3))
    ORDER BY (state = 'claimed') DESC, seq LIMIT 1";
const NEXT_TOKEN: &str = "INSERT INTO fences (app, token) VALUES ($1, 1)
    ON CONFLICT (app) DO UPDATE SET token = fences.token + 1 RETURNING token";
const SQLITE_CLAIM: &str = "UPDATE work_items SET state = 'claimed', holder = $1, token = $2,
      expires_ms = $3 + $4, attempts = attempts + 1
    WHERE fleet_run = $5 AND app = $6 RETURNING expires_ms, attempts";

const HEARTBEAT: &str = "UPDATE work_items SET expires_ms = NOW_MS + $3
    WHERE app = $1 AND token = $2 AND state = 'claimed' AND expires_ms > NOW_MS
    RETURNING expires_ms";
const FENCE: &str = "UPDATE work_items SET fenced_ms = NOW_MS
    WHERE app = $1 AND token = $2 AND state = 'claimed' AND expires_ms > NOW_MS";
const COMPLETE: &str = "UPDATE work_items SET state = $3, holder = NULL, expires_ms = NULL
    WHERE app = $1 AND token = $2 AND state = 'claimed' AND expires_ms > NOW_MS";
const RELEASE: &str = "UPDATE work_items SET state = 'queued', holder = NULL, expires_ms = NULL
    WHERE app = $1 AND token = $2 AND state = 'claimed'";

impl Store {
    /// Queue a fleet run's apps: each region with its concurrency, each app (name, region)
    /// in plan order. Enqueuing again keeps what is already queued or claimed.
    pub async fn enqueue_work(
        &self,
        fleet_run: i64,
        regions: &[(String, i64)],
        apps: &[(String, String)],
    ) -> Result<()> {
        let region_sql = "INSERT INTO work_regions (fleet_run, region, concurrency)
            VALUES ($1, $2, $3)
            ON CONFLICT (fleet_run, region) DO UPDATE SET concurrency = excluded.concurrency";
        let item_sql =
            "INSERT INTO work_items (fleet_run, app, region, seq) VALUES ($1, $2, $3, $4)
            ON CONFLICT (fleet_run, app) DO NOTHING";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (region, concurrency) in regions {
                sqlx::query(region_sql)
                    .bind(fleet_run)
                    .bind(region)
                    .bind(*concurrency)
                    .execute(&mut *tx)
                    .await?;
            }
            for (seq, (app, region)) in apps.iter().enumerate() {
                sqlx::query(item_sql)
                    .bind(fleet_run)
                    .bind(app)
                    .bind(region)
                    .bind(seq as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Claim the next app of `region` in `fleet_run` for `holder`, for `ttl`: an expired claim
    /// first (it is taken over with a new token), else the first queued app in plan order.
    /// `None` when the region is at its concurrency, has nothing left, or is not in the run.
    pub async fn claim_work(
        &self,
        fleet_run: i64,
        region: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Claim>> {
        let ttl = ms(ttl);
        let lock = with_now(self, LOCK_REGION);
        let claimed = match self {
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let Some((concurrency, now_ms)) = sqlx::query_as::<_, (i64, i64)>(lock)
                    .bind(fleet_run)
                    .bind(region)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let row: Option<(String, i64, i64, i64, bool)> = sqlx::query_as(PG_CLAIM)
                    .bind(fleet_run)
                    .bind(region)
                    .bind(now_ms)
                    .bind(concurrency)
                    .bind(holder)
                    .bind(ttl)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row
            }
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let Some((concurrency, now_ms)) = sqlx::query_as::<_, (i64, i64)>(lock)
                    .bind(fleet_run)
                    .bind(region)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let live: i64 = sqlx::query_scalar(SQLITE_LIVE)
                    .bind(fleet_run)
                    .bind(region)
                    .bind(now_ms)
                    .fetch_one(&mut *tx)
                    .await?;
                let pick: Option<(String, bool)> = if live < concurrency {
                    sqlx::query_as(SQLITE_PICK)
                        .bind(fleet_run)
                        .bind(region)
                        .bind(now_ms)
                        .fetch_optional(&mut *tx)
                        .await?
                } else {
                    None
                };
                let row = match pick {
                    None => None,
                    Some((app, was_claimed)) => {
                        let token: i64 = sqlx::query_scalar(NEXT_TOKEN)
                            .bind(&app)
                            .fetch_one(&mut *tx)
                            .await?;
                        let (expires_ms, attempts): (i64, i64) = sqlx::query_as(SQLITE_CLAIM)
                            .bind(holder)
                            .bind(token)
                            .bind(now_ms)
                            .bind(ttl)
                            .bind(fleet_run)
                            .bind(&app)
                            .fetch_one(&mut *tx)
                            .await?;
                        Some((app, token, expires_ms, attempts, was_claimed))
                    }
                };
                tx.commit().await?;
                row
            }
        };
        Ok(
            claimed.map(|(app, token, expires_ms, attempt, takeover)| Claim {
                fleet_run,
                fence: Fence {
                    app: app.clone(),
                    token,
                },
                app,
                region: region.to_string(),
                expires_ms,
                attempt,
                takeover,
            }),
        )
    }

    /// Extend a live claim by `ttl` from now (store clock). `None` when the claim is no longer
    /// the app's live one (lapsed, taken over, completed, released): its holder must stop.
    pub async fn heartbeat_work(&self, fence: &Fence, ttl: Duration) -> Result<Option<i64>> {
        let sql = with_now(self, HEARTBEAT);
        let row = on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(&fence.app)
            .bind(fence.token)
            .bind(ms(ttl))
            .fetch_optional(pool)
            .await?);
        Ok(row)
    }

    /// Is this claim still the app's live one? (A side effect outside the store asks this
    /// first; one in the store uses a `fenced_*` write, which checks in its own transaction.)
    pub async fn fence_check(&self, fence: &Fence) -> Result<bool> {
        let sql = with_now(self, FENCE);
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(&fence.app)
            .bind(fence.token)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Finish a live claim. `false` when it was no longer live: the outcome is not recorded
    /// (a later claim owns the app).
    pub async fn complete_work(&self, fence: &Fence, outcome: WorkOutcome) -> Result<bool> {
        let state = match outcome {
            WorkOutcome::Done => WorkState::Done,
            WorkOutcome::Failed => WorkState::Failed,
        };
        let sql = with_now(self, COMPLETE);
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(&fence.app)
            .bind(fence.token)
            .bind(state.as_str())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Give a claim back unfinished (a worker stopping cleanly): the app is queued again and
    /// the next claim takes a new token. `false` when the claim was no longer this holder's.
    pub async fn release_work(&self, fence: &Fence) -> Result<bool> {
        let n = on_pool!(self, pool => sqlx::query(RELEASE)
            .bind(&fence.app)
            .bind(fence.token)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Set an app's state under its fence: the check and the write commit together, or
    /// neither does (`FenceLost`).
    pub async fn fenced_set_app_state(
        &self,
        fence: &Fence,
        state: AppState,
        paused: bool,
        service: Option<&str>,
    ) -> Result<()> {
        self.fenced(
            fence,
            vec![Exec::set_app_state(&fence.app, state, paused, service)],
        )
        .await
    }

    /// Set an app's paused flag under its fence (see `fenced_set_app_state`).
    pub async fn fenced_set_paused(&self, fence: &Fence, paused: bool) -> Result<()> {
        self.fenced(fence, vec![Exec::set_paused(&fence.app, paused)])
            .await
    }

    /// The fence check first (it row-locks the item on PostgreSQL, takes the write lock on
    /// SQLite), then the writes, in one transaction.
    async fn fenced(&self, fence: &Fence, writes: Vec<Exec>) -> Result<()> {
        let check = with_now(self, FENCE);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(check)
                .bind(&fence.app)
                .bind(fence.token)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                tx.rollback().await?;
                return Err(FenceLost { app: fence.app.clone(), token: fence.token }.into());
            }
            for w in &writes {
                let conn = &mut *tx;
                run_exec!(conn, w);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every work item of a fleet run, in plan order.
    pub async fn work_items(&self, fleet_run: i64) -> Result<Vec<WorkItem>> {
        let sql = "SELECT app, region, seq, state, holder, token, expires_ms, attempts
            FROM work_items WHERE fleet_run = $1 ORDER BY seq";
        let rows =
            on_pool!(self, pool => sqlx::query_as(sql).bind(fleet_run).fetch_all(pool).await?);
        Ok(rows)
    }

    /// The store's clock (ms since the epoch), as leases are judged by it.
    pub async fn store_clock_ms(&self) -> Result<i64> {
        let sql = with_now(self, "SELECT NOW_MS");
        let v: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(v)
    }
}

/// A worker as the store last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// Comma-separated, as registered.
    pub regions: String,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    /// Its unexpired claims right now.
    pub apps_in_hand: i64,
    /// Milliseconds since the store last heard from it (store clock).
    pub silent_ms: i64,
}

const REGISTER_WORKER: &str =
    "INSERT INTO workers (id, host, pid, regions, started_ms, last_seen_ms)
    VALUES ($1, $2, $3, $4, NOW_MS, NOW_MS)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
      regions = excluded.regions, last_seen_ms = excluded.last_seen_ms";
const WORKER_SEEN: &str = "UPDATE workers SET last_seen_ms = NOW_MS WHERE id = $1";
const WORKERS: &str = "SELECT w.id, w.host, w.pid, w.regions, w.started_ms, w.last_seen_ms,
      (SELECT count(*) FROM work_items i
        WHERE i.holder = w.id AND i.state = 'claimed' AND i.expires_ms > c.now) AS apps_in_hand,
      c.now - w.last_seen_ms AS silent_ms
    FROM workers w, (SELECT NOW_MS AS now) c
    ORDER BY w.host, w.id";

impl Store {
    /// A worker announces itself (again, after a restart with the same id).
    pub async fn register_worker(
        &self,
        id: &str,
        host: &str,
        pid: i64,
        regions: &[String],
    ) -> Result<()> {
        let sql = with_now(self, REGISTER_WORKER);
        let regions = regions.join(",");
        on_pool!(self, pool => {
            sqlx::query(sql).bind(id).bind(host).bind(pid).bind(&regions).execute(pool).await?;
        });
        Ok(())
    }

    /// The worker is alive (its heartbeat loop calls this beside its claims' heartbeats).
    /// `false` when the store does not know it.
    pub async fn worker_seen(&self, id: &str) -> Result<bool> {
        let sql = with_now(self, WORKER_SEEN);
        let n =
            on_pool!(self, pool => sqlx::query(sql).bind(id).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Every worker the store knows, with its apps in hand and how long it has been silent.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>> {
        let sql = with_now(self, WORKERS);
        let rows = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }
}
