//! Every failure class provoked for real on the lab's servers, the tools' own output
//! classified. `PGSHIFT_CAPTURE=1` also writes each output to fixtures/captured/, where the
//! pure unit tests of `diagnose` read them.

#[path = "support/lab.rs"]
mod support;

use std::process::Command;

use pgshift::diagnose::{diagnose, diagnose_all};
use support::Lab;

const PG15: &str = "/usr/lib/postgresql/15/bin";

fn url(lab: &Lab, major: u32, db: &str) -> String {
    lab.url(major).replacen("/postgres?", &format!("/{db}?"), 1)
}

/// psql's stderr for a statement that must fail.
fn psql_fails(target: &str, sql: &str, env: &[(&str, &str)]) -> String {
    let mut c = Command::new("psql");
    c.args([target, "-X", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("psql");
    assert!(!out.status.success(), "expected {sql} to fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn check(class: &str, output: &str) {
    if std::env::var_os("PGSHIFT_CAPTURE").is_some() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("fixtures/captured/{class}.log"));
        std::fs::write(p, output).expect("capture");
    }
    let f = diagnose_all(&lines(output));
    let first = f.iter().find(|x| x.class == class);
    assert!(
        first.is_some(),
        "{class} not found in:\n{output}\nfindings: {:?}",
        f.iter().map(|x| x.class).collect::<Vec<_>>()
    );
}

fn scratch(lab: &Lab, major: u32, db: &str) {
    lab.psql(
        major,
        "postgres",
        &format!("drop database if exists {db} with (force)"),
    );
    lab.psql(major, "postgres", &format!("create database {db}"));
}

#[test]
fn server_side_failures_are_classified_from_real_output() {
    let lab = support::lab();
    scratch(lab, 15, "diag15");
    let u = url(lab, 15, "diag15");

    check(
        "extension-missing",
        &psql_fails(&u, "create extension pgshift_no_such_extension", &[]),
    );
    lab.psql(15, "diag15", "create extension if not exists hstore");
    check(
        "extension-version",
        &psql_fails(&u, "alter extension hstore update to '9.9'", &[]),
    );
    check(
        "collation",
        &psql_fails(&u, "select 'a' collate \"de_CH_pgshift\"", &[]),
    );
    check(
        "unknown-setting",
        &psql_fails(&u, "alter database diag15 set no_such_setting = 1", &[]),
    );
    check(
        "timeout",
        &psql_fails(&u, "set statement_timeout = 50; select pg_sleep(2)", &[]),
    );
    check(
        "connection",
        &psql_fails(&u, "select pg_terminate_backend(pg_backend_pid())", &[]),
    );
    let refused = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            "1",
            "-U",
            "x",
            "-d",
            "x",
            "-c",
            "select 1",
        ])
        .output()
        .expect("psql");
    check("connection", &String::from_utf8_lossy(&refused.stderr));

    // PG15 took CREATE on public from PUBLIC; a role that does not own the database sees this.
    lab.psql(15, "postgres", "drop role if exists diag_app");
    lab.psql(
        15,
        "postgres",
        "create role diag_app login password 'Diag-App-Password-1'",
    );
    let as_app = u
        .replacen("pgshift@", "diag_app@", 1)
        .split('?')
        .next()
        .unwrap()
        .to_string();
    check(
        "public-schema-permission",
        &psql_fails(
            &as_app,
            "create table t (i int)",
            &[("PGPASSWORD", "Diag-App-Password-1")],
        ),
    );
    check(
        "ownership",
        &psql_fails(
            &as_app,
            "comment on extension plpgsql is 'x'",
            &[("PGPASSWORD", "Diag-App-Password-1")],
        ),
    );
    lab.psql(15, "postgres", "drop database diag15 with (force)");
    lab.psql(15, "postgres", "drop role diag_app");
}

