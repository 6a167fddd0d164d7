//! `pgshift-bench` (`scripts/bench-migrate` runs it; not part of the operator's binary): on
//! the lab servers, a source database of a chosen size on 13, then alternating, repeated timings of what an operator
//! would otherwise use against `pgshift migrate` of an app on that database. Prints medians,
//! never asserts on them; the last line is
//! `ratios d/a=X d/b=X d/c=X paused/d=X paused_e/paused_d=X`. Method e is `pgshift migrate`
//! with the logical strategy on the same source, pgbench writing to OLD at a steady rate
//! until the app's page goes up (its pause command stops the load, as a maintenance page
//! stops an app's traffic).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, eyre};
use tokio::io::{AsyncBufReadExt, BufReader};

use clap::Parser;
use pgshift::config::{Config, Overrides};
use pgshift::domain::AppState;
use pgshift::engine::Event;
use pgshift::error::{UserError, exit};
use pgshift::inventory::Source;
use pgshift::lab::Lab;
use pgshift::ops::is_user_error;
use pgshift::postgres::process::conninfo;
use pgshift::postgres::{Endpoint, exec, ident, literal};

/// The operator's binary, built beside this one (`cargo build` builds both).
fn pgshift_exe() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let exe = me.with_file_name(format!("pgshift{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        return Err(eyre!(
            "{} not found beside {}: build it (cargo build)",
            exe.display(),
            me.display()
        ));
    }
    Ok(exe)
}

/// Bump when the generated source changes: an existing one of another version is rebuilt.
const SOURCE_VERSION: u32 = 2;
/// The write load on OLD during method e: pgbench transactions per second (each updates
/// three rows and inserts one).
const LOAD_TPS: u32 = 50;

/// Benchmark `pgshift migrate` against pg_dump/pg_restore and pgcopydb on the lab
/// (scripts/bench-migrate); the lab and state dir come from the config and PGSHIFT_* variables.
#[derive(Debug, Parser)]
#[command(name = "pgshift-bench")]
struct Args {
    /// Source sizes in MB at which `pgshift migrate` is timed
    #[arg(long, value_delimiter = ',', default_value = "100,450,1000")]
    sizes: Vec<u32>,
    /// The size in MB at which all four methods are compared
    #[arg(long, default_value_t = 450)]
    compare: u32,
    /// Runs of each method (medians are reported)
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Config file (default: ~/.config/pgshift/pgshift.toml if present)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let code = match start(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgshift-bench: {e:#}");
            if is_user_error(&e) {
                exit::BAD_INPUT
            } else {
                exit::INTERNAL
            }
        }
    };
    std::process::exit(code);
}

fn start(args: Args) -> Result<i32> {
    let (cfg, config_file) = Config::load(&Overrides {
        config_file: args.config.clone(),
        ..Overrides::default()
    })?;
    let _guard = pgshift::logging::init(&cfg.log_dir(), &cfg.log_level)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&cfg, config_file, args))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    A,
    B,
    C,
    D,
    E,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::A => "a  pg_dump -Fc \\| pg_restore (serial)",
            Method::B => "b  pg_dump -Fd -j2, then pg_restore -j2",
            Method::C => "c  pgcopydb clone --table-jobs 2 --index-jobs 2",
            Method::D => "d  pgshift migrate (backup kept, verified)",
            Method::E => "e  pgshift migrate, logical strategy, OLD under write load",
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Method::A => "a",
            Method::B => "b",
            Method::C => "c",
            Method::D => "d",
            Method::E => "e",
        }
    }
}

/// One timed `pgshift migrate`: its wall clock, the paused interval and the steps' seconds.
#[derive(Default, Clone)]
struct MigrateRun {
    total: f64,
    paused: f64,
    steps: Vec<(String, f64)>,
    /// Method e: pgbench transactions committed on OLD during the run, until the pause.
    load_transactions: u64,
}

