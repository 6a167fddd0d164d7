//! The platform apps run on: maintenance page (pause), DATABASE_URL, redeploy with a health
//! check. `lab` is the local one; an `exec` platform (shell hooks to a real PaaS) and a `sim`
//! platform (rehearsal at fleet scale) implement the same trait.

pub mod lab;

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

/// What the platform shows for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub service: ServiceRef,
    /// Behind the maintenance page.
    pub paused: bool,
    pub releases: u32,
}

/// The operations a runbook needs from a platform. Every one is idempotent.
pub trait Platform: Send + Sync {
    fn record(&self, app: &App) -> color_eyre::Result<AppRecord>;
    fn set_paused(&self, app: &App, paused: bool) -> color_eyre::Result<()>;
    fn set_service(&self, app: &App, service: &ServiceRef) -> color_eyre::Result<()>;
    /// Deploy the app again against its current DATABASE_URL; `log` gets the deploy log.
    /// Returns whether the health check passed.
    fn redeploy(
        &self,
        app: &App,
        log: &mut (dyn FnMut(String) + Send),
    ) -> impl std::future::Future<Output = color_eyre::Result<bool>> + Send;
}
