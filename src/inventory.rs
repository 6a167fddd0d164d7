//! The fleet inventory: regions, apps and their service instances, loaded from a TOML file and
//! validated with `file:line:col` errors an operator can act on. Knows nothing of how apps migrate.

pub mod client;
mod model;
pub mod platform;
mod secret;
mod validate;

pub use validate::{PG_NAME_MAX, check_server_url};

pub use client::{Client, ClientFamily};
pub use model::{
    App, Environment, Inventory, LabSeed, Region, Server, ServerKind, ServiceInstance, ServiceKind,
    Strategy,
};
pub use secret::{PasswordSource, Secret, mask_url};

use std::path::{Path, PathBuf};

/// The lab's fixture fleet, compiled in so `pgshift` opens on it from any directory.
pub const LAB_FLEET: &str = include_str!("../fixtures/fleet.toml");
/// How the compiled-in fleet is named in messages.
pub const LAB_FLEET_NAME: &str = "fixtures/fleet.toml (built-in lab fleet)";

/// An inventory that could not be loaded: where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: cannot read inventory: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
}

/// Where an inventory comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    BuiltinLab,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::BuiltinLab => LAB_FLEET_NAME.to_string(),
        }
    }
}

/// Load and validate an inventory.
pub fn load(source: &Source) -> Result<Inventory, InventoryError> {
    match source {
        Source::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| InventoryError::Read {
                path: path.display().to_string(),
                source: e,
            })?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            parse(&text, &path.display().to_string(), &base)
        }
        Source::BuiltinLab => parse(LAB_FLEET, LAB_FLEET_NAME, Path::new(".")),
    }
}

/// Parse and validate inventory text; `name` is used in error messages, `base` resolves
/// relative password files.
pub fn parse(text: &str, name: &str, base: &Path) -> Result<Inventory, InventoryError> {
    let raw: model::RawInventory = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        InventoryError::Invalid {
            path: name.to_string(),
            line,
            col,
            message: first_line(e.message()),
        }
    })?;
    validate::validate(raw, base).map_err(|v| {
        let (line, col) = line_col(text, v.offset);
        InventoryError::Invalid {
            path: name.to_string(),
            line,
            col,
            message: v.message,
        }
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `7d`, `36h`, `90m`, `30s`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    // A duration that overflows is a typo, not a very long wait.
    let secs = n.checked_mul(unit_secs)?;
    Some(std::time::Duration::from_secs(secs))
}
