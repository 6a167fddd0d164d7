//! Issue 13's fixture apps on the real lab: preflight flags exactly the two built to fail and
//! names each object; `migrate` refuses them before the window; the catalog app migrates and
//! a comparison written here (not pgshift's verifier) finds OLD and NEW equal per kind of
//! object and per table; tampering with NEW after the restore is caught and rolled back.

#[path = "support/lab.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use pgshift::inventory::{self, Secret, Source};
use pgshift::postgres::Endpoint;
use pgshift::postgres::verify::{self, ReadOptions, RowHash};
use support::Lab;

const APP: &str = "club-live";
const DB: &str = "club_live";

fn reset(lab: &Lab, app: &str) {
    let out = lab
        .cmd()
        .args(["lab", "reset", "--app", app])
        .output()
        .expect("lab reset --app");
    support::check(&out, &format!("lab reset --app {app}"));
}

/// The catalog of one side, per kind, read with queries of this test's own (information_schema
/// and pg_* views where they exist), so a verifier bug cannot hide behind itself.
fn catalog(lab: &Lab, major: u32) -> BTreeMap<&'static str, String> {
    let ns = "NOT IN ('pg_catalog', 'information_schema', 'pg_toast')";
    let kinds: Vec<(&str, String)> = vec![
        (
            "tables",
            format!(
                "select n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname {ns} and c.relkind in ('r','p','v','m','S') order by 1, 2"
            ),
        ),
        (
            "columns",
            "select table_schema, table_name, column_name, data_type, is_nullable, column_default, is_identity, identity_generation, is_generated, generation_expression, collation_name from information_schema.columns where table_schema = 'app' order by 1, 2, 3".into(),
        ),
        (
            "partitions and inheritance",
            "select inhrelid::regclass::text, inhparent::regclass::text, pg_get_expr(c.relpartbound, c.oid) from pg_inherits join pg_class c on c.oid = inhrelid order by 1".into(),
        ),
        (
            "constraints",
            "select conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) from pg_constraint where connamespace = 'app'::regnamespace order by 1, 2".into(),
        ),
        (
            "indexes",
            "select schemaname, tablename, indexname, indexdef from pg_indexes where schemaname = 'app' order by 1, 2, 3".into(),
        ),
        (
            "policies",
            "select schemaname, tablename, policyname, permissive, roles::text, cmd, qual, with_check from pg_policies order by 1, 2, 3".into(),
        ),
        (
            "rules",
            "select schemaname, tablename, rulename, definition from pg_rules where schemaname = 'app' order by 1, 2, 3".into(),
        ),
        (
            "triggers",
            "select tgrelid::regclass::text, tgname, tgenabled from pg_trigger where not tgisinternal order by 1, 2".into(),
        ),
        (
            "comments",
            "select c.relname, a.attnum, col_description(c.oid, a.attnum) from pg_class c join pg_attribute a on a.attrelid = c.oid where c.relnamespace = 'app'::regnamespace and col_description(c.oid, a.attnum) is not null
             union all select c.relname, 0, obj_description(c.oid, 'pg_class') from pg_class c where c.relnamespace = 'app'::regnamespace and obj_description(c.oid, 'pg_class') is not null
             union all select polname, -1, obj_description(p.oid, 'pg_policy') from pg_policy p where obj_description(p.oid, 'pg_policy') is not null
             union all select tgname, -2, obj_description(t.oid, 'pg_trigger') from pg_trigger t where obj_description(t.oid, 'pg_trigger') is not null
             union all select 'schema app', -3, obj_description('app'::regnamespace, 'pg_namespace')
             union all select oid::text, -4, obj_description(oid, 'pg_largeobject') from pg_largeobject_metadata where obj_description(oid, 'pg_largeobject') is not null
             order by 1, 2".into(),
        ),
        (
            "privileges",
            "select grantee, table_schema, table_name, privilege_type from information_schema.table_privileges where table_schema = 'app'
             union all select grantee, table_schema, table_name || '.' || column_name, privilege_type from information_schema.column_privileges where table_schema = 'app' and grantee = 'PUBLIC'
             union all select grantee, routine_schema, routine_name, privilege_type from information_schema.routine_privileges where routine_schema = 'app'
             order by 1, 2, 3, 4".into(),
        ),
        (
            "large objects",
            "select count(*), coalesce(sum(length(lo_get(oid))), 0), md5(coalesce(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' order by oid), '')) from pg_largeobject_metadata".into(),
        ),
        (
            "materialized views",
            "select schemaname, matviewname, ispopulated from pg_matviews order by 1, 2".into(),
        ),
        (
            "collations",
            "select collname, collprovider from pg_collation where collnamespace = 'app'::regnamespace order by 1".into(),
        ),
        (
            "extensions",
            "select extname, extnamespace::regnamespace::text from pg_extension order by 1".into(),
        ),
        (
            "sequences",
            "select schemaname, sequencename, data_type, start_value, increment_by, last_value from pg_sequences where sequencename <> 'lab_app_writes_id_seq' order by 1, 2".into(),
        ),
        (
            "types",
            "select t.typname, t.typtype, (select string_agg(enumlabel, ',' order by enumsortorder) from pg_enum where enumtypid = t.oid) from pg_type t where t.typnamespace = 'app'::regnamespace and t.typtype in ('e', 'd') order by 1".into(),
        ),
        (
            "statistics",
            "select stxname, stxkind::text from pg_statistic_ext order by 1".into(),
        ),
        (
            "settings",
            "select unnest(setconfig) from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = current_database()) order by 1".into(),
        ),
    ];
    kinds
        .into_iter()
        .map(|(k, sql)| (k, lab.psql(major, DB, &sql)))
        .collect()
}

