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
    let mut m = Model::new(
        &inv,
        states,
        "fixtures/fleet.toml (built-in lab fleet)".into(),
        "sqlite:///state/pgshift.db".into(),
    );
    // Sizes as the console measures them on the lab (tracker-live is the big one).
    m.set_sizes(
        &inv.apps
            .iter()
            .filter(|a| {
                a.services
                    .iter()
                    .any(|s| s.provisioned && s.database.is_some())
            })
            .map(|a| {
                let b = if a.name == "tracker-live" {
                    154_000_000
                } else {
                    8_000_000 + a.name.len() as u64 * 300_000
                };
                (a.name.clone(), b)
            })
            .collect(),
    );
    m
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
            state: s.parse().expect("a stored app state"),
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
    // A driver that is not libpq is named whole, and its SCRAM risk is flagged like libpq's.
    assert!(screen.contains("node-postgres 7.8.2 ⚠"), "{screen}");
    assert!(screen.contains("node-postgres 8.16.3 "), "{screen}");
    assert!(!screen.contains("node-postgres 8.16.3 ⚠"), "{screen}");
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
    assert_eq!(m.visible().len(), 33);
    update(&mut m, Action::Bottom);
    // The fleet's last app (club-live, added for issue 13, is the last in de-fra).
    assert_eq!(m.selected_row().map(|r| r.name.as_str()), Some("club-live"));
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

// ---- the other views, with fabricated but realistic store data ----

use pgshift::console::data::{ChildMsg, Data, FailureItem, FailureLog, Night, StepView};
use pgshift::console::effect::{Command, Effect};
use pgshift::console::logbuf::LogLine;
use pgshift::console::model::View;
use pgshift::diagnose;
use pgshift::plan::{Batch, Plan};
use pgshift::store::{AppRunSpan, RunningStep};

/// forum-live's restore log as the lab prints it, the btree failure near the end.
fn forum_restore_log() -> Vec<String> {
    let mut v: Vec<String> = (0..70)
        .map(|i| {
            format!(
                "pg_restore: processing item {} TABLE DATA redirects_{i}",
                3400 + i
            )
        })
        .collect();
    v.extend(
        [
            "pg_restore: creating INDEX \"public.redirects_source_idx\"",
            "pg_restore: while PROCESSING TOC:",
            "pg_restore: from TOC entry 3234; 1259 16437 INDEX redirects_source_idx forum_live",
            "pg_restore: error: could not execute query: ERROR:  index row size 3696 exceeds btree version 4 maximum 2704 for index \"redirects_source_idx\"",
            "DETAIL:  Index row references tuple (2,7) in relation \"redirects\".",
            "HINT:  Values larger than 1/3 of a buffer page cannot be indexed.",
            "Consider a function index of an MD5 hash of the value, or use full text indexing.",
            "Command was: CREATE INDEX redirects_source_idx ON public.redirects USING btree (source_url);",
            "pg_restore: warning: errors ignored on restore: 1",
        ]
        .map(String::from),
    );
    v
}

fn btree_failure() -> (FailureItem, FailureLog) {
    let lines = forum_restore_log();
    let f = diagnose::diagnose(&lines);
    assert_eq!(f.class, "btree-index-row-size");
    let item = FailureItem {
        id: 7,
        run_id: 12,
        step_id: Some(120),
        step: Some("restore".into()),
        app: "forum-live".into(),
        region: "ch-zrh".into(),
        class: f.class.into(),
        explanation: f.explanation.into(),
        matched: f.matched.clone(),
        remediations: f
            .remediations
            .iter()
            .map(|r| (r.id, r.description.to_string()))
            .collect(),
    };
    (
        item,
        FailureLog {
            failure_id: 7,
            lines,
        },
    )
}

