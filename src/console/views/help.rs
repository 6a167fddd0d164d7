//! `?`: every binding of the current view, from the live keymap.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::block;
use crate::console::keymap;
use crate::console::model::{Model, View};
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let entries = keymap::help(m.view.mode(), false);
    let entry = |(k, d): &(String, &'static str), kw: usize, dw: usize| {
        vec![
            Span::styled(format!("{k:>kw$}  "), theme.key()),
            Span::styled(format!("{d:<dw$}"), theme.text()),
        ]
    };
    // Two columns when one would not fit the terminal's height (80×24 and the like).
    let fits = entries.len() + 5 <= area.height as usize;
    let mut lines: Vec<Line> = if fits {
        entries
            .iter()
            .map(|e| Line::from(entry(e, 18, 0)))
            .collect()
    } else {
        let half = entries.len().div_ceil(2);
        let width = |r: &[(String, &str)]| r.iter().map(|e| e.0.chars().count()).max().unwrap_or(0);
        let (kw_left, kw_right) = (width(&entries[..half]), width(&entries[half..]));
        (0..half)
            .map(|i| {
                let mut spans = entry(&entries[i], kw_left, 22);
                if let Some(e) = entries.get(i + half) {
                    spans.extend(entry(e, kw_right, 0));
                }
                Line::from(spans)
            })
            .collect()
    };
    lines.push(Line::from(""));
    for l in legend(m.view) {
        lines.push(Line::from(Span::styled(format!("  {l}"), theme.text_dim())));
    }
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
        Paragraph::new(lines).block(block(
            format!(" Keys · {} — esc closes ", m.view.title()),
            theme,
            true,
        )),
        popup,
    );
}

/// What the view's symbols mean, in lines short enough for 80 columns.
fn legend(v: View) -> &'static [&'static str] {
    match v {
        View::Fleet => &[
            "regions: candidates/apps (a candidate has a provisioned 13 database)",
            "• candidate  ◆ marked  – not a candidate  ⚠ client cannot do SCRAM",
            "✓ migrated  ✗ failed  ⟳ running  ⏸ paused  ↺ rolled back  · pending",
        ],
        View::App => &[
            "steps: ✓ done  ⟳ running  ✗ failed  · pending  ↺ rolled back",
            "▶ the chosen step / the search hit  • another line with the search text",
        ],
        View::Failures => &[
            "▶ the line the diagnosis matched, its exact span highlighted",
            "│ its DETAIL / HINT / Command was: lines  › the remedy r retries with",
        ],
        View::Run => &[
            "ETA: the plan's estimate for what is left × the pace so far",
            "⚠ over: elapsed + ETA exceeds the window  ✓ migrated ✗ failed ⟳ running",
        ],
        View::Plan => &["★ canary batch  ✓ ends inside the window  ⚠ over: it does not"],
        View::Report => &["success rate: migrated ÷ (migrated + failed + rolled back)"],
    }
}
