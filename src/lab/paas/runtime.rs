//! What runs an app of a given client: the program (shipped in the binary, written into the
//! lab) and the real client library of the inventory's version, installed by
//! `scripts/install-deps` beside the PostgreSQL 13 binaries.

use std::path::{Path, PathBuf};

use crate::inventory::{Client, ClientFamily};

pub const LIBPQ_APP: &str = include_str!("../../../lab/apps/libpq_app.py");
pub const NODE_APP: &str = include_str!("../../../lab/apps/node_app.js");

/// The node-postgres majors install-deps provides: the last one without SCRAM and a current one.
const NODE_PG_OLD: &str = "7.8.2";
const NODE_PG_NEW: &str = "8.16.3";
/// node-postgres 7 hangs on Node ≥ 14 before it sends a byte; it ran on Node 12.
const NODE_OLD: &str = "12.22.12";

/// How to run one app: program, arguments before the role, environment (no secrets).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub program: PathBuf,
    pub script: &'static str,
    pub env: Vec<(&'static str, String)>,
    /// What the app's client really is, for status and messages.
    pub label: String,
}

/// Where install-deps puts the apps' client libraries: beside the PostgreSQL 13 binaries
/// (`/opt/pgshift` for root, `~/.local/share/pgshift` otherwise), or `PGSHIFT_LAB_RUNTIMES`.
pub fn runtimes_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PGSHIFT_LAB_RUNTIMES").filter(|v| !v.is_empty()) {
        return d.into();
    }
    crate::config::default_pg13_bin()
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("/opt/pgshift"), Path::to_path_buf)
}

/// The runtime of an app whose image carries `client`, or one line saying why the lab has none.
pub fn for_client(client: Client, runtimes: &Path) -> Result<Runtime, String> {
    let missing = |p: &Path| {
        format!(
            "{} is missing: run scripts/install-deps (it installs the lab apps' client libraries)",
            p.display()
        )
    };
    match client.family {
        ClientFamily::Libpq => {
            let python = PathBuf::from("/usr/bin/python3");
            if !python.exists() {
                return Err(missing(&python));
            }
            if client.version.major >= 10 {
                // Debian's libpq5 (PostgreSQL 15's): any libpq ≥ 10 speaks SCRAM as it does.
                Ok(Runtime {
                    program: python,
                    script: "libpq_app.py",
                    env: vec![("LAB_LIBPQ", "libpq.so.5".into())],
                    label: "libpq (system libpq5)".into(),
                })
            } else {
                let dir = runtimes.join("libpq-9.6");
                let lib = dir.join("libpq.so.5");
                if !lib.exists() {
                    return Err(missing(&lib));
                }
                Ok(Runtime {
                    program: python,
                    script: "libpq_app.py",
                    env: vec![
                        ("LAB_LIBPQ", lib.display().to_string()),
                        ("LD_LIBRARY_PATH", dir.display().to_string()),
                    ],
                    label: "libpq 9.6 (psycopg2 2.7.3.1 wheel)".into(),
                })
            }
        }
        ClientFamily::NodePostgres => {
            let v = client.version;
            let exact = format!("{}.{}.{}", v.major, v.minor, v.patch);
            let pg = if runtimes.join(format!("node/pg-{exact}")).exists() {
                exact
            } else if client.supports_scram() {
                NODE_PG_NEW.to_string()
            } else {
                NODE_PG_OLD.to_string()
            };
            let modules = runtimes.join(format!("node/pg-{pg}/node_modules"));
            if !modules.join("pg").exists() {
                return Err(missing(&modules.join("pg")));
            }
            let major: Option<u32> = pg.split('.').next().and_then(|m| m.parse().ok());
            let node = if major.is_some_and(|m| m < 8) {
                runtimes.join(format!("node/node-{NODE_OLD}/bin/node"))
            } else {
                PathBuf::from("/usr/bin/node")
            };
            if !node.exists() {
                return Err(missing(&node));
            }
            Ok(Runtime {
                program: node,
                script: "node_app.js",
                env: vec![("NODE_PATH", modules.display().to_string())],
                label: format!("node-postgres {pg}"),
            })
        }
        other => Err(format!(
            "client family {} has no runtime in the lab (it runs libpq and node-postgres apps)",
            other.id()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(s: &str) -> Client {
        Client::parse(s).unwrap()
    }

    /// A runtimes dir laid out as install-deps lays it out (empty files stand for the real ones).
    fn runtimes() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pgshift-runtimes-test-{}", std::process::id()));
        for p in [
            "libpq-9.6/libpq.so.5",
            "node/node-12.22.12/bin/node",
            "node/pg-7.8.2/node_modules/pg/package.json",
            "node/pg-8.16.3/node_modules/pg/package.json",
        ] {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        dir
    }

    #[test]
    fn each_client_gets_a_library_of_its_kind_and_other_families_are_refused() {
        let dir = runtimes();
        let old = for_client(Client::libpq("9.6.24").unwrap(), &dir).unwrap();
        assert!(
            old.env
                .iter()
                .any(|(k, v)| *k == "LAB_LIBPQ" && v.ends_with("libpq-9.6/libpq.so.5"))
        );
        let new = for_client(Client::libpq("15.4").unwrap(), &dir).unwrap();
        assert!(new.env.contains(&("LAB_LIBPQ", "libpq.so.5".to_string())));

        let n7 = for_client(client("node-postgres 7.8.2"), &dir).unwrap();
        assert_eq!(n7.program, dir.join("node/node-12.22.12/bin/node"));
        assert!(n7.env[0].1.ends_with("pg-7.8.2/node_modules"));
        // No exact install of 7.4.0: the install without SCRAM stands for it.
        let n74 = for_client(client("node-postgres 7.4.0"), &dir).unwrap();
        assert_eq!(n74.label, "node-postgres 7.8.2");
        let n8 = for_client(client("node-postgres 8.1.0"), &dir).unwrap();
        assert_eq!(
            (n8.label.as_str(), n8.program.as_path()),
            ("node-postgres 8.16.3", Path::new("/usr/bin/node"))
        );

        let err = for_client(client("pgjdbc 42.1.4"), &dir).unwrap_err();
        assert!(
            err.contains("pgjdbc") && err.contains("no runtime"),
            "{err}"
        );
        let missing =
            for_client(client("node-postgres 7.8.2"), Path::new("/nonexistent")).unwrap_err();
        assert!(missing.contains("scripts/install-deps"), "{missing}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
