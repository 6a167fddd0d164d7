//! The sim platform: a simulated world (apps, service instances, databases) for rehearsing a
//! night with thousands of apps on one machine, driven by the same engine, store and events.
//! Step durations come from database sizes and the throughput the lab measures, scaled by
//! `speed` (0: instant); failures follow the real world's rules — an image with libpq < 10
//! against a SCRAM-hashed role fails its redeploy, flagged btree data fails the restore unless
//! it runs with pglz. No tool runs, so none is quoted: each line says in pgshift's own words
//! that it is simulated, and a simulated failure names its class.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use tokio_util::sync::CancellationToken;

use super::databases::{BackupOutcome, Databases};
use super::{AppRecord, Platform, ServiceRef, StepLog};
use crate::inventory::{App, Inventory, Secret};
use crate::postgres::PasswordMethod;
use crate::postgres::process::{ChildOutcome, Stream};
use crate::postgres::provision::{Provisioned, RuntimeOptions};
use crate::postgres::verify::{Fingerprint, RowHash};
use crate::runbook::Throughput;

/// The simulated world, shared by the sim platform and the sim databases.
pub struct SimWorld {
    /// Seconds of simulated work per real second; 0 makes every step instant.
    speed: f64,
    throughput: Throughput,
    /// Database name → (bytes, btree-straddling data).
    databases: HashMap<String, (u64, bool)>,
    apps: Mutex<HashMap<String, AppRecord>>,
    /// (server, role) → how NEW stored the role's password.
    roles: Mutex<HashMap<(String, String), PasswordMethod>>,
    libpq_ok: HashMap<String, bool>,
}

impl SimWorld {
    pub fn new(inv: &Inventory, speed: f64) -> Arc<Self> {
        let mut databases = HashMap::new();
        let mut libpq_ok = HashMap::new();
        for a in &inv.apps {
            libpq_ok.insert(a.name.clone(), a.client.supports_scram());
            for s in &a.services {
                if let Some(db) = &s.database {
                    let bytes = (s.size_mb.unwrap_or(10.0) * 1e6) as u64;
                    let btree = s.seed.as_ref().is_some_and(|x| x.btree_straddle);
                    databases.insert(db.clone(), (bytes, btree));
                }
            }
        }
        Arc::new(Self {
            speed,
            throughput: Throughput::default(),
            databases,
            apps: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            libpq_ok,
        })
    }

    /// A simulated dump or restore: says so on the tool's stream (no tool ran), then takes
    /// its `seconds`; false when cancelled meanwhile.
    async fn tool(
        &self,
        said: String,
        seconds: f64,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> bool {
        on_line(Stream::Stderr, said);
        self.work(seconds, cancel).await
    }

    async fn work(&self, seconds: f64, cancel: &CancellationToken) -> bool {
        if self.speed <= 0.0 || seconds <= 0.0 {
            return !cancel.is_cancelled();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(seconds / self.speed)) => true,
            _ = cancel.cancelled() => false,
        }
    }

    fn db(&self, svc: &ServiceRef) -> (u64, bool) {
        self.databases
            .get(&svc.database)
            .copied()
            .unwrap_or((10_000_000, false))
    }
}

pub struct SimPlatform(pub Arc<SimWorld>);

impl SimPlatform {
    fn apps(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, AppRecord>>> {
        self.0.apps.lock().map_err(|_| eyre!("sim world poisoned"))
    }

    fn write(&self, app: &App, rec: AppRecord) -> Result<()> {
        self.apps()?.insert(app.name.clone(), rec);
        Ok(())
    }
}
pub struct SimDatabases(pub Arc<SimWorld>);

impl SimPlatform {
    fn record(&self, app: &App) -> Result<AppRecord> {
        match self.apps()?.get(&app.name) {
            Some(r) => Ok(r.clone()),
            None => AppRecord::initial(app),
        }
    }

    fn set_paused(&self, app: &App, paused: bool) -> Result<()> {
        let mut rec = self.record(app)?;
        rec.paused = paused;
        self.write(app, rec)
    }
}

/// The sim runs no app: its log lines say so, in pgshift's own words, and a refusal it
/// simulates is named as simulated (diagnosis knows the wording).
impl Platform for SimPlatform {
    async fn status(&self, app: &App) -> Result<AppRecord> {
        self.record(app)
    }

    async fn pause(&self, app: &App, _log: &mut dyn StepLog) -> Result<()> {
        self.set_paused(app, true)
    }

    async fn unpause(&self, app: &App, _log: &mut dyn StepLog) -> Result<()> {
        self.set_paused(app, false)
    }

    async fn set_service(
        &self,
        app: &App,
        service: &ServiceRef,
        _log: &mut dyn StepLog,
    ) -> Result<()> {
        let mut rec = self.record(app)?;
        rec.service = service.clone();
        self.write(app, rec)
    }

