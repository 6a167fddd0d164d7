//! What the operator (or the engine) can ask of the console.

use serde::{Deserialize, Serialize};

use super::data::{ChildMsg, Data};
use super::effect::Command;
use crate::store::AppState;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Select the next row, or scroll the log down
    MoveDown,
    /// Select the previous row, or scroll the log up
    MoveUp,
    /// Jump to the first row
    Top,
    /// Jump to the last row
    Bottom,
    /// A page down in the log
    PageDown,
    /// A page up in the log
    PageUp,
    /// Show the next region
    NextRegion,
    /// Show the previous region
    PrevRegion,
    /// Filter apps by name, customer, region or state
    StartFilter,
    /// Toggle this help
    ToggleHelp,
    /// Close the popup, clear the filter, or go back
    Back,
    /// Quit pgshift
    Quit,
    /// Open the selected app: its steps and live log
    OpenApp,
    /// Mark or unmark the selected app (migrate takes every marked app)
    ToggleMark,
    /// Order apps by inventory, name, state or risk
    CycleSort,
    /// Predict failures for every candidate (preflight against OLD and NEW)
    Preflight,
    /// Migrate the selected app now
    Migrate,
    /// Retry the selected failure with the chosen remediation
    Retry,
    /// Choose the next remediation
    NextRemediation,
    /// Roll the selected app back onto OLD
    Rollback,
    /// Mark the selected failure for manual handling
    MarkManual,
    /// The fleet
    ShowFleet,
    /// The night's plan
    ShowPlan,
    /// The running night, per region
    ShowRun,
    /// Failures, grouped by class
    ShowFailures,
    /// The night in one screen
    ShowReport,
    /// Type a command
    OpenPalette,
    /// The next step's log
    NextStep,
    /// The previous step's log
    PrevStep,
    /// Follow the newest log line on/off
    ToggleFollow,
    /// Wrap long log lines on/off
    ToggleWrap,
    /// Search the log
    SearchLog,
    /// Next search hit
    NextHit,
    /// Save the log to a file
    SaveLog,
    /// Pause the selected region
    PauseRegion,
    /// Resume the selected region
    ResumeRegion,
    /// Stop the selected region after its current migrations
    StopRegion,
    /// Cancel the running fleet run
    CancelRun,
    /// Start the selected batch
    StartBatch,
    /// Plan again with a new seed
    NewSeed,
    /// Bigger batches
    BatchBigger,
    /// Smaller batches
    BatchSmaller,
    /// Exclude the chosen app from the plan
    ExcludeApp,
    /// Choose the previous app of the batch
    PrevApp,
    /// Choose the next app of the batch
    NextApp,
    /// Move the chosen app to the region's previous batch
    MoveEarlier,
    /// Move the chosen app to the region's next batch
    MoveLater,
    /// Make the selected batch its region's canary (or not)
    ToggleCanary,
    /// Save the edited plan
    SavePlan,
    /// Yes
    Confirm,
    /// A character typed into the filter, palette or search
    #[serde(skip)]
    FilterInput(char),
    /// Delete the input's last character
    #[serde(skip)]
    FilterBackspace,
    /// Keep the filter, run the palette command or search
    #[serde(skip)]
    ApplyFilter,
    /// Open a named app (from the palette)
    #[serde(skip)]
    OpenAppNamed(String),
    /// Ask before doing it (refused under --readonly)
    #[serde(skip)]
    ConfirmAction(Command),
    /// The operator said yes
    #[serde(skip)]
    ConfirmedAction(Command),
    /// Fresh app states from the store
    #[serde(skip)]
    States(HashMap<String, AppState>),
    /// Fresh data for a view
    #[serde(skip)]
    Data(Data),
    /// A child pgshift reported
    #[serde(skip)]
    Child(ChildMsg),
    /// Preflight's findings: `(app, classes)`, or why it could not run
    #[serde(skip)]
    PreflightDone(Result<Vec<(String, Vec<String>)>, String>),
    /// A file was written (or not)
    #[serde(skip)]
    Saved(Result<String, String>),
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
            Action::PageDown => "page down",
            Action::PageUp => "page up",
            Action::NextRegion => "next region",
            Action::PrevRegion => "previous region",
            Action::StartFilter => "filter",
            Action::ToggleHelp => "help",
            Action::Back => "back",
            Action::Quit => "quit",
            Action::OpenApp => "open app",
            Action::ToggleMark => "mark",
            Action::CycleSort => "sort",
            Action::Preflight => "preflight",
            Action::Migrate => "migrate now",
            Action::Retry => "retry",
            Action::NextRemediation => "next remedy",
            Action::Rollback => "roll back",
            Action::MarkManual => "manual",
            Action::ShowFleet => "fleet",
            Action::ShowPlan => "plan",
            Action::ShowRun => "run",
            Action::ShowFailures => "failures",
            Action::ShowReport => "report",
            Action::OpenPalette => "command",
            Action::NextStep => "next step",
            Action::PrevStep => "previous step",
            Action::ToggleFollow => "follow",
            Action::ToggleWrap => "wrap",
            Action::SearchLog => "search",
            Action::NextHit => "next hit",
            Action::SaveLog => "save",
            Action::PauseRegion => "pause region",
            Action::ResumeRegion => "resume region",
            Action::StopRegion => "stop after current",
            Action::CancelRun => "cancel run",
            Action::StartBatch => "start batch",
            Action::NewSeed => "new seed",
            Action::BatchBigger => "bigger batches",
            Action::BatchSmaller => "smaller batches",
            Action::ExcludeApp => "exclude app",
            Action::PrevApp => "previous app",
            Action::NextApp => "next app",
            Action::MoveEarlier => "earlier batch",
            Action::MoveLater => "later batch",
            Action::ToggleCanary => "canary",
            Action::SavePlan => "save plan",
            Action::Confirm => "yes",
            Action::FilterInput(_) => "type",
            Action::FilterBackspace => "delete",
            Action::ApplyFilter => "apply",
            Action::ConfirmAction(_)
            | Action::OpenAppNamed(_)
            | Action::ConfirmedAction(_)
            | Action::States(_)
            | Action::Data(_)
            | Action::Child(_)
            | Action::Saved(_)
            | Action::PreflightDone(_)
            | Action::Resize => "",
        }
    }
}
