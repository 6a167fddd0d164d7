//! `pgshift plan` and `pgshift run`: a night for the whole fleet, on the lab or the sim world.

use std::collections::HashMap;
use std::sync::Arc;

use color_eyre::eyre::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine_cmd::{cancel_on_ctrl_c, spawn_printer};
use super::{Context, ensure_writable};
use crate::engine::databases::{Databases, RealDatabases};
use crate::engine::servers::Servers;
use crate::engine::{Engine, FleetReport};
use crate::error::{UserError, exit};
use crate::inventory::Inventory;
use crate::lab::Lab;
use crate::plan::{Plan, PlanParams};
use crate::platform::Platform;
use crate::platform::lab::LabPlatform;
use crate::platform::sim::{SimDatabases, SimPlatform, SimWorld};
use crate::runbook::{Runbook, Throughput};
use crate::store::Store;

pub struct PlanArgs {
    pub params: PlanParams,
    pub exclude: Vec<String>,
    pub json: bool,
}

/// OLD sizes: measured on lab servers (one query per server), else the inventory's hints.
async fn sizes(inv: &Inventory, servers: &Servers) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut measured: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for s in inv.servers.iter().filter(|s| s.lab) {
        if let Ok(ep) = servers.admin(&s.name)
            && let Ok(mut conn) = ep.connect("postgres").await
            && let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
                "SELECT datname::text, pg_database_size(datname) FROM pg_database WHERE NOT datistemplate",
            )
            .fetch_all(&mut conn)
            .await
        {
            measured.insert(s.name.clone(), rows.into_iter().collect());
        }
    }
    for a in &inv.apps {
        for svc in a.services.iter().filter(|s| s.provisioned) {
            let m = svc
                .server
                .as_ref()
                .zip(svc.database.as_ref())
                .and_then(|(srv, db)| measured.get(srv)?.get(db).copied());
            if let Some(bytes) = m {
                out.insert(a.name.clone(), bytes.max(0) as u64);
            } else if let Some(mb) = svc.size_mb {
                out.insert(a.name.clone(), (mb * 1e6) as u64);
            }
        }
    }
    out
}

/// Defaults, improved by what finished migrations in the store have shown.
async fn throughput(store: &Store) -> Result<Throughput> {
    let mut t = Throughput::default();
    if let Some(b) = store.observed_throughput("backup").await? {
        t.dump_bps = b;
    }
    if let Some(b) = store.observed_throughput("restore").await? {
        t.restore_bps = b;
    }
    if let Some(b) = store.observed_throughput("verify").await? {
        t.verify_bps = b;
    }
    Ok(t)
}

