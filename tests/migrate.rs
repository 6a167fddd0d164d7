//! Real single-app migrations on the lab's 13 and 15 servers: a plain app lands on NEW
//! verified; a libpq 9.x app and the btree app fail, are classified and rolled back; a killed
//! migration resumes; a second migrator is refused; no password leaks anywhere.

#[path = "support/lab.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::Lab;

fn reset(lab: &Lab, app: &str) {
    let out = lab
        .cmd()
        .args(["lab", "reset", "--app", app])
        .output()
        .expect("lab reset --app");
    support::check(&out, &format!("lab reset --app {app}"));
}

fn migrate_json(lab: &Lab, app: &str) -> (Output, Vec<serde_json::Value>) {
    let out = lab
        .cmd()
        .args(["migrate", "--app", app, "--json"])
        .output()
        .expect("migrate");
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out, events)
}

fn app_show(lab: &Lab, app: &str) -> serde_json::Value {
    let out = lab
        .cmd()
        .args(["app", "show", app, "--json"])
        .output()
        .expect("app show");
    support::check(&out, "app show");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Every password the lab knows (admin and every role on both servers).
fn secrets(lab: &Lab) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![lab.state.join("lab/secrets")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("secrets dir").flatten() {
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
    assert!(out.len() > 5, "secrets found: {}", out.len());
    out
}

/// No lab password in the given outputs, the app's step logs, or pgshift's log files.
fn assert_no_secrets(lab: &Lab, app: &str, outputs: &[&[u8]]) {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let lines = rt.block_on(async {
        let store = pgshift::store::Store::open(&format!(
            "sqlite://{}",
            lab.state.join("pgshift.db").display()
        ))
        .await
        .expect("store");
        store.app_log_lines(app).await.expect("logs")
    });
    assert!(!lines.is_empty(), "{app} has step logs");
    let mut hay: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(o).to_string())
        .collect();
    hay.push(lines.join("\n"));
    for e in std::fs::read_dir(lab.state.join("logs"))
        .expect("logs")
        .flatten()
    {
        hay.push(String::from_utf8_lossy(&std::fs::read(e.path()).expect("log")).to_string());
    }
    for s in secrets(lab) {
        for h in &hay {
            assert!(
                !h.contains(&s),
                "a lab password leaked into output or logs of {app}"
            );
        }
    }
}

/// Independent of pgshift: each table's rows as text, hashed in a fixed order.
/// Every table's row count and content, but `lab_app_writes`: the lab app's worker keeps
/// writing there (see `writes_before_the_pause_are_on_new_and_after_it_land_only_on_new`).
fn table_digest(lab: &Lab, major: u32, db: &str) -> String {
    let tables = lab.psql(major, db, "select string_agg(quote_ident(tablename), ' ' order by tablename) from pg_tables where schemaname = 'public' and tablename <> 'lab_app_writes'");
    let mut out = Vec::new();
    for t in tables.split(' ') {
        let d = lab.psql(
            major,
            db,
            &format!("set timezone = 'UTC'; select '{t}:' || count(*) || ':' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '') from {t} x"),
        );
        out.push(d.lines().last().unwrap_or_default().to_string());
    }
    out.join("\n")
}

fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn plain_app_migrates_verified_unpaused_with_a_listed_backup() {
    let lab = support::lab();
    let app = "shop-stage";
    reset(lab, app);
    let old_before = table_digest(lab, 13, "shop_stage");
    let (out, events) = migrate_json(lab, app);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = events_of(&events, "done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["outcome"], "migrated");
    let finished: Vec<&str> = events_of(&events, "step_finished")
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        finished,
        [
            "collect",
            "reprovision",
            "pause",
            "backup",
            "restore",
            "verify",
            "enable",
            "redeploy",
            "unpause",
            "health",
            "compress_backup",
            "schedule_deprovision"
        ]
    );
    // pgshift's own copy: one read of OLD in the backup step loaded NEW too.
    let logged = |step: &str, what: &str| {
        events_of(&events, "log")
            .iter()
            .any(|e| e["step"] == step && e["line"].as_str().unwrap().contains(what))
    };
    assert!(
        logged("backup", "in one read of OLD"),
        "the copy is announced"
    );
    assert!(logged("backup", "backup kept: "), "the backup is kept");
    assert!(
        logged("restore", "was loaded from the backup step's read of OLD"),
        "nothing left to restore"
    );

    // NEW equals OLD, by our own queries; OLD is untouched.
    assert_eq!(table_digest(lab, 15, "shop_stage"), old_before);
    assert_eq!(table_digest(lab, 13, "shop_stage"), old_before);
    // No write lost: every row the app wrote on OLD is on NEW, none reached OLD after the
    // snapshot, and its writes now land on NEW.
    let ids = |major| {
        lab.psql(
            major,
            "shop_stage",
            "select coalesce(string_agg(id::text, ',' order by id), '') from lab_app_writes",
        )
    };
    let on_old = ids(13);
    assert!(
        !on_old.is_empty(),
        "the app's worker wrote on OLD before the migration"
    );
    let on_new = ids(15);
    assert!(
        on_new.starts_with(&on_old),
        "every row written on OLD is on NEW: OLD {on_old}, NEW {on_new}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ids(13), on_old, "no write reached OLD after the snapshot");
    let later = ids(15);
    assert!(
        later.len() > on_new.len(),
        "the app writes on NEW after the unpause: {on_new} → {later}"
    );
    assert_eq!(
        lab.psql(
            15,
            "shop_stage",
            "select last_value from invoice_number_seq"
        ),
        lab.psql(
            13,
            "shop_stage",
            "select last_value from invoice_number_seq"
        )
    );
    assert_eq!(
        lab.psql(
            15,
            "shop_stage",
            "select tableowner from pg_tables where tablename = 'orders'"
        ),
        "shop_stage"
    );
    assert_eq!(
        lab.psql(
            15,
            "shop_stage",
            "select count(*) from pg_extension where extname = 'hstore'"
        ),
        "1"
    );
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select left(rolpassword, 14) from pg_authid where rolname = 'shop_stage'"
        ),
        "SCRAM-SHA-256$"
    );
    let cfg = lab.psql(15, "postgres", "select array_to_string(setconfig, ',') from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = 'shop_stage'");
    assert!(cfg.contains("statement_timeout=30s"), "{cfg}");

    let show = app_show(lab, app);
    assert_eq!(show["state"], "migrated");
    assert_eq!(show["paused"], false);
    assert_eq!(show["service"]["server"], "pg15");
    assert!(
        show["database_url"]
            .as_str()
            .unwrap()
            .contains(&format!(":****@127.0.0.1:{}/shop_stage", support::PORT15)),
        "{show}"
    );

    let backups = lab
        .cmd()
        .args(["backups", "--json"])
        .output()
        .expect("backups");
    let b: serde_json::Value = serde_json::from_slice(&backups.stdout).expect("json");
    let mine: Vec<_> = b
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["app"] == app)
        .collect();
    let last = mine.last().expect("a backup of shop-stage");
    assert_eq!(last["sha256"].as_str().unwrap().len(), 64);
    assert!(last["size_bytes"].as_i64().unwrap() > 10_000);
    assert!(
        last["notes"]
            .as_str()
            .unwrap()
            .starts_with("Backup taken prior to the migration")
    );
    assert!(
        std::path::Path::new(last["path"].as_str().unwrap())
            .join("toc.dat")
            .exists()
    );

    assert_no_secrets(lab, app, &[&out.stdout, &out.stderr]);
}

