//! `pgshift migrate --app A`, `resume`, `rollback --app A`: the engine, headless, with a
//! progress line per step and its logs streamed (or one JSON object per event).

use std::io::Write;
use std::sync::Arc;

use color_eyre::eyre::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Context, ensure_writable};
use crate::engine::databases::RealDatabases;
use crate::engine::servers::Servers;
use crate::engine::{Engine, Event, Outcome};
use crate::error::exit;
use crate::lab::Lab;
use crate::platform::exec::ExecPlatform;
use crate::runbook::Runbook;
use crate::store::Store;

pub enum What {
    Migrate(String),
    MigratePreflighted(String),
    Resume,
    Rollback(String),
    Retry(String, Option<String>),
    Deprovision(String, bool),
}

pub async fn run(
    ctx: &Context,
    what: What,
    json: bool,
    runbook: Option<&std::path::Path>,
) -> Result<i32> {
    ensure_writable(ctx, "migrate, resume or roll back")?;
    let inv = Arc::new(ctx.load_inventory()?);
    if matches!(what, What::Resume) && inv.servers.iter().all(|s| s.sim) {
        return super::fleet_cmd::resume_sim(ctx, json).await;
    }
    let runbook = match runbook {
        Some(p) => Runbook::load(p)?,
        None => Runbook::builtin(),
    };
    let lab = Lab::open(&ctx.cfg).ok().map(Arc::new);
    let servers = Servers::new(inv.clone(), lab).with_state_dir(&ctx.cfg.state_dir());
    let store = Store::open(&ctx.cfg.store_url()).await?;
    store.sync_inventory(&inv).await?;
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let cancel = CancellationToken::new();
    let state = ctx.cfg.state_dir();
    let db = RealDatabases {
        servers: servers.clone(),
        pg_bin: ctx.cfg.lab.pg15_bin.clone(),
        state_dir: state.clone(),
    };
    let platform = crate::platform::real(&inv, servers.clone(), &state)?;
    let probing = if ctx.probe {
        let apps: Vec<&crate::inventory::App> = match &what {
            What::Migrate(a)
            | What::MigratePreflighted(a)
            | What::Rollback(a)
            | What::Retry(a, _) => vec![inv.require_app(a)?],
            What::Resume => inv.apps.iter().filter(|a| a.is_candidate()).collect(),
            What::Deprovision(..) => Vec::new(),
        };
        super::probing::Probing::start(&platform, &apps, &store).await?
    } else {
        None
    };
    let probe_store = store.clone();
    let engine = Engine::new(
        store,
        inv,
        runbook,
        servers,
        platform,
        db,
        state,
        tx,
        cancel.clone(),
    );
    let printer = spawn_printer(rx, json, false);
    cancel_on_ctrl_c(&cancel);
    let mut resumed_fleets = Vec::new();
    let result = match &what {
        What::Migrate(app) => engine.migrate(app).await.map(|o| vec![(app.clone(), o)]),
        What::MigratePreflighted(app) => migrate_preflighted(&engine, app, json)
            .await
            .map(|o| vec![(app.clone(), o)]),
        What::Resume => match engine.resume().await {
            Ok(apps) => super::fleet_cmd::continue_fleet_runs(&engine, json)
                .await
                .map(|fleets| {
                    for f in &fleets {
                        super::fleet_cmd::print_report(f, json);
                    }
                    resumed_fleets = fleets;
                    apps
                }),
            Err(e) => Err(e),
        },
        What::Rollback(app) => engine
            .rollback_app(app)
            .await
            .map(|o| vec![(app.clone(), o)]),
        What::Deprovision(app, confirm) => engine.deprovision(app, *confirm).await.map(|msg| {
            eprintln!("{app}: {msg}");
            vec![(app.clone(), Outcome::Migrated)]
        }),
        What::Retry(app, remediation) => {
            engine
                .retry(app, remediation.as_deref())
                .await
                .map(|(r, o)| {
                    if !json {
                        eprintln!("{app}: retried with remediation {r}");
                    }
                    vec![(app.clone(), o)]
                })
        }
    };
    engine.shutdown().await;
    let _ = printer.await;
    if let Some(p) = probing {
        let tallies = p.finish().await?;
        super::probing::print(&probe_store, &tallies, json).await?;
    }
    let outcomes = result?;
    if matches!(what, What::Resume) && outcomes.is_empty() && resumed_fleets.is_empty() && !json {
        eprintln!("nothing to resume");
    }
    let failed = outcomes
        .iter()
        .any(|(_, o)| !matches!(o, Outcome::Migrated | Outcome::Cancelled))
        || resumed_fleets.iter().any(|f| f.failed > 0)
        || (matches!(what, What::Migrate(_))
            && outcomes.iter().any(|(_, o)| *o == Outcome::Cancelled));
    if let What::Rollback(app) = &what
        && !json
    {
        match outcomes.first().map(|(_, o)| o) {
            Some(Outcome::Cancelled) => eprintln!("{app} is back on OLD and serving"),
            _ => eprintln!("{app}: rollback did not complete; see pgshift app show {app}"),
        }
    }
    Ok(if failed {
        exit::MIGRATION_FAILED
    } else {
        exit::OK
    })
}

