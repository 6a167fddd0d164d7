//! The regional workers' work queue (issue #16) on both store dialects: claims are exclusive,
//! a region's concurrency holds across concurrent claimers with their own connections, an
//! expired lease is taken over with a higher fencing token and the old token's heartbeat,
//! fence check, fenced write and completion all fail; PostgreSQL's statements per claim are
//! counted off sqlx's own query events.

#[path = "support/lab.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgshift::inventory::{self, Source};
use pgshift::store::{FenceLost, Journal, Store, WorkOutcome, WorkState};

/// A fresh PostgreSQL store database on the lab's 15 server.
fn pg_url(db: &str) -> String {
    let lab = support::lab();
    lab.psql(
        15,
        "postgres",
        &format!("drop database if exists {db} with (force)"),
    );
    lab.psql(15, "postgres", &format!("create database {db}"));
    let pw = std::fs::read_to_string(lab.state.join("lab/secrets/admin")).expect("admin secret");
    format!(
        "postgres://pgshift:{}@127.0.0.1:{}/{db}",
        pw.trim(),
        support::PORT15
    )
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("pgshift.db").display())
}

async fn fleet_run(store: &Store) -> i64 {
    let (j, task) = Journal::spawn(store.clone());
    let id = j.create_run("run", "test", "{}").await.expect("create run");
    drop(j);
    task.await.expect("journal ends");
    id
}

const REGIONS: [(&str, i64, usize); 3] =
    [("eu-west", 3, 14), ("us-east", 2, 9), ("ap-south", 1, 5)];

