//! The local lab: two real PostgreSQL servers owned by pgshift (13 configured like the old
//! service tier, 15 like the new one), run as an unprivileged OS user, and seeded with the
//! fixture fleet. Knows nothing of the engine.

mod binaries;
mod cluster;
mod osuser;
pub mod paas;
pub mod profiles;
pub mod secrets;
mod seed;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, eyre};
use futures::StreamExt;
use serde::Serialize;

use crate::config::Config;
use crate::error::UserError;
use crate::inventory::{Inventory, Secret};
use crate::postgres::{Endpoint, exec, ident};
pub use binaries::BinDir;
pub use cluster::{ADMIN_USER, Cluster};
pub use seed::SeedTask;

/// The two majors the lab runs.
pub const MAJORS: [u32; 2] = [13, 15];

/// What `lab up` reports as it goes.
#[derive(Debug, Clone)]
pub enum LabEvent {
    Initialized {
        major: u32,
    },
    Started {
        major: u32,
        port: u16,
    },
    AlreadyRunning {
        major: u32,
    },
    Seeded {
        app: String,
        database: String,
        seconds: f64,
    },
    Unchanged {
        seeded: usize,
    },
    /// An app started, or one that could not be (the line says why).
    App {
        line: String,
    },
    Apps {
        running: usize,
        router: String,
    },
}

