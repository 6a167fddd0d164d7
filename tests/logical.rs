//! The logical strategy on the lab's real 13 and 15 servers: writes on OLD until the pause are
//! all on NEW (row hashes of every table, sequences at least OLD's), the replication is gone
//! from both servers after every exit — success, DDL on OLD during catch-up, kill -9 during
//! the initial copy and during catch-up followed by `resume` — and an app with a table
//! without a primary key stays on the dump strategy, preflight naming the table.

#[path = "support/lab.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::Lab;

/// The built-in fleet with `strategy = "logical"` on the apps these tests migrate.
fn inventory(lab: &Lab) -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _g = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fleet.toml"))
        .expect("fleet.toml");
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        for app in [
            "shop-live",
            "booking-live",
            "rates-live",
            "school-live",
            "newsletter-live",
            "club-live",
        ] {
            if line.trim() == format!("name = \"{app}\"") {
                out.push_str("strategy = \"logical\"\n");
            }
        }
    }
    // Tests of this binary run in processes of their own: write aside, then rename, so that
    // no reader sees a half-written file.
    let path = lab.state.join("fleet-logical.toml");
    let tmp = lab
        .state
        .join(format!("fleet-logical.toml.{}", std::process::id()));
    std::fs::write(&tmp, out).expect("write inventory");
    std::fs::rename(&tmp, &path).expect("rename inventory");
    path
}

/// One test at a time: `resume` continues every unfinished run of the lab, and resets
/// restart apps.
fn serial() -> std::fs::File {
    support::destructive_lock()
}

fn cmd(lab: &Lab) -> std::process::Command {
    let mut c = lab.cmd();
    c.arg("--inventory").arg(inventory(lab));
    c
}

fn reset(lab: &Lab, app: &str, db: &str) {
    let out = cmd(lab)
        .args(["lab", "reset", "--app", app])
        .output()
        .expect("lab reset");
    support::check(&out, &format!("lab reset --app {app}"));
    // The app's worker creates its table when it starts: DDL, which must be over before a
    // logical migration takes its snapshot.
    let t = Instant::now();
    while lab.psql(
        13,
        db,
        "select count(*) from pg_tables where tablename = 'lab_app_writes'",
    ) != "1"
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{app}'s worker never wrote"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Slots, publications and roles of pgshift's replication on OLD, subscriptions on NEW.
fn replication_left(lab: &Lab, db: &str) -> Vec<String> {
    let mut left = Vec::new();
    for (major, d, sql) in [
        (
            13,
            "postgres",
            "select string_agg('slot ' || slot_name, ', ') from pg_replication_slots",
        ),
        (
            13,
            db,
            "select string_agg('publication ' || pubname, ', ') from pg_publication",
        ),
        (
            13,
            "postgres",
            "select string_agg('role ' || rolname, ', ') from pg_roles where rolname like 'pgshift\\_%\\_repl'",
        ),
        (
            15,
            "postgres",
            "select string_agg('subscription ' || subname, ', ') from pg_subscription",
        ),
    ] {
        let v = lab.psql(major, d, sql);
        if !v.is_empty() {
            left.push(format!("PG{major}: {v}"));
        }
    }
    left
}

/// Every table's rows (not the worker's own `lab_app_writes`, which its web process on NEW
/// may write to after unpause), hashed in a fixed order; every sequence's last value.
fn tables(lab: &Lab, major: u32, db: &str) -> Vec<String> {
    let names = lab.psql(major, db, "select string_agg(format('%I.%I', schemaname, tablename), ' ' order by 1) from pg_tables where schemaname not in ('pg_catalog', 'information_schema') and tablename <> 'lab_app_writes'");
    let mut names: Vec<&str> = names.split(' ').collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|t| {
            lab.psql(
                major,
                db,
                &format!("set timezone = 'UTC'; select '{t}:' || count(*) || ':' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '') from {t} x"),
            )
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
        })
        .collect()
}

fn sequences(lab: &Lab, major: u32, db: &str) -> Vec<(String, i64)> {
    lab.psql(
        major,
        db,
        "select format('%I.%I', schemaname, sequencename) || ' ' || coalesce(last_value, 0) from pg_sequences order by 1",
    )
    .lines()
    .map(|l| {
        let (n, v) = l.split_once(' ').expect("name value");
        (n.to_string(), v.parse().expect("number"))
    })
    .collect()
}

