//! pgshift.toml: embedded defaults → config file → environment → command-line flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

mod check;

pub use check::{Origin, Origins};

/// The built-in colour themes (name, TOML): what a config's `theme` may name besides a file
/// in the theme dir. The console parses them (`console::theme`).
pub const BUILTIN_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../themes/default.toml")),
    (
        "high-contrast",
        include_str!("../themes/high-contrast.toml"),
    ),
    ("colorblind", include_str!("../themes/colorblind.toml")),
];

/// Defaults, documented; a user's file overrides any of them.
pub const DEFAULT_CONFIG: &str = include_str!("../fixtures/pgshift.default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where pgshift keeps its store, logs and lab clusters. Empty: the platform default.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Inventory file. Empty: the built-in lab fleet.
    #[serde(default)]
    pub inventory: Option<PathBuf>,
    /// Control store URL (`sqlite://…` or `postgres://…`). Empty: SQLite under the state dir.
    #[serde(default)]
    pub store: Option<String>,
    /// Runbook file every verb that plans or runs uses. Empty: the built-in pg13-to-pg15.
    #[serde(default)]
    pub runbook: Option<PathBuf>,
    pub log_level: String,
    pub theme: String,
    pub lab: LabConfig,
    /// Where each checked value came from, for messages that name the file and line.
    #[serde(skip)]
    pub origins: Origins,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabConfig {
    pub port13: u16,
    pub port15: u16,
    /// The lab's HTTP router (nginx) in front of its apps: `http://127.0.0.1:PORT/APP/`.
    pub router_port: u16,
    /// Unprivileged OS user the lab servers run as when pgshift runs as root.
    pub os_user: String,
    /// Directory with the PostgreSQL 13 server binaries (initdb, pg_ctl, postgres).
    #[serde(default)]
    pub pg13_bin: Option<PathBuf>,
    /// Directory with the PostgreSQL 15 binaries (server and clients).
    pub pg15_bin: PathBuf,
}

/// A config that could not be read or holds a bad value. `path` is the file, or the
/// environment variable or flag the value came from (then `line` is 0).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ConfigError {
    fn render(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.path, self.message)
        } else {
            format!("{}:{}:{}: {}", self.path, self.line, self.col, self.message)
        }
    }
}

/// Overrides from the command line and environment, applied last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub store: Option<String>,
    pub log_level: Option<String>,
}

impl Config {
    /// Load defaults, then the file (`--config`, `$PGSHIFT_CONFIG`, or the user's config dir
    /// if present), then `PGSHIFT_*` environment variables, then flags.
    pub fn load(ov: &Overrides) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let mut cfg = Self::defaults()?;
        let file = ov
            .config_file
            .clone()
            .or_else(|| std::env::var_os("PGSHIFT_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let p = user_config_dir()?.join("pgshift.toml");
                p.exists().then_some(p)
            });
        if let Some(path) = &file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                path: name.clone(),
                line: 1,
                col: 1,
                message: format!("cannot read config: {e}"),
            })?;
            cfg.apply_file(&text, &name)?;
        }
        cfg.apply_env()?;
        if let Some(i) = &ov.inventory {
            cfg.inventory = Some(i.clone());
        }
        if let Some(s) = &ov.store {
            cfg.store = Some(s.clone());
            cfg.origins.store = Origin::Flag("--store");
        }
        if let Some(l) = &ov.log_level {
            cfg.log_level = l.clone();
            cfg.origins.log_level = Origin::Flag("--log-level");
        }
        check::check(&cfg, file.as_deref())?;
        Ok((cfg, file))
    }

    /// The defaults with one config file's text applied and checked, without the environment
    /// or flags: what `load` does with a file, for tests and tools.
    pub fn parse(text: &str, name: &str) -> Result<Self, ConfigError> {
        let mut cfg = Self::defaults()?;
        cfg.apply_file(text, name)?;
        check::check(&cfg, Some(Path::new(name)))?;
        Ok(cfg)
    }

    fn defaults() -> Result<Self, ConfigError> {
        toml::from_str(DEFAULT_CONFIG).map_err(|e| ConfigError {
            path: "built-in defaults".into(),
            line: 1,
            col: 1,
            message: e.message().to_string(),
        })
    }

    /// Apply a user's config file; every error points at that file and line.
    fn apply_file(&mut self, text: &str, name: &str) -> Result<(), ConfigError> {
        let user: PartialConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| crate::inventory::line_col(text, s.start))
                .unwrap_or((1, 1));
            let mut message = e.message().lines().next().unwrap_or("").to_string();
            // serde names the type, not the key: name the key from the offending line.
            if let Some(key) = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !message.contains(*k))
            {
                message = format!("{key}: {message}");
            }
            ConfigError {
                path: name.to_string(),
                line,
                col,
                message,
            }
        })?;
        user.apply(self, text);
        Ok(())
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let port = |k: &'static str| -> Result<Option<u16>, ConfigError> {
            var(k)
                .map(|v| {
                    v.parse::<u16>().map_err(|_| ConfigError {
                        path: k.into(),
                        line: 0,
                        col: 0,
                        message: format!("\"{v}\" is not a port (1–65535)"),
                    })
                })
                .transpose()
        };
        if let Some(v) = var("PGSHIFT_STATE_DIR") {
            self.state_dir = Some(v.into());
        }
        if let Some(v) = var("PGSHIFT_INVENTORY") {
            self.inventory = Some(v.into());
        }
        if let Some(v) = var("PGSHIFT_STORE") {
            self.store = Some(v);
            self.origins.store = Origin::Env("PGSHIFT_STORE");
        }
        if let Some(v) = var("PGSHIFT_RUNBOOK") {
            self.runbook = Some(v.into());
        }
        if let Some(v) = var("PGSHIFT_LOG") {
            self.log_level = v;
            self.origins.log_level = Origin::Env("PGSHIFT_LOG");
        }
        if let Some(v) = var("PGSHIFT_THEME") {
            self.theme = v;
            self.origins.theme = Origin::Env("PGSHIFT_THEME");
        }
        if let Some(p) = port("PGSHIFT_LAB_PORT13")? {
            self.lab.port13 = p;
            self.origins.port13 = Origin::Env("PGSHIFT_LAB_PORT13");
        }
        if let Some(p) = port("PGSHIFT_LAB_PORT15")? {
            self.lab.port15 = p;
            self.origins.port15 = Origin::Env("PGSHIFT_LAB_PORT15");
        }
        if let Some(p) = var("PGSHIFT_LAB_ROUTER_PORT").and_then(|v| v.parse().ok()) {
            self.lab.router_port = p;
        }
        if let Some(v) = var("PGSHIFT_PG13_BIN") {
            self.lab.pg13_bin = Some(v.into());
        }
        if let Some(v) = var("PGSHIFT_PG15_BIN") {
            self.lab.pg15_bin = v.into();
        }
        Ok(())
    }

    /// The state directory: configured, or `/var/lib/pgshift` for root (the lab's unprivileged
    /// user must be able to reach it, which it cannot under `/root`), or the XDG state dir.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/pgshift");
        }
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("pgshift")
    }

    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.state_dir().join("pgshift.db").display())
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.state_dir().join("logs")
    }

    /// Where user themes live; the built-in ones are compiled in.
    pub fn theme_dir(&self) -> PathBuf {
        user_config_dir()
            .unwrap_or_else(|| self.state_dir())
            .join("themes")
    }

    /// Where `scripts/install-deps` puts the PostgreSQL 13 binaries by default.
    pub fn pg13_bin(&self) -> PathBuf {
        self.lab.pg13_bin.clone().unwrap_or_else(default_pg13_bin)
    }
}

