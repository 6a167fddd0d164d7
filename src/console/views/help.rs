//! `?`: every binding of the current view, from the live keymap.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::console::keymap;
use crate::console::model::Model;
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let entries = keymap::help(m.view.mode(), false);
    let mut lines: Vec<Line> = entries
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), theme.key()),
                Span::styled(d.to_string(), theme.text()),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "  regions: candidates/apps (a candidate has a provisioned postgresql-database-13)",
        theme.text_dim(),
    )));
    lines.push(Line::from(Span::styled(
        "  • candidate  – not a candidate (n/a)  ⚠ libpq < 10: SCRAM risk  ✓ migrated  ✗ failed  ⟳ running  ⏸ paused  ↺ rolled back",
        theme.text_dim(),
    )));
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 104.min(area.width);
    let [row] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(w)])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(Span::styled(
                    format!(" Keys · {} — esc closes ", m.view.title()),
                    theme.header(),
                )),
        ),
        popup,
    );
}