/// A client of OLD that inserts, updates and deletes in shop_live's tables and draws
/// invoice numbers, each a transaction; counts what committed. Any failed write fails the
/// test: pgshift must never make the app's own writes fail.
struct Load {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

fn load(lab: &Lab) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let url = lab.url(13).replacen("/postgres?", "/shop_live?", 1);
    let thread = {
        let (stop, committed) = (stop.clone(), committed.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            let mut n: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sql = format!(
                    "BEGIN;
                     INSERT INTO customers (email, name, created_at) VALUES ('load-{n}@example.ch', 'Load {n}', now());
                     UPDATE products SET price_cents = price_cents + 1 WHERE id = 1 + {n} % 50;
                     DELETE FROM order_items WHERE order_id = 1 + {n} % 5000 AND product_id = (SELECT min(product_id) FROM order_items WHERE order_id = 1 + {n} % 5000);
                     SELECT next_invoice_number();
                     COMMIT;"
                );
                let out = std::process::Command::new("psql")
                    .args([
                        url.as_str(),
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-c",
                        &sql,
                    ])
                    .output()
                    .expect("psql");
                if out.status.success() {
                    committed.fetch_add(1, Ordering::SeqCst);
                } else {
                    errors.push(String::from_utf8_lossy(&out.stderr).to_string());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            errors
        })
    };
    Load {
        stop,
        committed,
        thread,
    }
}

/// `pgshift migrate --app APP --json`, handing each event to `on` until it returns true
/// (then the child is returned still running) or the run ends.
fn migrate_until(
    lab: &Lab,
    app: &str,
    mut on: impl FnMut(&serde_json::Value) -> bool,
) -> (Child, Vec<serde_json::Value>, bool) {
    let mut child = cmd(lab)
        .args(["migrate", "--app", app, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrate");
    let stdout = child.stdout.take().expect("stdout");
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let stop = on(&v);
        events.push(v);
        if stop {
            return (child, events, true);
        }
    }
    (child, events, false)
}

fn finished(child: Child) -> Output {
    child.wait_with_output().expect("wait")
}

fn kill_9(mut child: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = child.wait();
}

fn app_show(lab: &Lab, app: &str) -> serde_json::Value {
    let out = cmd(lab)
        .args(["app", "show", app, "--json"])
        .output()
        .expect("app show");
    support::check(&out, "app show");
    serde_json::from_slice(&out.stdout).expect("json")
}

fn logs(events: &[serde_json::Value], step: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "log" && e["step"] == step)
        .filter_map(|e| e["line"].as_str().map(str::to_string))
        .collect()
}