#[test]
fn libpq9_app_fails_at_redeploy_rolls_back_and_retry_with_md5_migrates_it() {
    let lab = support::lab();
    let app = "clinic-stage";
    reset(lab, app);
    let (out, events) = migrate_json(lab, app);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failure = events_of(&events, "failure");
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0]["step"], "redeploy");
    assert_eq!(failure[0]["class"], "libpq-scram");
    // What the app printed, through the real libpq 9.6.2 it loads (the lab's image).
    // (Its web and its worker both fail; whichever said it first is the matched line.)
    let line = failure[0]["line"].as_str().unwrap_or_default();
    assert!(
        ["web", "worker"].iter().any(|p| line
            == format!("{p}: cannot connect: authentication method 10 not supported")),
        "{line}"
    );
    assert!(
        events_of(&events, "log").iter().any(|e| {
            e["step"] == "redeploy" && e["line"].as_str().unwrap() == "web: libpq 9.6.2"
        })
    );
    assert_eq!(events_of(&events, "done")[0]["outcome"], "failed");

    let show = app_show(lab, app);
    assert_eq!(show["state"], "failed");
    assert_eq!(show["paused"], false, "never left paused");
    assert_eq!(show["service"]["server"], "pg13", "back on OLD");
    let url = show["url"].as_str().expect("the app's URL").to_string();
    let (code, body) = support::http_get(&url).expect("GET");
    assert_eq!(code, 200, "serving from OLD again: {body}");
    // NEW is kept for inspection.
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select count(*) from pg_database where datname = 'clinic_stage'"
        ),
        "1"
    );

    // The default remediation: NEW's role hashed md5, redeployed, the image flagged.
    let retry = lab
        .cmd()
        .args(["retry", "--app", app, "--json"])
        .output()
        .expect("retry");
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let ev: Vec<serde_json::Value> = String::from_utf8_lossy(&retry.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events_of(&ev, "failure").is_empty());
    assert!(
        events_of(&ev, "step_finished")
            .iter()
            .any(|e| e["step"] == "verify" && e["state"] == "done")
    );
    assert!(
        events_of(&ev, "step_finished")
            .iter()
            .any(|e| e["step"] == "health" && e["state"] == "done"),
        "the app answers through its route on NEW"
    );
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select left(rolpassword, 3) from pg_authid where rolname = 'clinic_stage'"
        ),
        "md5"
    );
    let show = app_show(lab, app);
    assert_eq!(
        (show["state"].as_str(), show["paused"].as_bool()),
        (Some("migrated"), Some(false))
    );
    let (code, body) = support::http_get(&url).expect("GET");
    assert_eq!(code, 200, "serving from NEW: {body}");
    assert_eq!(show["service"]["server"], "pg15", "on NEW");
    assert_eq!(show["service"]["server"], "pg15");
    assert_eq!(show["needs_rebuild"], true);
    assert_no_secrets(
        lab,
        app,
        &[&out.stdout, &out.stderr, &retry.stdout, &retry.stderr],
    );
}

