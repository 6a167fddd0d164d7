//! The running night: a lane per region (gauge, counts, ETA against the window) and every
//! app running now with its current step.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::{block, duration, state_symbol};
use crate::console::data::unix_seconds;
use crate::console::model::Model;
use crate::console::theme::Theme;
use crate::domain::{AppState, FleetState};

/// One region's progress through the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub region: String,
    pub planned: usize,
    pub migrated: usize,
    pub failed: usize,
    pub running: usize,
    /// The plan's estimate for the whole region, and for what is left.
    pub estimated: f64,
    pub left: f64,
    /// Time the region had something running since the plan was made (idle gaps between
    /// batches left out), if it started.
    pub elapsed: Option<f64>,
    /// Estimate left, scaled by the pace so far (elapsed ÷ estimate of what is done).
    pub eta: f64,
    pub window: f64,
}

fn secs_between(a: &str, b: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(a).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(b).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

/// Lanes from the plan, the app states and the store's per-app spans.
pub fn lanes(m: &Model) -> Vec<Lane> {
    let Some(plan) = &m.night.plan else {
        return Vec::new();
    };
    let mut out: Vec<Lane> = Vec::new();
    for b in &plan.batches {
        let i = match out.iter().position(|l| l.region == b.region) {
            Some(i) => i,
            None => {
                out.push(Lane {
                    region: b.region.clone(),
                    planned: 0,
                    migrated: 0,
                    failed: 0,
                    running: 0,
                    estimated: 0.0,
                    left: 0.0,
                    elapsed: None,
                    eta: 0.0,
                    window: plan.window_seconds as f64,
                });
                out.len() - 1
            }
        };
        let lane = &mut out[i];
        let per_app = b.estimated_seconds / b.apps.len().max(1) as f64;
        lane.estimated += b.estimated_seconds;
        for a in &b.apps {
            lane.planned += 1;
            match m.row(a).map(|r| r.state) {
                Some(FleetState::App(AppState::Migrated)) => lane.migrated += 1,
                Some(FleetState::App(AppState::Failed | AppState::RolledBack)) => lane.failed += 1,
                Some(FleetState::App(AppState::Running)) => {
                    lane.running += 1;
                    lane.left += per_app;
                }
                _ => lane.left += per_app,
            }
        }
    }
    let since = m.night.plan_created_at.as_deref().unwrap_or("");
    let planned: std::collections::HashSet<&str> = plan.apps().collect();
    let now = unix_seconds(Some(&m.night.now)).unwrap_or(0.0);
    // Parsed by the loader when it read the spans; parsed here otherwise.
    let parsed = m.night.span_times.len() == m.night.spans.len();
    let times = |i: usize| -> (Option<f64>, Option<f64>) {
        if parsed {
            m.night.span_times[i]
        } else {
            let s = &m.night.spans[i];
            (
                unix_seconds(s.started_at.as_deref()),
                unix_seconds(s.finished_at.as_deref()),
            )
        }
    };
    for lane in &mut out {
        let mut spans: Vec<(f64, f64)> = m
            .night
            .spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.region == lane.region)
            .filter(|(_, s)| s.started_at.as_deref().is_some_and(|t| t >= since))
            .filter(|(_, s)| planned.contains(s.app.as_str()))
            .filter_map(|(i, s)| {
                let (start, finished) = times(i);
                let start = start? - now;
                // A failed pass leaves later steps pending: only a running app runs on.
                let running = m.row(&s.app).is_some_and(|r| r.state == AppState::Running);
                let end = match finished {
                    _ if running && s.unfinished > 0 => 0.0,
                    Some(f) => f - now,
                    None => start,
                };
                Some((start, end.max(start)))
            })
            .collect();
        lane.elapsed = busy_seconds(&mut spans);
        let done_est = lane.estimated - lane.left;
        // No pace before something finished: the estimate done is then 0 up to rounding, and
        // dividing by it would promise centuries.
        let finished = lane.migrated + lane.failed > 0;
        lane.eta = match lane.elapsed {
            Some(e) if finished && done_est > 0.01 && e > 0.0 => lane.left * (e / done_est),
            _ => lane.left,
        };
    }
    out
}

/// The length of the union of `(start, end)` intervals (seconds relative to now).
fn busy_seconds(spans: &mut [(f64, f64)]) -> Option<f64> {
    if spans.is_empty() {
        return None;
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut total, mut cur) = (0.0, spans[0]);
    for &(s, e) in spans.iter().skip(1) {
        if s <= cur.1 {
            cur.1 = cur.1.max(e);
        } else {
            total += cur.1 - cur.0;
            cur = (s, e);
        }
    }
    Some(total + cur.1 - cur.0)
}

