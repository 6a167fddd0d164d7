//! Writes an app's failure path makes (a rollback step, the failure, the app's state, the
//! run's end), queued through the store writer like the hot path's: on the writer's own
//! connection and in its order, never racing it for SQLite's write lock (a lost race costs
//! the loser a millisecond-long busy sleep). The same SQL serves the direct `Store` methods.

use super::now;
use crate::domain::{AppState, RunStatus, StepState};

const CREATE_RUN: &str =
    "INSERT INTO runs (kind, runbook, params, started_at) VALUES ($1, $2, $3, $4) RETURNING id";
const FINISH_RUN: &str = "UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3";
const APPEND_STEP: &str = "INSERT INTO steps (run_id, app, seq, operation, params)
    SELECT $1, $2, COALESCE(MAX(seq), -1) + 1, $3, $4 FROM steps WHERE run_id = $1 AND app = $2
    RETURNING id";
const STEP_STARTED: &str =
    "UPDATE steps SET state = 'running', started_at = $1, finished_at = NULL WHERE id = $2";
const STEP_FINISHED: &str =
    "UPDATE steps SET state = $1, finished_at = $2, detail = COALESCE($3, detail) WHERE id = $4";
const RECORD_FAILURE: &str = "INSERT INTO failures (run_id, step_id, app, region, class, matched, explanation, remediations, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
const SET_APP_STATE: &str = "UPDATE apps SET state = $1, paused = $2, current_service = COALESCE($3, current_service), updated_at = $4 WHERE name = $5";
const BACKUP_COMPRESSED: &str = "UPDATE backups SET size_bytes = $1, sha256 = $2, compressed_at = $3 WHERE app = $4 AND run_id = $5";
const DELETE_BACKUP: &str = "DELETE FROM backups WHERE id = $1";
const SET_PAUSED: &str = "UPDATE apps SET paused = $1, updated_at = $2 WHERE name = $3";

/// A bound value of a queued statement.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

/// One statement for the writer; `returning` ones answer with the id they return.
#[derive(Debug, Clone)]
pub(super) struct Exec {
    pub(super) sql: &'static str,
    pub(super) args: Vec<Arg>,
    pub(super) returning: bool,
}

fn t(s: &str) -> Arg {
    Arg::Text(s.to_string())
}

impl Exec {
    /// A run that is not one app's (a fleet run, an operator's rollback); answers with its id.
    pub(super) fn create_run(kind: &str, runbook: &str, params: &str) -> Self {
        Self {
            sql: CREATE_RUN,
            args: vec![t(kind), t(runbook), t(params), t(&now())],
            returning: true,
        }
    }

    pub(super) fn finish_run(run_id: i64, status: RunStatus) -> Self {
        Self {
            sql: FINISH_RUN,
            args: vec![t(status.as_str()), t(&now()), Arg::Int(run_id)],
            returning: false,
        }
    }

    /// A step after the planned ones (a rollback); answers with its id.
    pub(super) fn append_step(run_id: i64, app: &str, op: &str, params: &str) -> Self {
        Self {
            sql: APPEND_STEP,
            args: vec![Arg::Int(run_id), t(app), t(op), t(params)],
            returning: true,
        }
    }

    pub(super) fn step_started(step_id: i64) -> Self {
        Self {
            sql: STEP_STARTED,
            args: vec![t(&now()), Arg::Int(step_id)],
            returning: false,
        }
    }

    pub(super) fn step_finished(step_id: i64, state: StepState, detail: Option<&str>) -> Self {
        Self {
            sql: STEP_FINISHED,
            args: vec![
                t(state.as_str()),
                t(&now()),
                Arg::OptText(detail.map(str::to_string)),
                Arg::Int(step_id),
            ],
            returning: false,
        }
    }

    /// A classified failure; answers with its id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_failure(
        run_id: i64,
        step_id: Option<i64>,
        app: &str,
        region: &str,
        class: &str,
        matched: &str,
        explanation: &str,
        remediations: &str,
    ) -> Self {
        Self {
            sql: RECORD_FAILURE,
            args: vec![
                Arg::Int(run_id),
                Arg::OptInt(step_id),
                t(app),
                t(region),
                t(class),
                t(matched),
                t(explanation),
                t(remediations),
                t(&now()),
            ],
            returning: true,
        }
    }

    pub(super) fn set_app_state(
        app: &str,
        state: AppState,
        paused: bool,
        service: Option<&str>,
    ) -> Self {
        Self {
            sql: SET_APP_STATE,
            args: vec![
                t(state.as_str()),
                Arg::Int(i64::from(paused)),
                Arg::OptText(service.map(str::to_string)),
                t(&now()),
                t(app),
            ],
            returning: false,
        }
    }

    /// A run's backup, its data files gzipped: what it takes on disk now and its new digest.
    pub(super) fn backup_compressed(app: &str, run_id: i64, size_bytes: i64, sha256: &str) -> Self {
        Self {
            sql: BACKUP_COMPRESSED,
            args: vec![
                Arg::Int(size_bytes),
                t(sha256),
                t(&now()),
                t(app),
                Arg::Int(run_id),
            ],
            returning: false,
        }
    }

    /// A swept backup: its files are gone.
    pub(super) fn delete_backup(id: i64) -> Self {
        Self {
            sql: DELETE_BACKUP,
            args: vec![Arg::Int(id)],
            returning: false,
        }
    }

    pub(super) fn set_paused(app: &str, paused: bool) -> Self {
        Self {
            sql: SET_PAUSED,
            args: vec![Arg::Int(i64::from(paused)), t(&now()), t(app)],
            returning: false,
        }
    }
}

/// Run one queued statement on the writer's connection (inside its batch's transaction).
macro_rules! run_exec {
    ($conn:expr, $e:expr) => {{
        let e: &$crate::store::queued::Exec = $e;
        let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(e.sql));
        for a in &e.args {
            q = match a {
                $crate::store::queued::Arg::Int(x) => q.bind(*x),
                $crate::store::queued::Arg::OptInt(x) => q.bind(*x),
                $crate::store::queued::Arg::Text(x) => q.bind(x.as_str()),
                $crate::store::queued::Arg::OptText(x) => q.bind(x.as_deref()),
            };
        }
        if e.returning {
            Some(q.fetch_one(&mut *$conn).await?)
        } else {
            q.fetch_optional(&mut *$conn).await?;
            None
        }
    }};
}
pub(super) use run_exec;
