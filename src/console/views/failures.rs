//! Triage: open failures grouped by class; for the selected one the step log around the
//! matched line, the matched span highlighted exactly (its own style and a `▶` marker, so
//! not by colour alone), the explanation, and the remediations to retry with.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use super::block;
use crate::console::data::FailureItem;
use crate::console::model::Model;
use crate::console::theme::Theme;
use crate::diagnose::Matched;
use crate::domain::AppState;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    if m.failures.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "✓ no open failures",
                theme.state(AppState::Migrated),
            ))
            .block(block(" Failures · 0 open ", theme, true)),
            area,
        );
        return;
    }
    let (list_area, detail) = if area.width >= 120 {
        let [l, d] = Layout::horizontal([Constraint::Length(44), Constraint::Min(40)]).areas(area);
        (l, d)
    } else {
        let n = (m.failures.len() + count_classes(m) + 2) as u16;
        let [l, d] =
            Layout::vertical([Constraint::Length(n.clamp(4, 7)), Constraint::Min(8)]).areas(area);
        (l, d)
    };
    draw_list(frame, list_area, m, theme);
    if let Some(f) = m.selected_failure() {
        draw_detail(frame, detail, m, f, theme);
    }
}

fn count_classes(m: &Model) -> usize {
    let mut c: Vec<&str> = m.failures.iter().map(|f| f.class.as_str()).collect();
    c.sort();
    c.dedup();
    c.len()
}

fn draw_list(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let order = m.failure_order();
    let mut items = Vec::new();
    let mut selected = None;
    let mut class: Option<&str> = None;
    for (k, &i) in order.iter().enumerate() {
        let f = &m.failures[i];
        if class != Some(f.class.as_str()) {
            class = Some(&f.class);
            let n = m.failures.iter().filter(|x| x.class == f.class).count();
            items.push(ListItem::new(Line::from(vec![
                Span::styled(format!("✗ {}", f.class), theme.failure(&f.class)),
                Span::styled(format!(" · {n}"), theme.text_dim()),
            ])));
        }
        if k == m.failure_sel {
            selected = Some(items.len());
        }
        items.push(ListItem::new(Line::from(vec![
            Span::styled(format!("  {:<16}", f.app), theme.text()),
            Span::styled(
                format!(" {} · {}", f.region, f.step.as_deref().unwrap_or("?")),
                theme.text_dim(),
            ),
        ])));
    }
    let mut state = ListState::default().with_selected(selected);
    let list = List::new(items)
        .block(block(
            format!(" Failures · {} open ", m.failures.len()),
            theme,
            false,
        ))
        .highlight_style(theme.selection())
        .highlight_symbol("›");
    frame.render_stateful_widget(list, area, &mut state);
}

/// Where the matched line sits in the loaded step log (the index the diagnosis kept, else
/// the same text elsewhere: the engine's line list and the store's may differ by a line).
fn locate(lines: &[String], m: &Matched) -> Option<usize> {
    if lines.get(m.index).is_some_and(|l| *l == m.line) {
        return Some(m.index);
    }
    lines.iter().position(|l| *l == m.line)
}

/// The line with `start..end` (bytes) in the match style; the whole line if the span is not
/// on character boundaries.
pub fn highlighted<'a>(
    line: &'a str,
    start: usize,
    end: usize,
    base: Style,
    hl: Style,
) -> Vec<Span<'a>> {
    let end = end.min(line.len());
    if start >= end || !line.is_char_boundary(start) || !line.is_char_boundary(end) {
        return vec![Span::styled(line, hl)];
    }
    vec![
        Span::styled(&line[..start], base),
        Span::styled(&line[start..end], hl),
        Span::styled(&line[end..], base),
    ]
}

