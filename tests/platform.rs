//! The app half of a migration, for real: apps behind the lab's nginx go to their maintenance
//! page and come back on NEW; a worker left writing to OLD is caught before NEW is enabled;
//! an operator's platform commands that fail, hang or print garbage are classified
//! `platform`, rolled back and leave the app serving; an operator's inventory of servers that
//! are not pgshift's lab migrates end to end through the exec platform. All on this file's own
//! lab (servers, router, app processes); each test its own apps.

#[path = "support/lab.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Lab, check, platform_lab, router_port};

/// GET through the router: (status, body).
fn get(lab: &Lab, path: &str) -> (u16, String) {
    let port = router_port(lab.ports.0);
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, "connection refused".into());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let code = buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (code, body)
}

fn lab_status(lab: &Lab) -> Value {
    let out = lab
        .cmd()
        .args(["lab", "status", "--json"])
        .output()
        .expect("lab status");
    check(&out, "lab status --json");
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// The DATABASE_URL in the environment of the app's running web process.
fn web_database_url(lab: &Lab, app: &str) -> String {
    let st = lab_status(lab);
    let a = st["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["name"] == app)
        .unwrap_or_else(|| panic!("{app} in {st}"));
    let pid = a["web_pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{app} runs: {a}"));
    let env = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"DATABASE_URL="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("DATABASE_URL in the web's environment")
}

fn reset(lab: &Lab, app: &str) {
    let out = lab
        .cmd()
        .args(["lab", "reset", "--app", app])
        .output()
        .expect("reset");
    check(&out, &format!("lab reset --app {app}"));
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The run's failure event: its class and step.
fn failure(ev: &[Value]) -> &Value {
    ev.iter()
        .find(|e| e["event"] == "failure")
        .unwrap_or_else(|| panic!("a failure event: {ev:?}"))
}

/// Every password the lab keeps (admin and each role on both servers).
fn lab_secrets(lab: &Lab) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![lab.state.join("lab/secrets")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n != "pgpass") {
                out.push(
                    std::fs::read_to_string(&p)
                        .expect("secret")
                        .trim()
                        .to_string(),
                );
            }
        }
    }
    out
}

