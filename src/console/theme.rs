//! Themes: flat TOML files of meaning-named colours (`themes/*.toml`, built in; user themes
//! in the config dir). Views reach colours only through meaning-named methods.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use crate::error::UserError;

/// Every key a theme must define.
pub const KEYS: &[&str] = &[
    "text",
    "text-dim",
    "title",
    "border",
    "border-focus",
    "selection-bg",
    "header",
    "key",
    "danger",
    "warning",
    "state-pending",
    "state-running",
    "state-migrated",
    "state-failed",
    "state-rolled-back",
    "state-excluded",
    "state-not-candidate",
    "risk-libpq",
    "failure-libpq-scram",
    "failure-btree-index-row-size",
    "match-fg",
    "match-bg",
];

use crate::config::BUILTIN_THEMES as BUILTIN;

#[derive(Debug, Clone)]
pub struct Theme {
    colors: HashMap<String, Color>,
    /// No colour at all: emphasis by modifiers only.
    plain: bool,
}

impl Theme {
    /// A built-in theme by name, or `<dir>/<name>.toml`.
    pub fn load(name: &str, user_dir: &Path) -> Result<Self, UserError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            return Self::parse(text, &format!("built-in theme {name}"));
        }
        let path = user_dir.join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let builtin: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            UserError::new(format!(
                "theme \"{name}\": {} ({e}); built-in themes: {}",
                path.display(),
                builtin.join(", ")
            ))
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    pub fn parse(text: &str, name: &str) -> Result<Self, UserError> {
        let table: HashMap<String, String> =
            toml::from_str(text).map_err(|e| UserError::new(format!("{name}: {}", e.message())))?;
        let mut colors = HashMap::new();
        for (k, v) in &table {
            if !KEYS.contains(&k.as_str()) {
                return Err(UserError::new(format!("{name}: unknown theme key \"{k}\"")));
            }
            let c = Color::from_str(v)
                .map_err(|_| UserError::new(format!("{name}: \"{v}\" for {k} is not a colour")))?;
            colors.insert(k.clone(), c);
        }
        if let Some(missing) = KEYS.iter().find(|k| !colors.contains_key(**k)) {
            return Err(UserError::new(format!(
                "{name}: missing theme key \"{missing}\""
            )));
        }
        Ok(Self {
            colors,
            plain: false,
        })
    }

    /// For `--no-color` and `NO_COLOR`.
    pub fn plain() -> Self {
        Self {
            colors: HashMap::new(),
            plain: true,
        }
    }

    fn fg(&self, key: &str) -> Style {
        if self.plain {
            return Style::default();
        }
        Style::default().fg(self.colors.get(key).copied().unwrap_or(Color::Reset))
    }

    pub fn text(&self) -> Style {
        self.fg("text")
    }
    pub fn text_dim(&self) -> Style {
        if self.plain {
            return Style::default().add_modifier(Modifier::DIM);
        }
        self.fg("text-dim")
    }
    pub fn title(&self) -> Style {
        self.fg("title").add_modifier(Modifier::BOLD)
    }
    pub fn border(&self, focused: bool) -> Style {
        self.fg(if focused { "border-focus" } else { "border" })
    }
    pub fn header(&self) -> Style {
        self.fg("header").add_modifier(Modifier::BOLD)
    }
    pub fn key(&self) -> Style {
        self.fg("key").add_modifier(Modifier::BOLD)
    }
    pub fn danger(&self) -> Style {
        self.fg("danger").add_modifier(Modifier::BOLD)
    }
    pub fn warning(&self) -> Style {
        self.fg("warning")
    }
    pub fn selection(&self) -> Style {
        if self.plain {
            return Style::default().add_modifier(Modifier::REVERSED);
        }
        Style::default()
            .bg(self
                .colors
                .get("selection-bg")
                .copied()
                .unwrap_or(Color::Reset))
            .add_modifier(Modifier::BOLD)
    }
    /// Colour of a state id (`state-<id>`), e.g. `migrated`, `failed`.
    pub fn state(&self, state: impl super::views::Shown) -> Style {
        self.fg(&format!("state-{}", state.key().replace('_', "-")))
    }
    /// A failure class's colour (`failure-<class>`), danger for classes without their own.
    pub fn failure(&self, class: &str) -> Style {
        let key = format!("failure-{class}");
        if self.plain || !self.colors.contains_key(&key) {
            return self.danger();
        }
        self.fg(&key).add_modifier(Modifier::BOLD)
    }
    /// The exact span a diagnosis matched: reversed in plain mode, so it shows without colour.
    pub fn matched(&self) -> Style {
        if self.plain {
            return Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        self.fg("match-fg")
            .bg(self.colors.get("match-bg").copied().unwrap_or(Color::Reset))
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
    pub fn risk_libpq(&self) -> Style {
        self.fg("risk-libpq")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_defines_every_key() {
        for name in Theme::builtin_names() {
            Theme::load(name, Path::new("/nonexistent")).expect(name);
        }
    }

    #[test]
    fn theme_missing_a_key_is_rejected_with_its_name() {
        let err = Theme::parse("text = \"red\"", "mine.toml").unwrap_err();
        assert!(
            err.0.starts_with("mine.toml: missing theme key"),
            "{}",
            err.0
        );
    }

    #[test]
    fn unknown_theme_names_the_file_it_looked_for() {
        let err = Theme::load("neon", Path::new("/etc/pgshift-themes")).unwrap_err();
        assert!(err.0.contains("/etc/pgshift-themes/neon.toml"), "{}", err.0);
        assert!(
            err.0.contains("default, high-contrast, colorblind"),
            "{}",
            err.0
        );
    }
}
