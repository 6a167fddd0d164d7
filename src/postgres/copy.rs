//! pgshift's own copy of a database: one `COPY … TO STDOUT` per table from OLD, in one
//! exported snapshot, feeds at once NEW's `COPY … FROM STDIN`, the kept backup (a
//! directory-format archive plain `pg_restore` reads, see [`archive`]) and OLD's row hashes
//! ([`RowHash::CopyLine`]). OLD is read once and the backup is never read back. Each table's
//! indexes are built and NEW's copy of it hashed as soon as its rows are in, while other
//! tables still stream.
//!
//! The shape of one copy ([`copy_database`]):
//! 1. `pg_dump --snapshot` of everything but the streamed tables' rows (schema, sequences,
//!    large objects) into `DIR.partial`; its `toc.dat` names what NEW needs;
//! 2. `pg_restore` of the pre-data part of that TOC into NEW;
//! 3. the tables, largest first, on `jobs` pairs of connections: rows into `NNNN.dat`, into
//!    NEW and through the row hash; per table, then, its indexes and primary/unique keys on
//!    NEW, and NEW's copy hashed back;
//! 4. `toc.dat` rewritten with a `TABLE DATA` entry per streamed table; `pg_restore` of the
//!    rest (sequence values, foreign keys, triggers, materialized views, grants) into NEW;
//! 5. the files synced, `DIR.partial` renamed `DIR`: a directory named `DIR` is complete.
//!
//! The dump strategy's backup step uses it; so can any strategy that needs a first copy in a
//! snapshot it holds ([`Plan::snapshot`]).

pub mod archive;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::Executor;
use sqlx::postgres::PgConnection;
use tokio_util::sync::CancellationToken;

use super::process::{self, ChildOutcome, ChildSpec, PassFile, Stream, conninfo};
use super::verify::{self, Fingerprint, ReadOptions, RowHash, TableHashes};
use super::{Endpoint, exec, ident, literal};
use archive::{SECTION_POST_DATA, Toc};

/// Bytes gathered from OLD before they go to the file, the hash and NEW.
const CHUNK: usize = 256 * 1024;
/// Connections building indexes on NEW, and hashing NEW's tables back, as tables land.
const INDEX_JOBS: usize = 2;
const HASH_JOBS: usize = 2;
/// What pg_dump ends each table's data file with.
const END_OF_DATA: &[u8] = b"\\.\n\n\n";

/// A database on a server pgshift administers.
#[derive(Clone, Copy)]
pub struct Db<'a> {
    pub endpoint: &'a Endpoint,
    pub database: &'a str,
}

/// One copy of OLD into NEW.
pub struct Plan<'a> {
    pub old: Db<'a>,
    pub new: Db<'a>,
    /// NEW's objects are created and loaded as this role (pg_restore's `--role`, `--no-owner`).
    pub role: &'a str,
    /// Session settings for pg_dump's session on OLD, `name=value` (no timeouts, say).
    pub old_settings: Vec<String>,
    /// Session settings for NEW's sessions, `name=value` (`statement_timeout=0`, a
    /// remediation's `default_toast_compression=pglz`, …); pg_restore gets them as PGOPTIONS.
    pub settings: Vec<String>,
    /// Where the kept archive goes; it exists only once complete (written in `DIR.partial`).
    pub archive: PathBuf,
    /// PostgreSQL client binaries (pg_dump, pg_restore) and where their records go.
    pub pg_bin: &'a Path,
    pub run_dir: &'a Path,
    /// Tables streamed at once.
    pub jobs: usize,
    /// An exported snapshot of OLD the caller holds open (a replication slot's, say); without
    /// one, the copy exports and holds its own.
    pub snapshot: Option<String>,
}

