//! Group commit for the engine's hot path: step boundaries and step logs from every
//! concurrent migration go to one writer task, which commits whatever has queued up in one
//! transaction and then answers each caller. A caller that awaits its write still knows it
//! is durable before it goes on ("written before and after the work"); the store just does
//! one commit for many apps instead of one per statement.

use crate::domain::{AppState, RunStatus, StepState};
use color_eyre::eyre::{Result, eyre};
use tokio::sync::{mpsc, oneshot};

use super::Store;
use super::runs::{Lease, StepRow};

pub(super) enum WriteOp {
    /// A step begins (written before its work).
    Started { step: i64 },
    /// A step ended: its state and context snapshot, the app's paused flag if it changed,
    /// and the next step marked running.
    Advance {
        done: i64,
        state: StepState,
        detail: Option<String>,
        paused: Option<(String, bool)>,
        next: Option<i64>,
    },
    /// Step log lines: (step id, stream, line).
    Logs(Vec<(i64, String, String)>),
    /// A kept backup, listed by `pgshift backups`.
    Backup(Box<BackupRecord>),
    /// An app's run ended: its state, the run's status, its open failures resolved when
    /// migrated.
    EndRun {
        run_id: i64,
        app: String,
        state: AppState,
        service: Option<String>,
        run_status: RunStatus,
    },
    /// Give an app's lease back.
    ReleaseLease { app: String, holder: String },
    /// Start an app's run: take its lease, move it to `running` unless it is migrated,
    /// needs a human or is mid-run, and create the run with its planned steps — all in the
    /// batch's transaction, so a fleet of starts costs a handful of commits.
    Begin(Box<BeginRun>),
    /// One statement of an app's failure path (see `queued`), in order with the rest.
    Exec(Box<super::queued::Exec>),
}

pub struct BeginRun {
    pub kind: String,
    pub runbook: String,
    pub params: String,
    pub app: String,
    /// (operation, params) of every planned step, in order.
    pub steps: Vec<(String, String)>,
    pub holder: String,
    pub pid: i64,
    pub host: String,
    pub ttl_secs: i64,
}

/// What a `Begin` found.
#[derive(Debug)]
pub enum Began {
    /// The run and its steps (all `pending`), in order.
    Run { run_id: i64, steps: Vec<StepRow> },
    /// Someone else holds the app's lease.
    Leased(Lease),
    /// The app's state forbids a new run (`migrated`, `needs_manual`, `running`, or
    /// `unknown` when the store does not know the app).
    State(String),
}

/// What one queued write produced.
#[derive(Debug)]
pub(super) enum Applied {
    Done,
    Began(Began),
    /// What a queued statement returned (its `RETURNING id`).
    Id(Option<i64>),
}

pub struct BackupRecord {
    pub app: String,
    pub service_id: String,
    pub run_id: i64,
    pub server: String,
    pub database: String,
    pub path: String,
    pub format: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub notes: String,
    /// When retention may delete it (RFC 3339); `None`: kept until an operator removes it.
    pub expires_at: Option<String>,
}

type Reply = oneshot::Sender<Result<Applied, String>>;

#[derive(Clone)]
pub(super) struct StoreWriter {
    tx: mpsc::UnboundedSender<(WriteOp, Option<Reply>)>,
}

impl StoreWriter {
    pub(super) fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(WriteOp, Option<Reply>)>();
        let handle = tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut conn = None;
            while rx.recv_many(&mut batch, 1024).await > 0 {
                let (ops, replies): (Vec<WriteOp>, Vec<Option<Reply>>) = batch.drain(..).unzip();
                if conn.is_none() {
                    match store.writer_connection().await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            let e = format!("the store writer cannot connect: {e:#}");
                            tracing::error!(error = %e);
                            for r in replies.into_iter().flatten() {
                                let _ = r.send(Err(e.clone()));
                            }
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                match store.apply(c, ops).await {
                    Ok(applied) => {
                        for (r, a) in replies.into_iter().zip(applied) {
                            if let Some(r) = r {
                                let _ = r.send(Ok(a));
                            }
                        }
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        tracing::error!(error = %e, "store write failed");
                        for r in replies.into_iter().flatten() {
                            let _ = r.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        (Self { tx }, handle)
    }

    /// Queue a write and wait until it is committed.
    pub(super) async fn write(&self, op: WriteOp) -> Result<()> {
        self.commit(op).await.map(|_| ())
    }

    /// Start an app's run (see `WriteOp::Begin`) once committed.
    pub(super) async fn begin(&self, run: BeginRun) -> Result<Began> {
        match self.commit(WriteOp::Begin(Box::new(run))).await? {
            Applied::Began(b) => Ok(b),
            _ => Err(eyre!("the store writer answered a begin with nothing")),
        }
    }

    /// Run a queued statement once committed; `Some(id)` for one that returns an id.
    pub(super) async fn exec(&self, e: super::queued::Exec) -> Result<Option<i64>> {
        match self.commit(WriteOp::Exec(Box::new(e))).await? {
            Applied::Id(id) => Ok(id),
            _ => Ok(None),
        }
    }

    async fn commit(&self, op: WriteOp) -> Result<Applied> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((op, Some(tx)))
            .map_err(|_| eyre!("the store writer has stopped"))?;
        rx.await
            .map_err(|_| eyre!("the store writer has stopped"))?
            .map_err(|e| eyre!(e))
    }

    /// Queue a write without waiting (step logs).
    pub(super) fn send(&self, op: WriteOp) {
        let _ = self.tx.send((op, None));
    }
}
