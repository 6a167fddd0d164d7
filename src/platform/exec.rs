//! The `exec` platform: the operator's PaaS through the commands of `[platform.commands]`
//! (the contract is docs/platform.md). A template's words get the app's placeholders, never a
//! shell; the DATABASE_URL and its password reach `set_database_url` on stdin and in its
//! environment, never in argv. Output is streamed line by line into the step log, which masks
//! secrets. A command that exits non-zero, hangs past its timeout or prints what the contract
//! does not allow is a failure in one line that diagnosis classifies `platform` (unless the
//! app's own output says more, e.g. a driver refusing SCRAM).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use color_eyre::eyre::{Result, WrapErr, eyre};
use serde::Deserialize;

use super::servers::Servers;
use super::{AppRecord, Platform, ServiceRef, StepLog};
use crate::inventory::platform::{ExecSpec, PlatformOp, substitute};
use crate::inventory::{App, Secret};
use crate::postgres::process::{self, ChildSpec, Stream};

pub struct ExecPlatform {
    spec: ExecSpec,
    servers: Servers,
    /// Service instances pgshift pointed apps at, by id: how a `status` answer's
    /// `service_id` is understood. Holds no secret.
    registry: PathBuf,
    lock: Mutex<()>,
}

/// What `status` prints (unknown keys are ignored: platforms say more than we need).
#[derive(Debug, Deserialize)]
struct StatusAnswer {
    paused: bool,
    service_id: Option<String>,
    url: Option<String>,
}

impl ExecPlatform {
    pub fn new(spec: ExecSpec, servers: Servers, state_dir: &Path) -> Self {
        Self {
            spec,
            servers,
            registry: state_dir.join("platform").join("services.json"),
            lock: Mutex::new(()),
        }
    }

    fn known(&self) -> BTreeMap<String, ServiceRef> {
        std::fs::read(&self.registry)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn remember(&self, service: &ServiceRef) -> Result<()> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| eyre!("platform registry lock"))?;
        let mut known = self.known();
        if known.get(&service.id) == Some(service) {
            return Ok(());
        }
        known.insert(service.id.clone(), service.clone());
        if let Some(dir) = self.registry.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.registry.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&known)?)?;
        std::fs::rename(&tmp, &self.registry)
            .wrap_err_with(|| format!("writing {}", self.registry.display()))
    }

    /// A service id as the app's: one of its inventory services or one pgshift gave it.
    fn resolve(&self, app: &App, id: &str) -> Option<ServiceRef> {
        app.services
            .iter()
            .filter(|s| s.id == id)
            .find_map(ServiceRef::of)
            .or_else(|| self.known().remove(id))
    }

    /// Run one operation's command for an app. `Ok((code, command line))` when it ran to an
    /// exit; the failures of the command itself (cannot start, timeout, signal) are errors.
    async fn run(
        &self,
        op: PlatformOp,
        app: &App,
        service: Option<&ServiceRef>,
        stdin: Option<Secret>,
        log: &mut dyn StepLog,
        mut on_stdout: impl FnMut(&str),
    ) -> Result<(i32, String)> {
        let cmd = self.spec.command(op);
        let service_id = service.map(|s| s.id.clone()).unwrap_or_default();
        let service_name = service.map(|s| s.service.clone()).unwrap_or_default();
        let value = |k: &str| -> String {
            match k {
                "app" => app.name.clone(),
                "region" => app.region.clone(),
                "environment" => app.environment.to_string(),
                "customer" => app.customer.clone(),
                "service_id" => service_id.clone(),
                "service" => service_name.clone(),
                _ => String::new(),
            }
        };
        let words: Vec<String> = cmd.words.iter().map(|w| substitute(w, value)).collect();
        let shown = shell_words::join(&words);
        let mut env: Vec<(String, String)> = self
            .spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend([
            ("PGSHIFT_OP".to_string(), op.id().to_string()),
            ("PGSHIFT_APP".into(), app.name.clone()),
            ("PGSHIFT_REGION".into(), app.region.clone()),
            ("PGSHIFT_ENVIRONMENT".into(), app.environment.to_string()),
            ("PGSHIFT_SERVICE_ID".into(), service_id.clone()),
            ("PGSHIFT_SERVICE".into(), service_name.clone()),
        ]);
        if let Some(url) = &stdin {
            env.push(("PGSHIFT_DATABASE_URL".into(), url.expose().to_string()));
        }
        let spec = ChildSpec {
            program: PathBuf::from(&words[0]),
            args: words[1..].iter().map(Into::into).collect(),
            env,
            stdin,
            timeout: Some(cmd.timeout),
            ..Default::default()
        };
        let stop = log.stop();
        let outcome = process::run(spec, &stop, |stream, line| {
            if stream == Stream::Stdout {
                on_stdout(&line);
            }
            log.line(op.id(), &line);
        })
        .await
        .map_err(|e| {
            eyre!(
                "the platform's {} command for {} could not start ({shown}): {e:#}",
                op.id(),
                app.name
            )
        })?;
        if outcome.cancelled {
            return Err(eyre!(
                "the platform's {} command for {} was ended: this pgshift lost the app's lease ({shown})",
                op.id(),
                app.name
            ));
        }
        if outcome.timed_out {
            return Err(eyre!(
                "the platform's {} command for {} timed out after {} s and was ended ({shown})",
                op.id(),
                app.name,
                cmd.timeout.as_secs()
            ));
        }
        if let Some(sig) = outcome.signal {
            return Err(eyre!(
                "the platform's {} command for {} was ended by signal {sig} ({shown})",
                op.id(),
                app.name
            ));
        }
        Ok((outcome.code.unwrap_or(-1), shown))
    }

    /// Run an operation that must exit 0.
    async fn must(
        &self,
        op: PlatformOp,
        app: &App,
        service: Option<&ServiceRef>,
        stdin: Option<Secret>,
        log: &mut dyn StepLog,
    ) -> Result<()> {
        let (code, words) = self.run(op, app, service, stdin, log, |_| ()).await?;
        if code != 0 {
            return Err(eyre!(
                "the platform's {} command for {} exited with code {code} ({words})",
                op.id(),
                app.name
            ));
        }
        Ok(())
    }

    /// Run an operation that must exit 0, about the service the app uses now.
    async fn on_current(&self, op: PlatformOp, app: &App, log: &mut dyn StepLog) -> Result<()> {
        let current = self.status(app).await?.service;
        self.must(op, app, Some(&current), None, log).await
    }
}

