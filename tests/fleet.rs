//! The fleet: a seeded, reproducible plan that spreads customers and big databases, with a
//! canary first; a real run of the whole fixture fleet on its own lab; a sim rehearsal.

#[path = "support/lab.rs"]
mod support;

use std::collections::{HashMap, HashSet};

use pgshift::inventory::{self, Source};
use pgshift::plan::{PlanParams, plan};
use pgshift::platform::sim_fleet;
use pgshift::runbook::{Runbook, Throughput};

fn params(seed: u64) -> PlanParams {
    PlanParams {
        seed,
        batch_size: 25,
        canary: 3,
        window_seconds: 4 * 3600,
        regions: Vec::new(),
    }
}

fn sim_fleet(apps: usize) -> inventory::Inventory {
    inventory::parse(
        &sim_fleet::generate(apps, 7),
        "generated",
        std::path::Path::new("."),
    )
    .expect("generated fleet parses")
}

fn sizes(inv: &inventory::Inventory) -> HashMap<String, u64> {
    inv.apps
        .iter()
        .filter_map(|a| Some((a.name.clone(), (a.services.first()?.size_mb? * 1e6) as u64)))
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_plan_and_another_seed_another_order() {
    let inv = sim_fleet(600);
    let rb = Runbook::builtin();
    let s = sizes(&inv);
    let t = Throughput::default();
    let a = plan(&inv, &rb, &params(42), &s, &t, &[]);
    let b = plan(&inv, &rb, &params(42), &s, &t, &[]);
    let c = plan(&inv, &rb, &params(43), &s, &t, &[]);
    assert_eq!(a, b);
    assert_ne!(a.batches, c.batches);
    let order = |p: &pgshift::plan::Plan| p.apps().map(str::to_string).collect::<Vec<_>>();
    assert_ne!(order(&a), order(&c));
    let set = |p: &pgshift::plan::Plan| p.apps().map(str::to_string).collect::<HashSet<_>>();
    assert_eq!(set(&a), set(&c), "same apps, other order");
    let candidates = inv.apps.iter().filter(|x| rb.applies_to(x)).count();
    assert_eq!(a.apps().count(), candidates, "every candidate exactly once");
}

#[test]
fn canary_batches_come_first_with_small_low_risk_apps() {
    let inv = sim_fleet(600);
    let rb = Runbook::builtin();
    let s = sizes(&inv);
    let p = plan(&inv, &rb, &params(1), &s, &Throughput::default(), &[]);
    for region in &inv.regions {
        let batches: Vec<_> = p
            .batches
            .iter()
            .filter(|b| b.region == region.name)
            .collect();
        let canary = batches[0];
        assert!(canary.canary && canary.index == 0, "{}", region.name);
        assert!(batches[1..].iter().all(|b| !b.canary));
        assert_eq!(canary.apps.len(), 3);
        let median = {
            let mut v: Vec<u64> = batches.iter().flat_map(|b| &b.apps).map(|a| s[a]).collect();
            v.sort();
            v[v.len() / 2]
        };
        for a in &canary.apps {
            let app = inv.app(a).unwrap();
            assert!(app.client.supports_scram(), "canary {a} is low-risk");
            assert!(s[a] <= median, "canary {a} is small");
        }
    }
}

#[test]
fn no_batch_holds_two_apps_of_one_customer_when_avoidable() {
    let inv = sim_fleet(1500);
    let rb = Runbook::builtin();
    let p = plan(
        &inv,
        &rb,
        &params(9),
        &sizes(&inv),
        &Throughput::default(),
        &[],
    );
    for b in &p.batches {
        let mut seen = HashMap::new();
        for a in &b.apps {
            *seen
                .entry(inv.app(a).unwrap().customer.clone())
                .or_insert(0) += 1;
        }
        for (customer, n) in seen {
            if n > 1 {
                let batches = p.batches.iter().filter(|x| x.region == b.region).count();
                let theirs = inv
                    .apps_in(&b.region)
                    .filter(|x| x.customer == customer && rb.applies_to(x))
                    .count();
                assert!(
                    theirs > batches,
                    "{customer} twice in {} batch {} although avoidable",
                    b.region,
                    b.index
                );
            }
        }
    }
    // Big databases are spread: no regular batch holds two of a region's three biggest.
    let s = sizes(&inv);
    for region in &inv.regions {
        let mut apps: Vec<&str> = p
            .batches
            .iter()
            .filter(|b| b.region == region.name)
            .flat_map(|b| b.apps.iter().map(String::as_str))
            .collect();
        apps.sort_by_key(|a| std::cmp::Reverse(s[*a]));
        let top: Vec<&str> = apps.into_iter().take(3).collect();
        for b in p.batches.iter().filter(|b| b.region == region.name) {
            assert!(
                b.apps.iter().filter(|a| top.contains(&a.as_str())).count() <= 1,
                "{} batch {}",
                region.name,
                b.index
            );
        }
    }
}

#[test]
fn plan_json_has_the_contract_fields_and_is_saved() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args([
            "plan",
            "--seed",
            "5",
            "--batch-size",
            "4",
            "--canary",
            "1",
            "--window",
            "1h",
            "--json",
        ])
        .output()
        .expect("plan");
    support::check(&out, "plan --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let batches = v["batches"].as_array().expect("batches");
    assert!(!batches.is_empty());
    for b in batches {
        for k in [
            "region",
            "index",
            "estimated_seconds",
            "fits_window",
            "apps",
        ] {
            assert!(!b[k].is_null(), "{k} in {b}");
        }
    }
    assert!(v["id"].as_i64().unwrap() >= 1);
    let again = support::pgshift(dir.path())
        .args([
            "plan",
            "--seed",
            "5",
            "--batch-size",
            "4",
            "--canary",
            "1",
            "--window",
            "1h",
            "--json",
        ])
        .output()
        .expect("plan");
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(
        v["batches"], w["batches"],
        "same seed, same plan from the CLI"
    );
    let bad = support::pgshift(dir.path())
        .args(["plan", "--region", "mars"])
        .output()
        .expect("plan");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_sim_rehearsal_fails_exactly_the_old_libpq_and_btree_apps_and_preflight_prevents_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, sim_fleet_text(400)).expect("write");
    let inv = inventory::load(&Source::File(fleet.clone())).expect("fleet");
    let rb = Runbook::builtin();
    let expected = inv
        .apps
        .iter()
        .filter(|a| {
            rb.applies_to(a)
                && (!a.client.supports_scram()
                    || a.services
                        .iter()
                        .any(|s| s.seed.as_ref().is_some_and(|x| x.btree_straddle)))
        })
        .count();
    let run = |state: &str, extra: &[&str]| {
        let state = dir.path().join(state);
        let p = support::pgshift(&state)
            .arg("--inventory")
            .arg(&fleet)
            .args(["plan", "--batch-size", "20"])
            .output()
            .expect("plan");
        support::check(&p, "plan");
        let out = support::pgshift(&state)
            .arg("--inventory")
            .arg(&fleet)
            .args(["run", "--speed", "0", "--json"])
            .args(extra)
            .output()
            .expect("run");
        let last = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&last).expect("fleet_done json");
        (out.status.code(), v["report"].clone())
    };
    let (code, r) = run("plain", &[]);
    assert_eq!(code, Some(3));
    assert_eq!(r["failed"].as_u64().unwrap() as usize, expected, "{r}");
    assert_eq!(
        r["migrated"].as_u64().unwrap() as usize + expected,
        inv.apps.iter().filter(|a| rb.applies_to(a)).count()
    );
    let (code, r) = run("preflighted", &["--apply-preflight"]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["failed"], 0);
}