fn scram_failure() -> FailureItem {
    let lines: Vec<String> = [
        "redeploying ledger-live (image libpq 9.6)",
        "Traceback (most recent call last):",
        "psycopg2.OperationalError: SCRAM authentication requires libpq version 10 or above",
        "unable to load app 0 (mountpoint='') (callable not found or import error)",
        "*** no app loaded. going in full dynamic mode ***",
    ]
    .map(String::from)
    .to_vec();
    let f = diagnose::diagnose(&lines);
    FailureItem {
        id: 8,
        run_id: 13,
        step_id: Some(131),
        step: Some("redeploy".into()),
        app: "ledger-live".into(),
        region: "ch-gva".into(),
        class: f.class.into(),
        explanation: f.explanation.into(),
        matched: f.matched,
        remediations: f
            .remediations
            .iter()
            .map(|r| (r.id, r.description.to_string()))
            .collect(),
    }
}

fn triage_model() -> Model {
    let states: HashMap<_, _> = [
        state("forum-live", "failed", false),
        state("ledger-live", "failed", false),
    ]
    .into_iter()
    .collect();
    let mut m = model(&states);
    update(&mut m, Action::ShowFailures);
    let (btree, log) = btree_failure();
    update(
        &mut m,
        Action::Data(Data::Failures(vec![scram_failure(), btree])),
    );
    update(&mut m, Action::Data(Data::FailureLog(log)));
    m
}

#[test]
fn triage_highlights_exactly_the_matched_span_inside_the_step_log() {
    let m = triage_model();
    assert_eq!(
        m.selected_failure().map(|f| f.app.as_str()),
        Some("forum-live"),
        "grouped by class: btree-index-row-size sorts before libpq-scram"
    );
    let small = render(&m, 80, 24);
    let large = render(&m, 250, 70);
    for s in [&small, &large] {
        assert!(s.contains("✗ btree-index-row-size"), "{s}");
        assert!(
            s.contains("▶ pg_restore: error"),
            "the matched line is marked: {s}"
        );
        assert!(s.contains("› pglz-restore"), "first remedy chosen: {s}");
    }
    assert!(large.contains("line 74 of 79"), "{large}");
    insta::assert_snapshot!("triage_80x24", small);
    insta::assert_snapshot!("triage_250x70", large);

    // The span is styled: exactly the bytes the diagnosis matched, and nothing around it.
    let mut t = Terminal::new(TestBackend::new(250, 70)).expect("terminal");
    let theme = Theme::plain();
    t.draw(|f| views::draw(f, &m, &theme)).expect("draw");
    let buf = t.backend().buffer().clone();
    let want = "index row size 3696 exceeds btree version 4 maximum 2704 for index \"redirects_source_idx\"";
    let hl = theme.matched();
    let mut found = false;
    for y in 0..70 {
        let row: String = (0..250).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(col) = row.find("▶ pg_restore") {
            let cells: Vec<_> = (0..250).map(|x| buf[(x, y)].clone()).collect();
            let styled: String = cells
                .iter()
                .filter(|c| c.modifier.contains(hl.add_modifier))
                .map(|c| c.symbol().to_string())
                .collect();
            assert_eq!(styled, want, "row {y} col {col}");
            found = true;
        }
    }
    assert!(found, "the matched line is on screen");
}

#[test]
fn triage_retry_is_confirmed_then_runs_the_chosen_remedy_and_watches_the_app() {
    let mut m = triage_model();
    update(&mut m, Action::NextRemediation);
    update(&mut m, Action::NextRemediation);
    assert_eq!(m.remediation_sel, 0, "two remedies to retry with: wraps");
    update(&mut m, Action::Retry);
    assert_eq!(m.mode, Mode::Confirm);
    assert!(
        m.effects.iter().all(|e| !matches!(e, Effect::Run(_))),
        "nothing runs before yes"
    );
    insta::assert_snapshot!("confirm_retry_80x24", render(&m, 80, 24));
    insta::assert_snapshot!("confirm_retry_250x70", render(&m, 250, 70));
    update(&mut m, Action::Confirm);
    let want = Command::Retry {
        app: "forum-live".into(),
        remediation: pgshift::diagnose::RemediationId::PglzRestore,
    };
    assert!(m.effects.contains(&Effect::Run(want)), "{:?}", m.effects);
    assert_eq!(m.view, View::App, "the retried app is watched");
    assert!(m.effects.contains(&Effect::WatchApp("forum-live".into())));
}

