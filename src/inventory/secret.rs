//! Passwords: where they come from, and a type that never prints them by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string. `Debug` and `Display` mask it; only [`Secret::expose`] shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself: for handing to a connection or a password file, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where a password is read from. In TOML: `password = { env = "VAR" }`,
/// `{ file = "path" }` (relative to the inventory file), `{ value = "inline" }`, or
/// `{ lab = true }` (the local lab generated it and keeps it in its state directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PasswordSource {
    Env(String),
    File(PathBuf),
    Value(Secret),
    Lab(bool),
}

impl PasswordSource {
    /// Make a relative `file` path absolute against the inventory's directory.
    pub(super) fn anchored(self, base: &Path) -> Self {
        match self {
            PasswordSource::File(p) if p.is_relative() => PasswordSource::File(base.join(p)),
            other => other,
        }
    }

    /// Read the password. `lab` sources are resolved by the lab, which passes its secrets dir.
    pub fn resolve(&self, lab_secret: impl FnOnce() -> Option<PathBuf>) -> Result<Secret, String> {
        match self {
            PasswordSource::Env(var) => std::env::var(var)
                .map(Secret)
                .map_err(|_| format!("environment variable {var} is not set")),
            PasswordSource::File(path) => read_secret_file(path),
            PasswordSource::Value(s) => Ok(s.clone()),
            PasswordSource::Lab(_) => match lab_secret() {
                Some(path) => read_secret_file(&path),
                None => Err("password comes from the lab, but this is not a lab server".into()),
            },
        }
    }
}

fn read_secret_file(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_string()))
        .map_err(|e| format!("cannot read password file {}: {e}", path.display()))
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_string(),
    }
}
