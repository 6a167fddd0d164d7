//! The test lab: real PostgreSQL 13 and 15 servers started by `pgshift lab up` on their own
//! ports and state directory, shared by every test binary (the lab's own lock serializes
//! concurrent starts) and left running for the next run.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const PORT13: u16 = port(0);
pub const PORT15: u16 = port(1);

/// Two checkouts on one machine get their own test labs: the state dir and the ports both
/// derive from the checkout's path (FNV-1a of it).
const fn const_tag() -> u32 {
    let b = env!("CARGO_MANIFEST_DIR").as_bytes();
    let mut h: u64 = 1469598103934665603;
    let mut i = 0;
    while i < b.len() {
        h = (h ^ b[i] as u64).wrapping_mul(1099511628211);
        i += 1;
    }
    h as u32
}

/// 20000..21999 (+2000, +4000 for the separate labs): even for 13, odd for 15. Below the
/// kernel's ephemeral range (32768 and up), where a client connection's source port could
/// hold the port at the moment a lab server starts.
const fn port(offset: u16) -> u16 {
    20000 + (const_tag() % 1000) as u16 * 2 + offset
}

/// The lab's HTTP router: 10000 below its PostgreSQL 13 port (10000..19999), as distinct
/// between labs and checkouts as those ports are.
/// Labs 10000 and more above (ports 30000 and up) take the odd ports of 10001..: the even
/// ones there are the routers of the labs 10000 below them.
pub const fn router_port(p13: u16) -> u16 {
    if p13 < 30000 {
        p13 - 10000
    } else {
        p13 - 20000 + 1
    }
}

/// Under the system temp dir (world-traversable), never under a home the lab user can't enter.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("pgshift-test-lab-{:08x}", const_tag()))
}

/// A separate lab for tests that run the whole fleet (they must not race the single-app
/// tests over the same apps): its own state dir, ports 2000 above.
pub fn fleet_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| separate("fleet", 2000))
}

/// A separate lab for tests that drop an OLD database (deprovision): the other tests read
/// every OLD of the shared lab (preflight) and must never find one missing.
pub fn destructive_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| separate("destructive", 4000))
}

/// A separate lab for the console's end-to-end test: it migrates forum-live, as the
/// migration tests do, and must not race them.
pub fn console_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| separate("console", 6000))
}

/// A separate lab for the lab PaaS tests (tests/lab_paas.rs): they pause, move and stop its
/// apps, and end with `lab down`.
pub fn paas_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| separate("paas", 8000))
}

/// A separate lab for the platform contract's tests (tests/platform.rs): they pause apps,
/// break hooks on purpose and serve as an operator's remote servers.
pub fn platform_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| separate("platform", 10000))
}

fn separate(name: &str, offset: u16) -> Lab {
    let state = std::env::temp_dir().join(format!("pgshift-test-{name}-lab-{:08x}", const_tag()));
    start(state, PORT13 + offset, PORT15 + offset)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pgshift")
}

/// `pgshift` with the test lab's environment and an isolated config.
pub fn pgshift(state: &Path) -> Command {
    pgshift_on(state, PORT13, PORT15)
}

fn pgshift_on(state: &Path, p13: u16, p15: u16) -> Command {
    let mut c = Command::new(bin());
    c.env("PGSHIFT_STATE_DIR", state)
        .env("PGSHIFT_LAB_PORT13", p13.to_string())
        .env("PGSHIFT_LAB_PORT15", p15.to_string())
        .env("PGSHIFT_LAB_ROUTER_PORT", router_port(p13).to_string())
        .env("XDG_CONFIG_HOME", state.join("no-config"))
        .env_remove("PGSHIFT_CONFIG")
        .env_remove("PGSHIFT_INVENTORY")
        .env_remove("PGSHIFT_STORE")
        .env("NO_COLOR", "1");
    c
}

/// `GET url` (http://127.0.0.1:PORT/PATH) with a plain TCP stream: (status code, body).
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