#[test]
fn no_means_nothing_runs_and_readonly_refuses_with_a_visible_message() {
    let mut m = triage_model();
    update(&mut m, Action::Rollback);
    update(&mut m, Action::Back);
    assert!(m.confirm.is_none());
    assert!(!m.effects.iter().any(|e| matches!(e, Effect::Run(_))));

    let mut m = triage_model();
    m.readonly = true;
    for a in [Action::Retry, Action::Rollback, Action::MarkManual] {
        update(&mut m, a);
        assert_ne!(m.mode, Mode::Confirm);
    }
    update(
        &mut m,
        Action::ConfirmedAction(Command::Migrate {
            app: "shop-live".into(),
        }),
    );
    assert!(!m.effects.iter().any(|e| matches!(e, Effect::Run(_))));
    let screen = render(&m, 80, 24);
    assert!(screen.contains("read-only: refused"), "{screen}");
    assert!(screen.contains("READ-ONLY"), "{screen}");
}

fn log_line(id: i64, step: &str, text: &str) -> LogLine {
    LogLine {
        id,
        step: step.into(),
        stream: if step == "restore" {
            "stderr"
        } else {
            "pgshift"
        }
        .into(),
        text: text.into(),
    }
}

fn migrating_model() -> Model {
    let states: HashMap<_, _> = [state("shop-live", "running", true)].into_iter().collect();
    let mut m = model(&states);
    update(&mut m, Action::StartFilter);
    for c in "shop-live".chars() {
        update(&mut m, Action::FilterInput(c));
    }
    update(&mut m, Action::ApplyFilter);
    update(&mut m, Action::Migrate);
    update(&mut m, Action::Confirm);
    let steps = [
        ("collect", "done", Some(0.01)),
        ("reprovision", "done", Some(0.09)),
        ("pause", "done", Some(0.0)),
        ("backup", "done", Some(1.1)),
        ("restore", "running", Some(0.6)),
        ("verify", "pending", None),
        ("enable", "pending", None),
        ("unpause", "pending", None),
        ("redeploy", "pending", None),
        ("schedule_deprovision", "pending", None),
    ]
    .map(|(o, s, t)| StepView {
        operation: o.into(),
        state: s.parse().expect("a step state"),
        seconds: t,
    })
    .to_vec();
    let lines = vec![
        log_line(
            1,
            "collect",
            "collected shop-live-db (postgresql-database-13): database shop_live, role shop_live on server pg13",
        ),
        log_line(
            2,
            "reprovision",
            "provisioned shop-live-db-15 (postgresql-database-15) on server pg15",
        ),
        log_line(3, "pause", "shop-live is behind its maintenance page"),
        log_line(
            4,
            "backup",
            "pg_dump of shop_live on server pg13 (directory format, 2 jobs)",
        ),
        log_line(5, "restore", "pg_restore: creating TABLE \"public.orders\""),
        log_line(
            6,
            "restore",
            "pg_restore: processing data for table \"public.orders\"",
        ),
    ];
    update(
        &mut m,
        Action::Data(Data::App {
            app: "shop-live".into(),
            run_id: Some(3),
            steps,
            lines,
        }),
    );
    m
}

#[test]
fn single_app_migration_is_confirmed_and_its_steps_and_log_stream_in() {
    let m = migrating_model();
    assert_eq!(m.view, View::App);
    assert!(m.effects.contains(&Effect::Run(Command::Migrate {
        app: "shop-live".into()
    })));
    let small = render(&m, 80, 24);
    assert!(small.contains("⟳ restore"), "{small}");
    assert!(small.contains("processing data for table"), "{small}");
    insta::assert_snapshot!("app_80x24", small);
    insta::assert_snapshot!("app_250x70", render(&m, 250, 70));
}