/// What a copy did.
#[derive(Debug)]
pub struct Outcome {
    /// The archive's total size and sha256 (of its `sha256sum` listing, as the dump path's).
    pub archive: (u64, String),
    /// OLD as read in the snapshot, tables hashed from the stream.
    pub old: Fingerprint,
    /// NEW's tables hashed back as each was loaded.
    pub new_tables: TableHashes,
    /// Tables streamed and their rows.
    pub tables: usize,
    pub rows: i64,
    /// Seconds from the start to the end of each phase.
    pub seconds: Vec<(&'static str, f64)>,
}

/// A table whose rows pgshift streams.
#[derive(Debug, Clone)]
struct Table {
    schema: String,
    name: String,
    /// `schema.table`, quoted as needed: the fingerprint's key too.
    qualified: String,
    /// Stored columns, quoted, in order (generated columns are not copied, as in pg_dump).
    columns: String,
}

impl Table {
    fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns)
        }
    }
    fn copy_to(&self) -> String {
        format!("COPY {}{} TO STDOUT", self.qualified, self.column_list())
    }
    fn copy_from(&self) -> String {
        format!(
            "COPY {}{} FROM STDIN WITH (FREEZE)",
            self.qualified,
            self.column_list()
        )
    }
    /// As pg_dump writes it in the TOC.
    fn toc_copy_stmt(&self) -> String {
        format!(
            "COPY {}{} FROM stdin;\n",
            self.qualified,
            self.column_list()
        )
    }
}

/// A table's stream, done.
struct Streamed {
    index: usize,
    rows: i64,
    hash: u64,
    file: (String, u64, String),
}

/// The order-independent hash of a table's rows as COPY text: the wrapping sum of each row's
/// xxh3-64, row counted. Shared with verification (`RowHash::CopyLine`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LineHash {
    pub rows: i64,
    pub sum: u64,
}

impl LineHash {
    /// One row, as a COPY TO STDOUT message carries it (with its newline).
    pub fn add(&mut self, row: &[u8]) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxhash_rust::xxh3::xxh3_64(row));
    }
    pub fn value(&self) -> (i64, String) {
        (self.rows, self.sum.to_string())
    }
}

/// The client encoding a COPY of `conn`'s database is read and written in: the database's
/// own, so rows are byte for byte what pg_dump would write.
pub async fn database_encoding(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar(
        "SELECT pg_encoding_to_char(encoding)::text FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(conn)
    .await?)
}

async fn old_session(old: Db<'_>, snapshot: &str, encoding: &str) -> Result<PgConnection> {
    let mut c = old.endpoint.connect(old.database).await?;
    exec(
        &mut c,
        format!(
            "{}; SET client_encoding = {}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            verify::SESSION,
            literal(encoding),
            literal(snapshot)
        ),
    )
    .await?;
    Ok(c)
}

async fn new_session(plan: &Plan<'_>, encoding: &str) -> Result<PgConnection> {
    let mut c = plan.new.endpoint.connect(plan.new.database).await?;
    let mut sql = format!(
        "{}; SET client_encoding = {}; SET ROLE {}; SET search_path = ''; SET row_security = off; SET default_tablespace = ''; SET check_function_bodies = false",
        verify::SESSION,
        literal(encoding),
        ident(plan.role)
    );
    for s in &plan.settings {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| eyre!("session setting {s:?} is not name=value"))?;
        sql.push_str(&format!(
            "; SET {} = {}",
            ident(k.trim()),
            literal(v.trim())
        ));
    }
    exec(&mut c, sql).await?;
    Ok(c)
}

/// The tables of OLD pgshift streams, largest first, as seen in the snapshot.
async fn tables(conn: &mut PgConnection) -> Result<Vec<Table>> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(
        format!(
            "SELECT n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname),
                coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND {} AND {} ORDER BY pg_relation_size(c.oid) DESC, 3",
            verify::USER_SCHEMAS,
            verify::NOT_EXTENSION_MEMBER
        ),
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, qualified, columns)| Table {
            schema,
            name,
            qualified,
            columns,
        })
        .collect())
}

/// A pg_dump pattern naming exactly `schema.table`.
fn exact_pattern(schema: &str, table: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(schema), q(table))
}

