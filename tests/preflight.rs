//! Preflight against the real servers predicts exactly the fixture apps that fail, and
//! `--apply-preflight` migrates them without a failure. `pgshift diagnose` classifies logs.

#[path = "support/lab.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;

use pgshift::inventory::{self, Source};

#[test]
fn preflight_flags_exactly_the_apps_that_fail_without_remediation() {
    let lab = support::lab();
    let out = lab
        .cmd()
        .args(["preflight", "--json"])
        .output()
        .expect("preflight");
    support::check(&out, "preflight --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let flagged: BTreeSet<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["risks"].as_array().unwrap().iter().map(move |r| {
                (
                    a["app"].as_str().unwrap().to_string(),
                    r["class"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    // What the fixture fleet is built to fail with, from the inventory alone.
    let inv = inventory::load(&Source::BuiltinLab).expect("fleet");
    let mut expected = BTreeSet::new();
    for a in inv.apps.iter().filter(|a| a.is_candidate()) {
        if !a.client.supports_scram() {
            expected.insert((a.name.clone(), "libpq-scram".to_string()));
        }
        if a.services
            .iter()
            .any(|s| s.seed.as_ref().is_some_and(|x| x.btree_straddle))
        {
            expected.insert((a.name.clone(), "btree-index-row-size".to_string()));
        }
        // Seed profiles built to hold objects a restore on 15 as the app role cannot carry.
        for s in a.services.iter().filter_map(|s| s.seed.as_ref()) {
            match s.profile.as_str() {
                "legacy" => {
                    expected.insert((a.name.clone(), "pg14-incompatible".to_string()));
                }
                "privileged" => {
                    expected.insert((a.name.clone(), "privilege".to_string()));
                }
                _ => {}
            }
        }
    }
    assert_eq!(flagged, expected);
    assert_eq!(
        v.as_array().unwrap().len(),
        inv.apps.iter().filter(|a| a.is_candidate()).count()
    );
    let forum = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "forum-live")
        .unwrap();
    assert_eq!(forum["risks"][0]["remediation"], "pglz-restore");
    assert!(
        forum["risks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("redirects_source_idx")
    );
    // The probe roles preflight creates on NEW are gone.
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select count(*) from pg_roles where rolname like 'pgshift_preflight_%'"
        ),
        "0"
    );
}

#[test]
fn apply_preflight_migrates_the_risky_apps_without_a_failure() {
    let lab = support::lab();
    for app in ["newsletter-live", "recipes-live"] {
        let reset = lab
            .cmd()
            .args(["lab", "reset", "--app", app])
            .output()
            .expect("reset");
        support::check(&reset, "lab reset --app");
        let out = lab
            .cmd()
            .args(["migrate", "--app", app, "--apply-preflight", "--json"])
            .output()
            .expect("migrate");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{app}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("\"event\":\"failure\""), "{app}: {stdout}");
        assert!(stdout.contains("\"outcome\":\"migrated\""), "{app}");
    }
    assert_eq!(
        lab.psql(
            15,
            "postgres",
            "select left(rolpassword, 3) from pg_authid where rolname = 'newsletter_live'"
        ),
        "md5"
    );
    assert_eq!(
        lab.psql(
            15,
            "recipes_live",
            "select count(*) from pg_indexes where indexname = 'redirects_source_idx'"
        ),
        "1"
    );
}

#[test]
fn diagnose_classifies_a_file_and_stdin() {
    let dir = tempfile::tempdir().expect("tmp");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/captured/pg_restore-aggregate-and-role.log"
    );
    let out = support::pgshift(dir.path())
        .args(["diagnose", fixture, "--json"])
        .output()
        .expect("diagnose");
    support::check(&out, "diagnose");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let classes: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"aggregate-signature") && classes.contains(&"role-missing"),
        "{classes:?}"
    );

    let mut child = support::pgshift(dir.path())
        .args(["diagnose", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(include_bytes!(
            "../fixtures/captured/libpq-scram-django-uwsgi.log"
        ))
        .unwrap();
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("✗ libpq-scram"), "{text}");
    assert!(
        text.contains("»SCRAM authentication requires libpq version 10 or above«"),
        "{text}"
    );
    assert!(text.contains("remedy md5-password"), "{text}");

    let missing = support::pgshift(dir.path())
        .args(["diagnose", "/nonexistent.log"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn an_unreachable_server_is_that_apps_finding_not_the_end_of_preflight() {
    let dir = tempfile::tempdir().expect("tmp");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        r#"
[servers.old]
version = 13
url = "postgres://admin@127.0.0.1:1/postgres"
password = { value = "x" }

[servers.new]
version = 15
url = "postgres://admin@127.0.0.1:1/postgres"
password = { value = "x" }

[[regions]]
name = "r1"
targets = { "15" = "new" }

[[apps]]
name = "a1"
region = "r1"
environment = "live"
libpq = "15.1"

  [[apps.services]]
  id = "a1-db"
  service = "postgresql-database-13"
  server = "old"
  database = "a1"
  user = "a1"
  password = { value = "y" }
"#,
    )
    .expect("write");
    let out = support::pgshift(dir.path())
        .arg("--inventory")
        .arg(&fleet)
        .args(["preflight", "--json"])
        .output()
        .expect("preflight");
    support::check(&out, "preflight");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["app"], "a1");
    assert_eq!(v[0]["risks"][0]["class"], "connection", "{v}");
    assert!(
        v[0]["risks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{v}"
    );
}

/// Apps whose images carry a driver that does not link libpq: preflight knows each family's
/// first SCRAM release (docs/clients.md) and flags the old ones with the md5 remedy, on the
/// lab's real NEW (which asks for SASL).
#[test]
fn preflight_flags_old_pgjdbc_and_node_postgres_apps_with_the_md5_remedy() {
    let lab = support::lab();
    let dir = tempfile::tempdir().expect("tmp");
    let fleet = dir.path().join("fleet.toml");
    // The lab fleet, three of its libpq-15 apps given other clients.
    let mut text = inventory::LAB_FLEET.to_string();
    for (app, client) in [
        ("shop-live", "pgjdbc 42.1.4"),
        ("shop-stage", "node-postgres 7.4.0"),
        ("ledger-live", "pgjdbc 42.2.5"),
    ] {
        let at = text
            .find(&format!("name = \"{app}\""))
            .expect("app in fleet");
        let libpq = at + text[at..].find("libpq = ").expect("libpq line");
        let end = libpq + text[libpq..].find('\n').expect("eol");
        text.replace_range(libpq..end, &format!("client = \"{client}\""));
    }
    std::fs::write(&fleet, &text).expect("write");
    let out = lab
        .cmd()
        .arg("--inventory")
        .arg(&fleet)
        .args(["preflight", "--json"])
        .output()
        .expect("preflight");
    support::check(&out, "preflight --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let app = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))
            .clone()
    };
    for (name, label) in [
        ("shop-live", "pgjdbc 42.1.4"),
        ("shop-stage", "node-postgres 7.4.0"),
    ] {
        let a = app(name);
        let scram = a["risks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["class"] == "libpq-scram")
            .unwrap_or_else(|| panic!("{name} not flagged: {a}"));
        assert_eq!(scram["remediation"], "md5-password", "{a}");
        assert!(scram["detail"].as_str().unwrap().contains(label), "{a}");
    }
    // ledger-live's libpq 9.6 was the reason it was flagged; pgjdbc 42.2.5 does SCRAM.
    let ledger = app("ledger-live");
    assert!(
        ledger["risks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["class"] != "libpq-scram"),
        "{ledger}"
    );
}