#[test]
fn the_log_follows_new_lines_scrolls_searches_and_a_new_run_starts_afresh() {
    let mut m = migrating_model();
    let w = m.watch.as_ref().expect("watched");
    assert_eq!(w.log.len(), 6);
    let more: Vec<_> = (7..200)
        .map(|i| log_line(i, "restore", &format!("pg_restore: item {i}")))
        .collect();
    let steps = w.steps.clone();
    update(
        &mut m,
        Action::Data(Data::App {
            app: "shop-live".into(),
            run_id: Some(3),
            steps: steps.clone(),
            lines: more,
        }),
    );
    let screen = render(&m, 80, 24);
    assert!(screen.contains("pg_restore: item 199"), "follows: {screen}");
    update(&mut m, Action::PageUp);
    let screen = render(&m, 80, 24);
    assert!(!screen.contains("item 199"), "scrolled up: {screen}");
    assert!(screen.contains("follow off"), "{screen}");
    update(&mut m, Action::SearchLog);
    for c in "item 42".chars() {
        update(&mut m, Action::FilterInput(c));
    }
    update(&mut m, Action::ApplyFilter);
    let screen = render(&m, 80, 24);
    assert!(screen.contains("▶restore  pg_restore: item 42"), "{screen}");
    update(&mut m, Action::SaveLog);
    assert!(matches!(m.effects.last(), Some(Effect::SaveLog { lines, .. }) if lines.len() == 199));
    // A retry is a new run: its log replaces the old one.
    update(
        &mut m,
        Action::Data(Data::App {
            app: "shop-live".into(),
            run_id: Some(4),
            steps,
            lines: vec![log_line(500, "collect", "collected again")],
        }),
    );
    assert_eq!(m.watch.as_ref().map(|w| w.log.len()), Some(1));
}

#[test]
fn child_outcomes_reach_the_message_line() {
    let mut m = migrating_model();
    update(
        &mut m,
        Action::Child(ChildMsg::Started(Command::Migrate {
            app: "shop-live".into(),
        })),
    );
    let s = render(&m, 80, 24);
    assert!(s.contains("⟳ migrate shop-live now"), "{s}");
    update(
        &mut m,
        Action::Child(ChildMsg::Event(pgshift::engine::Event::Done {
            run_id: 1,
            app: "shop-live".into(),
            outcome: pgshift::domain::AppState::Migrated,
        })),
    );
    update(
        &mut m,
        Action::Child(ChildMsg::Exited {
            cmd: Command::Migrate {
                app: "shop-live".into(),
            },
            ok: true,
            last_line: String::new(),
        }),
    );
    let s = render(&m, 80, 24);
    assert!(s.contains("✓ shop-live: migrated"), "{s}");
    update(
        &mut m,
        Action::Child(ChildMsg::Exited {
            cmd: Command::RegionPause {
                region: "ch-zrh".into(),
            },
            ok: false,
            last_line: "error: unrecognized subcommand 'region'".into(),
        }),
    );
    let s = render(&m, 80, 24);
    assert!(
        s.contains("✗ Pause region ch-zrh: error: unrecognized subcommand"),
        "{s}"
    );
}

fn night_plan() -> Plan {
    let batch =
        |region: &str, index: usize, canary: bool, est: f64, ends: f64, apps: &[&str]| Batch {
            region: region.into(),
            index,
            canary,
            estimated_seconds: est,
            ends_after_seconds: ends,
            fits_window: ends <= 14400.0,
            apps: apps.iter().map(|a| a.to_string()).collect(),
        };
    Plan {
        seed: 1,
        batch_size: 4,
        canary: 2,
        window_seconds: 14400,
        batches: vec![
            batch(
                "ch-zrh",
                0,
                true,
                120.0,
                120.0,
                &["recipes-live", "wiki-stage"],
            ),
            batch(
                "ch-zrh",
                1,
                false,
                900.0,
                1020.0,
                &["shop-live", "forum-live", "tracker-live", "wiki-live"],
            ),
            batch(
                "ch-gva",
                0,
                true,
                90.0,
                90.0,
                &["school-stage", "shop-stage"],
            ),
            batch(
                "ch-gva",
                1,
                false,
                600.0,
                690.0,
                &["ledger-live", "clinic-live", "clinic-stage"],
            ),
            batch("de-fra", 0, true, 60.0, 60.0, &["newsletter-live"]),
        ],
        excluded: vec![],
    }
}

