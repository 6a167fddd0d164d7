//! One app: who it is, its newest run's steps, and the live log (follow, scroll, wrap,
//! search). Reads the ring buffer only; the whole log is in the store.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, Paragraph, Wrap};

use super::block;
use super::{duration, state_symbol};
use crate::console::data::AppWatch;
use crate::console::model::{Mode, Model};
use crate::console::theme::Theme;
use crate::domain::StepState;

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let Some(w) = &m.watch else {
        return;
    };
    let [info, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    draw_info(frame, info, m, w, theme);
    let steps_w = if area.width >= 120 { 34 } else { 24 };
    let [steps, log] =
        Layout::horizontal([Constraint::Length(steps_w), Constraint::Min(20)]).areas(body);
    draw_steps(frame, steps, w, theme);
    draw_log(frame, log, m, w, theme);
}

fn draw_info(frame: &mut Frame, area: Rect, m: &Model, w: &AppWatch, theme: &Theme) {
    let mut spans = vec![Span::styled(format!(" {} ", w.name), theme.header())];
    if let Some(r) = m.row(&w.name) {
        spans.push(Span::styled(
            format!("{} · {} · ", r.region, r.environment),
            theme.text_dim(),
        ));
        spans.push(Span::styled(
            format!(
                "{} {}",
                state_symbol(r.state),
                r.state.as_str().replace('_', " ")
            ),
            theme.state(r.state),
        ));
        if r.paused {
            spans.push(Span::styled(" ⏸ paused", theme.warning()));
        }
        if let Some(a) = m.night.answer(&w.name) {
            spans.push(Span::styled(" · answers ", theme.text_dim()));
            spans.push(super::run::answer_span(Some(a), theme));
        }
        spans.push(Span::styled(
            format!(" · postgres {}", r.postgres),
            theme.text(),
        ));
        if r.scram_risk() {
            spans.push(Span::styled(
                format!(" · ⚠ {}", r.libpq.label()),
                theme.risk_libpq(),
            ));
        }
    }
    if let Some(run) = w.run_id {
        spans.push(Span::styled(format!(" · run #{run}"), theme.text_dim()));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_steps(frame: &mut Frame, area: Rect, w: &AppWatch, theme: &Theme) {
    let name_w = (area.width as usize).saturating_sub(13).clamp(8, 22);
    let items: Vec<ListItem> = w
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let secs = s.seconds.map(duration).unwrap_or_default();
            let sel = w.step_sel == Some(i);
            ListItem::new(Line::from(vec![
                Span::styled(if sel { "▶" } else { " " }, theme.key()),
                Span::styled(format!("{} ", state_symbol(s.state)), theme.state(s.state)),
                Span::styled(
                    format!("{:<name_w$}", s.operation),
                    if s.state == StepState::Running {
                        theme.header()
                    } else {
                        theme.text()
                    },
                ),
                Span::styled(format!("{secs:>8}"), theme.text_dim()),
            ]))
        })
        .collect();
    let done = w
        .steps
        .iter()
        .filter(|s| s.state == StepState::Done)
        .count();
    let title = if w.steps.is_empty() {
        " Steps ".to_string()
    } else {
        format!(" Steps {done}/{} ", w.steps.len())
    };
    let list = if items.is_empty() {
        List::new(vec![ListItem::new(Span::styled(
            "no run yet: m migrates it now",
            theme.text_dim(),
        ))])
    } else {
        List::new(items)
    };
    frame.render_widget(list.block(block(title, theme, false)), area);
}

/// The log pane of a watched app (the App view's right side, the Run view's bottom).
pub fn draw_log(frame: &mut Frame, area: Rect, m: &Model, w: &AppWatch, theme: &Theme) {
    let log = &w.log;
    let height = area.height.saturating_sub(2) as usize;
    let first = log.first_shown(height);
    let step_w = 8;
    let needle = log.search.to_lowercase();
    let lines: Vec<Line> = (first..(first + height).min(log.len()))
        .filter_map(|i| log.get(i).map(|l| (i, l)))
        .map(|(i, l)| {
            let hit = log.hit == Some(i);
            let text_style = if hit {
                theme.matched()
            } else if l.stream == "stderr" {
                theme.text_dim()
            } else {
                theme.text()
            };
            let marker = if hit {
                "▶"
            } else if !needle.is_empty() && l.text.to_lowercase().contains(&needle) {
                "•"
            } else {
                " "
            };
            Line::from(vec![
                Span::styled(marker, theme.key()),
                Span::styled(format!("{:<step_w$.step_w$} ", l.step), theme.text_dim()),
                Span::styled(l.text.as_str(), text_style),
            ])
        })
        .collect();
    let mut title = format!(
        " Log · {} · {} lines{} · follow {} · wrap {} ",
        w.name,
        log.len() + log.dropped,
        if log.dropped > 0 {
            format!(" ({} in memory)", log.len())
        } else {
            String::new()
        },
        if log.follow { "on" } else { "off" },
        if log.wrap { "on" } else { "off" },
    );
    if m.mode == Mode::Search || !log.search.is_empty() {
        title.push_str(&format!("· search: {}", log.search));
        if m.mode == Mode::Search {
            title.push('▏');
        }
        title.push(' ');
    }
    let mut p = Paragraph::new(lines).block(block(title, theme, true));
    if log.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    if log.is_empty() {
        p = Paragraph::new(Span::styled(
            if !w.loaded {
                "reading the log…"
            } else if w.run_id.is_some() {
                "waiting for the first log line…"
            } else {
                "no log: this app has not run yet"
            },
            theme.text_dim(),
        ))
        .block(block(" Log ", theme, true));
    }
    frame.render_widget(p, area);
}
