//! Malformed input of every kind pgshift reads — inventory, config, runbook, flags and
//! environment — is refused the same way: exit 2, one line on stderr naming the file and
//! line (or the flag or variable), no panic, and nothing written to the state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A valid inventory on simulated servers (no lab needed); every inventory case breaks it.
const INVENTORY: &str = r#"[servers.old]
version = 13
sim = true

[servers.new]
version = 15
sim = true

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
  size_mb = 12.5
"#;

const SECOND_APP: &str = r#"
[[apps]]
name = "a2"
region = "r1"
environment = "stage"
libpq = "15.1"

  [[apps.services]]
  id = "a2-db"
  service = "postgresql-database-13"
  server = "old"
  database = "a2"
  user = "a2"
  password = { value = "z" }
"#;

const RUNBOOK: &str = include_str!("../fixtures/runbooks/pg13-to-pg15.toml");

#[derive(Clone, Copy, Debug)]
enum Kind {
    Inventory,
    Config,
    Runbook,
}

struct FileCase {
    name: &'static str,
    kind: Kind,
    text: String,
    /// The reported line is the line of the `nth` occurrence of this text (1 if empty).
    needle: &'static str,
    nth: usize,
}

fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from:?} not in base");
    base.replacen(from, to, 1)
}

fn inv(name: &'static str, from: &str, to: &str, needle: &'static str) -> FileCase {
    FileCase {
        name,
        kind: Kind::Inventory,
        text: edit(INVENTORY, from, to),
        needle,
        nth: 0,
    }
}

fn cfg(name: &'static str, text: &str, needle: &'static str) -> FileCase {
    FileCase {
        name,
        kind: Kind::Config,
        text: text.to_string(),
        needle,
        nth: 0,
    }
}

fn rb(name: &'static str, from: &str, to: &str, needle: &'static str) -> FileCase {
    FileCase {
        name,
        kind: Kind::Runbook,
        text: edit(RUNBOOK, from, to),
        needle,
        nth: 0,
    }
}