fn span(
    run: i64,
    app: &str,
    region: &str,
    start: &str,
    end: Option<&str>,
    failed: i64,
) -> AppRunSpan {
    AppRunSpan {
        run_id: run,
        app: app.into(),
        region: region.into(),
        started_at: Some(start.into()),
        finished_at: end.map(String::from),
        failed,
        unfinished: i64::from(end.is_none()),
    }
}

fn night_model() -> Model {
    let states: HashMap<_, _> = [
        state("recipes-live", "migrated", false),
        state("wiki-stage", "migrated", false),
        state("shop-live", "migrated", false),
        state("forum-live", "failed", false),
        state("tracker-live", "running", true),
        state("school-stage", "migrated", false),
        state("shop-stage", "running", true),
    ]
    .into_iter()
    .collect();
    let mut m = model(&states);
    let night = Night {
        downtime: Vec::new(),
        backups: Vec::new(),
        // A prober asks two of the running apps: one behind its page, one serving again.
        answers: vec![
            ("tracker-live".into(), "503".into()),
            ("shop-stage".into(), "200".into()),
        ],
        controls: vec![("ch-gva".into(), "pause".into())],
        plan: Some(night_plan()),
        plan_params: r#"{"seed":1,"batch_size":4,"canary":2,"window_seconds":14400}"#.into(),
        plan_created_at: Some("2026-11-24T22:30:00.000Z".into()),
        running: vec![
            RunningStep {
                app: "tracker-live".into(),
                region: "ch-zrh".into(),
                operation: "restore".into(),
                seq: 4,
                started_at: Some("2026-11-24T23:10:00.000Z".into()),
            },
            RunningStep {
                app: "shop-stage".into(),
                region: "ch-gva".into(),
                operation: "backup".into(),
                seq: 3,
                started_at: Some("2026-11-24T23:11:30.000Z".into()),
            },
        ],
        spans: vec![
            span(
                20,
                "recipes-live",
                "ch-zrh",
                "2026-11-24T23:00:00.000Z",
                Some("2026-11-24T23:00:42.000Z"),
                0,
            ),
            span(
                20,
                "wiki-stage",
                "ch-zrh",
                "2026-11-24T23:00:00.000Z",
                Some("2026-11-24T23:00:18.500Z"),
                0,
            ),
            span(
                20,
                "shop-live",
                "ch-zrh",
                "2026-11-24T23:01:00.000Z",
                Some("2026-11-24T23:04:10.000Z"),
                0,
            ),
            span(
                20,
                "forum-live",
                "ch-zrh",
                "2026-11-24T23:01:00.000Z",
                Some("2026-11-24T23:01:09.000Z"),
                1,
            ),
            span(
                20,
                "tracker-live",
                "ch-zrh",
                "2026-11-24T23:04:10.000Z",
                None,
                0,
            ),
            span(
                20,
                "school-stage",
                "ch-gva",
                "2026-11-24T23:00:00.000Z",
                Some("2026-11-24T23:00:07.000Z"),
                0,
            ),
            span(
                20,
                "shop-stage",
                "ch-gva",
                "2026-11-24T23:00:07.000Z",
                None,
                0,
            ),
        ],
        failures_by_class: vec![
            ("btree-index-row-size".into(), 1),
            ("libpq-scram".into(), 2),
        ],
        open_failures_by_class: vec![("libpq-scram".into(), 1)],
        spans_read: true,
        span_times: vec![],
        now: "2026-11-24T23:12:00.000Z".into(),
    };
    update(&mut m, Action::Data(Data::Night(Box::new(night))));
    m
}

