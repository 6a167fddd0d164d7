//! The platform apps run on: maintenance page (pause), DATABASE_URL, redeploy with a health
//! check. `lab` is the local one; an `exec` platform (shell hooks to a real PaaS) and a `sim`
//! platform (rehearsal at fleet scale) implement the same trait.

pub mod databases;
pub mod lab;
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

/// What the platform shows for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub service: ServiceRef,
    /// Behind the maintenance page.
    pub paused: bool,
    pub releases: u32,
}

impl AppRecord {
    /// What a platform shows for an app it has not touched yet: its inventory service.
    pub fn initial(app: &App) -> color_eyre::Result<Self> {
        Ok(Self {
            service: lab::initial_service(app).ok_or_else(|| {
                color_eyre::eyre::eyre!("app {} has no provisioned PostgreSQL service", app.name)
            })?,
            paused: false,
            releases: 1,
        })
    }
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

/// What a Django app under uWSGI prints when its database connection fails at start-up.
pub fn app_traceback(msg: &str) -> Vec<String> {
    vec![
        "Traceback (most recent call last):".to_string(),
        "  File \"/app/app/wsgi.py\", line 16, in <module>".into(),
        "    application = get_wsgi_application()".into(),
        "  File \"/usr/local/lib/python3.7/site-packages/django/db/backends/postgresql/base.py\", line 185, in get_new_connection".into(),
        "    connection = Database.connect(**conn_params)".into(),
        "  File \"/usr/local/lib/python3.7/site-packages/psycopg2/__init__.py\", line 127, in connect".into(),
        "    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)".into(),
        format!("psycopg2.OperationalError: {msg}"),
        String::new(),
        "unable to load app 0 (mountpoint='') (callable not found or import error)".into(),
        "*** no app loaded. GAME OVER ***".into(),
    ]
}