/// Percent-encode a URL's user or password (RFC 3986 unreserved stays).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Platform for ExecPlatform {
    async fn status(&self, app: &App) -> Result<AppRecord> {
        let mut out = String::new();
        let mut errs = Vec::new();
        struct Collect<'a>(&'a mut Vec<String>);
        impl StepLog for Collect<'_> {
            fn line(&mut self, _: &str, text: &str) {
                if self.0.len() < 20 {
                    self.0.push(text.to_string());
                }
            }
            fn secret(&mut self, _: &str) {}
        }
        let initial = AppRecord::initial(app).ok().map(|r| r.service);
        let (code, words) = self
            .run(
                PlatformOp::Status,
                app,
                initial.as_ref(),
                None,
                &mut Collect(&mut errs),
                |l| {
                    out.push_str(l);
                    out.push('\n');
                },
            )
            .await?;
        if code != 0 {
            return Err(eyre!(
                "the platform's status command for {} exited with code {code} ({words}){}",
                app.name,
                errs.last().map(|l| format!(": {l}")).unwrap_or_default()
            ));
        }
        let answer: StatusAnswer = serde_json::from_str(out.trim()).map_err(|e| {
            eyre!(
                "the platform's status command for {} printed what the contract does not allow: not one JSON object with \"paused\" ({e}) ({words})",
                app.name
            )
        })?;
        let service = match &answer.service_id {
            Some(id) => self.resolve(app, id).ok_or_else(|| {
                eyre!(
                    "the platform's status command for {} printed what the contract does not allow: service_id \"{id}\" is none of the app's service instances ({words})",
                    app.name
                )
            })?,
            None => initial.ok_or_else(|| {
                eyre!("app {} has no provisioned PostgreSQL service", app.name)
            })?,
        };
        Ok(AppRecord {
            service,
            paused: answer.paused,
            url: answer.url,
        })
    }

    async fn pause(&self, app: &App, log: &mut dyn StepLog) -> Result<()> {
        self.on_current(PlatformOp::Pause, app, log).await
    }

    async fn unpause(&self, app: &App, log: &mut dyn StepLog) -> Result<()> {
        self.on_current(PlatformOp::Unpause, app, log).await
    }

    async fn set_service(
        &self,
        app: &App,
        service: &ServiceRef,
        log: &mut dyn StepLog,
    ) -> Result<()> {
        let ep = self.servers.role(&service.server, &service.user)?;
        log.secret(ep.password.expose());
        let url = format!(
            "postgres://{}:{}@{}:{}/{}",
            enc(&ep.user),
            enc(ep.password.expose()),
            if ep.host.contains(':') {
                format!("[{}]", ep.host)
            } else {
                ep.host.clone()
            },
            ep.port,
            enc(&service.database)
        );
        log.secret(&url);
        self.remember(service)?;
        self.must(
            PlatformOp::SetDatabaseUrl,
            app,
            Some(service),
            Some(Secret::new(url)),
            log,
        )
        .await
    }

    async fn redeploy(&self, app: &App, log: &mut dyn StepLog) -> Result<()> {
        self.on_current(PlatformOp::Redeploy, app, log).await
    }

    async fn health(&self, app: &App, log: &mut dyn StepLog) -> Result<()> {
        self.on_current(PlatformOp::Health, app, log).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(enc("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
        assert_eq!(enc("shop_live-1.x~"), "shop_live-1.x~");
    }
}
