//! The report's input from the store and the inventory.

use color_eyre::eyre::Result;

use super::{AppOutcome, BackupLine, Downtime, Input, Report, build, seconds};
use crate::domain::FleetState;
use crate::inventory::Inventory;
use crate::store::Store;

/// The night (or run `run`) as the store recorded it.
pub async fn load(store: &Store, inv: &Inventory, run: Option<i64>) -> Result<Report> {
    let states = store.app_states().await?;
    let apps = inv
        .apps
        .iter()
        .map(|a| {
            let candidate = a.is_candidate();
            AppOutcome {
                name: a.name.clone(),
                region: a.region.clone(),
                candidate,
                state: FleetState::of(candidate, states.get(&a.name).map(|s| s.state)),
            }
        })
        .collect();
    let in_run = |r: i64| run.is_none_or(|n| n == r);
    let failures = store.failures(false).await?;
    let input = Input {
        apps,
        regions: inv.regions.iter().map(|r| r.name.clone()).collect(),
        spans: store.app_run_spans().await?,
        failures: failures
            .iter()
            .filter(|f| in_run(f.run_id))
            .map(|f| f.class.clone())
            .collect(),
        open_failures: store
            .failures(true)
            .await?
            .into_iter()
            .filter(|f| in_run(f.run_id))
            .map(|f| f.class)
            .collect(),
        downtime: downtime(store).await?,
        backups: backups(store, run).await?,
        run,
    };
    Ok(build(&input))
}

/// How long each app was paused, per pass: by pgshift's record, and as a prober saw it.
pub async fn downtime(store: &Store) -> Result<Vec<Downtime>> {
    let probes = store.probes().await?;
    Ok(store
        .paused_spans()
        .await?
        .into_iter()
        .map(|p| Downtime {
            paused_seconds: seconds(p.paused_at.as_deref(), p.unpaused_at.as_deref()),
            observed_seconds: observed(
                &probes,
                &p.app,
                p.paused_at.as_deref(),
                p.unpaused_at.as_deref(),
            ),
            app: p.app,
            run_id: p.run_id,
        })
        .collect())
}

/// The backups kept (of run `run` only, if given), with their size and expiry.
pub async fn backups(store: &Store, run: Option<i64>) -> Result<Vec<BackupLine>> {
    let in_run = |r: i64| run.is_none_or(|n| n == r);
    Ok(store
        .backups(None)
        .await?
        .into_iter()
        .filter(|b| b.run_id.is_none_or(in_run))
        .map(|b| BackupLine {
            app: b.app,
            path: b.path,
            size_bytes: b.size_bytes,
            taken_at: b.created_at,
            expires_at: b.expires_at,
        })
        .collect())
}

/// What a prober saw of one pause: from its first to its last maintenance-page answer, when a
/// probing session's maintenance answers fall within that pause (±1 s).
fn observed(
    probes: &[crate::store::ProbeRow],
    app: &str,
    paused_at: Option<&str>,
    unpaused_at: Option<&str>,
) -> Option<f64> {
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (from, until) = (at(paused_at?)?, at(unpaused_at?)?);
    let slack = chrono::Duration::seconds(1);
    probes.iter().filter(|p| p.app == app).find_map(|p| {
        let t = p.tally();
        let (first, last) = (t.first_maintenance?, t.last_maintenance?);
        (first >= from - slack && last <= until + slack).then(|| t.maintenance_seconds())?
    })
}
