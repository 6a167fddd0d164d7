//! The night in one screen: migrations and databases, success rate, failures by class,
//! durations (a histogram) and every region.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::duration;
use crate::console::model::Model;
use crate::console::theme::Theme;
use crate::domain::AppState;

/// What the report says, computed from the model (pure, so it is tested directly).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub candidates: usize,
    pub migrated: usize,
    pub failed: usize,
    pub rolled_back: usize,
    pub running: usize,
    /// Migrated ÷ (migrated + failed + rolled back), when anything finished.
    pub success_rate: Option<f64>,
    /// Seconds each successful migration took (its last successful pass).
    pub durations: Vec<f64>,
}

pub fn summary(m: &Model) -> Summary {
    let cands: Vec<_> = m.rows.iter().filter(|r| r.candidate).collect();
    let count = |s: AppState| cands.iter().filter(|r| r.state == s).count();
    let (migrated, failed, rolled_back) = (
        count(AppState::Migrated),
        count(AppState::Failed),
        count(AppState::RolledBack),
    );
    let finished = migrated + failed + rolled_back;
    // Each app's last complete pass (spans come oldest first).
    let mut last_ok: std::collections::HashMap<&str, &crate::store::AppRunSpan> =
        std::collections::HashMap::new();
    for s in m
        .night
        .spans
        .iter()
        .filter(|s| s.failed == 0 && s.unfinished == 0)
    {
        last_ok.insert(s.app.as_str(), s);
    }
    let mut durations: Vec<f64> = Vec::new();
    for r in cands.iter().filter(|r| r.state == AppState::Migrated) {
        let span = last_ok.get(r.name.as_str());
        if let Some(s) = span
            && let (Some(a), Some(b)) = (&s.started_at, &s.finished_at)
            && let (Ok(a), Ok(b)) = (
                chrono::DateTime::parse_from_rfc3339(a),
                chrono::DateTime::parse_from_rfc3339(b),
            )
        {
            durations.push((b - a).num_milliseconds() as f64 / 1000.0);
        }
    }
    durations.sort_by(f64::total_cmp);
    Summary {
        candidates: cands.len(),
        migrated,
        failed,
        rolled_back,
        running: count(AppState::Running),
        success_rate: (finished > 0).then(|| migrated as f64 / finished as f64),
        durations,
    }
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
    let s = summary(m);
    let wide = area.width >= 120;
    let [top, bottom] = Layout::vertical([Constraint::Length(7), Constraint::Min(4)]).areas(area);
    let [sum_area, fail_area] = if wide {
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top)
    } else {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top)
    };
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |r| format!("{:.1} %", r * 100.0));
    let stat = |d: &[f64], q: f64| -> String {
        if d.is_empty() {
            return "—".into();
        }
        let i = ((d.len() - 1) as f64 * q).round() as usize;
        duration(d[i])
    };
    let lines = vec![
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
            Span::styled(s.migrated.to_string(), theme.text()),
        ]),
        Line::from(vec![
            Span::styled("median ", theme.text_dim()),
            Span::styled(stat(&s.durations, 0.5), theme.text()),
            Span::styled(" · p95 ", theme.text_dim()),
            Span::styled(stat(&s.durations, 0.95), theme.text()),
            Span::styled(" · max ", theme.text_dim()),
            Span::styled(stat(&s.durations, 1.0), theme.text()),
        ]),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(block(" The night ".into(), theme)),
        sum_area,
    );

    let max = m
        .night
        .failures_by_class
        .iter()
        .map(|c| c.1)
        .max()
        .unwrap_or(0);
    let bw = (fail_area.width as usize).saturating_sub(34).clamp(4, 40);
    let mut fl: Vec<Line> = m
        .night
        .failures_by_class
        .iter()
        .map(|(class, n)| {
            Line::from(vec![
                Span::styled(format!("{class:<22.22} "), theme.failure(class)),
                Span::styled(format!("{n:>4} "), theme.text()),
                Span::styled(bar(*n, max, bw), theme.failure(class)),
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
        Paragraph::new(fl).block(block(" Failures by class (all recorded) ".into(), theme)),
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
        Paragraph::new(hl).block(block(" Migration durations ".into(), theme)),
        hist,
    );

    let rows: Vec<Row> = m
        .region_counts()
        .into_iter()
        .skip(1)
        .map(|c| {
            let fin = c.migrated + c.failed;
            Row::new(vec![
                Cell::from(Span::styled(c.name, theme.text())),
                Cell::from(Span::styled(c.candidates.to_string(), theme.text())),
                Cell::from(Span::styled(
                    format!("✓ {}", c.migrated),
                    theme.state(AppState::Migrated),
                )),
                Cell::from(Span::styled(
                    format!("✗ {}", c.failed),
                    theme.state(AppState::Failed),
                )),
                Cell::from(Span::styled(
                    pct((fin > 0).then(|| c.migrated as f64 / fin as f64)),
                    theme.text(),
                )),
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
        .block(block(" Per region ".into(), theme)),
        regions,
    );
}

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(false))
        .title(Span::styled(title, theme.header()))
}
