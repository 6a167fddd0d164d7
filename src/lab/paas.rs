//! The lab's small PaaS: every app with a provisioned PostgreSQL service on a lab server runs
//! as real processes (`web` on its own loopback port, `worker` writing a row a second) behind a
//! real router (nginx) that serves a maintenance page per app. pgshift drives it only through
//! `pgshift lab hook OP APP` (see [`hook`]), the commands of the `exec` platform contract.
//!
//! Layout under `<lab>/`: `router/` (nginx prefix, maintenance flags and pages), `apps/APP/`
//! (`config.json` = DATABASE_URL and service id, 0600; `web.port`; `web.pid`/`worker.pid`;
//! `app.log`; `lock`), `programs/` (the apps' code, written from the binary).

pub mod hook;
mod http;
mod procs;
mod router;
mod runtime;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use serde::{Deserialize, Serialize};

use super::osuser::RunAs;
use crate::inventory::{App, Inventory, Secret, ServiceKind};
pub use hook::HookOp;
use procs::{PidFiles, Role};
use router::Router;
use runtime::Runtime;

/// How long an app has to answer its health check after a start.
fn start_timeout() -> Duration {
    std::env::var("PGSHIFT_LAB_APP_START_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs)
}

/// SIGTERM → SIGKILL grace when stopping an app.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What an app is configured with: the platform's DATABASE_URL and whose service it is.
#[derive(Serialize, Deserialize)]
pub struct AppConfig {
    pub service_id: String,
    pub database_url: String,
}

/// A lab app as the inventory describes it, with the database it starts on.
pub struct LabApp {
    pub name: String,
    pub client: crate::inventory::Client,
    pub service_id: String,
    pub url: Secret,
}

/// What `lab status` shows of the router and the apps.
#[derive(Debug, Serialize)]
pub struct PaasStatus {
    pub router: RouterStatus,
    pub apps: Vec<AppStatus>,
}

#[derive(Debug, Serialize)]
pub struct RouterStatus {
    pub url: String,
    pub port: u16,
    pub running: bool,
    pub pid: Option<u32>,
}

/// A lab app's processes as `lab status` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProcess {
    /// Behind its maintenance page (whether or not its processes run).
    Paused,
    Running,
    Stopped,
}

