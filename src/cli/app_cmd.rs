//! `pgshift app show A`, `backups`, `failures`: what the store and the platform know.

use std::sync::Arc;

use color_eyre::eyre::Result;
use serde::Serialize;

use super::Context;
use crate::domain::{AppState, FleetState};
use crate::error::exit;
use crate::lab::Lab;
use crate::platform::Platform;
use crate::platform::servers::Servers;
use crate::store::Store;

#[derive(Serialize)]
struct AppView {
    name: String,
    region: String,
    environment: String,
    libpq: String,
    /// "libpq 9.6", "node-postgres 7.4.0": for the text output.
    #[serde(skip)]
    client: String,
    state: String,
    paused: bool,
    needs_rebuild: bool,
    service: crate::platform::ServiceRef,
    database_url: String,
    /// The app's public URL, as its platform names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    latest_run: Option<i64>,
}

pub async fn show(ctx: &Context, name: &str, json: bool, reveal: bool) -> Result<i32> {
    let inv = Arc::new(ctx.load_inventory()?);
    let app = inv.require_app(name)?.clone();
    if crate::ops::world::World::of(&inv) == crate::ops::world::World::Sim {
        return Err(crate::error::UserError::new(format!(
            "{name}: the sim world keeps no platform record of its apps (no URL, no service \
             to show); its runs are in `pgshift report` and the console"
        ))
        .into());
    }
    let lab = Lab::open(&ctx.cfg).ok().map(Arc::new);
    let servers = Servers::new(inv.clone(), lab).with_state_dir(&ctx.cfg.state_dir());
    let platform = crate::platform::real(&inv, servers.clone(), &ctx.cfg.state_dir())?;
    let rec = platform.status(&app).await?;
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let stored = store.app_states().await?.remove(name);
    let needs_rebuild = stored.as_ref().is_some_and(|s| s.needs_rebuild);
    let state = match stored.map(|s| s.state) {
        Some(s) => FleetState::App(s),
        None if app.is_candidate() => FleetState::App(AppState::Pending),
        None => FleetState::NotCandidate,
    }
    .to_string();
    let ep = servers.role(&rec.service.server, &rec.service.user)?;
    let password = if reveal {
        ep.password.expose().to_string()
    } else {
        "****".into()
    };
    let view = AppView {
        name: app.name.clone(),
        region: app.region.clone(),
        environment: app.environment.to_string(),
        libpq: app.client.to_string(),
        client: app.client.label(),
        state,
        paused: rec.paused,
        needs_rebuild,
        database_url: format!(
            "postgres://{}:{password}@{}:{}/{}",
            ep.user, ep.host, ep.port, rec.service.database
        ),
        service: rec.service.clone(),
        url: rec.url.clone(),
        latest_run: store.latest_run_of(name).await?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!(
            "{} ({}, {}, {})",
            view.name, view.region, view.environment, view.client
        );
        println!(
            "  state        {}{}",
            view.state,
            if view.paused { " ⏸ paused" } else { "" }
        );
        println!(
            "  service      {} ({} on server {})",
            view.service.id, view.service.service, view.service.server
        );
        println!("  DATABASE_URL {}", view.database_url);
        if let Some(url) = &view.url {
            println!("  url          {url}");
        }
        if view.needs_rebuild {
            println!(
                "  ⚠ image      rebuild it: {} cannot do SCRAM, so its NEW role is md5-hashed",
                view.client
            );
        }
        if let Some(r) = view.latest_run {
            println!("  latest run   {r}");
        }
    }
    Ok(exit::OK)
}

pub async fn backups(ctx: &Context, json: bool) -> Result<i32> {
    let rows = crate::ops::backups::list(ctx).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!("no backups yet");
    }
    for l in rows {
        let b = &l.row;
        let disk = match l.disk_bytes {
            Some(n) => mb(n),
            None => "missing".to_string(),
        };
        let dumped = match (b.dump_bytes, &b.compressed_at) {
            (Some(d), Some(_)) => format!(" (gzipped; pg_dump wrote {})", mb(d as u64)),
            _ => String::new(),
        };
        println!(
            "{:<4} {:<16} {:<18} {:>10}{dumped}  taken {}  expires {}  sha256 {}…\n     {}\n     {}  [{}]",
            b.id,
            b.app,
            b.database,
            disk,
            b.created_at,
            b.expires_at.as_deref().unwrap_or("never"),
            &b.sha256[..12.min(b.sha256.len())],
            b.path,
            b.notes,
            l.retention,
        );
    }
    Ok(exit::OK)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub async fn sweep(ctx: &Context, yes: bool, json: bool) -> Result<i32> {
    let swept = crate::ops::backups::sweep(ctx, yes).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&swept)?);
        return Ok(exit::OK);
    }
    let total: u64 = swept.iter().map(|s| s.bytes).sum();
    for s in &swept {
        println!(
            "{} backup {} of {} (expired {}): {}, {}",
            if s.deleted { "deleted" } else { "would delete" },
            s.id,
            s.app,
            s.expires_at.as_deref().unwrap_or("?"),
            mb(s.bytes),
            s.path
        );
    }
    match (swept.is_empty(), yes) {
        (true, _) => println!("no expired backup to delete"),
        (false, true) => println!("{} backup(s) deleted, {} freed", swept.len(), mb(total)),
        (false, false) => println!(
            "{} backup(s), {} — dry run: `pgshift backups sweep --yes` deletes them",
            swept.len(),
            mb(total)
        ),
    }
    Ok(exit::OK)
}

pub async fn failures(ctx: &Context, json: bool) -> Result<i32> {
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let rows = store.failures(true).await?;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|f| {
                serde_json::json!({
                    "id": f.id, "app": f.app, "region": f.region, "step": f.step, "class": f.class, "run_id": f.run_id,
                    "matched": serde_json::from_str::<serde_json::Value>(&f.matched).unwrap_or_default(),
                    "explanation": f.explanation,
                    "remediations": serde_json::from_str::<serde_json::Value>(&f.remediations).unwrap_or_default(),
                    "created_at": f.created_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        println!("no open failures");
    }
    for f in rows {
        let matched: Vec<crate::diagnose::Matched> =
            serde_json::from_str(&f.matched).unwrap_or_default();
        println!(
            "✗ {} ({}) {} failed — {}: {}",
            f.app,
            f.region,
            f.step.as_deref().unwrap_or("?"),
            f.class,
            f.explanation
        );
        if let Some(m) = matched.first() {
            println!("    ▶ {}", m.line);
        }
        let rem: Vec<serde_json::Value> = serde_json::from_str(&f.remediations).unwrap_or_default();
        for r in rem {
            println!(
                "    remedy {}: {}",
                r["id"].as_str().unwrap_or(""),
                r["description"].as_str().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}
