//! App, step and run states: what the store records and the console shows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored string that is none of a state type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} \"{value}\"")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! states {
    ($(#[$doc:meta])* $name:ident ($kind:literal) { $($(#[$vdoc:meta])* $variant:ident = $s:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            #[default]
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The stable string the store keeps and the JSON shows.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(UnknownState { kind: $kind, value: s.to_string() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(s: String) -> Result<Self, UnknownState> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Against a stored string, as the store and its tests see it.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

states! {
    /// Where an app stands in its migration.
    AppState ("app state") {
        /// Not migrated yet. `NeedsManual`: live on NEW after a failure that could not be
        /// rolled back, a human decides.
        Pending = "pending", Running = "running", Migrated = "migrated", Failed = "failed",
        NeedsManual = "needs_manual", Cancelled = "cancelled", RolledBack = "rolled_back",
        Excluded = "excluded",
    }
}

states! {
    /// A runbook step of one run.
    StepState ("step state") {
        /// `Interrupted`: this process lost the app's lease mid-step and stopped; the lease's
        /// new holder runs the step again (no rollback).
        Pending = "pending", Running = "running", Done = "done", Failed = "failed",
        Cancelled = "cancelled", Skipped = "skipped", RolledBack = "rolled_back",
        Interrupted = "interrupted",
    }
}

states! {
    /// A run (one app's, or a fleet's).
    RunStatus ("run status") {
        /// `Abandoned`: left by a pgshift that died, found stale and given up.
        Running = "running", Done = "done", Failed = "failed", Cancelled = "cancelled",
        Abandoned = "abandoned",
    }
}

/// An app as the fleet views (`app show`, the console's fleet table) show it: its state in
/// the store, or not a candidate of the runbook at all (the store knows nothing of
/// candidacy; such an app is never migrated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FleetState {
    App(AppState),
    NotCandidate,
}

impl FleetState {
    /// The stable string the JSON shows and themes key colours by.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::App(s) => s.as_str(),
            FleetState::NotCandidate => "not-candidate",
        }
    }

    /// A candidate's stored state (`None`: not known yet, pending), or `NotCandidate`.
    pub fn of(candidate: bool, stored: Option<AppState>) -> Self {
        match stored {
            Some(s) if s != AppState::Pending => FleetState::App(s),
            _ if !candidate => FleetState::NotCandidate,
            _ => FleetState::App(AppState::Pending),
        }
    }
}

impl fmt::Display for FleetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<AppState> for FleetState {
    fn eq(&self, other: &AppState) -> bool {
        *self == FleetState::App(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each string parses into `T`, and `T` shows and serializes as that very string.
    fn reads_back<T>(strings: &[&str])
    where
        T: FromStr + fmt::Display + Serialize,
        T::Err: fmt::Debug,
    {
        for s in strings {
            let st: T = s.parse().expect("a state");
            assert_eq!(st.to_string(), *s);
            assert_eq!(
                serde_json::to_string(&st).expect("json"),
                format!("\"{s}\"")
            );
        }
    }

    #[test]
    fn every_state_reads_back_from_its_string_and_its_json() {
        reads_back::<AppState>(&[
            "pending",
            "running",
            "migrated",
            "failed",
            "needs_manual",
            "cancelled",
            "rolled_back",
            "excluded",
        ]);
        reads_back::<StepState>(&[
            "pending",
            "running",
            "done",
            "failed",
            "cancelled",
            "skipped",
            "rolled_back",
            "interrupted",
        ]);
        assert!("migrating".parse::<AppState>().is_err());
    }
}
