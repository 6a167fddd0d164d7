//! Read-only queries the console polls: one app's newest run (steps and log lines since a
//! cursor), what is running now, and per-app durations for the report. Nothing here writes.

use color_eyre::eyre::Result;

use super::Store;

/// A log line of one app's run, with the step it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunLogLine {
    pub id: i64,
    pub step: String,
    pub stream: String,
    pub line: String,
}

/// A step running right now, in a run still marked running.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunningStep {
    pub app: String,
    pub region: String,
    pub operation: String,
    pub seq: i64,
    pub started_at: Option<String>,
}

/// One app's pass through one run: when it started and ended, and whether a step failed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppRunSpan {
    pub run_id: i64,
    pub app: String,
    pub region: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub failed: i64,
    pub unfinished: i64,
}

impl Store {
    /// Log lines of `app` in `run_id` with an id above `after`, oldest first, at most `limit`.
    pub async fn run_log_since(
        &self,
        run_id: i64,
        app: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RunLogLine>> {
        let sql = "SELECT l.id, s.operation AS step, l.stream, l.line FROM step_logs l
                   JOIN steps s ON s.id = l.step_id
                   WHERE s.run_id = $1 AND s.app = $2 AND l.id > $3 ORDER BY l.id LIMIT $4";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).bind(run_id).bind(app).bind(after).bind(limit).fetch_all(pool).await?);
        Ok(rows)
    }

    /// The id of the `n`-th newest log line of `app` in `run_id` (where a capped load starts).
    pub async fn run_log_tail_start(&self, run_id: i64, app: &str, n: i64) -> Result<i64> {
        let sql = "SELECT COALESCE(MIN(id), 0) - 1 FROM (SELECT l.id FROM step_logs l
                   JOIN steps s ON s.id = l.step_id WHERE s.run_id = $1 AND s.app = $2
                   ORDER BY l.id DESC LIMIT $3) t";
        let id: i64 = on_pool!(self, pool => sqlx::query_scalar(sql).bind(run_id).bind(app).bind(n).fetch_one(pool).await?);
        Ok(id.max(0))
    }

    /// When the newest plan was made: where "the night" starts for the Run view.
    pub async fn latest_plan_created_at(&self) -> Result<Option<String>> {
        let sql = "SELECT created_at FROM plans ORDER BY id DESC LIMIT 1";
        let at: Option<String> =
            on_pool!(self, pool => sqlx::query_scalar(sql).fetch_optional(pool).await?);
        Ok(at)
    }

    /// Steps running now, in runs still marked running, with the app's region.
    pub async fn running_steps(&self) -> Result<Vec<RunningStep>> {
        let sql = "SELECT s.app, a.region, s.operation, s.seq, s.started_at FROM steps s
                   JOIN runs r ON r.id = s.run_id JOIN apps a ON a.name = s.app
                   WHERE s.state = 'running' AND r.status = 'running' ORDER BY a.region, s.app";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Every app's pass through every run, oldest first.
    pub async fn app_run_spans(&self) -> Result<Vec<AppRunSpan>> {
        let sql = "SELECT s.run_id, s.app, a.region, MIN(s.started_at) AS started_at,
                          MAX(s.finished_at) AS finished_at,
                          SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END) AS failed,
                          SUM(CASE WHEN s.state IN ('pending', 'running') THEN 1 ELSE 0 END) AS unfinished
                   FROM steps s JOIN apps a ON a.name = s.app
                   GROUP BY s.run_id, s.app, a.region ORDER BY s.run_id, s.app";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }
}
