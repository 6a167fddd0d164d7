//! `pgshift inventory [--json]`: the fleet as pgshift reads it.

use color_eyre::eyre::Result;
use serde::Serialize;

use super::Context;
use crate::error::exit;
use crate::inventory::{App, ServiceInstance};

#[derive(Serialize)]
struct AppRow<'a> {
    name: &'a str,
    region: &'a str,
    environment: String,
    customer: &'a str,
    libpq: String,
    /// libpq < 10 cannot authenticate with SCRAM-SHA-256.
    scram_capable: bool,
    candidate: bool,
    services: &'a [ServiceInstance],
}

pub fn run(ctx: &Context, json: bool) -> Result<i32> {
    let inv = ctx.load_inventory()?;
    if json {
        let rows: Vec<AppRow> = inv
            .apps
            .iter()
            .map(|a| AppRow {
                name: &a.name,
                region: &a.region,
                environment: a.environment.to_string(),
                customer: &a.customer,
                libpq: a.client.to_string(),
                scram_capable: a.client.supports_scram(),
                candidate: a.is_candidate(),
                services: &a.services,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    for r in &inv.regions {
        let apps: Vec<&App> = inv.apps_in(&r.name).collect();
        let candidates = apps.iter().filter(|a| a.is_candidate()).count();
        println!(
            "{}  {} apps, {} candidates, concurrency {}",
            r.name,
            apps.len(),
            candidates,
            r.concurrency
        );
        for a in apps {
            let services: Vec<String> = a
                .services
                .iter()
                .map(|s| {
                    format!(
                        "{}{}",
                        s.service,
                        if s.provisioned {
                            ""
                        } else {
                            " (unprovisioned)"
                        }
                    )
                })
                .collect();
            println!(
                "  {} {:<18} {:<6} {:<12} {}",
                if a.is_candidate() { "•" } else { "–" },
                a.name,
                a.environment,
                a.client.label()
                    + if a.client.supports_scram() {
                        ""
                    } else {
                        " ⚠"
                    },
                services.join(", ")
            );
        }
    }
    Ok(exit::OK)
}
