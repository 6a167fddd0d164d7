//! The journal: the one way the engine and the application layer write run state — runs,
//! steps, step logs, failures, each app's state and paused flag, backups and leases. Every
//! write of a run (its start, step boundaries, logs, failure path, end) goes through the
//! group-commit writer, in the order it was made, so the engine's hot path and its failure
//! and rollback paths share one connection and one queue. Lease upkeep, failure statuses and
//! resets are single statements an operator command makes outside any run; they go straight
//! to the store.

use color_eyre::eyre::Result;
use tokio::task::JoinHandle;

use super::queued::Exec;
use super::writer::{BackupRecord, Began, BeginRun, StoreWriter, WriteOp};
use super::{Lease, LeaseHolder, Store};
use crate::domain::{AppState, RunStatus, StepState};

/// A step ended with a next one to mark running (see `Journal::advance`).
pub struct Advance {
    pub done: i64,
    pub state: StepState,
    /// The run's context snapshot after the step.
    pub detail: Option<String>,
    /// The app's paused flag, when the step changed it.
    pub paused: Option<(String, bool)>,
    pub next: Option<i64>,
}

/// A failure diagnosis found, as recorded.
pub struct FailureRecord<'a> {
    pub run_id: i64,
    pub step_id: Option<i64>,
    pub app: &'a str,
    pub region: &'a str,
    pub class: crate::diagnose::FailureClass,
    /// JSON: the matched lines.
    pub matched: &'a str,
    pub explanation: &'a str,
    /// JSON: the remediations offered.
    pub remediations: &'a str,
}

#[derive(Clone)]
pub struct Journal {
    store: Store,
    writer: StoreWriter,
}

impl Journal {
    /// A journal on `store` and its writer task, which ends once every clone is dropped
    /// (await the handle to know the last write is committed).
    pub fn spawn(store: Store) -> (Self, JoinHandle<()>) {
        let (writer, task) = StoreWriter::spawn(store.clone());
        (Self { store, writer }, task)
    }

    // --- runs and steps (group commit) ---

    /// Start an app's run: lease, state guard, the run and its planned steps.
    pub async fn begin(&self, run: BeginRun) -> Result<Began> {
        self.writer.begin(run).await
    }

    /// A run that is not one app's (a fleet run, an operator's rollback); its id.
    pub async fn create_run(&self, kind: &str, runbook: &str, params: &str) -> Result<i64> {
        self.id(Exec::create_run(kind, runbook, params)).await
    }

    pub async fn finish_run(&self, run_id: i64, status: RunStatus) -> Result<()> {
        self.writer.exec(Exec::finish_run(run_id, status)).await?;
        Ok(())
    }

    /// An app's run ended: its state, the run's status, its open failures resolved when
    /// migrated.
    pub async fn end_run(
        &self,
        run_id: i64,
        app: &str,
        state: AppState,
        service: Option<String>,
        run_status: RunStatus,
    ) -> Result<()> {
        self.writer
            .write(WriteOp::EndRun {
                run_id,
                app: app.to_string(),
                state,
                service,
                run_status,
            })
            .await
    }

    /// A step after the planned ones (a rollback); its id.
    pub async fn append_step(&self, run_id: i64, app: &str, op: &str, params: &str) -> Result<i64> {
        self.id(Exec::append_step(run_id, app, op, params)).await
    }

    /// A step begins; durable before its work.
    pub async fn step_started(&self, step: i64) -> Result<()> {
        self.writer.write(WriteOp::Started { step }).await
    }

    /// A step begins, in order with the queued writes before it (a rollback's steps).
    pub async fn step_started_in_order(&self, step: i64) -> Result<()> {
        self.writer.exec(Exec::step_started(step)).await?;
        Ok(())
    }

    /// A step ended and the next one starts, committed before this returns.
    pub async fn advance(&self, a: Advance) -> Result<()> {
        self.writer.write(Self::advance_op(a)).await
    }

    /// As `advance`, queued without waiting (the writer keeps order).
    pub fn advance_later(&self, a: Advance) {
        self.writer.send(Self::advance_op(a));
    }

    fn advance_op(a: Advance) -> WriteOp {
        WriteOp::Advance {
            done: a.done,
            state: a.state,
            detail: a.detail,
            paused: a.paused,
            next: a.next,
        }
    }

    /// A step ended, in order with the queued writes before it.
    pub async fn step_finished(
        &self,
        step: i64,
        state: StepState,
        detail: Option<&str>,
    ) -> Result<()> {
        self.writer
            .exec(Exec::step_finished(step, state, detail))
            .await?;
        Ok(())
    }

