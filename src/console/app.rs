//! The console's event loop: one `select!` over terminal input, a bounded channel (children's
//! events and store reads, drained in batches) and a poll tick (4 Hz while something runs,
//! every 2 s otherwise). `update` is pure; its effects are run here. Draws only when dirty.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use color_eyre::eyre::Result;
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::action::Action;
use super::data::ChildMsg;
use super::effect::{Command, Effect};
use super::exec::{self, ChildEnv};
use super::keymap;
use super::load;
use super::model::{Model, View};
use super::theme::Theme;
use super::update::update;
use super::views;
use crate::store::Store;

/// What the loop needs to act on effects.
pub struct Io {
    pub store: Store,
    pub env: ChildEnv,
    /// Saved logs go to `<state>/console/`.
    pub state_dir: PathBuf,
}

/// The channel's bound: children and loaders wait when the UI is behind, never the reverse.
const CHANNEL: usize = 1024;

pub async fn run(mut m: Model, theme: Theme, io: Io) -> Result<()> {
    // ratatui::init installs a panic hook that restores the terminal before the report.
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut m, &theme, &io).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    m: &mut Model,
    theme: &Theme,
    io: &Io,
) -> Result<()> {
    let mut input = EventStream::new();
    let (tx, mut rx) = mpsc::channel::<Action>(CHANNEL);
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let polling = Arc::new(AtomicBool::new(false));
    let mut ticks: u64 = 0;
    let mut batch: Vec<Action> = Vec::with_capacity(256);
    let mut dirty = true;
    while !m.quit {
        if dirty {
            // The App view's log pane height: header, info line, borders, message and key lines.
            m.page = (terminal.size()?.height as usize).saturating_sub(6).max(3);
            terminal.draw(|f| views::draw(f, m, theme))?;
            dirty = false;
        }
        tokio::select! {
            biased;
            ev = input.next() => {
                let action = match ev {
                    Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => keymap::action_for(m.mode, k),
                    Some(Ok(Event::Resize(_, _))) => Some(Action::Resize),
                    Some(Ok(_)) => None,
                    Some(Err(e)) => return Err(e.into()),
                    None => Some(Action::Quit),
                };
                if let Some(a) = action {
                    dirty |= update(m, a);
                }
            }
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                for a in batch.drain(..) {
                    dirty |= update(m, a);
                }
            }
            _ = poll.tick() => {
                ticks += 1;
                // The watched app's log at 4 Hz while anything runs; the fleet-wide reads
                // (every app's state, the night's spans) at 1 Hz then, every 2 s otherwise:
                // at 7,000 apps they are the expensive ones, and the engine shares the store.
                let busy = m.busy();
                let wide = ticks.is_multiple_of(if busy { 4 } else { 8 });
                let due = wide || (busy && matches!(m.view, View::App | View::Run));
                if due && !polling.swap(true, Ordering::AcqRel) {
                    // Every app's passes (a scan of all steps) every 5 s.
                    let spans = ticks.is_multiple_of(20);
                    refresh(m, io, tx.clone(), polling.clone(), wide, spans);
                }
            }
        }
        for e in std::mem::take(&mut m.effects) {
            if e == Effect::Refresh {
                // Skipped when a read is under way: it returns fresh enough data.
                if !polling.swap(true, Ordering::AcqRel) {
                    refresh(m, io, tx.clone(), polling.clone(), true, true);
                }
                continue;
            }
            run_effect(e, m, io, &tx);
        }
    }
    Ok(())
}

