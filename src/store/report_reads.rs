//! Read-only queries for the night's report: how long each app was paused in each run.

use color_eyre::eyre::Result;

use super::Store;

/// When an app's pause and unpause steps finished in one run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PausedSpan {
    pub run_id: i64,
    pub app: String,
    pub paused_at: Option<String>,
    pub unpaused_at: Option<String>,
}

impl Store {
    /// Every run's pause → unpause of every app that was paused, oldest first.
    pub async fn paused_spans(&self) -> Result<Vec<PausedSpan>> {
        let sql = "SELECT run_id, app,
                          MIN(CASE WHEN operation = 'pause' AND state = 'done' THEN finished_at END) AS paused_at,
                          MAX(CASE WHEN operation = 'unpause' AND state = 'done' THEN finished_at END) AS unpaused_at
                   FROM steps
                   GROUP BY run_id, app
                   HAVING MIN(CASE WHEN operation = 'pause' AND state = 'done' THEN finished_at END) IS NOT NULL
                   ORDER BY run_id, app";
        let rows = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows)
    }
}
