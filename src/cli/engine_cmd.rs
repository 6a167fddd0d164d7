//! `pgshift migrate --app A`, `retry`, `rollback`, `deprovision`, `resume`: the engine,
//! headless, with a progress line per step and its logs streamed (or one JSON object per
//! event).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use color_eyre::eyre::Result;

use super::printer::{cancel_on_ctrl_c, print_report, spawn_printer};
use super::{Context, ensure_writable};
use crate::engine::{Event, Outcome};
use crate::error::exit;
use crate::ops::{self, Drive, Say, World};

pub enum What {
    App(ops::app::Verb),
    Resume,
}

pub async fn run(
    ctx: &Context,
    what: What,
    json: bool,
    runbook: Option<&std::path::Path>,
) -> Result<i32> {
    ensure_writable(ctx, "migrate, resume or roll back")?;
    let s = ctx.session()?;
    let runbook = ctx.runbook(runbook)?;
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let cancel = CancellationToken::new();
    let drive = Drive {
        events: tx,
        cancel: cancel.clone(),
    };
    let say = Say { quiet: json };
    let verb = match what {
        What::Resume => {
            // A sim world's resume shows progress and outcomes, not every step's log.
            let printer = spawn_printer(rx, json, s.world == World::Sim);
            cancel_on_ctrl_c(&cancel);
            let result = ops::fleet::resume(&s, drive, say).await;
            let _ = printer.await;
            let r = result?;
            for f in &r.fleets {
                print_report(f, json);
            }
            if r.apps.is_empty() && r.fleets.is_empty() && !json {
                eprintln!("nothing to resume");
            }
            let failed = r.fleets.iter().any(|f| f.failed > 0)
                || r.apps
                    .iter()
                    .any(|(_, o)| !matches!(o, Outcome::Migrated | Outcome::Cancelled));
            return Ok(if failed {
                exit::MIGRATION_FAILED
            } else {
                exit::OK
            });
        }
        What::App(verb) => verb,
    };
    let printer = spawn_printer(rx, json, false);
    cancel_on_ctrl_c(&cancel);
    let result = ops::app::run(&s, &verb, runbook, drive, say).await;
    let _ = printer.await;
    let outcome = result?;
    let failed = !matches!(outcome, Outcome::Migrated | Outcome::Cancelled)
        || (matches!(
            verb,
            ops::app::Verb::Migrate {
                preflight: false,
                ..
            }
        ) && outcome == Outcome::Cancelled);
    if let ops::app::Verb::Rollback { app } = &verb
        && !json
    {
        match outcome {
            Outcome::Cancelled => eprintln!("{app} is back on OLD and serving"),
            _ => eprintln!("{app}: rollback did not complete; see pgshift app show {app}"),
        }
    }
    Ok(if failed {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
}
