//! The terminal console: `update(model, action)` is pure, views are functions of the model,
//! and the loop draws only when something changed.

pub mod action;
mod app;
pub mod data;
pub mod effect;
mod exec;
pub mod keymap;
pub mod load;
pub mod logbuf;
pub mod model;
pub mod palette;
pub mod plan_edit;
pub mod theme;
pub mod update;
pub mod views;

use color_eyre::eyre::Result;

use crate::error::exit;
use crate::ops::Context;
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
    // OLD's sizes from the lab's servers, if they answer quickly: the table shows them.
    let session = crate::ops::Session {
        ctx,
        world: crate::ops::World::of(&inv),
        inv: std::sync::Arc::new(inv.clone()),
    };
    if let Ok(sizes) = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        crate::ops::sizes::of_fleet(&session),
    )
    .await
    {
        m.set_sizes(&sizes);
    }
    let env = exec::ChildEnv {
        config_file: ctx.config_file.clone(),
        inventory: match &ctx.inventory {
            crate::inventory::Source::File(p) => Some(p.clone()),
            _ => None,
        },
        store_url: url,
    };
    let io = app::Io {
        store,
        env,
        state_dir: ctx.cfg.state_dir(),
    };
    app::run(m, theme, io).await?;
    Ok(exit::OK)
}
