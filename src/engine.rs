//! The runbook engine: per app a step machine whose every transition is written to the store
//! before and after the work; each step idempotent, so a crashed run resumes at its first
//! unfinished step. A failure is classified, rolled back (app on OLD, NEW kept for
//! inspection), unpaused and recorded. Knows nothing of terminals.

mod context;
mod deprovision;
pub mod events;
mod fleet;
mod io;
mod lease;
mod logical;
mod rollback;
mod steps;

/// Who pgshift is on each server (kept under this path for callers; it lives with the platform).
pub use crate::platform::{databases, servers};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use color_eyre::eyre::{Result, eyre};
use tokio_util::sync::CancellationToken;

pub use crate::domain::Outcome;
use crate::domain::{AppState, RunStatus, StepState};
pub use context::Ctx;
use databases::Databases;
pub use events::{Event, EventTx};
pub use fleet::{FleetReport, FleetRun};
use io::{Scrubber, StepIo};

use crate::diagnose::{self, RemediationId};
use crate::error::UserError;
use crate::inventory::{App, Inventory};
use crate::platform::Platform;
use crate::runbook::{Runbook, Step, StepKind, Throughput, estimated_seconds};
use crate::store::{Advance, Began, BeginRun, FailureRecord, Journal, StepRow, Store};
use servers::Servers;

fn needs_manual(name: &str) -> UserError {
    UserError::new(format!(
        "{name} is live on NEW after a failure that could not be rolled back (NEW took writes): a human decides; pgshift will not migrate it again"
    ))
}

pub struct Engine<P: Platform, D: Databases> {
    pub store: Store,
    pub inv: Arc<Inventory>,
    pub runbook: Runbook,
    pub servers: Servers,
    pub platform: P,
    pub db: D,
    pub state_dir: PathBuf,
    pub events: EventTx,
    pub cancel: CancellationToken,
    holder: (String, i64, String),
    /// (server, database or role name) → apps that have it there or will get it there.
    claims: std::sync::OnceLock<std::collections::HashMap<(String, String), Vec<String>>>,
    /// Every write of run state, group-committed.
    journal: Journal,
    log_task: tokio::task::JoinHandle<()>,
}

/// The step's failure, in the step's log; `lines` are what diagnosis reads.
pub(crate) struct StepFailure {
    pub summary: String,
}

