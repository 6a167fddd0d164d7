//! Console figures (printed, not asserted): drawing the fleet view of the seed-sized fleet,
//! and key latency while 100,000 log lines stream into the watched app's pane.
//! Run: `cargo bench --bench console`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pgshift::console::action::Action;
use pgshift::console::data::{Data, StepView};
use pgshift::console::logbuf::LogLine;
use pgshift::console::model::Model;
use pgshift::console::theme::Theme;
use pgshift::console::update::update;
use pgshift::console::views;
use pgshift::inventory;
use pgshift::platform::sim_fleet;
use pgshift::store::AppState;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn fleet_model() -> Model {
    let text = sim_fleet::generate(7326, 1);
    let inv = inventory::parse(&text, "generated", std::path::Path::new(".")).expect("fleet");
    // A night half done: every third app migrated, every 50th failed, some running.
    let states: HashMap<String, AppState> = inv
        .apps
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_candidate())
        .map(|(i, a)| {
            let state = match i {
                i if i % 50 == 0 => "failed",
                i if i % 3 == 0 => "migrated",
                i if i % 97 == 0 => "running",
                _ => "pending",
            };
            (
                a.name.clone(),
                AppState {
                    name: a.name.clone(),
                    state: state.parse().expect("an app state"),
                    paused: state == "running",
                    current_service: None,
                    needs_rebuild: false,
                },
            )
        })
        .collect();
    Model::new(&inv, &states, "generated".into(), "sqlite://bench".into())
}

