//! The console's views, rendered into a `TestBackend` at the smallest and a large terminal,
//! and its pure `update`.

use std::collections::HashMap;

use pgshift::console::action::Action;
use pgshift::console::model::{Mode, Model};
use pgshift::console::theme::Theme;
use pgshift::console::update::update;
use pgshift::console::views;
use pgshift::inventory::{self, Source};
use pgshift::store::AppState;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn model(states: &HashMap<String, AppState>) -> Model {
    let inv = inventory::load(&Source::BuiltinLab).expect("lab fleet");
    Model::new(
        &inv,
        states,
        "fixtures/fleet.toml (built-in lab fleet)".into(),
        "sqlite:///state/pgshift.db".into(),
    )
}

fn render(m: &Model, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| views::draw(f, m, &Theme::plain()))
        .expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn state(name: &str, s: &str, paused: bool) -> (String, AppState) {
    (
        name.to_string(),
        AppState {
            name: name.into(),
            state: s.into(),
            paused,
            current_service: None,
            needs_rebuild: false,
        },
    )
}

#[test]
fn fleet_view_groups_apps_by_region_at_80x24() {
    let m = model(&HashMap::new());
    let screen = render(&m, 80, 24);
    insta::assert_snapshot!(screen);
    assert!(screen.contains("▾ ch-zrh"));
}

#[test]
fn fleet_view_at_250x70_shows_every_app_and_customer() {
    let states: HashMap<_, _> = [
        state("shop-live", "migrated", false),
        state("forum-live", "failed", false),
        state("wiki-live", "running", true),
    ]
    .into_iter()
    .collect();
    let m = model(&states);
    let screen = render(&m, 250, 70);
    insta::assert_snapshot!(screen);
    for app in ["shop-live", "analytics-live", "clinic-stage"] {
        assert!(screen.contains(app), "{app} missing");
    }
    assert!(screen.contains("✓ migrated"));
    assert!(screen.contains("✗ failed"));
    assert!(screen.contains("⟳ running ⏸ paused"));
    assert!(
        screen.contains("helvetia-bank"),
        "customer column at wide sizes"
    );
}

#[test]
fn filter_and_region_views_render_at_both_sizes() {
    let mut m = model(&HashMap::new());
    for a in [
        Action::StartFilter,
        Action::FilterInput('c'),
        Action::FilterInput('l'),
        Action::FilterInput('i'),
    ] {
        update(&mut m, a);
    }
    insta::assert_snapshot!("filter_80x24", render(&m, 80, 24));
    update(&mut m, Action::ApplyFilter);
    update(&mut m, Action::Back);
    update(&mut m, Action::NextRegion);
    update(&mut m, Action::NextRegion);
    insta::assert_snapshot!("region_ch_gva_250x70", render(&m, 250, 70));
}

#[test]
fn help_popup_renders_from_the_keymap_at_both_sizes() {
    let mut m = model(&HashMap::new());
    update(&mut m, Action::ToggleHelp);
    assert_eq!(m.mode, Mode::Help);
    let small = render(&m, 80, 24);
    assert!(small.contains("tab/l/right"), "{small}");
    insta::assert_snapshot!("help_80x24", small);
    insta::assert_snapshot!("help_250x70", render(&m, 250, 70));
}

#[test]
fn update_filters_selects_and_quits() {
    let mut m = model(&HashMap::new());
    assert_eq!(m.visible().len(), 28);
    update(&mut m, Action::Bottom);
    assert_eq!(
        m.selected_row().map(|r| r.name.as_str()),
        Some("analytics-live")
    );
    update(&mut m, Action::StartFilter);
    for c in "clinic".chars() {
        update(&mut m, Action::FilterInput(c));
    }
    let names: Vec<_> = m.visible().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, ["clinic-live", "clinic-stage"]);
    assert_eq!(m.selected, 0, "filtering resets the selection");
    update(&mut m, Action::Back);
    assert!(
        m.filter.is_empty() && !m.quit,
        "esc in the filter clears it"
    );
    update(&mut m, Action::NextRegion);
    assert_eq!(m.region_name(), Some("ch-zrh"));
    assert!(m.visible().iter().all(|r| r.region == "ch-zrh"));
    update(&mut m, Action::PrevRegion);
    update(&mut m, Action::PrevRegion);
    assert_eq!(m.region_name(), Some("de-fra"), "wraps around");
    update(&mut m, Action::MoveUp);
    assert_eq!(m.selected, 0, "never above the top");
    update(&mut m, Action::Back);
    assert!(m.quit);
}

#[test]
fn store_states_change_rows_and_counts() {
    let mut m = model(&HashMap::new());
    let states: HashMap<_, _> = [state("ledger-live", "failed", false)]
        .into_iter()
        .collect();
    assert!(update(&mut m, Action::States(states.clone())));
    assert_eq!(m.region_counts()[0].failed, 1);
    assert!(
        !update(&mut m, Action::States(states)),
        "same states: nothing to redraw"
    );
}
