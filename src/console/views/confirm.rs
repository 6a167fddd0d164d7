//! The confirmation popup: what will happen, the command that will run, `y` or `n`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::console::model::Model;
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let Some(cmd) = &m.confirm else {
        return;
    };
    let border = if cmd.dangerous() {
        theme.danger()
    } else {
        theme.border(true)
    };
    let mut lines = vec![
        Line::from(Span::styled(format!("{}?", cmd.describe()), theme.header())),
        Line::from(""),
    ];
    match cmd.args() {
        Some(args) => lines.push(Line::from(Span::styled(
            format!("runs: pgshift {}", args.join(" ")),
            theme.text_dim(),
        ))),
        None => lines.push(Line::from(Span::styled(
            "records it in the store",
            theme.text_dim(),
        ))),
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled(" y ", theme.key()),
        Span::styled("yes   ", theme.text()),
        Span::styled(" n/esc ", theme.key()),
        Span::styled("no", theme.text()),
    ]));
    let popup = centered(area, 72, lines.len() as u16 + 4);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(border)
                .title(Span::styled(" Confirm ", border)),
        ),
        popup,
    );
}
