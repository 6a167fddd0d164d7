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
    /// A region's progress in a fleet run, and the seconds it has left at its pace so far
    /// (the plan's estimate before its first app is done).
    Progress {
        region: String,
        done: usize,
        total: usize,
        eta_seconds: Option<f64>,
        /// The whole run's: the slowest region's, as far as the regions have reported.
        overall_eta_seconds: f64,
    },
    /// An operator's request to a fleet run took effect: `pause`, `stop` or `resume` a
    /// region, or `cancel` (region `*`) the run.
    Control { region: String, action: String },
}

pub type EventTx = tokio::sync::mpsc::UnboundedSender<Event>;