/// `claimers` tasks, each with its own store (its own connections, as separate worker
/// processes have), claim until the run is drained; each holds its claim a few ms, checks
/// its fence and completes. Asserts: no app is ever held twice at once, each is completed
/// exactly once, and each region's live claims never exceed its concurrency but reach it.
async fn drain_concurrently(url: &str, claimers: usize) {
    let store = Store::open(url).await.expect("open");
    let run = fleet_run(&store).await;
    let regions: Vec<(String, i64)> = REGIONS
        .iter()
        .map(|(r, c, _)| (r.to_string(), *c))
        .collect();
    let apps: Vec<(String, String)> = REGIONS
        .iter()
        .flat_map(|(r, _, n)| (0..*n).map(move |i| (format!("{r}-app{i:02}"), r.to_string())))
        .collect();
    store
        .enqueue_work(run, &regions, &apps)
        .await
        .expect("enqueue");
    // Enqueuing again changes nothing.
    store
        .enqueue_work(run, &regions, &apps)
        .await
        .expect("enqueue again");
    assert_eq!(
        store.work_items(run).await.expect("items").len(),
        apps.len()
    );

    #[derive(Default)]
    struct Seen {
        held: HashSet<String>,
        live: HashMap<String, i64>,
        max_live: HashMap<String, i64>,
        completed: HashMap<String, usize>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut tasks = Vec::new();
    for w in 0..claimers {
        let url = url.to_string();
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.expect("open");
            let holder = format!("worker-{w}");
            let mut idle = 0;
            let mut claims = 0;
            while idle < 40 {
                let mut got = false;
                for (region, _, _) in REGIONS {
                    let Some(c) = store
                        .claim_work(run, region, &holder, Duration::from_secs(30))
                        .await
                        .expect("claim")
                    else {
                        continue;
                    };
                    got = true;
                    claims += 1;
                    {
                        let mut s = seen.lock().expect("lock");
                        assert!(
                            s.held.insert(c.app.clone()),
                            "{} claimed twice at once",
                            c.app
                        );
                        let live = s.live.entry(region.to_string()).or_default();
                        *live += 1;
                        let live = *live;
                        let max = s.max_live.entry(region.to_string()).or_default();
                        *max = (*max).max(live);
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    assert!(store.fence_check(&c.fence).await.expect("fence"));
                    {
                        let mut s = seen.lock().expect("lock");
                        s.held.remove(&c.app);
                        *s.live.entry(region.to_string()).or_default() -= 1;
                        *s.completed.entry(c.app.clone()).or_default() += 1;
                    }
                    assert!(
                        store
                            .complete_work(&c.fence, WorkOutcome::Done)
                            .await
                            .expect("complete")
                    );
                }
                if got {
                    idle = 0;
                } else {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            store.close().await;
            claims
        }));
    }
    let mut per_claimer = Vec::new();
    for t in tasks {
        per_claimer.push(t.await.expect("claimer"));
    }
    let s = std::mem::take(&mut *seen.lock().expect("lock"));
    println!(
        "{} claimers drained {} apps: claims per claimer {per_claimer:?}, max live per region {:?}",
        claimers,
        apps.len(),
        s.max_live
    );
    assert_eq!(s.completed.len(), apps.len(), "every app completed");
    assert!(s.completed.values().all(|n| *n == 1), "{:?}", s.completed);
    for (region, concurrency, _) in REGIONS {
        let max = s.max_live.get(region).copied().unwrap_or_default();
        assert!(
            max <= concurrency,
            "{region}: {max} live claims, concurrency {concurrency}"
        );
        assert_eq!(
            max, concurrency,
            "{region}: {claimers} claimers should fill its concurrency"
        );
    }
    let items = store.work_items(run).await.expect("items");
    assert!(
        items
            .iter()
            .all(|i| i.state == WorkState::Done && i.attempts == 1)
    );
    store.close().await;
}

/// A claim heartbeats past its TTL and keeps the app; once it lapses, the next claimer takes
/// it over with a higher token, and the old token can no longer heartbeat, pass a fence,
/// write under it or complete.
async fn takeover_fences_the_old_holder(url: &str) {
    let store = Store::open(url).await.expect("open");
    let inv = inventory::load(&Source::BuiltinLab).expect("lab fleet");
    store.sync_inventory(&inv).await.expect("sync");
    let app = inv.apps[0].name.clone();
    let region = inv.apps[0].region.clone();
    let run = fleet_run(&store).await;
    store
        .enqueue_work(
            run,
            &[(region.clone(), 1)],
            &[(app.clone(), region.clone())],
        )
        .await
        .expect("enqueue");
    let other = Store::open(url).await.expect("open a second store");
    let ttl = Duration::from_millis(600);
    let a = store
        .claim_work(run, &region, "a", ttl)
        .await
        .expect("claim")
        .expect("a claims the app");
    assert!(!a.takeover);
    assert_eq!(a.attempt, 1);
    // Heartbeats keep the claim past its first TTL; meanwhile the region is full.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let renewed = store
            .heartbeat_work(&a.fence, ttl)
            .await
            .expect("heartbeat");
        assert!(renewed.is_some(), "a live claim renews");
        assert!(
            other
                .claim_work(run, &region, "b", ttl)
                .await
                .expect("claim")
                .is_none(),
            "a renewed claim is not taken over"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    store
        .fenced_set_paused(&a.fence, true)
        .await
        .expect("a live fence writes");
    // a stops renewing (dead, or cut off): after the TTL, b takes over.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let b = other
        .claim_work(run, &region, "b", ttl * 10)
        .await
        .expect("claim")
        .expect("b takes over the lapsed claim");
    assert_eq!(b.app, app);
    assert!(b.takeover);
    assert_eq!(b.attempt, 2);
    assert!(
        b.fence.token > a.fence.token,
        "{} > {}",
        b.fence.token,
        a.fence.token
    );
    assert!(
        store
            .heartbeat_work(&a.fence, ttl)
            .await
            .expect("hb")
            .is_none()
    );
    assert!(!store.fence_check(&a.fence).await.expect("fence"));
    let err = store
        .fenced_set_app_state(&a.fence, pgshift::domain::AppState::Migrated, false, None)
        .await
        .expect_err("a stale token must not write");
    assert!(err.downcast_ref::<FenceLost>().is_some(), "{err:#}");
    let st = store.app_state(&app).await.expect("state").expect("row");
    assert_eq!(
        (st.state.as_str(), st.paused),
        ("pending", true),
        "the refused write left the app as the live holder last set it"
    );
    assert!(
        !store
            .complete_work(&a.fence, WorkOutcome::Done)
            .await
            .expect("complete")
    );
    assert!(!store.release_work(&a.fence).await.expect("release"));
    // The live holder goes on.
    assert!(other.fence_check(&b.fence).await.expect("fence"));
    other
        .fenced_set_app_state(&b.fence, pgshift::domain::AppState::Migrated, false, None)
        .await
        .expect("the live fence writes");
    assert!(
        other
            .complete_work(&b.fence, WorkOutcome::Done)
            .await
            .expect("complete")
    );
    let st = store.app_state(&app).await.expect("state").expect("row");
    assert_eq!((st.state.as_str(), st.paused), ("migrated", false));
    // A completed claim is nobody's: no heartbeat, no fence, nothing left to claim.
    assert!(
        other
            .heartbeat_work(&b.fence, ttl)
            .await
            .expect("hb")
            .is_none()
    );
    assert!(!other.fence_check(&b.fence).await.expect("fence"));
    assert!(
        other
            .claim_work(run, &region, "c", ttl)
            .await
            .expect("claim")
            .is_none()
    );
    // A released claim is queued again and its next claim has a new token; tokens of one
    // app only ever grow, across fleet runs.
    let run2 = fleet_run(&store).await;
    store
        .enqueue_work(
            run2,
            &[(region.clone(), 1)],
            &[(app.clone(), region.clone())],
        )
        .await
        .expect("enqueue");
    let c = store
        .claim_work(run2, &region, "c", ttl)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(c.fence.token > b.fence.token);
    assert!(store.release_work(&c.fence).await.expect("release"));
    let d = other
        .claim_work(run2, &region, "d", ttl)
        .await
        .expect("claim")
        .expect("claimed again");
    assert!(!d.takeover, "a released claim is queued, not lapsed");
    assert!(d.fence.token > c.fence.token);
    assert!(!store.fence_check(&c.fence).await.expect("fence"));
    // A region not in the run has no work.
    assert!(
        store
            .claim_work(run2, "nowhere", "e", ttl)
            .await
            .expect("claim")
            .is_none()
    );
    other.close().await;
    store.close().await;
}

/// The console's view of workers: who they are, their apps in hand (live claims only) and
/// how long the store has not heard from them, on the store's clock.
async fn workers_are_listed_with_apps_in_hand(url: &str) {
    let store = Store::open(url).await.expect("open");
    let run = fleet_run(&store).await;
    let apps: Vec<(String, String)> = (0..3).map(|i| (format!("app{i}"), "eu".into())).collect();
    store
        .enqueue_work(run, &[("eu".into(), 3)], &apps)
        .await
        .expect("enqueue");
    store
        .register_worker("h1:10:aa", "h1", 10, &["eu".into(), "us".into()])
        .await
        .expect("register");
    store
        .register_worker("h2:20:bb", "h2", 20, &["eu".into()])
        .await
        .expect("register");
    let long = Duration::from_secs(30);
    let short = Duration::from_millis(300);
    store
        .claim_work(run, "eu", "h1:10:aa", long)
        .await
        .expect("claim")
        .expect("one");
    store
        .claim_work(run, "eu", "h1:10:aa", short)
        .await
        .expect("claim")
        .expect("two");
    store
        .claim_work(run, "eu", "h2:20:bb", long)
        .await
        .expect("claim")
        .expect("three");
    let in_hand = |w: &[pgshift::store::WorkerRow]| -> Vec<(String, String, i64)> {
        w.iter()
            .map(|w| (w.host.clone(), w.regions.clone(), w.apps_in_hand))
            .collect()
    };
    let w = store.workers().await.expect("workers");
    assert_eq!(
        in_hand(&w),
        vec![
            ("h1".into(), "eu,us".into(), 2),
            ("h2".into(), "eu".into(), 1)
        ]
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.worker_seen("h2:20:bb").await.expect("seen"));
    assert!(!store.worker_seen("nobody").await.expect("seen"));
    let w = store.workers().await.expect("workers");
    assert_eq!(w[0].apps_in_hand, 1, "h1's short claim lapsed: not in hand");
    assert!(w[0].silent_ms >= 400, "h1 silent {} ms", w[0].silent_ms);
    assert!(
        w[1].silent_ms < 400,
        "h2 just seen, silent {} ms",
        w[1].silent_ms
    );
    assert!(w[1].last_seen_ms > w[1].started_ms);
    store.close().await;
}

#[tokio::test]
async fn sqlite_workers_are_listed_with_apps_in_hand() {
    let dir = tempfile::tempdir().expect("tmp");
    workers_are_listed_with_apps_in_hand(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_workers_are_listed_with_apps_in_hand() {
    workers_are_listed_with_apps_in_hand(&pg_url("pgshift_work_queue_workers")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claims_are_exclusive_and_honour_region_concurrency() {
    let dir = tempfile::tempdir().expect("tmp");
    drain_concurrently(&sqlite_url(&dir), 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_are_exclusive_and_honour_region_concurrency() {
    drain_concurrently(&pg_url("pgshift_work_queue_drain"), 8).await;
}

#[tokio::test]
async fn sqlite_takeover_fences_the_old_holder() {
    let dir = tempfile::tempdir().expect("tmp");
    takeover_fences_the_old_holder(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_takeover_fences_the_old_holder() {
    takeover_fences_the_old_holder(&pg_url("pgshift_work_queue_takeover")).await;
}

/// A loopback TCP relay in front of the store's server that counts round trips on the wire:
/// a turn is the client speaking after the server has answered (pipelined messages in one
/// burst count once, as they cost one wait). Once `cut` is set it forwards nothing either way
/// (a link taken down: connections stay open, nothing arrives).
async fn counting_relay(
    upstream: u16,
) -> (
    u16,
    Arc<std::sync::atomic::AtomicU64>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    let turns = Arc::new(AtomicU64::new(0));
    let counted = turns.clone();
    let cut = Arc::new(AtomicBool::new(false));
    let link = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                .await
                .expect("connect upstream");
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let answered = Arc::new(AtomicBool::new(true));
            let (a, t) = (answered.clone(), counted.clone());
            let (up, down) = (link.clone(), link.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = cr.read(&mut buf).await {
                    if up.load(Ordering::SeqCst) && n > 0 {
                        continue;
                    }
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if a.swap(false, Ordering::SeqCst) {
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if down.load(Ordering::SeqCst) {
                        continue;
                    }
                    answered.store(true, Ordering::SeqCst);
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, turns, cut)
}

/// Store round trips per claim, heartbeat and fenced write on PostgreSQL, counted on the wire
/// (the pool's ping before each use included), and the claim latency with one claimer.
#[tokio::test]
async fn postgres_round_trips_per_claim() {
    use std::sync::atomic::Ordering;
    let url = pg_url("pgshift_work_queue_trips");
    let (port, turns, _) = counting_relay(support::PORT15).await;
    let url = url.replace(&format!(":{}/", support::PORT15), &format!(":{port}/"));
    let store = Store::open(&url).await.expect("open through the relay");
    let run = fleet_run(&store).await;
    let n = 200;
    let apps: Vec<(String, String)> = (0..=n)
        .map(|i| (format!("app{i:03}"), "r".into()))
        .collect();
    store
        .enqueue_work(run, &[("r".into(), 1000)], &apps)
        .await
        .expect("enqueue");
    // A first claim warms the pool's connection (its handshake is not a claim's cost).
    store
        .claim_work(run, "r", "w", Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("claimed");
    turns.store(0, Ordering::SeqCst);
    for _ in 0..n {
        store.store_clock_ms().await.expect("clock");
    }
    let one_select = turns.swap(0, Ordering::SeqCst);
    let started = Instant::now();
    let mut fences = Vec::new();
    for _ in 0..n {
        let c = store
            .claim_work(run, "r", "w", Duration::from_secs(30))
            .await
            .expect("claim")
            .expect("claimed");
        fences.push(c.fence);
    }
    let claim_time = started.elapsed();
    let claims = turns.swap(0, Ordering::SeqCst);
    for f in &fences {
        store
            .heartbeat_work(f, Duration::from_secs(30))
            .await
            .expect("hb")
            .expect("live");
    }
    let heartbeats = turns.swap(0, Ordering::SeqCst);
    for f in &fences {
        store
            .fenced_set_paused(f, false)
            .await
            .expect("fenced write");
    }
    let fenced = turns.swap(0, Ordering::SeqCst);
    let per = |x: u64| x as f64 / n as f64;
    println!(
        "postgres store round trips: one SELECT {:.2}, claim {:.2}, heartbeat {:.2}, fenced write {:.2}; claim latency {:.2} ms ({n} claims, one claimer, through a loopback relay)",
        per(one_select),
        per(claims),
        per(heartbeats),
        per(fenced),
        claim_time.as_secs_f64() * 1000.0 / n as f64
    );
    // A heartbeat is one statement, as a plain SELECT is; a claim and a fenced write are a
    // transaction of two statements (BEGIN, two statements, COMMIT: three more turns).
    // (A few turns more for the first use of each statement: sqlx prepares it once.)
    let prepares = 10;
    assert!(
        heartbeats <= one_select + prepares,
        "{heartbeats} vs {one_select}"
    );
    assert!(
        claims <= one_select + 3 * n as u64 + prepares,
        "{claims} vs {one_select}"
    );
    assert!(
        fenced <= one_select + 3 * n as u64 + prepares,
        "{fenced} vs {one_select}"
    );
    assert_eq!(
        store
            .work_items(run)
            .await
            .expect("items")
            .iter()
            .filter(|i| i.state == WorkState::Claimed)
            .count(),
        n + 1
    );
    store.close().await;
}

/// Drain the generated 7,326-app fleet (6 regions, their concurrency) with `workers` claimers,
/// each its own store: per app a claim, four fenced store writes (pause, point, unpause, end
/// state: the store half of a migration's side effects) and the completion. No migration work:
/// this is the store's capacity for the queue. Returns (seconds, round trips on the wire).
async fn drain_sim_fleet(
    url: &str,
    inv: &pgshift::inventory::Inventory,
    workers: usize,
) -> (f64, u64) {
    use std::sync::atomic::Ordering;
    let store = Store::open(url).await.expect("open");
    store.sync_inventory(inv).await.expect("sync");
    let run = fleet_run(&store).await;
    let regions: Vec<(String, i64)> = inv
        .regions
        .iter()
        .map(|r| (r.name.clone(), i64::from(r.concurrency)))
        .collect();
    let apps: Vec<(String, String)> = inv
        .apps
        .iter()
        .map(|a| (a.name.clone(), a.region.clone()))
        .collect();
    store
        .enqueue_work(run, &regions, &apps)
        .await
        .expect("enqueue");
    let (port, turns, _) = counting_relay(support::PORT15).await;
    let relayed = url.replace(&format!(":{}/", support::PORT15), &format!(":{port}/"));
    let names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (url, names) = (relayed.clone(), names.clone());
        tasks.push(tokio::spawn(async move {
            let store = Store::open(&url).await.expect("open");
            let holder = format!("w{w}");
            let mut done = 0usize;
            loop {
                let mut got = false;
                for region in &names {
                    let Some(c) = store
                        .claim_work(run, region, &holder, Duration::from_secs(30))
                        .await
                        .expect("claim")
                    else {
                        continue;
                    };
                    got = true;
                    store
                        .fenced_set_paused(&c.fence, true)
                        .await
                        .expect("pause");
                    store
                        .fenced_set_app_state(
                            &c.fence,
                            pgshift::domain::AppState::Running,
                            true,
                            Some("new"),
                        )
                        .await
                        .expect("point");
                    store
                        .fenced_set_paused(&c.fence, false)
                        .await
                        .expect("unpause");
                    store
                        .fenced_set_app_state(
                            &c.fence,
                            pgshift::domain::AppState::Migrated,
                            false,
                            None,
                        )
                        .await
                        .expect("end");
                    assert!(
                        store
                            .complete_work(&c.fence, WorkOutcome::Done)
                            .await
                            .expect("complete")
                    );
                    done += 1;
                }
                if !got {
                    break;
                }
            }
            store.close().await;
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, apps.len());
    let items = store.work_items(run).await.expect("items");
    assert!(
        items
            .iter()
            .all(|i| i.state == WorkState::Done && i.attempts == 1)
    );
    store.close().await;
    (secs, turns.load(Ordering::SeqCst))
}

/// The sim fleet of 7,326 apps on the PostgreSQL store, one worker vs three (figures printed).
/// Minutes of store traffic: run with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn postgres_sim_fleet_queue_one_vs_three_workers() {
    let text = pgshift::platform::sim_fleet::generate(7326, 1);
    let inv = inventory::parse(&text, "generated", std::path::Path::new(".")).expect("fleet");
    let (one, trips1) = drain_sim_fleet(&pg_url("pgshift_work_queue_sim1"), &inv, 1).await;
    let (three, trips3) = drain_sim_fleet(&pg_url("pgshift_work_queue_sim3"), &inv, 3).await;
    let n = inv.apps.len() as f64;
    println!(
        "sim fleet {n} apps, queue + fenced store writes only: 1 worker {one:.1} s ({:.0} apps/s), 3 workers {three:.1} s ({:.0} apps/s), speed-up x{:.2}; round trips per migration {:.1} (1 worker), {:.1} (3 workers)",
        n / one,
        n / three,
        one / three,
        trips1 as f64 / n,
        trips3 as f64 / n
    );
}

/// The worker's lease keeper on PostgreSQL: it keeps a claim alive past its TTL; it gives the
/// lease up at once when the store refuses a heartbeat; and when the worker's link to the
/// store is cut it stops before the lease can lapse (the store still shows the claim live at
/// that moment), after which another worker takes the app over with a higher token.
#[tokio::test]
async fn postgres_lease_keeper_stops_before_the_lease_lapses() {
    use pgshift::store::{LeaseKeeper, LeaseLoss};
    let url = pg_url("pgshift_work_queue_keeper");
    let store = Store::open(&url).await.expect("open");
    let run = fleet_run(&store).await;
    let apps: Vec<(String, String)> = (0..2).map(|i| (format!("app{i}"), "eu".into())).collect();
    store
        .enqueue_work(run, &[("eu".into(), 1)], &apps)
        .await
        .expect("enqueue");
    let (port, _, cut) = counting_relay(support::PORT15).await;
    let relayed = url.replace(&format!(":{}/", support::PORT15), &format!(":{port}/"));
    let worker = Store::open(&relayed).await.expect("open through the relay");
    let ttl = Duration::from_millis(900);
    let margin = Duration::from_millis(150);

    // Kept alive past its TTL; refused at once once the claim is no longer live.
    let t0 = tokio::time::Instant::now();
    let a = worker
        .claim_work(run, "eu", "w", ttl)
        .await
        .expect("claim")
        .expect("claimed");
    let keeper = LeaseKeeper::start(worker.clone(), a.fence.clone(), ttl, margin, t0);
    tokio::time::sleep(ttl * 2).await;
    assert!(!keeper.lost().is_cancelled(), "a kept lease is not lost");
    assert!(
        store.fence_check(&a.fence).await.expect("fence"),
        "still live after 2 TTLs"
    );
    assert!(store.release_work(&a.fence).await.expect("release"));
    tokio::time::timeout(ttl, keeper.lost().cancelled())
        .await
        .expect("a refused heartbeat is noticed within a third of the TTL");
    assert_eq!(keeper.stop().await, Some(LeaseLoss::Refused));

    // The link is cut: the keeper gives up while the store still shows the lease live.
    let t0 = tokio::time::Instant::now();
    let b = worker
        .claim_work(run, "eu", "w", ttl)
        .await
        .expect("claim")
        .expect("claimed");
    let keeper = LeaseKeeper::start(worker.clone(), b.fence.clone(), ttl, margin, t0);
    tokio::time::sleep(ttl / 2).await;
    cut.store(true, std::sync::atomic::Ordering::SeqCst);
    let cut_at = tokio::time::Instant::now();
    tokio::time::timeout(ttl * 2, keeper.lost().cancelled())
        .await
        .expect("a cut-off worker gives its lease up");
    let stopped_after = cut_at.elapsed();
    let live = store.fence_check(&b.fence).await.expect("fence");
    assert!(
        live,
        "the worker stopped before its lease lapsed (after {stopped_after:?})"
    );
    assert_eq!(keeper.stop().await, Some(LeaseLoss::Unconfirmed));
    // After the lapse, another worker takes the app over; the cut worker's token is dead.
    tokio::time::sleep(ttl).await;
    let c = store
        .claim_work(run, "eu", "other", ttl)
        .await
        .expect("claim")
        .expect("taken over");
    assert_eq!(c.app, b.app);
    assert!(c.takeover && c.fence.token > b.fence.token);
    assert!(!store.fence_check(&b.fence).await.expect("fence"));
    println!(
        "cut-off worker stopped {stopped_after:?} after the cut (TTL {ttl:?}, margin {margin:?})"
    );
    store.close().await;
}
