//! One migrator per app: a lease in the store, renewed while the work goes on, taken over
//! only from a holder that is provably gone (same host, process dead) or expired.

use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use crate::error::UserError;
use crate::store::{Journal, LeaseHolder};

/// How long a lease lasts without renewal.
pub const TTL_SECS: i64 = 30;

/// The lease's TTL: `TTL_SECS`, or `PGSHIFT_LEASE_TTL_SECS` (≥ 3; tests shorten it to see a
/// lost lease acted on within seconds).
pub fn ttl_secs() -> i64 {
    std::env::var("PGSHIFT_LEASE_TTL_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&t| t >= 3)
        .unwrap_or(TTL_SECS)
}

pub fn holder_id() -> (String, i64, String) {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let pid = i64::from(std::process::id());
    (
        format!("{host}:{pid}:{:08x}", rand::random::<u32>()),
        pid,
        host,
    )
}

fn alive(pid: i64) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// Take the app's lease or say who has it.
pub async fn acquire(store: &Journal, app: &str, holder: &(String, i64, String)) -> Result<()> {
    let (id, pid, host) = holder;
    let asking = LeaseHolder {
        id,
        pid: *pid,
        host,
    };
    for _ in 0..2 {
        match store.acquire_lease(app, asking, ttl_secs()).await? {
            None => return Ok(()),
            Some(l) => take_over_or_refuse(store, app, host, &l).await?,
        }
    }
    Err(UserError::new(format!("could not take the lease of {app}")).into())
}

/// `lease` refused us: take it over if its holder is provably dead (same host, process
/// gone), else say who has it.
/// `host` is ours: only a holder on the same host can be checked for being alive.
pub async fn take_over_or_refuse(
    store: &Journal,
    app: &str,
    host: &str,
    l: &crate::store::Lease,
) -> Result<()> {
    if l.host == host && !alive(l.pid) {
        tracing::warn!(app, dead = %l.holder, "taking over the lease of a dead process");
        store.steal_lease(app, &l.holder).await?;
        return Ok(());
    }
    Err(UserError::new(format!(
        "{app} is being migrated by another pgshift (pid {} on {}, since {}); wait for it, or let `pgshift resume` take over if it died",
        l.pid, l.host, l.acquired_at
    ))
    .into())
}

/// An app's lease kept alive while its work goes on; stops renewing when dropped.
pub struct Kept {
    task: tokio::task::JoinHandle<()>,
    /// Cancelled by the operator's cancel or when the lease is lost: what ends the app's
    /// child processes.
    pub work: CancellationToken,
    /// Cancelled only when the lease is lost: another pgshift owns the app now.
    pub lost: CancellationToken,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What to do after a renewal: the lease is someone else's when the store says so, or when
/// renewals have failed for so long that it may have expired before the next one.
fn lost_after(
    renewed: &Result<bool>,
    since_renewed: Duration,
    every: Duration,
    ttl: Duration,
) -> bool {
    match renewed {
        Ok(true) => false,
        Ok(false) => true,
        Err(_) => since_renewed + every >= ttl,
    }
}

/// Renew the lease every third of its TTL until the returned `Kept` is dropped. When the
/// lease is lost — another holder has it, or renewals failed for longer than the TTL allows
/// — `work` and `lost` are cancelled: the app's processes end and the engine stops its run
/// where it is, leaving it to the new holder.
pub fn keep_alive(store: Journal, app: String, holder: String, parent: &CancellationToken) -> Kept {
    let work = parent.child_token();
    let lost = CancellationToken::new();
    let (w, l) = (work.clone(), lost.clone());
    let task = tokio::spawn(async move {
        let ttl = Duration::from_secs(ttl_secs() as u64);
        let every = ttl / 3;
        let mut renewed_at = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            let r = store.renew_lease(&app, &holder, ttl.as_secs() as i64).await;
            match &r {
                Ok(true) => renewed_at = Instant::now(),
                Ok(false) => {
                    tracing::error!(
                        app,
                        "the lease is another pgshift's now: stopping this app's work"
                    );
                }
                Err(e) => tracing::warn!(error = %e, app, "renewing lease failed"),
            }
            if lost_after(&r, renewed_at.elapsed(), every, ttl) {
                if r.is_err() {
                    tracing::error!(
                        app,
                        "the lease could not be renewed for its TTL: stopping this app's work"
                    );
                }
                l.cancel();
                w.cancel();
                return;
            }
        }
    });
    Kept { task, work, lost }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_lost_when_taken_or_unrenewed_for_its_ttl() {
        let (every, ttl) = (Duration::from_secs(10), Duration::from_secs(30));
        let err = || -> Result<bool> { Err(color_eyre::eyre::eyre!("store down")) };
        assert!(!lost_after(&Ok(true), Duration::from_secs(100), every, ttl));
        assert!(lost_after(&Ok(false), Duration::ZERO, every, ttl));
        assert!(!lost_after(&err(), Duration::from_secs(10), every, ttl));
        assert!(lost_after(&err(), Duration::from_secs(20), every, ttl));
    }
}
