//! `pgshift preflight [--app A] [--json]`: predicted failures per app, before the window.

use color_eyre::eyre::Result;

use super::Context;
use crate::error::exit;
use crate::ops;

pub async fn run(ctx: &Context, app: Option<&str>, json: bool) -> Result<i32> {
    let s = ctx.session()?;
    let runbook = ctx.runbook(None)?;
    let reports = ops::preflight::check(&s, &runbook, app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(exit::OK);
    }
    let at_risk = reports.iter().filter(|r| !r.risks.is_empty()).count();
    for r in &reports {
        if let Some(n) = &r.strategy {
            println!(
                "→ {:<18} {:<7} strategy {}: {}",
                r.app, r.region, n.strategy, n.why
            );
        }
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
