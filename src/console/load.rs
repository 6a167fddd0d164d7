//! Reading what the views show from the store, off the input path: each loader returns an
//! action for `update`. The store is the source of truth; nothing here writes.

use color_eyre::eyre::Result;

use super::action::Action;
use super::data::{Data, FailureItem, FailureLog, Night, StepView};
use super::logbuf::{DEFAULT_CAP, LogLine};
use crate::diagnose::Matched;
use crate::store::{FailureRow, Store};

/// Most lines one poll reads: a first look at a long restore shows its tail, then follows.
const POLL_LINES: i64 = 5_000;

/// The app's newest run: steps, and log lines after `after` (0: the newest `DEFAULT_CAP`).
pub async fn app(store: &Store, app: &str, known_run: Option<i64>, after: i64) -> Result<Action> {
    let run_id = store.latest_run_of(app).await?;
    let (steps, lines) = match run_id {
        None => (Vec::new(), Vec::new()),
        Some(run) => {
            let steps = store
                .steps(run, app)
                .await?
                .into_iter()
                .map(|s| StepView {
                    seconds: seconds(s.started_at.as_deref(), s.finished_at.as_deref()),
                    operation: s.operation,
                    state: s.state,
                })
                .collect();
            let mut cursor = if known_run == Some(run) { after } else { 0 };
            if cursor == 0 {
                cursor = store
                    .run_log_tail_start(run, app, DEFAULT_CAP as i64)
                    .await?;
            }
            let lines = store
                .run_log_since(run, app, cursor, POLL_LINES)
                .await?
                .into_iter()
                .map(|l| LogLine {
                    id: l.id,
                    step: l.step,
                    stream: l.stream,
                    text: l.line,
                })
                .collect();
            (steps, lines)
        }
    };
    Ok(Action::Data(Data::App {
        app: app.to_string(),
        run_id,
        steps,
        lines,
    }))
}

fn seconds(a: Option<&str>, b: Option<&str>) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(a?).ok()?;
    let b = match b {
        Some(b) => chrono::DateTime::parse_from_rfc3339(b).ok()?,
        None => chrono::Utc::now().fixed_offset(),
    };
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

pub fn failure_item(f: FailureRow) -> FailureItem {
    let matched: Vec<Matched> = serde_json::from_str(&f.matched).unwrap_or_default();
    let remediations = crate::diagnose::stored_remediations(&f.remediations)
        .into_iter()
        .map(|r| (r.id, r.description))
        .collect();
    FailureItem {
        id: f.id,
        run_id: f.run_id,
        step_id: f.step_id,
        step: f.step,
        app: f.app,
        region: f.region,
        class: f.class,
        explanation: f.explanation,
        matched,
        remediations,
    }
}

pub async fn failures(store: &Store) -> Result<Action> {
    let rows = store.failures(true).await?;
    Ok(Action::Data(Data::Failures(
        rows.into_iter().map(failure_item).collect(),
    )))
}

pub async fn failure_log(store: &Store, failure_id: i64, step_id: i64) -> Result<Action> {
    let lines = store
        .step_logs(step_id)
        .await?
        .into_iter()
        .map(|l| l.line)
        .collect();
    Ok(Action::Data(Data::FailureLog(FailureLog {
        failure_id,
        lines,
    })))
}

/// The night; `spans`: also every app's passes (a full scan of the steps: read less often).
pub async fn night(store: &Store, with_spans: bool) -> Result<Action> {
    let (plan, plan_params) = match store.latest_plan().await? {
        Some((_, params, body)) => (serde_json::from_str(&body).ok(), params),
        None => (None, String::new()),
    };
    let count = |rows: Vec<crate::store::FailureRow>| {
        let mut by_class: Vec<(String, usize)> = Vec::new();
        for f in rows {
            match by_class.iter_mut().find(|(c, _)| *c == f.class) {
                Some((_, n)) => *n += 1,
                None => by_class.push((f.class, 1)),
            }
        }
        by_class.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_class
    };
    let by_class = count(store.failures(false).await?);
    let open_by_class = count(store.failures(true).await?);
    let (spans, downtime, backups) = if with_spans {
        (
            store.app_run_spans().await?,
            crate::report::downtime(store).await?,
            crate::report::backups(store, None).await?,
        )
    } else {
        Default::default()
    };
    let mut night = Night {
        plan,
        plan_params,
        plan_created_at: store.latest_plan_created_at().await?,
        running: store.running_steps().await?,
        spans,
        spans_read: with_spans,
        downtime,
        backups,
        span_times: Vec::new(),
        failures_by_class: by_class,
        open_failures_by_class: open_by_class,
        controls: {
            let mut c: Vec<(String, String)> = store.controls().await?.into_iter().collect();
            c.sort();
            c
        },
        now: crate::store::now(),
        answers: fresh_answers(store).await?,
    };
    night.parse_span_times();
    Ok(Action::Data(Data::Night(Box::new(night))))
}

/// The prober's answers no older than a few seconds: what each app answers now.
async fn fresh_answers(store: &Store) -> Result<Vec<(String, String)>> {
    let now = chrono::Utc::now();
    Ok(store
        .latest_probes()
        .await?
        .into_iter()
        .filter_map(|row| {
            let t = row.tally();
            let fresh = t.last_at.is_some_and(|at| (now - at).num_seconds() <= 5);
            Some((row.app, t.last.filter(|_| fresh)?.short()))
        })
        .collect())
}
