//! What the CLI prints while the engine works: one line per event (or one JSON object per
//! event), fleet reports, and ctrl-c turned into a cancellation.

use std::io::Write;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::StepState;
use crate::engine::{Event, FleetReport};

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
            if *state == StepState::Done {
                "✓"
            } else {
                "✗"
            }
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
            remediations
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
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
        Event::Interrupted { run_id, app, step } => writeln!(
            out,
            "⏸ {app}: another pgshift took its lease during {step}; stopped here, not rolled back (run {run_id} is the new holder's to resume)"
        ),
        Event::Progress {
            region,
            done,
            total,
            eta_seconds,
            overall_eta_seconds,
        } => match eta_seconds {
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
        },
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

pub(crate) fn print_report(report: &FleetReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "fleet_done", "report": report })
        );
    } else {
        eprintln!(
            "fleet run {}: {} migrated, {} failed {:?}, {} cancelled, {} skipped, {} not started in {:.1} s",
            report.run_id,
            report.migrated,
            report.failed,
            report.failures_by_class,
            report.cancelled,
            report.skipped,
            report.not_started,
            report.seconds
        );
    }
}

pub(crate) fn hms(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