#[test]
fn run_view_shows_lanes_with_eta_and_the_running_apps() {
    let mut m = night_model();
    update(&mut m, Action::ShowRun);
    assert!(m.effects.contains(&Effect::LoadRun));
    // The log pane follows the selected region's first running app.
    assert!(m.effects.contains(&Effect::WatchApp("tracker-live".into())));
    update(
        &mut m,
        Action::Data(Data::App {
            app: "tracker-live".into(),
            run_id: Some(20),
            steps: vec![],
            lines: vec![
                log_line(
                    900,
                    "restore",
                    "pg_restore: processing data for table \"public.trips\"",
                ),
                log_line(
                    901,
                    "restore",
                    "pg_restore: processing data for table \"public.points\"",
                ),
            ],
        }),
    );
    let lanes = views::lanes(&m);
    let zrh = &lanes[0];
    assert_eq!(
        (zrh.planned, zrh.migrated, zrh.failed, zrh.running),
        (6, 3, 1, 1)
    );
    // 2 of ch-zrh's 6 apps left, 225 s of estimate each. Busy 702 s (23:00:00–23:00:42, then
    // 23:01:00 until now, 23:12:00: the gap between counts for nothing) for 570 s estimated.
    assert!((zrh.left - 450.0).abs() < 1e-6, "{zrh:?}");
    assert_eq!(zrh.elapsed, Some(702.0));
    assert!((zrh.eta - 450.0 * 702.0 / 570.0).abs() < 1e-6, "{zrh:?}");
    // A pass from before the plan (another night) is not this night's time.
    let mut earlier = m.night.clone();
    earlier.spans.push(span(
        5,
        "wiki-live",
        "ch-zrh",
        "2026-11-24T20:00:00.000Z",
        Some("2026-11-24T20:05:00.000Z"),
        0,
    ));
    let mut m2 = night_model();
    update(&mut m2, Action::Data(Data::Night(Box::new(earlier))));
    assert_eq!(views::lanes(&m2)[0].elapsed, Some(702.0));
    // A quick read (no spans) keeps the last spans rather than forgetting the night.
    let quick = Night {
        answers: vec![],
        spans: vec![],
        spans_read: false,
        ..m2.night.clone()
    };
    update(&mut m2, Action::Data(Data::Night(Box::new(quick))));
    assert_eq!(views::lanes(&m2)[0].elapsed, Some(702.0));
    let small = render(&m, 80, 24);
    assert!(
        small.contains("tracker-live") && small.contains("restore (step 5)"),
        "{small}"
    );
    insta::assert_snapshot!("run_80x24", small);
    let large = render(&m, 250, 70);
    assert!(
        large.contains("Log · tracker-live") && large.contains("public.points"),
        "{large}"
    );
    insta::assert_snapshot!("run_250x70", large);

    // de-fra: its one app running for a minute, nothing finished: no pace yet, the plan's
    // estimate stands (a pace from 'estimate done' of 0 ± rounding promised centuries).
    let mut busy = m.night.clone();
    busy.spans.push(span(
        21,
        "newsletter-live",
        "de-fra",
        "2026-11-24T23:11:00.000Z",
        None,
        0,
    ));
    let mut m3 = night_model();
    update(
        &mut m3,
        Action::States(
            [state("newsletter-live", "running", true)]
                .into_iter()
                .collect(),
        ),
    );
    update(&mut m3, Action::Data(Data::Night(Box::new(busy))));
    let fra = &views::lanes(&m3)[2];
    assert_eq!(fra.elapsed, Some(60.0));
    assert_eq!((fra.running, fra.eta), (1, fra.left));
    update(&mut m, Action::MoveDown);
    assert!(
        m.effects.contains(&Effect::WatchApp("shop-stage".into())),
        "ch-gva's running app is watched once its lane is selected"
    );
    update(&mut m, Action::PauseRegion);
    assert_eq!(
        m.confirm,
        Some(Command::RegionPause {
            region: "ch-gva".into()
        })
    );
    update(&mut m, Action::Confirm);
    assert!(m.effects.contains(&Effect::Run(Command::RegionPause {
        region: "ch-gva".into()
    })));
}

#[test]
fn plan_view_shows_batches_against_the_window_and_starts_one_when_confirmed() {
    let mut m = night_model();
    update(&mut m, Action::ShowPlan);
    let small = render(&m, 80, 24);
    assert!(small.contains("0 ★"), "canary marked: {small}");
    insta::assert_snapshot!("plan_80x24", small);
    insta::assert_snapshot!("plan_250x70", render(&m, 250, 70));
    update(&mut m, Action::MoveDown);
    update(&mut m, Action::StartBatch);
    update(&mut m, Action::Confirm);
    assert!(
        m.effects
            .contains(&Effect::Run(Command::RunBatch { batch: 1 }))
    );
    update(&mut m, Action::NewSeed);
    match &m.confirm {
        Some(Command::Replan(p)) => assert_eq!((p.seed, p.batch_size), (2, 4)),
        other => panic!("{other:?}"),
    }
    update(&mut m, Action::Back);
    update(&mut m, Action::NextApp);
    update(&mut m, Action::ExcludeApp);
    match &m.confirm {
        Some(Command::Replan(p)) => assert_eq!(p.exclude, ["forum-live"], "the chosen app"),
        other => panic!("{other:?}"),
    }
    update(&mut m, Action::Back);
}

