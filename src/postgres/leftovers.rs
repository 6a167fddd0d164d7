//! What a killed pgshift leaves in `STATE/run/`: the process groups of its pg_dump and
//! pg_restore children (each recorded as `pgid-<owner pid>-<group id>` while it runs) and its
//! password files (`pgpass-<owner pid>-<n>`). Before an engine starts, the groups of owners
//! that are gone are ended (SIGTERM, grace, SIGKILL) and waited for, so a `resume` never runs
//! beside them, and their password files are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The programs whose groups a sweep may end: a recorded group id that now holds anything
/// else was reused by the system and is left alone.
const OURS: &[&str] = &["pg_dump", "pg_restore"];
const GRACE: Duration = Duration::from_secs(5);

/// A running child's group, recorded until it ends.
pub struct GroupRecord {
    path: PathBuf,
}

impl GroupRecord {
    pub fn new(dir: &Path, pgid: u32) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("pgid-{}-{pgid}", std::process::id()));
        std::fs::write(&path, pgid.to_string())?;
        Ok(Self { path })
    }
}

impl Drop for GroupRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

/// `(owner pid, id)` from `<prefix>-<owner>-<id>`.
fn parse(name: &str, prefix: &str) -> Option<(i32, String)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let (owner, id) = rest.split_once('-')?;
    Some((owner.parse().ok()?, id.to_string()))
}

/// Processes of group `pgid`, with their command names, from /proc.
fn members(pgid: i32) -> Vec<(i32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat[open + 1..close].to_string();
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let pgrp: i32 = fields.get(2)?.parse().ok()?;
            // A zombie has exited; only its parent's wait is left.
            (pgrp == pgid && fields.first() != Some(&"Z")).then_some((pid, comm))
        })
        .collect()
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Groups of dead owners that were still running and were ended.
    pub groups_ended: usize,
    pub passfiles_removed: usize,
}

/// End the recorded groups of dead owners and remove their password files. Blocks while a
/// dead owner's group winds down (at most the grace period, then SIGKILL).
pub fn sweep(dir: &Path) -> Swept {
    let mut out = Swept::default();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut groups = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some((owner, _)) = parse(&name, "pgpass") {
            if !alive(owner) && std::fs::remove_file(e.path()).is_ok() {
                out.passfiles_removed += 1;
            }
        } else if let Some((owner, id)) = parse(&name, "pgid")
            && !alive(owner)
            && let Ok(pgid) = id.parse::<i32>()
        {
            groups.push((pgid, e.path()));
        }
    }
    for (pgid, record) in groups {
        let ours = |m: &[(i32, String)]| {
            !m.is_empty() && m.iter().all(|(_, c)| OURS.iter().any(|o| c.starts_with(o)))
        };
        if ours(&members(pgid)) {
            tracing::warn!(pgid, "ending the children of a pgshift that died");
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            let start = Instant::now();
            let mut killed = false;
            while !members(pgid).is_empty() {
                if !killed && start.elapsed() > GRACE {
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                    killed = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            out.groups_ended += 1;
        }
        let _ = std::fs::remove_file(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that is certainly not running: a child that exited and was reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_owners_group_is_ended_and_its_passfiles_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A long child named like pg_restore, in its own group, as process.rs starts them.
        let bin = dir.path().join("pg_restore");
        std::fs::copy("/bin/sleep", &bin).unwrap();
        use std::os::unix::process::CommandExt;
        // A fork elsewhere may still hold the copy open for writing (ETXTBSY): retry.
        let mut child = (0..50)
            .find_map(|_| {
                match std::process::Command::new(&bin)
                    .arg("60")
                    .process_group(0)
                    .spawn()
                {
                    Ok(c) => Some(c),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        None
                    }
                }
            })
            .expect("start the stand-in pg_restore");
        let pgid = child.id();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let dead = dead_pid();
        std::fs::write(run.join(format!("pgid-{dead}-{pgid}")), pgid.to_string()).unwrap();
        std::fs::write(run.join(format!("pgpass-{dead}-7")), "h:1:*:u:p").unwrap();
        // Ours (alive): kept.
        let mine = run.join(format!("pgpass-{}-8", std::process::id()));
        std::fs::write(&mine, "h:1:*:u:p").unwrap();

        let swept = sweep(&run);
        assert_eq!(
            swept,
            Swept {
                groups_ended: 1,
                passfiles_removed: 1
            }
        );
        // The child ended (SIGTERM): reap it to be sure it is not running.
        let status = child.wait().unwrap();
        assert!(!status.success());
        let left: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(left, vec![mine]);
    }

    #[test]
    fn a_reused_group_id_holding_something_else_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let dead = dead_pid();
        std::fs::write(dir.path().join(format!("pgid-{dead}-{pgid}")), "").unwrap();
        let swept = sweep(dir.path());
        assert_eq!(swept.groups_ended, 0);
        assert!(alive(pgid as i32), "an unrelated process was signalled");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
