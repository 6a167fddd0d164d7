//! `pgshift backups` and `pgshift backups sweep`: the kept backups with their size on disk and
//! expiry, and retention's sweep of the expired ones (a dry run unless confirmed).

use std::collections::HashSet;

use color_eyre::eyre::Result;
use serde::Serialize;

use super::Context;
use crate::backups::{Verdict, dir_bytes, owned_path, verdict};
use crate::store::{BackupRow, Journal, Store};

/// A kept backup as `pgshift backups` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub row: BackupRow,
    /// What its directory takes on disk now (after compression); `None`: the directory is
    /// gone.
    pub disk_bytes: Option<u64>,
    /// Retention's verdict now: `delete` (the sweep would delete it) or why it is kept.
    pub retention: String,
}

/// Every backup the store lists, measured on disk, with retention's verdict.
pub async fn list(ctx: &Context) -> Result<Vec<Listed>> {
    let store = Store::open(&ctx.cfg.store_url()).await?;
    judged(&store).await
}

async fn judged(store: &Store) -> Result<Vec<Listed>> {
    let rows = store.backups(None).await?;
    let states = store.app_states().await?;
    let under_way: HashSet<String> = store
        .unfinished()
        .await?
        .into_iter()
        .map(|(_, app)| app)
        .collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(rows
        .into_iter()
        .map(|row| {
            let dir = std::path::Path::new(&row.path);
            let disk_bytes = dir.is_dir().then(|| dir_bytes(dir));
            let retention = match verdict(
                &row,
                states.get(&row.app).map(|s| s.state),
                under_way.contains(&row.app),
                &now,
            ) {
                Verdict::Delete => "delete".to_string(),
                Verdict::Keep(why) => format!("keep: {why}"),
            };
            Listed {
                row,
                disk_bytes,
                retention,
            }
        })
        .collect())
}

/// One backup the sweep deleted, or would delete.
#[derive(Debug, Clone, Serialize)]
pub struct Swept {
    pub id: i64,
    pub app: String,
    pub path: String,
    pub expires_at: Option<String>,
    /// Bytes freed (its size on disk when the sweep found it).
    pub bytes: u64,
    /// Deleted (`--yes`), or only listed.
    pub deleted: bool,
}

/// Retention's sweep: every expired backup of a migrated app with no run under way. Lists
/// them; with `yes`, deletes each one's directory and then its row (a crash in between leaves
/// a row whose directory is gone, which the next sweep deletes). Never deletes a directory
/// outside `STATE/backups`.
pub async fn sweep(ctx: &Context, yes: bool) -> Result<Vec<Swept>> {
    if yes {
        super::ensure_writable(ctx, "delete backups")?;
    }
    let store = Store::open(&ctx.cfg.store_url()).await?;
    let root = ctx.cfg.state_dir().join("backups");
    let due: Vec<Listed> = judged(&store)
        .await?
        .into_iter()
        .filter(|l| l.retention == "delete")
        .collect();
    let (journal, task) = Journal::spawn(store.clone());
    let mut out = Vec::new();
    let result: Result<()> = async {
        for l in due {
            let Some(dir) = owned_path(&l.row, &root) else {
                tracing::warn!(
                    path = l.row.path,
                    "backup outside STATE/backups: not deleting it"
                );
                continue;
            };
            let bytes = l.disk_bytes.unwrap_or(0);
            if yes {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| color_eyre::eyre::eyre!("deleting {}: {e}", dir.display()))?;
                }
                journal.delete_backup(l.row.id).await?;
            }
            out.push(Swept {
                id: l.row.id,
                app: l.row.app,
                path: l.row.path,
                expires_at: l.row.expires_at,
                bytes,
                deleted: yes,
            });
        }
        Ok(())
    }
    .await;
    drop(journal);
    let _ = task.await;
    result?;
    Ok(out)
}