/// Read every process's argv now and then while `f` runs; return what held a secret.
fn argv_with_secrets<T>(secrets: &[String], f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let found = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (stop, found, secrets) = (stop.clone(), found.clone(), secrets.to_vec());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(argv) = std::fs::read(e.path().join("cmdline")) else {
                        continue;
                    };
                    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
                    if secrets.iter().any(|s| argv.contains(s.as_str())) {
                        found.lock().expect("lock").push(argv);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let found = found.lock().expect("lock").clone();
    (out, found)
}

/// Ask the app through the router every 50 ms while `f` runs: (ms since start, status, body).
fn watched<T>(lab: &Lab, app: &str, f: impl FnOnce() -> T) -> (T, Vec<(u128, u16, String)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let watcher = {
        let (stop, seen) = (stop.clone(), seen.clone());
        let (state, ports, path) = (lab.state.clone(), lab.ports, format!("/{app}/"));
        std::thread::spawn(move || {
            let lab = Lab {
                state,
                clusters: Vec::new(),
                ports,
            };
            while !stop.load(Ordering::Relaxed) {
                let (code, body) = get(&lab, &path);
                seen.lock()
                    .expect("lock")
                    .push((t0.elapsed().as_millis(), code, body));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let seen = seen.lock().expect("lock").clone();
    (out, seen)
}

#[test]
fn a_plain_app_goes_behind_its_maintenance_page_and_comes_back_on_new() {
    let lab = platform_lab();
    let app = "wiki-stage";
    reset(lab, app);
    assert_eq!(get(lab, &format!("/{app}/")).0, 200, "serving before");
    let secrets = lab_secrets(lab);
    let ((out, seen), leaked) = argv_with_secrets(&secrets, || {
        watched(lab, app, || {
            lab.cmd()
                .args(["--probe", "migrate", "--app", app, "--json"])
                .output()
                .expect("migrate")
        })
    });
    check(&out, "migrate --probe");
    assert!(
        leaked.is_empty(),
        "a password in some process's argv: {leaked:?}"
    );
    let maintenance: Vec<_> = seen.iter().filter(|(_, c, _)| *c == 503).collect();
    assert!(
        !maintenance.is_empty(),
        "the router answered 503 while paused: {seen:?}"
    );
    assert!(
        maintenance
            .iter()
            .all(|(_, _, b)| b.to_lowercase().contains("maintenance")),
        "503 is the maintenance page: {:?}",
        maintenance.first()
    );
    let other: Vec<_> = seen
        .iter()
        .filter(|(_, c, _)| *c != 200 && *c != 503)
        .collect();
    assert!(other.is_empty(), "no request failed: {other:?}");
    let (code, body) = get(lab, &format!("/{app}/"));
    assert_eq!(code, 200, "serving after: {body}");
    let url = web_database_url(lab, app);
    assert!(
        url.contains(&format!(":{}/", lab.ports.1)),
        "the web process runs on NEW (port {}): {}",
        lab.ports.1,
        url.split('@').nth(1).unwrap_or_default()
    );
    // The prober's own view: 503s only inside pgshift's paused interval (+1 s).
    let ev = events(&out);
    let probe = ev
        .iter()
        .find(|e| e["event"] == "probe" && e["app"] == app)
        .unwrap_or_else(|| panic!("a probe event: {ev:?}"));
    assert_eq!(probe["failed"], 0, "{probe}");
    assert!(probe["maintenance"].as_u64().unwrap_or(0) > 0, "{probe}");
    let ts = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(
            probe[k].as_str().unwrap_or_else(|| panic!("{k}: {probe}")),
        )
        .expect("timestamp")
    };
    let (first, last) = (ts("first_maintenance"), ts("last_maintenance"));
    let (from, until) = (ts("paused_from"), ts("paused_until"));
    assert!(first >= from, "first 503 {first} after the pause {from}");
    assert!(
        last <= until + chrono::Duration::seconds(1),
        "last 503 {last} within the paused interval (+1 s) ending {until}"
    );
    // No password in what pgshift printed or stored.
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for s in &secrets {
        assert!(
            !printed.contains(s.as_str()),
            "a password in pgshift's output"
        );
    }
    let db = std::fs::read(lab.state.join("pgshift.db")).expect("store");
    let db = String::from_utf8_lossy(&db);
    for s in &secrets {
        assert!(!db.contains(s.as_str()), "a password in the store");
    }
    // Nor in pgshift's log files, nor in the app's own logs (its deploy logs).
    for dir in [lab.state.join("logs"), lab.state.join("lab/apps").join(app)] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = String::from_utf8_lossy(&std::fs::read(&p).expect("log")).to_string();
                for s in &secrets {
                    assert!(!text.contains(s.as_str()), "a password in {}", p.display());
                }
            }
        }
    }
}

/// A cron job the platform does not know, left running on OLD: it touches a row five times a
/// second. Updates, not inserts: verification reads OLD in the backup's snapshot and cannot
/// see them (inserts would move a sequence, which verification reads outside any snapshot);
/// only the check of OLD's write counters before enable can.
fn rogue_writer(lab: &Lab, db: &str, role: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .arg("-c")
        .arg("while :; do psql -X -q -c 'UPDATE lab_app_writes SET written_at = now() WHERE id = (SELECT min(id) FROM lab_app_writes)'; sleep 0.2; done")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", lab.ports.0.to_string())
        .env("PGUSER", role)
        .env("PGDATABASE", db)
        .env("PGPASSWORD", lab.role_password("pg13", role))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rogue writer")
}

#[test]
fn a_worker_left_writing_to_old_fails_the_migration_before_new_is_enabled() {
    let lab = platform_lab();
    let app = "school-stage";
    reset(lab, app);
    let mut rogue = rogue_writer(lab, "school_stage", "school_stage");
    let out = lab
        .cmd()
        .args(["migrate", "--app", app, "--json"])
        .output()
        .expect("migrate");
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(rogue.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = rogue.wait();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let failed = failure(&ev);
    assert_eq!(failed["step"], "enable", "{failed}");
    assert_eq!(failed["class"], "verification-mismatch", "{failed}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("after the backup's snapshot"),
        "the cause is named"
    );
    assert_eq!(
        get(lab, &format!("/{app}/")).0,
        200,
        "serving after the rollback"
    );
    let url = web_database_url(lab, app);
    assert!(url.contains(&format!(":{}/", lab.ports.0)), "back on OLD");
}

/// The operator's platform for these tests: the lab's own hooks behind a script that, when a
/// fault file names an operation and an app, fails it once — exits 4, hangs, or prints what
/// is not JSON — as a real PaaS CLI can.
fn faulty_platform(dir: &Path) -> PathBuf {
    let script = dir.join("paas");
    std::fs::write(
        &script,
        r#"#!/bin/sh
op=$1; app=$2
fault="$FAULTS/$op-$app"
if [ -f "$fault" ]; then
  kind=$(cat "$fault"); rm -f "$fault"
  case "$kind" in
    exit) echo "paas: the API refused $op for $app (HTTP 500)" >&2; exit 4 ;;
    hang) sleep 600 ;;
    garbage) echo "PaaS CLI 2.1 - a new version is available"; exit 0 ;;
  esac
fi
exec "$LAB_BIN" lab hook "$op" "$app"
"#,
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// The fixture fleet with a `[platform]` table pointing at `script`.
fn inventory_with_platform(dir: &Path, script: &Path, faults: &Path) -> PathBuf {
    let fleet =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet.toml"))
            .expect("fixture fleet");
    let s = script.display();
    let platform = format!(
        r#"
[platform]
kind = "exec"
timeout = "60s"
env = {{ FAULTS = "{}", LAB_BIN = "{}" }}

[platform.commands]
status = "{s} status {{app}}"
pause = "{s} pause {{app}}"
unpause = "{s} unpause {{app}}"
set_database_url = {{ run = "{s} set_database_url {{app}}", timeout = "3s" }}
redeploy = "{s} redeploy {{app}}"
health = "{s} health {{app}}"
"#,
        faults.display(),
        support::bin()
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, fleet + &platform).expect("inventory");
    path
}

#[test]
fn platform_commands_that_fail_hang_or_print_garbage_are_classified_and_rolled_back() {
    let lab = platform_lab();
    let tmp = tempfile::tempdir().expect("tmp");
    let faults = tmp.path().join("faults");
    std::fs::create_dir_all(&faults).expect("faults");
    let script = faulty_platform(tmp.path());
    let inventory = inventory_with_platform(tmp.path(), &script, &faults);
    for (app, op, kind, what) in [
        ("atelier-stage", "redeploy", "exit", "exited with code 4"),
        (
            "rates-live",
            "set_database_url",
            "hang",
            "timed out after 3 s",
        ),
        (
            "museum-live",
            "status",
            "garbage",
            "printed what the contract does not allow",
        ),
    ] {
        reset(lab, app);
        std::fs::write(faults.join(format!("{op}-{app}")), kind).expect("fault");
        let t0 = Instant::now();
        let out = lab
            .cmd()
            .arg("--inventory")
            .arg(&inventory)
            .args(["migrate", "--app", app, "--json"])
            .output()
            .expect("migrate");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{app}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(what), "{app}: the failure says '{what}'");
        let ev = events(&out);
        assert_eq!(failure(&ev)["class"], "platform", "{app}: {}", failure(&ev));
        assert!(
            ev.iter()
                .any(|e| e["event"] == "rolled_back" && e["detail"] == "back on OLD, unpaused"),
            "{app} rolled back: {stdout}"
        );
        let (code, _) = get(lab, &format!("/{app}/"));
        assert_eq!(code, 200, "{app} serves after the rollback");
        let url = web_database_url(lab, app);
        assert!(url.contains(&format!(":{}/", lab.ports.0)), "{app} on OLD");
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{app}: no hang outlives its timeout"
        );
        let st = lab_status(lab);
        let paused = st["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .find(|a| a["name"] == app)
            .map(|a| a["paused"] == true);
        assert_eq!(paused, Some(false), "{app} is not left behind its page");
    }
}

