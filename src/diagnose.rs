//! Failure diagnosis: pure rules over step log lines → a class from docs/failures.md, the exact
//! matched line and byte span, an explanation and the remediations pgshift offers.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// Declares an enum of stable ids: each variant with its id (docs/failures.md), the only place
/// the id is spelled; the id is what the store, the JSON and the command line use.
macro_rules! stable_ids {
    ($(#[$doc:meta])* $name:ident ($kind:literal) {
        $($(#[$vdoc:meta])* $variant:ident = $id:literal,)+
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $id,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($id => Ok($name::$variant),)+
                    _ => Err(format!(concat!("unknown ", $kind, " \"{}\""), s)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // `pad`: a width (`{:<22}`) applies, as it did to the id string.
                f.pad(self.as_str())
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.as_str().to_string()
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

stable_ids! {
    /// A failure class. Its id is stable: the store, the JSON, themes (`failure-<id>`) and
    /// the sim's "simulated failure <id>" name it.
    FailureClass ("failure class") {
        LibpqScram = "libpq-scram",
        BtreeIndexRowSize = "btree-index-row-size",
        ExtensionMissing = "extension-missing",
        ExtensionVersion = "extension-version",
        RoleMissing = "role-missing",
        Ownership = "ownership",
        PublicSchemaPermission = "public-schema-permission",
        AggregateSignature = "aggregate-signature",
        Collation = "collation",
        UnknownSetting = "unknown-setting",
        ClientVersion = "client-version",
        DiskFull = "disk-full",
        Timeout = "timeout",
        Connection = "connection",
        VerificationMismatch = "verification-mismatch",
        Platform = "platform",
        Verification = "verification",
        Pg14Incompatible = "pg14-incompatible",
        Privilege = "privilege",
        /// No rule matched.
        Unknown = "unknown",
    }
}

stable_ids! {
    /// A remediation's id (what `retry --remediation` takes).
    RemediationId ("remediation") {
        Rollback = "rollback",
        Md5Password = "md5-password",
        PglzRestore = "pglz-restore",
        Md5Index = "md5-index",
        Stop = "stop",
        UpdateExtension = "update-extension",
        ProvisionRoles = "provision-roles",
        Ignore = "ignore",
        OwnSchema = "own-schema",
        Manual = "manual",
        MapCollation = "map-collation",
        FilterSettings = "filter-settings",
        NewestClient = "newest-client",
        StopRegion = "stop-region",
        Retry = "retry",
    }
}

impl RemediationId {
    /// Whether `retry` applies it by itself (the others need a human first, or are not a
    /// retry at all: rolling back, marking manual).
    pub fn automatic(self) -> bool {
        matches!(
            self,
            RemediationId::Md5Password
                | RemediationId::PglzRestore
                | RemediationId::Retry
                | RemediationId::FilterSettings
                | RemediationId::NewestClient
        )
    }

    /// A list as a run's parameters keep it: comma-joined; `None` when empty.
    pub fn join_list(ids: &[RemediationId]) -> Option<String> {
        let ids: Vec<&str> = ids.iter().map(|r| r.as_str()).collect();
        (!ids.is_empty()).then(|| ids.join(","))
    }

    /// The ids of a comma-joined list (a run's parameters), unknown ones left out.
    pub fn parse_list(list: &str) -> Vec<RemediationId> {
        list.split(',')
            .filter_map(|r| r.trim().parse().ok())
            .collect()
    }
}

/// A remediation the operator can pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remediation {
    pub id: RemediationId,
    pub description: &'static str,
}

/// A remediation as the store keeps it with a failure (its description as it was offered).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredRemediation {
    pub id: RemediationId,
    #[serde(default)]
    pub description: String,
}

/// The remediations stored with a failure (JSON), the ones pgshift knows.
pub fn stored_remediations(json: &str) -> Vec<StoredRemediation> {
    serde_json::from_str::<Vec<serde_json::Value>>(json)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| serde_json::from_value(r).ok())
        .collect()
}

/// One matched line: its index in the log, its text and the byte span that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Matched {
    pub index: usize,
    pub line: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub class: FailureClass,
    /// Known-harmless (e.g. `ownership`): recorded as a warning, never a failure.
    pub harmless: bool,
    pub explanation: &'static str,
    /// The matching line first, then its DETAIL / HINT / `Command was:` context lines.
    pub matched: Vec<Matched>,
    pub remediations: Vec<Remediation>,
}

struct Rule {
    class: FailureClass,
    harmless: bool,
    patterns: Vec<Regex>,
    explanation: &'static str,
    remediations: Vec<Remediation>,
}

const fn r(id: RemediationId, description: &'static str) -> Remediation {
    Remediation { id, description }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule =
        |class: FailureClass, pats: &[&str], explanation, remediations: &[Remediation]| Rule {
            class,
            harmless: class == FailureClass::Ownership,
            // The sim world names the failure it simulates ("simulated failure CLASS: …").
            patterns: std::iter::once(format!(r"simulated failure {class}\b"))
                .chain(pats.iter().map(|p| p.to_string()))
                .map(|p| {
                    // Quotes as any tool or locale prints them.
                    let p = p
                        .replace('"', r#"["'“”«»]"#)
                        .replace(r#"[^["'“”«»]]"#, r#"[^"'“”«»]"#);
                    Regex::new(&format!("(?i){p}")).expect("rule pattern compiles")
                })
                .collect(),
            explanation,
            remediations: remediations.to_vec(),
        };
    vec![
        // First: it matches only pgshift's own `error: verification: …` line, which names
        // the cause, whatever a tool printed above it.
        rule(
            FailureClass::Verification,
            &[r"error: verification: .*"],
            "pgshift's verifier could not read or compare an object (a verifier gap, not a data difference).",
            &[r(
                RemediationId::Rollback,
                "never enable NEW; roll back; the object is named in the matched line",
            )],
        ),
        rule(
            FailureClass::LibpqScram,
            &[
                r"SCRAM authentication requires libpq version 10 or above",
                r"authentication method 10 not supported",
                r"received invalid response to SCRAM authentication",
                // Drivers that speak the protocol themselves, before their first SCRAM release
                // (texts and sources: fixtures/captured/README.md, versions: docs/clients.md).
                r"The authentication type 10 is not supported",
                r"pq: unknown authentication response: 10\b",
                r"Received unknown authentication message",
                r"Authentication method not supported \(Received: (?:10|AuthenticationSASL)\)",
                r"unsupported authentication method requested by the server: (?:10\b|'sasl')",
                // node-postgres < 7.9 on an AuthenticationSASL request.
                r"Unknown authenticationOk message type",
            ],
            "NEW hashed the role's password with scram-sha-256 (PostgreSQL 14+ default); the app's client cannot do SCRAM (libpq < 10, or a driver before its first SCRAM release: docs/clients.md).",
            &[
                r(
                    RemediationId::Md5Password,
                    "re-set the NEW role's password hashed md5 (password_encryption = md5 for that session), redeploy; flag the app for an image rebuild",
                ),
                r(
                    RemediationId::Rollback,
                    "put the app back on OLD and rebuild its image first",
                ),
            ],
        ),
        rule(
            FailureClass::BtreeIndexRowSize,
            &[r#"index row size \d+ exceeds (?:btree version \d+ )?maximum \d+ for index "[^"]*""#],
            "A value that fit the btree limit compressed with pglz on OLD does not with NEW's compression (default_toast_compression = lz4).",
            &[
                r(
                    RemediationId::PglzRestore,
                    "retry the restore with PGOPTIONS='-c default_toast_compression=pglz' (keeps the schema exactly)",
                ),
                r(
                    RemediationId::Md5Index,
                    "replace the index with the md5 expression index from the HINT (changes the schema)",
                ),
            ],
        ),
        rule(
            FailureClass::ExtensionMissing,
            &[
                r#"could not open extension control file "[^"]*": No such file or directory"#,
                r#"extension "[^"]+" is not available"#,
            ],
            "NEW lacks an extension OLD uses.",
            &[r(
                RemediationId::Stop,
                "stop before the window: install the extension on NEW (preflight lists them)",
            )],
        ),
        rule(
            FailureClass::ExtensionVersion,
            &[r#"extension "[^"]+" has no update path from version "[^"]+" to version "[^"]+""#],
            "The extension versions pinned on OLD and NEW differ.",
            &[r(
                RemediationId::UpdateExtension,
                "ALTER EXTENSION … UPDATE on OLD first, then retry",
            )],
        ),
        rule(
            FailureClass::RoleMissing,
            &[r#"role "[^"]+" does not exist"#],
            "An owner or grantee of OLD's objects is not provisioned on NEW.",
            &[r(
                RemediationId::ProvisionRoles,
                "provision the roles on NEW first, or restore with --no-owner --no-acl and explicit grants",
            )],
        ),
        rule(
            FailureClass::Ownership,
            &[
                r#"must be owner of (?:extension|schema|database|table|function|type|language) "?[\w.]+"?"#,
            ],
            "A restore as a non-owner could not change ownership or comments of an object it does not own; known harmless.",
            &[r(
                RemediationId::Ignore,
                "nothing to do: recorded as a warning; verification decides",
            )],
        ),
        rule(
            FailureClass::PublicSchemaPermission,
            &[r"permission denied for schema public"],
            "PostgreSQL 15 revoked CREATE on schema public from PUBLIC.",
            &[r(
                RemediationId::OwnSchema,
                "make the app role own the database/schema, or GRANT CREATE ON SCHEMA public",
            )],
        ),
        rule(
            FailureClass::AggregateSignature,
            &[
                r"function array_(?:append|prepend|cat)\(anyarray, anyelement\) does not exist",
                r"function array_\w+\(any\w+(?:, any\w+)?\) does not exist",
            ],
            "PostgreSQL 14 changed array function signatures used by custom aggregates.",
            &[r(
                RemediationId::Manual,
                "recreate the aggregate with anycompatible types by hand",
            )],
        ),
        rule(
            FailureClass::Collation,
            &[
                r#"collation "[^"]+" for encoding "[^"]+" does not exist"#,
                r"collation version mismatch",
            ],
            "OS or ICU collations differ between OLD and NEW.",
            &[r(
                RemediationId::MapCollation,
                "map the collation, or REINDEX and ALTER COLLATION … REFRESH VERSION",
            )],
        ),
        rule(
            FailureClass::UnknownSetting,
            &[r#"unrecognized configuration parameter "[^"]+""#],
            "A copied ALTER ROLE/DATABASE SET names a setting NEW does not have.",
            &[r(
                RemediationId::FilterSettings,
                "drop the setting from the copy (pgshift filters against NEW's pg_settings)",
            )],
        ),
        rule(
            FailureClass::ClientVersion,
            &[
                r"aborting because of server version mismatch",
                r"unsupported version \([^)]*\) in file header",
            ],
            "An old pg_dump/pg_restore was used.",
            &[r(
                RemediationId::NewestClient,
                "use the newest client binaries (PostgreSQL 15's)",
            )],
        ),
        rule(
            FailureClass::DiskFull,
            &[r"No space left on device", r"could not extend file"],
            "NEW's or the backup volume is full.",
            &[r(
                RemediationId::StopRegion,
                "stop the region, free space, retry",
            )],
        ),
        rule(
            FailureClass::Timeout,
            &[
                r"canceling statement due to statement timeout",
                r"terminating connection due to idle-in-transaction(?: session)? timeout",
                r"canceling statement due to lock timeout",
            ],
            "A role or database timeout setting hit a dump/restore session.",
            &[r(
                RemediationId::Retry,
                "retry with statement/lock/idle timeouts set to 0 for the session",
            )],
        ),
        rule(
            FailureClass::Connection,
            &[
                r"could not connect to (?:the )?server",
                r"Connection refused",
                r"server closed the connection unexpectedly",
                r"terminating connection due to administrator command",
                r"cannot connect to \S+",
            ],
            "A server is down or restarted.",
            &[r(RemediationId::Retry, "roll back, retry with backoff")],
        ),
        rule(
            FailureClass::Pg14Incompatible,
            &[
                r"preflight: pg14-incompatible: .*",
                r"Postfix operators are not supported",
                r"operator right argument type must be specified",
            ],
            "OLD holds an object PostgreSQL 14 removed or changed (a user-defined postfix operator, a polymorphic routine over anyarray, a user-defined encoding conversion, a reg* column): it cannot be restored on NEW.",
            &[r(
                RemediationId::Manual,
                "stop before the window: drop or rewrite the named object on OLD (preflight names each one), then migrate",
            )],
        ),
        rule(
            FailureClass::Privilege,
            &[
                r"preflight: privilege: .*",
                r"must be superuser to create a base type",
                r"permission denied for language \w+",
                r"must be superuser to create an operator (?:class|family)",
                r"permission denied to create extension \S+",
            ],
            "OLD holds an object only a superuser can create (base type, function in an untrusted language, operator class, untrusted extension); NEW is restored as the app's role.",
            &[r(
                RemediationId::Manual,
                "stop before the window: drop the object on OLD, or have an admin create it on NEW first when the operator says so",
            )],
        ),
        rule(
            FailureClass::VerificationMismatch,
            &[
                r"verification failed: .*",
                r"OLD \S+ took \d+ writes? after (the backup's snapshot|NEW caught up behind the page)",
            ],
            "NEW differs from OLD: a silent partial copy, or OLD took writes after the backup that NEW would miss.",
            &[r(
                RemediationId::Rollback,
                "never enable NEW; roll back; keep both for inspection",
            )],
        ),
        rule(
            FailureClass::Platform,
            &[
                r"the platform's \w+ command for \S+ (?:exited with code -?\d+|timed out after \d+ s|was ended by signal \d+|could not start|printed what the contract does not allow)",
                r"the inventory has servers that are not the lab's but no \[platform\] table",
            ],
            "A platform command (the operator's PaaS, or the lab's hooks) failed, hung or answered outside the contract of docs/platform.md.",
            &[
                r(
                    RemediationId::Retry,
                    "retry once the platform answers again (the app was rolled back and unpaused)",
                ),
                r(RemediationId::Rollback, "put the app back on OLD"),
            ],
        ),
    ]
});

const UNKNOWN: &[Remediation] = &[
    r(RemediationId::Retry, "retry the failed step"),
    r(RemediationId::Rollback, "put the app back on OLD"),
    r(RemediationId::Manual, "mark for manual handling"),
];

/// Classify a failed step's log: the first non-harmless finding in rule priority order, or
/// `unknown` with the last lines.
pub fn diagnose(lines: &[String]) -> Finding {
    for rule in RULES.iter().filter(|r| !r.harmless) {
        if let Some(f) = find(rule, lines) {
            return f;
        }
    }
    unknown(lines)
}

/// A line pgshift's own step wrote to say why it failed (`error: …`).
fn is_own_error(line: &str) -> bool {
    line.starts_with("error: ")
}

/// Every finding in a log (one per matching line), in log order; harmless ones included.
pub fn diagnose_all(lines: &[String]) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if out.iter().any(|f| f.matched.iter().any(|m| m.index == i)) {
            continue;
        }
        for rule in RULES.iter() {
            if let Some(m) = rule.patterns.iter().find_map(|p| p.find(line)) {
                out.push(finding(rule, lines, i, m.start(), m.end()));
                break;
            }
        }
    }
    if out.is_empty() && !lines.is_empty() {
        out.push(unknown(lines));
    }
    out
}

fn find(rule: &Rule, lines: &[String]) -> Option<Finding> {
    for (i, line) in lines.iter().enumerate() {
        if let Some(m) = rule.patterns.iter().find_map(|p| p.find(line)) {
            return Some(finding(rule, lines, i, m.start(), m.end()));
        }
    }
    // A message wrapped over two lines (terminals, log shippers): match the pair, point at
    // the first line from where the match starts.
    for i in 0..lines.len().saturating_sub(1) {
        let joined = format!("{} {}", lines[i].trim_end(), lines[i + 1].trim_start());
        if let Some(m) = rule.patterns.iter().find_map(|p| p.find(&joined))
            && m.start() < lines[i].trim_end().len()
        {
            let mut f = finding(rule, lines, i, m.start(), lines[i].trim_end().len());
            f.matched.insert(
                1,
                Matched {
                    index: i + 1,
                    line: lines[i + 1].clone(),
                    start: 0,
                    end: lines[i + 1].len(),
                },
            );
            return Some(f);
        }
    }
    None
}

fn finding(rule: &Rule, lines: &[String], i: usize, start: usize, end: usize) -> Finding {
    let mut matched = vec![Matched {
        index: i,
        line: lines[i].clone(),
        start,
        end,
    }];
    matched.extend(context(lines, i));
    Finding {
        class: rule.class,
        harmless: rule.harmless,
        explanation: rule.explanation,
        matched,
        remediations: rule.remediations.clone(),
    }
}

fn unknown(lines: &[String]) -> Finding {
    // pgshift's own error line, when the step wrote one, is what the operator must read.
    if let Some(i) = lines.iter().rposition(|l| is_own_error(l)) {
        return Finding {
            class: FailureClass::Unknown,
            harmless: false,
            explanation: "No known failure matched; this is the step's own error line.",
            matched: vec![Matched {
                index: i,
                line: lines[i].clone(),
                start: 0,
                end: lines[i].len(),
            }],
            remediations: UNKNOWN.to_vec(),
        };
    }
    let tail = lines.len().saturating_sub(5);
    Finding {
        class: FailureClass::Unknown,
        harmless: false,
        explanation: "No known failure matched; these are the step's last lines.",
        matched: lines[tail..]
            .iter()
            .enumerate()
            .map(|(k, l)| Matched {
                index: tail + k,
                line: l.clone(),
                start: 0,
                end: l.len(),
            })
            .collect(),
        remediations: UNKNOWN.to_vec(),
    }
}

/// A remediation by id, from any rule.
pub fn remediation(id: RemediationId) -> Option<Remediation> {
    RULES
        .iter()
        .flat_map(|r| r.remediations.iter())
        .chain(UNKNOWN.iter())
        .find(|r| r.id == id)
        .cloned()
}

/// Every class id pgshift knows, in priority order (`unknown` last).
pub fn classes() -> Vec<&'static str> {
    let mut v: Vec<&str> = RULES.iter().map(|r| r.class.as_str()).collect();
    v.push(FailureClass::Unknown.as_str());
    v
}

/// The DETAIL / HINT / `Command was:` lines (and HINT continuations) after an error line.
fn context(lines: &[String], i: usize) -> Vec<Matched> {
    let mut out = Vec::new();
    let mut in_hint = false;
    for (k, l) in lines.iter().enumerate().skip(i + 1).take(6) {
        let t = l.trim_start();
        let is_ctx =
            t.starts_with("DETAIL:") || t.starts_with("HINT:") || t.starts_with("Command was:");
        let continuation =
            in_hint && !t.is_empty() && !t.starts_with("pg_restore:") && !t.contains("ERROR:");
        if !(is_ctx || continuation) {
            break;
        }
        in_hint = t.starts_with("HINT:") || (in_hint && !t.starts_with("Command was:"));
        out.push(Matched {
            index: k,
            line: l.clone(),
            start: 0,
            end: l.len(),
        });
    }
    out
}

/// A failure predicted before the window (preflight): its class, the object or reason, and
/// the remedy `--apply-preflight` can apply.
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// A failure class id from docs/failures.md.
    pub class: crate::diagnose::FailureClass,
    pub detail: String,
    /// What `--apply-preflight` applies up front; `None` when a human must act first.
    pub remediation: Option<RemediationId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    /// Each class, from output captured from the lab's real servers and tools (tests/
    /// failures_real.rs re-captures them), or faithfully transcribed where the lab cannot
    /// produce it (an old libpq or pg_restore, a full disk).
    const CAPTURED: &[(&str, &str, &str)] = &[
        (
            "libpq-scram",
            include_str!("../fixtures/captured/libpq-scram-django-uwsgi.log"),
            "SCRAM authentication requires libpq version 10 or above",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/captured/libpq-scram-rails-old-libpq.log"),
            "authentication method 10 not supported",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/from-source/libpq-scram-pgjdbc.log"),
            "The authentication type 10 is not supported",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/from-source/libpq-scram-go-pq.log"),
            "pq: unknown authentication response: 10",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/from-source/libpq-scram-pgx.log"),
            "Received unknown authentication message",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/from-source/libpq-scram-npgsql.log"),
            "Authentication method not supported (Received: 10)",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/captured/libpq-scram-asyncpg.log"),
            "unsupported authentication method requested by the server: 10",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/captured/libpq-scram-libpq96-lab-app.log"),
            "authentication method 10 not supported",
        ),
        (
            "libpq-scram",
            include_str!("../fixtures/captured/libpq-scram-node-postgres-7.8.2.log"),
            "Unknown authenticationOk message type",
        ),
        (
            "btree-index-row-size",
            include_str!("../fixtures/captured/pg_restore-btree-index-row-size.log"),
            "index row size 3696 exceeds btree version 4 maximum 2704 for index \"t_v_idx\"",
        ),
        (
            "extension-missing",
            include_str!("../fixtures/captured/extension-missing.log"),
            "extension \"pgshift_no_such_extension\" is not available",
        ),
        (
            "extension-version",
            include_str!("../fixtures/captured/extension-version.log"),
            "extension \"hstore\" has no update path from version \"1.8\" to version \"9.9\"",
        ),
        (
            "role-missing",
            include_str!("../fixtures/captured/pg_restore-aggregate-and-role.log"),
            "role \"diag_owner\" does not exist",
        ),
        (
            "ownership",
            include_str!("../fixtures/captured/ownership.log"),
            "must be owner of extension plpgsql",
        ),
        (
            "public-schema-permission",
            include_str!("../fixtures/captured/public-schema-permission.log"),
            "permission denied for schema public",
        ),
        (
            "aggregate-signature",
            include_str!("../fixtures/captured/pg_restore-aggregate-and-role.log"),
            "function array_append(anyarray, anyelement) does not exist",
        ),
        (
            "collation",
            include_str!("../fixtures/captured/collation.log"),
            "collation \"de_CH_pgshift\" for encoding \"UTF8\" does not exist",
        ),
        (
            "unknown-setting",
            include_str!("../fixtures/captured/unknown-setting.log"),
            "unrecognized configuration parameter \"no_such_setting\"",
        ),
        (
            "client-version",
            include_str!("../fixtures/captured/client-version.log"),
            "aborting because of server version mismatch",
        ),
        (
            "disk-full",
            include_str!("../fixtures/captured/disk-full.log"),
            "No space left on device",
        ),
        (
            "timeout",
            include_str!("../fixtures/captured/timeout.log"),
            "canceling statement due to statement timeout",
        ),
        (
            "connection",
            include_str!("../fixtures/captured/connection.log"),
            "Connection refused",
        ),
        (
            "pg14-incompatible",
            include_str!("../fixtures/captured/pg_restore-pg14-and-privilege.log"),
            "operator right argument type must be specified",
        ),
        (
            "privilege",
            include_str!("../fixtures/captured/pg_restore-pg14-and-privilege.log"),
            "must be superuser to create a base type",
        ),
        (
            "verification",
            include_str!("../fixtures/captured/verification.log"),
            "error: verification: could not fingerprint club_live on server pg13 in the dump's snapshot: verification: reading the catalog's constraints: error returned from database: null values cannot be formatted as an SQL identifier at line 5898: null values cannot be formatted as an SQL identifier at line 5898",
        ),
        (
            "verification-mismatch",
            include_str!("../fixtures/captured/verification-mismatch.log"),
            "verification failed: table public.comments: 9000 rows on OLD, 8999 on NEW",
        ),
        (
            "platform",
            include_str!("../fixtures/captured/platform.log"),
            "the platform's redeploy command for atelier-stage exited with code 4",
        ),
    ];

    #[test]
    fn every_class_is_recognised_from_captured_output_with_its_exact_span() {
        for (class, log, span) in CAPTURED {
            let all = diagnose_all(&lines(log));
            let f = all.iter().find(|f| f.class == *class).unwrap_or_else(|| {
                panic!(
                    "{class}: {:?}",
                    all.iter().map(|f| f.class).collect::<Vec<_>>()
                )
            });
            let m = &f.matched[0];
            assert_eq!(&m.line[m.start..m.end], *span, "{class}");
            assert!(!f.remediations.is_empty(), "{class}");
        }
        let covered: Vec<&str> = CAPTURED.iter().map(|c| c.0).collect();
        for class in classes() {
            assert!(
                class == "unknown" || covered.contains(&class),
                "no captured output for {class}"
            );
        }
    }

    #[test]
    fn pgshifts_own_error_line_is_what_is_classified_and_highlighted() {
        // A backup whose verifier failed: pg_dump's progress lines come first, the step's
        // own `error:` line last (captured from a real run).
        let log = lines(include_str!("../fixtures/captured/verification.log"));
        let f = diagnose(&log);
        assert_eq!(f.class, "verification");
        assert!(log[f.matched[0].index].starts_with("error: verification: "));
        // Unmatched: the step's own error line is shown, not the tool's last progress line.
        let log = lines(
            "pg_dump: dumping contents of table \"public.t\"\nerror: something pgshift has no rule for\npg_dump: finished item 1 TABLE DATA t",
        );
        let f = diagnose(&log);
        assert_eq!(f.class, "unknown");
        assert_eq!(f.matched.len(), 1);
        assert_eq!(f.matched[0].index, 1);
    }

    #[test]
    fn every_client_family_refusing_scram_is_libpq_scram_with_the_md5_remedy() {
        let families = [
            include_str!("../fixtures/captured/libpq-scram-django-uwsgi.log"),
            include_str!("../fixtures/captured/libpq-scram-rails-old-libpq.log"),
            include_str!("../fixtures/from-source/libpq-scram-pgjdbc.log"),
            include_str!("../fixtures/from-source/libpq-scram-go-pq.log"),
            include_str!("../fixtures/from-source/libpq-scram-pgx.log"),
            include_str!("../fixtures/from-source/libpq-scram-npgsql.log"),
            include_str!("../fixtures/captured/libpq-scram-asyncpg.log"),
            include_str!("../fixtures/captured/libpq-scram-node-postgres-7.8.2.log"),
        ];
        for log in families {
            let f = diagnose(&lines(log));
            assert_eq!(f.class, "libpq-scram", "{log}");
            assert_eq!(f.remediations[0].id, RemediationId::Md5Password, "{log}");
        }
        // A driver refusing another method than SASL (code 7, GSS) is not a SCRAM failure.
        assert_ne!(
            diagnose(&lines("pq: unknown authentication response: 7")).class,
            "libpq-scram"
        );
    }

    #[test]
    fn btree_failure_keeps_detail_hint_and_command() {
        let f = diagnose(&lines(include_str!(
            "../fixtures/captured/pg_restore-btree-index-row-size.log"
        )));
        assert_eq!(f.class, "btree-index-row-size");
        let ctx: Vec<&str> = f.matched[1..].iter().map(|m| m.line.as_str()).collect();
        assert_eq!(ctx.len(), 4, "{ctx:?}");
        assert!(ctx[0].starts_with("DETAIL:"));
        assert!(ctx[1].starts_with("HINT:"));
        assert!(ctx[2].starts_with("Consider a function index"));
        assert!(ctx[3].starts_with("Command was: CREATE INDEX t_v_idx"));
        assert_eq!(f.remediations[0].id, RemediationId::PglzRestore);
    }

    #[test]
    fn ownership_alone_is_harmless_and_never_the_failure() {
        let log = lines(include_str!("../fixtures/captured/ownership.log"));
        assert!(diagnose_all(&log)[0].harmless);
        assert_eq!(diagnose(&log).class, "unknown");
    }

    #[test]
    fn a_message_wrapped_over_two_lines_still_matches() {
        let log = lines(
            "psycopg2.OperationalError: SCRAM authentication requires libpq version 10 or\n  above\n",
        );
        let f = diagnose(&log);
        assert_eq!(f.class, "libpq-scram");
        assert_eq!(f.matched[0].index, 0);
        assert_eq!(f.matched[1].index, 1);
    }

    #[test]
    fn other_quotes_and_prefixes_are_tolerated() {
        let f = diagnose(&lines("FATAL:  role «app_user» does not exist"));
        assert_eq!(f.class, "role-missing");
    }

    #[test]
    fn nothing_known_is_unknown_with_the_last_lines() {
        let log: Vec<String> = (0..9).map(|i| format!("line {i}")).collect();
        let f = diagnose(&log);
        assert_eq!(f.class, "unknown");
        assert_eq!(f.matched.len(), 5);
        assert_eq!(f.matched[4].line, "line 8");
    }

    proptest::proptest! {
        #[test]
        fn diagnosis_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let text = String::from_utf8_lossy(&bytes);
            let log: Vec<String> = text.lines().map(str::to_string).collect();
            let f = diagnose(&log);
            for m in &f.matched {
                proptest::prop_assert!(m.start <= m.end && m.end <= m.line.len());
                proptest::prop_assert!(m.line.is_char_boundary(m.start) && m.line.is_char_boundary(m.end));
            }
            let _ = diagnose_all(&log);
        }

        #[test]
        fn known_messages_are_found_inside_arbitrary_noise(prefix in "[ -~]{0,80}", suffix in "[ -~]{0,80}", noise in proptest::collection::vec("[ -~]{0,60}", 0..20)) {
            let mut log: Vec<String> = noise;
            log.push(format!("{prefix}index row size 3048 exceeds btree version 4 maximum 2704 for index \"i\"{suffix}"));
            let f = diagnose(&log);
            // Noise could itself hold a higher-priority message only by chance; it is ASCII
            // without the rule's words, so btree must win.
            proptest::prop_assert_eq!(f.class, "btree-index-row-size");
        }
    }
}