/// The periodic read: app states (`wide`), and what the current view shows.
fn refresh(
    m: &Model,
    io: &Io,
    tx: mpsc::Sender<Action>,
    polling: Arc<AtomicBool>,
    wide: bool,
    spans: bool,
) {
    let store = io.store.clone();
    let view = m.view;
    let watch = m
        .watch
        .as_ref()
        .map(|w| (w.name.clone(), w.run_id, w.log.last_id));
    tokio::spawn(async move {
        let mut out = Vec::new();
        if wide {
            match store.app_states().await {
                Ok(s) => out.push(Ok(Action::States(s))),
                Err(e) => out.push(Err(e)),
            }
        }
        if let (View::App | View::Run, Some((app, run, after))) = (view, watch) {
            out.push(load::app(&store, &app, run, after).await);
        }
        out.push(match view {
            View::Failures if wide => load::failures(&store).await,
            View::Run | View::Plan | View::Report if wide => load::night(&store, spans).await,
            _ => Ok(Action::Resize),
        });
        for a in out {
            match a {
                Ok(Action::Resize) => {}
                Ok(a) => {
                    let _ = tx.send(a).await;
                }
                Err(e) => tracing::warn!(error = %e, "console refresh failed"),
            }
        }
        polling.store(false, Ordering::Release);
    });
}

/// Run a command the console does itself (a store write, no child process) and report it
/// back as a child that exited, the way the child commands report.
fn in_process<T: Send + 'static>(
    cmd: Command,
    tx: &mpsc::Sender<Action>,
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let r = work.await;
        let _ = tx
            .send(Action::Child(ChildMsg::Exited {
                cmd,
                ok: r.is_ok(),
                last_line: r.err().map(|e| e.to_string()).unwrap_or_default(),
            }))
            .await;
    });
}

fn run_effect(e: Effect, m: &Model, io: &Io, tx: &mpsc::Sender<Action>) {
    let store = io.store.clone();
    let tx2 = tx.clone();
    let load = move |fut: futures::future::BoxFuture<'static, Result<Action>>| {
        tokio::spawn(async move {
            match fut.await {
                Ok(a) => {
                    let _ = tx2.send(a).await;
                }
                Err(e) => tracing::warn!(error = %e, "console read failed"),
            }
        });
    };
    match e {
        Effect::Run(Command::MarkManual { failure_id, app }) => {
            let cmd = Command::MarkManual { failure_id, app };
            in_process(cmd, tx, async move {
                let (journal, _) = crate::store::Journal::spawn(store);
                journal.set_failure_status(failure_id, "manual").await
            });
        }
        Effect::Run(Command::SavePlan { params, plan }) => {
            let body = serde_json::to_string(&*plan);
            let cmd = Command::SavePlan {
                params: params.clone(),
                plan,
            };
            in_process(cmd, tx, async move {
                store.save_plan(&params, &body?).await.map(|_| ())
            });
        }
        Effect::Run(cmd) => exec::spawn(cmd, &io.env, tx.clone()),
        Effect::WatchApp(app) => {
            let (run, after) = m
                .watch
                .as_ref()
                .filter(|w| w.name == app)
                .map_or((None, 0), |w| (w.run_id, w.log.last_id));
            load(Box::pin(async move {
                load::app(&store, &app, run, after).await
            }));
        }
        Effect::Refresh => {}
        Effect::Preflight => exec::preflight(&io.env, tx.clone()),
        Effect::LoadFailures => load(Box::pin(async move { load::failures(&store).await })),
        Effect::LoadFailureLog {
            failure_id,
            step_id,
        } => load(Box::pin(async move {
            load::failure_log(&store, failure_id, step_id).await
        })),
        Effect::LoadRun | Effect::LoadPlan | Effect::LoadReport => {
            load(Box::pin(async move { load::night(&store, true).await }))
        }
        Effect::SaveLog { app, lines } => {
            let dir = io.state_dir.join("console");
            let tx = tx.clone();
            tokio::spawn(async move {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let path = dir.join(format!("{app}-{stamp}.log"));
                let r = async {
                    tokio::fs::create_dir_all(&dir).await?;
                    tokio::fs::write(&path, lines.join("\n") + "\n").await
                }
                .await
                .map(|()| path.display().to_string())
                .map_err(|e| format!("cannot save the log to {}: {e}", path.display()));
                let _ = tx.send(Action::Saved(r)).await;
            });
        }
    }
}
