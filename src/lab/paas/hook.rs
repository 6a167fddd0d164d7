//! `pgshift lab hook OP APP`: the lab's side of the `exec` platform contract
//! (docs: /work/notes/platform-contract.md → docs/platform.md). Exit 0 done, 1 app-level
//! failure (the app's own output says why), 2 the hook itself failed. Every op is idempotent,
//! holds the app's lock, and can be repeated after a crash.

use std::io::{BufRead, Write};
use std::time::Duration;

use color_eyre::eyre::Result;
use serde::Serialize;

use super::procs::Role;
use super::{AppConfig, LabApp, Paas, STOP_GRACE, Started, describe, http};
use crate::inventory::Secret;

pub const DONE: i32 = 0;
pub const APP_FAILED: i32 = 1;
pub const HOOK_FAILED: i32 = 2;

/// How long in-flight requests get to finish once the maintenance page is up.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(300);

/// The hook's operations are the platform contract's, one enum for both sides.
pub use crate::inventory::platform::PlatformOp as HookOp;

#[derive(Serialize)]
struct StatusJson<'a> {
    paused: bool,
    service_id: Option<&'a str>,
    url: String,
    running: bool,
}

impl Paas {
    /// Run one hook on `app`. `Err` only for a failure of the hook itself (the caller prints
    /// it and exits 2).
    pub fn hook(&self, op: HookOp, app: &LabApp) -> Result<i32> {
        let _lock = self.lock(&app.name)?;
        self.record_call(op, &app.name)?;
        let mut stdout = std::io::stdout().lock();
        match op {
            HookOp::Status => {
                let cfg = self.config(&app.name)?;
                let s = StatusJson {
                    paused: self.router.paused(&app.name),
                    service_id: Some(
                        cfg.as_ref()
                            .map_or(app.service_id.as_str(), |c| c.service_id.as_str()),
                    ),
                    url: self.router.url(&app.name),
                    running: self.pids(&app.name).live().len() == Role::ALL.len(),
                };
                writeln!(stdout, "{}", serde_json::to_string(&s)?)?;
                Ok(DONE)
            }
            HookOp::Pause => {
                // Maintenance page first: no new request reaches a process being stopped.
                // Requests the router passed on just before are still being answered: let
                // them drain, or their users get a 502 from a process that went away.
                let was_up = !self.router.paused(&app.name);
                self.router.set_flag(&app.name)?;
                if was_up && !self.pids(&app.name).live().is_empty() {
                    std::thread::sleep(DRAIN);
                }
                self.pids(&app.name).stop(STOP_GRACE)?;
                eprintln!("{}: maintenance page on, processes stopped", app.name);
                Ok(DONE)
            }
            HookOp::SetDatabaseUrl => {
                let url = read_url()?;
                let service_id = std::env::var("PGSHIFT_SERVICE_ID")
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        color_eyre::eyre::eyre!("PGSHIFT_SERVICE_ID is not set: whose URL is it?")
                    })?;
                self.write_config(
                    &app.name,
                    &AppConfig {
                        service_id: service_id.clone(),
                        database_url: url.expose().to_string(),
                    },
                )?;
                eprintln!("{}: DATABASE_URL set to service {service_id}", app.name);
                Ok(DONE)
            }
            HookOp::Unpause => {
                let rt = self.runtime(app).map_err(color_eyre::eyre::Report::msg)?;
                let url = self.current_url(app)?;
                let pids = self.pids(&app.name);
                let ready = if pids.running_with(&url) {
                    let port = self.web_port(&app.name);
                    port.is_some_and(|p| {
                        http::get(p, "/health", Duration::from_secs(5)).is_ok_and(|a| a.code == 200)
                    })
                } else {
                    false
                };
                if !ready {
                    let from = self.log_len(&app.name);
                    self.restart(app, &rt, &url)?;
                    let how = self.wait_healthy(&app.name, from, &mut |l| {
                        let _ = writeln!(stdout, "{l}");
                    })?;
                    if how != Started::Healthy {
                        // Left behind its maintenance page with nothing running: no half-app.
                        pids.stop(STOP_GRACE)?;
                        eprintln!(
                            "{}: did not start ({}); still paused",
                            app.name,
                            describe(&how)
                        );
                        return Ok(APP_FAILED);
                    }
                }
                self.router.clear_flag(&app.name)?;
                eprintln!("{}: serving ({})", app.name, self.router.url(&app.name));
                Ok(DONE)
            }
            HookOp::Redeploy => {
                let rt = self.runtime(app).map_err(color_eyre::eyre::Report::msg)?;
                let url = self.current_url(app)?;
                let from = self.log_len(&app.name);
                self.restart(app, &rt, &url)?;
                let how = self.wait_healthy(&app.name, from, &mut |l| {
                    let _ = writeln!(stdout, "{l}");
                    let _ = stdout.flush();
                })?;
                if how == Started::Healthy {
                    Ok(DONE)
                } else {
                    self.pids(&app.name).stop(STOP_GRACE)?;
                    eprintln!("{}: redeploy failed: {}", app.name, describe(&how));
                    Ok(APP_FAILED)
                }
            }
            HookOp::Health => {
                let path = format!("/{}/health", app.name);
                let a =
                    http::get(self.router.port, &path, Duration::from_secs(10)).map_err(|e| {
                        color_eyre::eyre::eyre!(
                            "the lab router on 127.0.0.1:{} does not answer: {e}",
                            self.router.port
                        )
                    })?;
                writeln!(
                    stdout,
                    "GET {} → {}",
                    self.router.url(&app.name) + "health",
                    a.status_line
                )?;
                write!(stdout, "{}", a.body)?;
                Ok(if a.code == 200 { DONE } else { APP_FAILED })
            }
        }
    }

    /// The lab platform's register of the operations it was asked for: one JSON line per
    /// hook (`at`, `op`, `caller`: the pid that ran it) in `APP/hooks.log`, so a test can tell
    /// which pgshift did what to an app, and when.
    fn record_call(&self, op: HookOp, app: &str) -> Result<()> {
        use clap::ValueEnum;
        let line = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "op": op.to_possible_value().map(|v| v.get_name().to_string()),
            "caller": nix::unistd::getppid().as_raw(),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.app_dir(app).join("hooks.log"))?;
        writeln!(f, "{line}")?;
        Ok(())
    }

    fn current_url(&self, app: &LabApp) -> Result<Secret> {
        Ok(Secret::new(self.config_or_initial(app)?.database_url))
    }
}

/// The URL for set_database_url: stdin's first line, or PGSHIFT_DATABASE_URL.
fn read_url() -> Result<Secret> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let mut url = line.trim().to_string();
    if url.is_empty() {
        url = std::env::var("PGSHIFT_DATABASE_URL").unwrap_or_default();
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        color_eyre::eyre::bail!(
            "set_database_url needs a postgres:// URL on stdin (or in PGSHIFT_DATABASE_URL)"
        );
    }
    Ok(Secret::new(url))
}
