//! The terminal console: `update(model, action)` is pure, views are functions of the model,
//! and the loop draws only when something changed.

pub mod action;
mod app;
pub mod keymap;
pub mod model;
pub mod theme;
pub mod update;
pub mod views;

use color_eyre::eyre::Result;

use crate::cli::Context;
use crate::error::exit;
use crate::store::{Store, mask_url};

/// Open the console on the configured fleet.
pub async fn run(ctx: &Context) -> Result<i32> {
    let inv = ctx.load_inventory()?;
    let theme = if ctx.no_color {
        theme::Theme::plain()
    } else {
        theme::Theme::load(&ctx.cfg.theme, &ctx.cfg.theme_dir())?
    };
    let url = ctx.cfg.store_url();
    let store = Store::open(&url).await?;
    if !ctx.readonly {
        store.sync_inventory(&inv).await?;
    }
    let states = store.app_states().await?;
    let mut m = model::Model::new(&inv, &states, ctx.inventory.describe(), mask_url(&url));
    m.readonly = ctx.readonly;
    app::run(m, theme, store).await?;
    Ok(exit::OK)
}
