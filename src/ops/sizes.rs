//! Database sizes and throughput: what plans and the console's fleet table estimate from.

use std::collections::HashMap;

use color_eyre::eyre::Result;

use super::Session;
use crate::inventory::Inventory;
use crate::platform::servers::Servers;
use crate::runbook::Throughput;
use crate::store::Store;

/// OLD's size of every app: measured on lab servers (one query per server), else the
/// inventory's hints.
pub async fn measured(inv: &Inventory, servers: &Servers) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut measured: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for s in inv.servers.iter().filter(|s| s.is_lab()) {
        if let Ok(ep) = servers.admin(&s.name)
            && let Ok(mut conn) = ep.connect("postgres").await
            && let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
                "SELECT datname::text, pg_database_size(datname) FROM pg_database WHERE NOT datistemplate",
            )
            .fetch_all(&mut conn)
            .await
        {
            measured.insert(s.name.clone(), rows.into_iter().collect());
        }
    }
    for a in &inv.apps {
        for svc in a.services.iter().filter(|s| s.provisioned) {
            let m = svc
                .server
                .as_ref()
                .zip(svc.database.as_ref())
                .and_then(|(srv, db)| measured.get(srv)?.get(db).copied());
            if let Some(bytes) = m {
                out.insert(a.name.clone(), bytes.max(0) as u64);
            } else if let Some(mb) = svc.size_mb {
                out.insert(a.name.clone(), (mb * 1e6) as u64);
            }
        }
    }
    out
}

/// The sizes of a session's fleet.
pub async fn of_fleet(s: &Session<'_>) -> HashMap<String, u64> {
    measured(&s.inv, &s.servers()).await
}

/// Defaults, improved by what finished migrations in the store have shown.
pub async fn throughput(store: &Store) -> Result<Throughput> {
    let mut t = Throughput::default();
    if let Some(b) = store.observed_throughput("backup").await? {
        t.dump_bps = b;
    }
    if let Some(b) = store.observed_throughput("restore").await? {
        t.restore_bps = b;
    }
    if let Some(b) = store.observed_throughput("verify").await? {
        t.verify_bps = b;
    }
    Ok(t)
}
