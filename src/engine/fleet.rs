//! A supervised fleet run: regions in parallel, batches in order inside a region, at most the
//! region's `concurrency` migrations at once; one failure never stops the others. The
//! operator can pause or stop a region (current migrations finish, no new one starts) or
//! cancel the run (every current step stops and its app is rolled back, unpaused) from
//! another shell or the console, through the store. A run whose pgshift died is continued
//! by `resume`: apps already migrated, or failed without a remedy, are not started again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use super::databases::Databases;
use super::{Engine, Event, Outcome, lease};
use crate::domain::{AppState as AppStateKind, RunStatus};
use crate::plan::Plan;
use crate::platform::Platform;
use crate::store::AppState;

#[derive(Debug, Default, Clone, Serialize)]
pub struct FleetReport {
    pub run_id: i64,
    pub migrated: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Already migrated or needing a human, failed earlier without a remedy given, or
    /// refused (another pgshift has it).
    pub skipped: usize,
    /// Left for another run: their region was stopped, or the run was cancelled first.
    pub not_started: usize,
    /// Stopped where they were: another pgshift took their lease and resumes them.
    pub interrupted: usize,
    pub failures_by_class: HashMap<String, usize>,
    pub seconds: f64,
}

/// What to run: which plan, which batch, which remedies.
pub struct FleetRun<'a> {
    pub plan: &'a Plan,
    pub plan_id: i64,
    /// Only batch K of every region.
    pub only: Option<usize>,
    /// Per-app remediations (from preflight), comma-separated ids.
    pub remediations: &'a HashMap<String, String>,
    /// Whether `remediations` came from preflight (kept so `resume` can do it again).
    pub apply_preflight: bool,
    /// Continue this fleet run (resume) instead of starting a new one.
    pub continues: Option<i64>,
}

/// The name a fleet run's lease is kept under (leases are per app; this is not an app name,
/// which cannot contain a colon).
fn fleet_lease(run_id: i64) -> String {
    format!("fleet-run:{run_id}")
}

/// Why an app of the plan is not started in this run, if it is not.
fn skip_reason(state: Option<&AppState>, has_remedy: bool) -> Option<&'static str> {
    match state.map(|s| s.state) {
        Some(AppStateKind::Migrated) => Some("already migrated"),
        Some(AppStateKind::NeedsManual) => Some("needs a human"),
        Some(AppStateKind::Failed) if !has_remedy => Some(
            "failed earlier: `pgshift retry` with a remediation, or run with --apply-preflight",
        ),
        _ => None,
    }
}

impl<P: Platform, D: Databases> Engine<P, D> {
    pub async fn run_plan(&self, run: FleetRun<'_>) -> Result<FleetReport> {
        let FleetRun {
            plan,
            plan_id,
            only,
            remediations,
            apply_preflight,
            continues,
        } = run;
        let started = Instant::now();
        let run_id = match continues {
            Some(id) => id,
            None => {
                let mut params = serde_json::json!({
                    "plan_id": plan_id, "batch": only, "apply_preflight": apply_preflight,
                });
                self.runbook.record_in(&mut params);
                let params = params.to_string();
                self.journal
                    .create_run("fleet", &self.runbook.name, &params)
                    .await?
            }
        };
        let lease_name = fleet_lease(run_id);
        lease::acquire(&self.journal, &lease_name, &self.holder).await?;
        let keep = lease::keep_alive(
            self.journal.clone(),
            lease_name.clone(),
            self.holder.0.clone(),
            &self.cancel,
        );
        // Requests left from an earlier run would surprise this one.
        self.store.clear_controls(None).await?;
        let (controls_tx, controls) = watch::channel(HashMap::<String, String>::new());
        let watcher = self.watch_controls(controls_tx);

        let states = self.store.app_states().await?;
        // Each region's latest ETA: the night ends with the slowest.
        let etas: Mutex<HashMap<String, f64>> = Mutex::new(HashMap::new());
        let report = Mutex::new(FleetReport {
            run_id,
            ..Default::default()
        });
        let mut regions: Vec<&str> = plan.batches.iter().map(|b| b.region.as_str()).collect();
        regions.dedup();
        let region_runs = regions.into_iter().map(|region| {
            let batches: Vec<_> = plan
                .batches
                .iter()
                .filter(|b| b.region == region && only.is_none_or(|k| b.index == k))
                .collect();
            let concurrency = self
                .inv
                .regions
                .iter()
                .find(|r| r.name == region)
                .map_or(1, |r| r.concurrency as usize);
            let total: usize = batches.iter().map(|b| b.apps.len()).sum();
            let estimated: f64 = batches.iter().map(|b| b.estimated_seconds).sum();
            let (report, states, controls, etas) = (&report, &states, controls.clone(), &etas);
            async move {
                let done = Mutex::new(0usize);
                let lane_started = Instant::now();
                for b in batches {
                    futures::stream::iter(b.apps.iter())
                        .for_each_concurrent(concurrency.max(1), |app| {
                            let (done, mut controls) = (&done, controls.clone());
                            async move {
                                let go = self.may_start(region, &mut controls).await;
                                let remedy = remediations.get(app).map(String::as_str);
                                let outcome = if !go {
                                    None
                                } else if let Some(why) =
                                    skip_reason(states.get(app), remedy.is_some())
                                {
                                    tracing::info!(app, why, "not started");
                                    Some(None)
                                } else {
                                    Some(Some(self.migrate_with(app, remedy).await))
                                };
                                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                                match outcome {
                                    None => r.not_started += 1,
                                    Some(None) => r.skipped += 1,
                                    Some(Some(Ok(Outcome::Migrated))) => r.migrated += 1,
                                    Some(Some(Ok(Outcome::Cancelled))) => r.cancelled += 1,
                                    Some(Some(Ok(Outcome::Interrupted))) => r.interrupted += 1,
                                    Some(Some(Ok(
                                        Outcome::Failed { class } | Outcome::NeedsManual { class },
                                    ))) => {
                                        r.failed += 1;
                                        *r.failures_by_class.entry(class).or_default() += 1;
                                    }
                                    Some(Some(Err(e))) => {
                                        tracing::warn!(app, error = %e, "not migrated");
                                        r.skipped += 1;
                                    }
                                }
                                drop(r);
                                let n = {
                                    let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
                                    *d += 1;
                                    *d
                                };
                                let eta_seconds =
                                    eta(lane_started.elapsed().as_secs_f64(), n, total, estimated);
                                let overall_eta_seconds = {
                                    let mut e = etas.lock().unwrap_or_else(|e| e.into_inner());
                                    e.insert(region.to_string(), eta_seconds.unwrap_or(0.0));
                                    e.values().copied().fold(0.0, f64::max)
                                };
                                let _ = self.events.send(Event::Progress {
                                    region: region.to_string(),
                                    done: n,
                                    total,
                                    eta_seconds,
                                    overall_eta_seconds,
                                });
                            }
                        })
                        .await;
                }
            }
        });
        futures::future::join_all(region_runs).await;
        watcher.abort();
        let _ = self.store.clear_controls(None).await;
        let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
        report.seconds = started.elapsed().as_secs_f64();
        let status = if self.cancel.is_cancelled() {
            RunStatus::Cancelled
        } else {
            RunStatus::Done
        };
        self.journal.finish_run(run_id, status).await?;
        drop(keep);
        self.journal
            .release_lease(&lease_name, &self.holder.0)
            .await?;
        Ok(report)
    }