#[test]
fn btree_app_fails_building_its_index_rolls_back_and_retry_with_pglz_migrates_it() {
    let lab = support::lab();
    let app = "forum-live";
    reset(lab, app);
    let (out, events) = migrate_json(lab, app);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The index is built as soon as its table is copied, in the backup step's copy.
    let failure = events_of(&events, "failure");
    assert_eq!(failure[0]["step"], "backup");
    assert_eq!(failure[0]["class"], "btree-index-row-size");
    assert!(
        failure[0]["line"]
            .as_str()
            .unwrap()
            .contains("exceeds btree version 4 maximum 2704 for index \"redirects_source_idx\"")
    );
    let show = app_show(lab, app);
    assert_eq!(
        (show["state"].as_str(), show["paused"].as_bool()),
        (Some("failed"), Some(false))
    );
    assert_eq!(show["service"]["server"], "pg13");
    let failures = lab
        .cmd()
        .args(["failures", "--json"])
        .output()
        .expect("failures");
    let f: serde_json::Value = serde_json::from_slice(&failures.stdout).expect("json");
    let mine = f
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|x| x["app"] == app)
        .expect("failure listed");
    assert_eq!(mine["class"], "btree-index-row-size");
    assert_eq!(mine["region"], "ch-zrh");
    assert_eq!(mine["step"], "backup");
    let m = &mine["matched"][0];
    let line = m["line"].as_str().unwrap();
    let span = &line[m["start"].as_u64().unwrap() as usize..m["end"].as_u64().unwrap() as usize];
    assert!(
        span.starts_with("index row size ") && span.ends_with("\"redirects_source_idx\""),
        "{span}"
    );

    // The default remediation restores with pglz: the index exists on NEW exactly as on OLD.
    let retry = lab
        .cmd()
        .args(["retry", "--app", app])
        .output()
        .expect("retry");
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stdout)
    );
    let def = "select pg_get_indexdef('redirects_source_idx'::regclass)";
    assert_eq!(
        lab.psql(15, "forum_live", def),
        lab.psql(13, "forum_live", def)
    );
    let show = app_show(lab, app);
    assert_eq!(
        (show["state"].as_str(), show["paused"].as_bool()),
        (Some("migrated"), Some(false))
    );
    let open = lab
        .cmd()
        .args(["failures", "--json"])
        .output()
        .expect("failures");
    let f: serde_json::Value = serde_json::from_slice(&open.stdout).expect("json");
    assert!(
        !f.as_array().unwrap().iter().any(|x| x["app"] == app),
        "the failure is resolved"
    );
    assert_no_secrets(
        lab,
        app,
        &[&out.stdout, &out.stderr, &retry.stdout, &retry.stderr],
    );
}