#[test]
fn restore_failures_are_classified_from_real_pg_restore_output() {
    let lab = support::lab();
    // OLD: an aggregate on array_append(anyarray, anyelement) (PG14 changed it) and objects
    // owned by a role NEW does not have.
    scratch(lab, 13, "diag13");
    lab.psql(13, "postgres", "drop role if exists diag_owner");
    lab.psql(13, "postgres", "create role diag_owner");
    lab.psql(13, "diag13", "create aggregate array_accum (anyelement) (sfunc = array_append, stype = anyarray, initcond = '{}')");
    lab.psql(
        13,
        "diag13",
        "create table owned (i int); alter table owned owner to diag_owner",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let dump = dir.path().join("diag.dump");
    let out = Command::new(format!("{PG15}/pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(url(lab, 13, "diag13"))
        .output()
        .expect("pg_dump");
    support::check(&out, "pg_dump diag13");
    scratch(lab, 15, "diag15r");
    let out = Command::new(format!("{PG15}/pg_restore"))
        .args(["-d", &url(lab, 15, "diag15r")])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let all = diagnose_all(&lines(&err));
    let classes: Vec<&str> = all.iter().map(|f| f.class.as_str()).collect();
    assert!(
        classes.contains(&"aggregate-signature"),
        "{classes:?}\n{err}"
    );
    assert!(classes.contains(&"role-missing"), "{classes:?}\n{err}");
    if std::env::var_os("PGSHIFT_CAPTURE").is_some() {
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/captured/pg_restore-aggregate-and-role.log"),
            &err,
        )
        .expect("capture");
    }
    lab.psql(15, "postgres", "drop database diag15r with (force)");
    lab.psql(13, "postgres", "drop database diag13 with (force)");
    lab.psql(13, "postgres", "drop role diag_owner");
}

#[test]
fn a_real_scram_failure_from_the_lab_platform_is_classified() {
    // The lab's health check reads NEW's first auth request over the wire; a role hashed
    // SCRAM makes NEW ask for SASL, which a libpq < 10 client refuses.
    let lab = support::lab();
    lab.psql(15, "postgres", "drop role if exists diag_scram");
    lab.psql(
        15,
        "postgres",
        "create role diag_scram login password 'Diag-Scram-1'",
    );
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let req = rt
        .block_on(pgshift::postgres::wire::auth_request(
            "127.0.0.1",
            support::PORT15,
            "diag_scram",
            "postgres",
        ))
        .expect("auth request");
    assert_eq!(
        req,
        pgshift::postgres::wire::AuthRequest::Sasl(vec!["SCRAM-SHA-256".into()])
    );
    lab.psql(
        15,
        "postgres",
        "set password_encryption = 'md5'; alter role diag_scram password 'Diag-Scram-1'",
    );
    let req = rt
        .block_on(pgshift::postgres::wire::auth_request(
            "127.0.0.1",
            support::PORT15,
            "diag_scram",
            "postgres",
        ))
        .expect("auth request");
    assert_eq!(
        req,
        pgshift::postgres::wire::AuthRequest::Md5,
        "an md5-hashed role is asked for md5 (hba md5)"
    );
    lab.psql(15, "postgres", "drop role diag_scram");
    let f = diagnose(&lines(include_str!(
        "../fixtures/captured/libpq-scram-django-uwsgi.log"
    )));
    assert_eq!(f.class, "libpq-scram");
}

#[test]
fn objects_14_removed_and_superuser_only_objects_fail_a_restore_as_the_app_role() {
    let lab = support::lab();
    // OLD: a postfix operator (removed in 14), a base type and an internal-language function
    // (superuser only), as a fixture app's database holds them; NEW restores as the app role.
    scratch(lab, 13, "diag13p");
    lab.psql(
        13,
        "diag13p",
        "create function doubled(bigint) returns bigint language sql immutable strict as $$ select $1 * 2 $$;
         create operator ### (leftarg = bigint, function = doubled);
         create type label;
         create function label_in(cstring) returns label language internal immutable strict as 'textin';
         create function label_out(label) returns cstring language internal immutable strict as 'textout';
         create type label (input = label_in, output = label_out, like = text);
         create function fast_upper(text) returns text language internal immutable strict as 'upper'",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let dump = dir.path().join("diag.dump");
    let out = Command::new(format!("{PG15}/pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(url(lab, 13, "diag13p"))
        .output()
        .expect("pg_dump");
    support::check(&out, "pg_dump diag13p");
    lab.psql(
        15,
        "postgres",
        "drop database if exists diag15p with (force)",
    );
    lab.psql(15, "postgres", "drop role if exists diag_p");
    lab.psql(15, "postgres", "create role diag_p");
    lab.psql(15, "postgres", "create database diag15p owner diag_p");
    let out = Command::new(format!("{PG15}/pg_restore"))
        .args([
            "--no-owner",
            "--role=diag_p",
            "-d",
            &url(lab, 15, "diag15p"),
        ])
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let classes: Vec<&str> = diagnose_all(&lines(&err))
        .iter()
        .map(|f| f.class.as_str())
        .collect();
    assert!(classes.contains(&"pg14-incompatible"), "{classes:?}\n{err}");
    assert!(classes.contains(&"privilege"), "{classes:?}\n{err}");
    if std::env::var_os("PGSHIFT_CAPTURE").is_some() {
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/captured/pg_restore-pg14-and-privilege.log"),
            &err,
        )
        .expect("capture");
    }
    lab.psql(15, "postgres", "drop database diag15p with (force)");
    lab.psql(15, "postgres", "drop role diag_p");
    lab.psql(13, "postgres", "drop database diag13p with (force)");
}