fn bench_fleet_render() {
    let mut m = fleet_model();
    let theme = Theme::load("default", std::path::Path::new("/nonexistent")).expect("theme");
    let mut t = Terminal::new(TestBackend::new(250, 70)).expect("terminal");
    let mut times = Vec::new();
    for i in 0..300 {
        // Move the selection so every frame differs, as when the operator scrolls.
        update(
            &mut m,
            if i % 2 == 0 {
                Action::MoveDown
            } else {
                Action::Bottom
            },
        );
        let start = Instant::now();
        t.draw(|f| views::draw(f, &m, &theme)).expect("draw");
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let cands = m.rows.iter().filter(|r| r.candidate).count();
    println!(
        "fleet view, {} apps ({cands} candidates), 250x70: median {:.2} ms/frame, p95 {:.2} ms, max {:.2} ms (target ≤ 4 ms)",
        m.rows.len(),
        percentile(&mut times.clone(), 0.5),
        percentile(&mut times.clone(), 0.95),
        percentile(&mut times, 1.0),
    );
}

/// The Run and Report views over the whole night: a plan of 25-app batches per region and a
/// finished pass per app, as the store holds them after the rehearsal.
fn bench_night_views() {
    use pgshift::console::data::Night;
    use pgshift::plan::{Batch, Plan};
    use pgshift::store::AppRunSpan;
    let mut m = fleet_model();
    let mut batches: Vec<Batch> = Vec::new();
    for region in m.regions.clone() {
        let apps: Vec<String> = m
            .rows
            .iter()
            .filter(|r| r.candidate && r.region == region)
            .map(|r| r.name.clone())
            .collect();
        for (k, chunk) in apps.chunks(25).enumerate() {
            batches.push(Batch {
                region: region.clone(),
                index: k,
                canary: k == 0,
                estimated_seconds: 300.0,
                ends_after_seconds: 300.0 * (k + 1) as f64,
                fits_window: true,
                apps: chunk.to_vec(),
            });
        }
    }
    let spans: Vec<AppRunSpan> = m
        .rows
        .iter()
        .filter(|r| r.candidate)
        .enumerate()
        .map(|(i, r)| AppRunSpan {
            run_id: 1,
            app: r.name.clone(),
            region: r.region.clone(),
            started_at: Some(format!("2026-11-24T23:{:02}:00.000Z", i % 60)),
            finished_at: Some(format!("2026-11-24T23:{:02}:30.000Z", i % 60)),
            failed: i64::from(r.state == pgshift::domain::AppState::Failed),
            unfinished: 0,
        })
        .collect();
    let night = Night {
        downtime: Vec::new(),
        backups: Vec::new(),
        answers: vec![],
        controls: Vec::new(),
        plan: Some(Plan {
            seed: 1,
            batch_size: 25,
            canary: 2,
            window_seconds: 4 * 3600,
            batches,
            excluded: vec![],
        }),
        plan_params: "{}".into(),
        plan_created_at: Some("2026-11-24T22:00:00.000Z".into()),
        running: vec![],
        spans,
        spans_read: true,
        span_times: vec![],
        failures_by_class: vec![("libpq-scram".into(), 491)],
        open_failures_by_class: vec![("libpq-scram".into(), 491)],
        now: "2026-11-25T00:00:00.000Z".into(),
    };
    // As the loader hands it over: times parsed off the input path.
    let mut night = night;
    night.parse_span_times();
    update(&mut m, Action::Data(Data::Night(Box::new(night))));
    let theme = Theme::load("default", std::path::Path::new("/nonexistent")).expect("theme");
    let mut t = Terminal::new(TestBackend::new(250, 70)).expect("terminal");
    for (name, show) in [
        ("run", Action::ShowRun),
        ("report", Action::ShowReport),
        ("plan", Action::ShowPlan),
    ] {
        update(&mut m, show);
        let mut times = Vec::new();
        for _ in 0..100 {
            let start = Instant::now();
            t.draw(|f| views::draw(f, &m, &theme)).expect("draw");
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{name} view over the whole night (7,326 planned apps), 250x70: median {:.2} ms/frame, max {:.2} ms",
            percentile(&mut times.clone(), 0.5),
            percentile(&mut times, 1.0)
        );
    }
}

/// The console loop's shape: keys first (biased), then the bounded channel drained in
/// batches, one draw when dirty. A producer streams 100,000 log lines in chunks of 100, as fast
/// as the channel takes them (`pace` None) or one chunk per `pace`; a key arrives every 2 ms;
/// latency = key sent → the frame showing its effect drawn.
fn bench_ingest_latency(pace: Option<Duration>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut m = fleet_model();
        let app = m.rows.iter().find(|r| r.candidate).expect("an app").name.clone();
        update(&mut m, Action::OpenAppNamed(app.clone()));
        m.effects.clear();
        let theme = Theme::load("default", std::path::Path::new("/nonexistent")).expect("theme");
        let mut term = Terminal::new(TestBackend::new(250, 70)).expect("terminal");
        let (tx, mut rx) = mpsc::channel::<Action>(1024);
        let (ktx, mut krx) = mpsc::unbounded_channel::<Instant>();
        const LINES: i64 = 100_000;
        let producer_app = app.clone();
        let producer = tokio::spawn(async move {
            let steps = vec![StepView {
                operation: "restore".into(),
                state: pgshift::domain::StepState::Running,
                seconds: Some(1.0),
            }];
            for chunk in 0..(LINES / 100) {
                let lines = (0..100)
                    .map(|k| {
                        let id = chunk * 100 + k + 1;
                        LogLine {
                            id,
                            step: "restore".into(),
                            stream: "stderr".into(),
                            text: format!("pg_restore: processing item {id} TABLE DATA public.events_{id} (a line as long as pg_restore's verbose ones)"),
                        }
                    })
                    .collect();
                let a = Action::Data(Data::App {
                    app: producer_app.clone(),
                    run_id: Some(1),
                    steps: steps.clone(),
                    lines,
                });
                if tx.send(a).await.is_err() {
                    break;
                }
                if let Some(p) = pace {
                    tokio::time::sleep(p).await;
                }
            }
        });
        let keys = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            loop {
                tick.tick().await;
                if ktx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut latencies: Vec<f64> = Vec::new();
        let mut batch = Vec::with_capacity(256);
        let mut ingested = 0usize;
        let mut frames = 0usize;
        let keys_cycle = [Action::PageUp, Action::ToggleFollow, Action::MoveDown, Action::Bottom];
        let mut pending_keys: Vec<Instant> = Vec::new();
        let mut dirty = true;
        loop {
            if dirty {
                term.draw(|f| views::draw(f, &m, &theme)).expect("draw");
                frames += 1;
                dirty = false;
                let now = Instant::now();
                for k in pending_keys.drain(..) {
                    latencies.push((now - k).as_secs_f64() * 1e3);
                }
            }
            if m.watch.as_ref().is_some_and(|w| w.log.last_id >= LINES) {
                break;
            }
            tokio::select! {
                biased;
                Some(sent) = krx.recv() => {
                    let a = keys_cycle[latencies.len() % keys_cycle.len()].clone();
                    update(&mut m, a);
                    pending_keys.push(sent);
                    // Drawn even when the key changed nothing: the latency is key → frame.
                    dirty = true;
                }
                n = rx.recv_many(&mut batch, 256) => {
                    if n == 0 { break; }
                    for a in batch.drain(..) {
                        if let Action::Data(Data::App { lines, .. }) = &a {
                            ingested += lines.len();
                        }
                        dirty |= update(&mut m, a);
                    }
                }
            }
        }
        let total = started.elapsed().as_secs_f64();
        keys.abort();
        producer.abort();
        let w = m.watch.as_ref().expect("watched");
        let how = pace.map_or("flat out".to_string(), |p| format!("100 lines every {} ms", p.as_millis()));
        println!(
            "ingest ({how}) {ingested} log lines in {total:.2} s ({:.0} lines/s, {frames} frames; {} kept in the ring buffer, {} dropped)",
            ingested as f64 / total,
            w.log.len(),
            w.log.dropped
        );
        println!(
            "key latency while ingesting ({} keys): median {:.2} ms, p99 {:.2} ms, worst {:.2} ms (target < 50 ms)",
            latencies.len(),
            percentile(&mut latencies.clone(), 0.5),
            percentile(&mut latencies.clone(), 0.99),
            percentile(&mut latencies, 1.0)
        );
    });
}

fn main() {
    bench_fleet_render();
    bench_night_views();
    bench_ingest_latency(None);
    bench_ingest_latency(Some(Duration::from_millis(2)));
}
