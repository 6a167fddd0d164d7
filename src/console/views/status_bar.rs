//! The bottom lines: what just happened (or was refused), and the keys valid now, from the
//! live keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::console::keymap;
use crate::console::model::{Model, View};
use crate::console::theme::Theme;
use crate::domain::AppState;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let mut spans = Vec::new();
    for (key, what) in keymap::help(m.mode, true) {
        spans.push(Span::styled(format!(" {key}"), theme.key()));
        spans.push(Span::styled(format!(" {what} "), theme.text_dim()));
    }
    frame.render_widget(Line::from(spans), area);
}

/// The message line: children running, then the last message; else a hint about the row.
pub fn message(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let mut spans = Vec::new();
    if !m.running_children.is_empty() {
        let names: Vec<String> = m
            .running_children
            .iter()
            .map(|c| c.describe().to_lowercase())
            .collect();
        spans.push(Span::styled(
            format!(" ⟳ {} ", names.join(", ")),
            theme.state(AppState::Running),
        ));
    }
    if let Some(msg) = &m.message {
        let style = if msg.error {
            theme.danger()
        } else {
            theme.text()
        };
        let sym = if msg.error && !msg.text.starts_with('✗') {
            "✗ "
        } else {
            ""
        };
        spans.push(Span::styled(format!(" {sym}{}", msg.text), style));
    } else if m.view == View::Fleet
        && let Some(r) = m.selected_row()
        && r.scram_risk()
    {
        spans.push(Span::styled(
            format!(" ⚠ {}: image {} cannot do SCRAM", r.name, r.libpq.label()),
            theme.warning(),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}
