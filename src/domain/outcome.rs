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
}

impl Outcome {
    /// The app state the outcome leaves.
    pub fn state(&self) -> AppState {
        match self {
            Outcome::Migrated => AppState::Migrated,
            Outcome::Failed { .. } => AppState::Failed,
            Outcome::NeedsManual { .. } => AppState::NeedsManual,
            Outcome::Cancelled => AppState::Cancelled,
        }
    }

    /// Its stable string (the `done` event's `outcome`).
    pub fn id(&self) -> &'static str {
        self.state().as_str()
    }
}
