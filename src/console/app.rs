//! The console's event loop: terminal input, a slow refresh of the store's app states, and
//! drawing only when the model changed.

use std::time::Duration;

use color_eyre::eyre::Result;
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;

use super::action::Action;
use super::keymap;
use super::model::Model;
use super::theme::Theme;
use super::update::update;
use super::views;
use crate::store::Store;

pub async fn run(mut m: Model, theme: Theme, store: Store) -> Result<()> {
    // ratatui::init installs a panic hook that restores the terminal before the report.
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut m, &theme, &store).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    m: &mut Model,
    theme: &Theme,
    store: &Store,
) -> Result<()> {
    let mut input = EventStream::new();
    let mut refresh = tokio::time::interval(Duration::from_millis(2000));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    while !m.quit {
        if dirty {
            terminal.draw(|f| views::draw(f, m, theme))?;
            dirty = false;
        }
        let action = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => keymap::action_for(m.mode, k),
                Some(Ok(Event::Resize(_, _))) => Some(Action::Resize),
                Some(Ok(_)) => None,
                Some(Err(e)) => return Err(e.into()),
                None => Some(Action::Quit),
            },
            _ = refresh.tick() => match store.app_states().await {
                Ok(states) => Some(Action::States(states)),
                Err(e) => {
                    tracing::warn!(error = %e, "refreshing app states failed");
                    None
                }
            },
        };
        if let Some(a) = action {
            dirty |= update(m, a);
        }
    }
    Ok(())
}
