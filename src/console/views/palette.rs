//! `:` — the command line over the message line, the commands listed above it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::block;
use crate::console::model::Model;
use crate::console::palette::COMMANDS;
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, main: Rect, input: Rect, m: &Model, theme: &Theme) {
    let h = (COMMANDS.len() as u16 + 2).min(main.height);
    let w = 76.min(main.width);
    let list = Rect {
        x: main.x,
        y: main.y + main.height - h,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = COMMANDS
        .iter()
        .map(|(c, d)| {
            Line::from(vec![
                Span::styled(format!(" {c:<40} "), theme.key()),
                Span::styled(*d, theme.text_dim()),
            ])
        })
        .collect();
    frame.render_widget(Clear, list);
    frame.render_widget(
        Paragraph::new(lines).block(block(" Commands ", theme, true)),
        list,
    );
    frame.render_widget(Clear, input);
    frame.render_widget(
        Line::from(vec![
            Span::styled(":", theme.key()),
            Span::styled(format!("{}▏", m.palette), theme.text()),
        ]),
        input,
    );
}
