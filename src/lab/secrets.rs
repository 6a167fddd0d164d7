//! The lab's generated passwords: the admin's, each app role's, and a libpq password file so
//! the admin URLs `lab status` prints work in psql without a password on screen.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::inventory::Secret;

pub struct Secrets {
    dir: PathBuf,
}

impl Secrets {
    pub fn new(lab_dir: &Path) -> Self {
        Self {
            dir: lab_dir.join("secrets"),
        }
    }

    /// libpq password file with the admin's entries, for the URLs `lab status` prints.
    pub fn pgpass_path(&self) -> PathBuf {
        self.dir.join("pgpass")
    }

    pub fn admin_path(&self) -> PathBuf {
        self.dir.join("admin")
    }

    /// Path of an app role's password on a lab server.
    pub fn role_path(&self, server: &str, role: &str) -> PathBuf {
        self.dir.join(server).join(role)
    }

    /// The admin password, generated on first use.
    pub fn admin(&self) -> Result<Secret> {
        self.get_or_create(&self.admin_path())
    }

    pub fn read(&self, path: &Path) -> Result<Secret> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("reading lab secret {}", path.display()))?;
        Ok(Secret::new(text.trim_end()))
    }

    /// Write a fresh password for a role (used when the role is (re)created).
    pub fn new_role_password(&self, server: &str, role: &str) -> Result<Secret> {
        let s = generate();
        write_private(&self.role_path(server, role), s.expose())?;
        Ok(s)
    }

    pub fn forget_server(&self, server: &str) -> Result<()> {
        let d = self.dir.join(server);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        Ok(())
    }

    fn get_or_create(&self, path: &Path) -> Result<Secret> {
        if path.exists() {
            return self.read(path);
        }
        let s = generate();
        write_private(path, s.expose())?;
        Ok(s)
    }

    /// `<lab>/pgpass`: the admin entries for both clusters, in libpq's format.
    pub fn write_pgpass(&self, path: &Path, ports: &[u16], user: &str) -> Result<()> {
        let admin = self.admin()?;
        let mut text = String::new();
        for p in ports {
            text.push_str(&format!("127.0.0.1:{p}:*:{user}:{}\n", admin.expose()));
        }
        write_private(path, &text)
    }
}

/// 32 alphanumerics: strong, and safe in any URL or config file without escaping.
fn generate() -> Secret {
    Secret::new(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(32)
            .map(char::from)
            .collect::<String>(),
    )
}

/// Write a file only its owner can read, in a directory only its owner can enter (every
/// caller writes under `<lab>/secrets`).
fn write_private(path: &Path, content: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .wrap_err_with(|| format!("writing {}", tmp.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