impl AppProcess {
    pub fn as_str(self) -> &'static str {
        match self {
            AppProcess::Paused => "paused",
            AppProcess::Running => "running",
            AppProcess::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppStatus {
    pub name: String,
    pub url: String,
    pub running: bool,
    pub paused: bool,
    pub service_id: Option<String>,
    pub web_port: Option<u16>,
    pub web_pid: Option<u32>,
    pub worker_pid: Option<u32>,
    pub log: PathBuf,
}

impl AppStatus {
    pub fn process(&self) -> AppProcess {
        match (self.running, self.paused) {
            (_, true) => AppProcess::Paused,
            (true, false) => AppProcess::Running,
            (false, false) => AppProcess::Stopped,
        }
    }
}

/// How a start ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Healthy,
    /// A process exited (which one) before the app was healthy.
    Exited(&'static str),
    TimedOut,
}

pub struct Paas {
    dir: PathBuf,
    run: RunAs,
    router: Router,
    runtimes: PathBuf,
}

impl Paas {
    pub fn new(lab_dir: &Path, run: RunAs, router_port: u16) -> Self {
        Self {
            dir: lab_dir.to_path_buf(),
            run,
            router: Router {
                dir: lab_dir.join("router"),
                port: router_port,
            },
            runtimes: runtime::runtimes_dir(),
        }
    }

    fn app_dir(&self, app: &str) -> PathBuf {
        self.dir.join("apps").join(app)
    }

    fn pids(&self, app: &str) -> PidFiles {
        PidFiles {
            dir: self.app_dir(app),
        }
    }

    fn programs(&self) -> PathBuf {
        self.dir.join("programs")
    }

    pub fn log_path(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("app.log")
    }

    pub fn router_url(&self, app: &str) -> String {
        self.router.url(app)
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn router_base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.router.port)
    }

    /// One operation per app at a time; a second waits.
    fn lock(&self, app: &str) -> Result<File> {
        let dir = self.app_dir(app);
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        let f = File::create(dir.join("lock"))?;
        f.lock().wrap_err_with(|| format!("locking {app}"))?;
        Ok(f)
    }

    fn config_path(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("config.json")
    }

    pub fn config(&self, app: &str) -> Result<Option<AppConfig>> {
        match std::fs::read(self.config_path(app)) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).wrap_err_with(|| {
                format!("reading {}", self.config_path(app).display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Record the app's DATABASE_URL (owner-only file: it holds the password).
    pub fn write_config(&self, app: &str, cfg: &AppConfig) -> Result<()> {
        let path = self.config_path(app);
        std::fs::create_dir_all(self.app_dir(app))?;
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(cfg)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).wrap_err_with(|| format!("writing {}", path.display()))
    }

    /// The app's config, first written from the inventory's provisioned service.
    fn config_or_initial(&self, app: &LabApp) -> Result<AppConfig> {
        if let Some(c) = self.config(&app.name)? {
            return Ok(c);
        }
        let c = AppConfig {
            service_id: app.service_id.clone(),
            database_url: app.url.expose().to_string(),
        };
        self.write_config(&app.name, &c)?;
        Ok(c)
    }

    fn web_port(&self, app: &str) -> Option<u16> {
        std::fs::read_to_string(self.app_dir(app).join("web.port"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The app's web port: the one it had if it is still free (or its own web holds it),
    /// otherwise a fresh one from the kernel, recorded.
    fn ensure_web_port(&self, app: &str) -> Result<u16> {
        let ours = self.pids(app).read(Role::Web).is_some_and(|p| p.alive());
        if let Some(p) = self.web_port(app)
            && (ours || TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return Ok(p);
        }
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        std::fs::write(self.app_dir(app).join("web.port"), format!("{port}\n"))?;
        Ok(port)
    }

    /// Every app the lab has set up, with its web port, for the router.
    fn routes(&self) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("apps")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(p) = self.web_port(&name) {
                    out.push((name, p));
                }
            }
        }
        out.sort();
        out
    }

    fn write_programs(&self) -> Result<()> {
        let dir = self.programs();
        std::fs::create_dir_all(&dir)?;
        for (name, text) in [
            ("libpq_app.py", runtime::LIBPQ_APP),
            ("node_app.js", runtime::NODE_APP),
        ] {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text)?;
            }
        }
        Ok(())
    }

    fn runtime(&self, app: &LabApp) -> Result<Runtime, String> {
        runtime::for_client(app.client, &self.runtimes)
            .map_err(|why| format!("lab app {} ({}): {why}", app.name, app.client.label()))
    }

    /// Stop the app's processes (whatever runs of it), start both with `url`.
    fn restart(&self, app: &LabApp, rt: &Runtime, url: &Secret) -> Result<()> {
        let pids = self.pids(&app.name);
        pids.stop(STOP_GRACE)?;
        self.write_programs()?;
        let port = self.ensure_web_port(&app.name)?;
        self.router.ensure(&self.run, &self.routes())?;
        let log = self.log_path(&app.name);
        for role in Role::ALL {
            pids.spawn(
                &self.run,
                &self.programs(),
                rt,
                role,
                &app.name,
                url,
                port,
                &log,
            )?;
        }
        Ok(())
    }

    /// Wait until the web process answers /health directly with 200, while both processes
    /// live; `out` gets each line the app prints meanwhile (from `log_from` on).
    fn wait_healthy(&self, app: &str, log_from: u64, out: &mut dyn FnMut(&str)) -> Result<Started> {
        let pids = self.pids(app);
        let port = self.web_port(app);
        let mut tail = LogTail::new(self.log_path(app), log_from);
        let deadline = Instant::now() + start_timeout();
        let result = loop {
            tail.emit(out, false);
            if let Some(port) = port
                && http::get(port, "/health", Duration::from_secs(2)).is_ok_and(|a| a.code == 200)
                && pids.live().len() == Role::ALL.len()
            {
                break Started::Healthy;
            }
            if let Some(r) = Role::ALL
                .into_iter()
                .find(|r| !pids.read(*r).is_some_and(|p| p.alive()))
            {
                break Started::Exited(r.id());
            }
            if Instant::now() > deadline {
                break Started::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // What the processes printed up to here, including their last words.
        std::thread::sleep(Duration::from_millis(100));
        tail.emit(out, true);
        Ok(result)
    }

    fn log_len(&self, app: &str) -> u64 {
        std::fs::metadata(self.log_path(app)).map_or(0, |m| m.len())
    }

    /// `lab up`'s part: router up, every lab app that is not paused running with its current
    /// DATABASE_URL. Apps already running are left alone. Returns one line per app that could
    /// not start (the lab has no runtime for it, or it did not become healthy).
    pub fn up(&self, apps: &[LabApp], on: &dyn Fn(String)) -> Result<Vec<String>> {
        self.write_programs()?;
        let mut problems = Vec::new();
        let mut todo = Vec::new();
        let mut locks = Vec::new();
        for app in apps {
            let rt = match self.runtime(app) {
                Ok(rt) => rt,
                Err(line) => {
                    problems.push(line);
                    continue;
                }
            };
            locks.push(self.lock(&app.name)?);
            let cfg = self.config_or_initial(app)?;
            let url = Secret::new(cfg.database_url);
            self.ensure_web_port(&app.name)?;
            if self.router.paused(&app.name) || self.pids(&app.name).running_with(&url) {
                continue;
            }
            todo.push((app, rt, url));
        }
        self.router.ensure(&self.run, &self.routes())?;
        let mut waiting = Vec::new();
        for (app, rt, url) in &todo {
            let from = self.log_len(&app.name);
            self.restart(app, rt, url)?;
            waiting.push((app, from));
        }
        for (app, from) in waiting {
            let mut lines = Vec::new();
            match self.wait_healthy(&app.name, from, &mut |l| lines.push(l.to_string()))? {
                Started::Healthy => on(format!(
                    "started {:<18} {:<36} {}",
                    app.name,
                    runtime_label(self, app),
                    self.router.url(&app.name)
                )),
                how => {
                    self.pids(&app.name).stop(STOP_GRACE)?;
                    problems.push(format!(
                        "lab app {} did not start ({}): {}",
                        app.name,
                        describe(&how),
                        lines.last().map_or("no output", String::as_str)
                    ));
                }
            }
        }
        drop(locks);
        Ok(problems)
    }

    /// Stop every app and the router.
    pub fn down(&self) -> Result<()> {
        for (app, _) in self.routes() {
            let _lock = self.lock(&app)?;
            self.pids(&app).stop(STOP_GRACE)?;
        }
        self.router.stop()
    }

    /// Stop an app and forget its config and maintenance flag (lab reset).
    pub fn reset_app(&self, app: &str) -> Result<()> {
        let _lock = self.lock(app)?;
        self.pids(app).stop(STOP_GRACE)?;
        self.router.clear_flag(app)?;
        match std::fs::remove_file(self.config_path(app)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every app the lab has set up.
    pub fn app_names(&self) -> Vec<String> {
        self.routes().into_iter().map(|(a, _)| a).collect()
    }

    pub fn status(&self) -> Result<PaasStatus> {
        let pid = self.router.pid();
        let mut apps = Vec::new();
        for (name, port) in self.routes() {
            let pids = self.pids(&name);
            let live = pids.live();
            let pid_of = |r: Role| live.iter().find(|(x, _)| *x == r).map(|(_, p)| p.pid);
            apps.push(AppStatus {
                url: self.router.url(&name),
                running: live.len() == Role::ALL.len(),
                paused: self.router.paused(&name),
                service_id: self.config(&name)?.map(|c| c.service_id),
                web_port: Some(port),
                web_pid: pid_of(Role::Web),
                worker_pid: pid_of(Role::Worker),
                log: self.log_path(&name),
                name,
            });
        }
        Ok(PaasStatus {
            router: RouterStatus {
                url: format!("http://127.0.0.1:{}/", self.router.port),
                port: self.router.port,
                running: pid.is_some(),
                pid,
            },
            apps,
        })
    }
}

fn runtime_label(p: &Paas, app: &LabApp) -> String {
    p.runtime(app).map_or_else(|e| e, |rt| rt.label)
}

pub fn describe(s: &Started) -> String {
    match s {
        Started::Healthy => "healthy".into(),
        Started::Exited(r) => format!("its {r} process exited"),
        Started::TimedOut => format!("not healthy after {} s", start_timeout().as_secs()),
    }
}

/// The lab apps of an inventory: each app with a provisioned PostgreSQL service on a lab
/// server, with the URL of that service (the role's lab password).
pub fn lab_apps(inv: &Inventory, lab: &super::Lab) -> Result<Vec<LabApp>> {
    let mut out = Vec::new();
    for app in &inv.apps {
        if let Some(a) = lab_app(inv, lab, app)? {
            out.push(a);
        }
    }
    Ok(out)
}

pub fn lab_app(inv: &Inventory, lab: &super::Lab, app: &App) -> Result<Option<LabApp>> {
    for s in &app.services {
        let ServiceKind::Postgres { .. } = s.kind else {
            continue;
        };
        if !s.provisioned {
            continue;
        }
        let (Some(server), Some(db), Some(user)) = (&s.server, &s.database, &s.user) else {
            continue;
        };
        let Some(srv) = inv
            .server(server)
            .filter(|srv| srv.kind == crate::inventory::ServerKind::Lab)
        else {
            continue;
        };
        let Some(cluster) = lab.cluster(srv.version) else {
            continue;
        };
        // A database the lab did not seed (the bench builds its own, and keeps its role's
        // password in the lab's secrets too) has no lab app.
        if s.seed.is_none() || !lab.role_secret_path(server, user).exists() {
            continue;
        }
        let password = lab.role_password(server, user)?;
        let url = format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            pct(user),
            pct(password.expose()),
            cluster.port,
            pct(db)
        );
        return Ok(Some(LabApp {
            name: app.name.clone(),
            client: app.client,
            service_id: s.id.clone(),
            url: Secret::new(url),
        }));
    }
    Ok(None)
}

/// Percent-encode a URL component (userinfo, path).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Follows an app's log file from an offset, line by line.
struct LogTail {
    path: PathBuf,
    pos: u64,
    partial: String,
}

impl LogTail {
    fn new(path: PathBuf, pos: u64) -> Self {
        Self {
            path,
            pos,
            partial: String::new(),
        }
    }

    /// Emit the complete lines written since last time (and a trailing partial one if `all`).
    fn emit(&mut self, out: &mut dyn FnMut(&str), all: bool) {
        if let Ok(mut f) = File::open(&self.path)
            && f.seek(SeekFrom::Start(self.pos)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                self.pos += n as u64;
                self.partial.push_str(&String::from_utf8_lossy(&buf));
            }
        }
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            out(line.trim_end_matches(['\n', '\r']));
        }
        if all && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            out(&line);
        }
    }
}
