//! The lab's HTTP router: Debian's nginx, run as the lab's OS user with its own prefix, pid
//! file and configuration under `<lab>/router`. Each app is a path (`/APP/`) proxied to its web
//! process, unless the app's maintenance flag exists: then nginx answers 503 with the app's
//! maintenance page. The flag is checked per request, so pause needs no reload and touches no
//! other app; an app that is down without the flag stays an honest 502.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::UserError;
use crate::lab::osuser::RunAs;

pub const NGINX: &str = "/usr/sbin/nginx";

pub struct Router {
    pub dir: PathBuf,
    pub port: u16,
}

impl Router {
    pub fn url(&self, app: &str) -> String {
        format!("http://127.0.0.1:{}/{app}/", self.port)
    }

    /// The per-app flag that puts the app behind its maintenance page.
    pub fn flag(&self, app: &str) -> PathBuf {
        self.dir.join("maintenance").join(app)
    }

    pub fn paused(&self, app: &str) -> bool {
        self.flag(app).exists()
    }

    pub fn set_flag(&self, app: &str) -> Result<()> {
        let path = self.flag(app);
        std::fs::create_dir_all(self.dir.join("maintenance"))?;
        std::fs::write(&path, b"").wrap_err_with(|| format!("writing {}", path.display()))
    }

    pub fn clear_flag(&self, app: &str) -> Result<()> {
        match std::fs::remove_file(self.flag(app)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    fn pid_path(&self) -> PathBuf {
        self.dir.join("run/nginx.pid")
    }

    pub fn error_log(&self) -> PathBuf {
        self.dir.join("run/error.log")
    }

    /// One config change at a time (hooks of different apps run concurrently).
    fn lock(&self) -> Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        let f = File::create(self.dir.join("lock"))?;
        f.lock().wrap_err("locking the router")?;
        Ok(f)
    }

    fn conf(&self, apps: &[(String, u16)]) -> String {
        let d = self.dir.display();
        let mut s = format!(
            "# Written by pgshift lab; edits are overwritten.\n\
             worker_processes 1;\n\
             pid {d}/run/nginx.pid;\n\
             error_log {d}/run/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20 access_log {d}/run/access.log;\n\
             \x20 client_body_temp_path {d}/run/body;\n\
             \x20 proxy_temp_path {d}/run/proxy;\n\
             \x20 fastcgi_temp_path {d}/run/fastcgi;\n\
             \x20 uwsgi_temp_path {d}/run/uwsgi;\n\
             \x20 scgi_temp_path {d}/run/scgi;\n\
             \x20 default_type text/html;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   location /__maintenance/ {{ internal; root {d}/html; }}\n",
            port = self.port
        );
        for (app, port) in apps {
            s.push_str(&format!(
                "    location /{app}/ {{\n\
                 \x20     error_page 503 /__maintenance/{app}.html;\n\
                 \x20     if (-f {d}/maintenance/{app}) {{ return 503; }}\n\
                 \x20     proxy_pass http://127.0.0.1:{port}/;\n\
                 \x20     proxy_connect_timeout 2s;\n\
                 \x20     proxy_read_timeout 30s;\n\
                 \x20   }}\n"
            ));
        }
        s.push_str("  }\n}\n");
        s
    }

    fn page(app: &str) -> String {
        format!(
            "<!doctype html>\n<html><head><title>{app}: down for maintenance</title></head>\n\
             <body><h1>{app} is down for maintenance</h1>\n\
             <p>The app is being moved to a new database. It will be back shortly.</p></body></html>\n"
        )
    }

    /// The master's pid, if nginx runs from this prefix.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_path())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.starts_with("nginx: master") && cmdline.contains(&*self.dir.to_string_lossy()))
            .then_some(pid)
    }

    /// Write the config for `apps` (name, web port); start nginx, or reload it if the config
    /// changed. Returns whether nginx was (re)started or reloaded.
    pub fn ensure(&self, run: &RunAs, apps: &[(String, u16)]) -> Result<bool> {
        let _lock = self.lock()?;
        run.make_dir(&self.dir)?;
        run.make_dir(&self.dir.join("run"))?;
        std::fs::create_dir_all(self.dir.join("maintenance"))?;
        std::fs::create_dir_all(self.dir.join("html/__maintenance"))?;
        for (app, _) in apps {
            let page = self.dir.join(format!("html/__maintenance/{app}.html"));
            if !page.exists() {
                std::fs::write(&page, Self::page(app))?;
            }
        }
        let conf = self.conf(apps);
        let changed = std::fs::read_to_string(self.conf_path()).ok().as_deref() != Some(&conf);
        if changed {
            let tmp = self.conf_path().with_extension("conf.tmp");
            std::fs::write(&tmp, &conf)?;
            std::fs::rename(&tmp, self.conf_path())?;
        }
        match self.pid() {
            Some(pid) if changed => {
                kill(Pid::from_raw(pid as i32), Signal::SIGHUP).wrap_err("reloading nginx")?;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                self.start(run)?;
                Ok(true)
            }
        }
    }

    fn start(&self, run: &RunAs) -> Result<()> {
        if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            return Err(UserError::new(format!(
                "port {} on 127.0.0.1 is taken by another process: choose another with lab.router_port in pgshift.toml or PGSHIFT_LAB_ROUTER_PORT",
                self.port
            ))
            .into());
        }
        let out = run
            .std_command(Path::new(NGINX))
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.conf_path())
            .arg("-e")
            .arg(self.error_log())
            .output()
            .wrap_err_with(|| format!("running {NGINX} (scripts/install-deps installs it)"))?;
        if !out.status.success() {
            bail!(
                "nginx did not start on 127.0.0.1:{}: {}",
                self.port,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.pid().is_none() {
            if Instant::now() > deadline {
                bail!(
                    "nginx started but wrote no pid file ({})",
                    self.error_log().display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stop nginx (fast shutdown) and wait until its master is gone.
    pub fn stop(&self) -> Result<()> {
        let _lock = self.lock()?;
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        kill(Pid::from_raw(pid as i32), Signal::SIGTERM).wrap_err("stopping nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.pid().is_some() {
            if Instant::now() > deadline {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            if Instant::now() > deadline + Duration::from_secs(5) {
                bail!("nginx (pid {pid}) does not stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
