//! The world an inventory lives in, decided once, and the one function that builds the
//! engine for it. A new platform (the `exec` adapter of a real PaaS) is one more `World`
//! variant, one more arm in `World::of` and `build_engine`, and one more arm in each
//! delegating impl below.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::{Drive, Session};
use crate::engine::Engine;
use crate::engine::databases::RealDatabases;
use crate::inventory::{App, Inventory, Secret, ServerKind};
use crate::lab::Lab;
use crate::platform::databases::{BackupOutcome, Databases};
use crate::platform::lab::LabPlatform;
use crate::platform::servers::Servers;
use crate::platform::sim::{SimDatabases, SimPlatform, SimWorld};
use crate::platform::{AppRecord, Platform, ServiceRef};
use crate::postgres::PasswordMethod;
use crate::postgres::process::{ChildOutcome, Stream};
use crate::postgres::provision::{Provisioned, RuntimeOptions};
use crate::postgres::verify::{Fingerprint, RowHash, TableHashes};
use crate::runbook::Runbook;
use crate::store::Store;

/// Where the apps of an inventory run and where their databases are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// The local lab platform and real PostgreSQL servers (lab or remote ones).
    Lab,
    /// Every server simulated: the sim platform and sim databases, nothing real touched.
    Sim,
}

impl World {
    /// Decided once, from the inventory's servers.
    pub fn of(inv: &Inventory) -> World {
        if inv.servers.iter().all(|s| s.kind == ServerKind::Sim) {
            World::Sim
        } else {
            World::Lab
        }
    }
}

/// The one concrete engine every verb drives.
pub type OpsEngine = Engine<WorldPlatform, WorldDatabases>;

/// What an engine is built from, besides its world.
pub struct EngineParts {
    pub store: Store,
    pub inv: Arc<Inventory>,
    pub runbook: Runbook,
    pub state_dir: PathBuf,
    /// PostgreSQL 15 client binaries (real databases only).
    pub pg_bin: PathBuf,
    /// The local lab, when it is installed (lab servers' secrets).
    pub lab: Option<Arc<Lab>>,
    /// Sim world only: simulated seconds per real second (0: instant steps).
    pub speed: f64,
}

/// The only place an `Engine` is built.
pub fn build_engine(world: World, parts: EngineParts, drive: Drive) -> OpsEngine {
    let EngineParts {
        store,
        inv,
        runbook,
        state_dir,
        pg_bin,
        lab,
        speed,
    } = parts;
    let (servers, platform, db) = match world {
        World::Lab => {
            let servers = Servers::new(inv.clone(), lab);
            let db = RealDatabases {
                servers: servers.clone(),
                pg_bin,
                state_dir: state_dir.clone(),
            };
            let platform = LabPlatform::new(&state_dir, servers.clone());
            (
                servers,
                WorldPlatform::Lab(platform),
                WorldDatabases::Real(db),
            )
        }
        World::Sim => {
            let sim = SimWorld::new(&inv, speed);
            (
                Servers::new(inv.clone(), None),
                WorldPlatform::Sim(SimPlatform(sim.clone())),
                WorldDatabases::Sim(SimDatabases(sim)),
            )
        }
    };
    Engine::new(
        store,
        inv,
        runbook,
        servers,
        platform,
        db,
        state_dir,
        drive.events,
        drive.cancel,
    )
}

impl Session<'_> {
    /// The engine for this session's world, on `store`, with `runbook`.
    pub fn engine(&self, store: Store, runbook: Runbook, speed: f64, drive: Drive) -> OpsEngine {
        let cfg = &self.ctx.cfg;
        let lab = match self.world {
            World::Lab => Lab::open(cfg).ok().map(Arc::new),
            World::Sim => None,
        };
        build_engine(
            self.world,
            EngineParts {
                store,
                inv: self.inv.clone(),
                runbook,
                state_dir: cfg.state_dir(),
                pg_bin: cfg.lab.pg15_bin.clone(),
                lab,
                speed,
            },
            drive,
        )
    }

    /// Who pgshift is on each server of the inventory.
    pub fn servers(&self) -> Servers {
        let lab = match self.world {
            World::Lab => Lab::open(&self.ctx.cfg).ok().map(Arc::new),
            World::Sim => None,
        };
        Servers::new(self.inv.clone(), lab)
    }
}

