//! The lab as a small PaaS: real app processes (web + worker) with real client libraries,
//! behind a real nginx with a maintenance page, driven through `pgshift lab hook`. One test,
//! in order, on its own lab: it pauses, moves and breaks apps, and ends with `lab down`.

#[path = "support/lab.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgshift::inventory::{self, ServiceKind, Source};
use serde_json::Value;
use support::{Lab, check, http_get, paas_lab};

fn hook(lab: &Lab, op: &str, app: &str) -> Output {
    lab.cmd()
        .args(["lab", "hook", op, app])
        .output()
        .expect("lab hook")
}

fn set_url(lab: &Lab, app: &str, service_id: &str, url: &str) {
    let mut child = lab
        .cmd()
        .args(["lab", "hook", "set_database_url", app])
        .env("PGSHIFT_SERVICE_ID", service_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("set_database_url");
    writeln!(child.stdin.take().expect("stdin"), "{url}").expect("write url");
    let out = child.wait_with_output().expect("wait");
    check(&out, "lab hook set_database_url");
}

fn status(lab: &Lab) -> Value {
    let out = lab
        .cmd()
        .args(["lab", "status", "--json"])
        .output()
        .expect("status");
    check(&out, "lab status --json");
    serde_json::from_slice(&out.stdout).expect("status json")
}

fn app_status<'a>(st: &'a Value, app: &str) -> &'a Value {
    st["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["name"] == app)
        .unwrap_or_else(|| panic!("{app} in lab status: {st}"))
}

fn hook_status(lab: &Lab, app: &str) -> Value {
    let out = hook(lab, "status", app);
    check(&out, "lab hook status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).expect("status is JSON")
}

/// Alive (and not a zombie).
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').expect("stat") + 2..].chars().next();
        !matches!(state, Some('Z') | Some('X'))
    })
}

fn environ_url(pid: u64) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(b"DATABASE_URL=")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// The session id of a process (field 6 of /proc/PID/stat, after the command in parentheses).
fn session_of(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(3)?.parse().ok()
}

fn cmdline(pid: u64) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

fn pids(st: &Value, app: &str) -> Vec<u64> {
    let a = app_status(st, app);
    ["web_pid", "worker_pid"]
        .iter()
        .filter_map(|k| a[k].as_u64())
        .collect()
}

fn writes(lab: &Lab, major: u32, db: &str) -> u64 {
    lab.psql(major, db, "select count(*) from lab_app_writes")
        .parse()
        .expect("count")
}

/// A role on the lab's 15 server with a SCRAM-hashed password, and its own database.
fn scram_role(lab: &Lab, name: &str) -> String {
    lab.psql(
        15,
        "postgres",
        &format!("drop database if exists {name} with (force)"),
    );
    lab.psql(
        15,
        "postgres",
        &format!(
            "drop role if exists {name}; set password_encryption = 'scram-sha-256'; \
             create role {name} login password '{name}-pw'"
        ),
    );
    lab.psql(
        15,
        "postgres",
        &format!("create database {name} owner {name}"),
    );
    format!(
        "postgres://{name}:{name}-pw@127.0.0.1:{}/{name}",
        lab.ports.1
    )
}

fn original_url(lab: &Lab, role: &str) -> String {
    format!(
        "postgres://{role}:{}@127.0.0.1:{}/{role}",
        lab.role_password("pg13", role),
        lab.ports.0
    )
}