fn draw_detail(frame: &mut Frame, area: Rect, m: &Model, f: &FailureItem, theme: &Theme) {
    let offered = f.retry_remediations();
    let rem_h = (offered.len() as u16 + 3).min(6);
    let [head, log, rems] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(rem_h),
    ])
    .areas(area);

    let step = f.step.as_deref().unwrap_or("?");
    let head_lines = vec![
        Line::from(vec![
            Span::styled(format!("✗ {} ", f.class), theme.failure(&f.class)),
            Span::styled(
                format!("{} · {} · step {step} · run #{}", f.app, f.region, f.run_id),
                theme.text(),
            ),
        ]),
        Line::from(Span::styled(f.explanation.as_str(), theme.text_dim())),
    ];
    frame.render_widget(Paragraph::new(head_lines).wrap(Wrap { trim: true }), head);

    // The log: the loaded step log around the match, or the failure's own matched lines.
    let loaded = m
        .failure_log
        .as_ref()
        .filter(|l| l.failure_id == f.id)
        .map(|l| l.lines.as_slice());
    let first = f.matched.first();
    let (lines, at): (Vec<String>, Option<usize>) = match (loaded, first) {
        (Some(all), Some(mt)) if locate(all, mt).is_some() => (all.to_vec(), locate(all, mt)),
        _ => (
            f.matched.iter().map(|x| x.line.clone()).collect(),
            first.map(|_| 0),
        ),
    };
    let context: Vec<usize> = match (loaded, at) {
        (Some(_), Some(a)) => f
            .matched
            .iter()
            .skip(1)
            .filter_map(|x| {
                lines
                    .iter()
                    .enumerate()
                    .skip(a)
                    .find(|(_, l)| **l == x.line)
                    .map(|(i, _)| i)
            })
            .collect(),
        _ => (1..lines.len()).collect(),
    };
    let height = log.height.saturating_sub(2) as usize;
    // Some of what came before (a third of the pane; none when it is small), then the match
    // and its context.
    let before = if height >= 8 { height / 3 } else { 0 };
    let start = at.map_or(0, |a| a.saturating_sub(before));
    let end = (start + height.max(1)).min(lines.len());
    let mut shown: Vec<Line> = Vec::new();
    for (i, text) in lines.iter().enumerate().take(end).skip(start) {
        if let Some(mt) = first.filter(|_| Some(i) == at) {
            let mut spans = vec![Span::styled("▶ ", theme.danger())];
            spans.extend(highlighted(
                text,
                mt.start,
                mt.end,
                theme.text(),
                theme.matched(),
            ));
            shown.push(Line::from(spans));
        } else if context.contains(&i) {
            shown.push(Line::from(vec![
                Span::styled("│ ", theme.warning()),
                Span::styled(text.as_str(), theme.warning()),
            ]));
        } else {
            shown.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(text.as_str(), theme.text_dim()),
            ]));
        }
    }
    let where_ = match (at, loaded) {
        (Some(a), Some(_)) => format!(" Log of {step} · line {} of {} ", a + 1, lines.len()),
        _ => format!(" Log of {step} · matched lines "),
    };
    frame.render_widget(
        Paragraph::new(shown)
            .wrap(Wrap { trim: false })
            .block(block(where_, theme, true)),
        log,
    );

    let mut rl: Vec<Line> = Vec::new();
    for (k, (id, desc)) in offered.iter().enumerate() {
        let sel = k == m.remediation_sel % offered.len().max(1);
        rl.push(Line::from(vec![
            Span::styled(if sel { "› " } else { "  " }, theme.key()),
            Span::styled(
                id.to_string(),
                if sel {
                    theme.selection()
                } else {
                    theme.header()
                },
            ),
            Span::styled(format!(" — {desc}"), theme.text_dim()),
        ]));
    }
    if offered.is_empty() {
        rl.push(Line::from(Span::styled(
            "  nothing to retry with: b rolls back, M marks it manual",
            theme.text_dim(),
        )));
    }
    frame.render_widget(
        Paragraph::new(rl).wrap(Wrap { trim: false }).block(block(
            " Remedies · tab choose · r retry · b roll back · M manual ",
            theme,
            false,
        )),
        rems,
    );
}
