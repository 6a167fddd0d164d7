//! `pgshift region pause|resume|stop R` and `pgshift cancel`: requests to the fleet run in
//! progress, from another shell or the console. They go through the store, which the run
//! reads twice a second; nothing here touches an app.

use color_eyre::eyre::Result;

use super::{Context, RegionAction, ensure_writable};
use crate::error::{UserError, exit};
use crate::store::Store;

/// The store, once it is known a fleet run is in progress.
async fn running(ctx: &Context) -> Result<Store> {
    let store = Store::open(&ctx.cfg.store_url()).await?;
    if store.running_fleet_runs().await?.is_empty() {
        return Err(
            UserError::new("no fleet run is in progress (`pgshift run` starts one)").into(),
        );
    }
    Ok(store)
}

pub async fn region(ctx: &Context, action: RegionAction) -> Result<i32> {
    let (region, what) = match &action {
        RegionAction::Pause { region } => (region, "pause"),
        RegionAction::Resume { region } => (region, "resume"),
        RegionAction::Stop { region } => (region, "stop"),
    };
    ensure_writable(ctx, &format!("{what} region {region}"))?;
    let inv = ctx.load_inventory()?;
    inv.require_region(region)?;
    let store = running(ctx).await?;
    match what {
        "resume" => {
            let current = store.controls().await?;
            if current.get(region.as_str()).map(String::as_str) == Some("stop") {
                return Err(UserError::new(format!(
                    "{region} was stopped for this run; its remaining apps go in the next `pgshift run`"
                ))
                .into());
            }
            store.clear_controls(Some(region)).await?;
            eprintln!("{region}: resumed");
        }
        "pause" => {
            store.set_control(region, "pause").await?;
            eprintln!(
                "{region}: pausing — current migrations finish, none start until `pgshift region resume {region}`"
            );
        }
        _ => {
            store.set_control(region, "stop").await?;
            eprintln!(
                "{region}: stopping — current migrations finish, the rest are left for another run"
            );
        }
    }
    Ok(exit::OK)
}

pub async fn cancel(ctx: &Context, confirm: bool) -> Result<i32> {
    ensure_writable(ctx, "cancel the fleet run")?;
    if !confirm {
        return Err(UserError::new(
            "cancelling stops every current migration and rolls its app back to OLD: add --confirm",
        )
        .into());
    }
    let store = running(ctx).await?;
    store.set_control("*", "cancel").await?;
    eprintln!(
        "fleet run: cancel requested — current steps stop, their apps roll back to OLD, unpaused"
    );
    Ok(exit::OK)
}