/// Each table's own row count (partitioned parents and inheritance parents: their own rows).
fn row_counts(lab: &Lab, major: u32) -> BTreeMap<String, String> {
    // Names may hold a newline: split on what cannot end a quoted name.
    let mut out = BTreeMap::new();
    let names: Vec<String> = lab
        .psql(
            major,
            DB,
            "select string_agg(format('%I.%I', n.nspname, c.relname), E'\\x1f' order by 1) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p', 'm') and n.nspname in ('app', 'public') and c.relname <> 'lab_app_writes' and (c.relkind <> 'm' or c.relispopulated)",
        )
        .split('\u{1f}')
        .map(str::to_string)
        .collect();
    for t in names {
        let n = lab.psql(major, DB, &format!("select count(*) from only {t}"));
        out.insert(t, n);
    }
    out
}

#[test]
fn preflight_flags_exactly_the_new_apps_built_to_fail_naming_each_object() {
    // It reads club-live's OLD, which the migrating tests below drop and re-seed.
    let _one = club();
    let lab = support::lab();
    let out = lab
        .cmd()
        .args(["preflight", "--json"])
        .output()
        .expect("preflight");
    support::check(&out, "preflight --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let inv = inventory::load(&Source::BuiltinLab).expect("fleet");
    let profile_of = |app: &str| {
        inv.app(app)
            .and_then(|a| a.services.iter().find_map(|s| s.seed.as_ref()))
            .map(|s| s.profile.clone())
            .unwrap_or_default()
    };
    let mut flagged: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for a in v.as_array().unwrap() {
        let name = a["app"].as_str().unwrap().to_string();
        if !["catalog", "legacy", "privileged"].contains(&profile_of(&name).as_str()) {
            continue;
        }
        for r in a["risks"].as_array().unwrap() {
            flagged.entry(name.clone()).or_default().push((
                r["class"].as_str().unwrap().to_string(),
                r["detail"].as_str().unwrap().to_string(),
            ));
        }
    }
    let apps: BTreeSet<&str> = flagged.keys().map(String::as_str).collect();
    assert_eq!(
        apps,
        BTreeSet::from(["gauges-live", "labels-live"]),
        "{flagged:?}"
    );
    let has = |app: &str, class: &str, object: &str| {
        flagged[app]
            .iter()
            .any(|(c, d)| c == class && d.contains(object))
    };
    assert!(
        has(
            "gauges-live",
            "pg14-incompatible",
            "operator public.### (bigint, none)"
        ),
        "{flagged:?}"
    );
    assert!(
        has(
            "gauges-live",
            "pg14-incompatible",
            "aggregate array_accum(anyelement) over array_append(anyarray,anyelement)"
        ),
        "{flagged:?}"
    );
    assert!(
        has("labels-live", "privilege", "base type label"),
        "{flagged:?}"
    );
    for f in ["label_in(cstring)", "label_out(label)", "fast_upper(text)"] {
        assert!(
            has(
                "labels-live",
                "privilege",
                &format!("function {f} in language internal")
            ),
            "{flagged:?}"
        );
    }
    assert!(
        has(
            "gauges-live",
            "pg14-incompatible",
            "operator @@@(NONE,bigint) uses the built-in function numeric_fac(bigint)"
        ),
        "{flagged:?}"
    );
    assert_eq!(flagged["gauges-live"].len(), 3, "{flagged:?}");
    assert_eq!(flagged["labels-live"].len(), 4, "{flagged:?}");
    // Every finding says what to do.
    assert!(
        flagged
            .values()
            .flatten()
            .all(|(_, d)| d.contains("; remedy: "))
    );
}

#[test]
fn migrating_an_app_with_objects_14_removed_or_superuser_only_is_refused_before_the_window() {
    let lab = support::lab();
    for (app, db, objects) in [
        (
            "gauges-live",
            "gauges_live",
            &["operator public.###", "aggregate array_accum(anyelement)"][..],
        ),
        (
            "labels-live",
            "labels_live",
            &["base type label", "function fast_upper(text)"][..],
        ),
    ] {
        let out = lab
            .cmd()
            .args(["migrate", "--app", app])
            .output()
            .expect("migrate");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{app}: {err}");
        assert!(
            err.contains("preflight refuses the migration before the window"),
            "{err}"
        );
        for o in objects {
            assert!(err.contains(o), "{app}: {o} not named in {err}");
        }
        // Nothing ran: no step, no NEW database, OLD serving.
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{app}"
        );
        assert_eq!(
            lab.psql(
                15,
                "postgres",
                &format!("select count(*) from pg_database where datname = '{db}'")
            ),
            "0",
            "{app}"
        );
        let show = lab
            .cmd()
            .args(["app", "show", app, "--json"])
            .output()
            .expect("show");
        let s: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
        assert_eq!(s["paused"], false, "{s}");
        assert_eq!(s["service"]["server"], "pg13", "{s}");
    }
}

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

