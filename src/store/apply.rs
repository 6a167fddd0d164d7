//! How the writer's queued writes reach the database: one transaction per batch, and as few
//! round trips to the database as the dialect allows. For SQLite every statement is a hop to
//! sqlx's worker thread (two context switches), and at fleet scale those hops, not SQLite's
//! work, were the cost; so statements without results are sent as one multi-statement
//! query. PostgreSQL gets them one by one inside the same transaction.

use crate::domain::AppState;
use color_eyre::eyre::Result;

use super::runs::{Lease, STEP_COLUMNS, StepRow};
use super::writer::{Applied, Began, BeginRun, WriteOp};
use super::{Store, now};

mod sqlite;

/// A bound value.
#[derive(Clone, Copy)]
enum V<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// One statement, placeholders numbered `$1…$n` for its own `args`.
struct Stmt<'a> {
    sql: String,
    args: Vec<V<'a>>,
}

/// Statements without results, in order, waiting to be sent.
#[derive(Default)]
struct Pending<'a> {
    stmts: Vec<Stmt<'a>>,
}

impl<'a> Pending<'a> {
    fn push(&mut self, sql: impl Into<String>, args: Vec<V<'a>>) {
        self.stmts.push(Stmt {
            sql: sql.into(),
            args,
        });
    }
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for v in $args {
            q = match *v {
                V::Int(x) => q.bind(x),
                V::Text(s) => q.bind(s),
                V::OptText(o) => q.bind(o),
            };
        }
        q
    }};
}

