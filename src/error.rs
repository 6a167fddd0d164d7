//! Errors an operator caused and can fix (exit 2), told apart from pgshift's own (exit 1).

/// Bad input: a file, flag, app name, server or binary that is wrong or missing. The message
/// names what and where, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

impl UserError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A migration refused before the window: preflight found objects the restore cannot carry.
/// Each line names one object, its failure class and the remedy. Exit 3, as a classified
/// migration failure: nothing was changed, and nothing will until the operator acts.
#[derive(Debug, thiserror::Error)]
#[error("{app}: preflight refuses the migration before the window: {}", findings.join("; "))]
pub struct PreflightRefusal {
    pub app: String,
    /// `class: object …; remedy: …`
    pub findings: Vec<String>,
}

/// Exit codes of the CLI contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const INTERNAL: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const MIGRATION_FAILED: i32 = 3;
}