fn pgoptions(settings: &[String]) -> String {
    settings
        .iter()
        .map(|s| format!("-c {s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Is a failed pg_restore's only complaint ownership (harmless under `--no-owner`)?
fn harmless(errors: &[String]) -> bool {
    !errors.is_empty() && errors.iter().all(|e| e.contains("must be owner of"))
}

/// Copy OLD into NEW (empty, created by the caller) and keep the archive, as the module says.
pub async fn copy_database(
    plan: &Plan<'_>,
    cancel: &CancellationToken,
    on_line: &mut (dyn FnMut(Stream, String) + Send),
) -> Result<Outcome> {
    let started = Instant::now();
    let mut seconds = Vec::new();
    let partial = partial_dir(&plan.archive);
    for d in [&plan.archive, &partial] {
        if d.exists() {
            // A copy that died half-way: start over.
            std::fs::remove_dir_all(d)?;
        }
    }
    if let Some(parent) = plan.archive.parent() {
        std::fs::create_dir_all(parent)?;
    }

    // The snapshot every read of OLD shares: the caller's, or one held here to the end.
    let mut holder = plan.old.endpoint.connect(plan.old.database).await?;
    let encoding = database_encoding(&mut holder).await?;
    let snapshot = match &plan.snapshot {
        Some(s) => s.clone(),
        None => {
            holder
                .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut holder)
                .await?
        }
    };
    let mut reader = old_session(plan.old, &snapshot, &encoding).await?;
    let tables = tables(&mut reader).await?;

    // 1. Everything but the streamed rows.
    let pass = PassFile::new(plan.run_dir, &[plan.old.endpoint, plan.new.endpoint])?;
    let mut args: Vec<OsString> = vec![
        "--format=directory".into(),
        "--compress=0".into(),
        format!("--snapshot={snapshot}").into(),
        "--file".into(),
        partial.as_os_str().to_owned(),
    ];
    for t in &tables {
        args.push(format!("--exclude-table-data={}", exact_pattern(&t.schema, &t.name)).into());
    }
    args.extend([
        "--dbname".into(),
        conninfo(plan.old.endpoint, plan.old.database).into(),
    ]);
    let dumped = process::run(
        ChildSpec {
            program: plan.pg_bin.join("pg_dump"),
            args,
            env: vec![
                ("PGPASSFILE".into(), pass.path().display().to_string()),
                ("PGOPTIONS".into(), pgoptions(&plan.old_settings)),
            ],
            record_dir: Some(plan.run_dir.to_path_buf()),
            ..Default::default()
        },
        cancel,
        &mut *on_line,
    )
    .await?;
    if !dumped.success {
        bail!("pg_dump of the schema exited with {:?}", dumped.code);
    }
    let toc_path = partial.join("toc.dat");
    let mut toc = Toc::parse(&std::fs::read(&toc_path)?).wrap_err("reading pg_dump's toc.dat")?;
    seconds.push(("pg_dump of the schema", started.elapsed().as_secs_f64()));

    // The data entries the archive will have, and what runs on NEW per table once loaded.
    let at = toc.data_position();
    let pre: BTreeSet<i64> = toc.entries[..at].iter().map(|e| e.dump_id).collect();
    let mut data = Vec::with_capacity(tables.len());
    let mut table_ids = BTreeMap::new();
    for (next_id, (i, t)) in (toc.next_dump_id()..).zip(tables.iter().enumerate()) {
        let entry = toc
            .table(&t.schema, &t.name)
            .ok_or_else(|| eyre!("pg_dump's TOC has no TABLE entry for {}", t.qualified))?;
        table_ids.insert(entry.dump_id, i);
        data.push(Toc::data_entry(
            entry,
            next_id,
            t.toc_copy_stmt(),
            format!("{next_id}.dat"),
        ));
    }
    let mut per_table: Vec<Vec<String>> = vec![Vec::new(); tables.len()];
    let mut done_here = BTreeSet::new();
    for e in &toc.entries[at..] {
        if e.section != SECTION_POST_DATA || !matches!(e.desc(), "INDEX" | "CONSTRAINT") {
            continue;
        }
        let ours: Vec<usize> = e
            .dep_ids()
            .filter_map(|d| table_ids.get(&d).copied())
            .collect();
        let rest_pre = e
            .dep_ids()
            .all(|d| table_ids.contains_key(&d) || pre.contains(&d));
        if let ([i], true, Some(defn)) = (&ours[..], rest_pre, &e.defn) {
            per_table[*i].push(defn.clone());
            done_here.insert(e.dump_id);
        }
    }

    // 2. NEW's schema before the rows.
    let pre_list = list_file(
        &partial,
        "pre-data.list",
        toc.entries[..at].iter().map(|e| e.dump_id),
    )?;
    restore_list(
        plan,
        &partial,
        &pre_list,
        &pass,
        cancel,
        &mut *on_line,
        "pre-data",
    )
    .await?;
    seconds.push(("NEW's schema", started.elapsed().as_secs_f64()));

    // 3. The rows, teed; each table's indexes and hash on NEW as it lands.
    let queue = Arc::new(Mutex::new(
        (0..tables.len()).collect::<std::collections::VecDeque<_>>(),
    ));
    let (loaded_tx, loaded_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let (hash_tx, hash_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let tables = Arc::new(tables);
    let mut workers = Vec::new();
    for _ in 0..plan.jobs.max(1) {
        let mut old = old_session(plan.old, &snapshot, &encoding).await?;
        let mut new = new_session(plan, &encoding).await?;
        let (queue, tables, loaded_tx, hash_tx) = (
            queue.clone(),
            tables.clone(),
            loaded_tx.clone(),
            hash_tx.clone(),
        );
        let data = &data;
        let partial = &partial;
        workers.push(async move {
            let mut out = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(i) = next else { break };
                let file = partial.join(data[i].filename.as_deref().unwrap_or_default());
                let s = stream_table(&mut old, &mut new, &tables[i], i, &file)
                    .await
                    .wrap_err_with(|| format!("copying {}", tables[i].qualified))?;
                let _ = loaded_tx.send(i);
                let _ = hash_tx.send(i);
                out.push(s);
            }
            let _ = sqlx::Connection::close(old).await;
            let _ = sqlx::Connection::close(new).await;
            Ok::<_, color_eyre::eyre::Report>(out)
        });
    }
    drop((loaded_tx, hash_tx));
    let indexes = build_indexes(plan, &encoding, &per_table, loaded_rx, INDEX_JOBS);
    let hashes = hash_new(plan, &encoding, &tables, hash_rx, HASH_JOBS);
    let fingerprint = async {
        // Everything but the tables' rows, in the same snapshot, meanwhile.
        let how = ReadOptions {
            row_hash: RowHash::CopyLine,
            connections: 1,
            snapshot: Some(snapshot.clone()),
            known: tables
                .iter()
                .map(|t| (t.qualified.clone(), (0, String::new())))
                .collect(),
        };
        verify::fingerprint(plan.old.endpoint, plan.old.database, &how).await
    };
    let work = async {
        tokio::try_join!(
            async {
                let r = futures::future::try_join_all(workers).await?;
                Ok::<_, color_eyre::eyre::Report>(stamp(started, "rows streamed", r))
            },
            async {
                Ok::<_, color_eyre::eyre::Report>(stamp(started, "indexes built", indexes.await?))
            },
            async {
                Ok::<_, color_eyre::eyre::Report>(stamp(started, "NEW hashed back", hashes.await?))
            },
            fingerprint
        )
    };
    let ((streamed, t1), ((), t2), (new_tables, t3), mut old_fp) = tokio::select! {
        r = work => r?,
        _ = cancel.cancelled() => bail!("copy cancelled"),
    };
    seconds.extend([t1, t2, t3]);
    let _ = sqlx::Connection::close(reader).await;
    let _ = sqlx::Connection::close(holder).await;
    let mut streamed: Vec<Streamed> = streamed.into_iter().flatten().collect();
    streamed.sort_by_key(|s| s.index);

    // 4. The archive's full TOC, then the rest on NEW from it.
    let rest: Vec<i64> = toc.entries[at..]
        .iter()
        .map(|e| e.dump_id)
        .filter(|id| !done_here.contains(id))
        .collect();
    toc.entries.splice(at..at, data.iter().cloned());
    let toc_bytes = toc.to_bytes();
    std::fs::write(&toc_path, &toc_bytes)?;
    let rest_list = list_file(&partial, "post-data.list", rest.into_iter())?;
    let sync = {
        let partial = partial.clone();
        tokio::task::spawn_blocking(move || sync_dir(&partial))
    };
    restore_list(
        plan,
        &partial,
        &rest_list,
        &pass,
        cancel,
        on_line,
        "post-data",
    )
    .await?;
    sync.await??;
    std::fs::remove_file(&pre_list)?;
    std::fs::remove_file(&rest_list)?;
    seconds.push(("the rest of NEW", started.elapsed().as_secs_f64()));

    // 5. Complete: its name says so.
    let early: Vec<_> = streamed.iter().map(|s| s.file.clone()).collect();
    let dir = partial.clone();
    let (bytes, sha) =
        tokio::task::spawn_blocking(move || super::digest::hash_dir_with(&dir, early)).await??;
    std::fs::rename(&partial, &plan.archive)?;
    if let Some(parent) = plan.archive.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }

    let rows = streamed.iter().map(|s| s.rows).sum();
    for s in &streamed {
        let t = &tables[s.index];
        old_fp.tables.insert(
            t.qualified.clone(),
            LineHash {
                rows: s.rows,
                sum: s.hash,
            }
            .value(),
        );
    }
    Ok(Outcome {
        archive: (bytes, sha),
        old: old_fp,
        new_tables,
        tables: streamed.len(),
        rows,
        seconds,
    })
}

/// A result with the seconds since `started` it took.
fn stamp<T>(started: Instant, what: &'static str, r: T) -> (T, (&'static str, f64)) {
    (r, (what, started.elapsed().as_secs_f64()))
}

/// Where an archive is written until it is complete.
pub fn partial_dir(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    archive.with_file_name(name)
}

/// A pg_restore `--use-list` of the given entries, in this order.
fn list_file(dir: &Path, name: &str, ids: impl Iterator<Item = i64>) -> Result<PathBuf> {
    // Beside the archive, not in it: the kept archive is pg_dump's files only.
    let path = dir.with_file_name(format!(
        "{}.{name}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut text = String::new();
    for id in ids {
        text.push_str(&format!("{id};\n"));
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn restore_list(
    plan: &Plan<'_>,
    dir: &Path,
    list: &Path,
    pass: &PassFile,
    cancel: &CancellationToken,
    on_line: &mut (dyn FnMut(Stream, String) + Send),
    what: &str,
) -> Result<()> {
    let mut errors = Vec::new();
    let outcome: ChildOutcome = {
        let mut sink = |s: Stream, l: String| {
            if l.contains("pg_restore: error:") {
                errors.push(l.clone());
            }
            on_line(s, l)
        };
        process::run(
            ChildSpec {
                program: plan.pg_bin.join("pg_restore"),
                args: vec![
                    "--jobs=2".into(),
                    "--no-owner".into(),
                    format!("--role={}", plan.role).into(),
                    "--use-list".into(),
                    list.as_os_str().to_owned(),
                    "--dbname".into(),
                    conninfo(plan.new.endpoint, plan.new.database).into(),
                    dir.as_os_str().to_owned(),
                ],
                env: vec![
                    ("PGPASSFILE".into(), pass.path().display().to_string()),
                    ("PGOPTIONS".into(), pgoptions(&plan.settings)),
                ],
                record_dir: Some(plan.run_dir.to_path_buf()),
                ..Default::default()
            },
            cancel,
            &mut sink,
        )
        .await?
    };
    if outcome.success || harmless(&errors) {
        return Ok(());
    }
    if outcome.cancelled {
        bail!("pg_restore ({what}) cancelled");
    }
    bail!("pg_restore ({what}) exited with {:?}", outcome.code)
}

/// One table: OLD's rows into the file, the hash and NEW (in a transaction that truncated
/// it, so `FREEZE` applies and, at `wal_level = minimal`, nothing is WAL-logged).
async fn stream_table(
    old: &mut PgConnection,
    new: &mut PgConnection,
    t: &Table,
    index: usize,
    path: &Path,
) -> Result<Streamed> {
    let mut file = std::fs::File::create(path)?;
    let mut sha = Sha256::new();
    let mut hash = LineHash::default();
    let mut bytes = 0u64;
    let mut buf = Vec::with_capacity(CHUNK + 64 * 1024);
    exec(new, format!("BEGIN; TRUNCATE ONLY {}", t.qualified)).await?;
    let mut into = new.copy_in_raw(&t.copy_from()).await?;
    {
        let mut rows = old.copy_out_raw(&t.copy_to()).await?;
        while let Some(row) = rows.next().await {
            let row = row?;
            hash.add(&row);
            buf.extend_from_slice(&row);
            if buf.len() >= CHUNK {
                file.write_all(&buf)?;
                sha.update(&buf);
                bytes += buf.len() as u64;
                into.send(&buf[..]).await?;
                buf.clear();
            }
        }
    }
    if !buf.is_empty() {
        file.write_all(&buf)?;
        sha.update(&buf);
        bytes += buf.len() as u64;
        into.send(&buf[..]).await?;
    }
    let loaded = into.finish().await?;
    exec(new, "COMMIT".into()).await?;
    if loaded as i64 != hash.rows {
        bail!("NEW took {loaded} rows of {}'s {}", t.qualified, hash.rows);
    }
    file.write_all(END_OF_DATA)?;
    sha.update(END_OF_DATA);
    bytes += END_OF_DATA.len() as u64;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(Streamed {
        index,
        rows: hash.rows,
        hash: hash.sum,
        file: (name, bytes, hex::encode(sha.finalize())),
    })
}

/// Tables landed on NEW, shared by the workers that follow up on them.
type Landed = Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<usize>>>;

async fn next_landed(landed: &Landed) -> Option<usize> {
    landed.lock().await.recv().await
}

/// Each table's indexes and keys on NEW as soon as its rows are in, on `jobs` connections.
async fn build_indexes(
    plan: &Plan<'_>,
    encoding: &str,
    per_table: &[Vec<String>],
    loaded: tokio::sync::mpsc::UnboundedReceiver<usize>,
    jobs: usize,
) -> Result<()> {
    let landed: Landed = Arc::new(tokio::sync::Mutex::new(loaded));
    let worker = |landed: Landed| async move {
        let mut conn: Option<PgConnection> = None;
        while let Some(i) = next_landed(&landed).await {
            for defn in &per_table[i] {
                let c = match &mut conn {
                    Some(c) => c,
                    None => conn.insert(new_session(plan, encoding).await?),
                };
                exec(c, defn.clone())
                    .await
                    .wrap_err_with(|| format!("on NEW: {}", defn.trim()))?;
            }
        }
        if let Some(c) = conn {
            let _ = sqlx::Connection::close(c).await;
        }
        Ok::<_, color_eyre::eyre::Report>(())
    };
    futures::future::try_join_all((0..jobs.max(1)).map(|_| worker(landed.clone()))).await?;
    Ok(())
}

/// Tables of NEW larger than this many blocks are hashed back in two block ranges on two
/// connections (a TID range scan each, PostgreSQL 14 and later): the largest table, last to
/// land, is not hashed alone at the end. Row hashes are summed, so the parts add up.
const SPLIT_HASH_BLOCKS: i64 = 4096;

/// NEW's copy of each table hashed back as soon as it is loaded, on `jobs` connections.
async fn hash_new(
    plan: &Plan<'_>,
    encoding: &str,
    tables: &[Table],
    mut loaded: tokio::sync::mpsc::UnboundedReceiver<usize>,
    jobs: usize,
) -> Result<TableHashes> {
    // (table, COPY statement) parts, from a dispatcher that sizes each landed table.
    let (parts_tx, parts_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    let dispatch = async move {
        let mut conn: Option<PgConnection> = None;
        while let Some(i) = loaded.recv().await {
            let t = &tables[i];
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(new_session(plan, encoding).await?),
            };
            let (blocks, version): (i64, i32) = sqlx::query_as(
                "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int, current_setting('server_version_num')::int",
            )
            .bind(&t.qualified)
            .fetch_one(&mut *c)
            .await?;
            if blocks > SPLIT_HASH_BLOCKS && version >= 140000 && !t.columns.is_empty() {
                let mid = blocks / 2;
                let part = |cond: String| {
                    format!(
                        "COPY (SELECT {} FROM ONLY {} WHERE {cond}) TO STDOUT",
                        t.columns, t.qualified
                    )
                };
                let _ = parts_tx.send((i, part(format!("ctid < '({mid},0)'::tid"))));
                let _ = parts_tx.send((i, part(format!("ctid >= '({mid},0)'::tid"))));
            } else {
                let _ = parts_tx.send((i, t.copy_to()));
            }
        }
        drop(parts_tx);
        if let Some(c) = conn {
            let _ = sqlx::Connection::close(c).await;
        }
        Ok::<_, color_eyre::eyre::Report>(())
    };
    let parts = Arc::new(tokio::sync::Mutex::new(parts_rx));
    let worker = |parts: Arc<
        tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(usize, String)>>,
    >| async move {
        let mut out = Vec::new();
        let mut conn: Option<PgConnection> = None;
        loop {
            let next = parts.lock().await.recv().await;
            let Some((i, sql)) = next else { break };
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(new_session(plan, encoding).await?),
            };
            out.push((i, hash_copy(c, &sql).await?));
        }
        if let Some(c) = conn {
            let _ = sqlx::Connection::close(c).await;
        }
        Ok::<_, color_eyre::eyre::Report>(out)
    };
    let (hashed, ()) = tokio::try_join!(
        futures::future::try_join_all((0..jobs.max(1)).map(|_| worker(parts.clone()))),
        dispatch
    )?;
    let mut sums: BTreeMap<usize, LineHash> = BTreeMap::new();
    for (i, h) in hashed.into_iter().flatten() {
        let s = sums.entry(i).or_default();
        s.rows += h.rows;
        s.sum = s.sum.wrapping_add(h.sum);
    }
    Ok(sums
        .into_iter()
        .map(|(i, h)| (tables[i].qualified.clone(), h.value()))
        .collect())
}

/// The line hash of what a `COPY … TO STDOUT` sends.
pub async fn hash_copy(conn: &mut PgConnection, copy_to: &str) -> Result<LineHash> {
    let mut h = LineHash::default();
    let mut rows = conn.copy_out_raw(copy_to).await?;
    while let Some(row) = rows.next().await {
        h.add(&row?);
    }
    Ok(h)
}

/// fsync every file of the archive and the directory itself, as pg_dump does.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_file() {
            std::fs::File::open(&p)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_exactly_one_table_whatever_its_name() {
        assert_eq!(exact_pattern("public", "a"), "\"public\".\"a\"");
        assert_eq!(exact_pattern("s*", "we\"ird"), "\"s*\".\"we\"\"ird\"");
    }

    #[test]
    fn the_line_hash_ignores_row_order() {
        let mut a = LineHash::default();
        let mut b = LineHash::default();
        for r in [&b"1\tx\n"[..], b"2\ty\n", b"3\t\\N\n"] {
            a.add(r);
        }
        for r in [&b"3\t\\N\n"[..], b"1\tx\n", b"2\ty\n"] {
            b.add(r);
        }
        assert_eq!(a.value(), b.value());
        b.add(b"4\tz\n");
        assert_ne!(a.value(), b.value());
        let mut c = LineHash::default();
        for r in [&b"1\tx\n"[..], b"2\ty\n", b"3\t\\n\n"] {
            c.add(r);
        }
        assert_eq!(c.rows, a.rows);
        assert_ne!(c.sum, a.sum);
    }

    #[test]
    fn a_partial_archive_sits_beside_the_final_one() {
        assert_eq!(
            partial_dir(Path::new("/s/backups/app/step-4")),
            PathBuf::from("/s/backups/app/step-4.partial")
        );
    }
}