fn steps(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .filter_map(|e| e["step"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn writes_on_old_until_the_pause_are_all_on_new_and_no_replication_is_left() {
    let _one = serial();
    let lab = support::destructive_lab();
    let (app, db) = ("shop-live", "shop_live");
    reset(lab, app, db);
    let load = load(lab);
    std::thread::sleep(Duration::from_millis(500));
    let mut paused_at_writes = None;
    let (child, events, _) = migrate_until(lab, app, |v| {
        if v["event"] == "step_started" && v["step"] == "pause" {
            // The app's traffic stops when its page goes up.
            load.stop.store(true, Ordering::SeqCst);
            paused_at_writes = Some(load.committed.load(Ordering::SeqCst));
        }
        false
    });
    let out = finished(child);
    load.stop.store(true, Ordering::SeqCst);
    let errors = load.thread.join().expect("load");
    let committed = load.committed.load(Ordering::SeqCst);
    support::check(&out, "migrate (logical)");
    assert!(errors.is_empty(), "the app's writes failed: {errors:?}");
    assert!(
        paused_at_writes.is_some_and(|n| n >= 5),
        "writes went on while NEW was copied and caught up: {paused_at_writes:?}"
    );
    let order = steps(&events);
    let at = |s: &str| order.iter().position(|x| x == s).unwrap_or(usize::MAX);
    assert!(
        at("backup") < at("restore")
            && at("restore") < at("verify")
            && at("verify") < at("subscribe")
            && at("subscribe") < at("catch_up")
            && at("catch_up") < at("pause")
            && at("pause") < at("sync")
            && at("sync") < at("enable")
            && at("enable") < at("unpause"),
        "{order:?}"
    );
    assert!(
        logs(&events, "collect")
            .iter()
            .any(|l| l.contains("strategy logical")),
        "{:?}",
        logs(&events, "collect")
    );
    assert_eq!(app_show(lab, app)["state"], "migrated");

    // Every committed write is on NEW once, nothing else: each table's rows hash the same.
    let (old, new) = (tables(lab, 13, db), tables(lab, 15, db));
    assert_eq!(old, new, "OLD and NEW differ after the migration");
    assert_eq!(
        lab.psql(
            15,
            db,
            "select count(*) from customers where email like 'load-%'"
        ),
        committed.to_string(),
        "every committed insert is on NEW, once"
    );
    for ((a, x), (b, y)) in sequences(lab, 13, db)
        .into_iter()
        .zip(sequences(lab, 15, db))
    {
        assert_eq!(a, b);
        assert!(y >= x, "sequence {a}: NEW {y} < OLD {x}");
    }
    // NEW's sequences go on from OLD's: the next invoice number is new.
    let next: i64 = lab
        .psql(15, db, "select next_invoice_number()")
        .parse()
        .unwrap();
    let old_last: i64 = lab
        .psql(13, db, "select last_value from invoice_number_seq")
        .parse()
        .unwrap();
    assert!(next > old_last);
    assert_eq!(replication_left(lab, db), Vec::<String>::new());
}

#[test]
fn ddl_on_old_during_catch_up_stops_the_run_before_the_pause_and_drops_the_slot() {
    let _one = serial();
    let lab = support::destructive_lab();
    let (app, db) = ("newsletter-live", "newsletter_live");
    reset(lab, app, db);
    // After the backup's snapshot (pg_dump has let go of its locks), well before catch-up
    // reads the schema: restore, verify and subscribe come first.
    let (child, events, _) = migrate_until(lab, app, |v| {
        if v["event"] == "step_started" && v["step"] == "restore" {
            lab.psql(13, db, "ALTER TABLE contacts ADD COLUMN nickname text");
        }
        false
    });
    let out = finished(child);
    assert_eq!(out.status.code(), Some(3), "a classified failure");
    let order = steps(&events);
    assert!(
        !order.iter().any(|s| s == "pause"),
        "never paused: {order:?}"
    );
    assert!(
        logs(&events, "catch_up")
            .iter()
            .any(|l| l.contains("schema changed") && l.contains("DDL")),
        "{:?}",
        logs(&events, "catch_up")
    );
    assert!(
        logs(&events, "rollback")
            .iter()
            .any(|l| l.contains("dropped") && l.contains("slot")),
        "{:?}",
        logs(&events, "rollback")
    );
    let show = app_show(lab, app);
    assert_eq!(show["state"], "failed");
    assert_eq!(show["paused"], false);
    assert_eq!(replication_left(lab, db), Vec::<String>::new());
}

/// Kill pgshift at `when`, run `after_kill`, then `resume`: it ends migrated and nothing of
/// the replication is left. Where the resumed run went on, for the caller to check.
fn kill_then_resume(
    lab: &Lab,
    app: &str,
    db: &str,
    when: impl FnMut(&serde_json::Value) -> bool,
    after_kill: impl FnOnce(),
) -> Option<String> {
    reset(lab, app, db);
    let (child, events, hit) = migrate_until(lab, app, when);
    assert!(hit, "never reached the kill point: {:?}", steps(&events));
    kill_9(child);
    after_kill();
    let out = cmd(lab)
        .args(["resume", "--json"])
        .output()
        .expect("resume");
    support::check(&out, "resume");
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "step_started" && v["app"] == app)
        .map(|v| v["step"].as_str().unwrap_or_default().to_string());
    let show = app_show(lab, app);
    assert_eq!(show["state"], "migrated", "{show}");
    assert_eq!(show["paused"], false);
    assert_eq!(tables(lab, 13, db), tables(lab, 15, db));
    assert_eq!(replication_left(lab, db), Vec::<String>::new());
    first
}

#[test]
fn kill_9_during_the_initial_copy_then_resume_ends_migrated_with_no_slot_left() {
    let _one = serial();
    let lab = support::destructive_lab();
    let slot_made = AtomicBool::new(false);
    let resumed = kill_then_resume(
        lab,
        "booking-live",
        "booking_live",
        |v| {
            if v["event"] == "log"
                && v["step"] == "backup"
                && v["line"].as_str().unwrap_or("").contains("logical slot")
            {
                slot_made.store(true, Ordering::SeqCst);
            }
            // Once the slot exists, while pg_dump copies.
            slot_made.load(Ordering::SeqCst)
                && v["event"] == "log"
                && v["step"] == "backup"
                && v["line"].as_str().unwrap_or("").contains("pg_dump: ")
        },
        || {},
    );
    assert_eq!(
        resumed.as_deref(),
        Some("backup"),
        "where the resumed run went on"
    );
}

/// A transaction on NEW holding a SHARE lock on `companies`, and 50 rows for it on OLD: NEW's
/// apply (ROW EXCLUSIVE) waits on the lock, so catch-up waits for as long as the holder lives.
/// Not ACCESS EXCLUSIVE: CREATE SUBSCRIPTION takes ACCESS SHARE on each table, and would wait
/// on the holder for ever if the lock came first.
fn hold_apply(lab: &Lab, db: &str) -> Child {
    let url = lab.url(15).replacen("/postgres?", &format!("/{db}?"), 1);
    let mut psql = std::process::Command::new("psql")
        .args([url.as_str(), "-X", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    use std::io::Write;
    let stdin = psql.stdin.as_mut().expect("stdin");
    writeln!(stdin, "BEGIN; LOCK TABLE companies IN SHARE MODE;").expect("lock");
    stdin.flush().expect("flush");
    // Only once NEW's lock is granted: before that, the apply worker could take the rows and
    // catch-up end before the test's kill.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lab.psql(
        15,
        db,
        "select count(*) from pg_locks l join pg_class c on c.oid = l.relation \
         where c.relname = 'companies' and l.mode = 'ShareLock' and l.granted",
    ) != "1"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "NEW's lock on companies never granted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    lab.psql(
        13,
        db,
        "INSERT INTO companies (name, country) SELECT 'caught up ' || g, 'CH' FROM generate_series(1, 50) g",
    );
    psql
}

fn release(holder: Option<Child>) {
    if let Some(mut p) = holder {
        drop(p.stdin.take());
        let _ = p.wait();
    }
}

fn in_catch_up(v: &serde_json::Value) -> bool {
    v["event"] == "log"
        && v["step"] == "catch_up"
        && v["line"].as_str().unwrap_or("").contains("catching up")
}

#[test]
fn ctrl_c_during_catch_up_rolls_back_and_drops_the_slot() {
    let _one = serial();
    let lab = support::destructive_lab();
    let (app, db) = ("school-live", "school_live");
    reset(lab, app, db);
    let mut holder = None;
    let (child, events, hit) = migrate_until(lab, app, |v| {
        if v["event"] == "step_started" && v["step"] == "subscribe" {
            holder = Some(hold_apply(lab, db));
        }
        in_catch_up(v)
    });
    assert!(hit, "{:?}", steps(&events));
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("ctrl-c");
    // The rollback's DROP SUBSCRIPTION waits for NEW's apply worker, which waits for the lock.
    release(holder);
    let out = finished(child);
    assert_eq!(out.status.code(), Some(3), "a cancelled run exits 3");
    let show = app_show(lab, app);
    assert_eq!(show["state"], "rolled_back", "{show}");
    assert_eq!(show["paused"], false);
    assert_eq!(replication_left(lab, db), Vec::<String>::new());
}

#[test]
fn kill_9_during_catch_up_then_resume_ends_migrated_with_no_slot_left() {
    let _one = serial();
    let lab = support::destructive_lab();
    let (app, db) = ("rates-live", "rates_live");
    // NEW cannot apply while the test holds a lock on one of its tables: catch-up waits, and
    // the kill lands in it. The kill must land inside catch-up; when pgshift raced past it before the test held the
    // lock (a fast machine), the scenario ran to a valid end all the same: run it again.
    let mut resumed = None;
    for _ in 0..3 {
        let holder: Mutex<Option<Child>> = Mutex::new(None);
        resumed = kill_then_resume(
            lab,
            app,
            db,
            |v| {
                if v["event"] == "step_started" && v["step"] == "subscribe" {
                    *holder.lock().unwrap() = Some(hold_apply(lab, db));
                }
                if in_catch_up(v) {
                    // A moment inside the wait, then kill; the lock goes with the holder.
                    std::thread::sleep(Duration::from_millis(500));
                    return true;
                }
                false
            },
            || release(holder.lock().unwrap().take()),
        );
        if resumed.as_deref() == Some("catch_up") {
            break;
        }
    }
    assert_eq!(
        resumed.as_deref(),
        Some("catch_up"),
        "where the resumed run went on"
    );
    assert_eq!(
        lab.psql(
            15,
            db,
            "select count(*) from companies where name like 'caught up %'"
        ),
        "50"
    );
}

#[test]
fn a_table_without_a_primary_key_keeps_club_live_on_dump_and_preflight_says_why() {
    let _one = serial();
    let lab = support::destructive_lab();
    let out = cmd(lab)
        .args(["preflight", "--app", "club-live"])
        .output()
        .expect("preflight");
    support::check(&out, "preflight --app club-live");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("strategy"))
        .unwrap_or_else(|| panic!("no strategy line:\n{text}"));
    assert!(line.contains("strategy dump"), "{line}");
    assert!(
        line.contains("without a primary key") && line.contains("app.notes"),
        "{line}"
    );
    assert!(
        line.contains("large object") && line.contains("unlogged"),
        "{line}"
    );
    // Nothing published, so the app's own writes to that table go on.
    assert_eq!(
        lab.psql(13, "club_live", "select count(*) from pg_publication"),
        "0"
    );
    lab.psql(
        13,
        "club_live",
        "update app.notes set body = body where id = (select min(id) from app.notes)",
    );
}