#[test]
fn lab_apps_are_real_processes_behind_a_real_router() {
    let lab = paas_lab();

    // `lab up` of an up lab is fast and changes nothing.
    let t = Instant::now();
    let up = lab.cmd().args(["lab", "up"]).output().expect("lab up");
    check(&up, "lab up (again)");
    let again = t.elapsed();
    assert!(
        again < Duration::from_secs(5),
        "lab up of an up lab took {again:?}"
    );

    // Every app with a provisioned PostgreSQL service answers 200 with rows of its database.
    let st = status(lab);
    assert_eq!(st["router"]["running"], true, "{st}");
    let apps = st["apps"].as_array().expect("apps");
    // Every app of the fixture fleet with a provisioned PostgreSQL service, and no other.
    let inv = inventory::load(&Source::BuiltinLab).expect("fleet");
    let mut want: Vec<&str> = inv
        .apps
        .iter()
        .filter(|a| {
            a.services
                .iter()
                .any(|s| s.provisioned && matches!(s.kind, ServiceKind::Postgres { .. }))
        })
        .map(|a| a.name.as_str())
        .collect();
    want.sort();
    let got: Vec<&str> = apps.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(got, want, "{st}");
    for a in apps {
        let name = a["name"].as_str().expect("name");
        assert_eq!(a["running"], true, "{a}");
        let url = a["url"].as_str().expect("url");
        assert_eq!(
            url,
            format!("{}{name}/", st["router"]["url"].as_str().unwrap())
        );
        let (code, body) = http_get(url).expect("GET app");
        assert_eq!(code, 200, "{name}: {body}");
        let v: Value = serde_json::from_str(&body).expect("app answers JSON");
        assert!(v["rows"].as_u64().unwrap_or(0) > 0, "{name}: {v}");
        assert_eq!(v["sample"].as_array().map(Vec::len), Some(3), "{name}: {v}");
        for pid in pids(&st, name) {
            let url = environ_url(pid).expect("DATABASE_URL in the environment");
            assert!(url.starts_with("postgres://"), "{name}");
            let argv = cmdline(pid);
            assert!(
                !argv.contains("postgres://") && !argv.contains(&url),
                "{name}: {argv}"
            );
            // Each app process leads its own session, as the servers and nginx do: closing
            // the shell that ran `lab up` does not take the apps with it.
            assert_eq!(session_of(pid), Some(pid), "{name}: pid {pid}");
        }
    }

    pause_and_unpause(lab);
    concurrent_hooks_and_a_crashed_app(lab);
    move_to_another_database(lab);
    scram_refusals_are_the_drivers_own_text(lab);

    // `lab down` leaves no app and no nginx process.
    let st = status(lab);
    let all: Vec<u64> = apps_pids(&st);
    let nginx = st["router"]["pid"].as_u64().expect("nginx pid");
    let down = lab.cmd().args(["lab", "down"]).output().expect("lab down");
    check(&down, "lab down");
    for pid in all.iter().chain([&nginx]) {
        assert!(
            !alive(*pid),
            "pid {pid} ({}) survived lab down",
            cmdline(*pid)
        );
    }
    let st = status(lab);
    assert_eq!(st["router"]["running"], false, "{st}");
    assert!(apps_pids(&st).is_empty(), "{st}");
    let left = Command::new("pgrep")
        .args(["-f", &lab.state.display().to_string()])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

fn apps_pids(st: &Value) -> Vec<u64> {
    st["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .flat_map(|a| ["web_pid", "worker_pid"].map(|k| a[k].as_u64()))
        .flatten()
        .collect()
}

/// pause: 503 maintenance page, other apps untouched, every process gone, no more writes.
fn pause_and_unpause(lab: &Lab) {
    let app = "shop-stage";
    let st = status(lab);
    let url = app_status(&st, app)["url"].as_str().unwrap().to_string();
    let before = pids(&st, app);
    assert_eq!(before.len(), 2);
    assert_eq!(hook_status(lab, app)["paused"], false);

    let out = hook(lab, "pause", app);
    check(&out, "lab hook pause");
    let (code, body) = http_get(&url).expect("GET paused app");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("shop-stage is down for maintenance"),
        "{body}"
    );
    let (code, _) = http_get(app_status(&st, "wiki-stage")["url"].as_str().unwrap()).unwrap();
    assert_eq!(code, 200, "another app still serves");
    for pid in &before {
        assert!(!alive(*pid), "{app} pid {pid} still runs after pause");
    }
    let s = hook_status(lab, app);
    assert_eq!(
        (s["paused"].as_bool(), s["running"].as_bool()),
        (Some(true), Some(false)),
        "{s}"
    );
    assert_eq!(s["service_id"], "shop-stage-db");
    assert_eq!(s["url"].as_str(), Some(url.as_str()));
    let n = writes(lab, 13, "shop_stage");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        writes(lab, 13, "shop_stage"),
        n,
        "a paused app's worker wrote"
    );
    // Idempotent; and health through the router is the maintenance page: unhealthy.
    check(&hook(lab, "pause", app), "lab hook pause (again)");
    let h = hook(lab, "health", app);
    assert_eq!(
        h.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&h.stdout)
    );
    assert!(String::from_utf8_lossy(&h.stdout).contains("503"));

    let out = hook(lab, "unpause", app);
    check(&out, "lab hook unpause");
    let (code, body) = http_get(&url).expect("GET unpaused app");
    assert_eq!(code, 200, "{body}");
    let h = hook(lab, "health", app);
    check(&h, "lab hook health");
    assert!(String::from_utf8_lossy(&h.stdout).contains("200 OK"));
    let n = writes(lab, 13, "shop_stage");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(writes(lab, 13, "shop_stage") > n, "the worker writes again");
    check(&hook(lab, "unpause", app), "lab hook unpause (again)");
}