/// The platform of a world.
pub enum WorldPlatform {
    Lab(LabPlatform),
    Sim(SimPlatform),
}

impl Platform for WorldPlatform {
    fn record(&self, app: &App) -> Result<AppRecord> {
        match self {
            Self::Lab(p) => p.record(app),
            Self::Sim(p) => p.record(app),
        }
    }

    fn set_paused(&self, app: &App, paused: bool) -> Result<()> {
        match self {
            Self::Lab(p) => p.set_paused(app, paused),
            Self::Sim(p) => p.set_paused(app, paused),
        }
    }

    fn set_service(&self, app: &App, service: &ServiceRef) -> Result<()> {
        match self {
            Self::Lab(p) => p.set_service(app, service),
            Self::Sim(p) => p.set_service(app, service),
        }
    }

    async fn redeploy(&self, app: &App, log: &mut (dyn FnMut(String) + Send)) -> Result<bool> {
        match self {
            Self::Lab(p) => p.redeploy(app, log).await,
            Self::Sim(p) => p.redeploy(app, log).await,
        }
    }
}

/// The databases of a world.
pub enum WorldDatabases {
    Real(RealDatabases),
    Sim(SimDatabases),
}

impl Databases for WorldDatabases {
    async fn size(&self, svc: &ServiceRef) -> Result<u64> {
        match self {
            Self::Real(d) => d.size(svc).await,
            Self::Sim(d) => d.size(svc).await,
        }
    }

    async fn read_options(&self, old: &ServiceRef) -> Result<RuntimeOptions> {
        match self {
            Self::Real(d) => d.read_options(old).await,
            Self::Sim(d) => d.read_options(old).await,
        }
    }

    async fn provision(
        &self,
        new: &ServiceRef,
        password: &Secret,
        opts: &RuntimeOptions,
        force: Option<PasswordMethod>,
    ) -> Result<Provisioned> {
        match self {
            Self::Real(d) => d.provision(new, password, opts, force).await,
            Self::Sim(d) => d.provision(new, password, opts, force).await,
        }
    }

    async fn recreate_database(&self, new: &ServiceRef, opts: &RuntimeOptions) -> Result<()> {
        match self {
            Self::Real(d) => d.recreate_database(new, opts).await,
            Self::Sim(d) => d.recreate_database(new, opts).await,
        }
    }

    async fn backup(
        &self,
        old: &ServiceRef,
        dir: &Path,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<BackupOutcome> {
        match self {
            Self::Real(d) => d.backup(old, dir, cancel, on_line).await,
            Self::Sim(d) => d.backup(old, dir, cancel, on_line).await,
        }
    }

    async fn restore(
        &self,
        new: &ServiceRef,
        dir: &Path,
        pgoptions: &str,
        cancel: &CancellationToken,
        on_line: &mut (dyn FnMut(Stream, String) + Send),
    ) -> Result<ChildOutcome> {
        match self {
            Self::Real(d) => d.restore(new, dir, pgoptions, cancel, on_line).await,
            Self::Sim(d) => d.restore(new, dir, pgoptions, cancel, on_line).await,
        }
    }

    async fn fingerprint(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        known: TableHashes,
    ) -> Result<Fingerprint> {
        match self {
            Self::Real(d) => d.fingerprint(svc, row_hash, known).await,
            Self::Sim(d) => d.fingerprint(svc, row_hash, known).await,
        }
    }

    async fn hash_as_loaded(
        &self,
        svc: &ServiceRef,
        row_hash: RowHash,
        names: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> Result<TableHashes> {
        match self {
            Self::Real(d) => d.hash_as_loaded(svc, row_hash, names).await,
            Self::Sim(d) => d.hash_as_loaded(svc, row_hash, names).await,
        }
    }

    fn keeps_files(&self) -> bool {
        match self {
            Self::Real(d) => d.keeps_files(),
            Self::Sim(d) => d.keeps_files(),
        }
    }
}