struct Bench {
    lab: Lab,
    old: Endpoint,
    new: Endpoint,
    pg_bin: PathBuf,
    pgpass: PathBuf,
    dir: PathBuf,
    inventory: PathBuf,
    /// The same apps with `strategy = "logical"`, their pause stopping the write load.
    inventory_logical: PathBuf,
    exe: PathBuf,
    config_file: Option<PathBuf>,
    /// pgshift's state dir: where migrate keeps platform records and backups.
    state: PathBuf,
}

async fn run(cfg: &Config, config_file: Option<PathBuf>, args: Args) -> Result<i32> {
    if args.reps == 0 || args.sizes.is_empty() || args.sizes.contains(&0) || args.compare == 0 {
        return Err(UserError::new(
            "bench: --reps, --sizes and --compare must be positive (e.g. --sizes 100,450,1000 --compare 450 --reps 3)",
        )
        .into());
    }
    let pg_bin = cfg.lab.pg15_bin.clone();
    let pgbench = pg_bin.join("pgbench");
    if !pgbench.is_file() {
        return Err(UserError::new(format!(
            "bench: pgbench not found at {} (Debian package postgresql-15; scripts/install-deps installs it)",
            pgbench.display()
        ))
        .into());
    }
    let lab = Lab::open(cfg)?;
    let dir = cfg.state_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let mut sizes = args.sizes.clone();
    if !sizes.contains(&args.compare) {
        sizes.push(args.compare);
    }
    sizes.sort_unstable();
    let inventory = dir.join("fleet.toml");
    std::fs::write(&inventory, bench_inventory(&sizes, None))?;
    let inventory_logical = dir.join("fleet-logical.toml");
    std::fs::write(
        &inventory_logical,
        bench_inventory(&sizes, Some(&dir.join("load.pid"))),
    )?;
    pgshift::inventory::load(&Source::File(inventory_logical.clone()))?;
    let inv = pgshift::inventory::load(&Source::File(inventory.clone()))?;
    lab.up(&inv, &|_| {}).await?;
    let bench = Bench {
        old: lab.admin(13)?,
        new: lab.admin(15)?,
        pgpass: lab.pgpass_path(),
        lab,
        pg_bin,
        dir,
        inventory,
        inventory_logical,
        exe: pgshift_exe()?,
        config_file,
        state: cfg.state_dir(),
    };
    let pgcopydb = which("pgcopydb");
    let load_start = loadavg();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "bench: {cores} cores, load average {load_start} at start; sizes {sizes:?} MB, every method at {} MB, {} runs each",
        args.compare, args.reps
    );

    let mut sources = Vec::new();
    for &mb in &sizes {
        let t = Instant::now();
        let (bytes, fresh) = bench.ensure_source(mb).await?;
        eprintln!(
            "bench: source {} {:.0} MB ({})",
            db_name(mb),
            bytes as f64 / 1e6,
            if fresh {
                format!("created in {:.1} s", t.elapsed().as_secs_f64())
            } else {
                "already there".into()
            }
        );
        sources.push((mb, bytes));
    }

    // The comparison: alternating, each round starting one method later.
    let methods = [Method::A, Method::B, Method::C, Method::D, Method::E];
    let mut times: Vec<(Method, Vec<f64>)> = methods.iter().map(|m| (*m, Vec::new())).collect();
    let mut cpu_times: Vec<(Method, Vec<f64>)> = methods.iter().map(|m| (*m, Vec::new())).collect();
    let mut runs_d = Vec::new();
    let mut runs_e: Vec<MigrateRun> = Vec::new();
    // Each round's own seconds per method: its runs share whatever else loads the machine.
    let mut rounds: Vec<[Option<f64>; 5]> = Vec::new();
    for rep in 0..args.reps {
        rounds.push([None; 5]);
        for k in 0..methods.len() {
            let m = methods[(rep + k) % methods.len()];
            let cpu_before = cpu_seconds(bench.lab.dir());
            let seconds = match m {
                Method::C if pgcopydb.is_none() => continue,
                Method::D => {
                    let r = bench.migrate(args.compare, rep, false).await?;
                    let s = r.total;
                    runs_d.push(r);
                    s
                }
                Method::E => {
                    let r = bench.migrate(args.compare, rep, true).await?;
                    let s = r.total;
                    eprintln!(
                        "bench: {} MB run {} e: paused {:.2} s, {} pgbench transactions on OLD before the pause",
                        args.compare,
                        rep + 1,
                        r.paused,
                        r.load_transactions
                    );
                    runs_e.push(r);
                    s
                }
                _ => bench.copy(m, args.compare, pgcopydb.as_deref()).await?,
            };
            eprintln!(
                "bench: {} MB run {} {}: {seconds:.2} s (load average {})",
                args.compare,
                rep + 1,
                m.label(),
                loadavg()
            );
            let cpu = cpu_seconds(bench.lab.dir()) - cpu_before;
            if let Some((_, v)) = times.iter_mut().find(|(x, _)| *x == m) {
                v.push(seconds);
            }
            if let Some((_, v)) = cpu_times.iter_mut().find(|(x, _)| *x == m) {
                v.push(cpu);
            }
            if let Some(r) = rounds.last_mut() {
                r[m as usize] = Some(seconds);
            }
        }
    }
    // Linearity: pgshift migrate alone at the other sizes.
    let mut scaling: Vec<(u32, u64, Vec<MigrateRun>)> = Vec::new();
    for &(mb, bytes) in &sources {
        let runs = if mb == args.compare {
            runs_d.clone()
        } else {
            let mut v = Vec::new();
            for rep in 0..args.reps {
                let r = bench.migrate(mb, rep, false).await?;
                eprintln!(
                    "bench: {mb} MB run {} d: {:.2} s (paused {:.2} s)",
                    rep + 1,
                    r.total,
                    r.paused
                );
                v.push(r);
            }
            v
        };
        scaling.push((mb, bytes, runs));
    }
    bench.drop_targets(&sizes).await?;
    let load_end = loadavg();

    let compare_bytes = sources
        .iter()
        .find(|(mb, _)| *mb == args.compare)
        .map_or(0, |(_, b)| *b);
    println!(
        "pgshift bench — {cores} cores, load average {load_start} at start, {load_end} at end; source {} ({:.0} MB: pgbench scale {} + documents and events tables with text, jsonb and indexes), {} runs of each method alternating, medians; CPU s: seconds of CPU the run took in both lab servers and every client process, whatever else loads the machine:",
        db_name(args.compare),
        compare_bytes as f64 / 1e6,
        pgbench_scale(args.compare),
        args.reps
    );
    println!();
    println!("| method | median s | runs s | CPU s (median) |");
    println!("|---|---:|---|---:|");
    let med = |m: Method| {
        times
            .iter()
            .find(|(x, _)| *x == m)
            .and_then(|(_, v)| median(v))
    };
    let cpu_med = |m: Method| {
        cpu_times
            .iter()
            .find(|(x, _)| *x == m)
            .and_then(|(_, v)| median(v))
            .unwrap_or(0.0)
    };
    for (m, v) in &times {
        match median(v) {
            Some(x) => println!(
                "| {} | {x:.2} | {} | {:.1} |",
                m.label(),
                list(v),
                cpu_med(*m)
            ),
            None => println!(
                "| {} | unavailable | pgcopydb is not installed (apt-get install pgcopydb) | |",
                m.label()
            ),
        }
    }
    let paused: Vec<f64> = runs_d.iter().map(|r| r.paused).collect();
    println!(
        "| d: paused (maintenance page on → off) | {:.2} | {} | |",
        median(&paused).unwrap_or(0.0),
        list(&paused)
    );
    let paused_e: Vec<f64> = runs_e.iter().map(|r| r.paused).collect();
    println!(
        "| e: paused (maintenance page on → off), pgbench at {LOAD_TPS} tps on OLD until then | {:.2} | {} | |",
        median(&paused_e).unwrap_or(0.0),
        list(&paused_e)
    );
    for step in ["backup", "restore", "verify"] {
        let v: Vec<f64> = runs_d
            .iter()
            .filter_map(|r| r.steps.iter().find(|(s, _)| s == step).map(|(_, x)| *x))
            .collect();
        println!(
            "| d: step {step} | {:.2} | {} | |",
            median(&v).unwrap_or(0.0),
            list(&v)
        );
    }
    println!();
    println!("| size | source MB | d median s | paused median s | d s per GB |");
    println!("|---|---:|---:|---:|---:|");
    for (mb, bytes, runs) in &scaling {
        let total: Vec<f64> = runs.iter().map(|r| r.total).collect();
        let paused: Vec<f64> = runs.iter().map(|r| r.paused).collect();
        let d = median(&total).unwrap_or(0.0);
        println!(
            "| ~{mb} MB | {:.0} | {d:.2} | {:.2} | {:.1} |",
            *bytes as f64 / 1e6,
            median(&paused).unwrap_or(0.0),
            d / (*bytes as f64 / 1e9)
        );
    }
    let paired = |m: Method| {
        let v: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r[Method::D as usize]? / r[m as usize]?))
            .collect();
        median(&v).map_or_else(|| "unavailable".to_string(), |x| format!("{x:.2}"))
    };
    println!();
    println!(
        "paired: the median of each round's own ratio (a round's four runs share the machine's load): d/a={} d/b={} d/c={}",
        paired(Method::A),
        paired(Method::B),
        paired(Method::C)
    );
    let d = med(Method::D).unwrap_or(0.0);
    let ratio = |m: Method| match med(m) {
        Some(x) if x > 0.0 => format!("{:.2}", d / x),
        _ => "unavailable".to_string(),
    };
    let paused_d = median(&paused).unwrap_or(0.0);
    println!(
        "ratios d/a={} d/b={} d/c={} paused/d={:.2} paused_e/paused_d={}",
        ratio(Method::A),
        ratio(Method::B),
        ratio(Method::C),
        if d > 0.0 { paused_d / d } else { 0.0 },
        match median(&paused_e) {
            Some(e) if paused_d > 0.0 => format!("{:.3}", e / paused_d),
            _ => "unavailable".to_string(),
        }
    );
    Ok(exit::OK)
}

