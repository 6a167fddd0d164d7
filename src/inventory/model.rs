//! Inventory types: the raw TOML shape (with spans for messages) and the validated model.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::client::Client;
use super::secret::PasswordSource;

/// The TOML file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    #[serde(default)]
    pub servers: BTreeMap<Spanned<String>, RawServer>,
    #[serde(default)]
    pub regions: Vec<RawRegion>,
    #[serde(default)]
    pub apps: Vec<RawApp>,
    /// The operator's PaaS; absent for the lab and sim worlds, which bring their own.
    pub platform: Option<super::platform::RawPlatform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub version: Spanned<u32>,
    #[serde(default)]
    pub lab: bool,
    #[serde(default)]
    pub sim: bool,
    pub url: Option<Spanned<String>>,
    pub password: Option<PasswordSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegion {
    pub name: Spanned<String>,
    #[serde(default = "default_concurrency")]
    pub concurrency: Spanned<u32>,
    /// Server that receives this region's reprovisioned databases, by major version.
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<String>>,
}

fn default_concurrency() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub name: Spanned<String>,
    pub region: Spanned<String>,
    pub environment: Environment,
    pub customer: Option<String>,
    /// `libpq = "9.6"`: the image links libpq of that version.
    pub libpq: Option<Spanned<String>>,
    /// `client = "node-postgres 7.4.0"`: any other driver family.
    pub client: Option<Spanned<String>>,
    /// `strategy = "logical"` or `"dump"`: how this app's data moves (default: the runbook's).
    pub strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub services: Vec<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub id: Spanned<String>,
    pub service: Spanned<String>,
    #[serde(default = "yes")]
    pub provisioned: bool,
    pub server: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub password: Option<PasswordSource>,
    pub seed: Option<LabSeed>,
    pub size_mb: Option<Spanned<f64>>,
}

fn yes() -> bool {
    true
}

/// A validated fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub servers: Vec<Server>,
    pub regions: Vec<Region>,
    pub apps: Vec<App>,
    #[serde(skip)]
    pub platform: Option<super::platform::ExecSpec>,
}

impl Inventory {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The region, or the operator's one-line error naming it and the known ones.
    pub fn require_region(&self, name: &str) -> Result<&Region, crate::error::UserError> {
        self.regions.iter().find(|r| r.name == name).ok_or_else(|| {
            crate::error::UserError::new(format!(
                "unknown region \"{name}\" (regions: {})",
                self.regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The app, or the operator's one-line error naming it.
    pub fn require_app(&self, name: &str) -> Result<&App, crate::error::UserError> {
        self.app(name).ok_or_else(|| {
            crate::error::UserError::new(format!(
                "unknown app \"{name}\" (pgshift inventory lists the fleet)"
            ))
        })
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    pub fn apps_in<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a App> + 'a {
        self.apps.iter().filter(move |a| a.region == region)
    }
}

/// A PostgreSQL server that holds service instances.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub name: String,
    pub version: u32,
    /// Which world the server lives in, decided once when the inventory is read.
    pub kind: ServerKind,
    #[serde(skip)]
    pub password: Option<PasswordSource>,
}

/// The world a server lives in: one of pgshift's local lab clusters (its admin URL comes from
/// the lab), a simulated one (rehearsals at fleet scale: nothing real is touched), or a remote
/// server reached at its admin URL (without password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    Lab,
    Sim,
    Remote { url: String },
}

impl Server {
    pub fn is_lab(&self) -> bool {
        self.kind == ServerKind::Lab
    }

    pub fn is_sim(&self) -> bool {
        self.kind == ServerKind::Sim
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Region {
    pub name: String,
    pub concurrency: u32,
    /// Major version → server name that receives reprovisioned databases.
    pub targets: BTreeMap<u32, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Stage,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Environment::Live => "live",
            Environment::Stage => "stage",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct App {
    pub name: String,
    pub region: String,
    pub environment: Environment,
    pub customer: String,
    /// The PostgreSQL client its image carries (`libpq` in the inventory and in `--json`).
    #[serde(rename = "libpq")]
    pub client: Client,
    /// The app's own choice of migration strategy, if it makes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    pub services: Vec<ServiceInstance>,
}

/// How an app's data moves from OLD to NEW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// pg_dump/pg_restore behind the maintenance page.
    Dump,
    /// The same dump taken in a logical replication slot's snapshot, restored while the app
    /// serves from OLD, then a subscription streams what changed; paused only to catch up.
    Logical,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dump" => Some(Strategy::Dump),
            "logical" => Some(Strategy::Logical),
            _ => None,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Dump => "dump",
            Strategy::Logical => "logical",
        })
    }
}

impl App {
    /// The seed runbook's precondition: a provisioned `postgresql-database-13` instance.
    pub fn is_candidate(&self) -> bool {
        self.postgres_services(13).any(|s| s.provisioned)
    }

    /// The app's PostgreSQL service instances of a given major version.
    pub fn postgres_services(&self, major: u32) -> impl Iterator<Item = &ServiceInstance> {
        self.services
            .iter()
            .filter(move |s| s.kind == ServiceKind::Postgres { major })
    }
}

/// What a service name denotes; `postgresql-database-13` → `Postgres { major: 13 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServiceKind {
    Postgres { major: u32 },
    Other,
}

impl ServiceKind {
    pub fn from_service_name(name: &str) -> Self {
        name.strip_prefix("postgresql-database-")
            .and_then(|v| v.parse().ok())
            .map_or(ServiceKind::Other, |major| ServiceKind::Postgres { major })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceInstance {
    pub id: String,
    pub service: String,
    #[serde(skip)]
    pub kind: ServiceKind,
    pub provisioned: bool,
    pub server: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    #[serde(skip)]
    pub password: Option<PasswordSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<LabSeed>,
    /// Approximate size, for planning before sizes are measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_mb: Option<f64>,
}

/// How the lab fills a fixture database: a schema profile and its size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSeed {
    pub profile: String,
    /// Rows in the profile's main table; the other tables scale from it.
    #[serde(default)]
    pub rows: u64,
    /// Roughly how many bytes of text payload each main-table row carries.
    #[serde(default)]
    pub payload: u32,
    /// Add the value that compresses under the btree limit with pglz and over it with lz4.
    #[serde(default)]
    pub btree_straddle: bool,
}
