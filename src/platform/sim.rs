//! The sim platform: a simulated world (apps, service instances, databases) for rehearsing a
//! night with thousands of apps on one machine, driven by the same engine, store and events.
//! Step durations come from database sizes and the throughput the lab measures, scaled by
//! `speed` (0: instant); failures follow the real world's rules — an image with libpq < 10
//! against a SCRAM-hashed role fails its redeploy, flagged btree data fails the restore unless
//! it runs with pglz — with the texts the real tools print.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use tokio_util::sync::CancellationToken;

use super::{AppRecord, Platform, ServiceRef};
use crate::engine::databases::{BackupOutcome, Databases};
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

impl Platform for SimPlatform {
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

    fn set_service(&self, app: &App, service: &ServiceRef) -> Result<()> {
        let mut rec = self.record(app)?;
        rec.service = service.clone();
        self.write(app, rec)
    }

    async fn redeploy(&self, app: &App, log: &mut (dyn FnMut(String) + Send)) -> Result<bool> {
        let mut rec = self.record(app)?;
        rec.releases += 1;
        self.write(app, rec.clone())?;
        log(format!(
            "-----> Deploying {} (release v{}, simulated)",
            app.name, rec.releases
        ));
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
            for l in super::app_traceback("SCRAM authentication requires libpq version 10 or above")
            {
                log(l);
            }
            log("-----> Health check failed: web did not become healthy".into());
            return Ok(false);
        }
        log("-----> Health check passed: GET /health 200".into());
        Ok(true)
    }
}

impl Databases for SimDatabases {
    async fn size(&self, svc: &ServiceRef) -> Result<u64> {
        Ok(self.0.db(svc).0)
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
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<BackupOutcome> {
        let (bytes, _) = self.0.db(old);
        on_line(
            Stream::Stderr,
            format!(
                "pg_dump: dumping contents of database \"{}\" (simulated)",
                old.database
            ),
        );
        let ok = self
            .0
            .work(1.0 + bytes as f64 / self.0.throughput.dump_bps, cancel)
            .await;
        Ok(BackupOutcome {
            child: ChildOutcome {
                success: ok,
                code: Some(if ok { 0 } else { 1 }),
                cancelled: !ok,
            },
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
        on_line(
            Stream::Stderr,
            "pg_restore: connecting to database for restore".into(),
        );
        let ok = self
            .0
            .work(2.0 + bytes as f64 / self.0.throughput.restore_bps, cancel)
            .await;
        if !ok {
            return Ok(ChildOutcome {
                success: false,
                code: None,
                cancelled: true,
            });
        }
        if btree && !pgoptions.contains("default_toast_compression=pglz") {
            for l in [
                "pg_restore: error: could not execute query: ERROR:  index row size 3696 exceeds btree version 4 maximum 2704 for index \"redirects_source_idx\"",
                "DETAIL:  Index row references tuple (2,7) in relation \"redirects\".",
                "HINT:  Values larger than 1/3 of a buffer page cannot be indexed.",
                "Consider a function index of an MD5 hash of the value, or use full text indexing.",
                "Command was: CREATE INDEX redirects_source_idx ON public.redirects USING btree (source_url);",
                "pg_restore: warning: errors ignored on restore: 1",
            ] {
                on_line(Stream::Stderr, l.to_string());
            }
            return Ok(ChildOutcome {
                success: false,
                code: Some(1),
                cancelled: false,
            });
        }
        Ok(ChildOutcome {
            success: true,
            code: Some(0),
            cancelled: false,
        })
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
