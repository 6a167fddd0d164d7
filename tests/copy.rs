//! pgshift's own copy (`postgres::copy`) against the real lab: one read of a PostgreSQL 13
//! database loads NEW on 15 equal to it, and the archive it keeps is a backup plain
//! `pg_restore` reads into an empty database, equal to OLD, with the recorded checksum.

#[path = "support/lab.rs"]
mod support;

use std::path::PathBuf;

use pgshift::inventory::Secret;
use pgshift::postgres::Endpoint;
use pgshift::postgres::copy::{self, Db, Plan};
use pgshift::postgres::verify::{self, ReadOptions, RowHash};
use support::Lab;

/// Odd names, a generated column, every common type, NULLs and escapes, an expression index,
/// a partial unique index, a foreign key, a sequence moved on, a view, a materialized view, a
/// partitioned table, an empty table and one with no columns.
const SCHEMA: &str = r#"
CREATE SCHEMA "Odd Schema";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE kinds (id int PRIMARY KEY, a text, c varchar(20) COLLATE "C", d char(4),
  e bigint, f smallint, g boolean, h uuid, i timestamptz, j timestamp, k numeric, l jsonb,
  m int[], n text[], o mood, p bytea, q double precision, r interval, s date,
  twice bigint GENERATED ALWAYS AS (e * 2) STORED);
INSERT INTO kinds SELECT g, 'a' || g || E'\ttab\nline\\back', 'c' || g, 'd', g::bigint * 1000000000, g % 100, g % 2 = 0,
  md5(g::text)::uuid, timestamptz '2024-03-31 01:30:00+00' + g * interval '1 hour',
  timestamp '2024-01-01' + g * interval '1 minute', g / 7.0, jsonb_build_object('g', g, 'x', 1.50),
  ARRAY[g, g + 1], ARRAY['x' || g, NULL], (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3],
  decode(md5(g::text), 'hex'), g / 3.0, g * interval '1 day', date '2024-01-01' + g
  FROM generate_series(1, 3000) g;
INSERT INTO kinds (id, a) VALUES (0, 'ünïcødé ☃');
CREATE INDEX kinds_lower ON kinds (lower(a));
CREATE UNIQUE INDEX kinds_even ON kinds (e) WHERE g;
CREATE TABLE "Odd Schema"."Mixed ""Case""" (id serial PRIMARY KEY, kind int REFERENCES kinds (id), note text);
INSERT INTO "Odd Schema"."Mixed ""Case""" (kind, note) SELECT g % 50, repeat('n', g % 7) FROM generate_series(1, 2000) g;
CREATE SEQUENCE moved;
SELECT setval('moved', 4242);
CREATE VIEW kinds_view AS SELECT id, a FROM kinds WHERE g;
CREATE MATERIALIZED VIEW kinds_count AS SELECT o, count(*) FROM kinds GROUP BY o;
CREATE TABLE measures (at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX ON measures (at);
INSERT INTO measures SELECT date '2024-01-01' + g, g FROM generate_series(0, 700) g;
CREATE TABLE empty_one (id int PRIMARY KEY);
CREATE TABLE no_columns ();
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
"#;

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

fn fresh(lab: &Lab, major: u32, db: &str) {
    lab.psql(
        major,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    lab.psql(major, "postgres", &format!("CREATE DATABASE {db}"));
}

fn pg_bin() -> PathBuf {
    std::env::var_os("PGSHIFT_PG15_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

#[test]
fn one_read_of_old_loads_new_and_keeps_a_backup_plain_pg_restore_restores_equal_to_old() {
    let lab = support::lab();
    fresh(lab, 13, "copy_src");
    lab.psql(13, "copy_src", SCHEMA);
    fresh(lab, 15, "copy_dst");
    fresh(lab, 15, "copy_restored");
    let (old, new) = (admin(lab, 13), admin(lab, 15));
    let work = tempfile::tempdir().expect("tempdir");
    let archive = work.path().join("backup");
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let bin = pg_bin();
    let rt = tokio::runtime::Runtime::new().expect("rt");

    let plan = Plan {
        old: Db {
            endpoint: &old,
            database: "copy_src",
        },
        new: Db {
            endpoint: &new,
            database: "copy_dst",
        },
        role: "pgshift",
        old_settings: vec!["statement_timeout=0".into()],
        settings: vec!["statement_timeout=0".into()],
        archive: archive.clone(),
        pg_bin: &bin,
        run_dir: &run_dir,
        jobs: 2,
        snapshot: None,
    };
    let mut lines = Vec::new();
    let outcome = rt
        .block_on(copy::copy_database(
            &plan,
            &Default::default(),
            &mut |_, l| lines.push(l),
        ))
        .unwrap_or_else(|e| panic!("copy: {e:#}\n{}", lines.join("\n")));

    // OLD's rows as streamed, and NEW's hashed back, are the same.
    assert_eq!(outcome.old.row_hash, RowHash::CopyLine);
    assert_eq!(outcome.old.tables, outcome.new_tables);
    assert_eq!(outcome.tables, 6, "{:?}", outcome.old.tables.keys());
    assert_eq!(outcome.rows, 3001 + 2000 + 366 + 335 + 2);
    assert!(!copy::partial_dir(&archive).exists());

    // And the server's own typed hashes agree: NEW equals OLD, object for object.
    let typed = ReadOptions {
        row_hash: RowHash::Typed,
        connections: 2,
        ..Default::default()
    };
    let a = rt
        .block_on(verify::fingerprint(&old, "copy_src", &typed))
        .expect("OLD");
    let b = rt
        .block_on(verify::fingerprint(&new, "copy_dst", &typed))
        .expect("NEW");
    assert_eq!(verify::differences(&a, &b), Vec::<String>::new());
    assert_eq!(b.sequences.get("public.moved"), Some(&Some(4242)));

    // The kept archive: pg_restore lists it and restores it, plain, into an empty database.
    let list = std::process::Command::new(bin.join("pg_restore"))
        .arg("--list")
        .arg(&archive)
        .output()
        .expect("pg_restore --list");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listed.matches(" TABLE DATA ").count(), 6, "{listed}");
    let restore = std::process::Command::new(bin.join("pg_restore"))
        .args([
            "--dbname",
            &lab.url(15).replacen("/postgres?", "/copy_restored?", 1),
        ])
        .arg(&archive)
        .output()
        .expect("pg_restore");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let c = rt
        .block_on(verify::fingerprint(&new, "copy_restored", &typed))
        .expect("restored");
    assert_eq!(verify::differences(&a, &c), Vec::<String>::new());

    // Its checksum is that of its files as they are (`sha256sum * | sha256sum`).
    assert_eq!(
        pgshift::postgres::digest::hash_dir(&archive).expect("hash"),
        outcome.archive
    );
}
