//! What the operator (or the engine) can ask of the console.

use serde::{Deserialize, Serialize};

use crate::store::AppState;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Select the next app
    MoveDown,
    /// Select the previous app
    MoveUp,
    /// Jump to the first app
    Top,
    /// Jump to the last app
    Bottom,
    /// Show the next region
    NextRegion,
    /// Show the previous region
    PrevRegion,
    /// Filter apps by name, customer, region or state
    StartFilter,
    /// Toggle this help
    ToggleHelp,
    /// Close the popup, clear the filter, or quit
    Back,
    /// Quit pgshift
    Quit,
    /// A character typed into the filter
    #[serde(skip)]
    FilterInput(char),
    /// Delete the filter's last character
    #[serde(skip)]
    FilterBackspace,
    /// Keep the filter and return to the table
    #[serde(skip)]
    ApplyFilter,
    /// Fresh app states from the store
    #[serde(skip)]
    States(HashMap<String, AppState>),
    /// The terminal changed size
    #[serde(skip)]
    Resize,
}

impl Action {
    /// The one-line description shown in help and hints (the variant's doc, kept short).
    pub fn describe(&self) -> &'static str {
        match self {
            Action::MoveDown => "down",
            Action::MoveUp => "up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::NextRegion => "next region",
            Action::PrevRegion => "previous region",
            Action::StartFilter => "filter",
            Action::ToggleHelp => "help",
            Action::Back => "back",
            Action::Quit => "quit",
            Action::FilterInput(_) => "type",
            Action::FilterBackspace => "delete",
            Action::ApplyFilter => "apply filter",
            Action::States(_) | Action::Resize => "",
        }
    }
}
