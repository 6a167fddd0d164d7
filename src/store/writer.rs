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
        let advance = "UPDATE steps SET
                         state = CASE WHEN id = $1 THEN $5 ELSE 'running' END,
                         started_at = CASE WHEN id = $1 THEN started_at ELSE $2 END,
                         finished_at = CASE WHEN id = $1 THEN $2 ELSE NULL END,
                         detail = CASE WHEN id = $1 THEN COALESCE($3, detail) ELSE detail END
                       WHERE id = $1 OR id = $4";
        let logs: Vec<&(i64, String, String)> = ops
            .iter()
            .flat_map(|o| match o {
                WriteOp::Logs(l) => l.iter().collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for op in ops {
                match op {
                    WriteOp::Started { step } => {
                        sqlx::query("UPDATE steps SET state = 'running', started_at = $1, finished_at = NULL WHERE id = $2")
                            .bind(&now).bind(step).execute(&mut *tx).await?;
                    }
                    WriteOp::Advance { done, state, detail, paused, next } => {
                        sqlx::query(advance)
                            .bind(done).bind(&now).bind(detail.as_deref()).bind(next).bind(*state)
                            .execute(&mut *tx).await?;
                        if let Some((app, p)) = paused {
                            sqlx::query("UPDATE apps SET paused = $1, updated_at = $2 WHERE name = $3")
                                .bind(i32::from(*p)).bind(&now).bind(app).execute(&mut *tx).await?;
                        }
                    }
                    WriteOp::Logs(_) => {}
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
