//! Logical replication between an app's OLD and NEW on real servers (the logical strategy),
//! in terms of services: the SQL lives in `postgres::logical`.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use super::ServiceRef;
use super::servers::Servers;
use crate::inventory::Secret;
use crate::postgres::logical::{self, Names, SlotHolder};

pub struct Replication {
    pub servers: Servers,
    pub psql: PathBuf,
    pub run_dir: PathBuf,
}

/// A slot just created, its snapshot still exported, and what was published.
pub struct Started {
    pub holder: SlotHolder,
    pub tables: Vec<String>,
    /// OLD's schema hash in the slot's snapshot.
    pub schema: String,
}

/// After the page went up: what NEW confirmed, sequences and row counts.
pub struct Synced {
    pub waited: Duration,
    pub sequences: usize,
    pub tables: usize,
    pub rows: i64,
    /// Tables whose row counts differ (table, OLD, NEW).
    pub differences: Vec<(String, i64, i64)>,
}

impl Replication {
    /// Why OLD cannot use the logical strategy (empty: it can).
    pub async fn blockers(&self, old: &ServiceRef) -> Result<Vec<String>> {
        let admin = self.servers.admin(&old.server)?;
        logical::blockers(&admin, &old.database).await
    }

    /// Publication of every table, then the slot (in this order: a change is published only
    /// if the publication existed when it was decoded) with its exported snapshot.
    pub async fn start(&self, old: &ServiceRef, names: &Names) -> Result<Started> {
        let admin = self.servers.admin(&old.server)?;
        let tables = {
            let mut conn = admin.connect(&old.database).await?;
            logical::published_tables(&mut conn).await?
        };
        logical::create_publication(&admin, &old.database, names, &tables).await?;
        let holder =
            logical::create_slot(&self.psql, &admin, &old.database, names, &self.run_dir).await?;
        let schema = logical::schema_hash_in(&admin, &old.database, &holder.snapshot).await?;
        Ok(Started {
            holder,
            tables,
            schema,
        })
    }

    pub async fn subscribe(
        &self,
        old: &ServiceRef,
        new: &ServiceRef,
        names: &Names,
        password: &Secret,
    ) -> Result<bool> {
        let a = self.servers.admin(&old.server)?;
        let b = self.servers.admin(&new.server)?;
        logical::subscribe(&a, &old.database, &b, &new.database, names, password).await
    }

    /// OLD's schema hash now.
    pub async fn schema(&self, old: &ServiceRef) -> Result<String> {
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect(&old.database).await?;
        logical::schema_hash(&mut conn).await
    }

    /// Bytes NEW has still to confirm, and whether a WAL sender streams from the slot.
    pub async fn lag(&self, old: &ServiceRef, names: &Names) -> Result<(i64, bool)> {
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect(&old.database).await?;
        logical::slot_lag(&mut conn, names)
            .await?
            .ok_or_else(|| eyre!("replication slot {} is gone from OLD", names.slot))
    }

    /// OLD's WAL position now.
    pub async fn current_lsn(&self, old: &ServiceRef) -> Result<String> {
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect(&old.database).await?;
        logical::current_lsn(&mut conn).await
    }

    /// Has NEW confirmed everything up to `target`? Errs when the slot is gone.
    pub async fn confirmed(&self, old: &ServiceRef, names: &Names, target: &str) -> Result<bool> {
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect(&old.database).await?;
        match logical::wait_confirmed(&mut conn, names, target, Duration::ZERO).await {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("did not confirm") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wait until NEW confirmed everything OLD had written when this was called.
    pub async fn wait_caught_up(
        &self,
        old: &ServiceRef,
        names: &Names,
        limit: Duration,
    ) -> Result<Duration> {
        let admin = self.servers.admin(&old.server)?;
        let mut conn = admin.connect(&old.database).await?;
        let target = logical::current_lsn(&mut conn).await?;
        logical::wait_confirmed(&mut conn, names, &target, limit).await
    }

    /// Sequences from OLD to NEW, then exact row counts of the published tables on both.
    pub async fn finish(
        &self,
        old: &ServiceRef,
        new: &ServiceRef,
        tables: &[String],
    ) -> Result<Synced> {
        let a = self.servers.admin(&old.server)?;
        let b = self.servers.admin(&new.server)?;
        let (mut oc, mut nc) =
            tokio::try_join!(a.connect(&old.database), b.connect(&new.database))?;
        let seqs = logical::copy_sequences(&mut oc, &mut nc).await?;
        let (x, y) = tokio::try_join!(
            logical::counts(&mut oc, tables),
            logical::counts(&mut nc, tables)
        )?;
        let mut differences = Vec::new();
        let mut rows = 0;
        for (t, n) in &x {
            rows += n;
            let m = y.iter().find(|(u, _)| u == t).map_or(-1, |(_, m)| *m);
            if m != *n {
                differences.push((t.clone(), *n, m));
            }
        }
        Ok(Synced {
            waited: Duration::ZERO,
            sequences: seqs.len(),
            tables: x.len(),
            rows,
            differences,
        })
    }

    /// Drop the subscription on NEW (if NEW's database exists), the slot, publication and
    /// role on OLD; each attempted even if another fails. What was dropped.
    pub async fn drop_all(
        &self,
        old: &ServiceRef,
        new: Option<&ServiceRef>,
        names: &Names,
    ) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        let mut errors = Vec::new();
        if let Some(new) = new {
            let r = async {
                let admin = self.servers.admin(&new.server)?;
                let mut conn = admin.connect("postgres").await?;
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(&new.database)
                .fetch_one(&mut conn)
                .await?;
                if !exists {
                    return Ok(false);
                }
                let mut conn = admin.connect(&new.database).await?;
                logical::drop_subscription(&mut conn, names).await
            }
            .await;
            match r {
                Ok(true) => dropped.push(format!("subscription {} on NEW", names.subscription)),
                Ok(false) => {}
                Err(e) => errors.push(format!("subscription on NEW: {e:#}")),
            }
        }
        let r = async {
            let admin = self.servers.admin(&old.server)?;
            logical::drop_on_old(&admin, &old.database, names).await
        }
        .await;
        match r {
            Ok(v) => dropped.extend(v.into_iter().map(|x| format!("{x} on OLD"))),
            Err(e) => errors.push(format!("on OLD: {e:#}")),
        }
        if errors.is_empty() {
            Ok(dropped)
        } else {
            Err(eyre!(
                "dropping the replication of {}: {}",
                old.database,
                errors.join("; ")
            ))
        }
    }
}