fn sim_fleet_text(apps: usize) -> String {
    // Make sure the rehearsal has a btree app: the generator's rate is realistic (rare).
    let mut t = sim_fleet::generate(apps, 11);
    let first = t.find("  size_mb = ").expect("a pg13 service");
    let eol = first + t[first..].find('\n').unwrap();
    t.insert_str(
        eol,
        "\n  seed = { profile = \"blog\", btree_straddle = true }",
    );
    t
}

#[test]
fn the_whole_fixture_fleet_runs_on_a_real_lab_and_preflight_makes_it_clean() {
    let lab = support::fleet_lab();
    let reset = lab.cmd().args(["lab", "reset"]).output().expect("reset");
    support::check(&reset, "lab reset");
    let plan = lab
        .cmd()
        .args(["plan", "--seed", "3", "--batch-size", "4", "--json"])
        .output()
        .expect("plan");
    support::check(&plan, "plan");
    let out = lab
        .cmd()
        .args(["--probe", "run", "--all", "--quiet", "--json"])
        .output()
        .expect("run");
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("report");
    let r = &v["report"];
    assert_eq!(out.status.code(), Some(3), "{r}");
    // Downtime as users saw it: no request failed, and every app's maintenance page showed
    // only while pgshift kept it paused (+1 s); every app serves again.
    let probes: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "probe")
        .collect();
    // Every app the night ran was paused once; an app the night skipped never was.
    let ran = (r["migrated"].as_u64().unwrap_or(0) + r["failed"].as_u64().unwrap_or(0)) as usize;
    let paused: Vec<&serde_json::Value> = probes
        .iter()
        .filter(|p| p["maintenance"].as_u64().unwrap_or(0) > 0)
        .collect();
    assert_eq!(
        paused.len(),
        ran,
        "every app that ran was seen paused: {probes:?}"
    );
    let ts = |e: &serde_json::Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(e[k].as_str().unwrap_or_else(|| panic!("{k}: {e}")))
            .expect("timestamp")
    };
    for p in &probes {
        assert_eq!(p["failed"], 0, "no request failed: {p}");
    }
    for p in &paused {
        assert!(ts(p, "first_maintenance") >= ts(p, "paused_from"), "{p}");
        assert!(
            ts(p, "last_maintenance") <= ts(p, "paused_until") + chrono::Duration::seconds(1),
            "{p}"
        );
    }
    // The night's report shows what the prober observed beside pgshift's paused interval.
    let report = lab
        .cmd()
        .args(["report", "--format", "json"])
        .output()
        .expect("report");
    support::check(&report, "report --format json");
    let rep: serde_json::Value = serde_json::from_slice(&report.stdout).expect("report json");
    // (The store keeps earlier nights too: each app's newest pause is this night's.)
    let mut newest: HashMap<String, &serde_json::Value> = HashMap::new();
    for d in rep["downtime"].as_array().expect("downtime") {
        newest.insert(d["app"].as_str().expect("app").to_string(), d);
    }
    let this_night: Vec<_> = paused
        .iter()
        .map(|p| newest[p["app"].as_str().expect("app")])
        .collect();
    for d in this_night {
        let paused = d["paused_seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("{d}"));
        let observed = d["observed_seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("{d}"));
        assert!(observed <= paused + 1.0, "{d}");
    }
    let status = lab
        .cmd()
        .args(["lab", "status", "--json"])
        .output()
        .expect("status");
    support::check(&status, "lab status");
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    for a in st["apps"].as_array().expect("apps") {
        let url = a["url"].as_str().expect("url");
        let (code, body) = support::http_get(url).expect("GET");
        assert_eq!(code, 200, "{} serves after the night: {body}", a["name"]);
    }
    // Exactly the apps built to fail, classified: 4 libpq 9.x, 1 node-postgres 7.8.2 (no
    // SCRAM either) and 2 btree apps. Of the 28 candidates, 2 more (gauges-live, labels-live:
    // objects removed in 14 or superuser-only) are refused by preflight's catalog rules before
    // their window: skipped, never started.
    assert_eq!(r["failures_by_class"]["libpq-scram"], 5, "{r}");
    assert_eq!(r["failures_by_class"]["btree-index-row-size"], 2, "{r}");
    assert_eq!(r["failed"], 7, "{r}");
    assert_eq!(r["skipped"], 2, "{r}");
    assert_eq!(r["migrated"], 28 - 7 - 2, "{r}");
    let failures = lab
        .cmd()
        .args(["failures", "--json"])
        .output()
        .expect("failures");
    let f: serde_json::Value = serde_json::from_slice(&failures.stdout).expect("json");
    for x in f.as_array().unwrap() {
        let show = lab
            .cmd()
            .args(["app", "show", x["app"].as_str().unwrap(), "--json"])
            .output()
            .expect("show");
        let s: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
        assert_eq!(
            (s["service"]["server"].as_str(), s["paused"].as_bool()),
            (Some("pg13"), Some(false)),
            "rolled back, unpaused: {s}"
        );
    }

    report_matches_the_console(lab, r);

    let reset = lab.cmd().args(["lab", "reset"]).output().expect("reset");
    support::check(&reset, "lab reset");
    let out = lab
        .cmd()
        .args(["run", "--all", "--quiet", "--apply-preflight", "--json"])
        .output()
        .expect("run");
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&last).expect("report");
    assert_eq!(out.status.code(), Some(0), "{}", v["report"]);
    assert_eq!(v["report"]["migrated"], 28 - 2);
    assert_eq!(v["report"]["failed"], 0);
    assert_eq!(
        v["report"]["skipped"], 2,
        "refused by preflight: nothing applies to them"
    );
}

