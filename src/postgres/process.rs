//! Child processes (pg_dump, pg_restore, platform hooks): stdin null or a secret, stdout and
//! stderr read concurrently line by line (lossy UTF-8), their own process group, killed with the
//! group on cancel or timeout (SIGTERM, grace, SIGKILL) and by the kernel if pgshift dies
//! (PR_SET_PDEATHSIG). Passwords go through a password file or stdin, never argv.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Endpoint;
use crate::inventory::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn id(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A program to run, with its arguments and extra environment.
#[derive(Default)]
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Record the child's process group here while it runs (`STATE/run`), so that after a
    /// crash the next engine ends it before starting (`leftovers::sweep`).
    pub record_dir: Option<PathBuf>,
    /// Written to the child's stdin, which is then closed; null when `None`.
    pub stdin: Option<Secret>,
    /// Ended with its group (as on cancel) when it runs longer.
    pub timeout: Option<Duration>,
}

/// How a child ended.
#[derive(Debug)]
pub struct ChildOutcome {
    pub success: bool,
    pub code: Option<i32>,
    pub cancelled: bool,
    pub timed_out: bool,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

const GRACE: Duration = Duration::from_secs(5);

/// Run a child, handing every output line to `on_line` as it arrives.
pub async fn run(
    spec: ChildSpec,
    cancel: &CancellationToken,
    mut on_line: impl FnMut(Stream, String),
) -> Result<ChildOutcome> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .wrap_err_with(|| format!("starting {}", spec.program.display()))?;
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    // Its own group: the group id is the child's pid. Removed when this function returns.
    let _record = match (&spec.record_dir, child.id()) {
        (Some(dir), Some(p)) => Some(super::leftovers::GroupRecord::new(dir, p)?),
        _ => None,
    };
    if let (Some(secret), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A child that does not read its stdin must not block us: write from a task.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(secret.expose().as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        });
    }
    let (tx, mut rx) = mpsc::channel::<(Stream, String)>(1024);
    let out = child
        .stdout
        .take()
        .map(|s| tokio::spawn(pump(s, Stream::Stdout, tx.clone())));
    let err = child
        .stderr
        .take()
        .map(|s| tokio::spawn(pump(s, Stream::Stderr, tx.clone())));
    drop(tx);

    let mut cancelled = false;
    let mut timed_out = false;
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    let status = loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some((s, l)) => on_line(s, l),
                None => break child.wait().await?,
            },
            st = child.wait() => {
                // Drain what the pumps still hold.
                while let Some((s, l)) = rx.recv().await {
                    on_line(s, l);
                }
                break st?;
            }
            _ = cancel.cancelled(), if !cancelled && !timed_out => {
                cancelled = true;
                end_group(pid, &mut child).await;
            }
            _ = &mut expired, if !cancelled && !timed_out => {
                timed_out = true;
                end_group(pid, &mut child).await;
            }
        }
    };
    for h in [out, err].into_iter().flatten() {
        let _ = h.await;
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(ChildOutcome {
        success: status.success() && !cancelled && !timed_out,
        code: status.code(),
        cancelled,
        timed_out,
        signal: status.signal(),
    })
}

/// SIGTERM to the child's group, a grace period, then SIGKILL to whatever of it is left.
async fn end_group(pid: Option<Pid>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        // Members of the group that outlived its leader.
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

async fn pump(r: impl AsyncRead + Unpin, stream: Stream, tx: mpsc::Sender<(Stream, String)>) {
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if tx.send((stream, line)).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// A libpq password file for the endpoints a child needs, removed when dropped.
pub struct PassFile {
    path: PathBuf,
}

impl PassFile {
    pub fn new(dir: &Path, endpoints: &[&Endpoint]) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let path = dir.join(format!(
            "pgpass-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .wrap_err_with(|| format!("creating {}", path.display()))?;
        for ep in endpoints {
            let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
            writeln!(
                f,
                "{}:{}:*:{}:{}",
                esc(&ep.host),
                ep.port,
                esc(&ep.user),
                esc(ep.password.expose())
            )?;
        }
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PassFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A libpq connection string without a password, for `-d`.
pub fn conninfo(ep: &Endpoint, database: &str) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    format!(
        "host={} port={} user={} dbname={} application_name=pgshift",
        q(&ep.host),
        ep.port,
        q(&ep.user),
        q(database)
    )
}
