//! What an app's migration knows so far. Every finished step stores a snapshot, so a resumed
//! run rebuilds it from the last finished step.

use serde::{Deserialize, Serialize};

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
    pub enabled: bool,
    pub paused: bool,
    /// Extra session settings for the restore (a remediation, e.g. pglz compression).
    #[serde(default)]
    pub restore_options: Vec<String>,
    pub deprovision_not_before: Option<String>,
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
            .rfind(|r| r.state == "done")
            .map_or_else(Self::default, |r| Self::from_snapshot(r.detail.as_deref()))
    }

    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
