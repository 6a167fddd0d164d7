//! Views: pure functions of the model drawing into a frame. The header (views as tabs and
//! fleet counts), the message line and the key hints frame every view.

mod app;
mod confirm;
mod failures;
mod fleet;
mod help;
mod palette;
mod plan;
pub mod report;
mod run;
mod status_bar;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::model::{Mode, Model, View};
use super::theme::Theme;
use crate::domain::{AppState, FleetState, StepState};

pub use run::{Lane, lanes};

pub fn draw(frame: &mut Frame, m: &Model, theme: &Theme) {
    let [head, main, msg, bar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header(frame, head, m, theme);
    match m.view {
        View::Fleet => fleet::draw(frame, main, m, theme),
        View::App => app::draw(frame, main, m, theme),
        View::Failures => failures::draw(frame, main, m, theme),
        View::Run => run::draw(frame, main, m, theme),
        View::Plan => plan::draw(frame, main, m, theme),
        View::Report => report::draw(frame, main, m, theme),
    }
    status_bar::message(frame, msg, m, theme);
    status_bar::draw(frame, bar, m, theme);
    match m.mode {
        Mode::Help => help::draw(frame, frame.area(), m, theme),
        Mode::Confirm => confirm::draw(frame, frame.area(), m, theme),
        Mode::Palette => palette::draw(frame, main, msg, m, theme),
        _ => {}
    }
}

/// `pgshift  1 Fleet  2 Plan …` with the current view marked, then the fleet's counts.
fn header(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let mut spans = vec![Span::styled(" pgshift ", theme.title())];
    if m.readonly {
        // First, so no width cuts it off.
        spans.push(Span::styled("READ-ONLY ", theme.warning()));
    }
    for (i, v) in [
        View::Fleet,
        View::Plan,
        View::Run,
        View::Failures,
        View::Report,
    ]
    .into_iter()
    .enumerate()
    {
        let label = format!(" {}·{} ", i + 1, v.title());
        if m.view == v {
            spans.push(Span::styled(
                format!("[{}]", label.trim()),
                theme.selection(),
            ));
        } else {
            spans.push(Span::styled(label, theme.text_dim()));
        }
    }
    if m.view == View::App
        && let Some(w) = &m.watch
    {
        spans.push(Span::styled(format!("[App {}]", w.name), theme.selection()));
    }
    let c = &m.region_counts()[0];
    spans.push(Span::styled(
        format!(
            "  {} apps · {} candidates · {} migrated · {} failed",
            c.apps, c.candidates, c.migrated, c.failed
        ),
        theme.text(),
    ));
    frame.render_widget(Line::from(spans), area);
}

/// A state the console shows: an app's, a fleet row's or a step's.
pub trait Shown: Copy {
    /// Its stable string: the theme's colour key (`state-<key>`).
    fn key(self) -> &'static str;
    /// The symbol that carries it without colour.
    fn symbol(self) -> &'static str;
}

impl Shown for AppState {
    fn key(self) -> &'static str {
        self.as_str()
    }
    fn symbol(self) -> &'static str {
        match self {
            AppState::Migrated => "✓",
            AppState::Failed => "✗",
            AppState::Running => "⟳",
            AppState::RolledBack => "↺",
            AppState::Cancelled => "⊘",
            AppState::Excluded => "–",
            AppState::Pending | AppState::NeedsManual => "·",
        }
    }
}

impl Shown for StepState {
    fn key(self) -> &'static str {
        self.as_str()
    }
    fn symbol(self) -> &'static str {
        match self {
            StepState::Done => "✓",
            StepState::Failed => "✗",
            StepState::Running => "⟳",
            StepState::RolledBack => "↺",
            StepState::Cancelled => "⊘",
            StepState::Interrupted => "⏸",
            StepState::Skipped => "–",
            StepState::Pending => "·",
        }
    }
}

impl Shown for FleetState {
    fn key(self) -> &'static str {
        self.as_str()
    }
    fn symbol(self) -> &'static str {
        match self {
            FleetState::App(s) => s.symbol(),
            FleetState::NotCandidate => "–",
        }
    }
}

/// The symbol that carries a state without colour.
pub fn state_symbol(state: impl Shown) -> &'static str {
    state.symbol()
}

/// `42 s`, `3 m 05 s`, `1 h 20 m`.
pub use crate::report::duration;

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    use ratatui::layout::Flex;
    let [row] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    r
}

/// A bordered pane with its title; `focus` lights the border.
pub fn block<'a>(title: impl Into<String>, theme: &Theme, focus: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focus))
        .title(Span::styled(title.into(), theme.header()))
}

/// A pane that only says, dimmed, why it is empty.
pub fn empty_pane(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    why: &str,
    theme: &Theme,
    focus: bool,
) {
    frame.render_widget(
        Paragraph::new(Span::styled(why.to_string(), theme.text_dim()))
            .block(block(title, theme, focus)),
        area,
    );
}
