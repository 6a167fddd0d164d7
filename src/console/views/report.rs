//! The night in one screen: migrations and databases, success rate, failures by class,
//! durations (a histogram) and every region.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use super::block;
use super::duration;
use crate::console::model::Model;
use crate::console::theme::Theme;
use crate::domain::AppState;
use crate::report::{AppOutcome, Input, Report};

/// The report this view draws: the same model as `pgshift report` (`crate::report`), built
/// from what the console has loaded (pure, so it is tested directly).
pub fn report(m: &Model) -> Report {
    let expand = |by_class: &[(String, usize)]| -> Vec<String> {
        by_class
            .iter()
            .flat_map(|(c, n)| std::iter::repeat_n(c.clone(), *n))
            .collect()
    };
    crate::report::build(&Input {
        apps: m
            .rows
            .iter()
            .map(|r| AppOutcome {
                name: r.name.clone(),
                region: r.region.clone(),
                candidate: r.candidate,
                state: r.state,
            })
            .collect(),
        regions: m.regions.clone(),
        spans: m.night.spans.clone(),
        failures: expand(&m.night.failures_by_class),
        open_failures: expand(&m.night.open_failures_by_class),
        downtime: m.night.downtime.clone(),
        backups: m.night.backups.clone(),
        ..Input::default()
    })
}

const BUCKETS: &[(f64, &str)] = &[
    (10.0, "< 10 s"),
    (30.0, "10–30 s"),
    (60.0, "30 s–1 m"),
    (300.0, "1–5 m"),
    (900.0, "5–15 m"),
    (f64::INFINITY, "≥ 15 m"),
];

fn bar(n: usize, max: usize, width: usize) -> String {
    let w = if n == 0 {
        0
    } else {
        ((n * width) / max.max(1)).max(1)
    };
    "█".repeat(w)
}

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let s = report(m);
    let wide = area.width >= 120;
    // Paused time and backups on a line of their own when the screen has room for it.
    let roomy = area.height >= 30;
    let [top, bottom] = Layout::vertical([
        Constraint::Length(if roomy { 8 } else { 7 }),
        Constraint::Min(4),
    ])
    .areas(area);
    let [sum_area, fail_area] = if wide {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top)
    } else {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top)
    };
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |r| format!("{:.1} %", r * 100.0));
    let stat = |q: f64| s.duration_at(q).map_or_else(|| "—".to_string(), duration);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("✓ {} migrated", s.migrated),
                theme.state(AppState::Migrated),
            ),
            Span::styled(format!(" of {} candidates", s.candidates), theme.text()),
        ]),
        Line::from(vec![
            Span::styled(
                format!("✗ {} failed  ", s.failed),
                theme.state(AppState::Failed),
            ),
            Span::styled(
                format!("↺ {} rolled back  ", s.rolled_back),
                theme.state(AppState::RolledBack),
            ),
            Span::styled(
                format!("⟳ {} running", s.running),
                theme.state(AppState::Running),
            ),
        ]),
        Line::from(vec![
            Span::styled("success rate ", theme.text_dim()),
            Span::styled(pct(s.success_rate), theme.header()),
        ]),
        Line::from(vec![
            Span::styled("databases moved ", theme.text_dim()),
            Span::styled(s.databases_moved.to_string(), theme.text()),
        ]),
        Line::from(vec![
            Span::styled("median ", theme.text_dim()),
            Span::styled(stat(0.5), theme.text()),
            Span::styled(" · p95 ", theme.text_dim()),
            Span::styled(stat(0.95), theme.text()),
            Span::styled(" · max ", theme.text_dim()),
            Span::styled(stat(1.0), theme.text()),
        ]),
    ];
    if roomy {
        lines.push(Line::from(vec![
            Span::styled("paused max ", theme.text_dim()),
            Span::styled(
                s.downtime
                    .iter()
                    .filter_map(|d| d.paused_seconds)
                    .reduce(f64::max)
                    .map_or_else(|| "—".to_string(), duration),
                theme.text(),
            ),
            Span::styled(" · backups ", theme.text_dim()),
            Span::styled(
                format!(
                    "{} kept, {:.1} MB",
                    s.backups.len(),
                    s.backups.iter().map(|b| b.size_bytes).sum::<i64>() as f64 / 1e6
                ),
                theme.text(),
            ),
            Span::styled(" · first expiry ", theme.text_dim()),
            Span::styled(
                s.backups
                    .iter()
                    .filter_map(|b| b.expires_at.as_deref())
                    .min()
                    .map_or("—", |t| t.get(..10).unwrap_or(t))
                    .to_string(),
                theme.text(),
            ),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(" The night ", theme, false)),
        sum_area,
    );

    let max = s
        .failures_happened
        .iter()
        .map(|c| c.count)
        .max()
        .unwrap_or(0);
    let bw = (fail_area.width as usize).saturating_sub(34).clamp(4, 40);
    let mut fl: Vec<Line> = s
        .failures_happened
        .iter()
        .map(|c| {
            let (class, n) = (c.class.as_str(), c.count);
            Line::from(vec![
                Span::styled(format!("{class:<22.22} "), theme.failure(class)),
                Span::styled(format!("{n:>4} "), theme.text()),
                Span::styled(bar(n, max, bw), theme.failure(class)),
            ])
        })
        .collect();
    if fl.is_empty() {
        fl.push(Line::from(Span::styled(
            "✓ none",
            theme.state(AppState::Migrated),
        )));
    }
    frame.render_widget(
        Paragraph::new(fl).block(block(" Failures by class (all recorded) ", theme, false)),
        fail_area,
    );

    let [hist, regions] = if wide {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom)
    } else {
        Layout::vertical([Constraint::Length(8), Constraint::Min(3)]).areas(bottom)
    };
    let counts: Vec<usize> = BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (hi, _))| {
            let lo = if i == 0 {
                f64::NEG_INFINITY
            } else {
                BUCKETS[i - 1].0
            };
            s.durations
                .iter()
                .filter(|d| **d >= lo && **d < *hi)
                .count()
        })
        .collect();
    let maxc = counts.iter().copied().max().unwrap_or(0);
    let hw = (hist.width as usize).saturating_sub(22).clamp(4, 60);
    let hl: Vec<Line> = BUCKETS
        .iter()
        .zip(&counts)
        .map(|((_, label), n)| {
            Line::from(vec![
                Span::styled(format!("{label:>9} "), theme.text_dim()),
                Span::styled(format!("{n:>5} "), theme.text()),
                Span::styled(bar(*n, maxc, hw), theme.state(AppState::Migrated)),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(hl).block(block(" Migration durations ", theme, false)),
        hist,
    );

    let rows: Vec<Row> = s
        .regions
        .iter()
        .map(|c| {
            Row::new(vec![
                Cell::from(Span::styled(c.name.clone(), theme.text())),
                Cell::from(Span::styled(c.candidates.to_string(), theme.text())),
                Cell::from(Span::styled(
                    format!("✓ {}", c.migrated),
                    theme.state(AppState::Migrated),
                )),
                Cell::from(Span::styled(
                    format!("✗ {}", c.failed),
                    theme.state(AppState::Failed),
                )),
                Cell::from(Span::styled(pct(c.success_rate), theme.text())),
            ])
        })
        .collect();
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(
            Row::new(vec![
                "region",
                "candidates",
                AppState::Migrated.as_str(),
                AppState::Failed.as_str(),
                "success",
            ])
            .style(theme.header()),
        )
        .block(block(" Per region ", theme, false)),
        regions,
    );
}
