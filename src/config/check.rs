//! Checks every config value once all layers are merged, and names where a bad one came
//! from: the config file and line, the environment variable, or the flag.

use std::path::Path;

use super::{Config, ConfigError};

/// Where a value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// The built-in defaults.
    #[default]
    Default,
    /// The user's config file, at this line and column.
    File {
        line: usize,
        col: usize,
    },
    Env(&'static str),
    Flag(&'static str),
}

impl Origin {
    pub(super) fn file(text: &str, offset: usize) -> Self {
        let (line, col) = crate::inventory::line_col(text, offset);
        Origin::File { line, col }
    }
}

/// The origin of each value that is checked.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub state_dir: Origin,
    pub store: Origin,
    pub log_level: Origin,
    pub theme: Origin,
    pub port13: Origin,
    pub port15: Origin,
    pub os_user: Origin,
}

/// The levels `--log-level`, `PGSHIFT_LOG` and `log_level` accept.
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

pub(super) fn check(cfg: &Config, file: Option<&Path>) -> Result<(), ConfigError> {
    let o = &cfg.origins;
    let fail = |origin: &Origin, key: &str, message: String| -> ConfigError {
        let (path, line, col, message) = match origin {
            Origin::File { line, col } => (
                file.map_or_else(|| "config".into(), |f| f.display().to_string()),
                *line,
                *col,
                format!("{key}: {message}"),
            ),
            Origin::Env(var) => ((*var).to_string(), 0, 0, message),
            Origin::Flag(flag) => ((*flag).to_string(), 0, 0, message),
            Origin::Default => (
                "built-in defaults".into(),
                0,
                0,
                format!("{key}: {message}"),
            ),
        };
        ConfigError {
            path,
            line,
            col,
            message,
        }
    };

    let level = cfg.log_level.trim().to_ascii_lowercase();
    if !LEVELS.contains(&level.as_str()) {
        return Err(fail(
            &o.log_level,
            "log_level",
            format!(
                "\"{}\" is not a log level ({})",
                cfg.log_level,
                LEVELS.join(", ")
            ),
        ));
    }

    // A built-in theme or a readable file in the theme dir; its colours are checked when the
    // console loads it.
    if !super::BUILTIN_THEMES.iter().any(|(n, _)| *n == cfg.theme) {
        let path = cfg.theme_dir().join(format!("{}.toml", cfg.theme));
        if let Err(e) = std::fs::metadata(&path) {
            let builtin: Vec<&str> = super::BUILTIN_THEMES.iter().map(|(n, _)| *n).collect();
            return Err(fail(
                &o.theme,
                "theme",
                format!(
                    "theme \"{}\": {} ({e}); built-in themes: {}",
                    cfg.theme,
                    path.display(),
                    builtin.join(", ")
                ),
            ));
        }
    }

    for (port, origin, key) in [
        (cfg.lab.port13, &o.port13, "lab.port13"),
        (cfg.lab.port15, &o.port15, "lab.port15"),
    ] {
        if port == 0 {
            return Err(fail(origin, key, "0 is not a port (1–65535)".into()));
        }
    }
    if cfg.lab.port13 == cfg.lab.port15 {
        return Err(fail(
            &o.port15,
            "lab.port15",
            format!(
                "{} is also lab.port13: the two lab servers need their own ports",
                cfg.lab.port15
            ),
        ));
    }
    if cfg.lab.os_user.trim().is_empty() {
        return Err(fail(&o.os_user, "lab.os_user", "is empty".into()));
    }

    if let Some(store) = &cfg.store {
        check_store(store).map_err(|m| fail(&o.store, "store", m))?;
    }
    if cfg
        .state_dir
        .as_ref()
        .is_some_and(|d| d.as_os_str().is_empty())
    {
        return Err(fail(&o.state_dir, "state_dir", "is empty".into()));
    }
    Ok(())
}

/// `sqlite://PATH` or a postgres URL.
fn check_store(url: &str) -> Result<(), String> {
    let shown = crate::inventory::mask_url(url);
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(format!("\"{shown}\" names no file"));
        }
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The store may carry its password in the URL (it is masked wherever it is shown).
        let without_password = match url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((userinfo, host)) => format!(
                    "{scheme}://{}@{host}",
                    userinfo.split(':').next().unwrap_or("")
                ),
                None => url.to_string(),
            },
            None => url.to_string(),
        };
        return crate::inventory::check_server_url(&without_password)
            .map_err(|why| format!("\"{shown}\": {why}"));
    }
    Err(format!(
        "\"{shown}\" is not a sqlite://PATH or postgres://… URL"
    ))
}
