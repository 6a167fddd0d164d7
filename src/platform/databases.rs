//! What the engine asks of the database servers: measure, provision, back up, restore,
//! fingerprint. `engine::databases::RealDatabases` does it on real PostgreSQL servers; the
//! `sim` world has its own implementation.

use std::future::Future;
use std::path::Path;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::ServiceRef;
use crate::inventory::Secret;
use crate::postgres::PasswordMethod;
use crate::postgres::process::{ChildOutcome, Stream};
use crate::postgres::provision::{Provisioned, RuntimeOptions};
use crate::postgres::verify::{Fingerprint, RowHash, TableHashes};

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
    fn backup(
        &self,
        old: &ServiceRef,
        dir: &Path,
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
    /// Does a database survive for inspection (for messages)?
    fn keeps_files(&self) -> bool {
        true
    }
}
