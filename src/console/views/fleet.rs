//! The fleet: regions with counts on the left, the app table on the right.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, List, ListItem, ListState, Row, Table, TableState};

use super::block;
use super::state_symbol;
use crate::console::model::{FleetRow, Model};
use crate::console::theme::Theme;
use crate::domain::{AppState, FleetState};
use crate::inventory::client::{Client, ClientFamily};

pub fn draw(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let counts = m.region_counts();
    let cols = RegionColumns::of(&counts);
    // As wide as the counts need (borders and the ▶ take 4), never more than a third.
    let left_width = (cols.total() as u16 + 4).clamp(22, (area.width / 3).max(22));
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(20)]).areas(area);
    draw_regions(frame, left, m, theme, &counts, &cols);
    draw_table(frame, right, m, theme);
}

/// Widths of the region list's columns, so every count lines up and none is cut short:
/// failures first (what matters at 3 a.m.), then running, migrated, candidates/apps.
struct RegionColumns {
    name: usize,
    failed: usize,
    running: usize,
    migrated: usize,
    apps: usize,
}

fn count(sym: &str, n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("{sym}{n}")
    }
}

impl RegionColumns {
    fn of(counts: &[crate::console::model::RegionCount]) -> Self {
        let w = |f: &dyn Fn(&crate::console::model::RegionCount) -> String| {
            counts
                .iter()
                .map(|c| f(c).chars().count())
                .max()
                .unwrap_or(0)
        };
        Self {
            name: w(&|c| c.name.clone()),
            failed: w(&|c| count("✗", c.failed)),
            running: w(&|c| count("⟳", c.running)),
            migrated: w(&|c| count("✓", c.migrated)),
            apps: w(&|c| format!("{}/{}", c.candidates, c.apps)),
        }
    }

    fn total(&self) -> usize {
        [self.failed, self.running, self.migrated]
            .iter()
            .filter(|w| **w > 0)
            .map(|w| w + 1)
            .sum::<usize>()
            + self.name
            + 1
            + self.apps
    }
}

