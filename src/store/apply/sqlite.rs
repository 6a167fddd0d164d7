//! The writer's batches on SQLite: every write of a batch goes as JSON arrays into one fixed
//! multi-statement query — one round trip to sqlx's worker thread, prepared once and cached,
//! whatever the batch holds. Only a run's start (which answers with its steps) goes on its
//! own, and splits the batch there so writes keep their order.

use color_eyre::eyre::Result;
use serde_json::{Value, json};

use super::super::runs::{Lease, StepRow};
use super::super::writer::{Applied, Began, BeginRun, WriteOp};
use super::super::{Store, now};

/// What one segment writes, each statement fed by a JSON array ($2…$8; $1 is now). An empty
/// array makes its statement a no-op.
const BODY: &str = "
UPDATE steps SET state = j.state, detail = COALESCE(j.detail, steps.detail),
    started_at = CASE WHEN j.started THEN $1 ELSE steps.started_at END,
    finished_at = CASE WHEN j.finished THEN $1 ELSE NULL END
  FROM (SELECT value->>0 AS id, value->>1 AS state, value->>2 AS detail, value->>3 AS started,
               value->>4 AS finished FROM json_each($2)) AS j
  WHERE steps.id = j.id;
UPDATE apps SET paused = j.paused, updated_at = $1
  FROM (SELECT value->>0 AS app, value->>1 AS paused FROM json_each($3)) AS j
  WHERE apps.name = j.app;
UPDATE apps SET state = j.state, paused = 0, current_service = COALESCE(j.service, apps.current_service),
    updated_at = $1
  FROM (SELECT value->>0 AS app, value->>1 AS state, value->>2 AS service FROM json_each($4)) AS j
  WHERE apps.name = j.app;
UPDATE runs SET status = j.status, finished_at = $1
  FROM (SELECT value->>3 AS id, value->>4 AS status FROM json_each($4)) AS j
  WHERE runs.id = j.id;
UPDATE failures SET status = 'resolved', resolved_at = $1
  WHERE status = 'open' AND app IN (SELECT value->>0 FROM json_each($4) WHERE value->>1 = 'migrated');
INSERT INTO backups (app, service_id, run_id, server, database, path, format, size_bytes, sha256, notes, created_at, expires_at, dump_bytes)
  SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7,
         value->>8, value->>9, $1, value->>10, value->>7 FROM json_each($5) WHERE true
  ON CONFLICT (app, run_id) DO UPDATE SET path = excluded.path, size_bytes = excluded.size_bytes,
    sha256 = excluded.sha256, created_at = excluded.created_at, expires_at = excluded.expires_at,
    dump_bytes = excluded.dump_bytes, compressed_at = NULL;
DELETE FROM leases WHERE app IN (SELECT value->>0 FROM json_each($6))
  AND holder = (SELECT value->>1 FROM json_each($6) WHERE value->>0 = leases.app);
INSERT INTO step_logs (step_id, at, stream, line)
  SELECT value->>0, $1, value->>1, value->>2 FROM json_each($7);
";

type Step<'a> = (i64, &'a str, Option<&'a str>, bool, bool);
type End<'a> = (&'a str, &'a str, Option<&'a str>, i64, &'a str);
type Backup<'a> = (
    &'a str,
    &'a str,
    i64,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
);

/// One segment's writes, serialized straight into the JSON arrays BODY reads (a tuple is an
/// array in serde_json), borrowed from the batch.
#[derive(Default)]
struct Segment<'a> {
    steps: Vec<Step<'a>>,
    paused: Vec<(&'a str, i32)>,
    ends: Vec<End<'a>>,
    backups: Vec<Backup<'a>>,
    releases: Vec<(&'a str, &'a str)>,
    logs: Vec<(i64, &'a str, &'a str)>,
    /// The Begin or queued statement that closes the segment, if any (index into the
    /// batch).
    begin: Option<usize>,
}

