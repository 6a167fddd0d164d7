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
use crate::engine::{Engine, FleetReport, FleetRun};
use crate::error::{UserError, exit};
use crate::inventory::Inventory;
use crate::lab::Lab;
use crate::plan::edit::{Edit, Estimates};
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
pub(crate) async fn sizes(inv: &Inventory, servers: &Servers) -> HashMap<String, u64> {
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

/// `plan edit`: apply the edits to the latest plan and save the result as a new plan (the
/// old one stays in the store, as it was).
pub async fn plan_edit(ctx: &Context, edits: &[Edit], json: bool) -> Result<i32> {
    ensure_writable(ctx, "edit the plan")?;
    if edits.is_empty() {
        return Err(UserError::new(
            "plan edit: nothing to do (--move APP --to K, --exclude APP, or --region R --batch K --to L)",
        )
        .into());
    }
    let inv = Arc::new(ctx.load_inventory()?);
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let Some((from, params, body)) = store.latest_plan().await? else {
        return Err(UserError::new("no plan yet: `pgshift plan` makes one").into());
    };
    let mut plan: Plan = serde_json::from_str(&body)?;
    let runbook = Runbook::builtin();
    let servers = Servers::new(inv.clone(), Lab::open(&ctx.cfg).ok().map(Arc::new));
    let sizes = sizes(&inv, &servers).await;
    let t = throughput(&store).await?;
    let app_seconds: HashMap<String, f64> = plan
        .apps()
        .map(|a| {
            let bytes = sizes.get(a).copied().unwrap_or(10_000_000);
            (a.to_string(), crate::plan::app_seconds(&runbook, bytes, &t))
        })
        .collect();
    let concurrency: HashMap<String, usize> = inv
        .regions
        .iter()
        .map(|r| (r.name.clone(), r.concurrency as usize))
        .collect();
    let est = Estimates {
        app_seconds: &app_seconds,
        concurrency: &concurrency,
    };
    for e in edits {
        crate::plan::edit::apply(&mut plan, e, &est)
            .map_err(|m| UserError::new(format!("plan {from}: {m}")))?;
    }
    let mut p: serde_json::Value = serde_json::from_str(&params).unwrap_or_default();
    p["edited_from"] = from.into();
    let id = store
        .save_plan(&p.to_string(), &serde_json::to_string(&plan)?)
        .await?;
    if json {
        let mut v = serde_json::to_value(&plan)?;
        v["id"] = id.into();
        v["edited_from"] = from.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_plan(&plan, id);
        eprintln!("plan {id} saved (edited from plan {from}); `pgshift run` runs it");
    }
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

pub(crate) fn hms(s: f64) -> String {
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

/// `resume` on a sim inventory: the world is rebuilt from the inventory (it lived in the
/// dead process), the store says where every run stood.
pub async fn resume_sim(ctx: &Context, json: bool) -> Result<i32> {
    ensure_writable(ctx, "resume")?;
    let inv = Arc::new(ctx.load_inventory()?);
    let store = Store::open(&ctx.cfg.store_url()).await?;
    store.sync_inventory(&inv).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = spawn_printer(rx, json, true);
    let cancel = CancellationToken::new();
    cancel_on_ctrl_c(&cancel);
    let world = SimWorld::new(&inv, 0.0);
    let engine = Engine::new(
        store,
        inv.clone(),
        Runbook::builtin(),
        Servers::new(inv.clone(), None),
        SimPlatform(world.clone()),
        SimDatabases(world),
        ctx.cfg.state_dir(),
        tx,
        cancel,
    );
    let apps = engine.resume().await;
    let fleets = match &apps {
        Ok(_) => continue_fleet_runs(&engine, json).await,
        Err(_) => Ok(Vec::new()),
    };
    engine.shutdown().await;
    let _ = printer.await;
    let (apps, fleets) = (apps?, fleets?);
    for f in &fleets {
        print_report(f, json);
    }
    if apps.is_empty() && fleets.is_empty() && !json {
        eprintln!("nothing to resume");
    }
    let failed = fleets.iter().any(|f| f.failed > 0)
        || apps.iter().any(|(_, o)| {
            !matches!(
                o,
                crate::engine::Outcome::Migrated | crate::engine::Outcome::Cancelled
            )
        });
    Ok(if failed {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
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
        drive(
            engine,
            &plan,
            plan_id,
            args.batch,
            &remediations,
            args.apply_preflight,
        )
        .await?
    } else {
        let remediations = if args.apply_preflight {
            preflight_remediations(&inv, &servers, &runbook, &plan, args.json).await?
        } else {
            HashMap::new()
        };
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
        drive(
            engine,
            &plan,
            plan_id,
            args.batch,
            &remediations,
            args.apply_preflight,
        )
        .await?
    };
    let _ = printer.await;
    print_report(&report, args.json);
    Ok(if report.failed > 0 || report.cancelled > 0 {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
}

pub(crate) fn print_report(report: &FleetReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "fleet_done", "report": report })
        );
    } else {
        eprintln!(
            "fleet run {}: {} migrated, {} failed {:?}, {} cancelled, {} skipped, {} not started in {:.1} s",
            report.run_id,
            report.migrated,
            report.failed,
            report.failures_by_class,
            report.cancelled,
            report.skipped,
            report.not_started,
            report.seconds
        );
    }
}

/// Preflight every app of the plan against the real servers: app → remediations.
async fn preflight_remediations(
    inv: &Inventory,
    servers: &Servers,
    runbook: &Runbook,
    plan: &Plan,
    json: bool,
) -> Result<HashMap<String, String>> {
    let mut remediations = HashMap::new();
    for name in plan.apps() {
        let Some(app) = inv.app(name) else { continue };
        let r = crate::preflight::check(servers, runbook, app).await?;
        if let Some(rem) = r.remediations() {
            if !json {
                eprintln!("preflight: {name} → {rem}");
            }
            remediations.insert(name.to_string(), rem);
        }
    }
    Ok(remediations)
}

/// `resume`, for fleet runs whose pgshift died: run what is left of each one's plan (apps
/// migrated meanwhile, or failed without a remedy, are not started again). A run another
/// live pgshift still drives is left to it.
pub(crate) async fn continue_fleet_runs<P: Platform, D: Databases>(
    engine: &Engine<P, D>,
    json: bool,
) -> Result<Vec<FleetReport>> {
    let sim = engine.inv.servers.iter().all(|s| s.sim);
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
        let remediations = if apply_preflight && sim {
            sim_preflight(&engine.inv, &engine.runbook)
        } else if apply_preflight {
            preflight_remediations(&engine.inv, &engine.servers, &engine.runbook, &plan, json)
                .await?
        } else {
            HashMap::new()
        };
        if !json {
            eprintln!("continuing fleet run {run_id} (plan {plan_id})");
        }
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

async fn drive<P: Platform, D: Databases>(
    engine: Engine<P, D>,
    plan: &Plan,
    plan_id: i64,
    only: Option<usize>,
    remediations: &HashMap<String, String>,
    apply_preflight: bool,
) -> Result<FleetReport> {
    let r = engine
        .run_plan(FleetRun {
            plan,
            plan_id,
            only,
            remediations,
            apply_preflight,
            continues: None,
        })
        .await;
    engine.shutdown().await;
    r
}

/// In the sim world preflight's probes are the world's own rules.
fn sim_preflight(inv: &Inventory, runbook: &Runbook) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for a in inv.apps.iter().filter(|a| runbook.applies_to(a)) {
        let mut r = Vec::new();
        if !a.client.supports_scram() {
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
