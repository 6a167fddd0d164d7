//! Preflight: predicted failures per app before the window, and the remediations a run
//! applies up front (`--apply-preflight`).

use std::collections::HashMap;

use color_eyre::eyre::Result;

use super::{Say, Session, World};
use crate::diagnose::RemediationId;
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::platform::servers::Servers;
use crate::preflight::{self, AppPreflight, Risk};
use crate::runbook::Runbook;

/// `pgshift preflight [--app A]`: one report per app (every candidate of the runbook).
pub async fn check(
    s: &Session<'_>,
    runbook: &Runbook,
    app: Option<&str>,
) -> Result<Vec<AppPreflight>> {
    let servers = s.servers();
    let apps: Vec<_> = match app {
        Some(name) => vec![s.inv.require_app(name)?],
        None => s
            .inv
            .apps
            .iter()
            .filter(|a| runbook.applies_to(a))
            .collect(),
    };
    let mut reports = Vec::new();
    for a in apps {
        // One app's trouble (its OLD unreachable, its database gone) is that app's finding,
        // not the end of everyone's preflight.
        let report = match preflight::check(&servers, runbook, a).await {
            Ok(r) => r,
            Err(e) => AppPreflight {
                app: a.name.clone(),
                region: a.region.clone(),
                libpq: a.client.to_string(),
                risks: vec![Risk {
                    class: crate::diagnose::diagnose(&[format!("{e:#}")]).class,
                    detail: format!("preflight could not check it: {e:#}"),
                    remediation: None,
                }],
                strategy: None,
            },
        };
        reports.push(report);
    }
    Ok(reports)
}

/// App → remediations (comma-separated) for every app of a plan, as its world predicts them:
/// the sim world's own rules, or preflight against the real servers.
pub async fn plan_remediations(
    world: World,
    inv: &Inventory,
    servers: &Servers,
    runbook: &Runbook,
    plan: &Plan,
    say: Say,
) -> Result<HashMap<String, String>> {
    if world == World::Sim {
        return Ok(sim_remediations(inv, runbook));
    }
    let mut remediations = HashMap::new();
    for name in plan.apps() {
        let Some(app) = inv.app(name) else { continue };
        let r = preflight::check(servers, runbook, app).await?;
        if let Some(rem) = r.remediations() {
            say.note(format!("preflight: {name} → {rem}"));
            remediations.insert(name.to_string(), rem);
        }
    }
    Ok(remediations)
}

/// In the sim world preflight's probes are the world's own rules.
fn sim_remediations(inv: &Inventory, runbook: &Runbook) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for a in inv.apps.iter().filter(|a| runbook.applies_to(a)) {
        let mut r = Vec::new();
        if !a.client.supports_scram() {
            r.push(RemediationId::Md5Password);
        }
        if a.services
            .iter()
            .any(|s| s.seed.as_ref().is_some_and(|x| x.btree_straddle))
        {
            r.push(RemediationId::PglzRestore);
        }
        if let Some(list) = RemediationId::join_list(&r) {
            out.insert(a.name.clone(), list);
        }
    }
    out
}