/// Send what is pending, one statement at a time, inside the open transaction.
macro_rules! flush {
    ($conn:expr, $pending:expr) => {{
        for s in $pending.stmts.drain(..) {
            bind_all!(sqlx::query(sqlx::AssertSqlSafe(s.sql)), &s.args)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}

/// Take the lease, move the app to `running` if its state allows, create the run and its
/// steps; or say why not, leaving nothing behind.
macro_rules! begin_run {
    ($conn:expr, $b:expr, $now:expr) => {{
        let b: &BeginRun = $b;
        let now: &str = $now;
        let expires = (chrono::Utc::now() + chrono::Duration::seconds(b.ttl_secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let took = sqlx::query(
            "INSERT INTO leases (app, holder, pid, host, acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (app) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,
               acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
             WHERE leases.expires_at < $5 OR leases.holder = $2",
        )
        .bind(&b.app)
        .bind(&b.holder)
        .bind(b.pid)
        .bind(&b.host)
        .bind(now)
        .bind(&expires)
        .execute(&mut *$conn)
        .await?
        .rows_affected()
            == 1;
        if !took {
            let lease: Lease = sqlx::query_as(
                "SELECT app, holder, pid, host, acquired_at, expires_at FROM leases WHERE app = $1",
            )
            .bind(&b.app)
            .fetch_one(&mut *$conn)
            .await?;
            Began::Leased(lease)
        } else if sqlx::query(
            "UPDATE apps SET state = 'running', paused = 0, updated_at = $1
             WHERE name = $2 AND state NOT IN ('migrated', 'needs_manual', 'running')",
        )
        .bind(now)
        .bind(&b.app)
        .execute(&mut *$conn)
        .await?
        .rows_affected()
            == 0
        {
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM apps WHERE name = $1")
                .bind(&b.app)
                .fetch_optional(&mut *$conn)
                .await?;
            sqlx::query("DELETE FROM leases WHERE app = $1 AND holder = $2")
                .bind(&b.app)
                .bind(&b.holder)
                .execute(&mut *$conn)
                .await?;
            Began::State(state.unwrap_or_else(|| "unknown".into()))
        } else {
            let run_id: i64 = sqlx::query_scalar(
                "INSERT INTO runs (kind, runbook, params, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&b.kind)
            .bind(&b.runbook)
            .bind(&b.params)
            .bind(now)
            .fetch_one(&mut *$conn)
            .await?;
            let mut steps: Vec<StepRow> = if b.steps.is_empty() {
                Vec::new()
            } else {
                // The first step is marked running here: written before its work starts.
                let values: Vec<String> = (0..b.steps.len())
                    .map(|i| {
                        let (state, started) = if i == 0 { ("'running'", "$3") } else { ("'pending'", "NULL") };
                        format!("($1, $2, {i}, ${}, ${}, {state}, {started})", 4 + 2 * i, 5 + 2 * i)
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO steps (run_id, app, seq, operation, params, state, started_at) VALUES {} RETURNING {STEP_COLUMNS}",
                    values.join(", ")
                );
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(run_id).bind(&b.app).bind(now);
                for (o, p) in &b.steps {
                    q = q.bind(o).bind(p);
                }
                q.fetch_all(&mut *$conn).await?
            };
            steps.sort_by_key(|r| r.seq);
            Began::Run { run_id, steps }
        }
    }};
}

/// The writer's own connection, held for its whole life: a pooled connection is pinged and
/// handed back through a spawned task after every use, which at fleet scale was a fifth of
/// each batch's time.
pub(super) enum WriterConn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Store {
    /// A connection for the writer alone: a second SQLite connection to the same file (WAL:
    /// readers are not blocked, writers wait on busy_timeout), or one from the PostgreSQL pool.
    pub(super) async fn writer_connection(&self) -> Result<WriterConn> {
        use sqlx::Connection;
        Ok(match self {
            Store::Sqlite(pool) => WriterConn::Sqlite(
                sqlx::SqliteConnection::connect_with(&pool.connect_options()).await?,
            ),
            Store::Postgres(pool) => WriterConn::Postgres(pool.acquire().await?.detach()),
        })
    }

    /// Apply queued writes in one transaction; one answer per write, in order.
    pub(super) async fn apply(
        &self,
        writer: &mut WriterConn,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Applied>> {
        match writer {
            WriterConn::Sqlite(c) => self.apply_sqlite(c, ops).await,
            WriterConn::Postgres(c) => self.apply_postgres(c, ops).await,
        }
    }

    /// PostgreSQL: statement by statement in one transaction. Step transitions and paused
    /// flags of the whole batch are one statement each; log lines are inserted last, so the
    /// steps they name exist.
    async fn apply_postgres(
        &self,
        conn: &mut sqlx::PgConnection,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Applied>> {
        let now = now();
        let mut pending = Pending::default();
        let (steps, paused) = transitions(&ops, &now);
        pending.stmts.extend(steps);
        pending.stmts.extend(paused);
        let mut began_at: Vec<usize> = Vec::new();
        // Statements of every write up to its turn; a Begin needs answers, so it is sent on
        // its own after what queued before it.
        let mut segments: Vec<(Pending, Option<usize>)> = Vec::new();
        for (k, op) in ops.iter().enumerate() {
            match op {
                WriteOp::Started { .. } | WriteOp::Advance { .. } | WriteOp::Logs(_) => {}
                WriteOp::Begin(_) | WriteOp::Exec(_) => {
                    segments.push((std::mem::take(&mut pending), Some(k)));
                    began_at.push(k);
                }
                WriteOp::Backup(b) => pending.push(
                    "INSERT INTO backups (app, service_id, run_id, server, database, path, format, size_bytes, sha256, notes, created_at, expires_at, dump_bytes)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $8)
                     ON CONFLICT (app, run_id) DO UPDATE SET path = excluded.path, size_bytes = excluded.size_bytes,
                       sha256 = excluded.sha256, created_at = excluded.created_at, expires_at = excluded.expires_at,
                       dump_bytes = excluded.dump_bytes, compressed_at = NULL",
                    vec![
                        V::Text(&b.app),
                        V::Text(&b.service_id),
                        V::Int(b.run_id),
                        V::Text(&b.server),
                        V::Text(&b.database),
                        V::Text(&b.path),
                        V::Text(&b.format),
                        V::Int(b.size_bytes),
                        V::Text(&b.sha256),
                        V::Text(&b.notes),
                        V::Text(&now),
                        V::OptText(b.expires_at.as_deref()),
                    ],
                ),
                WriteOp::EndRun {
                    run_id,
                    app,
                    state,
                    service,
                    run_status,
                } => {
                    pending.push(
                        "UPDATE apps SET state = $1, paused = 0, current_service = COALESCE($2, current_service), updated_at = $3 WHERE name = $4",
                        vec![V::Text(state.as_str()), V::OptText(service.as_deref()), V::Text(&now), V::Text(app)],
                    );
                    pending.push(
                        "UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3",
                        vec![V::Text(run_status.as_str()), V::Text(&now), V::Int(*run_id)],
                    );
                    if *state == AppState::Migrated {
                        pending.push(
                            "UPDATE failures SET status = 'resolved', resolved_at = $1 WHERE status = 'open' AND app = $2",
                            vec![V::Text(&now), V::Text(app)],
                        );
                    }
                }
                WriteOp::ReleaseLease { app, holder } => pending.push(
                    "DELETE FROM leases WHERE app = $1 AND holder = $2",
                    vec![V::Text(app), V::Text(holder)],
                ),
            }
        }
        logs(&ops, &now, &mut pending);
        segments.push((pending, None));

        let mut answers: Vec<Applied> = Vec::new();
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        let result: Result<()> = async {
            for (mut p, begin) in segments {
                flush!(conn, p);
                match begin.map(|k| &ops[k]) {
                    Some(WriteOp::Begin(b)) => {
                        answers.push(Applied::Began(begin_run!(conn, b, &now)));
                    }
                    Some(WriteOp::Exec(e)) => {
                        answers.push(Applied::Id(super::queued::run_exec!(conn, e)));
                    }
                    _ => {}
                }
            }
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e);
        }
        Ok(in_order(&ops, answers))
    }
}

/// One answer per queued write: the Begins' and queued statements' answers where they stood,
/// `Done` for the rest.
fn in_order(ops: &[WriteOp], answers: Vec<Applied>) -> Vec<Applied> {
    let mut answers = answers.into_iter();
    ops.iter()
        .map(|op| match op {
            WriteOp::Begin(_) | WriteOp::Exec(_) => answers.next().unwrap_or(Applied::Done),
            _ => Applied::Done,
        })
        .collect()
}

/// A step's state change in a batch.
struct Transition<'a> {
    id: i64,
    state: &'a str,
    detail: Option<&'a str>,
    started: bool,
    finished: bool,
}

/// The batch's step transitions (one per step, the later winning) and paused flags (one per
/// app, the later winning).
fn collect_transitions<'a>(ops: &'a [WriteOp]) -> (Vec<Transition<'a>>, Vec<(&'a str, bool)>) {
    let mut sets: Vec<Transition> = Vec::new();
    let mut at: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    // A step can start and end within one batch (its start was queued, not awaited): one
    // entry per step, the later transition winning, started and ended both stamped.
    let mut set =
        |id: i64, state: &'a str, detail: Option<&'a str>, finished: bool| match at.get(&id) {
            Some(&k) => {
                let t = &mut sets[k];
                t.state = state;
                t.detail = detail.or(t.detail);
                t.started |= !finished;
                t.finished = finished;
            }
            None => {
                at.insert(id, sets.len());
                sets.push(Transition {
                    id,
                    state,
                    detail,
                    started: !finished,
                    finished,
                });
            }
        };
    let mut paused: Vec<(&str, bool)> = Vec::new();
    for op in ops {
        match op {
            WriteOp::Started { step } => set(*step, "running", None, false),
            WriteOp::Advance {
                done,
                state,
                detail,
                paused: p,
                next,
            } => {
                set(*done, state.as_str(), detail.as_deref(), true);
                if let Some(n) = next {
                    set(*n, "running", None, false);
                }
                if let Some((app, v)) = p {
                    paused.retain(|(a, _)| *a != app.as_str());
                    paused.push((app.as_str(), *v));
                }
            }
            _ => {}
        }
    }
    (sets, paused)
}

/// Every step transition of the batch as one UPDATE, and every paused flag as another.
fn transitions<'a>(ops: &'a [WriteOp], now: &'a str) -> (Vec<Stmt<'a>>, Vec<Stmt<'a>>) {
    let (sets, paused) = collect_transitions(ops);
    let mut steps = Vec::new();
    if !sets.is_empty() {
        let mut state = String::from("CASE id");
        let mut detail = String::from("CASE id");
        let mut started = String::from("CASE id");
        let mut finished = String::from("CASE id");
        let mut args = vec![V::Text(now)];
        for (k, t) in sets.iter().enumerate() {
            let (i, s, d) = (2 + 3 * k, 3 + 3 * k, 4 + 3 * k);
            state.push_str(&format!(" WHEN ${i} THEN ${s}"));
            detail.push_str(&format!(" WHEN ${i} THEN COALESCE(${d}, detail)"));
            if t.started {
                started.push_str(&format!(" WHEN ${i} THEN $1"));
            }
            if t.finished {
                finished.push_str(&format!(" WHEN ${i} THEN $1"));
            } else {
                finished.push_str(&format!(" WHEN ${i} THEN NULL"));
            }
            args.extend([V::Int(t.id), V::Text(t.state), V::OptText(t.detail)]);
        }
        // A CASE needs at least one WHEN.
        let case = |c: String, col: &str| {
            if c.contains(" WHEN ") {
                format!("{c} ELSE {col} END")
            } else {
                col.to_string()
            }
        };
        let ids: Vec<String> = (0..sets.len()).map(|k| format!("${}", 2 + 3 * k)).collect();
        steps.push(Stmt {
            sql: format!(
                "UPDATE steps SET state = {state} END, detail = {detail} ELSE detail END,
                   started_at = {}, finished_at = {}
                 WHERE id IN ({})",
                case(started, "started_at"),
                case(finished, "finished_at"),
                ids.join(", ")
            ),
            args,
        });
    }
    let mut flags = Vec::new();
    if !paused.is_empty() {
        let whens: String = (0..paused.len())
            .map(|k| format!(" WHEN ${} THEN ${}", 2 + 2 * k, 3 + 2 * k))
            .collect();
        let names: Vec<String> = (0..paused.len())
            .map(|k| format!("${}", 2 + 2 * k))
            .collect();
        let mut args = vec![V::Text(now)];
        for (app, p) in &paused {
            args.extend([V::Text(app), V::Int(i64::from(*p))]);
        }
        flags.push(Stmt {
            sql: format!(
                "UPDATE apps SET paused = CASE name{whens} ELSE paused END, updated_at = $1 WHERE name IN ({})",
                names.join(", ")
            ),
            args,
        });
    }
    (steps, flags)
}

/// The batch's log lines, 200 rows an INSERT.
fn logs<'a>(ops: &'a [WriteOp], now: &'a str, pending: &mut Pending<'a>) {
    let lines: Vec<&(i64, String, String)> = ops
        .iter()
        .flat_map(|o| match o {
            WriteOp::Logs(l) => l.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    for chunk in lines.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, $1, ${}, ${})", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i))
            .collect();
        let mut args = vec![V::Text(now)];
        for (step, stream, line) in chunk {
            args.extend([V::Int(*step), V::Text(stream), V::Text(line)]);
        }
        pending.push(
            format!(
                "INSERT INTO step_logs (step_id, at, stream, line) VALUES {}",
                values.join(", ")
            ),
            args,
        );
    }
}
