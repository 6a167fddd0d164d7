//! kill -9 of pgshift during a restore, then `resume` at once: the dead run's pg_restore (and
//! its parallel workers) are ended before the resumed run starts its own, so two pg_restore of
//! one app never overlap, and no password file outlives its run. And kill -9 while pgshift's
//! own copy tees OLD into NEW and the backup: `resume` migrates, and the backup the store
//! records is complete, its checksum right.

#[path = "support/lab.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const APP: &str = "tracker-live";
const DB: &str = "tracker_live";

/// Process groups of the pg_restore processes restoring `DB` now.
fn restore_groups() -> BTreeSet<i32> {
    support::pg_restores_of(DB)
        .into_iter()
        .map(|(_, g)| g)
        .collect()
}

fn leftovers(run_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(run_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("pgpass-") || n.starts_with("pgid-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Both tests migrate tracker-live on the destructive lab and run `resume`: one at a time,
/// and not while another binary's test kills or resumes there (support::destructive_lock).
fn tracker() -> std::fs::File {
    support::destructive_lock()
}

#[test]
fn resume_right_after_kill_9_during_restore_never_overlaps_pg_restore() {
    let _one = tracker();
    let lab = support::destructive_lab();
    let reset = lab
        .cmd()
        .args(["lab", "reset", "--app", APP])
        .output()
        .expect("reset");
    support::check(&reset, "lab reset --app");

    // Watch /proc from now on: at no moment two groups restore the app.
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let watcher = {
        let (stop, worst, seen) = (stop.clone(), worst.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let g = restore_groups();
                seen.lock().unwrap().extend(g.iter().copied());
                if g.len() > worst.lock().unwrap().len() {
                    *worst.lock().unwrap() = g;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // The dump path: pg_restore runs in the restore step there.
    let mut migrate = lab
        .cmd()
        .env("PGSHIFT_COPY", "dump")
        .args(["migrate", "--app", APP, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let stdout = migrate.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Until the restore step starts, then until its pg_restore runs.
    support::until_step_started(&mut lines, "restore");
    support::into_pg_restore(DB);
    migrate.kill().expect("kill -9");
    migrate.wait().expect("reap");
    drop(lines);

    // At once.
    let resume = lab
        .cmd()
        .env("PGSHIFT_COPY", "dump")
        .args(["resume"])
        .output()
        .expect("resume");
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    support::check(&resume, "resume");

    let worst = worst.lock().unwrap().clone();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 2,
        "the resumed run restored with a pg_restore of its own: {seen:?}"
    );
    assert_eq!(worst.len(), 1, "two pg_restore groups at once: {worst:?}");
    assert!(restore_groups().is_empty());
    let left = leftovers(&lab.state.join("run"));
    assert!(left.is_empty(), "left in STATE/run: {left:?}");
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            &format!("select count(*) from pg_database where datname = '{DB}'")
        ),
        "1"
    );
}

/// The data files of a copy still being written, and their bytes so far.
fn partial_bytes(backups: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(backups) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter(|f| f.file_name().to_string_lossy().ends_with(".dat"))
        .filter(|f| f.file_name() != "toc.dat")
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn kill_9_while_the_copy_tees_then_resume_migrates_and_the_backup_is_complete() {
    let _one = tracker();
    let lab = support::destructive_lab();
    let reset = lab
        .cmd()
        .args(["lab", "reset", "--app", APP])
        .output()
        .expect("reset");
    support::check(&reset, "lab reset --app");
    let backups = lab.state.join("backups").join(APP);

    let mut migrate = lab
        .cmd()
        .env("PGSHIFT_COPY", "stream")
        .args(["migrate", "--app", APP, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let stdout = migrate.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    support::until_step_started(&mut lines, "backup");
    // In the middle of the tee: rows are in the partial archive's data files.
    let t = Instant::now();
    while partial_bytes(&backups) < 4_000_000 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the copy never streamed rows"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    migrate.kill().expect("kill -9");
    migrate.wait().expect("reap");
    drop(lines);
    // Nothing the store calls a backup yet: only a partial archive.
    let listed = lab
        .cmd()
        .args(["backups", "--json"])
        .output()
        .expect("backups");
    support::check(&listed, "backups");
    let before: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("json");

    let resume = lab
        .cmd()
        .env("PGSHIFT_COPY", "stream")
        .args(["resume"])
        .output()
        .expect("resume");
    support::check(&resume, "resume");
    let out = String::from_utf8_lossy(&resume.stdout);
    assert!(out.contains("migrated"), "{out}");

    let listed = lab
        .cmd()
        .args(["backups", "--json"])
        .output()
        .expect("backups");
    let after: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("json");
    let ours: Vec<&serde_json::Value> = after
        .iter()
        .filter(|b| b["app"] == APP && !before.contains(b))
        .collect();
    assert_eq!(ours.len(), 1, "one new backup recorded: {ours:?}");
    let path = std::path::PathBuf::from(ours[0]["path"].as_str().expect("path"));
    let (bytes, sha) = pgshift::postgres::digest::hash_dir(&path).expect("hash the backup");
    assert_eq!(ours[0]["sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(ours[0]["size_bytes"].as_i64(), Some(bytes as i64));
    let leftover: Vec<String> = std::fs::read_dir(&backups)
        .expect("backups dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(leftover.is_empty(), "partial archives left: {leftover:?}");
    // Complete: a TABLE DATA entry, and its file, for every table of OLD.
    let list = std::process::Command::new("pg_restore")
        .arg("--list")
        .arg(&path)
        .output()
        .expect("pg_restore --list");
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout);
    let tables: usize = lab
        .psql(
            13,
            DB,
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'",
        )
        .parse()
        .expect("count");
    assert!(tables > 0);
    assert_eq!(listed.matches(" TABLE DATA ").count(), tables, "{listed}");
}
