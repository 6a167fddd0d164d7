//! A step's output: kept for diagnosis, sent as events, written to the store through the
//! group-committing writer, with every known secret masked before it goes anywhere.

use std::sync::Arc;

use super::events::{Event, EventTx};
use crate::store::Journal;

/// Strings that must never leave pgshift: every password the engine handled.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Scrubber {
    pub fn add(&self, secret: &str) {
        if secret.len() >= 4
            && let Ok(mut s) = self.secrets.lock()
            && !s.iter().any(|x| x == secret)
        {
            s.push(secret.to_string());
        }
    }

    pub fn scrub(&self, line: &str) -> String {
        let mut out = line.to_string();
        if let Ok(s) = self.secrets.lock() {
            for secret in s.iter() {
                if out.contains(secret.as_str()) {
                    out = out.replace(secret.as_str(), "****");
                }
            }
        }
        out
    }
}

/// One step's output sink.
pub struct StepIo {
    pub run_id: i64,
    pub step_id: i64,
    pub app: String,
    pub step: String,
    pub lines: Vec<String>,
    /// Ends the step's child processes: the operator's cancel, or a lost lease.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Ends the step's platform commands too: only a lost lease (a cancelled run still
    /// needs its platform to put the app back).
    pub stop: tokio_util::sync::CancellationToken,
    events: EventTx,
    journal: Journal,
    scrubber: Scrubber,
}

impl StepIo {
    pub fn new(
        run_id: i64,
        step_id: i64,
        app: &str,
        step: &str,
        events: EventTx,
        journal: Journal,
        scrubber: Scrubber,
    ) -> Self {
        Self {
            run_id,
            step_id,
            app: app.to_string(),
            step: step.to_string(),
            lines: Vec::new(),
            cancel: Default::default(),
            stop: Default::default(),
            events,
            journal,
            scrubber,
        }
    }

    pub fn line(&mut self, stream: &str, text: &str) {
        let text = self.scrubber.scrub(text);
        self.journal
            .logs(vec![(self.step_id, stream.to_string(), text.clone())]);
        let _ = self.events.send(Event::Log {
            app: self.app.clone(),
            step: self.step.clone(),
            stream: stream.to_string(),
            line: text.clone(),
        });
        self.lines.push(text);
    }

    /// A secret this step handles: never to appear in its output.
    pub fn secret(&self, s: &str) {
        self.scrubber.add(s);
    }

    /// pgshift's own narration of the step.
    pub fn say(&mut self, text: impl AsRef<str>) {
        self.line("pgshift", text.as_ref());
    }
}

impl crate::platform::StepLog for StepIo {
    fn line(&mut self, stream: &str, text: &str) {
        StepIo::line(self, stream, text);
    }

    fn secret(&mut self, secret: &str) {
        StepIo::secret(self, secret);
    }

    fn stop(&self) -> tokio_util::sync::CancellationToken {
        self.stop.clone()
    }
}
