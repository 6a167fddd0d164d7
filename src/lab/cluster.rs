//! One lab cluster: initdb, configuration, start/stop as the lab's OS user.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, bail};

use super::binaries::BinDir;
use super::osuser::RunAs;
use crate::error::UserError;
use crate::inventory::Secret;
use crate::postgres::Endpoint;

/// The lab's superuser on both clusters.
pub const ADMIN_USER: &str = "pgshift";

pub struct Cluster {
    pub bin: BinDir,
    /// `<state>/lab/pg13` — holds `data/` and `server.log`.
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    pub fn major(&self) -> u32 {
        self.bin.major
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn endpoint(&self, admin_password: &Secret) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            user: ADMIN_USER.into(),
            password: admin_password.clone(),
        }
    }

    /// Settings that make this cluster look like its production service tier.
    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut s = vec![
            ("listen_addresses", "'127.0.0.1'".to_string()),
            ("port", self.port.to_string()),
            // TCP only: no socket directory to own or collide in.
            ("unix_socket_directories", "''".into()),
            ("max_connections", "100".into()),
            ("shared_buffers", "128MB".into()),
            ("maintenance_work_mem", "128MB".into()),
            // A lab's data is re-creatable; durability would only slow seeding and tests.
            ("fsync", "off".into()),
            ("synchronous_commit", "off".into()),
            ("full_page_writes", "off".into()),
            // Never echo statements (which may carry password hashes) into the server log.
            ("log_min_error_statement", "panic".into()),
        ];
        if self.major() >= 14 {
            s.push(("password_encryption", "'scram-sha-256'".into()));
            s.push(("default_toast_compression", "'lz4'".into()));
        } else {
            s.push(("password_encryption", "'md5'".into()));
            // OLD can be the publisher of the logical strategy: slots and WAL senders to spare
            // for the fleet's concurrent migrations.
            s.push(("wal_level", "logical".into()));
            s.push(("max_replication_slots", "16".into()));
            s.push(("max_wal_senders", "16".into()));
        }
        s
    }

    /// Settings a running server must restart for: those it runs differ from what
    /// `pgshift.conf` would say now (a lab made by an older pgshift).
    pub fn settings_changed(&self) -> bool {
        let path = self.data().join("pgshift.conf");
        std::fs::read_to_string(path).is_ok_and(|t| t != self.settings_text())
    }

    fn settings_text(&self) -> String {
        let mut text = String::from("# Written by pgshift lab up; edits are overwritten.\n");
        for (k, v) in self.settings() {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text
    }

    pub fn is_initialized(&self) -> bool {
        self.data().join("PG_VERSION").is_file()
    }

    /// initdb (as the lab user) with the admin password from a file it reads once.
    pub async fn init(&self, run: &RunAs, admin_password: &Secret) -> Result<()> {
        run.make_dir(&self.dir)?;
        let pwfile = self.dir.join("initdb.pw");
        std::fs::write(&pwfile, admin_password.expose())?;
        run.give(&pwfile)?;
        let out = self
            .command(run, "initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", ADMIN_USER, "-E", "UTF8", "--no-locale", "--auth=md5"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .await
            .wrap_err("running initdb")?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            bail!(
                "initdb for PostgreSQL {} in {} failed: {}",
                self.major(),
                self.data().display(),
                last_lines(&String::from_utf8_lossy(&out.stderr), 3)
            );
        }
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str("\n# pgshift lab settings, rewritten on every `lab up`\ninclude_if_exists = 'pgshift.conf'\n");
        std::fs::write(&conf, text)?;
        // Host auth md5: a SCRAM-hashed password is checked with SCRAM, an md5 one with md5.
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "# pgshift lab: loopback TCP only\nhost all all 127.0.0.1/32 md5\nhost all all ::1/128 md5\n",
        )?;
        Ok(())
    }

    fn write_settings(&self, run: &RunAs) -> Result<()> {
        let text = self.settings_text();
        let path = self.data().join("pgshift.conf");
        std::fs::write(&path, text)?;
        run.give(&path)
    }

    /// `pg_ctl status`: is a postmaster running on this data directory?
    pub async fn is_running(&self, run: &RunAs) -> Result<bool> {
        if !self.is_initialized() {
            return Ok(false);
        }
        let st = self
            .command(run, "pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(self.data())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .wrap_err("running pg_ctl status")?;
        Ok(st.success())
    }

    pub async fn start(&self, run: &RunAs) -> Result<()> {
        if TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            return Err(UserError::new(format!(
                "port {} on 127.0.0.1 is taken by another process: choose another with lab.port{} in pgshift.toml or PGSHIFT_LAB_PORT{}",
                self.port,
                self.major(),
                self.major()
            ))
            .into());
        }
        self.write_settings(run)?;
        let out = self
            .command(run, "pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "90"])
            .output()
            .await
            .wrap_err("running pg_ctl start")?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            bail!(
                "PostgreSQL {} did not start on port {} (log {}): {}",
                self.major(),
                self.port,
                self.log_file().display(),
                last_lines(&log, 3)
            );
        }
        Ok(())
    }

    pub async fn stop(&self, run: &RunAs) -> Result<()> {
        if !self.is_running(run).await? {
            return Ok(());
        }
        let out = self
            .command(run, "pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60"])
            .output()
            .await
            .wrap_err("running pg_ctl stop")?;
        if !out.status.success() {
            bail!(
                "PostgreSQL {} did not stop: {}",
                self.major(),
                last_lines(&String::from_utf8_lossy(&out.stderr), 3)
            );
        }
        Ok(())
    }

    /// `postgres --version` → "13.23", for a stopped cluster's status.
    pub async fn binary_version(&self, run: &RunAs) -> Option<String> {
        let out = self
            .command(run, "postgres")
            .arg("--version")
            .output()
            .await
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .map(str::to_string)
    }

    /// Wait until the server accepts connections (pg_ctl -w already did; this covers a race
    /// with a server that is still recovering).
    pub async fn wait_ready(&self, ep: &Endpoint) -> Result<()> {
        let mut last = None;
        for _ in 0..60 {
            match ep.connect("postgres").await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(last.map_or_else(
            || color_eyre::eyre::eyre!("server never answered"),
            color_eyre::Report::from,
        ))
    }

    fn command(&self, run: &RunAs, tool: &str) -> tokio::process::Command {
        let mut c = run.command(&self.bin.tool(tool));
        if let Some(lib) = self.bin.library_path() {
            c.env("LD_LIBRARY_PATH", lib);
        }
        c
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