fn file_cases() -> Vec<FileCase> {
    let long = "x".repeat(10_000);
    let name64 = "a".repeat(64);
    let two = format!("{INVENTORY}{SECOND_APP}");
    let mut v = vec![
        // Inventory: structure.
        FileCase {
            name: "empty inventory",
            kind: Kind::Inventory,
            text: String::new(),
            needle: "",
            nth: 0,
        },
        FileCase {
            name: "inventory without apps",
            kind: Kind::Inventory,
            text: INVENTORY[..INVENTORY.find("[[apps]]").unwrap()].to_string(),
            needle: "",
            nth: 0,
        },
        inv(
            "syntax error",
            "name = \"a1\"",
            "name = \"a1",
            "name = \"a1",
        ),
        inv(
            "unknown key",
            "environment = \"live\"",
            "environment = \"live\"\ncolour = 1",
            "colour",
        ),
        inv(
            "unknown environment",
            "environment = \"live\"",
            "environment = \"prod\"",
            "prod",
        ),
        inv(
            "version as text",
            "version = 13",
            "version = \"13\"",
            "version = \"13\"",
        ),
        // Inventory: names.
        inv(
            "app name of 10,000 characters",
            "name = \"a1\"",
            &format!("name = \"{long}\""),
            "xxxx",
        ),
        inv(
            "app name of 64 bytes",
            "name = \"a1\"",
            &format!("name = \"{name64}\""),
            "aaaa",
        ),
        inv(
            "app name with a space",
            "name = \"a1\"",
            "name = \"a 1\"",
            "a 1",
        ),
        inv(
            "empty app name",
            "name = \"a1\"",
            "name = \"\"",
            "name = \"\"",
        ),
        inv(
            "app name with a slash",
            "name = \"a1\"",
            "name = \"../a1\"",
            "../a1",
        ),
        inv(
            "region name with a slash",
            "name = \"r1\"",
            "name = \"r/1\"",
            "r/1",
        ),
        inv(
            "empty service id",
            "id = \"a1-db\"",
            "id = \"\"",
            "id = \"\"",
        ),
        inv(
            "empty customer",
            "libpq = \"15.1\"",
            "libpq = \"15.1\"\ncustomer = \" \"",
            "name = \"a1\"",
        ),
        // Inventory: PostgreSQL identifiers.
        inv(
            "database name of 64 bytes",
            "database = \"a1\"",
            &format!("database = \"{name64}\""),
            "database = ",
        ),
        inv(
            "empty database name",
            "database = \"a1\"",
            "database = \"\"",
            "database = ",
        ),
        inv(
            "role name with a control character",
            "user = \"a1\"",
            "user = \"a\\u0001\"",
            "user",
        ),
        inv(
            "role name of 10,000 characters",
            "user = \"a1\"",
            &format!("user = \"{long}\""),
            "user",
        ),
        // Inventory: URLs.
        inv(
            "server url that is not a URL",
            "version = 13\nsim = true",
            "version = 13\nurl = \"not a url\"",
            "not a url",
        ),
        inv(
            "server url with a password",
            "version = 13\nsim = true",
            "version = 13\nurl = \"postgres://admin:secret@db:5432/postgres\"",
            "url",
        ),
        inv(
            "server url with port 99999",
            "version = 13\nsim = true",
            "version = 13\nurl = \"postgres://admin@db:99999/postgres\"",
            "url",
        ),
        inv(
            "server url with port 0",
            "version = 13\nsim = true",
            "version = 13\nurl = \"postgres://admin@db:0/postgres\"",
            "url",
        ),
        inv(
            "server url without host",
            "version = 13\nsim = true",
            "version = 13\nurl = \"postgres:///postgres\"",
            "url",
        ),
        inv(
            "server url with a space",
            "version = 13\nsim = true",
            "version = 13\nurl = \"postgres://admin@db host/x\"",
            "url",
        ),
        inv(
            "server url of another scheme",
            "version = 13\nsim = true",
            "version = 13\nurl = \"mysql://admin@db/x\"",
            "url",
        ),
        inv(
            "server both sim and url",
            "version = 13\nsim = true",
            "version = 13\nsim = true\nurl = \"postgres://a@b/c\"",
            "[servers.old]",
        ),
        inv(
            "server neither sim, lab nor url",
            "version = 13\nsim = true",
            "version = 13",
            "[servers.old]",
        ),
        // Inventory: numbers.
        inv(
            "server version 0",
            "version = 13",
            "version = 0",
            "version = 0",
        ),
        inv(
            "server version 1000",
            "version = 13",
            "version = 1000",
            "version = 1000",
        ),
        inv(
            "negative version",
            "version = 13",
            "version = -13",
            "version = -13",
        ),
        inv(
            "negative size",
            "size_mb = 12.5",
            "size_mb = -12.5",
            "size_mb",
        ),
        inv("size nan", "size_mb = 12.5", "size_mb = nan", "size_mb"),
        inv(
            "size infinite",
            "size_mb = 12.5",
            "size_mb = inf",
            "size_mb",
        ),
        inv(
            "size as text",
            "size_mb = 12.5",
            "size_mb = \"big\"",
            "size_mb",
        ),
        inv(
            "concurrency 0",
            "name = \"r1\"",
            "name = \"r1\"\nconcurrency = 0",
            "concurrency",
        ),
        inv(
            "concurrency 100000",
            "name = \"r1\"",
            "name = \"r1\"\nconcurrency = 100000",
            "concurrency",
        ),
        inv(
            "negative concurrency",
            "name = \"r1\"",
            "name = \"r1\"\nconcurrency = -2",
            "concurrency",
        ),
        // Inventory: references.
        inv("unknown region", "region = \"r1\"", "region = \"r9\"", "r9"),
        inv(
            "target key not a major",
            "targets = { \"15\" = \"new\" }",
            "targets = { \"fifteen\" = \"new\" }",
            "fifteen",
        ),
        inv(
            "target unknown server",
            "targets = { \"15\" = \"new\" }",
            "targets = { \"15\" = \"nowhere\" }",
            "nowhere",
        ),
        inv(
            "target of another major",
            "targets = { \"15\" = \"new\" }",
            "targets = { \"15\" = \"old\" }",
            "targets",
        ),
        inv(
            "service on unknown server",
            "server = \"old\"",
            "server = \"gone\"",
            "gone",
        ),
        inv(
            "service major differs from its server",
            "service = \"postgresql-database-13\"",
            "service = \"postgresql-database-15\"",
            "server = \"old\"",
        ),
        inv(
            "provisioned service without database",
            "  database = \"a1\"\n",
            "",
            "id = \"a1-db\"",
        ),
        // Inventory: clients.
        inv(
            "libpq not a version",
            "libpq = \"15.1\"",
            "libpq = \"fifteen\"",
            "fifteen",
        ),
        inv(
            "client of an unknown family",
            "libpq = \"15.1\"",
            "client = \"psycopg 2.8\"",
            "psycopg",
        ),
        inv(
            "client without version",
            "libpq = \"15.1\"",
            "client = \"pgjdbc\"",
            "pgjdbc",
        ),
        inv(
            "both libpq and client",
            "libpq = \"15.1\"",
            "libpq = \"15.1\"\nclient = \"pgx 5.5.0\"",
            "client",
        ),
        inv(
            "neither libpq nor client",
            "libpq = \"15.1\"\n",
            "",
            "name = \"a1\"",
        ),
    ];
    // Two apps: duplicates and collisions.
    v.push(FileCase {
        name: "duplicate app",
        kind: Kind::Inventory,
        text: edit(&two, "name = \"a2\"", "name = \"a1\""),
        needle: "name = \"a1\"",
        nth: 1,
    });
    v.push(FileCase {
        name: "duplicate service id",
        kind: Kind::Inventory,
        text: edit(&two, "id = \"a2-db\"", "id = \"a1-db\""),
        needle: "id = \"a1-db\"",
        nth: 1,
    });
    v.push(FileCase {
        name: "two services share one database",
        kind: Kind::Inventory,
        text: edit(&two, "database = \"a2\"", "database = \"a1\""),
        needle: "database = \"a1\"",
        nth: 1,
    });
    v.push(FileCase {
        name: "two databases collide on NEW",
        kind: Kind::Inventory,
        text: edit(
            &edit(&two, "database = \"a2\"", "database = \"a1\""),
            "server = \"old\"\n  database = \"a1\"\n  user = \"a2\"",
            "server = \"old2\"\n  database = \"a1\"\n  user = \"a2\"",
        )
        .replacen(
            "[servers.new]",
            "[servers.old2]\nversion = 13\nsim = true\n\n[servers.new]",
            1,
        ),
        needle: "id = \"a2-db\"",
        nth: 0,
    });

    // Config.
    v.extend([
        cfg(
            "log level that is not a level",
            "log_level = \"loud\"\n",
            "log_level",
        ),
        cfg("log level of another type", "log_level = 5\n", "log_level"),
        cfg("theme that does not exist", "theme = \"neon\"\n", "theme"),
        cfg(
            "store of another scheme",
            "store = \"mysql://db/pgshift\"\n",
            "store",
        ),
        cfg(
            "sqlite store without a file",
            "store = \"sqlite://\"\n",
            "store",
        ),
        cfg(
            "postgres store without a host",
            "store = \"postgres:///pgshift\"\n",
            "store",
        ),
        cfg("lab port 0", "[lab]\nport13 = 0\n", "port13"),
        cfg("lab port beyond 65535", "[lab]\nport13 = 70000\n", "port13"),
        cfg(
            "lab ports equal",
            "[lab]\nport13 = 30001\nport15 = 30001\n",
            "port15",
        ),
        cfg("empty lab OS user", "[lab]\nos_user = \"\"\n", "os_user"),
        cfg("unknown config key", "# mine\ncolour = \"red\"\n", "colour"),
        cfg("config syntax error", "theme = \"default\n", "theme"),
        cfg("empty log level", "\nlog_level = \"\"\n", "log_level"),
    ]);

    // Runbooks.
    let no_pre = {
        let start = RUNBOOK.find("[[preconditions]]").unwrap();
        let end = start + RUNBOOK[start..].find("\n\n").unwrap();
        format!("{}{}", &RUNBOOK[..start], &RUNBOOK[end + 2..])
    };
    v.extend([
        FileCase {
            name: "runbook without preconditions",
            kind: Kind::Runbook,
            text: no_pre,
            needle: "",
            nth: 0,
        },
        rb(
            "precondition on a service that is not PostgreSQL",
            "service = \"postgresql-database-13\", provisioned",
            "service = \"redis-cache-6\", provisioned",
            "redis-cache-6",
        ),
        rb(
            "override to a service that is not PostgreSQL",
            "= \"postgresql-database-15\"",
            "= \"redis-cache-7\"",
            "redis-cache-7",
        ),
        rb(
            "override from a service that is not PostgreSQL",
            "{ \"postgresql-database-13\" =",
            "{ \"mysql-8\" =",
            "mysql-8",
        ),
        rb(
            "override to an older major",
            "= \"postgresql-database-15\"",
            "= \"postgresql-database-12\"",
            "postgresql-database-12",
        ),
        rb(
            "override of a service nothing collects",
            "{ \"postgresql-database-13\" = \"postgresql-database-15\" }",
            "{ \"postgresql-database-14\" = \"postgresql-database-15\" }",
            "postgresql-database-14",
        ),
        rb(
            "deprovision after in years",
            "after = \"7d\"",
            "after = \"7y\"",
            "deprovision_collected",
        ),
        rb(
            "deprovision after a word",
            "after = \"7d\"",
            "after = \"soon\"",
            "deprovision_collected",
        ),
        rb(
            "deprovision after that overflows",
            "after = \"7d\"",
            "after = \"999999999999999999d\"",
            "deprovision_collected",
        ),
        rb("unknown operation", "redeploy = {}", "fly = {}", "fly"),
        rb(
            "empty runbook name",
            "name = \"pg13-to-pg15\"",
            "name = \"\"",
            "name = \"\"",
        ),
        rb(
            "runbook syntax error",
            "redeploy = {}",
            "redeploy == {}",
            "redeploy ==",
        ),
        rb(
            "enable without restore",
            "  { restore_backup_to_reprovisioned_services = {} },\n",
            "",
            "enable_reprovisioned_services",
        ),
    ]);
    v
}

