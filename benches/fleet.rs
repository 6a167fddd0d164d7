//! Fleet-scale figures (printed, not asserted): planning the seed's 7,326-instance fleet, and
//! a sim rehearsal of all of it with zero-length steps, every state in the SQLite store.
//! Run: `cargo bench --bench fleet` (add `-- --apps N` for another size).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use pgshift::engine::FleetRun;
use pgshift::inventory;
use pgshift::ops::Drive;
use pgshift::ops::world::{EngineParts, World, build_engine};
use pgshift::plan::{PlanParams, plan};
use pgshift::platform::sim_fleet;
use pgshift::runbook::{Runbook, Throughput};
use pgshift::store::Store;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let apps = args
        .iter()
        .position(|a| a == "--apps")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(7326usize);
    let text = sim_fleet::generate(apps, 1);
    let t = Instant::now();
    let inv = inventory::parse(&text, "generated", std::path::Path::new(".")).expect("fleet");
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    let rb = Runbook::builtin();
    let sizes: HashMap<String, u64> = inv
        .apps
        .iter()
        .filter_map(|a| Some((a.name.clone(), (a.services.first()?.size_mb? * 1e6) as u64)))
        .collect();
    let params = PlanParams {
        seed: 1,
        batch_size: 25,
        canary: 3,
        window_seconds: 4 * 3600,
        regions: Vec::new(),
    };
    let mut times = Vec::new();
    let mut p = None;
    for _ in 0..7 {
        let t = Instant::now();
        p = Some(plan(
            &inv,
            &rb,
            &params,
            &sizes,
            &Throughput::default(),
            &[],
        ));
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let p = p.expect("a plan");
    let candidates = p.apps().count();
    let services: usize = inv.apps.iter().map(|a| a.services.len()).sum();
    println!(
        "fleet: {} apps, {candidates} candidates (postgresql-database-13), {services} services, {} regions",
        inv.apps.len(),
        inv.regions.len()
    );
    println!("parse inventory: {parse_ms:.1} ms");
    println!(
        "plan: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs ({} batches)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len(),
        p.batches.len()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tmp");
    let report = rt.block_on(async {
        let store = Store::open(&format!(
            "sqlite://{}",
            dir.path().join("pgshift.db").display()
        ))
        .await
        .expect("store");
        let inv = Arc::new(inv);
        store.sync_inventory(&inv).await.expect("sync");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // As the CLI's printer does: drain on a tick, never woken by each event.
        let drain = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
            loop {
                tick.tick().await;
                loop {
                    match rx.try_recv() {
                        Ok(_) => {}
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
            }
        });
        let engine = build_engine(
            World::Sim,
            EngineParts {
                store: store.clone(),
                inv: inv.clone(),
                runbook: rb,
                state_dir: dir.path().to_path_buf(),
                pg_bin: std::path::PathBuf::new(),
                lab: None,
                speed: 0.0,
            },
            Drive {
                events: tx,
                cancel: tokio_util::sync::CancellationToken::new(),
            },
        )
        .expect("the sim world's engine");
        let remediations = HashMap::new();
        let run = FleetRun {
            plan: &p,
            plan_id: 0,
            only: None,
            remediations: &remediations,
            apply_preflight: false,
            continues: None,
        };
        let t = Instant::now();
        let r = pgshift::on_engine!(&engine, e => e.run_plan(run).await).expect("run");
        engine.shutdown().await;
        let secs = t.elapsed().as_secs_f64();
        let _ = drain.await;
        let steps = store
            .app_states()
            .await
            .expect("states")
            .values()
            .filter(|s| s.state == pgshift::domain::AppState::Migrated)
            .count();
        (r, secs, steps)
    });
    let (r, secs, migrated_in_store) = report;
    println!(
        "sim run, zero-length steps: {secs:.1} s for {candidates} migrations ({} migrated, {} failed {:?}; store says {migrated_in_store} migrated)",
        r.migrated, r.failed, r.failures_by_class
    );
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}
