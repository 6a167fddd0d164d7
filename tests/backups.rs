//! Backups: gzipped after the app serves again, restorable with a plain pg_restore at every
//! point (even after a kill -9 in the middle of compressing), listed with their size on disk
//! and expiry, and swept only when expired and no longer needed.

#[path = "support/lab.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgshift::inventory::Secret;
use pgshift::postgres::Endpoint;
use pgshift::postgres::verify::{self, ReadOptions, RowHash};
use support::Lab;

const APP: &str = "tracker-live";
const DB: &str = "tracker_live";

fn admin(lab: &Lab, major: u32) -> Endpoint {
    let pass = std::fs::read_to_string(lab.state.join("lab/secrets/admin")).expect("admin secret");
    Endpoint {
        host: "127.0.0.1".into(),
        port: if major == 13 {
            lab.ports.0
        } else {
            lab.ports.1
        },
        user: "pgshift".into(),
        password: Secret::new(pass.trim()),
    }
}

fn sqlite(lab: &Lab, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg(lab.state.join("pgshift.db"))
        .arg(sql)
        .output()
        .expect("sqlite3");
    support::check(&out, sql);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn pg_restore() -> PathBuf {
    let p = PathBuf::from("/usr/lib/postgresql/15/bin/pg_restore");
    if p.exists() { p } else { "pg_restore".into() }
}

/// Restore `dir` with a plain pg_restore into a new, empty database on the lab's 15, and
/// compare it with OLD by the project's own verification (row counts and content hashes).
fn restores_equal_to_old(lab: &Lab, dir: &Path, name: &str, rt: &tokio::runtime::Runtime) {
    lab.psql(15, "postgres", &format!("DROP DATABASE IF EXISTS {name}"));
    lab.psql(15, "postgres", &format!("CREATE DATABASE {name}"));
    let url = lab.url(15).replacen("/postgres?", &format!("/{name}?"), 1);
    let out = Command::new(pg_restore())
        .args(["--no-owner", "--no-privileges", "-j", "2", "-d", &url])
        .arg(dir)
        .output()
        .expect("pg_restore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // As the engine does: the app role's ownership is not the admin's to give; nothing else.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("error:") && !l.contains("must be owner of"))
        .collect();
    assert!(
        errors.is_empty(),
        "pg_restore of {}: {stderr}",
        dir.display()
    );
    let how = ReadOptions {
        row_hash: RowHash::Typed,
        connections: 2,
        ..Default::default()
    };
    let old = rt
        .block_on(verify::fingerprint(&admin(lab, 13), DB, &how))
        .expect("OLD");
    let back = rt
        .block_on(verify::fingerprint(&admin(lab, 15), name, &how))
        .expect("restored");
    // Role and database settings are not in a dump (reprovision copies them onto NEW); every
    // table's rows and content hash, sequences and object counts are.
    let diffs: Vec<String> = verify::differences(&old, &back)
        .into_iter()
        .filter(|d| !d.starts_with("settings:"))
        .collect();
    assert!(
        diffs.is_empty(),
        "{} differs from OLD: {diffs:?}",
        dir.display()
    );
    assert!(
        old.rows() > 100_000,
        "a real amount of data: {} rows",
        old.rows()
    );
    lab.psql(15, "postgres", &format!("DROP DATABASE {name}"));
}

fn backups_json(lab: &Lab) -> Vec<serde_json::Value> {
    let out = lab
        .cmd()
        .args(["backups", "--json"])
        .output()
        .expect("backups");
    support::check(&out, "backups --json");
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("json")
}

#[test]
fn compressed_backups_restore_survive_a_crash_and_only_expired_ones_are_swept() {
    let lab = support::destructive_lab();
    let _serial = support::destructive_lock();
    // A run an earlier, failed attempt left behind is finished first: reset refuses it.
    let _ = lab.cmd().args(["resume"]).output().expect("resume");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let reset = lab
        .cmd()
        .args(["lab", "reset", "--app", APP])
        .output()
        .expect("reset");
    support::check(&reset, "lab reset --app");

    // Migrate; kill -9 in the middle of compressing the backup.
    let mut migrate = lab
        .cmd()
        .args(["migrate", "--app", APP, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let mut lines = BufReader::new(migrate.stdout.take().expect("stdout")).lines();
    let mut order: Vec<String> = Vec::new();
    let mut dir: Option<PathBuf> = None;
    let started = Instant::now();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "step_started" || v["event"] == "step_finished" {
            order.push(format!(
                "{} {}",
                v["event"].as_str().unwrap_or(""),
                v["step"].as_str().unwrap_or("")
            ));
        }
        if let Some(l) = v["line"].as_str()
            && let Some(rest) = l.strip_prefix("backup kept: ")
        {
            dir = rest.split(" (").next().map(PathBuf::from);
        }
        if v["event"] == "step_started" && v["step"] == "compress_backup" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no compress_backup"
        );
    }
    let dir = dir.expect("the backup's directory");
    let t = Instant::now();
    loop {
        let f = files(&dir);
        if f.iter().any(|n| n.ends_with(".gz.tmp")) && f.iter().any(|n| n.ends_with(".dat.gz")) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "compression never got half-way: {f:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    migrate.kill().expect("kill -9");
    migrate.wait().expect("reap");
    drop(lines);
    // Off the paused path: compression began after the app served again and answered.
    let at = |s: &str| order.iter().position(|o| o == s).unwrap_or(usize::MAX);
    assert!(
        at("step_finished unpause") < at("step_started compress_backup")
            && at("step_finished health") < at("step_started compress_backup"),
        "{order:?}"
    );
    let crashed = files(&dir);
    eprintln!("after kill -9 during compression: {crashed:?}");
    assert!(
        crashed.iter().any(|n| n.ends_with(".gz.tmp")),
        "{crashed:?}"
    );
    restores_equal_to_old(lab, &dir, "backup_check_crashed", &rt);

    // resume finishes the run: the compression too.
    let resume = lab.cmd().args(["resume"]).output().expect("resume");
    support::check(&resume, "resume");
    let done = files(&dir);
    assert!(
        done.iter()
            .all(|n| n == "toc.dat" || (n.ends_with(".dat.gz") && !n.ends_with(".gz.tmp"))),
        "{done:?}"
    );
    assert!(
        done.iter().filter(|n| n.ends_with(".dat.gz")).count() >= 2,
        "{done:?}"
    );
    restores_equal_to_old(lab, &dir, "backup_check", &rt);

    // Listed with its size on disk (after compression) and its expiry (the runbook's 14 d).
    let run: i64 = sqlite(
        lab,
        &format!("SELECT MAX(run_id) FROM steps WHERE app = '{APP}'"),
    )
    .parse()
    .expect("run");
    let list = backups_json(lab);
    let b = list
        .iter()
        .find(|b| b["app"] == APP && b["run_id"] == run)
        .expect("the run's backup")
        .clone();
    let disk = b["disk_bytes"].as_u64().expect("on disk");
    let dumped = b["dump_bytes"].as_u64().expect("dumped");
    eprintln!("backup of {APP}: pg_dump wrote {dumped} bytes, {disk} on disk gzipped");
    assert!(disk * 2 < dumped, "compressed: {disk} of {dumped}");
    assert_eq!(b["size_bytes"].as_u64(), Some(disk));
    assert!(b["compressed_at"].is_string(), "{b}");
    let expires = chrono::DateTime::parse_from_rfc3339(b["expires_at"].as_str().expect("expiry"))
        .expect("rfc3339");
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((13.9..=14.0).contains(&days), "expires in {days} days");
    let text = lab.cmd().args(["backups"]).output().expect("backups");
    support::check(&text, "backups");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains(b["expires_at"].as_str().unwrap_or("?")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:.1} MB", disk as f64 / 1e6)),
        "{text}"
    );

    // Sweep: this backup expired; a second, expired too, of an app that is not migrated (a
    // copy of this one, under a failed app's name); older ones of this app not expired.
    let past = "2026-01-01T00:00:00Z";
    sqlite(
        lab,
        &format!("UPDATE backups SET expires_at = '{past}' WHERE app = '{APP}' AND run_id = {run}"),
    );
    // An app the store knows as failed (not the fixture fleet's: nothing else touches it).
    let other_app = "sweep-test-failed";
    let other_dir = lab.state.join("backups").join(other_app).join("step-1");
    let _ = std::fs::remove_dir_all(&other_dir);
    std::fs::create_dir_all(&other_dir).expect("dir");
    for f in &done {
        std::fs::copy(dir.join(f), other_dir.join(f)).expect("copy");
    }
    sqlite(
        lab,
        &format!(
            "DELETE FROM backups WHERE app = '{other_app}'; \
         INSERT OR REPLACE INTO apps (name, region, environment, customer, libpq, state, paused, updated_at) \
         VALUES ('{other_app}', 'ch-zrh', 'live', 'test', '14', 'failed', 0, '{past}'); \
         INSERT INTO backups (app, service_id, run_id, server, database, path, format, size_bytes, sha256, notes, created_at, expires_at) \
         VALUES ('{other_app}', 'x-db', NULL, 'pg13', 'x', '{}', 'directory', 1, 'x', '', '{past}', '{past}')",
            other_dir.display()
        ),
    );
    let others_before: Vec<serde_json::Value> = backups_json(lab)
        .into_iter()
        .filter(|x| !(x["app"] == APP && x["run_id"] == run))
        .collect();

    let dry = lab
        .cmd()
        .args(["backups", "sweep", "--json"])
        .output()
        .expect("sweep");
    support::check(&dry, "backups sweep");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&dry.stdout).expect("json");
    assert!(
        listed
            .iter()
            .any(|s| s["app"] == APP && s["deleted"] == false),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|s| s["app"] == other_app), "{listed:?}");
    assert!(dir.is_dir(), "a dry run deletes nothing");

    let yes = lab
        .cmd()
        .args(["backups", "sweep", "--yes", "--json"])
        .output()
        .expect("sweep --yes");
    support::check(&yes, "backups sweep --yes");
    let swept: Vec<serde_json::Value> = serde_json::from_slice(&yes.stdout).expect("json");
    assert!(
        swept
            .iter()
            .any(|s| s["app"] == APP && s["deleted"] == true),
        "{swept:?}"
    );
    assert!(swept.iter().all(|s| s["deleted"] == true));
    assert!(!dir.exists(), "the expired backup's files are gone");
    assert!(other_dir.is_dir(), "a not-migrated app's backup stays");
    let after = backups_json(lab);
    assert!(!after.iter().any(|x| x["app"] == APP && x["run_id"] == run));
    // Consistent: every other row is still there, and every row the sweep kept names files.
    for o in &others_before {
        let kept = after.iter().find(|x| x["id"] == o["id"]);
        let expired_and_migrated = swept.iter().any(|s| s["id"] == o["id"]);
        assert_eq!(kept.is_none(), expired_and_migrated, "{o}");
    }
    for x in &after {
        if x["app"] == APP || x["app"] == other_app {
            assert!(x["disk_bytes"].is_u64(), "a row without its files: {x}");
        }
    }
    sqlite(
        lab,
        &format!(
            "DELETE FROM backups WHERE app = '{other_app}'; DELETE FROM apps WHERE name = '{other_app}'"
        ),
    );
    std::fs::remove_dir_all(&other_dir).expect("cleanup");
}
