//! An app's processes: `web` and `worker`, each in its own process group, run as the lab's OS
//! user with DATABASE_URL in the environment only, output appended to the app's log. Each is
//! remembered by pid and kernel start time, so a recycled pid is never mistaken for it.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::runtime::Runtime;
use crate::inventory::Secret;
use crate::lab::osuser::RunAs;

/// The two processes of every lab app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Web,
    Worker,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Web, Role::Worker];

    pub fn id(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Worker => "worker",
        }
    }
}

/// A process pgshift started: pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    start: u64,
}

impl Proc {
    /// Still the same process, and not a zombie.
    pub fn alive(self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| state != 'Z' && state != 'X' && start == self.start)
    }

    /// The DATABASE_URL in the process's environment, as the kernel shows it.
    pub fn database_url(self) -> Option<String> {
        let env = std::fs::read(format!("/proc/{}/environ", self.pid)).ok()?;
        env.split(|b| *b == 0).find_map(|kv| {
            kv.strip_prefix(b"DATABASE_URL=")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    }
}

/// (state, starttime) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Where one app's processes are remembered.
pub struct PidFiles {
    pub dir: PathBuf,
}

impl PidFiles {
    fn path(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{}.pid", role.id()))
    }

    pub fn read(&self, role: Role) -> Option<Proc> {
        let text = std::fs::read_to_string(self.path(role)).ok()?;
        let (pid, start) = text.trim().split_once(' ')?;
        Some(Proc {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    fn write(&self, role: Role, p: Proc) -> Result<()> {
        let path = self.path(role);
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{} {}\n", p.pid, p.start))?;
        std::fs::rename(&tmp, &path).wrap_err_with(|| format!("writing {}", path.display()))
    }

    /// The live processes of the app.
    pub fn live(&self) -> Vec<(Role, Proc)> {
        Role::ALL
            .into_iter()
            .filter_map(|r| self.read(r).filter(|p| p.alive()).map(|p| (r, p)))
            .collect()
    }

    /// Both processes alive, and both with this DATABASE_URL.
    pub fn running_with(&self, url: &Secret) -> bool {
        let live = self.live();
        live.len() == Role::ALL.len()
            && live
                .iter()
                .all(|(_, p)| p.database_url().as_deref() == Some(url.expose()))
    }

    /// SIGTERM each process group, `grace` to exit, then SIGKILL; returns once all are gone.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        let live = self.live();
        for (_, p) in &live {
            let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while live.iter().any(|(_, p)| p.alive()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for (_, p) in &live {
            if p.alive() {
                let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some((r, p)) = live.iter().find(|(_, p)| p.alive()) {
            if Instant::now() > deadline {
                color_eyre::eyre::bail!("{} (pid {}) survived SIGKILL", r.id(), p.pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for r in Role::ALL {
            match std::fs::remove_file(self.path(r)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Start one process of the app, detached: its own process group, output to `log`.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        &self,
        run: &RunAs,
        programs: &Path,
        rt: &Runtime,
        role: Role,
        app: &str,
        url: &Secret,
        port: u16,
        log: &Path,
    ) -> Result<Proc> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .wrap_err_with(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = run.std_command(&rt.program);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("APP_NAME", app)
            .env("PORT", port.to_string())
            .env("DATABASE_URL", url.expose())
            .envs(rt.env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg(programs.join(rt.script))
            .arg(role.id())
            .current_dir(programs)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        // Its own session (and so its own process group), as pg_ctl and nginx detach theirs:
        // the app outlives the shell that ran `lab up`, and stop() ends the group.
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().wrap_err_with(|| {
            format!("starting {} of {app} ({})", role.id(), rt.program.display())
        })?;
        let pid = child.id();
        // Not waited on here: it outlives this process (reparented), and stop() ends it.
        drop(child);
        let start = stat(pid).map(|(_, s)| s).unwrap_or_default();
        let p = Proc { pid, start };
        self.write(role, p)?;
        Ok(p)
    }
}
