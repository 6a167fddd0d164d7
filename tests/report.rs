//! `pgshift report` sums up a night with the model the console's Report view draws: a
//! simulated fleet's night (no lab needed) reported as Markdown and JSON matches the figures
//! the console computes and shows for the same store.

use std::collections::HashMap;
use std::process::Command;

use pgshift::console::action::Action;
use pgshift::console::model::Model;
use pgshift::console::theme::Theme;
use pgshift::console::update::update;
use pgshift::console::views;
use pgshift::inventory::{self, Source};
use pgshift::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn pgshift(state: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgshift"));
    c.env("PGSHIFT_STATE_DIR", state)
        .env("XDG_CONFIG_HOME", state.join("no-config"))
        .env("NO_COLOR", "1")
        .env_remove("PGSHIFT_CONFIG")
        .env_remove("PGSHIFT_INVENTORY")
        .env_remove("PGSHIFT_STORE");
    c
}

fn render(m: &Model, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| views::draw(f, m, &Theme::plain()))
        .expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn report_of_a_sim_night_matches_the_console_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("state");
    let fleet = dir.path().join("fleet.toml");
    let generated = pgshift(&state)
        .args(["sim-fleet", "--apps", "60", "--seed", "11"])
        .output()
        .expect("sim-fleet");
    assert!(generated.status.success());
    std::fs::write(&fleet, &generated.stdout).expect("write fleet");
    let run = |args: &[&str]| {
        pgshift(&state)
            .arg("--inventory")
            .arg(&fleet)
            .args(args)
            .output()
            .expect("pgshift")
    };
    assert!(run(&["plan", "--batch-size", "15"]).status.success());
    let night = run(&["run", "--speed", "0", "--json"]);
    let last = String::from_utf8_lossy(&night.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let done: serde_json::Value = serde_json::from_str(&last).expect("fleet_done");

    let json = run(&["report", "--format", "json"]);
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&json.stdout).expect("report json");
    let md = run(&["report", "--format", "md"]);
    assert!(md.status.success());
    let md = String::from_utf8_lossy(&md.stdout).to_string();

    // The console, on the same store, as it loads and draws it.
    let inv = inventory::load(&Source::File(fleet.clone())).expect("fleet");
    let url = format!("sqlite://{}", state.join("pgshift.db").display());
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (states, night_action) = rt.block_on(async {
        let store = Store::open(&url).await.expect("store");
        (
            store.app_states().await.expect("states"),
            pgshift::console::load::night(&store, true)
                .await
                .expect("night"),
        )
    });
    let states: HashMap<_, _> = states;
    let mut m = Model::new(&inv, &states, "fleet".into(), url.clone());
    update(&mut m, night_action);
    let console = views::report::report(&m);

    // The night happened: some migrated, some failed (the sim fleet's old-libpq apps).
    assert!(console.migrated > 0 && console.failed > 0, "{console:?}");
    assert_eq!(done["report"]["migrated"], console.migrated, "{done}");
    assert_eq!(done["report"]["failed"], console.failed, "{done}");

    // Every figure the console shows is the CLI's.
    let c = serde_json::to_value(&console).expect("json");
    for key in [
        "candidates",
        "migrated",
        "failed",
        "rolled_back",
        "running",
        "databases_moved",
        "success_rate",
        "durations",
        "failures_happened",
        "failures_remaining",
        "regions",
        "downtime",
        "backups",
    ] {
        assert_eq!(cli[key], c[key], "{key}");
    }

    // And the Markdown says what the console's screen says.
    update(&mut m, Action::ShowReport);
    let screen = render(&m, 200, 60);
    let headline = format!(
        "✓ {} migrated of {} candidates",
        console.migrated, console.candidates
    );
    assert!(screen.contains(&headline), "{screen}");
    assert!(
        md.contains(&format!(
            "- migrated: {} of {} candidates",
            console.migrated, console.candidates
        )),
        "{md}"
    );
    let rate = format!("{:.1} %", console.success_rate.expect("rate") * 100.0);
    assert!(screen.contains(&format!("success rate {rate}")), "{screen}");
    assert!(md.contains(&format!("- success rate: {rate}")), "{md}");
    for f in &console.failures_happened {
        assert!(
            md.contains(&format!("| {} | {} |", f.class, f.count)),
            "{md}"
        );
        assert!(screen.contains(&f.class), "{screen}");
    }
    for r in &console.regions {
        assert!(
            md.contains(&format!(
                "| {} | {} | {} | {} |",
                r.name, r.candidates, r.migrated, r.failed
            )),
            "{md}"
        );
    }
    // pgshift's paused interval is reported for the apps it paused.
    let downtime = cli["downtime"].as_array().expect("downtime");
    assert!(!downtime.is_empty(), "{cli}");
    assert!(md.contains("## Downtime per app"));
    // Backups kept, each with its expiry (the built-in runbook keeps them 14 days).
    assert!(console.backups.len() >= console.migrated, "{console:?}");
    for b in &console.backups {
        let expires = b.expires_at.as_deref().expect("an expiry");
        assert!(
            md.contains(&format!(
                "| {} | {:.1} MB | {} | {expires} |",
                b.app,
                b.size_bytes as f64 / 1e6,
                b.taken_at
            )),
            "{md}"
        );
    }
}
