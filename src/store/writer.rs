//! Group commit for the engine's hot path: step boundaries and step logs from every
//! concurrent migration go to one writer task, which commits whatever has queued up in one
//! transaction and then answers each caller. A caller that awaits its write still knows it
//! is durable before it goes on ("written before and after the work"); the store just does
//! one commit for many apps instead of one per statement.

use color_eyre::eyre::{Result, eyre};
use tokio::sync::{mpsc, oneshot};

use super::{Store, now};

pub enum WriteOp {
    /// A step begins (written before its work).
    Started { step: i64 },
    /// A step ended: its state and context snapshot, the app's paused flag if it changed,
    /// and the next step marked running.
    Advance {
        done: i64,
        state: &'static str,
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
        state: &'static str,
        service: Option<String>,
        run_status: &'static str,
    },
    /// Give an app's lease back.
    ReleaseLease { app: String, holder: String },
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
}

type Reply = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct StoreWriter {
    tx: mpsc::UnboundedSender<(WriteOp, Option<Reply>)>,
}

impl StoreWriter {
    pub fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(WriteOp, Option<Reply>)>();
        let handle = tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 1024).await > 0 {
                let (ops, replies): (Vec<WriteOp>, Vec<Option<Reply>>) = batch.drain(..).unzip();
                let result = store.apply(&ops).await.map_err(|e| format!("{e:#}"));
                if let Err(e) = &result {
                    tracing::error!(error = %e, "store write failed");
                }
                for r in replies.into_iter().flatten() {
                    let _ = r.send(result.clone());
                }
            }
        });
        (Self { tx }, handle)
    }

    /// Queue a write and wait until it is committed.
    pub async fn write(&self, op: WriteOp) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((op, Some(tx)))
            .map_err(|_| eyre!("the store writer has stopped"))?;
        rx.await
            .map_err(|_| eyre!("the store writer has stopped"))?
            .map_err(|e| eyre!(e))
    }

    /// Queue a write without waiting (step logs).
    pub fn send(&self, op: WriteOp) {
        let _ = self.tx.send((op, None));
    }
}

impl Store {
    /// Apply queued writes in one transaction.
    async fn apply(&self, ops: &[WriteOp]) -> Result<()> {
        let now = now();
        let logs: Vec<&(i64, String, String)> = ops
            .iter()
            .flat_map(|o| match o {
                WriteOp::Logs(l) => l.iter().collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        // Every step transition of the batch in one UPDATE: a batch is a handful of round
        // trips however many migrations are in it.
        let mut step_sets: Vec<(i64, &str, Option<&str>, bool)> = Vec::new(); // id, state, detail, finished
        let mut paused: Vec<(&str, bool)> = Vec::new();
        for op in ops {
            match op {
                WriteOp::Started { step } => step_sets.push((*step, "running", None, false)),
                WriteOp::Advance {
                    done,
                    state,
                    detail,
                    paused: p,
                    next,
                } => {
                    step_sets.push((*done, state, detail.as_deref(), true));
                    if let Some(n) = next {
                        step_sets.push((*n, "running", None, false));
                    }
                    if let Some((app, v)) = p {
                        paused.push((app.as_str(), *v));
                    }
                }
                _ => {}
            }
        }
        let steps_sql = (!step_sets.is_empty()).then(|| {
            let mut state = String::from("CASE id");
            let mut detail = String::from("CASE id");
            let mut started = String::from("CASE id");
            let mut finished = String::from("CASE id");
            let mut ids = Vec::new();
            for (k, set) in step_sets.iter().enumerate() {
                let (i, st, de) = (2 + 3 * k, 3 + 3 * k, 4 + 3 * k);
                state.push_str(&format!(" WHEN ${i} THEN ${st}"));
                detail.push_str(&format!(" WHEN ${i} THEN COALESCE(${de}, detail)"));
                if set.3 {
                    finished.push_str(&format!(" WHEN ${i} THEN $1"));
                } else {
                    started.push_str(&format!(" WHEN ${i} THEN $1"));
                    finished.push_str(&format!(" WHEN ${i} THEN NULL"));
                }
                ids.push(format!("${i}"));
            }
            // A CASE needs at least one WHEN.
            let case = |c: String, col: &str| {
                if c.contains(" WHEN ") {
                    format!("{c} ELSE {col} END")
                } else {
                    col.to_string()
                }
            };
            format!(
                "UPDATE steps SET state = {state} END, detail = {detail} ELSE detail END,
                   started_at = {}, finished_at = {}
                 WHERE id IN ({})",
                case(started, "started_at"),
                case(finished, "finished_at"),
                ids.join(", ")
            )
        });
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(sql) = &steps_sql {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&now);
                for (id, state, detail, _) in &step_sets {
                    q = q.bind(*id).bind(*state).bind(*detail);
                }
                q.execute(&mut *tx).await?;
            }
            for (app, p) in &paused {
                sqlx::query("UPDATE apps SET paused = $1, updated_at = $2 WHERE name = $3")
                    .bind(i32::from(*p)).bind(&now).bind(*app).execute(&mut *tx).await?;
            }
            for op in ops {
                match op {
                    WriteOp::Started { .. } | WriteOp::Advance { .. } | WriteOp::Logs(_) => {}
                    WriteOp::Backup(b) => {
                        sqlx::query("INSERT INTO backups (app, service_id, run_id, server, database, path, format, size_bytes, sha256, notes, created_at)
                                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                                     ON CONFLICT (app, run_id) DO UPDATE SET path = excluded.path, size_bytes = excluded.size_bytes,
                                       sha256 = excluded.sha256, created_at = excluded.created_at")
                            .bind(&b.app).bind(&b.service_id).bind(b.run_id).bind(&b.server).bind(&b.database)
                            .bind(&b.path).bind(&b.format).bind(b.size_bytes).bind(&b.sha256).bind(&b.notes).bind(&now)
                            .execute(&mut *tx).await?;
                    }
                    WriteOp::EndRun { run_id, app, state, service, run_status } => {
                        sqlx::query("UPDATE apps SET state = $1, paused = 0, current_service = COALESCE($2, current_service), updated_at = $3 WHERE name = $4")
                            .bind(*state).bind(service.as_deref()).bind(&now).bind(app).execute(&mut *tx).await?;
                        sqlx::query("UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3")
                            .bind(*run_status).bind(&now).bind(run_id).execute(&mut *tx).await?;
                        if *state == "migrated" {
                            sqlx::query("UPDATE failures SET status = 'resolved', resolved_at = $1 WHERE status = 'open' AND app = $2")
                                .bind(&now).bind(app).execute(&mut *tx).await?;
                        }
                    }
                    WriteOp::ReleaseLease { app, holder } => {
                        sqlx::query("DELETE FROM leases WHERE app = $1 AND holder = $2")
                            .bind(app).bind(holder).execute(&mut *tx).await?;
                    }
                }
            }
            for chunk in logs.chunks(200) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(${}, $1, ${}, ${})", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i))
                    .collect();
                let sql = format!("INSERT INTO step_logs (step_id, at, stream, line) VALUES {}", values.join(", "));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&now);
                for (step, stream, line) in chunk {
                    q = q.bind(*step).bind(stream.as_str()).bind(line.as_str());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
