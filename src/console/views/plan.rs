//! The night's plan: batches per region with their estimates against the window, the
//! canary marked; the selected batch's apps.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{block, duration, state_symbol};
use crate::console::model::Model;
use crate::console::theme::Theme;
use crate::domain::{AppState, FleetState};

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let Some(plan) = &m.night.plan else {
        super::empty_pane(
            frame,
            area,
            " Plan ",
            "No plan yet: `pgshift plan --batch-size 10 --window 4h` makes one.",
            theme,
            true,
        );
        return;
    };
    let [table_area, detail] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(5)]).areas(area);
    let wide = area.width >= 120;
    let rows: Vec<Row> = plan
        .batches
        .iter()
        .map(|b| {
            let done = b
                .apps
                .iter()
                .filter(|a| m.row(a).is_some_and(|r| r.state == AppState::Migrated))
                .count();
            let mut cells = vec![
                Cell::from(Span::styled(b.region.clone(), theme.text())),
                Cell::from(Span::styled(
                    format!("{}{}", b.index, if b.canary { " ★" } else { "" }),
                    if b.canary { theme.key() } else { theme.text() },
                )),
                Cell::from(Span::styled(
                    format!("{done}/{}", b.apps.len()),
                    theme.text(),
                )),
                Cell::from(Span::styled(duration(b.estimated_seconds), theme.text())),
                Cell::from(Span::styled(
                    format!(
                        "{} {}",
                        duration(b.ends_after_seconds),
                        if b.fits_window { "✓" } else { "⚠ over" }
                    ),
                    if b.fits_window {
                        theme.text()
                    } else {
                        theme.warning()
                    },
                )),
            ];
            if wide {
                cells.push(Cell::from(Span::styled(b.apps.join(" "), theme.text_dim())));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Min(14),
    ];
    let mut header = vec!["region", "batch", "done", "estimate", "ends after"];
    if wide {
        widths[4] = Constraint::Length(18);
        widths.push(Constraint::Min(20));
        header.push("apps");
    }
    let title = format!(
        " Plan{} · seed {} · batches of {} · canary {} · window {}{} ",
        if m.plan_edited {
            " (edited — w saves)"
        } else {
            ""
        },
        plan.seed,
        plan.batch_size,
        plan.canary,
        duration(plan.window_seconds as f64),
        if plan.excluded.is_empty() {
            String::new()
        } else {
            format!(" · excluded {}", plan.excluded.join(", "))
        }
    );
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block(title, theme, true))
        .row_highlight_style(theme.selection())
        .highlight_symbol("▶");
    let mut st = TableState::default().with_selected(Some(m.night_sel));
    frame.render_stateful_widget(table, table_area, &mut st);

    if let Some(b) = plan.batches.get(m.night_sel) {
        let chosen = m.plan_app.min(b.apps.len().saturating_sub(1));
        let spans: Vec<Span> = b
            .apps
            .iter()
            .enumerate()
            .flat_map(|(k, a)| {
                let state = m
                    .row(a)
                    .map_or(FleetState::App(AppState::Pending), |r| r.state);
                let (mark, style) = if k == chosen {
                    ("›", theme.selection())
                } else {
                    (" ", theme.text())
                };
                [
                    Span::styled(mark, theme.key()),
                    Span::styled(format!("{} ", state_symbol(state)), theme.state(state)),
                    Span::styled(a.clone(), style),
                    Span::raw(" "),
                ]
            })
            .collect();
        frame.render_widget(
            Paragraph::new(Line::from(spans))
                .wrap(Wrap { trim: true })
                .block(block(
                    format!(
                        " {} batch {}{} · h/l choose · </> move · enter runs batch {} everywhere ",
                        b.region,
                        b.index,
                        if b.canary { " (canary)" } else { "" },
                        b.index
                    ),
                    theme,
                    false,
                )),
            detail,
        );
    }
}
