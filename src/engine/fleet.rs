//! A supervised fleet run: regions in parallel, batches in order inside a region, at most the
//! region's `concurrency` migrations at once; one failure never stops the others. Cancelling
//! stops every current step and rolls those apps back, unpaused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use color_eyre::eyre::Result;
use futures::StreamExt;
use serde::Serialize;

use super::databases::Databases;
use super::{Engine, Event, Outcome};
use crate::plan::Plan;
use crate::platform::Platform;

#[derive(Debug, Default, Clone, Serialize)]
pub struct FleetReport {
    pub run_id: i64,
    pub migrated: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub skipped: usize,
    pub failures_by_class: HashMap<String, usize>,
    pub seconds: f64,
}

impl<P: Platform, D: Databases> Engine<P, D> {
    /// Run `plan` (all batches, or only batch `only` of every region), applying per-app
    /// remediations found by preflight.
    pub async fn run_plan(
        &self,
        plan: &Plan,
        plan_id: i64,
        only: Option<usize>,
        remediations: &HashMap<String, String>,
    ) -> Result<FleetReport> {
        let started = Instant::now();
        let params = serde_json::json!({ "plan_id": plan_id, "batch": only }).to_string();
        let run_id = self
            .store
            .create_run("fleet", &self.runbook.name, &params)
            .await?;
        let states = self.store.app_states().await?;
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
            let (report, states) = (&report, &states);
            async move {
                let done = Mutex::new(0usize);
                for b in batches {
                    if self.cancel.is_cancelled() {
                        break;
                    }
                    futures::stream::iter(b.apps.iter())
                        .for_each_concurrent(concurrency.max(1), |app| {
                            let done = &done;
                            async move {
                                if self.cancel.is_cancelled() {
                                    return;
                                }
                                let outcome = if states.get(app).is_some_and(|s| {
                                    s.state == "migrated" || s.state == "needs_manual"
                                }) {
                                    None
                                } else {
                                    Some(
                                        self.migrate_with(
                                            app,
                                            remediations.get(app).map(String::as_str),
                                        )
                                        .await,
                                    )
                                };
                                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                                match outcome {
                                    None => r.skipped += 1,
                                    Some(Ok(Outcome::Migrated)) => r.migrated += 1,
                                    Some(Ok(Outcome::Cancelled)) => r.cancelled += 1,
                                    Some(Ok(
                                        Outcome::Failed { class } | Outcome::NeedsManual { class },
                                    )) => {
                                        r.failed += 1;
                                        *r.failures_by_class.entry(class).or_default() += 1;
                                    }
                                    Some(Err(e)) => {
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
                                let _ = self.events.send(Event::Progress {
                                    region: region.to_string(),
                                    done: n,
                                    total,
                                });
                            }
                        })
                        .await;
                }
            }
        });
        futures::future::join_all(region_runs).await;
        let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
        report.seconds = started.elapsed().as_secs_f64();
        let status = if self.cancel.is_cancelled() {
            "cancelled"
        } else {
            "done"
        };
        self.store.finish_run(run_id, status).await?;
        Ok(report)
    }
}
