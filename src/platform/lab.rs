//! The lab platform: each app's record in `<state>/platform/<app>.json`, and a redeploy whose
//! health check connects with the app's own client capabilities — an image with libpq < 10
//! is refused by a server that asks for SCRAM exactly as libpq refuses it.

use std::path::PathBuf;

use color_eyre::eyre::{Result, WrapErr};

use super::{AppRecord, Platform, ServiceRef};
use crate::engine::servers::Servers;
use crate::inventory::{App, ServiceKind};
use crate::postgres::Endpoint;
use crate::postgres::wire::{AuthRequest, auth_request};

pub struct LabPlatform {
    dir: PathBuf,
    servers: Servers,
}

impl LabPlatform {
    pub fn new(state_dir: &std::path::Path, servers: Servers) -> Self {
        Self {
            dir: state_dir.join("platform"),
            servers,
        }
    }

    fn path(&self, app: &App) -> PathBuf {
        self.dir.join(format!("{}.json", app.name))
    }

    fn write(&self, app: &App, rec: &AppRecord) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(app);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(rec)?)?;
        std::fs::rename(&tmp, &path).wrap_err_with(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Forget what the platform knows of an app (lab reset).
    pub fn forget(&self, app: &App) -> Result<()> {
        match std::fs::remove_file(self.path(app)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub fn servers(&self) -> &Servers {
        &self.servers
    }
}

/// The app's provisioned PostgreSQL service, as the inventory has it: where the platform
/// starts before any migration.
pub fn initial_service(app: &App) -> Option<ServiceRef> {
    app.services
        .iter()
        .filter(|s| s.provisioned && matches!(s.kind, ServiceKind::Postgres { .. }))
        .find_map(|s| {
            Some(ServiceRef {
                id: s.id.clone(),
                service: s.service.clone(),
                server: s.server.clone()?,
                database: s.database.clone()?,
                user: s.user.clone()?,
            })
        })
}

impl Platform for LabPlatform {
    fn record(&self, app: &App) -> Result<AppRecord> {
        match std::fs::read(self.path(app)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .wrap_err_with(|| format!("reading {}", self.path(app).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AppRecord::initial(app),
            Err(e) => Err(e.into()),
        }
    }

    fn set_paused(&self, app: &App, paused: bool) -> Result<()> {
        let mut rec = self.record(app)?;
        rec.paused = paused;
        self.write(app, &rec)
    }

    fn set_service(&self, app: &App, service: &ServiceRef) -> Result<()> {
        let mut rec = self.record(app)?;
        rec.service = service.clone();
        self.write(app, &rec)
    }

    async fn redeploy(&self, app: &App, log: &mut (dyn FnMut(String) + Send)) -> Result<bool> {
        let mut rec = self.record(app)?;
        rec.releases += 1;
        self.write(app, &rec)?;
        let ep = self.servers.role(&rec.service.server, &rec.service.user)?;
        log(format!(
            "-----> Deploying {} (release v{})",
            app.name, rec.releases
        ));
        log(format!(
            "-----> Image: python 3.7, psycopg2 2.8 linked against libpq {}",
            app.client
        ));
        log(format!(
            "-----> DATABASE_URL=postgres://{}:****@{}:{}/{}",
            ep.user, ep.host, ep.port, rec.service.database
        ));
        log("-----> Starting web: uwsgi --ini uwsgi.ini".into());
        log("*** Starting uWSGI 2.0.18 (64bit) ***".into());
        match health_check(app, &ep, &rec.service.database).await {
            Ok(summary) => {
                log(format!(
                    "WSGI app 0 (mountpoint='') ready in 1 seconds on interpreter {:#x}",
                    0x55d4_c0de_u32
                ));
                log(format!(
                    "-----> Health check passed: GET /health 200 ({summary})"
                ));
                Ok(true)
            }
            Err(lines) => {
                for l in lines {
                    log(l);
                }
                log("-----> Health check failed: web did not become healthy".into());
                Ok(false)
            }
        }
    }
}

/// Connect as the app would and run a query on its tables. On failure, the lines the app
/// would print (a Django/psycopg2 traceback under uWSGI).
async fn health_check(app: &App, ep: &Endpoint, database: &str) -> Result<String, Vec<String>> {
    let traceback = |msg: &str| super::app_traceback(msg);
    if !app.client.supports_scram() {
        // libpq < 10 reads the server's first authentication request and gives up on SASL.
        match auth_request(&ep.host, ep.port, &ep.user, database).await {
            Ok(AuthRequest::Sasl(_)) => {
                return Err(traceback(
                    "SCRAM authentication requires libpq version 10 or above",
                ));
            }
            Ok(AuthRequest::Error(m)) => return Err(traceback(&format!("FATAL:  {m}"))),
            Ok(_) => {}
            Err(e) => {
                return Err(traceback(&format!(
                    "could not connect to server: {e}\n\tIs the server running on host \"{}\" and accepting\n\tTCP/IP connections on port {}?",
                    ep.host, ep.port
                )));
            }
        }
    }
    let mut conn = match ep.connect(database).await {
        Ok(c) => c,
        Err(e) => return Err(traceback(&e.to_string())),
    };
    let table: Option<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename LIMIT 1",
    )
    .fetch_optional(&mut conn)
    .await
    .map_err(|e| traceback(&e.to_string()))?;
    let Some(table) = table else {
        return Ok("no tables".into());
    };
    // The name comes quoted from format('%I').
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| traceback(&e.to_string()))?;
    Ok(format!("{n} rows in {table}"))
}