#[test]
fn plan_edits_move_apps_and_the_canary_and_are_saved_only_when_confirmed() {
    let mut m = night_model();
    update(&mut m, Action::ShowPlan);
    update(&mut m, Action::MoveDown);
    update(&mut m, Action::NextApp);
    update(&mut m, Action::MoveEarlier);
    let plan = m.night.plan.clone().expect("plan");
    assert_eq!(
        plan.batches[0].apps,
        ["recipes-live", "wiki-stage", "forum-live"]
    );
    assert_eq!(
        (m.night_sel, m.plan_app),
        (0, 2),
        "the moved app stays chosen"
    );
    assert!(m.plan_edited);
    update(&mut m, Action::MoveDown);
    update(&mut m, Action::MoveDown);
    update(&mut m, Action::ToggleCanary);
    update(&mut m, Action::ToggleCanary);
    update(&mut m, Action::StartBatch);
    assert!(m.confirm.is_none(), "no batch starts from an unsaved plan");
    // A refresh from the store must not throw the edits away.
    let stored = Night {
        answers: vec![],
        plan: Some(night_plan()),
        ..m.night.clone()
    };
    update(&mut m, Action::Data(Data::Night(Box::new(stored))));
    assert_eq!(
        m.night.plan.as_ref().map(|p| p.batches[0].apps.len()),
        Some(3)
    );
    insta::assert_snapshot!("plan_edited_80x24", render(&m, 80, 24));
    update(&mut m, Action::SavePlan);
    assert!(matches!(m.confirm, Some(Command::SavePlan { .. })));
    update(&mut m, Action::Confirm);
    let saved = m.effects.iter().find_map(|e| match e {
        Effect::Run(Command::SavePlan { plan, params }) => Some((plan.clone(), params.clone())),
        _ => None,
    });
    let (plan, params) = saved.expect("a save");
    assert!(params.contains("\"seed\":1"));
    assert_eq!(plan.batches[0].apps.len(), 3);
}

#[test]
fn report_sums_up_the_night() {
    let mut m = night_model();
    update(&mut m, Action::ShowReport);
    let small = render(&m, 80, 24);
    // 4 migrated, 1 failed: 80 % of what finished.
    assert!(small.contains("✓ 4 migrated of 28 candidates"), "{small}");
    assert!(small.contains("80.0 %"), "{small}");
    assert!(small.contains("libpq-scram"), "{small}");
    insta::assert_snapshot!("report_80x24", small);
    insta::assert_snapshot!("report_250x70", render(&m, 250, 70));
}

#[test]
fn palette_opens_views_and_asks_before_changing_anything() {
    let mut m = model(&HashMap::new());
    update(&mut m, Action::OpenPalette);
    for c in "migrate forum-live".chars() {
        update(&mut m, Action::FilterInput(c));
    }
    insta::assert_snapshot!("palette_80x24", render(&m, 80, 24));
    insta::assert_snapshot!("palette_250x70", render(&m, 250, 70));
    update(&mut m, Action::ApplyFilter);
    assert_eq!(
        m.confirm,
        Some(Command::Migrate {
            app: "forum-live".into()
        })
    );
    update(&mut m, Action::Back);
    update(&mut m, Action::OpenPalette);
    for c in "bogus".chars() {
        update(&mut m, Action::FilterInput(c));
    }
    update(&mut m, Action::ApplyFilter);
    assert!(
        m.message
            .as_ref()
            .is_some_and(|x| x.error && x.text.contains("unknown command"))
    );
}