pub struct Cluster {
    pub version: String,
    pub url: String,
}

pub struct Lab {
    pub state: PathBuf,
    pub clusters: Vec<Cluster>,
    pub ports: (u16, u16),
}

impl Lab {
    pub fn cmd(&self) -> Command {
        pgshift_on(&self.state, self.ports.0, self.ports.1)
    }

    pub fn url(&self, major: u32) -> &str {
        &self
            .clusters
            .iter()
            .find(|c| c.version.starts_with(&format!("{major}.")))
            .expect("cluster of that major")
            .url
    }

    /// Run SQL through psql (Debian's 15 client) and return trimmed, unaligned output.
    pub fn psql(&self, major: u32, db: &str, sql: &str) -> String {
        let url = self
            .url(major)
            .replacen("/postgres?", &format!("/{db}?"), 1);
        let out = Command::new("psql")
            .args([
                url.as_str(),
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The lab's generated password of an app role.
    pub fn role_password(&self, server: &str, role: &str) -> String {
        std::fs::read_to_string(self.state.join("lab/secrets").join(server).join(role))
            .expect("role secret")
            .trim()
            .to_string()
    }
}

/// Start (once per test process) and describe the test lab.
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| start(state_dir(), PORT13, PORT15))
}

fn start(state: PathBuf, p13: u16, p15: u16) -> Lab {
    std::fs::create_dir_all(&state).expect("state dir");
    let up = pgshift_on(&state, p13, p15)
        .args(["lab", "up"])
        .output()
        .expect("pgshift lab up");
    check(&up, "pgshift lab up");
    let st = pgshift_on(&state, p13, p15)
        .args(["lab", "status", "--json"])
        .output()
        .expect("lab status");
    check(&st, "pgshift lab status --json");
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("status json");
    let clusters = v["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| Cluster {
            version: c["version"].as_str().expect("version").to_string(),
            url: c["url"].as_str().expect("url").to_string(),
        })
        .collect();
    Lab {
        state,
        clusters,
        ports: (p13, p15),
    }
}

pub fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every test that kills pgshift or runs `resume` on the destructive lab holds this one lock:
/// `resume` continues every unfinished run of the lab, not only the test's own, and nextest
/// runs each test in its own process (a mutex would not hold them apart).
#[allow(dead_code)]
pub fn destructive_lock() -> std::fs::File {
    app_lock("destructive-resume")
}

/// Hold while a test migrates `app` on a lab another test binary migrates it on too: a lock
/// file, since nextest runs each test in its own process.
pub fn app_lock(app: &str) -> std::fs::File {
    let path = state_dir().with_extension(format!("{app}.lock"));
    let f = std::fs::File::create(&path).expect("lock file");
    f.lock().expect("lock");
    f
}

/// Live (not zombie) pg_restore processes whose command line names `db`: (pid, process group),
/// read from /proc.
#[allow(dead_code)]
pub fn pg_restores_of(db: &str) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != "pg_restore" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(db) {
            continue;
        }
        if let Some(pgrp) = fields.get(2).and_then(|f| f.parse().ok()) {
            out.push((pid, pgrp));
        }
    }
    out
}

/// Read `--json` event lines until `step` starts (at most 300 s).
#[allow(dead_code)]
pub fn until_step_started(lines: &mut impl Iterator<Item = std::io::Result<String>>, step: &str) {
    let started = std::time::Instant::now();
    let needle = format!("\"{step}\"");
    for line in lines.by_ref() {
        let line = line.expect("line");
        if line.contains("\"step_started\"") && line.contains(&needle) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "no {step}"
        );
    }
}

/// Wait (at most 30 s) until pg_restore restores `db`, then 300 ms more: it must still run
/// then, or the app is too small for the test.
#[allow(dead_code)]
pub fn into_pg_restore(db: &str) {
    let t = std::time::Instant::now();
    while pg_restores_of(db).is_empty() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "pg_restore never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !pg_restores_of(db).is_empty(),
        "restore already over: the app is too small"
    );
}
