//! What the engine asks of the database servers: measure, provision, back up, restore,
//! fingerprint. `RealDatabases` does it on real PostgreSQL servers with the newest client
//! binaries; the `sim` platform has its own implementation for fleet-scale rehearsals.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::ServiceRef;
use super::servers::Servers;
use crate::inventory::Secret;
use crate::postgres::PasswordMethod;
use crate::postgres::copy;
use crate::postgres::digest::hash_file;
pub use crate::postgres::digest::{hash_dir, hash_dir_with};
use crate::postgres::process::{self, ChildOutcome, ChildSpec, PassFile, Stream, conninfo};
use crate::postgres::provision::{self, Provisioned, RuntimeOptions};
use crate::postgres::verify::{self, Fingerprint, ReadOptions, RowHash, TableHashes};
use std::future::Future;

/// What a backup left: the child's end, the kept files' size and sha256 (when it keeps files)
/// and OLD's fingerprint read in the very snapshot the dump copied (when it could).
#[derive(Debug)]
pub struct BackupOutcome {
    pub child: ChildOutcome,
    pub files: Option<(u64, String)>,
    pub old: Option<Fingerprint>,
    /// Seconds from the start until the dump, the files' hash and OLD's fingerprint ended.
    pub seconds: Vec<(&'static str, f64)>,
}

pub trait Databases: Send + Sync {
    /// OLD's size in bytes.
    fn size(&self, svc: &ServiceRef) -> impl Future<Output = Result<u64>> + Send;
    /// Rows inserted, updated and deleted in a database so far, as its server's statistics
    /// count them once they settle: how pgshift sees that OLD took a write after the backup.
    fn write_count(&self, svc: &ServiceRef) -> impl Future<Output = Result<i64>> + Send;
    fn read_options(&self, old: &ServiceRef)
    -> impl Future<Output = Result<RuntimeOptions>> + Send;
    /// NEW's role (fresh password, hashed as NEW says unless `force`) and empty database.
    fn provision(
        &self,
        new: &ServiceRef,
        password: &Secret,
        opts: &RuntimeOptions,
        force: Option<PasswordMethod>,
    ) -> impl Future<Output = Result<Provisioned>> + Send;
    /// An empty NEW database again (before every restore attempt).
    fn recreate_database(
        &self,
        new: &ServiceRef,
        opts: &RuntimeOptions,
    ) -> impl Future<Output = Result<()>> + Send;
    /// pg_dump OLD into `dir`; where it can, fingerprint OLD in the same snapshot meanwhile.
    /// `snapshot`: an exported snapshot to dump in (a replication slot's), else a fresh one.
    fn backup(
        &self,
        old: &ServiceRef,
        dir: &Path,
        snapshot: Option<&str>,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> impl Future<Output = Result<BackupOutcome>> + Send;
    fn restore(
        &self,
        new: &ServiceRef,
        dir: &Path,
        pgoptions: &str,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> impl Future<Output = Result<ChildOutcome>> + Send;
    /// A live fingerprint, rows hashed as `row_hash` (a stored fingerprint's own, to compare);
    /// the `known` tables' hashes are taken as they are.
    fn fingerprint(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        known: TableHashes,
    ) -> impl Future<Output = Result<Fingerprint>> + Send;
    /// Hash NEW's tables as the restore names them loaded (until `names` closes).
    fn hash_as_loaded(
        &self,
        _svc: &ServiceRef,
        _row_hash: RowHash,
        _names: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> impl Future<Output = Result<TableHashes>> + Send {
        async { Ok(TableHashes::new()) }
    }
    /// Objects in OLD's `database` on `server` a restore on NEW cannot carry (preflight's
    /// catalog rules); a migration does not start while there are any.
    fn blockers(
        &self,
        _server: &str,
        _database: &str,
        _new_server: Option<&str>,
    ) -> impl Future<Output = Result<Vec<crate::diagnose::Risk>>> + Send {
        async { Ok(Vec::new()) }
    }
    /// Logical replication between the servers, when this world has it (real servers).
    fn replication(&self) -> Option<super::replication::Replication> {
        None
    }
    /// pgshift's own copy (`postgres::copy`): OLD read once in one snapshot, teed into NEW
    /// (empty), the kept archive `dir` and the row hashes; each table's indexes built as it
    /// lands. `None` where this world has no such copy: the engine then dumps and restores.
    fn copy(
        &self,
        _old: &ServiceRef,
        _new: &ServiceRef,
        _settings: Vec<String>,
        _dir: &Path,
        _cancel: &CancellationToken,
        _on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> impl Future<Output = Result<Option<copy::Outcome>>> + Send {
        async { Ok(None) }
    }
    /// Does `copy` copy here (else the backup step dumps and the restore step restores)?
    fn streams(&self) -> bool {
        false
    }
    /// Does a database survive for inspection (for messages)?
    fn keeps_files(&self) -> bool {
        true
    }
}

/// The kept backup: uncompressed. gzip at its default level costs more CPU than the whole
/// dump on a 2-core server, and every second of it is spent behind the maintenance page.
pub const BACKUP_COMPRESSION: u32 = 0;
/// Tables streamed at once by pgshift's own copy.
pub const COPY_JOBS: usize = 2;
/// Connections hashing tables on one server during verification.
pub const VERIFY_CONNECTIONS: usize = 2;

/// How a real migration copies OLD: pg_dump then pg_restore (`dump`, the default), or
/// pgshift's own single read teed into NEW, the backup and the hashes (`stream`, issue #17,
/// opt-in with `PGSHIFT_COPY=stream`). Stream stays opt-in until it beats dump in the
/// benchmark (docs/performance.md: d/b 0.80–1.23, d/c 1.25–1.64 so far) — its backup is an
/// archive pgshift writes itself, and the default should be the one pg_dump writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyPath {
    Stream,
    #[default]
    Dump,
}

impl CopyPath {
    /// From `PGSHIFT_COPY` (unset: the default).
    pub fn from_env() -> Result<Self, crate::error::UserError> {
        match std::env::var("PGSHIFT_COPY").ok().as_deref() {
            Some("stream") => Ok(Self::Stream),
            None | Some("") | Some("dump") => Ok(Self::Dump),
            Some(other) => Err(crate::error::UserError::new(format!(
                "PGSHIFT_COPY={other}: expected stream or dump"
            ))),
        }
    }
}

/// Sessions of pg_dump/pg_restore must not inherit the app role's timeouts.
pub const NO_TIMEOUTS: &str =
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0";

/// [`NO_TIMEOUTS`] as `name=value` settings.
pub fn no_timeouts() -> Vec<String> {
    NO_TIMEOUTS
        .split_whitespace()
        .filter(|w| *w != "-c")
        .map(str::to_string)
        .collect()
}

pub struct RealDatabases {
    pub servers: Servers,
    /// How the backup step copies OLD (`PGSHIFT_COPY`).
    pub copy: CopyPath,
    /// PostgreSQL 15 client binaries: the newest client is right for both servers.
    pub pg_bin: PathBuf,
    pub state_dir: PathBuf,
}

impl Databases for RealDatabases {
    async fn size(&self, svc: &ServiceRef) -> Result<u64> {
        let admin = self.servers.admin(&svc.server)?;
        let mut conn = admin.connect("postgres").await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(&svc.database)
            .fetch_one(&mut conn)
            .await?;
        Ok(bytes.max(0) as u64)
    }

    async fn write_count(&self, svc: &ServiceRef) -> Result<i64> {
        let admin = self.servers.admin(&svc.server)?;
        let mut conn = admin.connect(&svc.database).await?;
        // The user tables only: pg_stat_database also counts catalog rows, which autovacuum's
        // ANALYZE writes (pg_statistic) whatever the app does. The collector hears of a
        // backend's writes at its next idle moment or its exit and serves a file up to 500 ms
        // old: read until two reads 600 ms apart agree.
        let mut last = None;
        for _ in 0..6 {
            let n: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
                   FROM pg_stat_user_tables",
            )
            .fetch_one(&mut conn)
            .await?;
            if last == Some(n) {
                return Ok(n);
            }
            last = Some(n);
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        }
        Ok(last.unwrap_or(0))
    }

    async fn read_options(&self, old: &ServiceRef) -> Result<RuntimeOptions> {
        let admin = self.servers.admin(&old.server)?;
        provision::read_runtime_options(&admin, &old.database, &old.user).await
    }

    async fn provision(
        &self,
        new: &ServiceRef,
        password: &Secret,
        opts: &RuntimeOptions,
        force: Option<PasswordMethod>,
    ) -> Result<Provisioned> {
        let admin = self.servers.admin(&new.server)?;
        let mut p =
            provision::provision_role(&admin, &new.database, &new.user, password, opts, force)
                .await?;
        p.skipped_settings
            .extend(provision::provision_database(&admin, &new.database, &new.user, opts).await?);
        Ok(p)
    }

    async fn recreate_database(&self, new: &ServiceRef, opts: &RuntimeOptions) -> Result<()> {
        let admin = self.servers.admin(&new.server)?;
        provision::provision_database(&admin, &new.database, &new.user, opts).await?;
        Ok(())
    }

    async fn backup(
        &self,
        old: &ServiceRef,
        dir: &Path,
        from: Option<&str>,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<BackupOutcome> {
        let admin = self.servers.admin(&old.server)?;
        if dir.exists() {
            // A dump that died half-way: start over.
            std::fs::remove_dir_all(dir)?;
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // One snapshot for the dump and OLD's fingerprint: verification then compares NEW
        // with exactly what was dumped, and OLD is read while it is dumped, not after.
        let mut holder = admin.connect(&old.database).await?;
        sqlx::Executor::execute(
            &mut holder,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .await?;
        // A replication slot's snapshot: imported, then exported again from this transaction.
        if let Some(s) = from {
            crate::postgres::exec(
                &mut holder,
                format!("SET TRANSACTION SNAPSHOT {}", crate::postgres::literal(s)),
            )
            .await?;
        }
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut holder)
            .await?;
        let pass = PassFile::new(&self.state_dir.join("run"), &[&admin])?;
        let spec = ChildSpec {
            program: self.pg_bin.join("pg_dump"),
            args: vec![
                "--format=directory".into(),
                "--jobs=2".into(),
                format!("--compress={BACKUP_COMPRESSION}").into(),
                format!("--snapshot={snapshot}").into(),
                "--verbose".into(),
                OsString::from("--file"),
                dir.as_os_str().to_owned(),
                OsString::from("--dbname"),
                conninfo(&admin, &old.database).into(),
            ],
            env: vec![
                ("PGPASSFILE".into(), pass.path().display().to_string()),
                ("PGOPTIONS".into(), NO_TIMEOUTS.into()),
            ],
            record_dir: Some(self.state_dir.join("run")),
            ..Default::default()
        };
        let how = ReadOptions {
            row_hash: RowHash::Typed,
            connections: VERIFY_CONNECTIONS,
            snapshot: Some(snapshot),
            known: TableHashes::new(),
        };
        let started = std::time::Instant::now();
        // Each table's file is hashed as soon as pg_dump says it finished it, on a thread of
        // its own, while the dump goes on; after the dump only what is left (toc.dat).
        let (to_hash, hashing) = std::sync::mpsc::channel::<PathBuf>();
        let hasher = tokio::task::spawn_blocking(move || {
            // A file not found here (another name, say) is hashed after the dump instead.
            hashing
                .into_iter()
                .filter_map(|path| hash_file(&path).ok())
                .collect::<Vec<_>>()
        });
        let dump_and_hash = async {
            let child = {
                let mut sink = |s: Stream, l: String| {
                    if let Some(id) = dumped_item(&l) {
                        let _ = to_hash.send(dir.join(format!("{id}.dat")));
                    }
                    on_line(s, l)
                };
                process::run(spec, cancel, &mut sink).await?
            };
            drop(to_hash);
            let dumped = started.elapsed().as_secs_f64();
            let early = hasher.await?;
            let files = if child.success {
                let dir = dir.to_path_buf();
                Some(tokio::task::spawn_blocking(move || hash_dir_with(&dir, early)).await??)
            } else {
                None
            };
            let hashed = started.elapsed().as_secs_f64();
            Ok::<_, color_eyre::eyre::Report>((child, files, dumped, hashed))
        };
        let fingerprint = async {
            let r = tokio::select! {
                r = verify::fingerprint(&admin, &old.database, &how) => Some(r),
                _ = cancel.cancelled() => None,
            };
            (r, started.elapsed().as_secs_f64())
        };
        let (dumped, (fingerprint, fingerprinted)) = tokio::join!(dump_and_hash, fingerprint);
        let _ = sqlx::Connection::close(holder).await;
        let (child, files, dumped, hashed) = dumped?;
        let old = match fingerprint {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) if child.success => {
                return Err(e.wrap_err(format!(
                    "verification: could not fingerprint {} on server {} in the dump's snapshot",
                    old.database, old.server
                )));
            }
            _ => None,
        };
        Ok(BackupOutcome {
            child,
            files,
            old,
            seconds: vec![
                ("pg_dump", dumped),
                ("sha256 of the files", hashed),
                ("OLD's fingerprint", fingerprinted),
            ],
        })
    }

    async fn restore(
        &self,
        new: &ServiceRef,
        dir: &Path,
        pgoptions: &str,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<ChildOutcome> {
        let admin = self.servers.admin(&new.server)?;
        let pass = PassFile::new(&self.state_dir.join("run"), &[&admin])?;
        let spec = ChildSpec {
            program: self.pg_bin.join("pg_restore"),
            args: vec![
                "--jobs=2".into(),
                "--verbose".into(),
                "--no-owner".into(),
                format!("--role={}", new.user).into(),
                OsString::from("--dbname"),
                conninfo(&admin, &new.database).into(),
                dir.as_os_str().to_owned(),
            ],
            env: vec![
                ("PGPASSFILE".into(), pass.path().display().to_string()),
                ("PGOPTIONS".into(), pgoptions.to_string()),
            ],
            record_dir: Some(self.state_dir.join("run")),
            ..Default::default()
        };
        process::run(spec, cancel, on_line).await
    }

    fn replication(&self) -> Option<super::replication::Replication> {
        Some(super::replication::Replication {
            servers: self.servers.clone(),
            psql: crate::postgres::logical::psql(&self.pg_bin),
            run_dir: self.state_dir.join("run"),
        })
    }

    async fn blockers(
        &self,
        server: &str,
        database: &str,
        new_server: Option<&str>,
    ) -> Result<Vec<crate::diagnose::Risk>> {
        let admin = self.servers.admin(server)?;
        let new = new_server.map(|s| self.servers.admin(s)).transpose()?;
        Ok(
            crate::postgres::blockers::blockers(&admin, database, new.as_ref())
                .await?
                .into_iter()
                .filter(crate::postgres::blockers::blocks_migration)
                .collect(),
        )
    }

    fn streams(&self) -> bool {
        self.copy == CopyPath::Stream
    }

    async fn copy(
        &self,
        old: &ServiceRef,
        new: &ServiceRef,
        settings: Vec<String>,
        dir: &Path,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<Option<copy::Outcome>> {
        if self.copy == CopyPath::Dump {
            return Ok(None);
        }
        let (from, to) = (
            self.servers.admin(&old.server)?,
            self.servers.admin(&new.server)?,
        );
        let run_dir = self.state_dir.join("run");
        let plan = copy::Plan {
            old: copy::Db {
                endpoint: &from,
                database: &old.database,
            },
            new: copy::Db {
                endpoint: &to,
                database: &new.database,
            },
            role: &new.user,
            old_settings: no_timeouts(),
            settings,
            archive: dir.to_path_buf(),
            pg_bin: &self.pg_bin,
            run_dir: &run_dir,
            jobs: COPY_JOBS,
            snapshot: None,
        };
        Ok(Some(copy::copy_database(&plan, cancel, on_line).await?))
    }

    async fn fingerprint(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        known: TableHashes,
    ) -> Result<Fingerprint> {
        let admin = self.servers.admin(&svc.server)?;
        let how = ReadOptions {
            row_hash,
            connections: VERIFY_CONNECTIONS,
            snapshot: None,
            known,
        };
        verify::fingerprint(&admin, &svc.database, &how).await
    }

    async fn hash_as_loaded(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        names: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> Result<TableHashes> {
        let admin = self.servers.admin(&svc.server)?;
        verify::hash_as_loaded(&admin, &svc.database, row_hash, names).await
    }
}

/// The data item a pg_dump verbose line says it finished (`finished item N TABLE DATA …`):
/// its file `N.dat` is complete.
fn dumped_item(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("pg_dump: finished item ")?;
    let (id, rest) = rest.split_once(' ')?;
    rest.starts_with("TABLE DATA ").then(|| id.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_table_data_items_are_read_from_pg_dump_verbose_lines() {
        assert_eq!(
            dumped_item("pg_dump: finished item 2964 TABLE DATA pgbench_accounts"),
            Some(2964)
        );
        assert_eq!(
            dumped_item("pg_dump: dumping contents of table \"public.t\""),
            None
        );
        assert_eq!(
            dumped_item("pg_dump: finished item 12 SEQUENCE SET s"),
            None
        );
    }
}
