//! What the downtime prober saw (table `probes`): written while a probing session runs, read
//! by `app show`, the night's report and the console.

use color_eyre::eyre::Result;

use super::Store;
use crate::probe::{Answer, Tally};

/// One app's tally in one probing session, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProbeRow {
    pub app: String,
    pub session: String,
    pub answered: i64,
    pub maintenance: i64,
    pub failed: i64,
    pub first_maintenance_at: Option<String>,
    pub last_maintenance_at: Option<String>,
    pub last_answer: Option<String>,
    pub last_at: Option<String>,
    pub failures: String,
}

impl ProbeRow {
    /// The tally back from its row.
    pub fn tally(&self) -> Tally {
        let ts = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        Tally {
            answered: self.answered.max(0) as u64,
            maintenance: self.maintenance.max(0) as u64,
            failed: self.failed.max(0) as u64,
            first_maintenance: ts(&self.first_maintenance_at),
            last_maintenance: ts(&self.last_maintenance_at),
            last: self
                .last_answer
                .as_deref()
                .and_then(|a| serde_json::from_str::<Answer>(a).ok()),
            last_at: ts(&self.last_at),
            failures: serde_json::from_str(&self.failures).unwrap_or_default(),
        }
    }
}

const COLUMNS: &str = "app, session, answered, maintenance, failed, first_maintenance_at, last_maintenance_at, last_answer, last_at, failures";

impl Store {
    /// Write (or update) each app's tally of a probing session.
    pub async fn save_probes(
        &self,
        session: &str,
        tallies: &std::collections::BTreeMap<String, Tally>,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO probes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (app, session) DO UPDATE SET answered = excluded.answered,
               maintenance = excluded.maintenance, failed = excluded.failed,
               first_maintenance_at = excluded.first_maintenance_at,
               last_maintenance_at = excluded.last_maintenance_at,
               last_answer = excluded.last_answer, last_at = excluded.last_at,
               failures = excluded.failures"
        );
        let ts = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        for (app, t) in tallies {
            let last = t.last.as_ref().and_then(|a| serde_json::to_string(a).ok());
            let failures = serde_json::to_string(&t.failures)?;
            on_pool!(self, pool => {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(app)
                    .bind(session)
                    .bind(t.answered as i64)
                    .bind(t.maintenance as i64)
                    .bind(t.failed as i64)
                    .bind(ts(t.first_maintenance))
                    .bind(ts(t.last_maintenance))
                    .bind(last.clone())
                    .bind(ts(t.last_at))
                    .bind(failures.clone())
                    .execute(pool)
                    .await?;
            });
        }
        Ok(())
    }

    /// Every probing session's tallies, oldest first.
    pub async fn probes(&self) -> Result<Vec<ProbeRow>> {
        let sql = format!("SELECT {COLUMNS} FROM probes ORDER BY session, app");
        let rows =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Each app's newest probing session.
    pub async fn latest_probes(&self) -> Result<Vec<ProbeRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM probes p WHERE session = (SELECT MAX(session) FROM probes q WHERE q.app = p.app) ORDER BY app"
        );
        let rows =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?);
        Ok(rows)
    }
}