pub struct Lab {
    dir: PathBuf,
    run: osuser::RunAs,
    clusters: Vec<Cluster>,
    secrets: secrets::Secrets,
    paas: paas::Paas,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub clusters: Vec<ClusterStatus>,
    pub router: paas::RouterStatus,
    pub apps: Vec<paas::AppStatus>,
}

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    pub version: String,
    pub url: String,
    pub running: bool,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Lab {
    /// Find the binaries and the lab directory; starts nothing.
    pub fn open(cfg: &Config) -> Result<Self> {
        let dir = cfg.state_dir().join("lab");
        let pg13 = BinDir::find(13, &cfg.pg13_bin())?;
        let pg15 = BinDir::find(15, &cfg.lab.pg15_bin)?;
        let run = osuser::RunAs::resolve(&cfg.lab.os_user)?;
        let clusters = vec![
            Cluster {
                bin: pg13,
                dir: dir.join("pg13"),
                port: cfg.lab.port13,
            },
            Cluster {
                bin: pg15,
                dir: dir.join("pg15"),
                port: cfg.lab.port15,
            },
        ];
        Ok(Self {
            secrets: secrets::Secrets::new(&dir),
            paas: paas::Paas::new(&dir, run.clone(), cfg.lab.router_port),
            dir,
            run,
            clusters,
        })
    }

    pub fn paas(&self) -> &paas::Paas {
        &self.paas
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cluster(&self, major: u32) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.major() == major)
    }

    /// The admin endpoint of the cluster of a major version.
    pub fn admin(&self, major: u32) -> Result<Endpoint> {
        let c = self
            .cluster(major)
            .ok_or_else(|| UserError::new(format!("the lab runs no PostgreSQL {major}")))?;
        Ok(c.endpoint(&self.secrets.admin()?))
    }

    /// Where the lab keeps the password of `role` on the inventory server `server`.
    pub fn role_secret_path(&self, server: &str, role: &str) -> PathBuf {
        self.secrets.role_path(server, role)
    }

    /// The password of `role` on the lab server the inventory calls `server`.
    pub fn role_password(&self, server: &str, role: &str) -> Result<Secret> {
        self.secrets.read(&self.secrets.role_path(server, role))
    }

    /// A fresh password for `role` on `server`, kept where `role_password` finds it.
    pub fn new_role_password(&self, server: &str, role: &str) -> Result<Secret> {
        self.secrets.new_role_password(server, role)
    }

    pub fn pgpass_path(&self) -> PathBuf {
        self.secrets.pgpass_path()
    }

    /// One `lab up|down|reset` at a time: a second waits for the first.
    fn lock(&self) -> Result<File> {
        std::fs::create_dir_all(&self.dir)
            .wrap_err_with(|| format!("creating {}", self.dir.display()))?;
        let f = File::create(self.dir.join("lock"))?;
        f.lock().wrap_err("locking the lab")?;
        Ok(f)
    }

    /// Create, start and seed what is missing; a no-op on a lab that is up and seeded.
    pub async fn up(&self, inv: &Inventory, on: &dyn Fn(LabEvent)) -> Result<()> {
        let _lock = self.lock()?;
        self.run.make_dir(&self.dir)?;
        let admin = self.secrets.admin()?;
        self.secrets.write_pgpass(
            &self.pgpass_path(),
            &self.clusters.iter().map(|c| c.port).collect::<Vec<_>>(),
            ADMIN_USER,
        )?;
        for c in &self.clusters {
            if !c.is_initialized() {
                c.init(&self.run, &admin).await?;
                on(LabEvent::Initialized { major: c.major() });
            }
            let mut running = c.is_running(&self.run).await?;
            if running && c.settings_changed() {
                // e.g. wal_level = logical on a lab an older pgshift started.
                c.stop(&self.run).await?;
                running = false;
            }
            if running {
                on(LabEvent::AlreadyRunning { major: c.major() });
            } else {
                c.start(&self.run).await?;
                on(LabEvent::Started {
                    major: c.major(),
                    port: c.port,
                });
            }
            c.wait_ready(&c.endpoint(&admin)).await?;
        }
        self.seed(inv, &admin, on).await?;
        self.start_apps(inv, on)
    }

    /// Router and apps (see [`paas`]): those not running are started; one line per app that
    /// could not be, then `lab up` fails naming them.
    fn start_apps(&self, inv: &Inventory, on: &dyn Fn(LabEvent)) -> Result<()> {
        let apps = paas::lab_apps(inv, self)?;
        let problems = self.paas.up(&apps, &|line| on(LabEvent::App { line }))?;
        for line in &problems {
            on(LabEvent::App { line: line.clone() });
        }
        on(LabEvent::Apps {
            running: apps.len() - problems.len(),
            router: self.paas.router_base(),
        });
        Ok(())
    }

    async fn seed(&self, inv: &Inventory, admin: &Secret, on: &dyn Fn(LabEvent)) -> Result<()> {
        let tasks = seed::tasks(inv);
        let mut ledger = seed::Ledger::load(&self.dir);
        let mut existing = std::collections::HashMap::new();
        for c in &self.clusters {
            let mut conn = c.endpoint(admin).connect("postgres").await?;
            let dbs: Vec<String> =
                sqlx::query_scalar("SELECT datname FROM pg_database WHERE NOT datistemplate")
                    .fetch_all(&mut conn)
                    .await?;
            existing.insert(c.major(), dbs);
        }
        let mut todo = Vec::new();
        for t in &tasks {
            if self.cluster(t.major).is_none() {
                return Err(UserError::new(format!(
                    "server \"{}\" of app {} is a lab server of PostgreSQL {}, but the lab runs only 13 and 15",
                    t.server, t.app, t.major
                ))
                .into());
            }
            let fp = t.fingerprint()?;
            let present = existing
                .get(&t.major)
                .is_some_and(|d| d.contains(&t.database))
                && self.secrets.role_path(&t.server, &t.role).exists();
            if !(present && ledger.entries.get(&t.service_id) == Some(&fp)) {
                todo.push((t.clone(), fp));
            }
        }
        if todo.is_empty() {
            on(LabEvent::Unchanged {
                seeded: tasks.len(),
            });
            return Ok(());
        }
        // Two at a time: this machine class has two cores.
        let mut results = futures::stream::iter(todo.into_iter().map(|(t, fp)| async move {
            let ep = self.admin(t.major)?;
            let started = Instant::now();
            seed::seed(&ep, &self.secrets, &t).await?;
            Ok::<_, color_eyre::Report>((t, fp, started.elapsed().as_secs_f64()))
        }))
        .buffer_unordered(2);
        while let Some(r) = results.next().await {
            let (t, fp, seconds) = r?;
            ledger.record(&t.service_id, &fp)?;
            on(LabEvent::Seeded {
                app: t.app.clone(),
                database: t.database.clone(),
                seconds,
            });
        }
        Ok(())
    }

    pub async fn down(&self) -> Result<()> {
        let _lock = self.lock()?;
        self.paas.down()?;
        for c in &self.clusters {
            c.stop(&self.run).await?;
        }
        Ok(())
    }

    /// Drop every app database and role on both clusters (NEW ones included) and re-seed.
    pub async fn reset(&self, inv: &Inventory, on: &dyn Fn(LabEvent)) -> Result<()> {
        self.up(inv, &|_| {}).await?;
        {
            let _lock = self.lock()?;
            for app in self.paas.app_names() {
                self.paas.reset_app(&app)?;
            }
            let admin = self.secrets.admin()?;
            for c in &self.clusters {
                let mut conn = c.endpoint(&admin).connect("postgres").await?;
                let dbs: Vec<String> = sqlx::query_scalar(
                    "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'",
                )
                .fetch_all(&mut conn)
                .await?;
                for d in dbs {
                    exec(
                        &mut conn,
                        format!("DROP DATABASE {} WITH (FORCE)", ident(&d)),
                    )
                    .await?;
                }
                let roles: Vec<String> = sqlx::query_scalar(
                    "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> $1",
                )
                .bind(ADMIN_USER)
                .fetch_all(&mut conn)
                .await?;
                for r in roles {
                    exec(&mut conn, format!("DROP ROLE {}", ident(&r))).await?;
                }
            }
            for s in &inv.servers {
                self.secrets.forget_server(&s.name)?;
            }
            seed::Ledger::load(&self.dir).clear()?;
        }
        self.up(inv, on).await
    }

    /// Put one app back as the fixture fleet has it: anything of it on the other lab cluster
    /// (a NEW database and role) dropped, its OLD database re-seeded only if it is missing or
    /// out of date (pgshift never writes to OLD, so a seeded OLD is as the fleet has it).
    pub async fn reset_app(&self, inv: &Inventory, app: &str, on: &dyn Fn(LabEvent)) -> Result<()> {
        let tasks: Vec<SeedTask> = seed::tasks(inv)
            .into_iter()
            .filter(|t| t.app == app)
            .collect();
        if tasks.is_empty() {
            return Err(UserError::new(format!("app {app} has no lab database to reset")).into());
        }
        let _lock = self.lock()?;
        self.paas.reset_app(app)?;
        let admin = self.secrets.admin()?;
        let mut ledger = seed::Ledger::load(&self.dir);
        for t in &tasks {
            for c in self.clusters.iter().filter(|c| c.major() != t.major) {
                let mut conn = c.endpoint(&admin).connect("postgres").await?;
                exec(
                    &mut conn,
                    format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        ident(&t.database)
                    ),
                )
                .await?;
                exec(&mut conn, format!("DROP ROLE IF EXISTS {}", ident(&t.role))).await?;
            }
            let started = Instant::now();
            seed::seed(&self.admin(t.major)?, &self.secrets, t).await?;
            ledger.record(&t.service_id, &t.fingerprint()?)?;
            on(LabEvent::Seeded {
                app: t.app.clone(),
                database: t.database.clone(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if let Some(a) = inv.app(app)
            && let Some(la) = paas::lab_app(inv, self, a)?
        {
            for line in self.paas.up(&[la], &|_| {})? {
                on(LabEvent::App { line });
            }
        }
        Ok(())
    }

    pub async fn status(&self) -> Result<Status> {
        let mut out = Vec::new();
        for c in &self.clusters {
            let running = c.is_running(&self.run).await?;
            let version = if running {
                let ep = c.endpoint(&self.secrets.admin()?);
                let mut conn = ep.connect("postgres").await?;
                let v: String = sqlx::query_scalar("SELECT current_setting('server_version')")
                    .fetch_one(&mut conn)
                    .await?;
                v.split_whitespace().next().unwrap_or(&v).to_string()
            } else {
                c.binary_version(&self.run)
                    .await
                    .ok_or_else(|| eyre!("cannot tell the version of PostgreSQL {}", c.major()))?
            };
            out.push(ClusterStatus {
                version,
                url: format!(
                    "postgres://{ADMIN_USER}@127.0.0.1:{}/postgres?passfile={}",
                    c.port,
                    self.pgpass_path().display()
                ),
                running,
                port: c.port,
                data_dir: c.data(),
                log: c.log_file(),
            });
        }
        let p = self.paas.status()?;
        Ok(Status {
            clusters: out,
            router: p.router,
            apps: p.apps,
        })
    }
}
