//! One app's verbs: migrate (optionally with preflight's remediations up front), retry with a
//! remediation, roll back to OLD, deprovision OLD. Each drives the engine of the inventory's
//! world.

use color_eyre::eyre::Result;

use super::{Drive, Say, Session};
use crate::engine::{Engine, Outcome};
use crate::error::UserError;
use crate::platform::Platform;
use crate::platform::databases::Databases;
use crate::runbook::Runbook;
use crate::store::Store;

/// What to do to one app.
pub enum Verb {
    /// A new run of the runbook; `preflight`: check first and apply its remediations up front.
    Migrate { app: String, preflight: bool },
    /// Apply a remediation (default: the first its failure offers) and run again.
    Retry {
        app: String,
        remediation: Option<String>,
    },
    /// Put a migrated app back on OLD.
    Rollback { app: String },
    /// Drop a migrated app's OLD database (after the runbook's retention, with `confirm`).
    Deprovision { app: String, confirm: bool },
}

impl Verb {
    pub fn app(&self) -> &str {
        match self {
            Verb::Migrate { app, .. }
            | Verb::Retry { app, .. }
            | Verb::Rollback { app }
            | Verb::Deprovision { app, .. } => app,
        }
    }
}

/// Drive one app's verb to its outcome (deprovision: `Migrated` once OLD is dropped).
pub async fn run(
    s: &Session<'_>,
    verb: &Verb,
    runbook: Runbook,
    drive: Drive,
    say: Say,
) -> Result<Outcome> {
    let store = Store::open(&s.ctx.cfg.store_url()).await?;
    store.sync_inventory(&s.inv).await?;
    let probe_store = store.clone();
    let engine = s.engine(store, runbook, 0.0, drive)?;
    let app = s.inv.require_app(verb.app())?;
    let probing = super::probing::Probing::when_asked(s, &engine, &[app], &probe_store).await?;
    let result = crate::on_engine!(&engine, e => run_on(e, verb, say).await);
    engine.shutdown().await;
    if let Some(p) = probing {
        p.report(say.quiet).await?;
    }
    result
}

async fn run_on<P: Platform, D: Databases>(
    engine: &Engine<P, D>,
    verb: &Verb,
    say: Say,
) -> Result<Outcome> {
    match verb {
        Verb::Migrate {
            app,
            preflight: false,
        } => engine.migrate(app).await,
        Verb::Migrate {
            app,
            preflight: true,
        } => migrate_preflighted(engine, app, say).await,
        Verb::Rollback { app } => engine.rollback_app(app).await,
        Verb::Deprovision { app, confirm } => engine.deprovision(app, *confirm).await.map(|msg| {
            eprintln!("{app}: {msg}");
            Outcome::Migrated
        }),
        Verb::Retry { app, remediation } => {
            engine
                .retry(app, remediation.as_deref())
                .await
                .map(|(r, o)| {
                    say.note(format!("{app}: retried with remediation {r}"));
                    o
                })
        }
    }
}

async fn migrate_preflighted<P: Platform, D: Databases>(
    engine: &Engine<P, D>,
    name: &str,
    say: Say,
) -> Result<Outcome> {
    let app = engine.inv.require_app(name)?.clone();
    let report = crate::preflight::check(&engine.servers, &engine.runbook, &app).await?;
    for r in &report.risks {
        say.note(format!(
            "⚠ {name}: {} — {}{}",
            r.class,
            r.detail,
            r.remediation
                .map(|x| format!(" → applying {x}"))
                .unwrap_or_default()
        ));
    }
    if let Some(blocker) = report.risks.iter().find(|r| r.remediation.is_none()) {
        return Err(UserError::new(format!(
            "{name}: preflight found {} with no automatic remediation ({}); fix it before the window",
            blocker.class, blocker.detail
        ))
        .into());
    }
    engine
        .migrate_with(name, report.remediations().as_deref())
        .await
}