/// Flag and environment cases: the message names the flag or variable.
/// (case, argv, environment, what the message must name)
type ArgCase = (
    &'static str,
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

fn arg_cases() -> Vec<ArgCase> {
    vec![
        (
            "plan --batch-size 0",
            vec!["plan", "--batch-size", "0"],
            vec![],
            "--batch-size",
        ),
        (
            "plan --batch-size -3",
            vec!["plan", "--batch-size", "-3"],
            vec![],
            "-3",
        ),
        (
            "plan --batch-size many",
            vec!["plan", "--batch-size", "many"],
            vec![],
            "--batch-size",
        ),
        (
            "plan --window 0",
            vec!["plan", "--window", "0"],
            vec![],
            "--window",
        ),
        (
            "plan --window soon",
            vec!["plan", "--window", "soon"],
            vec![],
            "--window",
        ),
        (
            "plan --window 0h",
            vec!["plan", "--window", "0h"],
            vec![],
            "--window",
        ),
        (
            "run --speed nan",
            vec!["run", "--speed", "nan"],
            vec![],
            "--speed",
        ),
        (
            "run --speed inf",
            vec!["run", "--speed", "inf"],
            vec![],
            "--speed",
        ),
        (
            "sim-fleet --apps 0",
            vec!["sim-fleet", "--apps", "0"],
            vec![],
            "--apps",
        ),
        (
            "plan --canary lots",
            vec!["plan", "--canary", "lots"],
            vec![],
            "--canary",
        ),
        (
            "--log-level loud",
            vec!["--log-level", "loud", "info"],
            vec![],
            "--log-level",
        ),
        (
            "--store mysql://",
            vec!["--store", "mysql://db/x", "info"],
            vec![],
            "--store",
        ),
        (
            "PGSHIFT_LOG=loud",
            vec!["info"],
            vec![("PGSHIFT_LOG", "loud")],
            "PGSHIFT_LOG",
        ),
        (
            "PGSHIFT_THEME=neon",
            vec!["info"],
            vec![("PGSHIFT_THEME", "neon")],
            "PGSHIFT_THEME",
        ),
        (
            "PGSHIFT_LAB_PORT13=abc",
            vec!["info"],
            vec![("PGSHIFT_LAB_PORT13", "abc")],
            "PGSHIFT_LAB_PORT13",
        ),
        (
            "PGSHIFT_STORE=redis://",
            vec!["info"],
            vec![("PGSHIFT_STORE", "redis://x")],
            "PGSHIFT_STORE",
        ),
        ("unknown subcommand", vec!["migrat"], vec![], "migrat"),
        ("missing --app", vec!["migrate"], vec![], "--app"),
    ]
}

/// (name, command, state dir, what the message must name)
type Job = (String, Command, PathBuf, String);

/// `pgshift` with nothing of the test's environment: its own state and config dirs.
fn pgshift(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgshift"));
    c.env("PGSHIFT_STATE_DIR", state)
        .env("XDG_CONFIG_HOME", state.join("no-config"))
        .env("NO_COLOR", "1");
    for k in [
        "PGSHIFT_CONFIG",
        "PGSHIFT_INVENTORY",
        "PGSHIFT_STORE",
        "PGSHIFT_LOG",
        "PGSHIFT_THEME",
        "PGSHIFT_LAB_PORT13",
        "PGSHIFT_LAB_PORT15",
        "RUST_LOG",
    ] {
        c.env_remove(k);
    }
    c
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(p.clone(), Vec::new());
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn refused(name: &str, out: &Output, names: &str) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if out.status.code() != Some(2) {
        return Err(format!(
            "{name}: exit {:?}, stderr {stderr:?}",
            out.status.code()
        ));
    }
    if lines.len() != 1 {
        return Err(format!("{name}: {} lines: {stderr:?}", lines.len()));
    }
    if stderr.contains("panicked") || !lines[0].starts_with("pgshift: ") {
        return Err(format!("{name}: {stderr:?}"));
    }
    if !lines[0].contains(names) {
        return Err(format!("{name}: {:?} does not name {names:?}", lines[0]));
    }
    if !out.stdout.is_empty() {
        return Err(format!(
            "{name}: printed on stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(())
}

fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    if needle.is_empty() {
        return 1;
    }
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth} not in case text"))
        .0;
    text[..at].matches('\n').count() + 1
}

#[test]
fn the_base_inputs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, INVENTORY).unwrap();
    let out = pgshift(&state)
        .arg("--inventory")
        .arg(&fleet)
        .args(["inventory", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let two = dir.path().join("two.toml");
    std::fs::write(&two, format!("{INVENTORY}{SECOND_APP}")).unwrap();
    let out = pgshift(&state)
        .arg("--inventory")
        .arg(&two)
        .args(["inventory"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pgshift::runbook::Runbook::parse(RUNBOOK, "rb").is_ok());
}

#[test]
fn every_malformed_input_is_one_line_exit_2_naming_where_and_writes_nothing() {
    let files = file_cases();
    let args = arg_cases();
    let total = files.len() + args.len();
    assert!(total >= 60, "only {total} cases");
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, INVENTORY).unwrap();
    // (name, command, state dir, what the message must name)
    let mut jobs: Vec<Job> = Vec::new();
    for (i, c) in files.iter().enumerate() {
        let state = dir.path().join(format!("state-{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let file = dir.path().join(format!("case-{i}.toml"));
        std::fs::write(&file, &c.text).unwrap();
        let mut cmd = pgshift(&state);
        match c.kind {
            Kind::Inventory => cmd.arg("--inventory").arg(&file).arg("inventory"),
            Kind::Config => cmd.arg("--config").arg(&file).arg("info"),
            Kind::Runbook => cmd
                .arg("--inventory")
                .arg(&fleet)
                .args(["migrate", "--app", "a1", "--runbook"])
                .arg(&file),
        };
        let at = format!("{}:{}:", file.display(), line_of(&c.text, c.needle, c.nth));
        jobs.push((c.name.to_string(), cmd, state, at));
    }
    for (i, (name, argv, env, names)) in args.iter().enumerate() {
        let state = dir.path().join(format!("state-arg-{i}"));
        std::fs::create_dir_all(&state).unwrap();
        let mut cmd = pgshift(&state);
        cmd.arg("--inventory").arg(&fleet).args(argv);
        for (k, v) in env {
            cmd.env(k, v);
        }
        jobs.push((name.to_string(), cmd, state, names.to_string()));
    }
    // A few at a time: each is a process start, and the machine is shared.
    let lanes = 4;
    let mut lists: Vec<Vec<Job>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, j) in jobs.into_iter().enumerate() {
        lists[i % lanes].push(j);
    }
    let failures: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = lists
            .into_iter()
            .map(|list| {
                sc.spawn(move || {
                    let mut failures = Vec::new();
                    for (name, mut cmd, state, names) in list {
                        let before = tree(&state);
                        let out = cmd.output().unwrap();
                        if let Err(e) = refused(&name, &out, &names) {
                            failures.push(e);
                        }
                        if tree(&state) != before {
                            failures.push(format!("{name}: wrote to the state dir"));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {total} malformed inputs mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