#[test]
fn help_in_each_view_lists_that_views_keys() {
    let mut m = triage_model();
    update(&mut m, Action::ToggleHelp);
    let s = render(&m, 80, 24);
    assert!(s.contains("retry") && s.contains("Keys · Failures"), "{s}");
    insta::assert_snapshot!("help_failures_250x70", render(&m, 250, 70));
    let mut m = migrating_model();
    update(&mut m, Action::ToggleHelp);
    let s = render(&m, 80, 24);
    assert!(s.contains("Keys · App") && s.contains("follow"), "{s}");
    insta::assert_snapshot!("help_app_80x24", s);
}

#[test]
fn the_selection_stays_on_screen_when_the_table_scrolls() {
    let mut m = model(&HashMap::new());
    update(&mut m, Action::Bottom);
    let s = render(&m, 80, 24);
    assert!(s.contains("▶• club-live"), "{s}");
    assert!(!s.contains("shop-live"), "scrolled past the top: {s}");
    update(&mut m, Action::Top);
    assert!(render(&m, 80, 24).contains("▶• shop-live"));
}

#[test]
fn marked_apps_migrate_together_after_one_confirmation_and_sort_reorders_within_regions() {
    let mut m = model(&HashMap::new());
    update(&mut m, Action::CycleSort);
    update(&mut m, Action::CycleSort);
    update(&mut m, Action::CycleSort);
    let first: Vec<_> = m.visible().iter().take(3).map(|r| r.name.clone()).collect();
    assert_eq!(
        first[0], "ledger-live",
        "risk sort: libpq 9.x first in ch-zrh: {first:?}"
    );
    update(&mut m, Action::ToggleMark);
    update(&mut m, Action::ToggleMark);
    let s = render(&m, 80, 24);
    assert!(s.contains("sort: risk · 2 marked"), "{s}");
    assert!(s.contains("◆ ledger-live"), "{s}");
    insta::assert_snapshot!("fleet_marked_250x70", render(&m, 250, 70));
    update(&mut m, Action::Migrate);
    let Some(Command::MigrateMany { apps }) = m.confirm.clone() else {
        panic!("{:?}", m.confirm);
    };
    assert_eq!(apps.len(), 2);
    assert_eq!(Command::MigrateMany { apps: apps.clone() }.runs().len(), 2);
    update(&mut m, Action::Confirm);
    assert!(m.marked.is_empty());
    assert!(
        m.effects
            .contains(&Effect::Run(Command::MigrateMany { apps }))
    );
}

#[test]
fn brackets_jump_the_log_to_a_steps_first_line() {
    let mut m = migrating_model();
    update(&mut m, Action::PrevStep);
    update(&mut m, Action::PrevStep);
    update(&mut m, Action::PrevStep);
    update(&mut m, Action::PrevStep);
    update(&mut m, Action::PrevStep);
    update(&mut m, Action::PrevStep);
    let w = m.watch.as_ref().expect("watched");
    assert_eq!(w.step_sel, Some(4), "restore, the 5th step");
    assert_eq!(w.log.top, 4, "restore's first line");
    assert!(!w.log.follow);
    let s = render(&m, 80, 24);
    assert!(s.contains("▶⟳ restore"), "{s}");
}

#[test]
fn preflight_findings_flag_apps_in_the_fleet_table() {
    let mut m = model(&HashMap::new());
    update(&mut m, Action::Preflight);
    assert_eq!(m.effects, [Effect::Preflight]);
    let found = vec![
        (
            "forum-live".to_string(),
            vec!["btree-index-row-size".to_string()],
        ),
        ("ledger-live".to_string(), vec!["libpq-scram".to_string()]),
        ("shop-live".to_string(), vec![]),
    ];
    update(&mut m, Action::PreflightDone(Ok(found)));
    let s = render(&m, 80, 24);
    assert!(s.contains("preflight: 2 at risk"), "{s}");
    assert!(
        s.contains("forum-live      live  11.20     13         · ⚠ btree"),
        "{s}"
    );
    insta::assert_snapshot!("fleet_preflight_80x24", s);
    let s = render(&m, 250, 70);
    assert!(s.contains("· pending ⚠ btree"), "{s}");
    insta::assert_snapshot!("fleet_preflight_250x70", s);
}
