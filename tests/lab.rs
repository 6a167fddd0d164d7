//! The lab against its real servers: versions, tiers' settings, idempotence, the fixture
//! fleet's shapes, and the two failures the fleet is built to reproduce.

#[path = "support/lab.rs"]
mod support;

use std::process::Command;
use std::time::Instant;

use support::lab;

#[test]
fn psql_reaches_both_servers_with_the_status_urls() {
    let lab = lab();
    assert_eq!(lab.clusters.len(), 2);
    let v13 = lab.psql(13, "postgres", "select version()");
    let v15 = lab.psql(15, "postgres", "select version()");
    assert!(v13.starts_with("PostgreSQL 13.23 "), "{v13}");
    assert!(v15.starts_with("PostgreSQL 15."), "{v15}");
    assert_eq!(lab.clusters[0].version, "13.23");
    assert!(lab.clusters[1].version.starts_with("15."));
    for c in &lab.clusters {
        assert!(
            c.url.starts_with("postgres://pgshift@127.0.0.1:"),
            "{}",
            c.url
        );
        assert!(
            !c.url.contains(":5432/"),
            "never the default port: {}",
            c.url
        );
    }
}

#[test]
fn servers_are_configured_like_their_service_tiers() {
    let lab = lab();
    assert_eq!(lab.psql(13, "postgres", "show password_encryption"), "md5");
    assert_eq!(
        lab.psql(15, "postgres", "show password_encryption"),
        "scram-sha-256"
    );
    assert_eq!(
        lab.psql(15, "postgres", "show default_toast_compression"),
        "lz4"
    );
    let hba = lab.psql(
        15,
        "postgres",
        "select string_agg(distinct auth_method, ',') from pg_hba_file_rules where type = 'host'",
    );
    assert_eq!(hba, "md5");
}

#[test]
fn servers_run_as_an_unprivileged_os_user() {
    let lab = lab();
    let pid_line = std::fs::read_to_string(lab.state.join("lab/pg13/data/postmaster.pid"))
        .expect("postmaster.pid");
    let pid = pid_line.lines().next().expect("pid").trim();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("uid");
    assert_ne!(uid, 0, "the 13 server must not run as root");
}

#[test]
fn lab_up_on_a_running_lab_is_a_quick_no_op() {
    let lab = lab();
    let oid_before = lab.psql(
        13,
        "postgres",
        "select oid from pg_database where datname = 'shop_live'",
    );
    let t = Instant::now();
    let out = lab.cmd().args(["lab", "up"]).output().expect("lab up");
    let elapsed = t.elapsed();
    support::check(&out, "lab up");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains("already seeded"), "{err}");
    assert!(!err.contains("seeded shop_live"), "{err}");
    let oid_after = lab.psql(
        13,
        "postgres",
        "select oid from pg_database where datname = 'shop_live'",
    );
    assert_eq!(oid_before, oid_after, "an up lab must not be re-seeded");
    eprintln!("lab up (already up) took {elapsed:?}");
}

#[test]
fn fixture_databases_have_real_schemas_settings_and_sizes() {
    let lab = lab();
    let size: i64 = lab
        .psql(13, "postgres", "select pg_database_size('tracker_live')")
        .parse()
        .expect("size");
    assert!(size >= 100 * 1024 * 1024, "tracker_live is {size} bytes");
    let small: i64 = lab
        .psql(13, "postgres", "select pg_database_size('wiki_stage')")
        .parse()
        .expect("size");
    assert!(small < size / 10, "sizes differ: wiki_stage {small}");

    // Owned by the app role, with foreign keys, views, sequences and an extension.
    assert_eq!(
        lab.psql(
            13,
            "shop_live",
            "select tableowner from pg_tables where tablename = 'orders'"
        ),
        "shop_live"
    );
    let fks: i64 = lab
        .psql(
            13,
            "shop_live",
            "select count(*) from pg_constraint where contype = 'f'",
        )
        .parse()
        .expect("fks");
    assert!(fks >= 3, "{fks} foreign keys");
    assert_eq!(
        lab.psql(
            13,
            "shop_live",
            "select count(*) from pg_views where viewname = 'order_totals'"
        ),
        "1"
    );
    assert_eq!(
        lab.psql(
            13,
            "shop_live",
            "select extname from pg_extension where extname = 'hstore'"
        ),
        "hstore"
    );
    assert_eq!(
        lab.psql(
            13,
            "ledger_live",
            "select extname from pg_extension where extname = 'pg_trgm'"
        ),
        "pg_trgm"
    );
    let seq: i64 = lab
        .psql(13, "shop_live", "select last_value from invoice_number_seq")
        .parse()
        .expect("seq");
    assert_eq!(seq, 120_000);

    // Role and database settings a migration must carry over.
    let role_cfg = lab.psql(
        13,
        "postgres",
        "select array_to_string(setconfig, ',') from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = 'shop_live'",
    );
    assert!(role_cfg.contains("statement_timeout=30s"), "{role_cfg}");
    let db_cfg = lab.psql(
        13,
        "postgres",
        "select array_to_string(setconfig, ',') from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = 'shop_live'",
    );
    assert!(db_cfg.contains("TimeZone=Europe/Zurich"), "{db_cfg}");

    // Apps already on 15 live on the 15 server; unprovisioned apps have no database.
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select count(*) from pg_database where datname in ('archive_live', 'analytics_live')"
        ),
        "2"
    );
    assert_eq!(lab.psql(13, "postgres", "select count(*) from pg_database where datname in ('kiosk_stage', 'landing_stage', 'static_live')"), "0");
}

