//! What the engine tells the console and headless output, one event at a time.

use serde::{Deserialize, Serialize};

use crate::diagnose::RemediationId;
use crate::domain::{AppState, StepState};

/// One JSON object per event on the headless output (`--json`), tagged by `event`; the
/// console reads them back into this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        state: StepState,
        seconds: f64,
    },
    Failure {
        app: String,
        step: String,
        class: String,
        line: String,
        remediations: Vec<RemediationId>,
    },
    RolledBack {
        app: String,
        service: String,
        detail: String,
    },
    Done {
        run_id: i64,
        app: String,
        outcome: AppState,
    },
    /// This pgshift lost the app's lease at `step`: it stopped the app's work there, without
    /// rolling back; the lease's new holder resumes the run.
    Interrupted {
        run_id: i64,
        app: String,
        step: String,
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

impl Event {
    /// The event's tag, as its JSON says it.
    pub fn tag(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::StepStarted { .. } => "step_started",
            Event::Log { .. } => "log",
            Event::StepFinished { .. } => "step_finished",
            Event::Failure { .. } => "failure",
            Event::RolledBack { .. } => "rolled_back",
            Event::Done { .. } => "done",
            Event::Interrupted { .. } => "interrupted",
            Event::Progress { .. } => "progress",
            Event::Control { .. } => "control",
        }
    }

    /// The app the event is about, if it is about one.
    pub fn app(&self) -> Option<&str> {
        match self {
            Event::RunStarted { app, .. }
            | Event::StepStarted { app, .. }
            | Event::Log { app, .. }
            | Event::StepFinished { app, .. }
            | Event::Failure { app, .. }
            | Event::RolledBack { app, .. }
            | Event::Done { app, .. }
            | Event::Interrupted { app, .. } => Some(app),
            Event::Progress { .. } | Event::Control { .. } => None,
        }
    }
}

pub type EventTx = tokio::sync::mpsc::UnboundedSender<Event>;

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Event> {
        let app = || "forum-live".to_string();
        vec![
            Event::RunStarted {
                run_id: 3,
                app: app(),
                steps: vec!["collect".into(), "backup".into()],
                resumed: true,
            },
            Event::StepStarted {
                run_id: 3,
                app: app(),
                step: "backup".into(),
                seq: 2,
                total: 10,
                estimated_seconds: 1.5,
            },
            Event::Log {
                app: app(),
                step: "restore".into(),
                stream: "stderr".into(),
                line: "pg_restore: error".into(),
            },
            Event::StepFinished {
                app: app(),
                step: "restore".into(),
                state: StepState::Failed,
                seconds: 0.25,
            },
            Event::Failure {
                app: app(),
                step: "restore".into(),
                class: "btree-index-row-size".into(),
                line: "index row size exceeds".into(),
                remediations: vec![RemediationId::PglzRestore],
            },
            Event::RolledBack {
                app: app(),
                service: "forum-live-db".into(),
                detail: "back on OLD, unpaused".into(),
            },
            Event::Done {
                run_id: 3,
                app: app(),
                outcome: AppState::Failed,
            },
            Event::Interrupted {
                run_id: 3,
                app: app(),
                step: "restore".into(),
            },
            Event::Progress {
                region: "ch-gva".into(),
                done: 1,
                total: 4,
                eta_seconds: None,
                overall_eta_seconds: 12.0,
            },
            Event::Control {
                region: "*".into(),
                action: "cancel".into(),
            },
        ]
    }

    #[test]
    fn every_event_reads_back_as_itself_and_its_tag_is_its_json_tag() {
        for ev in every_kind() {
            let json = serde_json::to_string(&ev).expect("serialize");
            let back: Event = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, ev, "{json}");
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert_eq!(v["event"], ev.tag(), "{json}");
        }
    }
}