/// `/opt/pgshift/pg13/bin` for root, `~/.local/share/pgshift/pg13/bin` otherwise — the same
/// rule `scripts/install-deps` follows.
pub fn default_pg13_bin() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/opt/pgshift/pg13/bin");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("pgshift/pg13/bin")
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn user_config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
        .map(|d| d.join("pgshift"))
}

/// A user's config file: any subset of the keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialConfig {
    state_dir: Option<Spanned<PathBuf>>,
    inventory: Option<Spanned<PathBuf>>,
    store: Option<Spanned<String>>,
    runbook: Option<PathBuf>,
    log_level: Option<Spanned<String>>,
    theme: Option<Spanned<String>>,
    #[serde(default)]
    lab: PartialLab,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialLab {
    port13: Option<Spanned<u16>>,
    port15: Option<Spanned<u16>>,
    router_port: Option<u16>,
    os_user: Option<Spanned<String>>,
    pg13_bin: Option<PathBuf>,
    pg15_bin: Option<PathBuf>,
}

impl PartialConfig {
    /// Apply the file's values, remembering the line each checked one came from.
    fn apply(self, cfg: &mut Config, text: &str) {
        fn set<T>(slot: &mut T, origin: &mut Origin, v: Option<Spanned<T>>, text: &str) {
            if let Some(v) = v {
                *origin = Origin::file(text, v.span().start);
                *slot = v.into_inner();
            }
        }
        if let Some(d) = self.state_dir {
            cfg.origins.state_dir = Origin::file(text, d.span().start);
            cfg.state_dir = Some(d.into_inner());
        }
        if let Some(i) = self.inventory {
            cfg.inventory = Some(i.into_inner());
        }
        if let Some(st) = self.store {
            cfg.origins.store = Origin::file(text, st.span().start);
            cfg.store = Some(st.into_inner());
        }
        let o = &mut cfg.origins;
        set(&mut cfg.log_level, &mut o.log_level, self.log_level, text);
        set(&mut cfg.theme, &mut o.theme, self.theme, text);
        set(&mut cfg.lab.port13, &mut o.port13, self.lab.port13, text);
        set(&mut cfg.lab.port15, &mut o.port15, self.lab.port15, text);
        set(&mut cfg.lab.os_user, &mut o.os_user, self.lab.os_user, text);
        if let Some(b) = self.lab.pg15_bin {
            cfg.lab.pg15_bin = b;
        }
        if self.runbook.is_some() {
            cfg.runbook = self.runbook;
        }
        if let Some(p) = self.lab.router_port {
            cfg.lab.router_port = p;
        }
        if self.lab.pg13_bin.is_some() {
            cfg.lab.pg13_bin = self.lab.pg13_bin;
        }
    }
}

/// Make a path absolute against the current directory, for messages and child processes.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
