//! Runs, steps, step logs, failures, backups and leases.

use color_eyre::eyre::Result;
use serde::Serialize;

use super::{Store, now};
use crate::domain::StepState;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StepRow {
    pub id: i64,
    pub run_id: i64,
    pub app: String,
    pub seq: i64,
    pub operation: String,
    #[sqlx(try_from = "String")]
    pub state: StepState,
    pub attempt: i64,
    pub params: String,
    pub detail: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LogRow {
    pub id: i64,
    pub step_id: i64,
    pub at: String,
    pub stream: String,
    pub line: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FailureRow {
    pub id: i64,
    pub run_id: i64,
    pub step_id: Option<i64>,
    /// The failed step's operation (`restore`, `redeploy`, …).
    pub step: Option<String>,
    pub app: String,
    pub region: String,
    pub class: String,
    pub matched: String,
    pub explanation: String,
    pub remediations: String,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BackupRow {
    pub id: i64,
    pub app: String,
    pub service_id: String,
    pub run_id: Option<i64>,
    pub server: String,
    pub database: String,
    pub path: String,
    pub format: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub notes: String,
    pub created_at: String,
    /// When retention may delete it; `None`: kept until an operator removes it.
    pub expires_at: Option<String>,
    /// What pg_dump wrote; `size_bytes` is what it takes now (less once compressed).
    pub dump_bytes: Option<i64>,
    /// When its data files were gzipped; `None`: as pg_dump wrote them.
    pub compressed_at: Option<String>,
}

/// Who asks for a lease: its id, process and host (a holder on the same host whose process
/// is gone can be taken over).
#[derive(Debug, Clone, Copy)]
pub struct LeaseHolder<'a> {
    pub id: &'a str,
    pub pid: i64,
    pub host: &'a str,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Lease {
    pub app: String,
    pub holder: String,
    pub pid: i64,
    pub host: String,
    pub acquired_at: String,
    pub expires_at: String,
}

pub(super) const STEP_COLUMNS: &str =
    "id, run_id, app, seq, operation, state, attempt, params, detail, started_at, finished_at";

impl Store {
    pub async fn steps(&self, run_id: i64, app: &str) -> Result<Vec<StepRow>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 AND app = $2 ORDER BY seq, attempt"
        );
        let rows = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(run_id).bind(app).fetch_all(pool).await?);
        Ok(rows)
    }

    /// The newest run that touched an app, if any.
    pub async fn latest_run_of(&self, app: &str) -> Result<Option<i64>> {
        let sql = "SELECT MAX(run_id) FROM steps WHERE app = $1";
        let id: Option<i64> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(app).fetch_one(pool).await?);
        Ok(id)
    }

    /// (run, app) pairs of runs still marked running: what `resume` continues.
    pub async fn unfinished(&self) -> Result<Vec<(i64, String)>> {
        let sql = "SELECT DISTINCT s.run_id, s.app FROM steps s JOIN runs r ON r.id = s.run_id
                   WHERE r.status = 'running' ORDER BY s.run_id, s.app";
        let rows: Vec<(i64, String)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }

    pub async fn step_logs(&self, step_id: i64) -> Result<Vec<LogRow>> {
        let sql =
            "SELECT id, step_id, at, stream, line FROM step_logs WHERE step_id = $1 ORDER BY id";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(step_id).fetch_all(pool).await?);
        Ok(rows)
    }

    pub async fn failures(&self, open_only: bool) -> Result<Vec<FailureRow>> {
        let sql = format!(
            "SELECT f.id, f.run_id, f.step_id, s.operation AS step, f.app, f.region, f.class, f.matched,
                    f.explanation, f.remediations, f.status, f.created_at
             FROM failures f LEFT JOIN steps s ON s.id = f.step_id {} ORDER BY f.id",
            if open_only { "WHERE f.status = 'open'" } else { "" }
        );
        let rows =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?);
        Ok(rows)
    }

    pub(super) async fn set_failure_status(&self, id: i64, status: &str) -> Result<()> {
        let sql = "UPDATE failures SET status = $1, resolved_at = CASE WHEN $1 = 'resolved' THEN $2 ELSE resolved_at END WHERE id = $3";
        on_pool!(self, pool => { sqlx::query(sql).bind(status).bind(now()).bind(id).execute(pool).await?; });
        Ok(())
    }

    /// Close every open failure of an app (`None`: of every app) with `status`.
    pub(super) async fn close_failures(&self, app: Option<&str>, status: &str) -> Result<u64> {
        let sql = "UPDATE failures SET status = $1, resolved_at = $2 WHERE status = 'open' AND ($3 IS NULL OR app = $3)";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(status).bind(now()).bind(app).execute(pool).await?.rows_affected());
        Ok(n)
    }

    pub(super) async fn set_needs_rebuild(&self, app: &str) -> Result<()> {
        let sql = "UPDATE apps SET needs_rebuild = 1, updated_at = $1 WHERE name = $2";
        on_pool!(self, pool => { sqlx::query(sql).bind(now()).bind(app).execute(pool).await?; });
        Ok(())
    }

    /// The remediation a run was started with (`retry --remediation`).
    pub async fn run_remediation(&self, run_id: i64) -> Result<Option<String>> {
        let sql = "SELECT params FROM runs WHERE id = $1";
        let params: Option<String> = on_pool!(self, pool => sqlx::query_scalar(sql).bind(run_id).fetch_optional(pool).await?);
        Ok(params
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|v| v["remediation"].as_str().map(str::to_string)))
    }

    pub async fn backups(&self, app: Option<&str>) -> Result<Vec<BackupRow>> {
        let sql = "SELECT id, app, service_id, run_id, server, database, path, format, size_bytes, sha256, notes, created_at,
                          expires_at, dump_bytes, compressed_at
                   FROM backups WHERE $1 IS NULL OR app = $1 ORDER BY id";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(app).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Take the app's lease unless a live holder has it; returns the holder that blocks.
    pub(super) async fn acquire_lease(
        &self,
        app: &str,
        LeaseHolder {
            id: holder,
            pid,
            host,
        }: LeaseHolder<'_>,
        ttl_secs: i64,
    ) -> Result<Option<Lease>> {
        let now_s = now();
        let expires = (chrono::Utc::now() + chrono::Duration::seconds(ttl_secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let sql = "INSERT INTO leases (app, holder, pid, host, acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (app) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,
                     acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                   WHERE leases.expires_at < $5 OR leases.holder = $2";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(app).bind(holder).bind(pid).bind(host).bind(&now_s).bind(&expires).execute(pool).await?.rows_affected());
        if n == 1 {
            return Ok(None);
        }
        self.lease(app).await
    }

    pub async fn lease(&self, app: &str) -> Result<Option<Lease>> {
        let sql =
            "SELECT app, holder, pid, host, acquired_at, expires_at FROM leases WHERE app = $1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).bind(app).fetch_optional(pool).await?);
        Ok(row)
    }

    /// Take over a lease whose holder is known dead (same host, process gone).
    pub(super) async fn steal_lease(&self, app: &str, dead_holder: &str) -> Result<bool> {
        let sql = "DELETE FROM leases WHERE app = $1 AND holder = $2";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(app).bind(dead_holder).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub(super) async fn renew_lease(&self, app: &str, holder: &str, ttl_secs: i64) -> Result<bool> {
        let expires = (chrono::Utc::now() + chrono::Duration::seconds(ttl_secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let sql = "UPDATE leases SET expires_at = $1 WHERE app = $2 AND holder = $3";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(expires).bind(app).bind(holder).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }
}

impl Store {
    pub async fn save_plan(&self, params: &str, body: &str) -> Result<i64> {
        let sql = "INSERT INTO plans (created_at, params, body) VALUES ($1, $2, $3) RETURNING id";
        let id: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(now()).bind(params).bind(body).fetch_one(pool).await?);
        Ok(id)
    }

    /// The newest saved plan: (id, params, body).
    pub async fn latest_plan(&self) -> Result<Option<(i64, String, String)>> {
        let sql = "SELECT id, params, body FROM plans ORDER BY id DESC LIMIT 1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await?);
        Ok(row)
    }

    /// Bytes per second observed for a step kind over finished migrations (OLD size / time).
    pub async fn observed_throughput(&self, operation: &str) -> Result<Option<f64>> {
        let sql = "SELECT detail, started_at, finished_at FROM steps
                   WHERE operation = $1 AND state = 'done' AND detail IS NOT NULL
                   ORDER BY id DESC LIMIT 200";
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(operation).fetch_all(pool).await?);
        let (mut bytes, mut secs) = (0f64, 0f64);
        for (detail, a, b) in rows {
            let size = detail
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .and_then(|v| v["old_bytes"].as_f64())
                .unwrap_or(0.0);
            let parse =
                |t: Option<String>| t.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
            if let (Some(a), Some(b)) = (parse(a), parse(b)) {
                let d = (b - a).num_milliseconds() as f64 / 1000.0;
                if d > 0.0 && size > 0.0 {
                    bytes += size;
                    secs += d;
                }
            }
        }
        Ok((secs > 1.0).then(|| bytes / secs))
    }
}

impl Store {
    /// Ask the running fleet run to `pause` or `stop` a region, or (region `*`) to `cancel`.
    pub async fn set_control(&self, region: &str, action: &str) -> Result<()> {
        let sql = "INSERT INTO controls (region, action, requested_at) VALUES ($1, $2, $3)
                   ON CONFLICT (region) DO UPDATE SET action = excluded.action, requested_at = excluded.requested_at";
        on_pool!(self, pool => { sqlx::query(sql).bind(region).bind(action).bind(now()).execute(pool).await?; });
        Ok(())
    }

    /// Withdraw a request (`region resume`); `None`: every request.
    pub async fn clear_controls(&self, region: Option<&str>) -> Result<u64> {
        let sql = "DELETE FROM controls WHERE $1 IS NULL OR region = $1";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(region).execute(pool).await?.rows_affected());
        Ok(n)
    }

    /// region → requested action.
    pub async fn controls(&self) -> Result<std::collections::HashMap<String, String>> {
        let sql = "SELECT region, action FROM controls";
        let rows: Vec<(String, String)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().collect())
    }

    /// Fleet runs still marked running (their pgshift may have died): (id, params).
    /// The params of every run still running (app runs and fleet runs).
    pub async fn running_run_params(&self) -> Result<Vec<String>> {
        let sql = "SELECT params FROM runs WHERE status = 'running' ORDER BY id";
        let rows = on_pool!(self, pool => sqlx::query_scalar(sql).fetch_all(pool).await?);
        Ok(rows)
    }

    pub async fn running_fleet_runs(&self) -> Result<Vec<(i64, String)>> {
        let sql =
            "SELECT id, params FROM runs WHERE kind = 'fleet' AND status = 'running' ORDER BY id";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }

    /// A saved plan: (params, body).
    pub async fn plan_by_id(&self, id: i64) -> Result<Option<(String, String)>> {
        let sql = "SELECT params, body FROM plans WHERE id = $1";
        let row = on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?);
        Ok(row)
    }
}
