//! Verification's typed row hashes against the real lab: equal content on 13 and 15 hashes
//! equal; one changed value, or two values swapped between columns, does not.

#[path = "support/lab.rs"]
mod support;

use pgshift::inventory::Secret;
use pgshift::postgres::Endpoint;
use pgshift::postgres::verify::{self, ReadOptions, RowHash};
use support::Lab;

const TABLE: &str = "
DROP TABLE IF EXISTS kinds;
DROP TYPE IF EXISTS mood;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE kinds (id int PRIMARY KEY, a text, b text, c varchar(20) COLLATE \"C\", d char(4),
  e bigint, f smallint, g boolean, h uuid, i timestamptz, j timestamp, k numeric, l jsonb,
  m int[], n text[], o mood, p bytea, q double precision, r interval, s date);
INSERT INTO kinds SELECT g, 'a' || g, 'b' || g, 'c' || g, 'd', g::bigint * 1000000000, g % 100, g % 2 = 0,
  md5(g::text)::uuid, timestamptz '2024-03-31 01:30:00+00' + g * interval '1 hour',
  timestamp '2024-01-01' + g * interval '1 minute', g / 7.0, jsonb_build_object('g', g, 'x', 1.50),
  ARRAY[g, g + 1], ARRAY['x' || g, NULL], (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3],
  decode(md5(g::text), 'hex'), g / 3.0, g * interval '1 day', date '2024-01-01' + g
  FROM generate_series(1, 500) g;
INSERT INTO kinds (id) VALUES (0);
";

fn admin(lab: &Lab, major: u32) -> Endpoint {
    let port = if major == 13 {
        lab.ports.0
    } else {
        lab.ports.1
    };
    let pass = std::fs::read_to_string(lab.state.join("lab/secrets/admin")).expect("admin secret");
    Endpoint {
        host: "127.0.0.1".into(),
        port,
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
    lab.psql(major, db, TABLE);
}

#[test]
fn typed_row_hashes_match_across_13_and_15_and_catch_a_changed_or_swapped_value() {
    let lab = support::lab();
    let db = "verify_typed";
    fresh(lab, 13, db);
    fresh(lab, 15, db);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let how = ReadOptions {
        row_hash: RowHash::Typed,
        connections: 2,
        ..Default::default()
    };
    let read = |major| {
        rt.block_on(verify::fingerprint(&admin(lab, major), db, &how))
            .expect("fingerprint")
    };
    let old = read(13);
    assert_eq!(old.rows(), 501);
    assert_eq!(verify::differences(&old, &read(15)), Vec::<String>::new());

    lab.psql(15, db, "UPDATE kinds SET k = k + 0.000001 WHERE id = 250");
    let diffs = verify::differences(&old, &read(15));
    assert_eq!(
        diffs,
        vec!["table public.kinds: same row count, different content".to_string()]
    );

    fresh(lab, 15, db);
    lab.psql(15, db, "UPDATE kinds SET a = b, b = a WHERE id = 7");
    assert_eq!(verify::differences(&old, &read(15)).len(), 1);

    // The legacy md5-of-row-text hash still agrees with itself across the two servers.
    fresh(lab, 15, db);
    let md5 = ReadOptions {
        row_hash: RowHash::Md5Text,
        connections: 1,
        ..Default::default()
    };
    let a = rt
        .block_on(verify::fingerprint(&admin(lab, 13), db, &md5))
        .expect("md5 fingerprint");
    let b = rt
        .block_on(verify::fingerprint(&admin(lab, 15), db, &md5))
        .expect("md5 fingerprint");
    assert_eq!(verify::differences(&a, &b), Vec::<String>::new());
}

#[test]
fn a_restored_table_is_named_from_pg_restore_verbose_lines() {
    assert_eq!(
        verify::loaded_table("pg_restore: finished item 2964 TABLE DATA pgbench_accounts"),
        Some("pgbench_accounts")
    );
    assert_eq!(
        verify::loaded_table("pg_restore: finished item 2820 CONSTRAINT pgbench_accounts pkey"),
        None
    );
    assert_eq!(
        verify::loaded_table("pg_restore: launching item 2964 TABLE DATA t"),
        None
    );
}

#[test]
fn unpopulated_matviews_partitions_inheritance_and_large_objects_are_read_as_they_are() {
    let lab = support::lab();
    let db = "verify_kinds";
    lab.psql(
        13,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    lab.psql(13, "postgres", &format!("CREATE DATABASE {db}"));
    lab.psql(
        13,
        db,
        "CREATE TABLE m (d date NOT NULL, v int) PARTITION BY RANGE (d);
         CREATE TABLE m_a PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
         CREATE TABLE m_b PARTITION OF m DEFAULT;
         INSERT INTO m SELECT date '2024-01-01' + g, g FROM generate_series(0, 14) g;
         CREATE TABLE parent (i int); CREATE TABLE child (j int) INHERITS (parent);
         INSERT INTO parent VALUES (1), (2), (3); INSERT INTO child VALUES (4, 4), (5, 5);
         CREATE TABLE shapeless (); INSERT INTO shapeless SELECT FROM generate_series(1, 2);
         CREATE MATERIALIZED VIEW later AS SELECT count(*) FROM m WITH NO DATA;
         SELECT lo_from_bytea(0, 'hello');",
    );
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let how = ReadOptions {
        row_hash: RowHash::Typed,
        connections: 2,
        ..Default::default()
    };
    // Reading an unpopulated materialized view fails; the verifier must not try.
    let f = rt
        .block_on(verify::fingerprint(&admin(lab, 13), db, &how))
        .expect("fingerprint with an unpopulated matview");
    // 15 partition rows once (in the leaves), 3 + 2 inheritance rows once, 2 shapeless rows.
    assert_eq!(f.rows(), 15 + 3 + 2 + 2);
    assert!(!f.tables.contains_key("public.m"), "{:?}", f.tables);
    assert_eq!(f.tables["public.parent"].0, 3);
    assert!(f.matviews.is_empty());
    assert!(
        f.catalog["relations"]
            .iter()
            .any(|r| r.starts_with("public.later kind=m") && r.contains("populated=false")),
        "{:?}",
        f.catalog["relations"]
    );
    assert_eq!(f.catalog["large objects"].len(), 1);
    assert!(
        f.catalog["large objects"][0].contains(" bytes=5 md5=5d41402abc4b2a76b9719d911017c592 ")
    );
    lab.psql(13, "postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
}
