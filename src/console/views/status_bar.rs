//! The bottom line: the keys valid now, from the live keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::console::keymap;
use crate::console::model::Model;
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let mut spans = Vec::new();
    for (key, what) in keymap::help(m.mode, true) {
        spans.push(Span::styled(format!(" {key}"), theme.key()));
        spans.push(Span::styled(format!(" {what} "), theme.text_dim()));
    }
    if let Some(r) = m.selected_row()
        && r.scram_risk()
    {
        spans.push(Span::styled(
            format!(" ⚠ {}: image libpq {} cannot do SCRAM", r.name, r.libpq),
            theme.warning(),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}
