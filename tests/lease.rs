//! A lost lease cancels that app's work: while pgshift restores tracker-live, its lease is
//! taken in the store (as another pgshift would once it expired). The migrating process must
//! end its pg_restore within a bound, ask the platform for nothing more, record the step as
//! interrupted (no rollback), and a `resume` must then finish the app.

#[path = "support/lab.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

const APP: &str = "tracker-live";
const DB: &str = "tracker_live";
/// Short enough that the loss is seen within seconds (renewal every TTL / 3).
const TTL_SECS: u64 = 6;

/// pids of the pg_restore processes restoring `DB` now.
fn restores() -> Vec<i32> {
    support::pg_restores_of(DB)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// The lab platform's register of hooks run on the app: (at, op, caller pid).
fn hook_calls(lab: &support::Lab) -> Vec<(String, String, i64)> {
    let log = lab.state.join("lab/apps").join(APP).join("hooks.log");
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["at"].as_str().unwrap_or("").to_string(),
                v["op"].as_str().unwrap_or("").to_string(),
                v["caller"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

fn sqlite(lab: &support::Lab, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg(lab.state.join("pgshift.db"))
        .arg(sql)
        .output()
        .expect("sqlite3");
    support::check(&out, sql);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_lost_lease_ends_the_apps_work_and_resume_finishes_it() {
    let lab = support::destructive_lab();
    let _serial = support::destructive_lock();
    // A run an earlier, failed attempt left behind is finished first: reset refuses it.
    let _ = lab.cmd().args(["resume"]).output().expect("resume");
    let reset = lab
        .cmd()
        .args(["lab", "reset", "--app", APP])
        .output()
        .expect("reset");
    support::check(&reset, "lab reset --app");

    let mut migrate = lab
        .cmd()
        .args(["migrate", "--app", APP, "--json"])
        .env("PGSHIFT_LEASE_TTL_SECS", TTL_SECS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let pid = i64::from(migrate.id());
    let stdout = migrate.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    support::until_step_started(&mut lines, "restore");
    support::into_pg_restore(DB);

    // Another pgshift on this host takes the lease (this one's expired) — and has died since,
    // so that `resume` may take it over in turn.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().expect("true");
        c.wait().expect("reap");
        c.id()
    };
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8 hostname");
    let stolen_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let later = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    sqlite(
        lab,
        &format!(
            "UPDATE leases SET holder = '{host}:{dead}:0000beef', pid = {dead}, host = '{host}', \
             acquired_at = '{stolen_at}', expires_at = '{later}' WHERE app = '{APP}'"
        ),
    );
    let stolen = Instant::now();
    while !restores().is_empty() {
        assert!(
            stolen.elapsed() < Duration::from_secs(TTL_SECS / 3 + 8),
            "pg_restore still runs {:?} after the lease was taken",
            stolen.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let gone_after = stolen.elapsed();
    eprintln!("pg_restore gone {gone_after:?} after the lease was taken");

    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = migrate.wait().expect("migrate exits");
    let events: Vec<serde_json::Value> = rest
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "interrupted" && e["step"] == "restore"),
        "no interrupted event: {rest:?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "step_finished"
            && e["step"] == "restore"
            && e["state"] == "interrupted"),
        "{rest:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "step_started" || e["event"] == "rolled_back"),
        "the interrupted process went on: {rest:?}"
    );
    assert_eq!(status.code(), Some(3), "not migrated by this process");

    // No platform operation by the interrupted process after the lease was taken.
    let calls = hook_calls(lab);
    let mine: Vec<_> = calls.iter().filter(|c| c.2 == pid).collect();
    assert!(
        mine.iter().any(|c| c.1 == "pause"),
        "the register shows this process's pause: {calls:?}"
    );
    let after: Vec<_> = mine.iter().filter(|c| c.0 >= stolen_at).collect();
    assert!(
        after.is_empty(),
        "platform operations after the loss: {after:?}"
    );

    // The store: restore interrupted, the app still mid-run (no rollback), still paused.
    let run = sqlite(
        lab,
        &format!("SELECT MAX(run_id) FROM steps WHERE app = '{APP}'"),
    );
    assert_eq!(
        sqlite(
            lab,
            &format!("SELECT state FROM steps WHERE run_id = {run} AND operation = 'restore'")
        ),
        "interrupted"
    );
    assert_eq!(
        sqlite(
            lab,
            &format!("SELECT count(*) FROM steps WHERE run_id = {run} AND operation = 'rollback'")
        ),
        "0"
    );
    assert_eq!(
        sqlite(lab, &format!("SELECT state FROM apps WHERE name = '{APP}'")),
        "running"
    );

    let resume = lab.cmd().args(["resume"]).output().expect("resume");
    support::check(&resume, "resume");
    let show = lab
        .cmd()
        .args(["app", "show", APP, "--json"])
        .output()
        .expect("app show");
    support::check(&show, "app show");
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(v["state"], "migrated", "{v}");
    assert_eq!(v["paused"], false, "{v}");
    let url = v["url"].as_str().expect("url").to_string();
    let (code, body) = support::http_get(&url).expect("GET");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sqlite(
            lab,
            &format!("SELECT state FROM steps WHERE run_id = {run} AND operation = 'restore'")
        ),
        "done",
        "resume ran the interrupted step again, in the same run"
    );
}