    async fn redeploy(&self, app: &App, log: &mut dyn StepLog) -> Result<()> {
        let rec = self.record(app)?;
        let scram = self
            .0
            .roles
            .lock()
            .map_err(|_| eyre!("sim world poisoned"))?
            .get(&(rec.service.server.clone(), rec.service.user.clone()))
            .is_some_and(|m| *m == PasswordMethod::ScramSha256);
        let old_client = !self.0.libpq_ok.get(&app.name).copied().unwrap_or(true);
        self.0.work(3.0, &CancellationToken::new()).await;
        if scram && old_client {
            log.line(
                "sim",
                &format!(
                    "simulated failure libpq-scram: {}'s client {} cannot answer the SCRAM challenge of role {} on {}",
                    app.name,
                    app.client.label(),
                    rec.service.user,
                    rec.service.server
                ),
            );
            return Err(eyre!("the simulated redeploy of {} failed", app.name));
        }
        log.line(
            "sim",
            &format!("simulated: {} restarted on {}", app.name, rec.service.id),
        );
        Ok(())
    }

    async fn health(&self, _app: &App, _log: &mut dyn StepLog) -> Result<()> {
        Ok(())
    }
}

impl Databases for SimDatabases {
    async fn size(&self, svc: &ServiceRef) -> Result<u64> {
        Ok(self.0.db(svc).0)
    }

    async fn write_count(&self, _svc: &ServiceRef) -> Result<i64> {
        Ok(0)
    }

    async fn read_options(&self, _old: &ServiceRef) -> Result<RuntimeOptions> {
        Ok(RuntimeOptions {
            role_settings: vec![("statement_timeout".into(), "30s".into())],
            database_settings: vec![("TimeZone".into(), "Europe/Zurich".into())],
            extensions: Vec::new(),
            connection_limit: 20,
        })
    }

    async fn provision(
        &self,
        new: &ServiceRef,
        _password: &Secret,
        _opts: &RuntimeOptions,
        force: Option<PasswordMethod>,
    ) -> Result<Provisioned> {
        // The new service tier hashes SCRAM, as PostgreSQL 14+ does by default.
        let method = force.unwrap_or(PasswordMethod::ScramSha256);
        self.0
            .roles
            .lock()
            .map_err(|_| eyre!("sim world poisoned"))?
            .insert((new.server.clone(), new.user.clone()), method);
        Ok(Provisioned {
            skipped_settings: Vec::new(),
            method: Some(method),
        })
    }

    async fn recreate_database(&self, _new: &ServiceRef, _opts: &RuntimeOptions) -> Result<()> {
        Ok(())
    }

    async fn backup(
        &self,
        old: &ServiceRef,
        _dir: &Path,
        _snapshot: Option<&str>,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<BackupOutcome> {
        let (bytes, _) = self.0.db(old);
        let said = format!(
            "simulated: dump of database {} (no pg_dump ran)",
            old.database
        );
        let seconds = 1.0 + bytes as f64 / self.0.throughput.dump_bps;
        let ok = self.0.tool(said, seconds, cancel, on_line).await;
        Ok(BackupOutcome {
            child: exited(Some(if ok { 0 } else { 1 }), !ok),
            files: None,
            old: None,
            seconds: Vec::new(),
        })
    }

    async fn restore(
        &self,
        new: &ServiceRef,
        _dir: &Path,
        pgoptions: &str,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<ChildOutcome> {
        let (bytes, btree) = self.0.db(new);
        let said = format!(
            "simulated: restore into database {} (no pg_restore ran)",
            new.database
        );
        let seconds = 2.0 + bytes as f64 / self.0.throughput.restore_bps;
        if !self.0.tool(said, seconds, cancel, on_line).await {
            return Ok(exited(None, true));
        }
        if btree && !pgoptions.contains("default_toast_compression=pglz") {
            on_line(
                Stream::Stderr,
                format!(
                    "simulated failure btree-index-row-size: {} holds a value that fits the btree limit compressed with pglz, not with NEW's lz4",
                    new.database
                ),
            );
            return Ok(exited(Some(1), false));
        }
        Ok(exited(Some(0), false))
    }

    async fn fingerprint(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        _known: crate::postgres::verify::TableHashes,
    ) -> Result<Fingerprint> {
        let (bytes, _) = self.0.db(svc);
        let mut f = Fingerprint {
            row_hash,
            ..Default::default()
        };
        f.tables.insert(
            "public.data".into(),
            ((bytes / 200) as i64, format!("{bytes:x}")),
        );
        Ok(f)
    }

    fn keeps_files(&self) -> bool {
        false
    }
}

/// How a simulated tool ended: exit `code` (none when it was stopped), never timed out.
fn exited(code: Option<i32>, cancelled: bool) -> ChildOutcome {
    ChildOutcome {
        timed_out: false,
        signal: None,
        success: code == Some(0),
        code,
        cancelled,
    }
}
