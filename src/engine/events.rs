//! What the engine tells the console and headless output, one event at a time.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: i64,
        app: String,
        steps: Vec<String>,
        resumed: bool,
    },
    StepStarted {
        run_id: i64,
        app: String,
        step: String,
        seq: usize,
        total: usize,
        estimated_seconds: f64,
    },
    Log {
        app: String,
        step: String,
        stream: String,
        line: String,
    },
    StepFinished {
        app: String,
        step: String,
        state: String,
        seconds: f64,
    },
    Failure {
        app: String,
        step: String,
        class: String,
        line: String,
        remediations: Vec<String>,
    },
    RolledBack {
        app: String,
        service: String,
        detail: String,
    },
    Done {
        run_id: i64,
        app: String,
        outcome: String,
    },
    /// A region's progress in a fleet run.
    Progress {
        region: String,
        done: usize,
        total: usize,
    },
}

pub type EventTx = tokio::sync::mpsc::UnboundedSender<Event>;
