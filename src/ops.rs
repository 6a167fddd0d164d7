//! The application layer: one function per operator verb (migrate, retry, rollback,
//! deprovision, plan, plan edit, run, resume, preflight, sizes…). The CLI, the console and the
//! benches call these; this is the only place that decides the world an inventory lives in
//! and the only place that builds an engine (`world::build_engine`). Front ends own their
//! terminals: they pass in where engine events go and a cancellation token, and print the
//! results these functions return. See docs/architecture.md.

pub mod app;
pub mod backups;
pub mod fleet;
pub mod plan;
pub mod preflight;
pub mod probing;
pub mod sizes;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::EventTx;
use crate::error::UserError;
use crate::inventory::{self, Inventory, Source};
use crate::runbook::Runbook;
pub use world::{OpsEngine, World};

/// What every verb gets: the merged config and where the inventory comes from.
pub struct Context {
    pub cfg: Config,
    pub config_file: Option<PathBuf>,
    pub inventory: Source,
    pub no_color: bool,
    pub readonly: bool,
    /// `--probe`: count what each migrating app answers through its route.
    pub probe: bool,
}

impl Context {
    pub fn load_inventory(&self) -> Result<Inventory> {
        Ok(inventory::load(&self.inventory)?)
    }

    /// The inventory and the world it lives in, decided once.
    pub fn session(&self) -> Result<Session<'_>> {
        let inv = Arc::new(self.load_inventory()?);
        Ok(Session {
            world: World::of(&inv),
            inv,
            ctx: self,
        })
    }
}

/// Is this report the operator's to fix (exit 2)?
pub fn is_user_error(report: &color_eyre::Report) -> bool {
    report.chain().any(|e| {
        e.is::<crate::error::UserError>()
            || e.is::<crate::inventory::InventoryError>()
            || e.is::<crate::config::ConfigError>()
            || e.is::<crate::postgres::ServerError>()
            || e.is::<crate::runbook::RunbookError>()
    })
}

/// Refuse a change under `--readonly`.
pub fn ensure_writable(ctx: &Context, what: &str) -> Result<()> {
    if ctx.readonly {
        return Err(UserError::new(format!("--readonly: refusing to {what}")).into());
    }
    Ok(())
}

/// One verb's view of the fleet: the config, the inventory, and its world.
pub struct Session<'a> {
    pub ctx: &'a Context,
    pub inv: Arc<Inventory>,
    pub world: World,
}

/// Where a verb that drives the engine sends its events, and what cancels it.
pub struct Drive {
    pub events: EventTx,
    pub cancel: CancellationToken,
}

/// Notes for the operator on the side of the results (the CLI prints them on stderr unless
/// it prints JSON).
#[derive(Clone, Copy)]
pub struct Say {
    pub quiet: bool,
}

impl Say {
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }
}

impl Context {
    /// The runbook a verb plans or runs with: `--runbook`, else the config's `runbook`
    /// (`PGSHIFT_RUNBOOK`), else the built-in pg13-to-pg15.
    pub fn runbook(&self, file: Option<&Path>) -> Result<Runbook> {
        match file.or(self.cfg.runbook.as_deref()) {
            Some(p) => Ok(Runbook::load(p)?),
            None => Ok(Runbook::builtin()),
        }
    }
}