#[test]
fn an_operator_inventory_of_remote_servers_migrates_through_the_exec_platform() {
    // The platform lab's servers and hooks stand in for an operator's: pgshift runs with a
    // state dir of its own, with no lab, and knows the servers only by URL and password file.
    let lab = platform_lab();
    let app = "shop-stage";
    reset(lab, app);
    let op = tempfile::tempdir().expect("operator dir");
    let secrets = lab.state.join("lab/secrets");
    let hook = format!(
        "env PGSHIFT_STATE_DIR={} PGSHIFT_LAB_PORT13={} PGSHIFT_LAB_PORT15={} PGSHIFT_LAB_ROUTER_PORT={} {} lab hook",
        lab.state.display(),
        lab.ports.0,
        lab.ports.1,
        router_port(lab.ports.0),
        support::bin()
    );
    let inventory = format!(
        r#"
[servers.zrh13]
version = 13
url = "postgres://pgshift@127.0.0.1:{p13}/postgres"
password = {{ file = "{s}/admin" }}

[servers.zrh15]
version = 15
url = "postgres://pgshift@127.0.0.1:{p15}/postgres"
password = {{ file = "{s}/admin" }}

[[regions]]
name = "ch-zrh"
targets = {{ "15" = "zrh15" }}

[[apps]]
name = "{app}"
region = "ch-zrh"
environment = "stage"
libpq = "15.4"

  [[apps.services]]
  id = "shop-stage-db"
  service = "postgresql-database-13"
  server = "zrh13"
  database = "shop_stage"
  user = "shop_stage"
  password = {{ file = "{s}/pg13/shop_stage" }}

[platform]
kind = "exec"
[platform.commands]
status = "{hook} status {{app}}"
pause = "{hook} pause {{app}}"
unpause = "{hook} unpause {{app}}"
set_database_url = "{hook} set_database_url {{app}}"
redeploy = "{hook} redeploy {{app}}"
health = "{hook} health {{app}}"
"#,
        p13 = lab.ports.0,
        p15 = lab.ports.1,
        s = secrets.display(),
    );
    let path = op.path().join("fleet.toml");
    std::fs::write(&path, inventory).expect("inventory");
    let run = |args: &[&str]| {
        Command::new(support::bin())
            .env("PGSHIFT_STATE_DIR", op.path().join("state"))
            .env("XDG_CONFIG_HOME", op.path().join("no-config"))
            .env("NO_COLOR", "1")
            .env_remove("PGSHIFT_LAB_PORT13")
            .env_remove("PGSHIFT_LAB_PORT15")
            .arg("--inventory")
            .arg(&path)
            .args(args)
            .output()
            .expect("pgshift")
    };
    let pre = run(&["preflight", "--json"]);
    check(&pre, "preflight on the operator's servers");
    let out = run(&["migrate", "--app", app, "--json"]);
    check(&out, "migrate on the operator's servers");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("verified: every table"),
        "verified: {stdout}"
    );
    assert_eq!(get(lab, &format!("/{app}/")).0, 200, "serving after");
    let url = web_database_url(lab, app);
    assert!(
        url.contains(&format!(":{}/shop_stage", lab.ports.1)),
        "on NEW"
    );
    let show = run(&["app", "show", app, "--json"]);
    check(&show, "app show");
    let v: Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(v["service"]["server"], "zrh15", "{v}");
    assert_eq!(v["state"], "migrated", "{v}");
}