/// Hooks of different apps at once do not trip over each other; an app whose web process was
/// killed answers 502 (not the maintenance page) until unpause starts it again.
fn concurrent_hooks_and_a_crashed_app(lab: &Lab) {
    let apps = ["wiki-stage", "atelier-stage", "fleetops-stage"];
    let st = status(lab);
    let url = |a: &str| app_status(&st, a)["url"].as_str().unwrap().to_string();
    for op in ["pause", "unpause"] {
        let children: Vec<_> = apps
            .iter()
            .map(|a| {
                lab.cmd()
                    .args(["lab", "hook", op, a])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("hook")
            })
            .collect();
        for c in children {
            check(&c.wait_with_output().expect("hook"), op);
        }
        let want = if op == "pause" { 503 } else { 200 };
        for a in apps {
            assert_eq!(
                http_get(&url(a)).unwrap().0,
                want,
                "{a} after concurrent {op}"
            );
        }
    }

    let app = apps[0];
    let web = app_status(&status(lab), app)["web_pid"].as_u64().unwrap();
    let killed = Command::new("kill")
        .args(["-9", &web.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = Instant::now();
    while alive(web) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        http_get(&url(app)).unwrap().0,
        502,
        "a dead app without the flag"
    );
    let s = hook_status(lab, app);
    assert_eq!(
        (s["paused"].as_bool(), s["running"].as_bool()),
        (Some(false), Some(false)),
        "{s}"
    );
    check(
        &hook(lab, "unpause", app),
        "lab hook unpause (after a crash)",
    );
    assert_eq!(http_get(&url(app)).unwrap().0, 200);
    let again = app_status(&status(lab), app)["web_pid"].as_u64().unwrap();
    assert_ne!(again, web, "a new web process");
}

/// set_database_url + redeploy: the processes run with the new URL, in their environment only.
fn move_to_another_database(lab: &Lab) {
    let app = "school-stage";
    let new = scram_role(lab, "paas_school_new");
    set_url(lab, app, "school-stage-new", &new);
    let s = hook_status(lab, app);
    assert_eq!(s["service_id"], "school-stage-new", "{s}");
    // Recorded only: the running app still uses OLD.
    let web = app_status(&status(lab), app)["web_pid"].as_u64().unwrap();
    assert_ne!(environ_url(web).as_deref(), Some(new.as_str()));

    let out = hook(lab, "redeploy", app);
    check(&out, "lab hook redeploy");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("web: listening on 127.0.0.1:"),
        "deploy log: {log}"
    );
    assert!(!log.contains("paas_school_new-pw"), "deploy log: {log}");
    let st = status(lab);
    for pid in pids(&st, app) {
        assert_eq!(environ_url(pid).as_deref(), Some(new.as_str()));
        assert!(!cmdline(pid).contains("paas_school_new-pw"));
    }
    let (code, body) = http_get(app_status(&st, app)["url"].as_str().unwrap()).unwrap();
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        writes(lab, 15, "paas_school_new") > 0,
        "the worker writes to NEW"
    );

    set_url(
        lab,
        app,
        "school-stage-db",
        &original_url(lab, "school_stage"),
    );
    check(&hook(lab, "redeploy", app), "lab hook redeploy (back)");
}

/// An app whose client cannot do SCRAM, redeployed onto a SCRAM role: exit 1 and the deploy
/// log is the driver's own text, which the classifier names libpq-scram.
fn scram_refusals_are_the_drivers_own_text(lab: &Lab) {
    for (app, role, text) in [
        (
            "ledger-live",
            "ledger_live",
            "authentication method 10 not supported",
        ),
        (
            "bazaar-live",
            "bazaar_live",
            "Unknown authenticationOk message type",
        ),
    ] {
        let new = scram_role(lab, &format!("paas_{role}_scram"));
        set_url(lab, app, "scram", &new);
        let out = hook(lab, "redeploy", app);
        let log = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(1), "{app}: {log}");
        assert!(log.contains(text), "{app}: {log}");
        let mut d = lab
            .cmd()
            .args(["diagnose", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("diagnose");
        d.stdin.take().unwrap().write_all(log.as_bytes()).unwrap();
        let d = d.wait_with_output().expect("diagnose");
        let v: Value = serde_json::from_slice(&d.stdout).expect("diagnose json");
        assert_eq!(v[0]["class"], "libpq-scram", "{app}: {v}");
        let st = status(lab);
        assert!(
            pids(&st, app).is_empty(),
            "a failed redeploy leaves nothing running"
        );
        let (code, _) = http_get(app_status(&st, app)["url"].as_str().unwrap()).unwrap();
        assert_eq!(
            code, 502,
            "down without the maintenance flag: an honest 502"
        );

        set_url(lab, app, &format!("{app}-db"), &original_url(lab, role));
        check(&hook(lab, "unpause", app), "lab hook unpause (back on OLD)");
        let st = status(lab);
        let (code, body) = http_get(app_status(&st, app)["url"].as_str().unwrap()).unwrap();
        assert_eq!(code, 200, "{app} back on OLD: {body}");
    }
}
