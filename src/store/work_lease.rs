//! A worker's side of a claim's lease: heartbeats every third of the TTL, and a `lost` token
//! cancelled as soon as the worker can no longer be sure it holds the claim — the store said
//! so (lapsed, taken over, completed elsewhere), or no heartbeat got through before the local
//! deadline.
//!
//! The local deadline needs no agreement between clocks: the store extends a lease to (its
//! clock at the heartbeat) + TTL, and the heartbeat reached the store after the worker sent it,
//! so the lease lasts at least until (the worker's monotonic instant when it sent the last
//! heartbeat that succeeded) + TTL. The worker stops a margin before that. The fence in the
//! store (and at the platform) is what makes a slow or cut-off worker harmless; this is what
//! makes it stop trying.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Store;
use super::work_queue::Fence;

/// Why a lease was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLoss {
    /// The store refused the heartbeat: the claim is no longer live.
    Refused,
    /// No heartbeat got through before the local deadline (store unreachable or too slow).
    Unconfirmed,
}

/// Keeps one claim's lease while its work goes on.
pub struct LeaseKeeper {
    lost: CancellationToken,
    task: JoinHandle<Option<LeaseLoss>>,
}

impl LeaseKeeper {
    /// Start heartbeating `fence` (claimed at `claimed_at`, a local instant taken before the
    /// claim was sent) for `ttl`; stop `margin` before the lease could lapse.
    pub fn start(
        store: Store,
        fence: Fence,
        ttl: Duration,
        margin: Duration,
        claimed_at: Instant,
    ) -> Self {
        let lost = CancellationToken::new();
        let cancel = lost.clone();
        let task = tokio::spawn(async move {
            let safe_for = ttl.saturating_sub(margin);
            let mut deadline = claimed_at + safe_for;
            let every = ttl / 3;
            let loss = loop {
                tokio::select! {
                    _ = cancel.cancelled() => break None,
                    _ = tokio::time::sleep_until((Instant::now() + every).min(deadline)) => {}
                }
                if Instant::now() >= deadline {
                    break Some(LeaseLoss::Unconfirmed);
                }
                let sent = Instant::now();
                match tokio::time::timeout_at(deadline, store.heartbeat_work(&fence, ttl)).await {
                    Ok(Ok(Some(_))) => deadline = sent + safe_for,
                    Ok(Ok(None)) => break Some(LeaseLoss::Refused),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, app = %fence.app, "heartbeat failed");
                    }
                    Err(_) => break Some(LeaseLoss::Unconfirmed),
                }
            };
            if let Some(why) = loss {
                tracing::warn!(app = %fence.app, token = fence.token, ?why, "lease lost: stopping");
                cancel.cancel();
            }
            loss
        });
        Self { lost, task }
    }

    /// Cancelled once the lease is lost: the app's work selects on it and stops.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Stop heartbeating (the work ended); says whether the lease had been lost before.
    pub async fn stop(self) -> Option<LeaseLoss> {
        let was_lost = self.lost.is_cancelled();
        self.lost.cancel();
        match self.task.await {
            Ok(loss) if was_lost => loss,
            _ => None,
        }
    }
}