fn gauge(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let lanes = lanes(m);
    if lanes.is_empty() {
        super::empty_pane(
            frame,
            area,
            " Run ",
            "No plan yet: 2 shows the plan, `pgshift plan` makes one.",
            theme,
            true,
        );
        return;
    }
    let lanes_h = (lanes.len() as u16 + 3).min(area.height / 2).max(4);
    // The running apps, then the log of the one watched (the selected region's first).
    let running_h = (m.night.running.len() as u16 + 3).clamp(4, 10);
    let [top, bottom, log] = Layout::vertical([
        Constraint::Length(lanes_h),
        Constraint::Length(running_h),
        Constraint::Min(3),
    ])
    .areas(area);
    if let Some(w) = &m.watch {
        super::app::draw_log(frame, log, m, w, theme);
    } else {
        super::empty_pane(
            frame,
            log,
            " Log ",
            "no app running in this region: its log shows here when one is",
            theme,
            false,
        );
    }
    let wide = area.width >= 120;
    let gauge_w = if wide { 30 } else { 10 };
    let rows: Vec<Row> = lanes
        .iter()
        .map(|l| {
            let done = l.migrated + l.failed;
            let over = l.elapsed.unwrap_or(0.0) + l.eta > l.window;
            let mut cells = vec![
                Cell::from(Span::styled(l.region.clone(), theme.text())),
                Cell::from(Span::styled(
                    format!("{} {done}/{}", gauge(done, l.planned, gauge_w), l.planned),
                    theme.state(AppState::Migrated),
                )),
                Cell::from(Line::from({
                    let mut spans = vec![
                        Span::styled(format!("✓{} ", l.migrated), theme.state(AppState::Migrated)),
                        Span::styled(format!("✗{} ", l.failed), theme.state(AppState::Failed)),
                        Span::styled(format!("⟳{}", l.running), theme.state(AppState::Running)),
                    ];
                    // What the operator asked of this region, in words as well as a symbol.
                    let asked = m
                        .night
                        .controls
                        .iter()
                        .find(|(r, _)| *r == l.region || r == "*")
                        .map(|(_, a)| a.as_str());
                    match asked {
                        Some("pause") => spans.push(Span::styled(" ⏸ paused", theme.warning())),
                        Some("stop") => spans.push(Span::styled(" ⏹ stopping", theme.warning())),
                        Some("cancel") => {
                            spans.push(Span::styled(" ⏹ cancelling", theme.warning()))
                        }
                        _ => {}
                    }
                    spans
                })),
                Cell::from(Span::styled(
                    if l.left <= 0.0 {
                        "done".to_string()
                    } else {
                        format!("{}{}", duration(l.eta), if over { " ⚠ over" } else { "" })
                    },
                    if over { theme.warning() } else { theme.text() },
                )),
            ];
            if wide {
                cells.push(Cell::from(Span::styled(
                    format!(
                        "{} of {} est. · window {}",
                        l.elapsed
                            .map(duration)
                            .unwrap_or_else(|| "not started".into()),
                        duration(l.estimated),
                        duration(l.window)
                    ),
                    theme.text_dim(),
                )));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(10),
        Constraint::Length(gauge_w as u16 + 10),
        // Room for "⏸ paused" / "⏹ stopping" when the operator asked for it.
        Constraint::Length(if m.night.controls.is_empty() { 14 } else { 25 }),
        Constraint::Min(10),
    ];
    let mut header = vec!["region", "progress", "state", "ETA"];
    if wide {
        widths[3] = Constraint::Length(18);
        widths.push(Constraint::Min(20));
        header.push("elapsed");
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block(" Regions ", theme, true))
        .row_highlight_style(theme.selection())
        .highlight_symbol("▶");
    let mut st = TableState::default().with_selected(Some(m.night_sel));
    frame.render_stateful_widget(table, top, &mut st);

    let rows: Vec<Row> = m
        .night
        .running
        .iter()
        .map(|r| {
            let since = r
                .started_at
                .as_deref()
                .and_then(|s| secs_between(s, &m.night.now))
                .map(duration)
                .unwrap_or_default();
            Row::new(vec![
                Cell::from(Span::styled(
                    format!("{} {}", state_symbol(AppState::Running), r.app),
                    theme.state(AppState::Running),
                )),
                Cell::from(Span::styled(r.region.clone(), theme.text_dim())),
                Cell::from(Span::styled(
                    format!("{} (step {})", r.operation, r.seq + 1),
                    theme.text(),
                )),
                Cell::from(Span::styled(since, theme.text_dim())),
                Cell::from(answer_span(m.night.answer(&r.app), theme)),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(20),
            Constraint::Length(8),
            Constraint::Length(24),
            Constraint::Length(8),
            Constraint::Min(6),
        ],
    )
    .header(Row::new(vec!["app", "region", "step", "for", "answers"]).style(theme.header()))
    .block(block(
        if empty {
            " Running now · nothing ".to_string()
        } else {
            format!(" Running now · {} ", m.night.running.len())
        },
        theme,
        false,
    ));
    frame.render_widget(table, bottom);
}

/// What a probed app answers now: 200 in the success colour, 503 (its maintenance page) as a
/// warning, anything else as danger; nothing when no prober asks.
pub fn answer_span<'a>(answer: Option<&str>, theme: &Theme) -> Span<'a> {
    match answer {
        None => Span::raw(""),
        Some(a) if a.starts_with('2') || a.starts_with('3') => {
            Span::styled(format!("✓ {a}"), theme.state(AppState::Migrated))
        }
        Some("503") => Span::styled("⏸ 503", theme.warning()),
        Some(a) => Span::styled(format!("✗ {a}"), theme.state(AppState::Failed)),
    }
}