fn db_name(mb: u32) -> String {
    format!("bench_{mb}mb")
}

fn app_name(mb: u32) -> String {
    format!("bench-{mb}mb")
}

/// pgbench's accounts are ~15 MB per scale unit: two thirds of the size; the rest is text.
fn pgbench_scale(mb: u32) -> u32 {
    ((mb as f64 * 0.68 / 15.0).round() as u32).max(1)
}

/// The bench's fleet. `load_pid`: the logical variant — every app `strategy = "logical"`, its
/// pause command ending the write load whose pid is in that file (and waiting until it did).
fn bench_inventory(sizes: &[u32], load_pid: Option<&Path>) -> String {
    let mut s = String::from(
        "# Written by `pgshift bench`: one app per benchmark source database on the lab.\n\n[servers.pg13]\nversion = 13\nlab = true\n\n[servers.pg15]\nversion = 15\nlab = true\n\n[[regions]]\nname = \"bench\"\nconcurrency = 1\ntargets = { \"15\" = \"pg15\" }\n",
    );
    for &mb in sizes {
        s.push_str(&format!(
            "\n[[apps]]\nname = \"{app}\"\nregion = \"bench\"\nenvironment = \"live\"\nlibpq = \"15.4\"\n\n{strategy}\n  [[apps.services]]\n  id = \"{app}-db\"\n  service = \"postgresql-database-13\"\n  server = \"pg13\"\n  database = \"{db}\"\n  user = \"{db}\"\n  password = {{ lab = true }}\n",
            app = app_name(mb),
            db = db_name(mb),
            strategy = if load_pid.is_some() {
                "strategy = \"logical\"\n"
            } else {
                ""
            }
        ));
    }
    // The bench times the database half of a migration: its apps are databases only, with
    // no process to pause or redeploy, so their platform's commands change nothing (and say
    // so: every app is always serving, on the service pgshift last gave it).
    let pause = match load_pid {
        None => "true".to_string(),
        Some(f) => {
            let script = format!(
                "p=$(cat {f} 2>/dev/null) || exit 0; kill -TERM $p 2>/dev/null; while kill -0 $p 2>/dev/null; do sleep 0.02; done; exit 0",
                f = shell_words::quote(&f.display().to_string())
            );
            let words = ["sh".to_string(), "-c".to_string(), script];
            shell_words::join(&words)
        }
    };
    s.push_str(&format!(
        "\n[platform]\nkind = \"exec\"\n[platform.commands]\nstatus = \"printf '{{\\\"paused\\\": false, \\\"service_id\\\": null}}\\\\n'\"\npause = {}\nunpause = \"true\"\nset_database_url = \"true\"\nredeploy = \"true\"\nhealth = \"true\"\n",
        toml_string(&pause)
    ));
    s
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Bench {
    fn env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            ("PGPASSFILE".into(), self.pgpass.display().to_string()),
            // pgcopydb finds pg_dump and pg_restore on the PATH: the same 15 clients as a and b.
            ("PATH".into(), format!("{}:{path}", self.pg_bin.display())),
        ]
    }

    /// The source database of about `mb` MB on 13, owned by its app role; reused when an
    /// earlier run built the same one.
    async fn ensure_source(&self, mb: u32) -> Result<(u64, bool)> {
        let db = db_name(mb);
        let marker = format!("pgshift bench source v{SOURCE_VERSION} {mb} MB");
        let mut conn = self.old.connect("postgres").await?;
        let comment: Option<String> = sqlx::query_scalar(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        )
        .bind(&db)
        .fetch_optional(&mut conn)
        .await?
        .flatten();
        let role_known = self.lab.role_secret_path("pg13", &db).exists();
        let fresh = comment.as_deref() != Some(marker.as_str()) || !role_known;
        if fresh {
            let password = self.lab.new_role_password("pg13", &db)?;
            exec(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(&db)),
            )
            .await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(&db)
                    .fetch_one(&mut conn)
                    .await?;
            let verb = if exists { "ALTER" } else { "CREATE" };
            exec(
                &mut conn,
                format!(
                    "SET password_encryption = 'md5'; {verb} ROLE {} LOGIN PASSWORD {}",
                    ident(&db),
                    literal(password.expose())
                ),
            )
            .await?;
            exec(
                &mut conn,
                format!("CREATE DATABASE {} OWNER {}", ident(&db), ident(&db)),
            )
            .await?;
            let status = tokio::process::Command::new(self.pg_bin.join("pgbench"))
                .args(["-i", "-q", "-s"])
                .arg(pgbench_scale(mb).to_string())
                .arg("-d")
                .arg(conninfo(&self.old, &db))
                .envs(self.env())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .await
                .wrap_err("starting pgbench")?;
            if !status.status.success() {
                return Err(eyre!(
                    "pgbench -i on {db} failed: {}",
                    String::from_utf8_lossy(&status.stderr).trim()
                ));
            }
            // The rest in two tables with text, arrays, jsonb, a foreign key and indexes, so
            // the copy is not one table and index builds matter.
            let docs = (mb as f64 * 0.19e6 / 610.0) as i64;
            let events = (mb as f64 * 0.13e6 / 205.0) as i64;
            let mut src = self.old.connect(&db).await?;
            exec(&mut src, format!(r#"
CREATE TABLE bench_documents (id bigserial PRIMARY KEY, account int NOT NULL, title text NOT NULL, body text NOT NULL, tags text[], created timestamptz NOT NULL);
INSERT INTO bench_documents (account, title, body, tags, created)
  SELECT g % 3000, 'document ' || g || ' ' || md5(g::text), repeat(md5((g * 7)::text) || ' lorem ipsum dolor sit amet ', 6),
         ARRAY['t' || (g % 17), 't' || (g % 5)], timestamptz '2020-01-01' + g * interval '37 seconds'
  FROM generate_series(1, {docs}) g;
CREATE INDEX ON bench_documents (account, created);
CREATE INDEX ON bench_documents (title);
CREATE TABLE bench_events (id bigserial PRIMARY KEY, document bigint REFERENCES bench_documents, kind text NOT NULL, payload jsonb, at timestamptz NOT NULL);
INSERT INTO bench_events (document, kind, payload, at)
  SELECT 1 + g % {docs}, (ARRAY['view', 'edit', 'share', 'print'])[1 + g % 4], jsonb_build_object('n', g, 'ua', 'Mozilla/5.0 ' || md5(g::text)),
         timestamptz '2021-01-01' + g * interval '11 seconds'
  FROM generate_series(1, {events}) g;
CREATE INDEX ON bench_events (document);
CREATE INDEX ON bench_events (kind, at);
-- pgbench leaves its history without a key; method e publishes it (and its load inserts there).
ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO %I', r.tablename, {role});
  END LOOP;
END $$;
"#, role = literal(&db))).await?;
            // Alone: VACUUM refuses to run inside the implicit transaction of a batch.
            exec(&mut src, "VACUUM ANALYZE".into()).await?;
            exec(
                &mut conn,
                format!("COMMENT ON DATABASE {} IS {}", ident(&db), literal(&marker)),
            )
            .await?;
        }
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(&db)
            .fetch_one(&mut conn)
            .await?;
        Ok((bytes.max(0) as u64, fresh))
    }

    /// An empty database on 15, dropped first if a previous run left it.
    async fn drop_target(&self, db: &str) -> Result<()> {
        let mut conn = self.new.connect("postgres").await?;
        exec(
            &mut conn,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(db)),
        )
        .await?;
        Ok(())
    }

    async fn create_target(&self, db: &str) -> Result<()> {
        let mut conn = self.new.connect("postgres").await?;
        exec(&mut conn, format!("CREATE DATABASE {}", ident(db))).await?;
        Ok(())
    }

    async fn drop_targets(&self, sizes: &[u32]) -> Result<()> {
        for &mb in sizes {
            for m in ["", "_a", "_b", "_c"] {
                self.drop_target(&format!("{}{m}", db_name(mb))).await?;
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join("work"));
        let _ = std::fs::remove_dir_all(self.dir.join("state"));
        Ok(())
    }

    /// Time a, b or c: from creating the empty target to the last process's exit.
    async fn copy(&self, m: Method, mb: u32, pgcopydb: Option<&Path>) -> Result<f64> {
        let source = db_name(mb);
        let target = format!("{source}_{}", m.suffix());
        let work = self.dir.join("work").join(&target);
        self.drop_target(&target).await?;
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(work.parent().unwrap_or(&self.dir))?;
        let src = conninfo(&self.old, &source);
        let dst = conninfo(&self.new, &target);
        let dump = self.pg_bin.join("pg_dump");
        let restore = self.pg_bin.join("pg_restore");
        let started = Instant::now();
        self.create_target(&target).await?;
        match m {
            Method::A => {
                let mut d = self.cmd(&dump, &["-Fc", "-d", &src]);
                let mut dumper = d.stdout(Stdio::piped()).spawn()?;
                let pipe: Stdio = dumper
                    .stdout
                    .take()
                    .ok_or_else(|| eyre!("pg_dump has no stdout"))?
                    .try_into()?;
                let mut r = self.cmd(&restore, &["--no-owner", "-d", &dst]);
                let restorer = r.stdin(pipe).spawn()?;
                let (a, b) = tokio::join!(dumper.wait_with_output(), restorer.wait_with_output());
                check("pg_dump -Fc", a?)?;
                check("pg_restore", b?)?;
            }
            Method::B => {
                let dir = work.display().to_string();
                let out = self
                    .cmd(&dump, &["-Fd", "-j2", "-f", &dir, "-d", &src])
                    .output()
                    .await?;
                check("pg_dump -Fd -j2", out)?;
                let out = self
                    .cmd(&restore, &["-j2", "--no-owner", "-d", &dst, &dir])
                    .output()
                    .await?;
                check("pg_restore -j2", out)?;
            }
            Method::C => {
                let Some(bin) = pgcopydb else {
                    return Err(eyre!("pgcopydb is not installed"));
                };
                let dir = work.display().to_string();
                let out = self
                    .cmd(
                        bin,
                        &[
                            "clone",
                            "--source",
                            &src,
                            "--target",
                            &dst,
                            "--table-jobs",
                            "2",
                            "--index-jobs",
                            "2",
                            "--no-owner",
                            "--dir",
                            &dir,
                        ],
                    )
                    .output()
                    .await?;
                check("pgcopydb clone", out)?;
            }
            Method::D | Method::E => return Err(eyre!("d and e are timed by migrate")),
        }
        let seconds = started.elapsed().as_secs_f64();
        self.drop_target(&target).await?;
        let _ = std::fs::remove_dir_all(&work);
        Ok(seconds)
    }

    fn cmd(&self, program: &Path, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        c.args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// pgbench on OLD's source at LOAD_TPS until its pid (in `load.pid`) is sent SIGTERM (a
    /// background job ignores SIGINT).
    async fn start_load(&self, mb: u32) -> Result<tokio::task::JoinHandle<()>> {
        let mut c = tokio::process::Command::new(self.pg_bin.join("pgbench"));
        c.args(["-n", "-c", "2", "-j", "2", "-R"])
            .arg(LOAD_TPS.to_string())
            .args(["-T", "36000", "-d"])
            .arg(conninfo(&self.old, &db_name(mb)))
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = c.spawn().wrap_err("starting pgbench")?;
        let pid = child.id().ok_or_else(|| eyre!("pgbench has no pid"))?;
        std::fs::write(self.dir.join("load.pid"), pid.to_string())?;
        // Reaped as soon as it exits, so the pause command sees it gone.
        Ok(tokio::spawn(async move {
            let _ = child.wait().await;
        }))
    }

    /// `pgshift migrate --app bench-<mb>mb --json` with a store and platform state of its
    /// own, timed from spawn to exit; the paused interval from its events as they arrive.
    /// `logical`: method e — the logical inventory, pgbench writing to OLD until the pause.
    async fn migrate(&self, mb: u32, rep: usize, logical: bool) -> Result<MigrateRun> {
        let app = app_name(mb);
        let db = db_name(mb);
        let state = self.dir.join("state");
        let store = state.join(format!("store-{mb}-{rep}.db"));
        let _ = std::fs::remove_file(&store);
        // Each run starts where an operator's would: the app on OLD, no backups of it yet.
        let _ = std::fs::remove_file(self.state.join("platform").join(format!("{app}.json")));
        let _ = std::fs::remove_dir_all(self.state.join("backups").join(&app));
        std::fs::create_dir_all(&state)?;
        self.drop_target(&db).await?;
        let mut c = tokio::process::Command::new(&self.exe);
        if let Some(f) = &self.config_file {
            c.arg("--config").arg(f);
        }
        // pgbench inserts one history row per transaction.
        let history = |db: String| async move {
            let mut conn = self.old.connect(&db).await?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pgbench_history")
                .fetch_one(&mut conn)
                .await?;
            Ok::<_, color_eyre::Report>(n)
        };
        let (load, history_before) = if logical {
            let before = history(db.clone()).await?;
            (Some(self.start_load(mb).await?), before)
        } else {
            (None, 0)
        };
        c.arg("--inventory")
            .arg(if logical {
                &self.inventory_logical
            } else {
                &self.inventory
            })
            .arg("--store")
            .arg(format!("sqlite://{}", store.display()))
            .args(["migrate", "--app", &app, "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = c.spawn().wrap_err("starting pgshift migrate")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| eyre!("pgshift migrate has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut run = MigrateRun::default();
        let (mut on, mut off) = (None, None);
        let mut outcome = None;
        while let Some(line) = lines.next_line().await? {
            let Ok(ev) = serde_json::from_str::<Event>(&line) else {
                continue;
            };
            match ev {
                Event::StepFinished { step, seconds, .. } => {
                    let at = started.elapsed().as_secs_f64();
                    match step.as_str() {
                        "pause" => on = Some(at),
                        "unpause" => off = Some(at),
                        _ => {}
                    }
                    run.steps.push((step, seconds));
                }
                Event::Done { outcome: o, .. } => outcome = Some(o),
                _ => {}
            }
        }
        let out = child.wait_with_output().await?;
        run.total = started.elapsed().as_secs_f64();
        if let Some(load) = load {
            // Stopped by the pause; if the run never paused, here.
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("load.pid"))
                && let Ok(pid) = pid.trim().parse::<i32>()
                && !load.is_finished()
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = load.await;
            run.load_transactions = (history(db.clone()).await? - history_before).max(0) as u64;
            let _ = std::fs::remove_file(self.dir.join("load.pid"));
        }
        if !out.status.success() || outcome != Some(AppState::Migrated) {
            return Err(eyre!(
                "pgshift migrate --app {app} ended {:?} ({}): {}; its store is {}",
                outcome.map(AppState::as_str).unwrap_or_default(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                store.display()
            ));
        }
        run.paused = match (on, off) {
            (Some(a), Some(b)) => b - a,
            _ => {
                return Err(eyre!(
                    "pgshift migrate --app {app}: no pause/unpause events"
                ));
            }
        };
        let _ = std::fs::remove_file(&store);
        Ok(run)
    }
}

fn check(what: &str, out: std::process::Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    Err(eyre!(
        "{what} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// CPU seconds used so far by this process's waited-for children (pg_dump, pg_restore,
/// pgcopydb, pgshift migrate and theirs) and by both lab servers (postmaster, its live
/// children, and the backends it reaped): what a run cost, whatever else loads the machine.
fn cpu_seconds(lab_dir: &Path) -> f64 {
    // Linux reports these in USER_HZ, 100 on every architecture pgshift runs on.
    const HZ: f64 = 100.0;
    let fields = |pid: &str| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        // state ppid … utime(14) stime(15) cutime(16) cstime(17), counted from `state` = 3.
        Some(
            after
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect(),
        )
    };
    let mut ticks = fields("self").map_or(0, |f| f[13] + f[14]);
    let postmasters: Vec<u64> = ["pg13", "pg15"]
        .iter()
        .filter_map(|c| {
            let pid = std::fs::read_to_string(lab_dir.join(c).join("data/postmaster.pid")).ok()?;
            pid.lines().next()?.trim().parse().ok()
        })
        .collect();
    for pm in &postmasters {
        if let Some(f) = fields(&pm.to_string()) {
            ticks += f[11] + f[12] + f[13] + f[14];
        }
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for e in procs.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some(f) = fields(&name)
                && postmasters.contains(&f[1])
            {
                ticks += f[11] + f[12];
            }
        }
    }
    ticks as f64 / HZ
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn bench_inventory_is_a_valid_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        std::fs::write(&p, bench_inventory(&[100, 450], None)).unwrap();
        let inv = pgshift::inventory::load(&Source::File(p.clone())).unwrap();
        assert!(inv.app("bench-450mb").is_some_and(|a| a.strategy.is_none()));
        let pid = dir.path().join("load \"x\".pid");
        std::fs::write(&p, bench_inventory(&[100, 450], Some(&pid))).unwrap();
        let inv = pgshift::inventory::load(&Source::File(p)).unwrap();
        assert_eq!(
            inv.app("bench-450mb").and_then(|a| a.strategy),
            Some(pgshift::inventory::Strategy::Logical)
        );
    }
}
