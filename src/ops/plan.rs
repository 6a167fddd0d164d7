//! `plan` and `plan edit`: a night for the whole fleet, saved in the store.

use std::collections::HashMap;

use color_eyre::eyre::Result;

use super::{Context, Session, sizes};
use crate::error::UserError;
use crate::plan::edit::{Edit, Estimates};
use crate::plan::{Plan, PlanParams};
use crate::runbook::Runbook;
use crate::store::Store;

/// Plan the night and save it (not under `--readonly`: id 0). Returns the plan and its id.
pub async fn plan(
    s: &Session<'_>,
    runbook: &Runbook,
    params: &PlanParams,
    exclude: &[String],
) -> Result<(Plan, i64)> {
    let inv = &s.inv;
    for r in &params.regions {
        inv.require_region(r)?;
    }
    for a in exclude {
        if inv.app(a).is_none() {
            return Err(UserError::new(format!("unknown app \"{a}\" to exclude")).into());
        }
    }
    let store = Store::open(&s.ctx.cfg.store_url()).await?;
    let sizes = sizes::of_fleet(s).await;
    let t = sizes::throughput(&store).await?;
    let plan = crate::plan::plan(inv, runbook, params, &sizes, &t, exclude);
    let id = if s.ctx.readonly {
        0
    } else {
        store
            .save_plan(
                &serde_json::to_string(params)?,
                &serde_json::to_string(&plan)?,
            )
            .await?
    };
    Ok((plan, id))
}

/// What `plan edit` made: the new plan, its id, and the plan it was edited from.
pub struct Edited {
    pub plan: Plan,
    pub id: i64,
    pub from: i64,
}

/// Apply the edits to the latest plan and save the result as a new plan (the old one stays
/// in the store, as it was).
pub async fn edit(ctx: &Context, runbook: &Runbook, edits: &[Edit]) -> Result<Edited> {
    if edits.is_empty() {
        return Err(UserError::new(
            "plan edit: nothing to do (--move APP --to K, --exclude APP, or --region R --batch K --to L)",
        )
        .into());
    }
    let s = &ctx.session()?;
    let inv = &s.inv;
    let store = Store::open(&s.ctx.cfg.store_url()).await?;
    let Some((from, params, body)) = store.latest_plan().await? else {
        return Err(UserError::new("no plan yet: `pgshift plan` makes one").into());
    };
    let mut plan: Plan = serde_json::from_str(&body)?;
    let sizes = sizes::of_fleet(s).await;
    let t = sizes::throughput(&store).await?;
    let app_seconds: HashMap<String, f64> = plan
        .apps()
        .map(|a| {
            let bytes = sizes.get(a).copied().unwrap_or(10_000_000);
            (a.to_string(), crate::plan::app_seconds(runbook, bytes, &t))
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
    Ok(Edited { plan, id, from })
}