/// Two tests below migrate club-live (resetting it drops OLD): no test that reads it may
/// interleave with them. A lock file, not a mutex: nextest runs each test in its own process.
fn club() -> std::fs::File {
    let path = support::state_dir().with_extension("club.lock");
    let f = std::fs::File::create(&path).expect("club-live lock file");
    f.lock().expect("club-live lock");
    f
}

#[test]
fn the_catalog_app_migrates_and_old_and_new_are_equal_per_kind_and_per_table() {
    let _one = club();
    let lab = support::lab();
    reset(lab, APP);
    let out = lab
        .cmd()
        .args(["migrate", "--app", APP, "--json"])
        .output()
        .expect("migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"outcome\":\"migrated\""), "{stdout}");

    let (old, new) = (catalog(lab, 13), catalog(lab, 15));
    for (kind, a) in &old {
        assert!(
            !a.is_empty() || *kind == "statistics",
            "{kind} is empty on OLD: the fixture lacks it"
        );
        assert_eq!(a, &new[kind], "{kind} differs between OLD and NEW");
    }
    let (rows_old, rows_new) = (row_counts(lab, 13), row_counts(lab, 15));
    assert_eq!(rows_old, rows_new);
    assert!(rows_old.len() >= 12, "{rows_old:?}");
    assert_eq!(
        rows_old["app.heartbeat"], "3",
        "a table without columns keeps its rows"
    );
    assert_eq!(
        rows_old["app.visits"], "0",
        "a partitioned parent holds no rows of its own"
    );

    // Large objects: count and bytes equal; the unpopulated materialized view stays so.
    let lo = "select count(*) || ' ' || sum(length(lo_get(oid))) from pg_largeobject_metadata";
    assert_eq!(lab.psql(13, DB, lo), lab.psql(15, DB, lo));
    assert!(
        lab.psql(15, DB, lo).starts_with("8 "),
        "the fixture's 8 large objects"
    );
    let populated = "select ispopulated from pg_matviews where matviewname = 'mood_report'";
    assert_eq!(lab.psql(13, DB, populated), "f");
    assert_eq!(lab.psql(15, DB, populated), "f");
    // The 63-byte name survived whole.
    let odd = "select octet_length(relname) from pg_class where relname like 'Mitglieder%'";
    assert_eq!(lab.psql(15, DB, odd), "63");
}