fn draw_regions(
    frame: &mut Frame,
    area: Rect,
    m: &Model,
    theme: &Theme,
    counts: &[crate::console::model::RegionCount],
    cols: &RegionColumns,
) {
    let items: Vec<ListItem> = counts
        .iter()
        .map(|c| {
            let mut spans = vec![Span::styled(
                format!("{:<w$} ", c.name, w = cols.name),
                theme.text(),
            )];
            for (w, sym, n, state) in [
                (cols.failed, "✗", c.failed, AppState::Failed),
                (cols.running, "⟳", c.running, AppState::Running),
                (cols.migrated, "✓", c.migrated, AppState::Migrated),
            ] {
                if w > 0 {
                    spans.push(Span::styled(
                        format!("{:<w$} ", count(sym, n)),
                        theme.state(state),
                    ));
                }
            }
            spans.push(Span::styled(
                format!("{}/{}", c.candidates, c.apps),
                theme.text_dim(),
            ));
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(m.region));
    let list = List::new(items)
        .block(block(
            if area.width >= 28 {
                " Regions · candidates/apps "
            } else {
                " Regions "
            },
            theme,
            false,
        ))
        .highlight_style(theme.selection())
        .highlight_symbol("▶ ");
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_table(frame: &mut Frame, area: Rect, m: &Model, theme: &Theme) {
    let rows_visible = m.visible();
    let wide = area.width >= 96;
    let mut region_title = m.region_name().unwrap_or("all regions").to_string();
    if !m.filter.is_empty() || m.mode == crate::console::model::Mode::Filter {
        region_title.push_str(&format!("  filter: {}", m.filter));
        if m.mode == crate::console::model::Mode::Filter {
            region_title.push('▏');
        }
    }
    let mut title = format!(" Apps · {region_title} · {} shown ", rows_visible.len());
    if m.sort != crate::console::model::Sort::Inventory {
        title.push_str(&format!("· sort: {} ", m.sort.label()));
    }
    if !m.marked.is_empty() {
        title.push_str(&format!("· {} marked ", m.marked.len()));
    }
    if let Some(r) = &m.risks {
        let n = r.values().filter(|c| !c.is_empty()).count();
        title.push_str(&format!("· preflight: {n} at risk "));
    }
    if wide {
        title.push_str(&format!("· {} ", m.source));
    }

    let mut header = vec!["", "app", "env", "client", "postgres", "state"];
    if wide {
        header.insert(3, "customer");
        header.insert(4, "size");
    }
    // What the table would list (region headers and apps), as indices: cheap for 8,000 apps.
    enum Entry {
        Header(usize),
        App(usize),
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(rows_visible.len() + m.regions.len());
    let mut selected_display = None;
    let mut current_region: Option<&str> = None;
    for (i, r) in rows_visible.iter().enumerate() {
        if current_region != Some(r.region.as_str()) {
            current_region = Some(r.region.as_str());
            entries.push(Entry::Header(i));
        }
        if i == m.selected {
            selected_display = Some(entries.len());
        }
        entries.push(Entry::App(i));
    }
    // Only the rows on screen become widgets: the selection at the bottom edge once it
    // scrolls, as a fresh `TableState` would place it.
    let height = area.height.saturating_sub(3) as usize;
    let offset = selected_display.map_or(0, |s| (s + 1).saturating_sub(height.max(1)));
    let rows: Vec<Row> = entries
        .iter()
        .skip(offset)
        .take(height.max(1))
        .map(|e| match *e {
            Entry::Header(i) => {
                let region = &rows_visible[i].region;
                let n = rows_visible[i..]
                    .iter()
                    .take_while(|x| x.region == *region)
                    .count();
                Row::new(vec![
                    Cell::from(""),
                    Cell::from(Line::from(vec![
                        Span::styled(format!("▾ {region}"), theme.header()),
                        Span::styled(format!(" · {n}"), theme.text_dim()),
                    ])),
                ])
                .style(theme.text_dim())
            }
            Entry::App(i) => app_row(
                rows_visible[i],
                m.marked.contains(&rows_visible[i].name),
                m.risks.as_ref().and_then(|r| r.get(&rows_visible[i].name)),
                theme,
                wide,
            ),
        })
        .collect();
    let selected_display = selected_display.map(|s| s - offset);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(17),
        Constraint::Length(5),
        Constraint::Length(if wide { 22 } else { 9 }),
        Constraint::Length(10),
        Constraint::Min(10),
    ];
    if wide {
        widths.insert(3, Constraint::Length(14));
        widths.insert(4, Constraint::Length(9));
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block(title, theme, true))
        .row_highlight_style(theme.selection())
        .highlight_symbol("▶");
    let mut state = TableState::default().with_selected(selected_display);
    frame.render_stateful_widget(table, area, &mut state);
}

/// A preflight class in a few letters for the table.
fn risk_label(class: &str) -> &str {
    match class {
        "libpq-scram" => "scram",
        "btree-index-row-size" => "btree",
        "extension-missing" => "ext",
        other => other,
    }
}

/// The image's client as the table has room for it: wide, "node-postgres 7.8.2"; narrow,
/// libpq's version alone ("9.6", as the column always read) and other families by a short
/// name, their version left to the app view and the status bar.
fn client_cell(c: Client, wide: bool) -> String {
    match c.family {
        ClientFamily::Libpq => c.to_string(),
        _ if wide => c.to_string(),
        ClientFamily::NodePostgres => "node".into(),
        ClientFamily::Pgjdbc => "jdbc".into(),
        ClientFamily::GoPq => "lib/pq".into(),
        ClientFamily::Pgx => "pgx".into(),
        ClientFamily::Npgsql => "npgsql".into(),
        ClientFamily::Asyncpg => "asyncpg".into(),
    }
}

fn app_row<'a>(
    r: &'a FleetRow,
    marked: bool,
    risks: Option<&Vec<String>>,
    theme: &Theme,
    wide: bool,
) -> Row<'a> {
    let client = client_cell(r.libpq, wide);
    let risk = if r.scram_risk() {
        Span::styled(format!("{client} ⚠"), theme.risk_libpq())
    } else {
        Span::styled(client, theme.text())
    };
    let label = match r.state {
        FleetState::NotCandidate if wide => "not a candidate",
        FleetState::NotCandidate => "n/a",
        FleetState::App(s) => s.as_str(),
    };
    let mut state_text = format!("{} {label}", state_symbol(r.state));
    if r.paused {
        state_text.push_str(" ⏸ paused");
    }
    let flagged = r.state != AppState::Migrated && risks.is_some_and(|c| !c.is_empty());
    if flagged && !wide && r.state == AppState::Pending {
        // Narrow: the symbol says pending; the room goes to what preflight predicts.
        state_text = state_symbol(r.state).to_string();
    }
    let mut state_spans = vec![Span::styled(state_text, theme.state(r.state))];
    if flagged {
        for c in risks.into_iter().flatten() {
            state_spans.push(Span::styled(
                format!(" ⚠ {}", risk_label(c)),
                theme.failure(c),
            ));
        }
    }
    let mut cells = vec![
        Cell::from(if marked {
            Span::styled("◆", theme.key())
        } else {
            Span::styled(if r.candidate { "•" } else { " " }, theme.text_dim())
        }),
        Cell::from(Span::styled(r.name.as_str(), theme.text())),
        Cell::from(Span::styled(r.environment.to_string(), theme.text_dim())),
        Cell::from(risk),
        Cell::from(Span::styled(r.postgres.as_str(), theme.text())),
        Cell::from(Line::from(state_spans)),
    ];
    if wide {
        cells.insert(
            3,
            Cell::from(Span::styled(r.customer.as_str(), theme.text_dim())),
        );
        cells.insert(
            4,
            Cell::from(Span::styled(
                r.size_bytes.map_or_else(|| "—".to_string(), size_label),
                theme.text_dim(),
            )),
        );
    }
    Row::new(cells)
}

/// `147 MB`, `1.2 GB`, `880 kB`: a database's size at a glance.
fn size_label(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}