impl Store {
    pub(super) async fn apply_sqlite(
        &self,
        conn: &mut sqlx::SqliteConnection,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Applied>> {
        let now = now();
        let mut segments = vec![Segment::default()];
        for (k, op) in ops.iter().enumerate() {
            let seg = segments.last_mut().expect("one segment at least");
            match op {
                WriteOp::Started { .. } | WriteOp::Advance { .. } | WriteOp::Logs(_) => {}
                WriteOp::Begin(_) | WriteOp::Exec(_) => {
                    seg.begin = Some(k);
                    segments.push(Segment::default());
                }
                WriteOp::Backup(b) => seg.backups.push((
                    &b.app,
                    &b.service_id,
                    b.run_id,
                    &b.server,
                    &b.database,
                    &b.path,
                    &b.format,
                    b.size_bytes,
                    &b.sha256,
                    &b.notes,
                    b.expires_at.as_deref(),
                )),
                WriteOp::EndRun {
                    run_id,
                    app,
                    state,
                    service,
                    run_status,
                } => seg.ends.push((
                    app,
                    state.as_str(),
                    service.as_deref(),
                    *run_id,
                    run_status.as_str(),
                )),
                WriteOp::ReleaseLease { app, holder } => seg.releases.push((app, holder)),
            }
        }
        // Step transitions and paused flags of the whole batch first, log lines last (the
        // steps they name exist by then), as on every dialect.
        let (steps, paused) = super::collect_transitions(&ops);
        segments[0].steps = steps
            .iter()
            .map(|t| (t.id, t.state, t.detail, t.started, t.finished))
            .collect();
        segments[0].paused = paused.iter().map(|(a, p)| (*a, i32::from(*p))).collect();
        if let Some(last) = segments.last_mut() {
            last.logs = ops
                .iter()
                .filter_map(|o| match o {
                    WriteOp::Logs(l) => Some(l),
                    _ => None,
                })
                .flatten()
                .map(|(s, st, line)| (*s, st.as_str(), line.as_str()))
                .collect();
        }

        let n = segments.len();
        let mut answers: Vec<Applied> = Vec::new();
        let result: Result<()> = async {
            for (i, seg) in segments.iter().enumerate() {
                let start = if i == 0 { "BEGIN IMMEDIATE;" } else { "" };
                let end = if i + 1 == n { "COMMIT;" } else { "" };
                fn arr<T: serde::Serialize>(v: &[T]) -> String {
                    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
                }
                let begin = seg.begin.and_then(|k| match &ops[k] {
                    WriteOp::Begin(b) => Some(b),
                    _ => None,
                });
                // A segment ends with the next run's start, in the same round trip.
                let sql = format!(
                    "{start}{BODY}{}{end}",
                    if begin.is_some() { BEGIN_RUN } else { "" }
                );
                let q = sqlx::query_as::<_, StepRow>(sqlx::AssertSqlSafe(sql))
                    .bind(&now)
                    .bind(arr(&seg.steps))
                    .bind(arr(&seg.paused))
                    .bind(arr(&seg.ends))
                    .bind(arr(&seg.backups))
                    .bind(arr(&seg.releases))
                    .bind(arr(&seg.logs));
                match begin {
                    None => {
                        q.fetch_all(&mut *conn).await?;
                        if let Some(k) = seg.begin
                            && let WriteOp::Exec(e) = &ops[k]
                        {
                            answers.push(Applied::Id(super::super::queued::run_exec!(conn, e)));
                        }
                    }
                    Some(b) => {
                        let expires = (chrono::Utc::now() + chrono::Duration::seconds(b.ttl_secs))
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        let steps: Vec<Value> = b
                            .steps
                            .iter()
                            .enumerate()
                            .map(|(i, (op, params))| json!([i, op, params]))
                            .collect();
                        let rows = q
                            .bind(&b.app)
                            .bind(&b.holder)
                            .bind(b.pid)
                            .bind(&b.host)
                            .bind(&expires)
                            .bind(&b.kind)
                            .bind(&b.runbook)
                            .bind(&b.params)
                            .bind(Value::Array(steps).to_string())
                            .fetch_all(&mut *conn)
                            .await?;
                        answers.push(Applied::Began(match rows.first() {
                            Some(first) => Began::Run {
                                run_id: first.run_id,
                                steps: rows,
                            },
                            None => refused(conn, b).await?,
                        }));
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e);
        }
        Ok(super::in_order(&ops, answers))
    }
}

/// A run's start, after a segment's writes: each statement guarded by the one before
/// (`changes()`), the steps returned only if the run was created. Parameters follow BODY's:
/// $8 app, $9 holder, $10 pid, $11 host, $12 lease expiry, $13 kind, $14 runbook,
/// $15 params, $16 the steps as [[seq, operation, params], …]; $1 is now.
const BEGIN_RUN: &str = "
INSERT INTO leases (app, holder, pid, host, acquired_at, expires_at) VALUES ($8, $9, $10, $11, $1, $12)
  ON CONFLICT (app) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host,
    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
  WHERE leases.expires_at < $1 OR leases.holder = $9;
UPDATE apps SET state = 'running', paused = 0, updated_at = $1
  WHERE name = $8 AND state NOT IN ('migrated', 'needs_manual', 'running')
    AND EXISTS (SELECT 1 FROM leases WHERE app = $8 AND holder = $9);
INSERT INTO runs (kind, runbook, params, started_at) SELECT $13, $14, $15, $1 WHERE changes() = 1;
INSERT INTO steps (run_id, app, seq, operation, params, state, started_at)
  SELECT (SELECT MAX(id) FROM runs), $8, value->>0, value->>1, value->>2,
         CASE WHEN value->>0 = 0 THEN 'running' ELSE 'pending' END,
         CASE WHEN value->>0 = 0 THEN $1 END
  FROM json_each($16) WHERE changes() = 1;
SELECT id, run_id, app, seq, operation, state, attempt, params, detail, started_at, finished_at FROM steps
  WHERE run_id = (SELECT MAX(id) FROM runs) AND app = $8 AND changes() > 0 ORDER BY seq;
";

/// The start returned no steps: someone else holds the lease, or the app's state forbids a
/// run (then the lease this start took is given back).
async fn refused(conn: &mut sqlx::SqliteConnection, b: &BeginRun) -> Result<Began> {
    let lease: Option<Lease> = sqlx::query_as(
        "SELECT app, holder, pid, host, acquired_at, expires_at FROM leases WHERE app = $1",
    )
    .bind(&b.app)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(l) = lease.filter(|l| l.holder != b.holder) {
        return Ok(Began::Leased(l));
    }
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM apps WHERE name = $1")
        .bind(&b.app)
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM leases WHERE app = $1 AND holder = $2")
        .bind(&b.app)
        .bind(&b.holder)
        .execute(&mut *conn)
        .await?;
    Ok(Began::State(state.unwrap_or_else(|| "unknown".into())))
}
