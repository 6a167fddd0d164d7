//! The fleet's night: `run` the latest plan, and `resume` what a dead pgshift left (single
//! apps' runs and fleet runs).

use std::collections::HashMap;

use color_eyre::eyre::Result;

use super::preflight::plan_remediations;
use super::{Drive, Say, Session, World};
use crate::engine::{Engine, FleetReport, FleetRun, Outcome};
use crate::error::UserError;
use crate::plan::Plan;
use crate::platform::Platform;
use crate::platform::databases::Databases;
use crate::runbook::Runbook;
use crate::store::Store;

pub struct RunArgs {
    /// Only batch K of every region.
    pub batch: Option<usize>,
    pub apply_preflight: bool,
    /// Sim world only: simulated seconds per real second (0: instant steps).
    pub speed: f64,
}

/// Run the latest plan: regions in parallel, batches in order, failures never stop the rest.
pub async fn run(
    s: &Session<'_>,
    runbook: Runbook,
    args: RunArgs,
    drive: Drive,
    say: Say,
) -> Result<FleetReport> {
    let inv = &s.inv;
    let store = Store::open(&s.ctx.cfg.store_url()).await?;
    store.sync_inventory(inv).await?;
    let Some((plan_id, _, body)) = store.latest_plan().await? else {
        return Err(UserError::new("no plan yet: `pgshift plan` makes one").into());
    };
    let plan: Plan = serde_json::from_str(&body)?;
    let unknown: Vec<&str> = plan.apps().filter(|a| inv.app(a).is_none()).collect();
    if !unknown.is_empty() {
        return Err(UserError::new(format!(
            "plan {plan_id} names apps the inventory does not have ({}…): make a new plan",
            unknown[0]
        ))
        .into());
    }
    let remediations = if args.apply_preflight {
        plan_remediations(s.world, inv, &s.servers(), &runbook, &plan, say).await?
    } else {
        HashMap::new()
    };
    let run = FleetRun {
        plan: &plan,
        plan_id,
        only: args.batch,
        remediations: &remediations,
        apply_preflight: args.apply_preflight,
        continues: None,
    };
    let probe_store = store.clone();
    let engine = s.engine(store, runbook, args.speed, drive)?;
    let apps: Vec<&crate::inventory::App> = plan.apps().filter_map(|a| inv.app(a)).collect();
    let probing = super::probing::Probing::when_asked(s, &engine, &apps, &probe_store).await?;
    let r = crate::on_engine!(&engine, e => e.run_plan(run).await);
    engine.shutdown().await;
    if let Some(p) = probing {
        p.report(say.quiet).await?;
    }
    r
}

/// What `resume` continued: single apps' runs and fleet runs.
pub struct Resumed {
    pub apps: Vec<(String, Outcome)>,
    pub fleets: Vec<FleetReport>,
}

/// Continue every run a crashed or killed pgshift left unfinished. In the sim world the
/// world is rebuilt from the inventory (it lived in the dead process); the store says where
/// every run stood.
pub async fn resume(s: &Session<'_>, drive: Drive, say: Say) -> Result<Resumed> {
    let store = Store::open(&s.ctx.cfg.store_url()).await?;
    store.sync_inventory(&s.inv).await?;
    let runbook = recorded_runbook(s, &store).await?;
    let probe_store = store.clone();
    let engine = s.engine(store, runbook, 0.0, drive)?;
    let candidates: Vec<&crate::inventory::App> =
        s.inv.apps.iter().filter(|a| a.is_candidate()).collect();
    let probing =
        super::probing::Probing::when_asked(s, &engine, &candidates, &probe_store).await?;
    let (apps, fleets) = crate::on_engine!(&engine, e => resume_on(e, s.world, say).await);
    engine.shutdown().await;
    if let Some(p) = probing {
        p.report(say.quiet).await?;
    }
    Ok(Resumed {
        apps: apps?,
        fleets: fleets?,
    })
}

/// The runbook the unfinished runs started with (the config's, or the built-in one, when
/// they recorded none).
async fn recorded_runbook(s: &Session<'_>, store: &Store) -> Result<Runbook> {
    let mut files: Vec<_> = store
        .running_run_params()
        .await?
        .iter()
        .filter_map(|p| Runbook::recorded(p))
        .collect();
    files.sort();
    files.dedup();
    match files.as_slice() {
        [] => s.ctx.runbook(None),
        [one] => s.ctx.runbook(Some(one)),
        many => Err(UserError::new(format!(
            "the unfinished runs started with different runbooks ({}): resume cannot continue them together",
            many.iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

async fn resume_on<P: Platform, D: Databases>(
    engine: &Engine<P, D>,
    world: World,
    say: Say,
) -> (Result<Vec<(String, Outcome)>>, Result<Vec<FleetReport>>) {
    let apps = engine.resume().await;
    let fleets = match &apps {
        Ok(_) => continue_fleet_runs(engine, world, say).await,
        Err(_) => Ok(Vec::new()),
    };
    (apps, fleets)
}

/// Fleet runs whose pgshift died: run what is left of each one's plan (apps migrated
/// meanwhile, or failed without a remedy, are not started again). A run another live pgshift
/// still drives is left to it.
async fn continue_fleet_runs<P: Platform, D: Databases>(
    engine: &Engine<P, D>,
    world: World,
    say: Say,
) -> Result<Vec<FleetReport>> {
    let mut out = Vec::new();
    for (run_id, params) in engine.store.running_fleet_runs().await? {
        let p: serde_json::Value = serde_json::from_str(&params).unwrap_or_default();
        let Some(plan_id) = p["plan_id"].as_i64() else {
            continue;
        };
        let Some((_, body)) = engine.store.plan_by_id(plan_id).await? else {
            tracing::warn!(
                run_id,
                plan_id,
                "the plan of an unfinished fleet run is gone"
            );
            continue;
        };
        let plan: Plan = serde_json::from_str(&body)?;
        let only = p["batch"].as_u64().map(|b| b as usize);
        let apply_preflight = p["apply_preflight"].as_bool().unwrap_or(false);
        let remediations = if apply_preflight {
            plan_remediations(
                world,
                &engine.inv,
                &engine.servers,
                &engine.runbook,
                &plan,
                say,
            )
            .await?
        } else {
            HashMap::new()
        };
        say.note(format!("continuing fleet run {run_id} (plan {plan_id})"));
        let r = engine
            .run_plan(FleetRun {
                plan: &plan,
                plan_id,
                only,
                remediations: &remediations,
                apply_preflight,
                continues: Some(run_id),
            })
            .await;
        match r {
            Ok(report) => out.push(report),
            // Another pgshift holds it, or it failed: the other unfinished runs still go.
            Err(e) => eprintln!("pgshift: fleet run {run_id} not continued: {e:#}"),
        }
    }
    Ok(out)
}