pub async fn plan(ctx: &Context, args: PlanArgs) -> Result<i32> {
    let inv = Arc::new(ctx.load_inventory()?);
    for r in &args.params.regions {
        if !inv.regions.iter().any(|x| x.name == *r) {
            return Err(UserError::new(format!(
                "unknown region \"{r}\" (regions: {})",
                inv.regions
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    for a in &args.exclude {
        if inv.app(a).is_none() {
            return Err(UserError::new(format!("unknown app \"{a}\" to exclude")).into());
        }
    }
    let runbook = Runbook::builtin();
    let servers = Servers::new(inv.clone(), Lab::open(&ctx.cfg).ok().map(Arc::new));
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let sizes = sizes(&inv, &servers).await;
    let t = throughput(&store).await?;
    let plan = crate::plan::plan(&inv, &runbook, &args.params, &sizes, &t, &args.exclude);
    let id = if ctx.readonly {
        0
    } else {
        store
            .save_plan(
                &serde_json::to_string(&args.params)?,
                &serde_json::to_string(&plan)?,
            )
            .await?
    };
    if args.json {
        let mut v = serde_json::to_value(&plan)?;
        v["id"] = id.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    print_plan(&plan, id);
    Ok(exit::OK)
}

fn print_plan(plan: &Plan, id: i64) {
    println!(
        "plan {id}: seed {}, batches of {}, canary {}, window {}",
        plan.seed,
        plan.batch_size,
        plan.canary,
        hms(plan.window_seconds as f64)
    );
    let mut last = "";
    for b in &plan.batches {
        if b.region != last {
            last = &b.region;
            println!("▾ {}", b.region);
        }
        println!(
            "  {} batch {:>3}{} {:>3} apps  est. {:>8}  ends after {:>8}  {}",
            if b.fits_window { "✓" } else { "✗" },
            b.index,
            if b.canary { " (canary)" } else { "         " },
            b.apps.len(),
            hms(b.estimated_seconds),
            hms(b.ends_after_seconds),
            if b.apps.len() <= 6 {
                b.apps.join(", ")
            } else {
                format!("{}, … {} more", b.apps[..5].join(", "), b.apps.len() - 5)
            }
        );
    }
    let outside = plan.batches.iter().filter(|b| !b.fits_window).count();
    if outside > 0 {
        println!(
            "{outside} batch(es) do not fit the window: run them another night (pgshift run --batch K)"
        );
    }
}

fn hms(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub struct RunArgs {
    pub batch: Option<usize>,
    pub json: bool,
    pub apply_preflight: bool,
    pub speed: f64,
    pub quiet: bool,
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    ensure_writable(ctx, "run a migration")?;
    let inv = Arc::new(ctx.load_inventory()?);
    let store = Store::open(&ctx.cfg.store_url()).await?;
    store.sync_inventory(&inv).await?;
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
    let runbook = Runbook::builtin();
    let lab = Lab::open(&ctx.cfg).ok().map(Arc::new);
    let servers = Servers::new(inv.clone(), lab);
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = spawn_printer(rx, args.json, args.quiet);
    let cancel = CancellationToken::new();
    cancel_on_ctrl_c(&cancel);
    let state = ctx.cfg.state_dir();
    let all_sim = inv.servers.iter().all(|s| s.sim);
    let report = if all_sim {
        let world = SimWorld::new(&inv, args.speed);
        let remediations = if args.apply_preflight {
            sim_preflight(&inv, &runbook)
        } else {
            HashMap::new()
        };
        let engine = Engine::new(
            store,
            inv.clone(),
            runbook,
            servers,
            SimPlatform(world.clone()),
            SimDatabases(world),
            state,
            tx,
            cancel,
        );
        drive(engine, &plan, plan_id, args.batch, &remediations).await?
    } else {
        let mut remediations = HashMap::new();
        if args.apply_preflight {
            for name in plan.apps() {
                let Some(app) = inv.app(name) else { continue };
                let r = crate::preflight::check(&servers, &runbook, app).await?;
                if let Some(rem) = r.remediations() {
                    if !args.json {
                        eprintln!("preflight: {name} → {rem}");
                    }
                    remediations.insert(name.to_string(), rem);
                }
            }
        }
        let db = RealDatabases {
            servers: servers.clone(),
            pg_bin: ctx.cfg.lab.pg15_bin.clone(),
            state_dir: state.clone(),
        };
        let engine = Engine::new(
            store,
            inv.clone(),
            runbook,
            servers.clone(),
            LabPlatform::new(&state, servers),
            db,
            state,
            tx,
            cancel,
        );
        drive(engine, &plan, plan_id, args.batch, &remediations).await?
    };
    let _ = printer.await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "event": "fleet_done", "report": report })
        );
    } else {
        eprintln!(
            "fleet run {}: {} migrated, {} failed {:?}, {} cancelled, {} skipped in {:.1} s",
            report.run_id,
            report.migrated,
            report.failed,
            report.failures_by_class,
            report.cancelled,
            report.skipped,
            report.seconds
        );
    }
    Ok(if report.failed > 0 || report.cancelled > 0 {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
}

async fn drive<P: Platform, D: Databases>(
    engine: Engine<P, D>,
    plan: &Plan,
    plan_id: i64,
    batch: Option<usize>,
    remediations: &HashMap<String, String>,
) -> Result<FleetReport> {
    let r = engine.run_plan(plan, plan_id, batch, remediations).await;
    engine.shutdown().await;
    r
}

/// In the sim world preflight's probes are the world's own rules.
fn sim_preflight(inv: &Inventory, runbook: &Runbook) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for a in inv.apps.iter().filter(|a| runbook.applies_to(a)) {
        let mut r = Vec::new();
        if !a.libpq.supports_scram() {
            r.push("md5-password");
        }
        if a.services
            .iter()
            .any(|s| s.seed.as_ref().is_some_and(|x| x.btree_straddle))
        {
            r.push("pglz-restore");
        }
        if !r.is_empty() {
            out.insert(a.name.clone(), r.join(","));
        }
    }
    out
}
