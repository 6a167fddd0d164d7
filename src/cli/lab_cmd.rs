//! `pgshift lab up|down|reset|status`.

use std::time::Instant;

use color_eyre::eyre::Result;

use super::{Context, LabAction, ensure_writable};
use crate::error::{UserError, exit};
use crate::lab::paas::{self, HookOp};
use crate::lab::{Lab, LabEvent};
use crate::store::{Journal, Store};

pub async fn run(ctx: &Context, action: LabAction) -> Result<i32> {
    let lab = Lab::open(&ctx.cfg)?;
    match action {
        LabAction::Up => {
            ensure_writable(ctx, "start the lab")?;
            let inv = ctx.load_inventory()?;
            let t = Instant::now();
            lab.up(&inv, &print_event).await?;
            let store = Store::open(&ctx.cfg.store_url()).await?;
            store.sync_inventory(&inv).await?;
            eprintln!(
                "lab is up ({:.1} s); `pgshift` opens the console",
                t.elapsed().as_secs_f64()
            );
        }
        LabAction::Down => {
            ensure_writable(ctx, "stop the lab")?;
            lab.down().await?;
            eprintln!("lab is down");
        }
        LabAction::Reset { app } => {
            ensure_writable(ctx, "reset the lab")?;
            let inv = ctx.load_inventory()?;
            let t = Instant::now();
            let store = Store::open(&ctx.cfg.store_url()).await?;
            store.sync_inventory(&inv).await?;
            let platform_dir = ctx.cfg.state_dir().join("platform");
            match app {
                Some(name) => {
                    let a = inv.require_app(&name)?;
                    if let Some(l) = store.lease(&name).await? {
                        return Err(UserError::new(format!(
                            "{name} is being migrated (pid {} on {}): not resetting it under a running migration",
                            l.pid, l.host
                        ))
                        .into());
                    }
                    lab.reset_app(&inv, &a.name, &print_event).await?;
                    remove_file_if_exists(&platform_dir.join(format!("{name}.json")))?;
                    let (journal, _) = Journal::spawn(store.clone());
                    journal.reset_app_state(&name).await?;
                    journal.close_failures(Some(&name), "dismissed").await?;
                    eprintln!(
                        "{name} reset: OLD re-seeded, NEW dropped ({:.1} s)",
                        t.elapsed().as_secs_f64()
                    );
                }
                None => {
                    lab.reset(&inv, &print_event).await?;
                    if platform_dir.exists() {
                        std::fs::remove_dir_all(&platform_dir)?;
                    }
                    let (journal, _) = Journal::spawn(store.clone());
                    let n = journal.reset_app_states().await?;
                    journal.close_failures(None, "dismissed").await?;
                    eprintln!(
                        "lab reset: fixture fleet re-seeded, {n} apps back to pending ({:.1} s)",
                        t.elapsed().as_secs_f64()
                    );
                }
            }
        }
        LabAction::Hook { op, app } => return Ok(hook(ctx, &lab, op, &app)),
        LabAction::Status { json } => {
            let status = lab.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                for c in &status.clusters {
                    println!(
                        "{} PostgreSQL {:<8} port {:<6} {}",
                        if c.running { "✓ up  " } else { "✗ down" },
                        c.version,
                        c.port,
                        c.url
                    );
                }
                let r = &status.router;
                println!(
                    "{} router (nginx)    port {:<6} {}",
                    if r.running { "✓ up  " } else { "✗ down" },
                    r.port,
                    r.url
                );
                for a in &status.apps {
                    let state = a.process().as_str();
                    println!("  {:<18} {state:<8} {}", a.name, a.url);
                }
            }
        }
    }
    Ok(exit::OK)
}

/// `lab hook OP APP`: the exit code is the contract's; a failure of the hook itself exits 2.
fn hook(ctx: &Context, lab: &Lab, op: HookOp, app: &str) -> i32 {
    let run = || -> Result<i32> {
        let inv = ctx.load_inventory()?;
        let a = inv.require_app(app)?;
        let la = paas::lab_app(&inv, lab, a)?.ok_or_else(|| {
            UserError::new(format!(
                "app {app} has no provisioned PostgreSQL service on a lab server: the lab does not run it"
            ))
        })?;
        lab.paas().hook(op, &la)
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgshift lab hook: {app}: {e:#}");
            paas::hook::HOOK_FAILED
        }
    }
}

fn remove_file_if_exists(p: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn print_event(e: LabEvent) {
    match e {
        LabEvent::Initialized { major } => eprintln!("  created PostgreSQL {major} cluster"),
        LabEvent::Started { major, port } => {
            eprintln!("  started PostgreSQL {major} on 127.0.0.1:{port}")
        }
        LabEvent::AlreadyRunning { major } => eprintln!("  PostgreSQL {major} already running"),
        LabEvent::Seeded {
            app,
            database,
            seconds,
        } => eprintln!("  seeded {database:<18} for {app} ({seconds:.1} s)"),
        LabEvent::Unchanged { seeded } => {
            eprintln!("  {seeded} fixture databases already seeded")
        }
        LabEvent::App { line } => eprintln!("  {line}"),
        LabEvent::Apps { running, router } => {
            eprintln!("  {running} apps running behind the router at {router}APP/")
        }
    }
}