#[test]
fn tampering_with_new_after_the_restore_is_caught_and_rolled_back() {
    let _one = club();
    let lab = support::lab();
    reset(lab, APP);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let how = ReadOptions {
        row_hash: RowHash::Typed,
        connections: 2,
        ..Default::default()
    };
    let out = lab
        .cmd()
        .args(["migrate", "--app", APP, "--json"])
        .output()
        .expect("migrate");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let old = rt
        .block_on(verify::fingerprint(&admin(lab, 13), DB, &how))
        .expect("OLD");
    let fresh = rt
        .block_on(verify::fingerprint(&admin(lab, 15), DB, &how))
        .expect("NEW");
    // The lab app itself keeps writing rows into lab_app_writes on whichever side it uses.
    let differences = |a: &verify::Fingerprint, b: &verify::Fingerprint| -> Vec<String> {
        verify::differences(a, b)
            .into_iter()
            .filter(|d| !d.contains("lab_app_writes"))
            .collect()
    };
    assert_eq!(differences(&old, &fresh), Vec::<String>::new());

    // Each tamper alone is a difference that names the object.
    let lo: String = lab.psql(15, DB, "select max(oid) from pg_largeobject_metadata");
    let tampers: [(&str, String, &str); 4] = [
        (
            "drop policy members_insert on app.members",
            "create policy members_insert on app.members as restrictive for insert with check (tenant > 0)".into(),
            "members_insert",
        ),
        (
            "alter table app.notes enable trigger notes_always",
            "alter table app.notes enable always trigger notes_always".into(),
            "notes_always enabled=",
        ),
        (
            "comment on table app.members is 'changed'",
            "comment on table app.members is 'People of the club; each tenant sees its own'".into(),
            "table app.members: ",
        ),
        (
            "select lo_unlink((select max(oid) from pg_largeobject_metadata))",
            String::new(),
            lo.as_str(),
        ),
    ];
    for (tamper, undo, named) in &tampers {
        lab.psql(15, DB, tamper);
        let b = rt
            .block_on(verify::fingerprint(&admin(lab, 15), DB, &how))
            .expect("NEW");
        let d = differences(&old, &b);
        assert!(
            !d.is_empty() && d.iter().any(|x| x.contains(named)),
            "{tamper}: {d:?}"
        );
        if !undo.is_empty() {
            lab.psql(15, DB, undo);
        }
    }

    // In a migration: NEW tampered between restore and verify (pgshift stopped as the restore
    // ends) fails verification and the app goes back to OLD.
    reset(lab, APP);
    let mut child = lab
        .cmd()
        .args(["migrate", "--app", APP, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("migrate");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut events = Vec::new();
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        let restored = v["event"] == "step_finished" && v["step"] == "restore";
        events.push(v);
        if restored {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
            break;
        }
    }
    lab.psql(
        15,
        DB,
        "drop policy members_by_tenant on app.members; alter table app.notes enable replica trigger notes_always; comment on column app.members.display_name is 'changed'",
    );
    lab.psql(
        15,
        DB,
        "select lo_unlink(min(oid)) from pg_largeobject_metadata",
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("cont");
    for line in lines {
        events.push(serde_json::from_str(&line.expect("line")).expect("json"));
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "{events:?}");
    let verify_lines: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "log" && e["step"] == "verify")
        .filter_map(|e| e["line"].as_str())
        .collect();
    for named in [
        "members_by_tenant",
        "notes_always enabled=",
        "display_name",
        "large objects: only on OLD",
    ] {
        assert!(
            verify_lines
                .iter()
                .any(|l| l.starts_with("verification failed: ") && l.contains(named)),
            "{named} not caught: {verify_lines:#?}"
        );
    }
    let failure = events
        .iter()
        .find(|e| e["event"] == "failure")
        .expect("a failure event");
    assert_eq!(failure["class"], "verification-mismatch", "{failure}");
    let show = lab
        .cmd()
        .args(["app", "show", APP, "--json"])
        .output()
        .expect("show");
    let s: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(
        (s["service"]["server"].as_str(), s["paused"].as_bool()),
        (Some("pg13"), Some(false)),
        "rolled back, unpaused: {s}"
    );
}

/// A database nobody here designed: PostgreSQL 13's own contrib script for citext, run as
/// plain SQL by a superuser (how contrib was installed before extensions), beside the same
/// module and isn, seg and cube installed as extensions. Preflight predicts the first from
/// OLD's catalog (every object only a superuser can create), `migrate` refuses it before the
/// window; the second has no finding. (Migrating it needs the lab platform to know an app
/// outside the built-in fleet, which its hooks do not: measured by hand, it migrated.)
#[test]
fn a_contrib_module_installed_as_plain_sql_is_refused_and_the_same_as_extensions_is_not() {
    let lab = support::lab();
    let info = lab.cmd().arg("info").output().expect("info");
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    let bin13 = info
        .lines()
        .find_map(|l| l.strip_prefix("pg13 bin"))
        .map(str::trim)
        .expect("pgshift info names the 13 binaries");
    let share = std::path::Path::new(bin13).join("../share/postgresql/extension");
    let script =
        std::fs::read_to_string(share.join("citext--1.4.sql")).expect("13's citext script");
    // The script as a pre-9.1 install ran it: no extension guard, the library by path.
    let plain: String = script
        .lines()
        .filter(|l| !l.starts_with("\\echo"))
        .map(|l| l.replace("MODULE_PATHNAME", "$libdir/citext") + "\n")
        .collect();
    let mut fleet = include_str!("../fixtures/fleet.toml").to_string();
    for (app, db) in [
        ("contrib-legacy", "contrib_legacy"),
        ("contrib-ext", "contrib_ext"),
    ] {
        // The lab platform's record of where the app points, left by an earlier run.
        let _ = std::fs::remove_file(lab.state.join("platform").join(format!("{app}.json")));
        lab.psql(
            13,
            "postgres",
            &format!("drop database if exists {db} with (force)"),
        );
        lab.psql(13, "postgres", &format!("drop role if exists {db}"));
        lab.psql(
            15,
            "postgres",
            &format!("drop database if exists {db} with (force)"),
        );
        lab.psql(15, "postgres", &format!("drop role if exists {db}"));
        lab.psql(
            13,
            "postgres",
            &format!("create role {db} login password 'Contrib-Trial-1'"),
        );
        lab.psql(13, "postgres", &format!("create database {db} owner {db}"));
        fleet.push_str(&format!(
            "\n[[apps]]\nname = \"{app}\"\nregion = \"de-fra\"\nenvironment = \"live\"\ncustomer = \"trial\"\nlibpq = \"15.4\"\n\n  [[apps.services]]\n  id = \"{app}-db\"\n  service = \"postgresql-database-13\"\n  server = \"pg13\"\n  database = \"{db}\"\n  user = \"{db}\"\n  password = {{ value = \"Contrib-Trial-1\" }}\n"
        ));
    }
    lab.psql(13, "contrib_legacy", &plain);
    lab.psql(
        13,
        "contrib_legacy",
        "set role contrib_legacy; create table people (id serial primary key, email citext unique not null);
         insert into people (email) select 'User' || g || '@Example.ch' from generate_series(1, 500) g",
    );
    lab.psql(
        13,
        "contrib_ext",
        "create extension citext; create extension isn; create extension seg; create extension cube;
         set role contrib_ext;
         create table books (id serial primary key, isbn isbn13, title citext not null, span seg, box cube);
         insert into books (isbn, title, span, box) select '978-0-306-40615-7', 'Book ' || g, (g || ' .. ' || (g + 5))::seg, cube(g, g + 1) from generate_series(1, 300) g;
         create materialized view book_titles as select title from books with no data",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let inv = dir.path().join("fleet.toml");
    std::fs::write(&inv, fleet).expect("write");
    let store = format!("sqlite://{}", dir.path().join("pgshift.db").display());
    let run = |args: &[&str]| {
        // By environment, so the lab platform's hooks (pgshift lab hook …) know the apps too.
        lab.cmd()
            .env("PGSHIFT_STORE", &store)
            .env("PGSHIFT_INVENTORY", &inv)
            .args(args)
            .output()
            .expect("pgshift")
    };

    let out = run(&["preflight", "--app", "contrib-legacy", "--json"]);
    support::check(&out, "preflight");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let risks = v[0]["risks"].as_array().expect("risks");
    let details: Vec<&str> = risks
        .iter()
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert!(
        risks.iter().all(|r| r["class"] == "privilege"),
        "{details:#?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("base type citext ")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("function citext_eq(citext,citext) in language c ")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("operator class public.citext_ops for btree ")),
        "{details:#?}"
    );
    let out = run(&["migrate", "--app", "contrib-legacy"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("base type citext"));

    let out = run(&["preflight", "--app", "contrib-ext", "--json"]);
    support::check(&out, "preflight");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["risks"], serde_json::json!([]), "{v}");
    for db in ["contrib_legacy", "contrib_ext"] {
        lab.psql(13, "postgres", &format!("drop database {db} with (force)"));
        lab.psql(13, "postgres", &format!("drop role {db}"));
        lab.psql(
            15,
            "postgres",
            &format!("drop database if exists {db} with (force)"),
        );
        lab.psql(15, "postgres", &format!("drop role if exists {db}"));
    }
}
