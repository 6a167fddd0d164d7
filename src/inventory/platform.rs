//! The `[platform]` table: the operator's PaaS, driven through commands (docs/platform.md).
//! Templates are split into words here, once, and their placeholders checked, so a typo is a
//! `file:line` error at load and never a surprise at 01:00.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// One platform operation the runbook needs (and the lab's `lab hook OP` serves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum PlatformOp {
    Status,
    Pause,
    Unpause,
    SetDatabaseUrl,
    Redeploy,
    Health,
}

impl PlatformOp {
    pub const ALL: [PlatformOp; 6] = [
        PlatformOp::Status,
        PlatformOp::Pause,
        PlatformOp::Unpause,
        PlatformOp::SetDatabaseUrl,
        PlatformOp::Redeploy,
        PlatformOp::Health,
    ];

    /// The key in `[platform.commands]` and the value of `PGSHIFT_OP`.
    pub fn id(self) -> &'static str {
        match self {
            PlatformOp::Status => "status",
            PlatformOp::Pause => "pause",
            PlatformOp::Unpause => "unpause",
            PlatformOp::SetDatabaseUrl => "set_database_url",
            PlatformOp::Redeploy => "redeploy",
            PlatformOp::Health => "health",
        }
    }
}

/// Placeholders a template may use, substituted inside words.
pub const PLACEHOLDERS: [&str; 6] = [
    "app",
    "region",
    "environment",
    "customer",
    "service_id",
    "service",
];

/// A command: its words (placeholders still in them) and its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub words: Vec<String>,
    pub timeout: Duration,
}

/// The exec platform: one command per operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub commands: BTreeMap<PlatformOp, CommandSpec>,
    /// Extra environment for every command (never secrets: they would sit in a file).
    pub env: BTreeMap<String, String>,
}

impl ExecSpec {
    pub fn command(&self, op: PlatformOp) -> &CommandSpec {
        // Validation requires every operation.
        &self.commands[&op]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    pub kind: Spanned<String>,
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub commands: Spanned<BTreeMap<Spanned<String>, Spanned<RawCommand>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawCommand {
    Line(String),
    Full {
        run: String,
        timeout: Option<String>,
    },
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Validate a `[platform]` table; errors carry the byte offset of what is wrong.
pub(super) fn validate(raw: RawPlatform) -> Result<ExecSpec, (usize, String)> {
    if raw.kind.get_ref() != "exec" {
        return Err((
            raw.kind.span().start,
            format!(
                "platform kind \"{}\" is not known (kinds: exec)",
                raw.kind.get_ref()
            ),
        ));
    }
    let duration = |s: &str, offset: usize| {
        super::parse_duration(s)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                (
                    offset,
                    format!("timeout \"{s}\" is not a duration like \"30s\", \"10m\" or \"1h\""),
                )
            })
    };
    let default_timeout = match &raw.timeout {
        Some(t) => duration(t.get_ref(), t.span().start)?,
        None => DEFAULT_TIMEOUT,
    };
    for key in raw.env.keys() {
        if key.is_empty() || key.contains('=') || key.starts_with("PGSHIFT_") {
            return Err((
                raw.commands.span().start,
                format!("platform env key \"{key}\" is not allowed (PGSHIFT_* is pgshift's own)"),
            ));
        }
    }
    let mut commands = BTreeMap::new();
    for (key, cmd) in raw.commands.get_ref() {
        let at = key.span().start;
        if key.get_ref() == "provision" {
            return Err((
                at,
                "platform command provision is not supported yet: pgshift creates NEW's role and database itself, on the region's target server, through its admin URL (docs/platform.md)".into(),
            ));
        }
        let Some(op) = PlatformOp::ALL
            .into_iter()
            .find(|op| op.id() == key.get_ref())
        else {
            let known: Vec<&str> = PlatformOp::ALL.iter().map(|o| o.id()).collect();
            return Err((
                at,
                format!(
                    "unknown platform command \"{}\" (commands: {})",
                    key.get_ref(),
                    known.join(", ")
                ),
            ));
        };
        let (line, timeout) = match cmd.get_ref() {
            RawCommand::Line(l) => (l.as_str(), default_timeout),
            RawCommand::Full { run, timeout } => (
                run.as_str(),
                match timeout {
                    Some(t) => duration(t, cmd.span().start)?,
                    None => default_timeout,
                },
            ),
        };
        let words = shell_words::split(line).map_err(|e| {
            (
                cmd.span().start,
                format!("platform command {}: {e}", op.id()),
            )
        })?;
        if words.is_empty() {
            return Err((
                cmd.span().start,
                format!("platform command {} is empty", op.id()),
            ));
        }
        for w in &words {
            if let Some(bad) = unknown_placeholder(w) {
                return Err((
                    cmd.span().start,
                    format!(
                        "platform command {} uses an unknown placeholder {{{bad}}} (placeholders: {})",
                        op.id(),
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
                    ),
                ));
            }
        }
        commands.insert(op, CommandSpec { words, timeout });
    }
    if let Some(missing) = PlatformOp::ALL
        .into_iter()
        .find(|op| !commands.contains_key(op))
    {
        return Err((
            raw.commands.span().start,
            format!("[platform.commands] needs a command for {}", missing.id()),
        ));
    }
    Ok(ExecSpec {
        commands,
        env: raw.env,
    })
}

/// The first `{name}` in a word that is not a placeholder.
fn unknown_placeholder(word: &str) -> Option<String> {
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        let looks_like_one =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if looks_like_one && !PLACEHOLDERS.contains(&name) {
            return Some(name.to_string());
        }
        rest = &after[close + 1..];
    }
    None
}

/// Substitute placeholders in a word.
pub fn substitute(word: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if PLACEHOLDERS.contains(&&after[..close]) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_inside_words_and_others_left_alone() {
        let v = |k: &str| format!("<{k}>");
        assert_eq!(substitute("apps/{app}/x", v), "apps/<app>/x");
        assert_eq!(substitute("{app}-{region}", v), "<app>-<region>");
        assert_eq!(substitute("{\"json\":1}", v), "{\"json\":1}");
        assert_eq!(unknown_placeholder("{app}{nope}"), Some("nope".into()));
        assert_eq!(unknown_placeholder("a{b"), None);
        assert_eq!(unknown_placeholder("{\"spec\":{\"replicas\":0}}"), None);
    }
}