    /// Whether the next app of `region` may start: waits while the region is paused; false
    /// once it is stopped or the run is cancelled.
    async fn may_start(
        &self,
        region: &str,
        controls: &mut watch::Receiver<HashMap<String, String>>,
    ) -> bool {
        let mut announced = false;
        loop {
            if self.cancel.is_cancelled() {
                return false;
            }
            let action = controls.borrow_and_update().get(region).cloned();
            match action.as_deref() {
                Some("stop") => return false,
                Some("pause") => {
                    if !announced {
                        announced = true;
                        tracing::info!(region, "paused: waiting for `pgshift region resume`");
                    }
                    tokio::select! {
                        _ = self.cancel.cancelled() => return false,
                        r = controls.changed() => if r.is_err() { return true },
                    }
                }
                _ => return true,
            }
        }
    }

    /// Poll the store's controls twice a second: publish region requests, cancel the run on
    /// `cancel`, and tell the event stream when a request appears or goes.
    fn watch_controls(
        &self,
        tx: watch::Sender<HashMap<String, String>>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let cancel = self.cancel.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let now = match store.controls().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading fleet controls failed");
                        continue;
                    }
                };
                if now.get("*").is_some_and(|a| a == "cancel") && !cancel.is_cancelled() {
                    tracing::warn!("fleet run cancelled by request");
                    cancel.cancel();
                }
                let before = tx.borrow().clone();
                if before != now {
                    for (region, action) in &now {
                        if before.get(region) != Some(action) {
                            let _ = events.send(Event::Control {
                                region: region.clone(),
                                action: action.clone(),
                            });
                        }
                    }
                    for region in before.keys().filter(|r| !now.contains_key(*r)) {
                        let _ = events.send(Event::Control {
                            region: region.clone(),
                            action: "resume".into(),
                        });
                    }
                    let _ = tx.send(now);
                }
            }
        })
    }
}

/// Seconds left in a region: from its own pace once apps have finished, from the plan's
/// estimate before that.
fn eta(elapsed: f64, done: usize, total: usize, estimated: f64) -> Option<f64> {
    if done >= total {
        return Some(0.0);
    }
    if done == 0 {
        return (estimated > 0.0).then(|| (estimated - elapsed).max(0.0));
    }
    Some(elapsed / done as f64 * (total - done) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_regions_pace_once_it_has_one() {
        assert_eq!(eta(100.0, 4, 10, 9999.0), Some(150.0));
        assert_eq!(eta(10.0, 0, 10, 60.0), Some(50.0));
        assert_eq!(eta(10.0, 0, 10, 0.0), None);
        assert_eq!(eta(10.0, 10, 10, 60.0), Some(0.0));
    }

    #[test]
    fn failed_apps_start_again_only_with_a_remedy() {
        use crate::domain::AppState as S;
        let st = |state: S| AppState {
            state,
            ..Default::default()
        };
        assert!(skip_reason(Some(&st(S::Failed)), false).is_some());
        assert!(skip_reason(Some(&st(S::Failed)), true).is_none());
        assert!(skip_reason(Some(&st(S::Migrated)), true).is_some());
        assert!(skip_reason(Some(&st(S::NeedsManual)), true).is_some());
        assert!(skip_reason(Some(&st(S::RolledBack)), false).is_none());
        assert!(skip_reason(None, false).is_none());
    }
}
