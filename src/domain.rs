//! The domain's states as types. Their stable snake_case strings (what the store keeps and the
//! JSON shows) live here, at the edge: `as_str()`, `FromStr`, and serde's renames.

mod outcome;
mod state;

pub use outcome::Outcome;
pub use state::{AppState, FleetState, RunStatus, StepState, UnknownState};
