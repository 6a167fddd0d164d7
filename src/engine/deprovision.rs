//! Deprovisioning OLD: destructive, so only for a migrated app whose NEW is the service in
//! use and still verifies equal to OLD's last verified state, after the runbook's retention,
//! and with the operator's explicit confirmation. Never part of a migration run.

use color_eyre::eyre::Result;

use super::Engine;
use super::databases::Databases;
use crate::error::UserError;
use crate::platform::Platform;
use crate::postgres::{exec, ident, verify};

impl<P: Platform, D: Databases> Engine<P, D> {
    /// Drop OLD's database and role. `confirm` must be true; returns what was dropped.
    pub async fn deprovision(&self, name: &str, confirm: bool) -> Result<String> {
        let app = self.inv.require_app(name)?;
        let ctx = self
            .migrated_ctx(name, "OLD is its database, it stays")
            .await?;
        let (Some(old), Some(new), Some(fp)) = (&ctx.old, &ctx.new, &ctx.fingerprint) else {
            return Err(UserError::new(format!(
                "{name}: the run that migrated it recorded no verified NEW; not dropping OLD"
            ))
            .into());
        };
        let not_before = ctx
            .deprovision_not_before
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| {
                UserError::new(format!("{name}: no retention recorded; not dropping OLD"))
            })?;
        if chrono::Utc::now() < not_before {
            return Err(UserError::new(format!(
                "{name}: OLD {} is kept until {not_before} (the runbook's retention); not dropping it before",
                old.id
            ))
            .into());
        }
        if self.platform.status(app).await?.service != *new {
            return Err(UserError::new(format!(
                "{name} does not use NEW {}; not dropping OLD",
                new.id
            ))
            .into());
        }
        // NEW must still hold at least what was verified: tables and objects all there.
        let now = self
            .db
            .fingerprint(new, fp.row_hash, Default::default())
            .await?;
        let missing: Vec<String> = fp
            .tables
            .keys()
            .filter(|t| !now.tables.contains_key(*t))
            .map(|t| format!("table {t} missing on NEW"))
            .chain(
                verify::differences(fp, &now)
                    .into_iter()
                    .filter(|d| d.contains("missing")),
            )
            .collect();
        if !missing.is_empty() {
            return Err(UserError::new(format!(
                "{name}: NEW no longer has what was verified ({}); not dropping OLD",
                missing[0]
            ))
            .into());
        }
        if !confirm {
            return Err(UserError::new(format!(
                "{name}: this drops OLD {} (database {} and role {} on server {}) for good; add --confirm",
                old.id, old.database, old.user, old.server
            ))
            .into());
        }
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect("postgres").await?;
        exec(
            &mut conn,
            format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(&old.database)
            ),
        )
        .await?;
        exec(
            &mut conn,
            format!("DROP ROLE IF EXISTS {}", ident(&old.user)),
        )
        .await?;
        self.journal
            .set_app_state(
                name,
                crate::domain::AppState::Migrated,
                false,
                Some(&new.id),
            )
            .await?;
        tracing::info!(app = name, old = %old.id, "OLD deprovisioned");
        Ok(format!(
            "dropped OLD {} (database {}, role {} on server {})",
            old.id, old.database, old.user, old.server
        ))
    }
}
