//! Views: pure functions of the model drawing into a frame.

mod fleet;
mod help;
mod status_bar;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};

use super::model::{Mode, Model};
use super::theme::Theme;

pub fn draw(frame: &mut Frame, m: &Model, theme: &Theme) {
    let [main, bar] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    fleet::draw(frame, main, m, theme);
    status_bar::draw(frame, bar, m, theme);
    if m.mode == Mode::Help {
        help::draw(frame, frame.area(), m, theme);
    }
}

/// The symbol that carries a state without colour.
pub fn state_symbol(state: &str) -> &'static str {
    match state {
        "migrated" => "✓",
        "failed" => "✗",
        "running" => "⟳",
        "rolled_back" => "↺",
        "paused" => "⏸",
        "excluded" | "not-candidate" => "–",
        _ => "·",
    }
}
