//! `pgshift lab up|down|reset|status`.

use std::time::Instant;

use color_eyre::eyre::Result;

use super::{Context, LabAction, ensure_writable};
use crate::error::exit;
use crate::lab::{Lab, LabEvent};
use crate::store::Store;

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
        LabAction::Reset => {
            ensure_writable(ctx, "reset the lab")?;
            let inv = ctx.load_inventory()?;
            let t = Instant::now();
            lab.reset(&inv, &print_event).await?;
            let store = Store::open(&ctx.cfg.store_url()).await?;
            store.sync_inventory(&inv).await?;
            let n = store.reset_app_states().await?;
            eprintln!(
                "lab reset: fixture fleet re-seeded, {n} apps back to pending ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
        }
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
            }
        }
    }
    Ok(exit::OK)
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
    }
}
