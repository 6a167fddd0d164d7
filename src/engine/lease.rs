//! One migrator per app: a lease in the store, renewed while the work goes on, taken over
//! only from a holder that is provably gone (same host, process dead) or expired.

use std::time::Duration;

use color_eyre::eyre::Result;

use crate::error::UserError;
use crate::store::{Journal, LeaseHolder};

pub const TTL_SECS: i64 = 30;

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
        match store.acquire_lease(app, asking, TTL_SECS).await? {
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

/// Renew the lease every third of its TTL until the returned task is aborted.
pub fn keep_alive(store: Journal, app: String, holder: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs((TTL_SECS / 3) as u64)).await;
            if let Err(e) = store.renew_lease(&app, &holder, TTL_SECS).await {
                tracing::warn!(error = %e, app, "renewing lease failed");
            }
        }
    })
}