#[test]
fn kill_9_during_restore_then_resume_ends_migrated_never_paused() {
    let lab = support::lab();
    let app = "tracker-live";
    reset(lab, app);
    // The dump path (`PGSHIFT_COPY=dump`): pg_restore runs in the restore step there. The
    // stream path's kill -9 is tests/crash.rs's.
    let mut child = lab
        .cmd()
        .env("PGSHIFT_COPY", "dump")
        .args(["migrate", "--app", app, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen_restore_output = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        if v["event"] == "log"
            && v["step"] == "restore"
            && v["line"]
                .as_str()
                .unwrap_or("")
                .contains("processing data for table \"public.events\"")
        {
            seen_restore_output = true;
            break;
        }
    }
    assert!(seen_restore_output, "restore of events started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let _ = child.wait();
    let show = app_show(lab, app);
    assert_eq!(
        show["paused"], true,
        "killed mid-window: still behind the page"
    );
    let url = show["url"].as_str().expect("the app's URL").to_string();
    assert_eq!(
        support::http_get(&url).expect("GET").0,
        503,
        "users meet the maintenance page until resume"
    );

    // The orphaned pg_restore dies with its parent (PDEATHSIG); give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ps = Command::new("pgrep")
            .args(["-f", "pg_restore.*tracker_live"])
            .output()
            .expect("pgrep");
        if ps.stdout.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = lab
        .cmd()
        .env("PGSHIFT_COPY", "dump")
        .args(["resume", "--json"])
        .output()
        .expect("resume");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let started = events_of(&events, "run_started");
    assert!(
        started
            .iter()
            .any(|e| e["app"] == app && e["resumed"] == true),
        "{events:?}"
    );
    let first_step = events_of(&events, "step_started")
        .into_iter()
        .find(|e| e["app"] == app)
        .expect("a step ran");
    assert_eq!(
        first_step["step"], "restore",
        "resumes at the first unfinished step"
    );
    let show = app_show(lab, app);
    assert_eq!(show["state"], "migrated");
    assert_eq!(show["paused"], false);
    let (code, body) = support::http_get(&url).expect("GET");
    assert_eq!(code, 200, "serving from NEW after resume: {body}");
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select count(*) from pg_database where datname like 'tracker%'"
        ),
        "1",
        "no duplicate NEW database"
    );
    assert_eq!(
        lab.psql(15, "tracker_live", "select count(*) from events"),
        lab.psql(13, "tracker_live", "select count(*) from events")
    );
    assert_no_secrets(lab, app, &[&out.stdout]);
}

#[test]
fn a_second_migrator_of_the_same_app_is_refused() {
    let lab = support::lab();
    let app = "fleetops-live";
    reset(lab, app);
    let mut first = lab
        .cmd()
        .args(["migrate", "--app", app, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("first migrate");
    let mut lines = BufReader::new(first.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        if v["event"] == "step_started" && v["step"] == "backup" {
            break;
        }
    }
    let second = lab
        .cmd()
        .args(["migrate", "--app", app])
        .output()
        .expect("second migrate");
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{app} is being migrated by another pgshift (pid {}",
            first.id()
        )),
        "{err}"
    );
    for _ in lines {}
    let st = first.wait().expect("first ends");
    assert_eq!(st.code(), Some(0), "the first migration is unharmed");
}

#[test]
fn unknown_and_non_candidate_apps_are_bad_input() {
    let lab = support::lab();
    let out = lab
        .cmd()
        .args(["migrate", "--app", "nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "pgshift: unknown app \"nope\" (pgshift inventory lists the fleet)"
    );
    let out = lab
        .cmd()
        .args(["migrate", "--app", "archive-live"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("archive-live is not a candidate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deprovision_waits_for_retention_and_confirmation_then_drops_only_old() {
    let lab = support::destructive_lab();
    let app = "school-stage";
    let exists = |major| {
        lab.psql(
            major,
            "postgres",
            "select count(*) from pg_database where datname = 'school_stage'",
        )
    };

    // The built-in runbook keeps OLD 7 days.
    reset(lab, app);
    let out = lab
        .cmd()
        .args(["migrate", "--app", app])
        .output()
        .expect("migrate");
    assert_eq!(out.status.code(), Some(0));
    let early = lab
        .cmd()
        .args(["deprovision", "--app", app, "--confirm"])
        .output()
        .expect("deprovision");
    assert_eq!(early.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("is kept until"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    assert_eq!(exists(13), "1");

    // A runbook without retention: still needs --confirm.
    reset(lab, app);
    let dir = tempfile::tempdir().expect("tmp");
    let rb = dir.path().join("no-retention.toml");
    std::fs::write(
        &rb,
        pgshift::runbook::PG13_TO_PG15.replace("after = \"7d\"", "after = \"0s\""),
    )
    .expect("write");
    let out = lab
        .cmd()
        .args(["migrate", "--app", app, "--runbook"])
        .arg(&rb)
        .output()
        .expect("migrate");
    assert_eq!(out.status.code(), Some(0));
    let unconfirmed = lab
        .cmd()
        .args(["deprovision", "--app", app])
        .output()
        .expect("deprovision");
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("add --confirm"));
    assert_eq!(exists(13), "1");
    let done = lab
        .cmd()
        .args(["deprovision", "--app", app, "--confirm"])
        .output()
        .expect("deprovision");
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(exists(13), "0", "OLD dropped");
    assert_eq!(exists(15), "1", "NEW untouched");
    assert_eq!(app_show(lab, app)["state"], "migrated");
    reset(lab, app);
}
