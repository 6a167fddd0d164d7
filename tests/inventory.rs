//! The inventory: the fixture fleet's promises, and malformed files rejected with exit 2 and
//! `file:line:col: what is wrong`.

#[path = "support/lab.rs"]
mod support;

use std::path::Path;

use pgshift::inventory::{self, Client, ClientFamily, Source};

fn fixture() -> inventory::Inventory {
    inventory::load(&Source::File(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet.toml"),
    ))
    .expect("fixture fleet loads")
}

#[test]
fn fixture_fleet_has_the_shapes_the_issues_need() {
    let inv = fixture();
    assert!(inv.apps.len() >= 24, "{} apps", inv.apps.len());
    assert!(inv.regions.len() >= 3);
    for r in &inv.regions {
        assert!(
            inv.apps_in(&r.name).count() > 0,
            "region {} is empty",
            r.name
        );
    }
    let candidates: Vec<_> = inv.apps.iter().filter(|a| a.is_candidate()).collect();
    let old_libpq = candidates
        .iter()
        .filter(|a| !a.client.supports_scram())
        .count();
    assert!(old_libpq >= 3, "{old_libpq} candidates with libpq 9.x");
    let btree = candidates
        .iter()
        .flat_map(|a| &a.services)
        .filter(|s| s.seed.as_ref().is_some_and(|x| x.btree_straddle))
        .count();
    assert!(btree >= 1);
    // Non-candidates of both kinds: already on 15, and no provisioned 13 database.
    assert!(
        inv.apps
            .iter()
            .any(|a| a.postgres_services(15).any(|s| s.provisioned) && !a.is_candidate())
    );
    assert!(
        inv.apps
            .iter()
            .any(|a| a.postgres_services(13).any(|s| !s.provisioned))
    );
    assert!(
        inv.apps
            .iter()
            .any(|a| a.environment == inventory::Environment::Stage)
    );
    // The largest database is at least 100 MB worth of rows.
    assert!(
        inv.apps
            .iter()
            .flat_map(|a| &a.services)
            .any(|s| s.seed.as_ref().is_some_and(|x| x.rows >= 400_000))
    );
    // The built-in copy is the same file.
    assert_eq!(
        inventory::LAB_FLEET,
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet.toml"))
            .unwrap()
    );
}

#[test]
fn libpq_versions_parse_and_know_scram() {
    let v = Client::libpq("9.6.24").unwrap();
    assert_eq!(
        (v.family, v.version.major, v.version.minor),
        (ClientFamily::Libpq, 9, 6)
    );
    assert!(!Client::libpq("9.6").unwrap().supports_scram());
    assert!(Client::libpq("10.0").unwrap().supports_scram());
    assert_eq!(Client::libpq("nine"), None);
    assert_eq!(Client::libpq("9.6.24.1"), None);
}

const GOOD: &str = r#"
[servers.old]
version = 13
url = "postgres://admin@db13.internal:5432/postgres"
password = { env = "OLD_ADMIN_PASSWORD" }

[[regions]]
name = "eu-1"

[[apps]]
name = "a1"
region = "eu-1"
environment = "live"
libpq = "12.2"

  [[apps.services]]
  id = "a1-db"
  service = "postgresql-database-13"
  server = "old"
  database = "a1"
  user = "a1"
  password = { file = "secrets/a1" }
"#;

/// Run `pgshift --inventory FILE inventory` on `text`; return (exit code, stderr, file).
fn run_inventory(text: &str) -> (Option<i32>, String, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).expect("write");
    let out = support::pgshift(dir)
        .arg("--inventory")
        .arg(&path)
        .arg("inventory")
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
        path,
    )
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

