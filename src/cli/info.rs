//! `pgshift info [--json]`: where pgshift reads and writes.

use color_eyre::eyre::Result;
use serde::Serialize;

use super::Context;
use crate::error::exit;
use crate::store::mask_url;

#[derive(Serialize)]
struct Info {
    version: &'static str,
    config: Option<String>,
    inventory: String,
    state_dir: String,
    store: String,
    log_dir: String,
    theme: String,
    theme_dir: String,
    lab_pg13_bin: String,
    lab_pg15_bin: String,
}

pub async fn run(ctx: &Context, json: bool) -> Result<i32> {
    let cfg = &ctx.cfg;
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        config: ctx.config_file.as_ref().map(|p| p.display().to_string()),
        inventory: ctx.inventory.describe(),
        state_dir: cfg.state_dir().display().to_string(),
        store: mask_url(&cfg.store_url()),
        log_dir: cfg.log_dir().display().to_string(),
        theme: cfg.theme.clone(),
        theme_dir: cfg.theme_dir().display().to_string(),
        lab_pg13_bin: cfg.pg13_bin().display().to_string(),
        lab_pg15_bin: cfg.lab.pg15_bin.display().to_string(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        let config = info
            .config
            .clone()
            .unwrap_or_else(|| "(built-in defaults)".into());
        for (k, v) in [
            ("version", info.version.to_string()),
            ("config", config),
            ("inventory", info.inventory),
            ("state dir", info.state_dir),
            ("store", info.store),
            ("logs", info.log_dir),
            (
                "theme",
                format!("{} (user themes in {})", info.theme, info.theme_dir),
            ),
            ("pg13 bin", info.lab_pg13_bin),
            ("pg15 bin", info.lab_pg15_bin),
        ] {
            println!("{k:<10} {v}");
        }
    }
    Ok(exit::OK)
}
