//! A step's output: kept for diagnosis, sent as events, written to the store in batches by
//! one writer task, with every known secret masked before it goes anywhere.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::events::{Event, EventTx};
use crate::store::Store;

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

type LogLine = (i64, String, String);

/// Batches log lines into the store every 200 ms (or 500 lines).
pub fn spawn_log_writer(
    store: Store,
) -> (mpsc::UnboundedSender<LogLine>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<LogLine>();
    let handle = tokio::spawn(async move {
        let mut buf: Vec<LogLine> = Vec::new();
        loop {
            let got =
                tokio::time::timeout(Duration::from_millis(200), rx.recv_many(&mut buf, 500)).await;
            let closed = matches!(got, Ok(0));
            if !buf.is_empty() {
                flush(&store, &mut buf).await;
            }
            if closed {
                break;
            }
        }
    });
    (tx, handle)
}

async fn flush(store: &Store, buf: &mut Vec<LogLine>) {
    let mut i = 0;
    while i < buf.len() {
        let step = buf[i].0;
        let j = buf[i..]
            .iter()
            .position(|l| l.0 != step)
            .map_or(buf.len(), |k| i + k);
        let lines: Vec<(String, String)> = buf[i..j]
            .iter()
            .map(|l| (l.1.clone(), l.2.clone()))
            .collect();
        if let Err(e) = store.append_logs(step, &lines).await {
            tracing::error!(error = %e, step, "writing step logs failed");
        }
        i = j;
    }
    buf.clear();
}

/// One step's output sink.
pub struct StepIo {
    pub step_id: i64,
    pub app: String,
    pub step: String,
    pub lines: Vec<String>,
    events: EventTx,
    logs: mpsc::UnboundedSender<LogLine>,
    scrubber: Scrubber,
}

impl StepIo {
    pub fn new(
        step_id: i64,
        app: &str,
        step: &str,
        events: EventTx,
        logs: mpsc::UnboundedSender<LogLine>,
        scrubber: Scrubber,
    ) -> Self {
        Self {
            step_id,
            app: app.to_string(),
            step: step.to_string(),
            lines: Vec::new(),
            events,
            logs,
            scrubber,
        }
    }

    pub fn line(&mut self, stream: &str, text: &str) {
        let text = self.scrubber.scrub(text);
        let _ = self
            .logs
            .send((self.step_id, stream.to_string(), text.clone()));
        let _ = self.events.send(Event::Log {
            app: self.app.clone(),
            step: self.step.clone(),
            stream: stream.to_string(),
            line: text.clone(),
        });
        self.lines.push(text);
    }

    /// pgshift's own narration of the step.
    pub fn say(&mut self, text: impl AsRef<str>) {
        self.line("pgshift", text.as_ref());
    }
}
