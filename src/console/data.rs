//! What the console reads from the store and hears from its children, as plain data: the
//! single app's run, open failures, the night (plan, running steps, per-app spans).

use crate::diagnose::{Matched, RemediationId};
use crate::domain::StepState;
use crate::plan::Plan;
use crate::store::{AppRunSpan, RunningStep};

use super::effect::Command;
use super::logbuf::{LogLine, LogPane};

/// One step of the watched app's newest run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub operation: String,
    pub state: StepState,
    /// Seconds it took (finished) or has taken so far (running), when known.
    pub seconds: Option<f64>,
}

/// The single-app view: the app's newest run and its log.
#[derive(Debug, Clone)]
pub struct AppWatch {
    pub name: String,
    pub run_id: Option<i64>,
    pub steps: Vec<StepView>,
    pub log: LogPane,
    /// The step whose log the operator jumped to (`[`/`]`).
    pub step_sel: Option<usize>,
    /// The store has answered at least once (before that, "no run" is not known yet).
    pub loaded: bool,
}

impl AppWatch {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            run_id: None,
            steps: Vec::new(),
            log: LogPane::default(),
            step_sel: None,
            loaded: false,
        }
    }

    /// Select the next (`+1`) or previous (`-1`) step and show its log from its first line.
    pub fn select_step(&mut self, d: isize) {
        if self.steps.is_empty() {
            return;
        }
        let last = self.steps.len() as isize - 1;
        let cur = self
            .step_sel
            .map_or(if d > 0 { -1 } else { last + 1 }, |s| s as isize);
        let i = (cur + d).clamp(0, last) as usize;
        self.step_sel = Some(i);
        let name = &self.steps[i].operation;
        let first = self.log.iter().position(|l| l.step == *name);
        if let Some(first) = first {
            self.log.follow = false;
            self.log.top = first;
        }
    }

    /// The step running now, or the last one that ran.
    pub fn current_step(&self) -> Option<&StepView> {
        self.steps
            .iter()
            .find(|s| s.state == StepState::Running)
            .or_else(|| {
                self.steps
                    .iter()
                    .rev()
                    .find(|s| s.state != StepState::Pending)
            })
    }
}

/// An open failure as triage shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureItem {
    pub id: i64,
    pub run_id: i64,
    pub step_id: Option<i64>,
    pub step: Option<String>,
    pub app: String,
    pub region: String,
    pub class: String,
    pub explanation: String,
    /// The matching line first (its span is what matched), then its context lines.
    pub matched: Vec<Matched>,
    /// `(id, description)`.
    pub remediations: Vec<(RemediationId, String)>,
}

impl FailureItem {
    /// Remediations a retry can apply (rolling back and manual have their own keys).
    pub fn retry_remediations(&self) -> Vec<&(RemediationId, String)> {
        self.remediations
            .iter()
            .filter(|(id, _)| {
                !matches!(
                    id,
                    RemediationId::Rollback
                        | RemediationId::Manual
                        | RemediationId::Stop
                        | RemediationId::Ignore
                )
            })
            .collect()
    }
}

/// The step log behind one failure, and where the matched line sits in it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureLog {
    pub failure_id: i64,
    pub lines: Vec<String>,
}

/// The night as the Run, Plan and Report views show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Night {
    pub plan: Option<Plan>,
    /// The saved plan's parameters (JSON), kept when an edited plan is saved.
    pub plan_params: String,
    /// When the plan was made (RFC 3339): passes before it belong to another night.
    pub plan_created_at: Option<String>,
    pub running: Vec<RunningStep>,
    pub spans: Vec<AppRunSpan>,
    /// Whether `spans` was read this time (it is the costly read; between reads the last
    /// one stands).
    pub spans_read: bool,
    /// `(started, finished)` of each span as Unix seconds, parallel to `spans`: parsed by the
    /// loader, off the input path (empty: the views parse the text).
    pub span_times: Vec<(Option<f64>, Option<f64>)>,
    /// `(class, count)` of every failure recorded, open or closed.
    pub failures_by_class: Vec<(String, usize)>,
    /// `(class, count)` of the failures still open: what remedies did not clear.
    pub open_failures_by_class: Vec<(String, usize)>,
    /// Operators' requests to the running fleet run: region → `pause` | `stop` (`*` →
    /// `cancel`).
    pub controls: Vec<(String, String)>,
    /// When this was read (RFC 3339): the "now" elapsed times and ETAs count to.
    pub now: String,
    /// Each app's paused time per pass, and the backups kept: the Report view's, read with
    /// the spans (the costly read).
    pub downtime: Vec<crate::report::Downtime>,
    pub backups: Vec<crate::report::BackupLine>,
    /// What each probed app answered through its route in the last few seconds (`--probe`):
    /// app → "200", "503" or "error: …".
    pub answers: Vec<(String, String)>,
}

impl Night {
    /// What the app answers right now, when a prober asks it.
    pub fn answer(&self, app: &str) -> Option<&str> {
        self.answers
            .iter()
            .find(|(a, _)| a == app)
            .map(|(_, x)| x.as_str())
    }
}

impl Night {
    /// Fill `span_times` from `spans` (the loader does, so drawing never parses).
    pub fn parse_span_times(&mut self) {
        self.span_times = self
            .spans
            .iter()
            .map(|s| {
                (
                    unix_seconds(s.started_at.as_deref()),
                    unix_seconds(s.finished_at.as_deref()),
                )
            })
            .collect();
    }
}

/// An RFC 3339 time as Unix seconds.
pub fn unix_seconds(t: Option<&str>) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(t?)
        .ok()
        .map(|d| d.timestamp_millis() as f64 / 1000.0)
}

/// Fresh data for the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// The watched app's newest run: its steps and log lines after the pane's cursor.
    App {
        app: String,
        run_id: Option<i64>,
        steps: Vec<StepView>,
        lines: Vec<LogLine>,
    },
    Failures(Vec<FailureItem>),
    FailureLog(FailureLog),
    Night(Box<Night>),
}

/// What a `pgshift` child reported.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildMsg {
    Started(Command),
    /// An engine event (JSON line) the console acts on, parsed into the engine's own type.
    Event(crate::engine::Event),
    Exited {
        cmd: Command,
        ok: bool,
        /// The last line of stderr (or of stdout), for a one-line error.
        last_line: String,
    },
}
