//! PostgreSQL refuses to run as root: when pgshift is root, the lab's servers run as an
//! unprivileged OS user (created on first use), and the lab's directories belong to it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use color_eyre::eyre::{Result, WrapErr, bail};
use nix::unistd::{Gid, Uid, User, chown};
use tokio::process::Command;

/// Who the lab's server processes run as.
#[derive(Debug, Clone)]
pub struct RunAs {
    /// `None`: the current (unprivileged) user.
    ids: Option<(Uid, Gid)>,
    pub name: String,
}

impl RunAs {
    /// The current user, or `name` (created if missing) when running as root.
    pub fn resolve(name: &str) -> Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            let me = User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(|| "current user".to_string(), |u| u.name);
            return Ok(Self {
                ids: None,
                name: me,
            });
        }
        let user = match User::from_name(name)? {
            Some(u) => u,
            None => {
                tracing::info!(user = name, "creating the lab's unprivileged OS user");
                let out = std::process::Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        name,
                    ])
                    .output()
                    .wrap_err("running useradd to create the lab's OS user")?;
                if !out.status.success() {
                    bail!(
                        "useradd {name} failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                User::from_name(name)?
                    .ok_or_else(|| color_eyre::eyre::eyre!("user {name} missing after useradd"))?
            }
        };
        Ok(Self {
            ids: Some((user.uid, user.gid)),
            name: user.name,
        })
    }

    /// A command that runs as this user, with a clean PostgreSQL environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            c.uid(uid.as_raw()).gid(gid.as_raw());
        }
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            c.env_remove(var);
        }
        c.stdin(std::process::Stdio::null());
        c
    }

    /// The same as [`RunAs::command`], for a process that outlives pgshift (not reaped by tokio).
    pub fn std_command(&self, program: &Path) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new(program);
        if let Some((uid, gid)) = self.ids {
            // std drops root's supplementary groups when it switches uid.
            c.uid(uid.as_raw()).gid(gid.as_raw());
        }
        c.stdin(std::process::Stdio::null());
        c
    }

    /// Create `dir` (and parents) owned by this user, reachable by it.
    pub fn make_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = self.ids {
            chown(dir, Some(uid), Some(gid))
                .wrap_err_with(|| format!("giving {} to {}", dir.display(), self.name))?;
            self.check_reachable(dir)?;
        }
        Ok(())
    }

    pub fn give(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            chown(path, Some(uid), Some(gid))
                .wrap_err_with(|| format!("giving {} to {}", path.display(), self.name))?;
        }
        Ok(())
    }

    /// Every ancestor must let others pass (x), or the server cannot open its data directory.
    fn check_reachable(&self, dir: &Path) -> Result<()> {
        for anc in dir.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(anc) else {
                continue;
            };
            if meta.permissions().mode() & 0o001 == 0 {
                bail!(
                    "the lab's OS user {} cannot reach {} because {} is not traversable by others; \
                     set PGSHIFT_STATE_DIR (or state_dir in pgshift.toml) to a directory outside it",
                    self.name,
                    dir.display(),
                    anc.display()
                );
            }
        }
        Ok(())
    }
}
