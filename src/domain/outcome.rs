//! How an app's run ended.

use super::AppState;

/// How an app's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Migrated,
    /// Failed, classified, rolled back to OLD, unpaused.
    Failed {
        class: String,
    },
    /// Failed after NEW took writes: left on NEW, unpaused, for a human.
    NeedsManual {
        class: String,
    },
    /// Cancelled by the operator; rolled back, unpaused.
    Cancelled,
    /// Another pgshift took the app's lease (this one's had expired): this process stopped
    /// the app's work where it was, without rolling back; the app stays mid-run for the new
    /// holder (`resume`) to finish.
    Interrupted,
}

impl Outcome {
    /// The app state the outcome leaves.
    pub fn state(&self) -> AppState {
        match self {
            Outcome::Migrated => AppState::Migrated,
            Outcome::Failed { .. } => AppState::Failed,
            Outcome::NeedsManual { .. } => AppState::NeedsManual,
            Outcome::Cancelled => AppState::Cancelled,
            Outcome::Interrupted => AppState::Running,
        }
    }

    /// Its stable string (the `done` event's `outcome`).
    pub fn id(&self) -> &'static str {
        match self {
            Outcome::Interrupted => "interrupted",
            _ => self.state().as_str(),
        }
    }
}
