//! `pgshift preflight [--app A] [--json]`: predicted failures per app, before the window.

use std::sync::Arc;

use color_eyre::eyre::Result;

use super::Context;
use crate::engine::servers::Servers;
use crate::error::exit;
use crate::lab::Lab;
use crate::preflight;
use crate::runbook::Runbook;

pub async fn run(ctx: &Context, app: Option<&str>, json: bool) -> Result<i32> {
    let inv = Arc::new(ctx.load_inventory()?);
    let runbook = Runbook::builtin();
    let servers = Servers::new(inv.clone(), Lab::open(&ctx.cfg).ok().map(Arc::new));
    let apps: Vec<_> = match app {
        Some(name) => vec![inv.require_app(name)?],
        None => inv.apps.iter().filter(|a| runbook.applies_to(a)).collect(),
    };
    let mut reports = Vec::new();
    for a in apps {
        // One app's trouble (its OLD unreachable, its database gone) is that app's finding,
        // not the end of everyone's preflight.
        let report = match preflight::check(&servers, &runbook, a).await {
            Ok(r) => r,
            Err(e) => preflight::AppPreflight {
                app: a.name.clone(),
                region: a.region.clone(),
                libpq: a.client.to_string(),
                risks: vec![preflight::Risk {
                    class: crate::diagnose::diagnose(&[format!("{e:#}")]).class,
                    detail: format!("preflight could not check it: {e:#}"),
                    remediation: None,
                }],
            },
        };
        reports.push(report);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(exit::OK);
    }
    let at_risk = reports.iter().filter(|r| !r.risks.is_empty()).count();
    for r in &reports {
        if r.risks.is_empty() {
            println!("✓ {:<18} {:<7} no known risk", r.app, r.region);
            continue;
        }
        for k in &r.risks {
            println!(
                "⚠ {:<18} {:<7} {:<22} {}{}",
                r.app,
                r.region,
                k.class,
                k.detail,
                k.remediation
                    .map(|x| format!(" → remedy {x}"))
                    .unwrap_or_else(|| " → needs a human before the window".into())
            );
        }
    }
    println!(
        "{} apps checked, {at_risk} at risk; `pgshift migrate --app A --apply-preflight` applies the remedies up front",
        reports.len()
    );
    Ok(exit::OK)
}
