//! The command-line contract: exit codes, one-line errors naming what and where, paths in
//! `info`, secrets kept out of logs.

#[path = "support/lab.rs"]
mod support;

use std::net::TcpListener;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn help_lists_the_contract_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .arg("--help")
        .output()
        .expect("run");
    support::check(&out, "--help");
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn info_json_names_config_store_log_and_theme_paths() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args(["info", "--json"])
        .output()
        .expect("run");
    support::check(&out, "info --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let state = dir.path().display().to_string();
    assert_eq!(v["state_dir"], state.as_str());
    assert_eq!(v["store"], format!("sqlite://{state}/pgshift.db").as_str());
    assert_eq!(v["log_dir"], format!("{state}/logs").as_str());
    assert!(
        v["theme_dir"]
            .as_str()
            .is_some_and(|t| t.ends_with("pgshift/themes")),
        "{v}"
    );
    assert!(v["config"].is_null(), "no config file: {v}");
    assert_eq!(v["inventory"], "fixtures/fleet.toml (built-in lab fleet)");
}

#[test]
fn flags_override_config_and_environment() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("pgshift.toml");
    std::fs::write(
        &cfg,
        "store = \"sqlite:///from/config.db\"\ntheme = \"colorblind\"\n",
    )
    .expect("write");
    let out = support::pgshift(dir.path())
        .args(["--config"])
        .arg(&cfg)
        .args(["info", "--json"])
        .output()
        .expect("run");
    support::check(&out, "info with config");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["store"], "sqlite:///from/config.db");
    assert_eq!(v["theme"], "colorblind");
    let out = support::pgshift(dir.path())
        .args(["--config"])
        .arg(&cfg)
        .args(["--store", "sqlite:///from/flag.db", "info", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["store"], "sqlite:///from/flag.db");
}

#[test]
fn malformed_config_is_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("pgshift.toml");
    std::fs::write(&cfg, "theme = \"default\"\n[lab]\nport13 = \"high\"\n").expect("write");
    let out = support::pgshift(dir.path())
        .arg("--config")
        .arg(&cfg)
        .arg("info")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("pgshift: {}:", cfg.display())),
        "{err}"
    );
    assert!(err.contains("port13"), "{err}");

    std::fs::write(&cfg, "theme = \"default\"\nlab = [\n").expect("write");
    let out = support::pgshift(dir.path())
        .arg("--config")
        .arg(&cfg)
        .arg("info")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!("pgshift: {}:2:", cfg.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_pg13_binaries_are_exit_2_naming_the_path_and_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .env("PGSHIFT_PG13_BIN", "/nonexistent/pg13/bin")
        .args(["lab", "up"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(
        err,
        "pgshift: PostgreSQL 13 binary /nonexistent/pg13/bin/initdb not found: run scripts/install-deps (or set lab.pg13_bin in pgshift.toml)"
    );
    assert!(!dir.path().join("lab").exists(), "nothing half-created");
}

#[test]
fn a_taken_port_is_exit_2_naming_the_port_and_the_setting() {
    let dir = tempfile::tempdir().expect("tmp");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = support::pgshift(dir.path())
        .env("PGSHIFT_LAB_PORT13", port.to_string())
        .env("PGSHIFT_LAB_PORT15", "55999")
        .args(["lab", "up"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("port {port} on 127.0.0.1 is taken")),
        "{err}"
    );
    assert!(err.contains("lab.port13"), "{err}");
}

#[test]
fn report_of_a_night_not_yet_run_counts_the_candidates_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args(["report", "--format", "json"])
        .output()
        .expect("run");
    support::check(&out, "report --format json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let inv = pgshift::inventory::load(&pgshift::inventory::Source::BuiltinLab).expect("fleet");
    let candidates = inv.apps.iter().filter(|a| a.is_candidate()).count();
    assert_eq!(v["candidates"], candidates);
    assert_eq!(v["migrated"], 0);
    assert_eq!(v["success_rate"], serde_json::Value::Null);
    let bad = support::pgshift(dir.path())
        .args(["report", "--format", "pdf"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stderr(&bad).lines().count(), 1, "{}", stderr(&bad));
}

#[test]
fn readonly_refuses_to_change_the_lab() {
    let lab = support::lab();
    let out = lab
        .cmd()
        .args(["--readonly", "lab", "down"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "pgshift: --readonly: refusing to stop the lab"
    );
    // Still up.
    assert_eq!(lab.psql(13, "postgres", "select 1"), "1");
}

#[test]
fn no_lab_password_reaches_logs_or_status_output() {
    let lab = support::lab();
    let status = lab
        .cmd()
        .args(["lab", "status", "--json"])
        .output()
        .expect("status");
    support::check(&status, "lab status");
    let mut secrets =
        vec![std::fs::read_to_string(lab.state.join("lab/secrets/admin")).expect("admin")];
    for role in ["ledger_live", "shop_live", "forum_live", "tracker_live"] {
        secrets.push(lab.role_password("pg13", role));
    }
    let mut haystacks = vec![String::from_utf8_lossy(&status.stdout).to_string()];
    for dir in [
        lab.state.join("logs"),
        lab.state.join("lab/pg13"),
        lab.state.join("lab/pg15"),
    ] {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            if entry.path().is_file() {
                haystacks.push(
                    String::from_utf8_lossy(&std::fs::read(entry.path()).expect("read"))
                        .to_string(),
                );
            }
        }
    }
    assert!(haystacks.len() >= 3, "logs exist");
    for s in &secrets {
        let s = s.trim();
        assert_eq!(s.len(), 32);
        for h in &haystacks {
            assert!(!h.contains(s), "a lab password leaked");
        }
    }
}

#[test]
fn a_reader_that_leaves_early_ends_the_listing_quietly() {
    // `pgshift inventory | head -0`: the reader is gone before pgshift writes. pgshift must
    // end without a panic report on the operator's terminal.
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = support::pgshift(dir.path())
        .arg("inventory")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn app_show_on_a_sim_inventory_says_the_sim_world_keeps_no_platform_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = support::pgshift(dir.path())
        .args(["sim-fleet", "--apps", "5", "--seed", "1"])
        .output()
        .expect("run");
    support::check(&out, "sim-fleet");
    let inv = dir.path().join("sim.toml");
    std::fs::write(&inv, &out.stdout).expect("write");
    let out = support::pgshift(dir.path())
        .arg("--inventory")
        .arg(&inv)
        .args(["app", "show", "app-00000"])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("app-00000: the sim world keeps no platform record"),
        "{err}"
    );
}
