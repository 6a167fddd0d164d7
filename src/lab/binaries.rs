//! Finding the PostgreSQL 13 and 15 binaries the lab needs, with a clear pointer when missing.

use std::path::{Path, PathBuf};

use crate::error::UserError;

/// A directory of PostgreSQL binaries of one major version.
#[derive(Debug, Clone)]
pub struct BinDir {
    pub major: u32,
    pub dir: PathBuf,
}

impl BinDir {
    /// Check that `dir` has the server binaries the lab needs.
    pub fn find(major: u32, dir: &Path) -> Result<Self, UserError> {
        for tool in ["initdb", "pg_ctl", "postgres"] {
            let p = dir.join(tool);
            if !p.is_file() {
                return Err(UserError::new(format!(
                    "PostgreSQL {major} binary {} not found: run scripts/install-deps (or set lab.pg{major}_bin in pgshift.toml)",
                    p.display()
                )));
            }
        }
        Ok(Self {
            major,
            dir: dir.to_path_buf(),
        })
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The bundled shared libraries of the npm build live beside `bin`, in `lib`.
    pub fn library_path(&self) -> Option<PathBuf> {
        let lib = self.dir.parent()?.join("lib");
        lib.join("libpq.so.5").exists().then_some(lib)
    }
}
