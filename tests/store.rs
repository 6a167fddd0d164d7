//! The control store on both dialects: embedded migrations apply on open (and again as a
//! no-op), the inventory syncs without losing app state.

#[path = "support/lab.rs"]
mod support;

use pgshift::inventory::{self, Source};
use pgshift::store::Store;

async fn exercise(store: &Store) {
    let inv = inventory::load(&Source::BuiltinLab).expect("lab fleet");
    store.sync_inventory(&inv).await.expect("sync");
    let states = store.app_states().await.expect("states");
    assert_eq!(states.len(), inv.apps.len());
    assert!(states.values().all(|s| s.state == "pending" && !s.paused));
    // A second sync keeps states; reset puts them back.
    store.sync_inventory(&inv).await.expect("sync again");
    assert_eq!(
        store.reset_app_states().await.expect("reset"),
        inv.apps.len() as u64
    );
    assert!(store.schema_version().await.expect("version") > 0);
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
    assert_eq!(again.app_states().await.expect("states").len(), 28);
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
        "_sqlx_migrations,apps,backups,failures,leases,plans,runs,step_logs,steps"
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
    assert!(pgshift::error::is_user_error(&err));
}