impl<P: Platform, D: Databases> Engine<P, D> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        inv: Arc<Inventory>,
        runbook: Runbook,
        servers: Servers,
        platform: P,
        db: D,
        state_dir: PathBuf,
        events: EventTx,
        cancel: CancellationToken,
    ) -> Self {
        let (journal, log_task) = Journal::spawn(store.clone());
        Self {
            claims: std::sync::OnceLock::new(),
            store,
            inv,
            runbook,
            servers,
            platform,
            db,
            state_dir,
            events,
            cancel,
            holder: lease::holder_id(),
            journal,
            log_task,
        }
    }

    /// Flush step logs and stop the writer.
    pub async fn shutdown(self) {
        drop(self.journal);
        let _ = self.log_task.await;
    }

    fn app(&self, name: &str) -> Result<&App> {
        Ok(self.inv.require_app(name)?)
    }

    /// Start a new run of the runbook for one app and drive it to an outcome.
    pub async fn migrate(&self, name: &str) -> Result<Outcome> {
        self.migrate_with(name, None).await
    }

    /// As `migrate`, applying remediations up front (from preflight), comma-separated.
    pub async fn migrate_with(&self, name: &str, remediations: Option<&str>) -> Result<Outcome> {
        let app = self.app(name)?;
        if !self.runbook.applies_to(app) {
            return Err(UserError::new(format!(
                "app {name} is not a candidate of runbook {}: it has no provisioned {} instance",
                self.runbook.name,
                self.runbook.collected_services().join(" / ")
            ))
            .into());
        }
        self.refuse_blocked(app).await?;
        let (run_id, rows) = self.begin(app, "migrate", remediations).await?;
        let keep = lease::keep_alive(
            self.journal.clone(),
            name.to_string(),
            self.holder.0.clone(),
            &self.cancel,
        );
        let result = self
            .drive(run_id, app, rows, remediations, false, &keep)
            .await;
        drop(keep);
        self.release(name);
        result
    }

    /// Refuse, before anything is touched, an app whose OLD holds objects the restore cannot
    /// carry (preflight's catalog rules: removed in 14, or superuser-only).
    async fn refuse_blocked(&self, app: &App) -> Result<()> {
        let wanted = self.runbook.collected_services();
        let Some(s) = app
            .services
            .iter()
            .find(|s| s.provisioned && wanted.contains(&s.service.as_str()))
        else {
            return Ok(());
        };
        let (Some(server), Some(database)) = (&s.server, &s.database) else {
            return Ok(());
        };
        let major = self.runbook.target_major().unwrap_or(15);
        let new_server = self
            .inv
            .regions
            .iter()
            .find(|r| r.name == app.region)
            .and_then(|r| r.targets.get(&major))
            .map(String::as_str);
        let found = self.db.blockers(server, database, new_server).await?;
        if found.is_empty() {
            return Ok(());
        }
        Err(crate::error::PreflightRefusal {
            app: app.name.clone(),
            findings: found
                .iter()
                .map(|r| format!("{}: {}", r.class, r.detail))
                .collect(),
        }
        .into())
    }

    /// Take the app's lease and start a run of the runbook, in one store transaction; or say
    /// why not (another pgshift has it; it is migrated, needs a human, or is mid-run).
    async fn begin(
        &self,
        app: &App,
        kind: &str,
        remediation: Option<&str>,
    ) -> Result<(i64, Vec<StepRow>)> {
        let (strategy, why) = self.choose_strategy(app).await;
        let mut steps = self
            .runbook
            .steps_for(strategy)
            .map_err(|(_, m)| eyre!("runbook {}: {m}", self.runbook.name))?;
        if let Some(c) = steps.iter_mut().find(|s| s.kind == StepKind::Collect) {
            c.notes = Some(why);
        }
        let mut params = serde_json::json!({ "app": app.name, "remediation": remediation });
        self.runbook.record_in(&mut params);
        let params = params.to_string();
        let steps: Vec<(String, String)> = steps
            .iter()
            .map(|s| {
                (
                    s.kind.id().to_string(),
                    serde_json::to_string(s).unwrap_or_default(),
                )
            })
            .collect();
        let name = app.name.as_str();
        if steps.is_empty() {
            return Err(UserError::new(format!(
                "runbook {} has no operations: nothing to run",
                self.runbook.name
            ))
            .into());
        }
        for _ in 0..2 {
            let began = self
                .journal
                .begin(BeginRun {
                    kind: kind.to_string(),
                    runbook: self.runbook.name.clone(),
                    params: params.clone(),
                    app: name.to_string(),
                    steps: steps.clone(),
                    holder: self.holder.0.clone(),
                    pid: self.holder.1,
                    host: self.holder.2.clone(),
                    ttl_secs: lease::ttl_secs(),
                })
                .await?;
            match began {
                Began::Run { run_id, steps } => return Ok((run_id, steps)),
                Began::Leased(l) => {
                    lease::take_over_or_refuse(&self.journal, name, &self.holder.2, &l).await?
                }
                Began::State(s) if s.parse() == Ok(AppState::NeedsManual) => {
                    return Err(needs_manual(name).into());
                }
                Began::State(s) if s.parse() == Ok(AppState::Migrated) => {
                    return Err(UserError::new(format!(
                        "{name} is already migrated (pgshift app show {name}; pgshift rollback --app {name} to undo)"
                    ))
                    .into());
                }
                Began::State(s) if s.parse() == Ok(AppState::Running) => {
                    let run = self.store.latest_run_of(name).await?.unwrap_or_default();
                    return Err(UserError::new(format!(
                        "{name} has an unfinished run {run}: `pgshift resume` continues it"
                    ))
                    .into());
                }
                Began::State(s) => {
                    return Err(eyre!(
                        "{name} cannot start: the store has it in state {s} (was the inventory synced?)"
                    ));
                }
            }
        }
        Err(UserError::new(format!("could not take the lease of {name}")).into())
    }

    /// Apply a remediation to a failed app and run the runbook again. The whole runbook, not
    /// just the failed step: the rollback put the app back on OLD and unpaused it, so OLD has
    /// taken writes since the backup, and NEW must be filled again.
    pub async fn retry(
        &self,
        name: &str,
        remediation: Option<&str>,
    ) -> Result<(RemediationId, Outcome)> {
        let app = self.app(name)?;
        match self.store.app_state(name).await?.map(|s| s.state) {
            Some(AppState::NeedsManual) => return Err(needs_manual(name).into()),
            Some(AppState::Running) => {
                return Err(UserError::new(format!(
                    "{name} has an unfinished run: `pgshift resume` continues it"
                ))
                .into());
            }
            _ => {}
        }
        let failure = self
            .store
            .failures(true)
            .await?
            .into_iter()
            .rev()
            .find(|f| f.app == name)
            .ok_or_else(|| {
                UserError::new(format!(
                    "{name} has no open failure to retry (pgshift failures lists them)"
                ))
            })?;
        let offered: Vec<diagnose::Remediation> =
            diagnose::stored_remediations(&failure.remediations)
                .into_iter()
                .filter_map(|r| diagnose::remediation(r.id))
                .collect();
        let chosen = match remediation {
            Some(id) => offered
                .iter()
                .find(|r| Some(r.id) == id.parse().ok())
                .cloned()
                .ok_or_else(|| {
                    UserError::new(format!(
                        "remediation \"{id}\" is not offered for {name}'s {} failure (offered: {})",
                        failure.class,
                        offered
                            .iter()
                            .map(|r| r.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            None => offered.first().cloned().ok_or_else(|| {
                UserError::new(format!(
                    "no remediation offered for {name}'s {} failure",
                    failure.class
                ))
            })?,
        };
        match chosen.id {
            RemediationId::Rollback => {
                return Err(UserError::new(format!("{name} is already back on OLD; rebuild its image, then retry with another remediation")).into());
            }
            id if id.automatic() => {}
            other => {
                return Err(UserError::new(format!(
                    "remediation {other} needs a human ({}); apply it, then `pgshift retry --app {name} --remediation retry`",
                    chosen.description
                ))
                .into());
            }
        }
        let (run_id, rows) = self.begin(app, "retry", Some(chosen.id.as_str())).await?;
        let keep = lease::keep_alive(
            self.journal.clone(),
            name.to_string(),
            self.holder.0.clone(),
            &self.cancel,
        );
        self.journal
            .set_failure_status(failure.id, "retried")
            .await?;
        let result = self
            .drive(run_id, app, rows, Some(chosen.id.as_str()), false, &keep)
            .await;
        drop(keep);
        self.release(name);
        let outcome = result?;
        if outcome == Outcome::Migrated {
            self.journal
                .set_failure_status(failure.id, "resolved")
                .await?;
            if chosen.id == RemediationId::Md5Password {
                self.journal.set_needs_rebuild(name).await?;
            }
        }
        Ok((chosen.id, outcome))
    }

    /// Continue every run a crashed or killed pgshift left unfinished.
    pub async fn resume(&self) -> Result<Vec<(String, Outcome)>> {
        let mut out = Vec::new();
        for (run_id, name) in self.store.unfinished().await? {
            let Some(app) = self.inv.app(&name) else {
                tracing::warn!(
                    app = name,
                    run_id,
                    "unfinished run of an app no longer in the inventory"
                );
                continue;
            };
            // Only the app's newest run, and only while the app is mid-run: an older run a
            // later one replaced must never be driven again (it would undo that one).
            let latest = self.store.latest_run_of(&name).await?;
            let running = self
                .store
                .app_state(&name)
                .await?
                .is_some_and(|s| s.state == AppState::Running);
            if latest != Some(run_id) || !running {
                tracing::warn!(app = name, run_id, "abandoning a stale unfinished run");
                self.journal
                    .finish_run(run_id, RunStatus::Abandoned)
                    .await?;
                continue;
            }
            match lease::acquire(&self.journal, &name, &self.holder).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(app = name, error = %e, "not resuming");
                    continue;
                }
            }
            let keep = lease::keep_alive(
                self.journal.clone(),
                name.clone(),
                self.holder.0.clone(),
                &self.cancel,
            );
            let r = async {
                let rows = self.store.steps(run_id, &name).await?;
                let remediation = self.store.run_remediation(run_id).await?;
                self.drive(run_id, app, rows, remediation.as_deref(), true, &keep)
                    .await
            }
            .await;
            drop(keep);
            if let Err(e) = self.journal.release_lease(&name, &self.holder.0).await {
                tracing::warn!(app = name, error = %e, "releasing lease failed");
            }
            // One app's trouble never stops the others from being resumed.
            match r {
                Ok(o) => out.push((name, o)),
                Err(e) => {
                    tracing::error!(app = name, error = %format!("{e:#}"), "resume failed");
                    eprintln!("pgshift: resuming {name} failed: {e:#}");
                }
            }
        }
        Ok(out)
    }

    /// Run the app's unfinished steps of `run_id` (its rows as the store has them) in order;
    /// on failure or cancel, roll back.
    async fn drive(
        &self,
        run_id: i64,
        app: &App,
        rows: Vec<StepRow>,
        remediation: Option<&str>,
        resumed: bool,
        lease: &lease::Kept,
    ) -> Result<Outcome> {
        let _ = self.events.send(Event::RunStarted {
            run_id,
            app: app.name.clone(),
            steps: rows.iter().map(|r| r.operation.clone()).collect(),
            resumed,
        });
        let mut ctx = if rows.iter().any(|r| r.state == StepState::Done) {
            Ctx::from_rows(&rows)
        } else {
            Ctx::with_remediation(remediation)
        };
        ctx.logical = rows.iter().any(|r| r.operation == StepKind::Subscribe.id());
        let scrubber = self.scrubber_for(&ctx);

        // A run that was cancelled, or rolled back on request, and died before it ended:
        // finish that rollback; never continue its migration.
        if let Some(stopped) = rows
            .iter()
            .find(|r| r.state == StepState::Cancelled || r.operation == "requested")
        {
            return self.cancelled(run_id, app, stopped, &mut ctx).await;
        }
        // A run that already failed (and maybe died while rolling back) finishes its rollback.
        if let Some(failed) = rows.iter().find(|r| {
            r.state == StepState::Failed
                || (r.operation == "rollback" && r.state != StepState::Done)
        }) {
            let class = self
                .store
                .failures(false)
                .await?
                .into_iter()
                .rev()
                .find(|f| f.run_id == run_id && f.app == app.name)
                .map_or_else(|| "unknown".to_string(), |f| f.class);
            return self.fail(run_id, app, failed, &mut ctx, class, false).await;
        }

        let total = rows.len();
        let mut size = ctx.old_bytes;
        let todo: Vec<&StepRow> = rows
            .iter()
            .filter(|r| {
                !matches!(r.state, StepState::Done | StepState::Skipped)
                    && r.operation != "rollback"
            })
            .collect();
        // The step already marked running: by the run's start, or by the previous step's
        // boundary transaction.
        let mut started_id: Option<i64> = todo
            .first()
            .filter(|r| !resumed && r.state == StepState::Running)
            .map(|r| r.id);
        let mut paused_in_store = ctx.paused;
        for (k, row) in todo.iter().copied().enumerate() {
            if lease.lost.is_cancelled() {
                return self.interrupted(run_id, app, row, None).await;
            }
            if self.cancel.is_cancelled() {
                return self.cancelled(run_id, app, row, &mut ctx).await;
            }
            let step: Step = serde_json::from_str(&row.params)
                .map_err(|e| eyre!("step {} of run {run_id}: bad params: {e}", row.id))?;
            let _ = self.events.send(Event::StepStarted {
                run_id,
                app: app.name.clone(),
                step: row.operation.clone(),
                seq: row.seq as usize + 1,
                total,
                estimated_seconds: estimated_seconds(&step.kind, size, &Throughput::default()),
            });
            if started_id != Some(row.id) {
                self.journal.step_started(row.id).await?;
            }
            let started = Instant::now();
            let mut io = StepIo::new(
                run_id,
                row.id,
                &app.name,
                &row.operation,
                self.events.clone(),
                self.journal.clone(),
                scrubber.clone(),
            );
            io.cancel = lease.work.clone();
            io.stop = lease.lost.clone();
            let result = self.run_step(app, &step, &mut ctx, &mut io).await;
            size = ctx.old_bytes;
            self.remember_secrets(&ctx, &scrubber);
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(()) => {
                    let next = todo
                        .get(k + 1)
                        .map(|r| r.id)
                        .filter(|_| !lease.work.is_cancelled());
                    let paused =
                        (ctx.paused != paused_in_store).then(|| (app.name.clone(), ctx.paused));
                    let advance = Advance {
                        done: row.id,
                        state: StepState::Done,
                        detail: Some(ctx.snapshot()),
                        paused,
                        next,
                    };
                    // Awaited when the next step changes the world: its start must be
                    // durable before its work. Otherwise queued (the writer keeps order): a
                    // read-only step is just run again after a crash, and the last step's
                    // end goes ahead of the run's end, which is awaited.
                    let must_wait = todo.get(k + 1).is_some_and(|r| {
                        StepKind::from_id(&r.operation).is_none_or(|s| s.changes_the_world())
                    });
                    if must_wait {
                        self.journal.advance(advance).await?;
                    } else {
                        self.journal.advance_later(advance);
                    }
                    paused_in_store = ctx.paused;
                    started_id = next;
                    let _ = self.events.send(Event::StepFinished {
                        app: app.name.clone(),
                        step: row.operation.clone(),
                        state: StepState::Done,
                        seconds,
                    });
                }
                // Not a failure of the step: this process stopped it; the new holder of
                // the lease runs it again.
                Err(_) if lease.lost.is_cancelled() => {
                    return self.interrupted(run_id, app, row, Some(seconds)).await;
                }
                Err(_) if self.cancel.is_cancelled() => {
                    self.end_step(row.id, StepState::Cancelled).await?;
                    return self.cancelled(run_id, app, row, &mut ctx).await;
                }
                Err(f) => {
                    io.say(format!("step failed: {}", f.summary));
                    self.end_step(row.id, StepState::Failed).await?;
                    let _ = self.events.send(Event::StepFinished {
                        app: app.name.clone(),
                        step: row.operation.clone(),
                        state: StepState::Failed,
                        seconds,
                    });
                    let finding = diagnose::diagnose(&io.lines);
                    let matched = finding
                        .matched
                        .first()
                        .map(|m| m.line.clone())
                        .unwrap_or_default();
                    self.journal
                        .record_failure(FailureRecord {
                            run_id,
                            step_id: Some(row.id),
                            app: &app.name,
                            region: &app.region,
                            class: finding.class,
                            matched: &serde_json::to_string(&finding.matched)?,
                            explanation: finding.explanation,
                            remediations: &serde_json::to_string(&finding.remediations)?,
                        })
                        .await?;
                    let _ = self.events.send(Event::Failure {
                        app: app.name.clone(),
                        step: row.operation.clone(),
                        class: finding.class.to_string(),
                        line: matched,
                        remediations: finding.remediations.iter().map(|r| r.id).collect(),
                    });
                    return self
                        .fail(run_id, app, row, &mut ctx, finding.class.to_string(), true)
                        .await;
                }
            }
        }
        // Whatever failed before, the app is migrated now: its open failures are resolved.
        self.journal
            .end_run(
                run_id,
                &app.name,
                AppState::Migrated,
                ctx.new.as_ref().map(|n| n.id.clone()),
                RunStatus::Done,
            )
            .await?;
        let _ = self.events.send(Event::Done {
            run_id,
            app: app.name.clone(),
            outcome: AppState::Migrated,
        });
        Ok(Outcome::Migrated)
    }

    /// This process lost the app's lease: its processes are ended; record the step as
    /// interrupted and stop, touching neither the app nor its databases again. No rollback,
    /// no app state, no end of run: the app is the lease's new holder's, which resumes the
    /// run from this step.
    async fn interrupted(
        &self,
        run_id: i64,
        app: &App,
        row: &StepRow,
        seconds: Option<f64>,
    ) -> Result<Outcome> {
        tracing::warn!(
            app = app.name,
            run_id,
            step = row.operation,
            "lease lost: stopped this app's work; its new holder resumes it"
        );
        if let Some(seconds) = seconds {
            self.end_step(row.id, StepState::Interrupted).await?;
            let _ = self.events.send(Event::StepFinished {
                app: app.name.clone(),
                step: row.operation.clone(),
                state: StepState::Interrupted,
                seconds,
            });
        }
        let _ = self.events.send(Event::Interrupted {
            run_id,
            app: app.name.clone(),
            step: row.operation.clone(),
        });
        Ok(Outcome::Interrupted)
    }

    async fn cancelled(
        &self,
        run_id: i64,
        app: &App,
        row: &StepRow,
        ctx: &mut Ctx,
    ) -> Result<Outcome> {
        let (outcome, state, service) = match self.roll_back(run_id, app, row, ctx).await? {
            Some(_) => (Outcome::Cancelled, AppState::RolledBack, ctx.old.as_ref()),
            None => (
                Outcome::NeedsManual {
                    class: AppState::Cancelled.to_string(),
                },
                AppState::NeedsManual,
                ctx.new.as_ref(),
            ),
        };
        self.journal
            .set_app_state(&app.name, state, false, service.map(|s| s.id.as_str()))
            .await?;
        self.journal
            .finish_run(run_id, RunStatus::Cancelled)
            .await?;
        let _ = self.events.send(Event::Done {
            run_id,
            app: app.name.clone(),
            outcome: outcome.state(),
        });
        Ok(outcome)
    }

    async fn fail(
        &self,
        run_id: i64,
        app: &App,
        row: &StepRow,
        ctx: &mut Ctx,
        class: String,
        _fresh: bool,
    ) -> Result<Outcome> {
        let outcome = match self.roll_back(run_id, app, row, ctx).await? {
            Some(_) => Outcome::Failed { class },
            None => Outcome::NeedsManual { class },
        };
        let (state, service) = match &outcome {
            Outcome::NeedsManual { .. } => (AppState::NeedsManual, ctx.new.as_ref()),
            _ => (AppState::Failed, ctx.old.as_ref()),
        };
        self.journal
            .set_app_state(&app.name, state, false, service.map(|s| s.id.as_str()))
            .await?;
        self.journal.finish_run(run_id, RunStatus::Failed).await?;
        let _ = self.events.send(Event::Done {
            run_id,
            app: app.name.clone(),
            outcome: outcome.state(),
        });
        Ok(outcome)
    }

    /// What the run that migrated `name` knew: its OLD, NEW, verified fingerprint, retention.
    /// `why_not` ends the error for an app that is not migrated.
    async fn migrated_ctx(&self, name: &str, why_not: &str) -> Result<Ctx> {
        let state = self.store.app_state(name).await?;
        if state.as_ref().map(|s| s.state) != Some(AppState::Migrated) {
            return Err(UserError::new(format!("{name} is not migrated: {why_not}")).into());
        }
        let run = self
            .store
            .latest_run_of(name)
            .await?
            .ok_or_else(|| eyre!("{name} is migrated but has no run"))?;
        Ok(Ctx::from_rows(&self.store.steps(run, name).await?))
    }

    /// Put a migrated app back on OLD — only if NEW has not taken writes since it was
    /// verified, which would be lost.
    pub async fn rollback_app(&self, name: &str) -> Result<Outcome> {
        let app = self.app(name)?;
        let mut ctx = self.migrated_ctx(name, "nothing to roll back").await?;
        lease::acquire(&self.journal, name, &self.holder).await?;
        // Comparing a big NEW can outlast the lease's TTL.
        let keep = lease::keep_alive(
            self.journal.clone(),
            name.to_string(),
            self.holder.0.clone(),
            &self.cancel,
        );
        let result = async {
            if let (Some(fp), Some(new)) = (&ctx.fingerprint, &ctx.new) {
                let now = self.db.fingerprint(new, fp.row_hash, Default::default()).await?;
                let diffs = crate::postgres::verify::differences(fp, &now);
                if !diffs.is_empty() {
                    return Err(UserError::new(format!(
                        "{name} has taken writes on NEW since it was migrated ({}); rolling back would lose them",
                        diffs[0]
                    ))
                    .into());
                }
            }
            let run_id = self.journal.create_run("rollback", &self.runbook.name, &serde_json::json!({ "app": name }).to_string()).await?;
            let marker = self.journal.append_step(run_id, name, "requested", "{}").await?;
            self.journal
                .step_finished(marker, StepState::Done, Some(&ctx.snapshot()))
                .await?;
            let row = self.store.steps(run_id, name).await?.remove(0);
            let outcome = match self.roll_back(run_id, app, &row, &mut ctx).await? {
                Some(()) => {
                    self.journal
                        .set_app_state(name, AppState::RolledBack, false, ctx.old.as_ref().map(|o| o.id.as_str()))
                        .await?;
                    Outcome::Cancelled
                }
                None => Outcome::NeedsManual { class: "rollback".into() },
            };
            self.journal.finish_run(run_id, RunStatus::Done).await?;
            Ok(outcome)
        }
        .await;
        drop(keep);
        self.journal.release_lease(name, &self.holder.0).await?;
        result
    }

    /// Another app that owns, or will own after its own migration, `database` or `role` on
    /// `server` — the names NEW is about to drop and create.
    pub(crate) fn claimed_by_another(
        &self,
        app: &str,
        server: &str,
        database: &str,
        role: &str,
    ) -> Option<String> {
        let claims = self.claims.get_or_init(|| {
            let mut m: std::collections::HashMap<(String, String), Vec<String>> =
                std::collections::HashMap::new();
            for a in &self.inv.apps {
                let targets: Vec<&String> = self
                    .inv
                    .regions
                    .iter()
                    .filter(|r| r.name == a.region)
                    .flat_map(|r| r.targets.values())
                    .collect();
                for x in a.services.iter().filter(|x| x.provisioned) {
                    let servers = x.server.iter().chain(targets.iter().copied());
                    for srv in servers {
                        let id = self.servers.identity(srv);
                        for name in [&x.database, &x.user].into_iter().flatten() {
                            let e = m.entry((id.clone(), name.clone())).or_default();
                            if !e.contains(&a.name) {
                                e.push(a.name.clone());
                            }
                        }
                    }
                }
            }
            m
        });
        let id = self.servers.identity(server);
        [database, role].iter().find_map(|n| {
            claims
                .get(&(id.clone(), n.to_string()))?
                .iter()
                .find(|x| *x != app)
                .cloned()
        })
    }

    /// Give the lease back through the writer, after the run's last writes (same queue);
    /// not awaited: a lost release only delays the next taker until the lease expires.
    fn release(&self, app: &str) {
        self.journal.release_lease_later(app, &self.holder.0);
    }

    /// A step ends without a next one (failed, cancelled), through the same writer as its
    /// logs so they land first.
    async fn end_step(&self, step: i64, state: StepState) -> Result<()> {
        self.journal
            .advance(Advance {
                done: step,
                state,
                detail: None,
                paused: None,
                next: None,
            })
            .await
    }

    /// Add the passwords this app's run handles to its scrubber, so no log line can carry
    /// them. One scrubber per app: a line is checked against a handful of secrets, not the
    /// fleet's thousands.
    fn remember_secrets(&self, ctx: &Ctx, scrubber: &Scrubber) {
        for svc in [ctx.old.as_ref(), ctx.new.as_ref()].into_iter().flatten() {
            if let Ok(ep) = self.servers.role(&svc.server, &svc.user) {
                scrubber.add(ep.password.expose());
            }
            if let Ok(ep) = self.servers.admin(&svc.server) {
                scrubber.add(ep.password.expose());
            }
        }
    }

    pub(crate) fn scrubber_for(&self, ctx: &Ctx) -> Scrubber {
        let s = Scrubber::default();
        self.remember_secrets(ctx, &s);
        s
    }
}