#[test]
fn an_old_node_postgres_app_fails_with_its_drivers_own_text_and_retry_moves_it() {
    let lab = platform_lab();
    let app = "bazaar-live";
    reset(lab, app);
    let out = lab
        .cmd()
        .args(["migrate", "--app", app, "--json"])
        .output()
        .expect("migrate");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let f = failure(&ev);
    assert_eq!(f["class"], "libpq-scram", "{f}");
    assert_eq!(f["step"], "redeploy", "{f}");
    // node-postgres 7.8.2's own exception, thrown when NEW asks for SASL.
    assert!(
        f["line"]
            .as_str()
            .unwrap_or_default()
            .contains("Unknown authenticationOk message type"),
        "{f}"
    );
    assert_eq!(
        get(lab, &format!("/{app}/")).0,
        200,
        "serving from OLD again"
    );
    assert!(
        web_database_url(lab, app).contains(&format!(":{}/", lab.ports.0)),
        "on OLD"
    );

    let retry = lab
        .cmd()
        .args(["retry", "--app", app, "--json"])
        .output()
        .expect("retry");
    check(&retry, "retry (md5-password)");
    assert_eq!(get(lab, &format!("/{app}/")).0, 200, "serving from NEW");
    assert!(
        web_database_url(lab, app).contains(&format!(":{}/", lab.ports.1)),
        "on NEW"
    );
}
