//! `pgshift report [--run N] [--format md|json]`: the night's summary, the same model the
//! console's Report view draws (`crate::report`).

use color_eyre::eyre::Result;

use super::Context;
use crate::error::exit;
use crate::store::Store;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
}

pub async fn run(ctx: &Context, run: Option<i64>, format: Format) -> Result<i32> {
    let inv = ctx.load_inventory()?;
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let report = crate::report::load(&store, &inv, run).await?;
    match format {
        Format::Md => print!("{}", report.to_markdown()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(exit::OK)
}