    /// Step log lines (step id, stream, line), queued without waiting.
    pub fn logs(&self, lines: Vec<(i64, String, String)>) {
        self.writer.send(WriteOp::Logs(lines));
    }

    /// A kept backup, listed by `pgshift backups`.
    pub async fn backup(&self, b: BackupRecord) -> Result<()> {
        self.writer.write(WriteOp::Backup(Box::new(b))).await
    }

    /// A run's backup was compressed: its size on disk and digest now.
    pub async fn backup_compressed(
        &self,
        app: &str,
        run_id: i64,
        size_bytes: i64,
        sha256: &str,
    ) -> Result<()> {
        self.writer
            .exec(Exec::backup_compressed(app, run_id, size_bytes, sha256))
            .await?;
        Ok(())
    }

    /// Forget a backup the sweep deleted.
    pub async fn delete_backup(&self, id: i64) -> Result<()> {
        self.writer.exec(Exec::delete_backup(id)).await?;
        Ok(())
    }

    /// A classified failure; its id.
    pub async fn record_failure(&self, f: FailureRecord<'_>) -> Result<i64> {
        self.id(Exec::record_failure(
            f.run_id,
            f.step_id,
            f.app,
            f.region,
            f.class.as_str(),
            f.matched,
            f.explanation,
            f.remediations,
        ))
        .await
    }

    // --- an app's state ---

    pub async fn set_app_state(
        &self,
        app: &str,
        state: AppState,
        paused: bool,
        service: Option<&str>,
    ) -> Result<()> {
        self.writer
            .exec(Exec::set_app_state(app, state, paused, service))
            .await?;
        Ok(())
    }

    pub async fn set_paused(&self, app: &str, paused: bool) -> Result<()> {
        self.writer.exec(Exec::set_paused(app, paused)).await?;
        Ok(())
    }

    /// The app's image must be rebuilt (its NEW role was md5-hashed for an old libpq).
    pub async fn set_needs_rebuild(&self, app: &str) -> Result<()> {
        self.store.set_needs_rebuild(app).await
    }

    /// Forget one app's migration state (after `lab reset --app`).
    pub async fn reset_app_state(&self, app: &str) -> Result<()> {
        self.store.reset_app_state(app).await
    }

    /// Forget every app's migration state; how many apps.
    pub async fn reset_app_states(&self) -> Result<u64> {
        self.store.reset_app_states().await
    }

    // --- failures ---

    pub async fn set_failure_status(&self, id: i64, status: &str) -> Result<()> {
        self.store.set_failure_status(id, status).await
    }

    /// Close every open failure of an app (`None`: of every app) with `status`; how many.
    pub async fn close_failures(&self, app: Option<&str>, status: &str) -> Result<u64> {
        self.store.close_failures(app, status).await
    }

    // --- leases ---

    /// Take the lease unless a live holder has it; the holder that blocks.
    pub async fn acquire_lease(
        &self,
        app: &str,
        holder: LeaseHolder<'_>,
        ttl_secs: i64,
    ) -> Result<Option<Lease>> {
        self.store.acquire_lease(app, holder, ttl_secs).await
    }

    /// Take over a lease whose holder is known dead.
    pub async fn steal_lease(&self, app: &str, dead_holder: &str) -> Result<bool> {
        self.store.steal_lease(app, dead_holder).await
    }

    pub async fn renew_lease(&self, app: &str, holder: &str, ttl_secs: i64) -> Result<bool> {
        self.store.renew_lease(app, holder, ttl_secs).await
    }

    /// Give a lease back after the writes queued before (same queue), committed.
    pub async fn release_lease(&self, app: &str, holder: &str) -> Result<()> {
        self.writer
            .write(WriteOp::ReleaseLease {
                app: app.to_string(),
                holder: holder.to_string(),
            })
            .await
    }

    /// As `release_lease`, not awaited: a lost release only delays the next taker until the
    /// lease expires.
    pub fn release_lease_later(&self, app: &str, holder: &str) {
        self.writer.send(WriteOp::ReleaseLease {
            app: app.to_string(),
            holder: holder.to_string(),
        });
    }

    async fn id(&self, e: Exec) -> Result<i64> {
        self.writer
            .exec(e)
            .await?
            .ok_or_else(|| color_eyre::eyre::eyre!("the store writer returned no id"))
    }
}