/// Print engine events as they come (`quiet`: only progress, failures and outcomes).
pub fn spawn_printer(
    mut rx: mpsc::UnboundedReceiver<Event>,
    json: bool,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Some(ev) = rx.recv().await {
            if quiet
                && matches!(
                    ev,
                    Event::Log { .. }
                        | Event::StepStarted { .. }
                        | Event::StepFinished { .. }
                        | Event::RunStarted { .. }
                )
            {
                continue;
            }
            print_event(&mut out, &ev, json);
        }
    })
}

/// ctrl-c: stop the current steps, roll back, unpause — never leave an app half-done.
pub fn cancel_on_ctrl_c(cancel: &CancellationToken) {
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("pgshift: cancelling: stopping the current steps, then rolling back");
            c.cancel();
        }
    });
}

async fn migrate_preflighted(
    engine: &Engine<ExecPlatform, RealDatabases>,
    name: &str,
    json: bool,
) -> Result<Outcome> {
    let app = engine.inv.require_app(name)?.clone();
    let report = crate::preflight::check(&engine.servers, &engine.runbook, &app).await?;
    if !json {
        for r in &report.risks {
            eprintln!(
                "⚠ {name}: {} — {}{}",
                r.class,
                r.detail,
                r.remediation
                    .map(|x| format!(" → applying {x}"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(blocker) = report.risks.iter().find(|r| r.remediation.is_none()) {
        return Err(crate::error::UserError::new(format!(
            "{name}: preflight found {} with no automatic remediation ({}); fix it before the window",
            blocker.class, blocker.detail
        ))
        .into());
    }
    engine
        .migrate_with(name, report.remediations().as_deref())
        .await
}

fn print_event(out: &mut impl Write, ev: &Event, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(ev) {
            let _ = writeln!(out, "{s}");
        }
        let _ = out.flush();
        return;
    }
    let _ = match ev {
        Event::RunStarted {
            run_id,
            app,
            steps,
            resumed,
        } => writeln!(
            out,
            "▶ {app}: run {run_id}{}, {} steps: {}",
            if *resumed { " (resumed)" } else { "" },
            steps.len(),
            steps.join(" → ")
        ),
        Event::StepStarted {
            app,
            step,
            seq,
            total,
            estimated_seconds,
            ..
        } => {
            writeln!(
                out,
                "⟳ {app} [{seq:>2}/{total}] {step} (est. {estimated_seconds:.0} s)"
            )
        }
        Event::Log { line, .. } => writeln!(out, "    │ {line}"),
        Event::StepFinished {
            app,
            step,
            state,
            seconds,
        } => writeln!(
            out,
            "{} {app} {step} {state} in {seconds:.1} s",
            if state == "done" { "✓" } else { "✗" }
        ),
        Event::Failure {
            app,
            step,
            class,
            line,
            remediations,
        } => writeln!(
            out,
            "✗ {app}: {step} failed — {class}\n    ▶ {line}\n    remediations: {}",
            remediations.join(", ")
        ),
        Event::RolledBack {
            app,
            service,
            detail,
        } => writeln!(out, "↺ {app}: {detail} ({service})"),
        Event::Done {
            app,
            outcome,
            run_id,
        } => writeln!(out, "■ {app}: {outcome} (run {run_id})"),
        Event::Progress {
            region,
            done,
            total,
            eta_seconds,
            overall_eta_seconds,
        } => {
            let hms = crate::cli::fleet_cmd::hms;
            match eta_seconds {
                Some(s) if done < total => writeln!(
                    out,
                    "▤ {region}: {done}/{total} handled, about {} left (whole run: {})",
                    hms(*s),
                    hms(*overall_eta_seconds)
                ),
                _ => writeln!(
                    out,
                    "▤ {region}: {done}/{total} handled (whole run: about {} left)",
                    hms(*overall_eta_seconds)
                ),
            }
        }
        Event::Control { region, action } => match (region.as_str(), action.as_str()) {
            ("*", a) => writeln!(out, "⏹ fleet run: {a} requested"),
            (r, "pause") => writeln!(
                out,
                "⏸ {r}: paused — current migrations finish, none start until `pgshift region resume {r}`"
            ),
            (r, "stop") => writeln!(
                out,
                "⏹ {r}: stopping — current migrations finish, the rest are left for another run"
            ),
            (r, a) => writeln!(out, "▶ {r}: {a}"),
        },
    };
    let _ = out.flush();
}
