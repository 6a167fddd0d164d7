//! `pgshift plan`, `plan edit` and `run`: a night for the whole fleet, on the lab or the sim
//! world.

use color_eyre::eyre::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::printer::{cancel_on_ctrl_c, hms, print_report, spawn_printer};
use super::{Context, ensure_writable};
use crate::error::exit;
use crate::ops::{self, Drive, Say};
use crate::plan::edit::Edit;
use crate::plan::{Plan, PlanParams};

pub struct PlanArgs {
    pub params: PlanParams,
    pub exclude: Vec<String>,
    pub json: bool,
}

pub async fn plan(ctx: &Context, args: PlanArgs) -> Result<i32> {
    let s = ctx.session()?;
    let runbook = ctx.runbook(None)?;
    let (plan, id) = ops::plan::plan(&s, &runbook, &args.params, &args.exclude).await?;
    if args.json {
        let mut v = serde_json::to_value(&plan)?;
        v["id"] = id.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    print_plan(&plan, id);
    print_strategies(&plan, &s.inv, &runbook);
    Ok(exit::OK)
}

/// The planned apps that take the logical strategy (their own setting or the runbook's size
/// threshold); whether OLD can replicate them is decided by preflight and when each begins.
fn print_strategies(
    plan: &Plan,
    inv: &crate::inventory::Inventory,
    runbook: &crate::runbook::Runbook,
) {
    let logical: Vec<&str> = plan
        .batches
        .iter()
        .flat_map(|b| b.apps.iter())
        .filter_map(|a| inv.app(a))
        .filter(|a| runbook.strategy_for(a).0 == crate::inventory::Strategy::Logical)
        .map(|a| a.name.as_str())
        .collect();
    if !logical.is_empty() {
        println!(
            "strategy logical (paused only to catch up) for {} app(s): {}; the others dump. `pgshift preflight` says which fall back to dump, and why",
            logical.len(),
            logical.join(", ")
        );
    }
}

/// `plan edit`: apply the edits to the latest plan and save the result as a new plan (the
/// old one stays in the store, as it was).
pub async fn plan_edit(ctx: &Context, edits: &[Edit], json: bool) -> Result<i32> {
    ensure_writable(ctx, "edit the plan")?;
    let runbook = ctx.runbook(None)?;
    let ops::plan::Edited { plan, id, from } = ops::plan::edit(ctx, &runbook, edits).await?;
    if json {
        let mut v = serde_json::to_value(&plan)?;
        v["id"] = id.into();
        v["edited_from"] = from.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_plan(&plan, id);
        if let Ok(s) = ctx.session() {
            print_strategies(&plan, &s.inv, &runbook);
        }
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

pub struct RunArgs {
    pub batch: Option<usize>,
    pub json: bool,
    pub apply_preflight: bool,
    pub speed: f64,
    pub quiet: bool,
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    ensure_writable(ctx, "run a migration")?;
    let s = ctx.session()?;
    let runbook = ctx.runbook(None)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = spawn_printer(rx, args.json, args.quiet);
    let cancel = CancellationToken::new();
    cancel_on_ctrl_c(&cancel);
    let report = ops::fleet::run(
        &s,
        runbook,
        ops::fleet::RunArgs {
            batch: args.batch,
            apply_preflight: args.apply_preflight,
            speed: args.speed,
        },
        Drive { events: tx, cancel },
        Say { quiet: args.json },
    )
    .await;
    let _ = printer.await;
    let report = report?;
    print_report(&report, args.json);
    Ok(if report.failed > 0 || report.cancelled > 0 {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
}
