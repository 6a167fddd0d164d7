//! `--probe`: while a migration or a night runs, ask each app through its public route and
//! count what answered; at the end, each app's tally beside the interval pgshift kept it paused.

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::{OpsEngine, Session};
use crate::inventory::App;
use crate::platform::Platform;
use crate::probe::{Prober, Tally, Target};
use crate::store::Store;

/// Four requests a second per app: fine enough to place a pause of a few seconds.
pub const INTERVAL: Duration = Duration::from_millis(250);

pub struct Probing {
    prober: Prober,
    store: Store,
    session: String,
    stop_saver: CancellationToken,
    saver: tokio::task::JoinHandle<()>,
}

impl Probing {
    /// With `--probe`: start probing `apps` through the platform of `engine`'s world.
    pub async fn when_asked(
        s: &Session<'_>,
        engine: &OpsEngine,
        apps: &[&App],
        store: &Store,
    ) -> Result<Option<Self>> {
        if !s.ctx.probe {
            return Ok(None);
        }
        crate::on_engine!(engine, e => Self::start(&e.platform, apps, store).await)
    }

    /// Stop, store and print each app's tally (JSON lines with `json`).
    pub async fn report(self, json: bool) -> Result<()> {
        let store = self.store.clone();
        let tallies = self.finish().await?;
        print(&store, &tallies, json).await
    }

    /// Ask the platform for each app's URL and start probing those that have one.
    pub async fn start(
        platform: &impl Platform,
        apps: &[&App],
        store: &Store,
    ) -> Result<Option<Self>> {
        let mut targets = Vec::new();
        for app in apps {
            if let Some(url) = platform.status(app).await?.url {
                // An app the prober may not ask (not on loopback) is left out, said once.
                match Target::new(&app.name, &url) {
                    Ok(t) => targets.push(t),
                    Err(e) => eprintln!("probe: {app}: not probed: {e}", app = app.name),
                }
            }
        }
        if targets.is_empty() {
            return Ok(None);
        }
        let prober = Prober::start(targets, INTERVAL);
        let session = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let stop_saver = CancellationToken::new();
        // Saved every second, so a console (or another shell) sees what each app answers now.
        let saver = {
            let (tallies, store, session, stop) = (
                prober.tallies(),
                store.clone(),
                session.clone(),
                stop_saver.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    let now = tallies.lock().map(|m| m.clone()).unwrap_or_default();
                    if let Err(e) = store.save_probes(&session, &now).await {
                        tracing::warn!("saving probe tallies: {e:#}");
                    }
                }
            })
        };
        Ok(Some(Self {
            prober,
            store: store.clone(),
            session,
            stop_saver,
            saver,
        }))
    }

    /// Stop, store and return each app's tally.
    pub async fn finish(self) -> Result<BTreeMap<String, Tally>> {
        self.stop_saver.cancel();
        let _ = self.saver.await;
        let tallies = self.prober.stop().await;
        self.store.save_probes(&self.session, &tallies).await?;
        Ok(tallies)
    }
}

/// Each app's tally, beside the interval pgshift kept it behind its page.
pub async fn print(store: &Store, tallies: &BTreeMap<String, Tally>, json: bool) -> Result<()> {
    for (app, t) in tallies {
        let paused = paused_interval(store, app).await?;
        if json {
            let v = serde_json::json!({
                "event": "probe",
                "app": app,
                "answered": t.answered,
                "maintenance": t.maintenance,
                "failed": t.failed,
                "first_maintenance": t.first_maintenance,
                "last_maintenance": t.last_maintenance,
                "paused_from": paused.as_ref().map(|p| &p.0),
                "paused_until": paused.as_ref().map(|p| &p.1),
                "failures": t.failures,
            });
            println!("{v}");
        } else {
            let seen = match (t.first_maintenance, t.last_maintenance) {
                (Some(a), Some(b)) => format!(
                    " ({}–{}, {:.1} s)",
                    a.format("%H:%M:%S%.3f"),
                    b.format("%H:%M:%S%.3f"),
                    t.maintenance_seconds().unwrap_or_default()
                ),
                _ => String::new(),
            };
            let kept = match &paused {
                Some((a, b)) => format!("; paused by pgshift {}–{}", clock(a), clock(b)),
                None => String::new(),
            };
            eprintln!(
                "probe {app}: {} answered by the app, {} by the maintenance page{seen}, {} failed{kept}",
                t.answered, t.maintenance, t.failed
            );
            for f in &t.failures {
                eprintln!("  ✗ {f}");
            }
        }
    }
    Ok(())
}

fn clock(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|_| ts.to_string())
}

/// From the start of the app's newest run's pause to the end of what unpaused it (the
/// unpause step, or the rollback).
pub async fn paused_interval(store: &Store, app: &str) -> Result<Option<(String, String)>> {
    let Some(run) = store.latest_run_of(app).await? else {
        return Ok(None);
    };
    let steps = store.steps(run, app).await?;
    let from = steps
        .iter()
        .find(|s| s.operation == "pause")
        .and_then(|s| s.started_at.clone());
    let until = steps
        .iter()
        .rev()
        .find(|s| s.operation == "unpause" || s.operation == "rollback")
        .and_then(|s| s.finished_at.clone());
    Ok(from.zip(until))
}