#[test]
fn app_roles_log_in_with_their_generated_passwords() {
    let lab = lab();
    let pw = lab.role_password("pg13", "ledger_live");
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &support::PORT13.to_string(),
            "-U",
            "ledger_live",
            "-d",
            "ledger_live",
            "-c",
            "select count(*) from contacts",
        ])
        .env("PGPASSWORD", &pw)
        .env_remove("PGPASSFILE")
        .output()
        .expect("psql");
    support::check(&out, "psql as ledger_live");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5000");
    // 13 stores it md5-hashed, as the old service tier did.
    assert_eq!(
        lab.psql(
            13,
            "postgres",
            "select left(rolpassword, 3) from pg_authid where rolname = 'ledger_live'"
        ),
        "md5"
    );
}

#[test]
fn libpq9_apps_roles_would_be_hashed_scram_on_15() {
    let lab = lab();
    // Every libpq 9.x candidate of the fixture fleet.
    let inv = lab
        .cmd()
        .args(["inventory", "--json"])
        .output()
        .expect("inventory");
    support::check(&inv, "inventory --json");
    let apps: serde_json::Value = serde_json::from_slice(&inv.stdout).expect("json");
    let old_clients: Vec<String> = apps
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| {
            a["candidate"] == true && a["libpq"].as_str().is_some_and(|v| v.starts_with("9."))
        })
        .map(|a| a["name"].as_str().expect("name").replace('-', "_"))
        .collect();
    assert!(old_clients.len() >= 3, "{old_clients:?}");
    for role in &old_clients {
        // What a PaaS does when it provisions NEW: a plaintext password, hashed by the server.
        let probe = format!("{role}_scram_probe");
        lab.psql(15, "postgres", &format!("drop role if exists {probe}"));
        lab.psql(
            15,
            "postgres",
            &format!("create role {probe} login password 'Probe-Password-1'"),
        );
        let hash = lab.psql(
            15,
            "postgres",
            &format!("select rolpassword from pg_authid where rolname = '{probe}'"),
        );
        lab.psql(15, "postgres", &format!("drop role {probe}"));
        assert!(hash.starts_with("SCRAM-SHA-256$"), "{role}: {hash}");
    }
}

#[test]
fn btree_fixture_really_fails_a_plain_dump_and_restore_into_15() {
    let lab = lab();
    let dir = tempfile::tempdir().expect("tmp");
    let dump = dir.path().join("forum.dump");
    let pg15 = "/usr/lib/postgresql/15/bin";
    let url13 = lab.url(13).replacen("/postgres?", "/forum_live?", 1);
    let out = Command::new(format!("{pg15}/pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(&url13)
        .output()
        .expect("pg_dump");
    support::check(&out, "pg_dump forum_live");

    // The value fits the btree limit on 13 (pglz) ...
    let size: i64 = lab
        .psql(
            13,
            "forum_live",
            "select max(pg_column_size(source_url)) from redirects",
        )
        .parse()
        .expect("size");
    assert!(size < 2704, "pglz-compressed size on 13: {size}");

    lab.psql(15, "postgres", "drop database if exists btree_probe");
    lab.psql(15, "postgres", "create database btree_probe");
    let url15 = lab.url(15).replacen("/postgres?", "/btree_probe?", 1);
    let out = Command::new(format!("{pg15}/pg_restore"))
        .args(["--no-owner", "-d", &url15])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "restore into lz4 15 must fail");
    assert!(
        err.contains("exceeds btree version 4 maximum 2704 for index \"redirects_source_idx\""),
        "{err}"
    );
    assert!(err.contains("index row size "), "{err}");

    // ... and the seed's remediation, pglz for the restore session, really fixes it.
    lab.psql(15, "postgres", "drop database btree_probe");
    lab.psql(15, "postgres", "create database btree_probe");
    let out = Command::new(format!("{pg15}/pg_restore"))
        .args(["--no-owner", "-d", &url15])
        .arg(&dump)
        .env("PGOPTIONS", "-c default_toast_compression=pglz")
        .output()
        .expect("pg_restore");
    support::check(&out, "pg_restore with pglz");
    assert_eq!(
        lab.psql(
            15,
            "btree_probe",
            "select count(*) from pg_indexes where indexname = 'redirects_source_idx'"
        ),
        "1"
    );
    lab.psql(15, "postgres", "drop database btree_probe");
}