/// App states as the run's store has them: state → count, and how many are paused.
fn store_states(state_dir: &std::path::Path) -> (HashMap<String, usize>, usize) {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let url = format!("sqlite://{}", state_dir.join("pgshift.db").display());
        let store = pgshift::store::Store::open(&url).await.expect("store");
        let states = store.app_states().await.expect("states");
        let mut by = HashMap::new();
        for s in states.values() {
            *by.entry(s.state.to_string()).or_insert(0) += 1;
        }
        let paused = states.values().filter(|s| s.paused).count();
        store.close().await;
        (by, paused)
    })
}

/// Wait for the child's stdout (JSON events) to show `what`; returns the lines so far.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, what: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if what(&l) => return,
            Ok(_) => {}
            Err(e) => panic!("the run never printed what was awaited: {e}"),
        }
    }
}

fn spawn_run(
    state: &std::path::Path,
    fleet: &std::path::Path,
    speed: &str,
    quiet: bool,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = support::pgshift(state)
        .arg("--inventory")
        .arg(fleet)
        .args(["run", "--speed", speed, "--json"])
        .args(quiet.then_some("--quiet"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn a_fleet_run_obeys_region_stop_pause_and_cancel_and_resume_continues_a_killed_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, sim_fleet::generate(150, 3)).expect("write");
    let state = dir.path().join("state");
    let cli = |args: &[&str]| {
        support::pgshift(&state)
            .arg("--inventory")
            .arg(&fleet)
            .args(args)
            .output()
            .expect("pgshift")
    };
    support::check(&cli(&["plan", "--batch-size", "10"]), "plan");
    assert_eq!(
        cli(&["region", "pause", "ch-gva"]).status.code(),
        Some(2),
        "no run in progress"
    );

    // Stop one region, pause and resume another, refuse an unconfirmed cancel.
    let (mut run, lines) = spawn_run(&state, &fleet, "15", true);
    wait_for_line(&lines, |l| l.contains("\"progress\""));
    support::check(&cli(&["region", "stop", "ch-zrh"]), "region stop");
    support::check(&cli(&["region", "pause", "ch-gva"]), "region pause");
    assert_eq!(cli(&["region", "pause", "mars"]).status.code(), Some(2));
    assert_eq!(
        cli(&["cancel"]).status.code(),
        Some(2),
        "cancel needs --confirm"
    );
    wait_for_line(&lines, |l| {
        l.contains("\"control\"") && l.contains("ch-gva") && l.contains("pause")
    });
    let resume = cli(&["region", "resume", "ch-zrh"]);
    assert_eq!(
        resume.status.code(),
        Some(2),
        "a stopped region stays stopped"
    );
    support::check(&cli(&["region", "resume", "ch-gva"]), "region resume");
    let mut report = serde_json::Value::Null;
    for l in lines.iter() {
        if l.contains("fleet_done") {
            report = serde_json::from_str::<serde_json::Value>(&l).expect("json")["report"].clone();
        }
    }
    run.wait().expect("run ends");
    assert!(report["not_started"].as_u64().unwrap() > 0, "{report}");
    assert!(report["migrated"].as_u64().unwrap() > 0, "{report}");
    let (by, paused) = store_states(&state);
    assert_eq!(paused, 0);
    assert_eq!(by.get("running"), None, "{by:?}");

    // Cancel the next run: whatever was in flight is rolled back, nothing left paused.
    let (mut run, lines) = spawn_run(&state, &fleet, "3", false);
    wait_for_line(&lines, |l| l.contains("\"step_started\""));
    support::check(&cli(&["cancel", "--confirm"]), "cancel");
    let status = run.wait().expect("run ends");
    drop(lines);
    assert_eq!(status.code(), Some(3), "a cancelled run exits 3");
    let (by, paused) = store_states(&state);
    assert_eq!(paused, 0, "{by:?}");
    assert_eq!(by.get("running"), None, "{by:?}");
    assert!(by.get("rolled_back").copied().unwrap_or(0) > 0, "{by:?}");

    // kill -9 in the middle of the next one: resume finishes the apps in flight and the
    // rest of the plan; the apps that failed for want of a remedy are not started again.
    let (by_before, _) = store_states(&state);
    let (mut run, lines) = spawn_run(&state, &fleet, "10", true);
    wait_for_line(&lines, |l| l.contains("\"progress\""));
    run.kill().expect("kill -9");
    run.wait().expect("reaped");
    let out = cli(&["resume", "--json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "resume: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (by, paused) = store_states(&state);
    assert_eq!(paused, 0, "{by:?}");
    assert_eq!(by.get("running"), None, "{by:?}");
    let inv = inventory::load(&Source::File(fleet.clone())).expect("fleet");
    let rb = Runbook::builtin();
    let candidates = inv.apps.iter().filter(|a| rb.applies_to(a)).count();
    let old_libpq = inv
        .apps
        .iter()
        .filter(|a| rb.applies_to(a) && !a.client.supports_scram())
        .count();
    assert_eq!(
        by.get("migrated").copied().unwrap_or(0),
        candidates - old_libpq,
        "{by:?}"
    );
    assert_eq!(by.get("failed").copied().unwrap_or(0), old_libpq, "{by:?}");
    assert!(
        by.get("migrated") > by_before.get("migrated"),
        "resume migrated the rest: {by_before:?} → {by:?}"
    );
}

#[test]
fn a_saved_plan_can_be_edited_and_the_edit_is_what_runs_next() {
    let dir = tempfile::tempdir().expect("tmp");
    let plan = |args: &[&str]| {
        support::pgshift(dir.path())
            .arg("plan")
            .args(args)
            .output()
            .expect("plan")
    };
    let first = plan(&["--batch-size", "4", "--canary", "2", "--json"]);
    support::check(&first, "plan");
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    let zrh: Vec<&serde_json::Value> = v["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["region"] == "ch-zrh")
        .collect();
    assert!(zrh.len() >= 3, "{v}");
    let app = zrh[2]["apps"][0].as_str().unwrap().to_string();
    let excluded = zrh[1]["apps"][0].as_str().unwrap().to_string();

    let out = plan(&[
        "edit",
        "--move",
        &app,
        "--to",
        "1",
        "--exclude",
        &excluded,
        "--json",
    ]);
    support::check(&out, "plan edit");
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(w["edited_from"], v["id"]);
    let batch1 = w["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["region"] == "ch-zrh" && b["index"] == 1)
        .unwrap();
    let names: Vec<&str> = batch1["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(names.contains(&app.as_str()), "{batch1}");
    assert!(!names.contains(&excluded.as_str()), "{batch1}");
    assert!(
        w["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| *a == *excluded)
    );

    // Refused edits say why, exit 2, and save nothing.
    for bad in [
        vec!["edit", "--move", "no-such-app", "--to", "1"],
        vec!["edit", "--region", "ch-zrh", "--batch", "1", "--to", "0"],
        vec!["edit", "--move", &app, "--to", "99"],
        vec!["edit"],
    ] {
        let out = plan(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{bad:?}: {err}");
    }
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let latest = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("pgshift.db").display());
        let store = pgshift::store::Store::open(&url).await.expect("store");
        store.latest_plan().await.expect("plan").expect("some").0
    });
    assert_eq!(
        Some(latest),
        w["id"].as_i64(),
        "the edited plan is the latest"
    );
}

/// `pgshift report` of the fixture fleet's night says what the console's Report view computes
/// from the same store (one model): every figure, each failure class and region, each backup
/// with its expiry; and both agree with the fleet run's own report `r`.
fn report_matches_the_console(lab: &support::Lab, r: &serde_json::Value) {
    use pgshift::console::{model::Model, update::update, views};
    let json = lab
        .cmd()
        .args(["report", "--format", "json"])
        .output()
        .expect("report");
    support::check(&json, "report --format json");
    let cli: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let md = lab
        .cmd()
        .args(["report", "--format", "md"])
        .output()
        .expect("report md");
    support::check(&md, "report --format md");
    let md = String::from_utf8_lossy(&md.stdout).to_string();

    let inv = inventory::load(&Source::BuiltinLab).expect("fixture fleet");
    let url = format!("sqlite://{}", lab.state.join("pgshift.db").display());
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (states, night) = rt.block_on(async {
        let store = pgshift::store::Store::open(&url).await.expect("store");
        (
            store.app_states().await.expect("states"),
            pgshift::console::load::night(&store, true)
                .await
                .expect("night"),
        )
    });
    let states: HashMap<_, _> = states;
    let mut m = Model::new(&inv, &states, "fleet".into(), url);
    update(&mut m, night);
    let console = views::report::report(&m);
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
    assert_eq!(r["migrated"], console.migrated, "{r}");
    assert_eq!(r["failed"], console.failed, "{r}");
    assert!(
        md.contains(&format!(
            "- migrated: {} of {} candidates",
            console.migrated, console.candidates
        )),
        "{md}"
    );
    for f in &console.failures_happened {
        assert!(
            md.contains(&format!("| {} | {} |", f.class, f.count)),
            "{md}"
        );
    }
    for g in &console.regions {
        assert!(
            md.contains(&format!(
                "| {} | {} | {} | {} |",
                g.name, g.candidates, g.migrated, g.failed
            )),
            "{md}"
        );
    }
    // Tonight's backups have an expiry (a store older than retention holds some without).
    let expiring = console
        .backups
        .iter()
        .filter(|b| b.expires_at.is_some())
        .count();
    assert!(expiring >= console.migrated, "{console:?}");
    for b in &console.backups {
        let expires = b.expires_at.as_deref().unwrap_or("kept (no retention)");
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
