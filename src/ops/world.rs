//! The world an inventory lives in, decided once, and the one function that builds the
//! engine for it: real servers with the `exec` platform (the operator's `[platform]`, or the
//! lab's own hooks), or the sim world. Another world is one more `World` variant, one more
//! arm in `World::of` and `build_engine`, one more `OpsEngine` variant and one more arm in
//! `on_engine!`.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Drive, Session};
use crate::engine::Engine;
use crate::engine::databases::RealDatabases;
use crate::inventory::{Inventory, ServerKind};
use crate::lab::Lab;
use crate::platform::exec::ExecPlatform;
use crate::platform::servers::Servers;
use crate::platform::sim::{SimDatabases, SimPlatform, SimWorld};
use crate::runbook::Runbook;
use crate::store::Store;

/// Where the apps of an inventory run and where their databases are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Real PostgreSQL servers (the lab's or remote ones) and real apps, driven through the
    /// `exec` platform: the inventory's `[platform]`, or the lab's hooks.
    Real,
    /// Every server simulated: the sim platform and sim databases, nothing real touched.
    Sim,
}

impl World {
    /// Decided once, from the inventory's servers.
    pub fn of(inv: &Inventory) -> World {
        if inv.servers.iter().all(|s| s.kind == ServerKind::Sim) {
            World::Sim
        } else {
            World::Real
        }
    }
}

/// The one concrete engine every verb drives: the engine of one world.
pub enum OpsEngine {
    Real(Engine<ExecPlatform, RealDatabases>),
    Sim(Engine<SimPlatform, SimDatabases>),
}

/// `on_engine!(engine, e => body)`: the same body on whichever world's engine it is.
#[macro_export]
macro_rules! on_engine {
    ($engine:expr, $e:ident => $body:expr) => {
        match $engine {
            $crate::ops::OpsEngine::Real($e) => $body,
            $crate::ops::OpsEngine::Sim($e) => $body,
        }
    };
}

impl OpsEngine {
    /// Flush step logs and stop the writer.
    pub async fn shutdown(self) {
        on_engine!(self, e => e.shutdown().await)
    }
}

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

/// The only place an `Engine` is built. A sim world never needs the lab. An inventory of
/// real servers without a platform to drive its apps is refused here, before anything runs.
pub fn build_engine(
    world: World,
    parts: EngineParts,
    drive: Drive,
) -> color_eyre::Result<OpsEngine> {
    let servers = Servers::new(parts.inv.clone(), parts.lab).with_state_dir(&parts.state_dir);
    if world == World::Real {
        // A killed pgshift's pg_dump/pg_restore must be gone before this engine resumes or
        // starts anything, and its password files with it.
        crate::postgres::leftovers::sweep(&parts.state_dir.join("run"));
    }
    Ok(match world {
        World::Real => OpsEngine::Real(Engine::new(
            parts.store,
            parts.inv.clone(),
            parts.runbook,
            servers.clone(),
            crate::platform::real(&parts.inv, servers.clone(), &parts.state_dir)?,
            RealDatabases {
                servers,
                copy: crate::platform::databases::CopyPath::from_env()?,
                pg_bin: parts.pg_bin,
                state_dir: parts.state_dir.clone(),
            },
            parts.state_dir,
            drive.events,
            drive.cancel,
        )),
        World::Sim => {
            let sim = SimWorld::new(&parts.inv, parts.speed);
            OpsEngine::Sim(Engine::new(
                parts.store,
                parts.inv,
                parts.runbook,
                servers,
                SimPlatform(sim.clone()),
                SimDatabases(sim),
                parts.state_dir,
                drive.events,
                drive.cancel,
            ))
        }
    })
}

impl Session<'_> {
    /// The engine for this session's world, on `store`, with `runbook`.
    pub fn engine(
        &self,
        store: Store,
        runbook: Runbook,
        speed: f64,
        drive: Drive,
    ) -> color_eyre::Result<OpsEngine> {
        let cfg = &self.ctx.cfg;
        let lab = match self.world {
            World::Real => Lab::open(cfg).ok().map(Arc::new),
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
            World::Real => Lab::open(&self.ctx.cfg).ok().map(Arc::new),
            World::Sim => None,
        };
        Servers::new(self.inv.clone(), lab).with_state_dir(&self.ctx.cfg.state_dir())
    }
}
