//! Failure diagnosis: pure rules over step log lines → a class from FAILURES.md, the exact
//! matched line and byte span, an explanation and the remediations pgshift offers.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// A remediation the operator can pick; `id` is stable (used by `retry --remediation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remediation {
    pub id: &'static str,
    pub description: &'static str,
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
    pub class: &'static str,
    pub explanation: &'static str,
    /// The matching line first, then its DETAIL / HINT / `Command was:` context lines.
    pub matched: Vec<Matched>,
    pub remediations: Vec<Remediation>,
}

struct Rule {
    class: &'static str,
    patterns: Vec<Regex>,
    explanation: &'static str,
    remediations: Vec<Remediation>,
}

const fn r(id: &'static str, description: &'static str) -> Remediation {
    Remediation { id, description }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |class, pats: &[&str], explanation, remediations: &[Remediation]| Rule {
        class,
        patterns: pats
            .iter()
            .map(|p| Regex::new(&format!("(?i){p}")).expect("rule pattern compiles"))
            .collect(),
        explanation,
        remediations: remediations.to_vec(),
    };
    vec![
        rule(
            "libpq-scram",
            &[
                r"SCRAM authentication requires libpq version 10 or above",
                r"authentication method 10 not supported",
                r"received invalid response to SCRAM authentication",
            ],
            "NEW hashed the role's password with scram-sha-256 (PostgreSQL 14+ default); the app's image has libpq < 10, which cannot do SCRAM.",
            &[
                r(
                    "md5-password",
                    "re-set the NEW role's password hashed md5 (password_encryption = md5 for that session), redeploy; flag the app for an image rebuild",
                ),
                r(
                    "rollback",
                    "put the app back on OLD and rebuild its image first",
                ),
            ],
        ),
        rule(
            "btree-index-row-size",
            &[r#"index row size \d+ exceeds (?:btree version \d+ )?maximum \d+ for index "[^"]*""#],
            "A value that fit the btree limit compressed with pglz on OLD does not with NEW's compression (default_toast_compression = lz4).",
            &[
                r(
                    "pglz-restore",
                    "retry the restore with PGOPTIONS='-c default_toast_compression=pglz' (keeps the schema exactly)",
                ),
                r(
                    "md5-index",
                    "replace the index with the md5 expression index from the HINT (changes the schema)",
                ),
            ],
        ),
        rule(
            "extension-missing",
            &[
                r#"could not open extension control file "[^"]*": No such file or directory"#,
                r#"extension "[^"]+" is not available"#,
            ],
            "NEW lacks an extension OLD uses.",
            &[r(
                "stop",
                "stop before the window: install the extension on NEW (preflight lists them)",
            )],
        ),
        rule(
            "extension-version",
            &[r#"extension "[^"]+" has no update path from version "[^"]+" to version "[^"]+""#],
            "The extension versions pinned on OLD and NEW differ.",
            &[r(
                "update-extension",
                "ALTER EXTENSION … UPDATE on OLD first, then retry",
            )],
        ),
        rule(
            "role-missing",
            &[r#"role "[^"]+" does not exist"#],
            "An owner or grantee of OLD's objects is not provisioned on NEW.",
            &[r(
                "provision-roles",
                "provision the roles on NEW first, or restore with --no-owner --no-acl and explicit grants",
            )],
        ),
        rule(
            "public-schema-permission",
            &[r"permission denied for schema public"],
            "PostgreSQL 15 revoked CREATE on schema public from PUBLIC.",
            &[r(
                "own-schema",
                "make the app role own the database/schema, or GRANT CREATE ON SCHEMA public",
            )],
        ),
        rule(
            "aggregate-signature",
            &[
                r"function array_(?:append|prepend|cat)\(anyarray, anyelement\) does not exist",
                r"function array_\w+\(any\w+(?:, any\w+)?\) does not exist",
            ],
            "PostgreSQL 14 changed array function signatures used by custom aggregates.",
            &[r(
                "manual",
                "recreate the aggregate with anycompatible types by hand",
            )],
        ),
        rule(
            "collation",
            &[
                r#"collation "[^"]+" for encoding "[^"]+" does not exist"#,
                r"collation version mismatch",
            ],
            "OS or ICU collations differ between OLD and NEW.",
            &[r(
                "map-collation",
                "map the collation, or REINDEX and ALTER COLLATION … REFRESH VERSION",
            )],
        ),
        rule(
            "unknown-setting",
            &[r#"unrecognized configuration parameter "[^"]+""#],
            "A copied ALTER ROLE/DATABASE SET names a setting NEW does not have.",
            &[r(
                "filter-settings",
                "drop the setting from the copy (pgshift filters against NEW's pg_settings)",
            )],
        ),
        rule(
            "client-version",
            &[
                r"aborting because of server version mismatch",
                r"unsupported version \([^)]*\) in file header",
            ],
            "An old pg_dump/pg_restore was used.",
            &[r(
                "newest-client",
                "use the newest client binaries (PostgreSQL 15's)",
            )],
        ),
        rule(
            "disk-full",
            &[r"No space left on device", r"could not extend file"],
            "NEW's or the backup volume is full.",
            &[r("stop-region", "stop the region, free space, retry")],
        ),
        rule(
            "timeout",
            &[
                r"canceling statement due to statement timeout",
                r"terminating connection due to idle-in-transaction(?: session)? timeout",
                r"canceling statement due to lock timeout",
            ],
            "A role or database timeout setting hit a dump/restore session.",
            &[r(
                "retry",
                "retry with statement/lock/idle timeouts set to 0 for the session",
            )],
        ),
        rule(
            "connection",
            &[
                r"could not connect to (?:the )?server",
                r"Connection refused",
                r"server closed the connection unexpectedly",
                r"terminating connection due to administrator command",
                r"cannot connect to \S+",
            ],
            "A server is down or restarted.",
            &[r("retry", "roll back, retry with backoff")],
        ),
        rule(
            "verification-mismatch",
            &[r"verification failed: .*"],
            "NEW differs from OLD after the restore: a silent partial copy.",
            &[r(
                "rollback",
                "never enable NEW; roll back; keep both for inspection",
            )],
        ),
    ]
});

const UNKNOWN: &[Remediation] = &[
    r("retry", "retry the failed step"),
    r("rollback", "put the app back on OLD"),
    r("manual", "mark for manual handling"),
];

/// Classify a failed step's log. Known-harmless lines (`must be owner of extension …`) are
/// skipped; when nothing matches, the class is `unknown` with the last lines.
pub fn diagnose(lines: &[String]) -> Finding {
    for rule in RULES.iter() {
        for (i, line) in lines.iter().enumerate() {
            if let Some(m) = rule.patterns.iter().find_map(|p| p.find(line)) {
                let mut matched = vec![Matched {
                    index: i,
                    line: line.clone(),
                    start: m.start(),
                    end: m.end(),
                }];
                matched.extend(context(lines, i));
                return Finding {
                    class: rule.class,
                    explanation: rule.explanation,
                    matched,
                    remediations: rule.remediations.clone(),
                };
            }
        }
    }
    let tail = lines.len().saturating_sub(5);
    Finding {
        class: "unknown",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn btree_failure_from_the_real_pg_restore_output() {
        let log = lines(include_str!(
            "../fixtures/captured/pg_restore-btree-index-row-size.log"
        ));
        let f = diagnose(&log);
        assert_eq!(f.class, "btree-index-row-size");
        let m = &f.matched[0];
        assert_eq!(
            &m.line[m.start..m.end],
            "index row size 3696 exceeds btree version 4 maximum 2704 for index \"t_v_idx\""
        );
        let ctx: Vec<&str> = f.matched[1..].iter().map(|m| m.line.as_str()).collect();
        assert_eq!(ctx.len(), 4, "{ctx:?}");
        assert!(ctx[0].starts_with("DETAIL:"));
        assert!(ctx[1].starts_with("HINT:"));
        assert!(ctx[2].starts_with("Consider a function index"));
        assert!(ctx[3].starts_with("Command was: CREATE INDEX t_v_idx"));
        assert_eq!(f.remediations[0].id, "pglz-restore");
    }

    #[test]
    fn scram_failure_inside_a_django_traceback() {
        let log = lines(
            "Traceback (most recent call last):\n  File \"/app/manage.py\", line 22, in <module>\npsycopg2.OperationalError: SCRAM authentication requires libpq version 10 or above\n*** no app loaded. GAME OVER ***",
        );
        let f = diagnose(&log);
        assert_eq!(f.class, "libpq-scram");
        assert_eq!(f.matched[0].index, 2);
        assert_eq!(f.matched[0].start, "psycopg2.OperationalError: ".len());
    }

    #[test]
    fn nothing_known_is_unknown_with_the_last_lines() {
        let log: Vec<String> = (0..9).map(|i| format!("line {i}")).collect();
        let f = diagnose(&log);
        assert_eq!(f.class, "unknown");
        assert_eq!(f.matched.len(), 5);
        assert_eq!(f.matched[4].line, "line 8");
    }
}
