//! The platform apps run on: maintenance page (pause), DATABASE_URL, redeploy, health. The
//! operator's PaaS is driven through the `exec` adapter (commands named in `[platform]`, see
//! docs/platform.md); the lab is that same adapter pointed at the lab's own hooks; the `sim`
//! platform rehearses a night at fleet scale without any process.

pub mod databases;
pub mod exec;
pub mod lab;
pub mod replication;
pub mod servers;
pub mod sim;
pub mod sim_fleet;

use serde::{Deserialize, Serialize};

use crate::inventory::App;

/// Which service instance an app's DATABASE_URL points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRef {
    pub id: String,
    pub service: String,
    /// Inventory server name.
    pub server: String,
    pub database: String,
    pub user: String,
}

impl ServiceRef {
    /// An inventory service instance as a reference, when it names its server, database and
    /// role.
    pub fn of(s: &crate::inventory::ServiceInstance) -> Option<Self> {
        Some(Self {
            id: s.id.clone(),
            service: s.service.clone(),
            server: s.server.clone()?,
            database: s.database.clone()?,
            user: s.user.clone()?,
        })
    }
}

/// What the platform shows for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub service: ServiceRef,
    /// Behind the maintenance page.
    pub paused: bool,
    /// The app's public URL, when the platform names one (what a prober asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl AppRecord {
    /// What a platform shows for an app it has not touched yet: its inventory service.
    pub fn initial(app: &App) -> color_eyre::Result<Self> {
        Ok(Self {
            service: lab::initial_service(app).ok_or_else(|| {
                color_eyre::eyre::eyre!("app {} has no provisioned PostgreSQL service", app.name)
            })?,
            paused: false,
            url: None,
        })
    }
}

/// Where a platform operation's output goes: the step's log, which masks every secret it was
/// told about before the line is stored, shown or diagnosed.
pub trait StepLog: Send {
    fn line(&mut self, stream: &str, text: &str);
    fn secret(&mut self, secret: &str);
    /// Cancelled when this process must stop the app's work at once (it lost the app's
    /// lease): a platform command still running then is ended with its process group.
    fn stop(&self) -> tokio_util::sync::CancellationToken {
        tokio_util::sync::CancellationToken::new()
    }
}

/// The operations a runbook needs from a platform. Every one is idempotent. An `Err` is the
/// operation's failure, in one line; what the platform printed is already in the log.
pub trait Platform: Send + Sync {
    fn status(&self, app: &App) -> impl Future<Output = color_eyre::Result<AppRecord>> + Send;
    /// Maintenance page on, and every process of the app that could write stopped.
    fn pause(
        &self,
        app: &App,
        log: &mut dyn StepLog,
    ) -> impl Future<Output = color_eyre::Result<()>> + Send;
    /// Serving again with the app's current DATABASE_URL; the page stays until it is healthy.
    fn unpause(
        &self,
        app: &App,
        log: &mut dyn StepLog,
    ) -> impl Future<Output = color_eyre::Result<()>> + Send;
    /// Point the app's DATABASE_URL at a service instance (no restart).
    fn set_service(
        &self,
        app: &App,
        service: &ServiceRef,
        log: &mut dyn StepLog,
    ) -> impl Future<Output = color_eyre::Result<()>> + Send;
    /// Restart the app on its current DATABASE_URL; its output is the deploy log.
    fn redeploy(
        &self,
        app: &App,
        log: &mut dyn StepLog,
    ) -> impl Future<Output = color_eyre::Result<()>> + Send;
    /// A real request to the app through its public route.
    fn health(
        &self,
        app: &App,
        log: &mut dyn StepLog,
    ) -> impl Future<Output = color_eyre::Result<()>> + Send;
}

/// The platform of an inventory of real servers: its own `[platform]`, or, for the lab's
/// servers, the lab's hooks. An inventory of remote servers without one cannot be migrated:
/// nobody could pause or redeploy its apps.
pub fn real(
    inv: &crate::inventory::Inventory,
    servers: servers::Servers,
    state_dir: &std::path::Path,
) -> color_eyre::Result<exec::ExecPlatform> {
    let spec = match &inv.platform {
        Some(spec) => spec.clone(),
        None if !inv.servers.is_empty()
            && inv
                .servers
                .iter()
                .all(|s| s.kind == crate::inventory::ServerKind::Lab) =>
        {
            let exe = std::env::current_exe().map_err(|e| {
                color_eyre::eyre::eyre!("cannot find pgshift's own binary for the lab's hooks: {e}")
            })?;
            lab::hook_spec(&exe, state_dir)
        }
        None => {
            return Err(crate::error::UserError::new(
                "the inventory has servers that are not the lab's but no [platform] table: pgshift could not pause, point or redeploy its apps (see docs/platform.md)",
            )
            .into());
        }
    };
    Ok(exec::ExecPlatform::new(spec, servers, state_dir))
}
