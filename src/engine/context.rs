//! What an app's migration knows so far. Every finished step stores a snapshot, so a resumed
//! run rebuilds it from the last finished step.

use serde::{Deserialize, Serialize};

use crate::diagnose::RemediationId;
use crate::platform::ServiceRef;
use crate::postgres::provision::RuntimeOptions;
use crate::postgres::verify::Fingerprint;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ctx {
    pub old: Option<ServiceRef>,
    /// OLD's size when collected: what the estimates scale with.
    #[serde(default)]
    pub old_bytes: u64,
    pub new: Option<ServiceRef>,
    pub options: Option<RuntimeOptions>,
    pub backup_path: Option<String>,
    pub backup_bytes: Option<u64>,
    /// NEW's fingerprint when verified: a rollback after enable compares against it.
    pub fingerprint: Option<Fingerprint>,
    /// OLD's write counters (rows inserted + updated + deleted, per the statistics collector)
    /// when the backup began, behind the maintenance page: enable refuses if they moved.
    #[serde(default)]
    pub old_writes: Option<i64>,
    /// OLD's fingerprint read during the backup in the snapshot pg_dump copied.
    #[serde(default)]
    pub old_fingerprint: Option<Fingerprint>,
    /// NEW was provisioned empty by this very process and nothing has restored into it since:
    /// the restore can skip re-creating it. Never stored, so a resumed run re-creates NEW.
    #[serde(skip)]
    pub new_untouched: bool,
    /// NEW was loaded by pgshift's own copy during the backup step of this very process: the
    /// restore step has nothing left to do. Never stored: a resumed run restores NEW from the
    /// kept backup instead.
    #[serde(skip)]
    pub new_loaded_by_copy: bool,
    /// NEW's tables hashed as pg_restore finished loading each (while indexes were built).
    #[serde(default)]
    pub new_loaded: crate::postgres::verify::TableHashes,
    pub enabled: bool,
    pub paused: bool,
    /// Extra session settings for the restore (a remediation, e.g. pglz compression).
    #[serde(default)]
    pub restore_options: Vec<String>,
    pub deprovision_not_before: Option<String>,
    /// The remediation this run applies (`md5-password`, `pglz-restore`, …), if any.
    #[serde(default)]
    pub remediation: Option<String>,
    /// Hash NEW's role password md5 whatever NEW's password_encryption says (for images with
    /// libpq < 10); the app then needs an image rebuild.
    #[serde(default)]
    pub md5_password: bool,
    /// The run uses the logical strategy (its steps include `subscribe`): every exit drops
    /// the subscription, slot and publication. Set from the run's steps, never stored.
    #[serde(skip)]
    pub logical: bool,
    /// Logical: the tables published on OLD (row counts compared behind the page).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicated_tables: Vec<String>,
    /// Logical: OLD's schema hash in the slot's snapshot; DDL since then stops the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Logical: NEW's write counters when enabled (its fingerprint is of the snapshot, not of
    /// what it holds after catching up): a rollback refuses if they moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_writes: Option<i64>,
}

impl Ctx {
    pub fn from_snapshot(detail: Option<&str>) -> Self {
        detail
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    /// The context as the last finished step left it.
    pub fn from_rows(rows: &[crate::store::StepRow]) -> Self {
        rows.iter()
            .rfind(|r| r.state == crate::domain::StepState::Done)
            .map_or_else(Self::default, |r| Self::from_snapshot(r.detail.as_deref()))
    }

    /// A fresh context for a run that applies `remediation`.
    pub fn with_remediation(remediation: Option<&str>) -> Self {
        let mut c = Self {
            remediation: remediation.map(str::to_string),
            ..Self::default()
        };
        for r in remediation
            .map(RemediationId::parse_list)
            .unwrap_or_default()
        {
            match r {
                RemediationId::Md5Password => c.md5_password = true,
                RemediationId::PglzRestore => c
                    .restore_options
                    .push("default_toast_compression=pglz".into()),
                _ => {}
            }
        }
        c
    }

    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
