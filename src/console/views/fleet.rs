//! The fleet: regions with counts on the left, the app table on the right.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, List, ListItem, ListState, Row, Table, TableState};

use super::state_symbol;
use crate::console::model::Model;
use crate::console::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(2)]).areas(area);
    let counts = m.region_counts();
    let all = &counts[0];
    let mut spans = vec![
        Span::styled(" pgshift ", theme.title()),
        Span::styled(
            format!(
                "{} apps · {} candidates · {} migrated · {} failed",
                all.apps, all.candidates, all.migrated, all.failed
            ),
            theme.text(),
        ),
        Span::styled(format!("  {}", m.source), theme.text_dim()),
    ];
    if m.readonly {
        spans.push(Span::styled("  READ-ONLY", theme.warning()));
    }
    frame.render_widget(Line::from(spans), title);

    let left_width = if area.width >= 100 { 30 } else { 22 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(20)]).areas(body);
    draw_regions(frame, left, m, theme, &counts);
    draw_table(frame, right, m, theme);
}

fn draw_regions(
    frame: &mut Frame,
    area: Rect,
    m: &Model,
    theme: &Theme,
    counts: &[crate::console::model::RegionCount],
) {
    let wide = area.width >= 28;
    let items: Vec<ListItem> = counts
        .iter()
        .map(|c| {
            let detail = if wide {
                format!("{:>3} apps {:>3} cand.", c.apps, c.candidates)
            } else {
                format!("{:>3}/{:<3}", c.candidates, c.apps)
            };
            let mut spans = vec![
                Span::styled(format!("{:<12}", c.name), theme.text()),
                Span::styled(detail, theme.text_dim()),
            ];
            if c.failed > 0 {
                spans.push(Span::styled(
                    format!(" ✗{}", c.failed),
                    theme.state("failed"),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(m.region));
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(false))
                .title(Span::styled(" Regions ", theme.header())),
        )
        .highlight_style(theme.selection())
        .highlight_symbol("▶ ");
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_table(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let rows_visible = m.visible();
    let wide = area.width >= 110;
    let mut region_title = m.region_name().unwrap_or("all regions").to_string();
    if !m.filter.is_empty() || m.mode == crate::console::model::Mode::Filter {
        region_title.push_str(&format!("  filter: {}", m.filter));
        if m.mode == crate::console::model::Mode::Filter {
            region_title.push('▏');
        }
    }
    let title = format!(" Apps · {region_title} · {} shown ", rows_visible.len());

    let mut header = vec!["", "app", "env", "region", "libpq", "postgres", "state"];
    if wide {
        header.insert(4, "customer");
    }
    let rows: Vec<Row> = rows_visible
        .iter()
        .map(|r| {
            let risk = if r.scram_risk() {
                Span::styled(format!("{} ⚠", r.libpq), theme.risk_libpq())
            } else {
                Span::styled(r.libpq.to_string(), theme.text())
            };
            let state_style = theme.state(&r.state);
            let mut state_text = format!("{} {}", state_symbol(&r.state), r.state);
            if r.paused {
                state_text.push_str(" ⏸ paused");
            }
            let mut cells = vec![
                Cell::from(Span::styled(
                    if r.candidate { "•" } else { " " },
                    theme.text_dim(),
                )),
                Cell::from(Span::styled(r.name.clone(), theme.text())),
                Cell::from(Span::styled(r.environment.to_string(), theme.text_dim())),
                Cell::from(Span::styled(r.region.clone(), theme.text_dim())),
                Cell::from(risk),
                Cell::from(Span::styled(r.postgres.clone(), theme.text())),
                Cell::from(Span::styled(state_text, state_style)),
            ];
            if wide {
                cells.insert(
                    4,
                    Cell::from(Span::styled(r.customer.clone(), theme.text_dim())),
                );
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Min(14),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Min(12),
    ];
    if wide {
        widths.insert(4, Constraint::Length(14));
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border(true))
                .title(Span::styled(title, theme.header())),
        )
        .row_highlight_style(theme.selection())
        .highlight_symbol("▶");
    let mut state = TableState::default().with_selected(
        (!rows_visible.is_empty()).then_some(m.selected.min(rows_visible.len() - 1)),
    );
    frame.render_stateful_widget(table, area, &mut state);
}
