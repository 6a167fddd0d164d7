//! The control store on both dialects: embedded migrations apply on open (and again as a
//! no-op), the inventory syncs without losing app state.

#[path = "support/lab.rs"]
mod support;

use pgshift::domain::{AppState, RunStatus, StepState};
use pgshift::inventory::{self, Source};
use pgshift::store::{Advance, Began, BeginRun, Journal, Store};

fn begin(app: &str, holder: &str) -> BeginRun {
    BeginRun {
        kind: "migrate".into(),
        runbook: "test".into(),
        params: format!("{{\"app\": \"{app}\"}}"),
        app: app.into(),
        steps: vec![
            ("collect".into(), "{}".into()),
            ("verify".into(), "{}".into()),
        ],
        holder: holder.into(),
        pid: i64::from(std::process::id()),
        host: "test-host".into(),
        ttl_secs: 30,
    }
}

/// The writer's batches: a run starts (lease, state guard, steps), a second starter is told
/// who holds the lease, a step that starts and ends within one batch ends `done` with its
/// snapshot, and the run's end lands after its steps.
async fn exercise_writer(store: &Store) {
    let (w, task) = Journal::spawn(store.clone());
    let Began::Run { run_id, steps } = w.begin(begin("shop-stage", "h1")).await.expect("begin")
    else {
        panic!("shop-stage should start");
    };
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[0].state, "running",
        "the first step starts with the run"
    );
    assert_eq!(steps[1].state, "pending");
    match w.begin(begin("shop-stage", "h2")).await.expect("begin") {
        Began::Leased(l) => assert_eq!(l.holder, "h1"),
        other => panic!("a second starter must be refused: {other:?}"),
    }
    // Queued, not awaited: both transitions of step 1 can share a batch.
    w.advance_later(Advance {
        done: steps[0].id,
        state: StepState::Done,
        detail: Some("{\"a\":1}".into()),
        paused: Some(("shop-stage".into(), true)),
        next: Some(steps[1].id),
    });
    w.advance_later(Advance {
        done: steps[1].id,
        state: StepState::Done,
        detail: Some("{\"b\":2}".into()),
        paused: Some(("shop-stage".into(), false)),
        next: None,
    });
    w.end_run(
        run_id,
        "shop-stage",
        AppState::Migrated,
        None,
        RunStatus::Done,
    )
    .await
    .expect("end run");
    w.release_lease_later("shop-stage", "h1");
    drop(w);
    task.await.expect("writer ends");
    let rows = store.steps(run_id, "shop-stage").await.expect("steps");
    let got: Vec<(&str, Option<&str>, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.state.as_str(),
                r.detail.as_deref(),
                r.started_at.is_some(),
                r.finished_at.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("done", Some("{\"a\":1}"), true, true),
            ("done", Some("{\"b\":2}"), true, true)
        ]
    );
    let st = store
        .app_state("shop-stage")
        .await
        .expect("state")
        .expect("row");
    assert_eq!((st.state.as_str(), st.paused), ("migrated", false));
    assert!(store.lease("shop-stage").await.expect("lease").is_none());
    // A migrated app cannot start again.
    let (w, task) = Journal::spawn(store.clone());
    match w.begin(begin("shop-stage", "h3")).await.expect("begin") {
        Began::State(s) => assert_eq!(s, "migrated"),
        other => panic!("a migrated app must be refused: {other:?}"),
    }
    assert!(
        store.lease("shop-stage").await.expect("lease").is_none(),
        "refusal leaves no lease"
    );
    drop(w);
    task.await.expect("writer ends");
}

async fn exercise(store: &Store) {
    let inv = inventory::load(&Source::BuiltinLab).expect("lab fleet");
    store.sync_inventory(&inv).await.expect("sync");
    let states = store.app_states().await.expect("states");
    assert_eq!(states.len(), inv.apps.len());
    assert!(states.values().all(|s| s.state == "pending" && !s.paused));
    // A second sync keeps states; reset puts them back.
    store.sync_inventory(&inv).await.expect("sync again");
    assert_eq!(
        Journal::spawn(store.clone())
            .0
            .reset_app_states()
            .await
            .expect("reset"),
        inv.apps.len() as u64
    );
    assert!(store.schema_version().await.expect("version") > 0);
    exercise_writer(store).await;
}

#[tokio::test]
async fn sqlite_store_migrates_and_reopens() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/pgshift.db").display()
    );
    let store = Store::open(&url).await.expect("open");
    assert_eq!(store.dialect(), "sqlite");
    exercise(&store).await;
    store.close().await;
    // Reopening applies nothing new and keeps the rows.
    let again = Store::open(&url).await.expect("reopen");
    let fleet = inventory::load(&Source::BuiltinLab)
        .expect("fixture fleet")
        .apps
        .len();
    assert_eq!(again.app_states().await.expect("states").len(), fleet);
}

#[tokio::test]
async fn postgres_store_migrates_on_the_lab_15_server() {
    let lab = support::lab();
    lab.psql(
        15,
        "postgres",
        "drop database if exists pgshift_store_test with (force)",
    );
    lab.psql(15, "postgres", "create database pgshift_store_test");
    let pw = std::fs::read_to_string(lab.state.join("lab/secrets/admin")).expect("admin secret");
    let url = format!(
        "postgres://pgshift:{}@127.0.0.1:{}/pgshift_store_test",
        pw.trim(),
        support::PORT15
    );
    let store = Store::open(&url).await.expect("open postgres store");
    assert_eq!(store.dialect(), "postgres");
    exercise(&store).await;
    let tables = lab.psql(
        15,
        "pgshift_store_test",
        "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'",
    );
    assert_eq!(
        tables,
        "_sqlx_migrations,apps,backups,controls,failures,fences,leases,plans,probes,runs,step_logs,steps,work_items,work_regions,workers"
    );
    store.close().await;
    Store::open(&url).await.expect("reopen is a no-op");
}

#[tokio::test]
async fn unreachable_store_is_a_one_line_error_without_password() {
    let err = Store::open("postgres://ops:hunter2@127.0.0.1:1/pgshift")
        .await
        .expect_err("nothing listens on port 1");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cannot open store postgres://ops:****@127.0.0.1:1/pgshift"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(pgshift::ops::is_user_error(&err));
}