fn assert_rejected(text: &str, line: usize, what: &str) {
    let (code, err, path) = run_inventory(text);
    assert_eq!(code, Some(2), "exit code for {what}: {err}");
    let expected = format!("pgshift: {}:{line}:", path.display());
    assert!(
        err.starts_with(&expected),
        "expected {expected}… got: {err}"
    );
    assert!(err.contains(what), "expected '{what}' in: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn a_good_operator_inventory_loads() {
    let (code, err, _) = run_inventory(GOOD);
    assert_eq!(code, Some(0), "{err}");
    let inv = inventory::parse(GOOD, "fleet.toml", Path::new("/etc/pgshift")).expect("parses");
    let svc = &inv.apps[0].services[0];
    match svc.password.as_ref().expect("password") {
        inventory::PasswordSource::File(p) => assert_eq!(p, Path::new("/etc/pgshift/secrets/a1")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_toml_is_rejected_with_its_line() {
    let bad = GOOD.replace("name = \"a1\"", "name = \"a1");
    assert_rejected(&bad, line_of(&bad, "name = \"a1"), "invalid basic string");
}

#[test]
fn unknown_region_is_rejected_with_its_line() {
    let bad = GOOD.replace("region = \"eu-1\"", "region = \"eu-9\"");
    assert_rejected(
        &bad,
        line_of(&bad, "eu-9"),
        "unknown region \"eu-9\" for app \"a1\" (regions: eu-1)",
    );
}

#[test]
fn duplicate_app_is_rejected_with_the_second_ones_line() {
    let dup = format!(
        "{GOOD}\n[[apps]]\nname = \"a1\"\nregion = \"eu-1\"\nenvironment = \"stage\"\nlibpq = \"15.1\"\n"
    );
    let line = GOOD.lines().count() + 3; // the second `name = "a1"`
    assert_rejected(&dup, line, "duplicate app \"a1\"");
}

#[test]
fn missing_field_is_rejected_with_the_tables_line() {
    let bad = GOOD.replace("region = \"eu-1\"\nenvironment", "environment");
    assert_rejected(&bad, line_of(&bad, "[[apps]]"), "missing field `region`");
}

#[test]
fn an_app_without_a_client_is_rejected_at_its_name() {
    let bad = GOOD.replace("libpq = \"12.2\"\n", "");
    assert_rejected(&bad, line_of(&bad, "name = \"a1\""), "add libpq = ");
}

#[test]
fn other_client_families_are_read_and_checked() {
    let ok = GOOD.replace("libpq = \"12.2\"", "client = \"node-postgres 7.4.0\"");
    let inv = inventory::parse(&ok, "fleet.toml", std::path::Path::new(".")).unwrap();
    let app = &inv.apps[0];
    assert_eq!(app.client.family, ClientFamily::NodePostgres);
    assert!(!app.client.supports_scram());
    let bad = GOOD.replace("libpq = \"12.2\"", "client = \"cobol-pg 1.0\"");
    assert_rejected(
        &bad,
        line_of(&bad, "client ="),
        "families: libpq, node-postgres",
    );
    let both = GOOD.replace("libpq = \"12.2\"", "libpq = \"12.2\"\nclient = \"pgx 5.0\"");
    assert_rejected(
        &both,
        line_of(&both, "client ="),
        "sets both libpq and client",
    );
}

#[test]
fn unknown_server_and_bad_values_are_rejected() {
    let cases = [
        (
            "server = \"old\"",
            "server = \"new\"",
            "unknown server \"new\" (servers: old)",
        ),
        (
            "environment = \"live\"",
            "environment = \"prod\"",
            "unknown variant `prod`",
        ),
        (
            "libpq = \"12.2\"",
            "libpq = \"twelve\"",
            "libpq version \"twelve\"",
        ),
        ("[[regions]]", "[[region]]", "unknown field `region`"),
    ];
    for (from, to, what) in cases {
        let bad = GOOD.replace(from, to);
        assert_rejected(&bad, line_of(&bad, to), what);
    }
    let no_password = GOOD.replace("  password = { file = \"secrets/a1\" }\n", "");
    assert_rejected(
        &no_password,
        line_of(&no_password, "id = \"a1-db\""),
        "needs `database`, `user` and `password`",
    );
}

#[test]
fn unreadable_inventory_names_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args(["--inventory", "/nonexistent/fleet.toml", "inventory"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/fleet.toml: cannot read inventory"),
        "{err}"
    );
}

#[test]
fn inventory_json_lists_apps_with_the_contract_fields() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args(["inventory", "--json"])
        .output()
        .expect("run");
    support::check(&out, "inventory --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let apps = v.as_array().expect("array");
    assert_eq!(apps.len(), fixture().apps.len());
    for a in apps {
        for k in ["name", "region", "environment", "libpq", "services"] {
            assert!(!a[k].is_null(), "{k} missing in {a}");
        }
    }
    let ledger = apps
        .iter()
        .find(|a| a["name"] == "ledger-live")
        .expect("ledger-live");
    assert_eq!(ledger["libpq"], "9.6");
    assert_eq!(ledger["services"][0]["service"], "postgresql-database-13");
    // Secrets never appear, not even where they come from.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password"));
}

#[test]
fn a_platform_table_is_checked_at_load_with_its_line() {
    let commands = |extra: &str| {
        format!(
            "{GOOD}\n[platform]\nkind = \"exec\"\n[platform.commands]\nstatus = \"paas info {{app}}\"\npause = \"paas maintenance:on {{app}}\"\nunpause = \"paas maintenance:off {{app}}\"\nset_database_url = \"paas config:set {{app}}\"\nredeploy = {{ run = \"paas deploy {{app}}\", timeout = \"10m\" }}\n{extra}"
        )
    };
    let ok = commands("health = \"paas health {app} '{\\\"json\\\": 1}'\"\n");
    let (code, err, _) = run_inventory(&ok);
    assert_eq!(code, Some(0), "a complete platform table loads: {err}");

    let missing = commands("");
    assert_rejected(
        &missing,
        line_of(&missing, "[platform.commands]"),
        "needs a command for health",
    );
    let typo = commands("health = \"paas health {ap}\"\n");
    assert_rejected(
        &typo,
        line_of(&typo, "health ="),
        "unknown placeholder {ap}",
    );
    let quote = commands("health = \"paas 'health {app}\"\n");
    assert_rejected(
        &quote,
        line_of(&quote, "health ="),
        "platform command health",
    );
    let provision =
        commands("health = \"paas health {app}\"\nprovision = \"paas addons:create {app}\"\n");
    assert_rejected(
        &provision,
        line_of(&provision, "provision ="),
        "not supported yet",
    );
    let kind = ok.replace("kind = \"exec\"", "kind = \"heroku\"");
    assert_rejected(
        &kind,
        line_of(&kind, "kind ="),
        "platform kind \"heroku\" is not known",
    );
}
