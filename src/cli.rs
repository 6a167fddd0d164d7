//! The command line: clap commands, one context for all of them, exit codes
//! (0 ok, 1 internal error, 2 bad input, 3 a migration ended in a classified failure).

mod app_cmd;
mod args;
mod control_cmd;
mod diagnose_cmd;
mod engine_cmd;
mod fleet_cmd;
mod info;
mod inventory_cmd;
mod lab_cmd;
mod preflight_cmd;
mod printer;
mod report_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use color_eyre::eyre::Result;

use crate::config::{Config, Overrides};
use crate::error::exit;
use crate::inventory::Source;
use crate::ops;
use crate::ops::is_user_error;

#[derive(Debug, Parser)]
#[command(
    name = "pgshift",
    version,
    about = "Move a fleet of PostgreSQL 13 databases to 15, watched live."
)]
pub struct Cli {
    /// Config file (default: ~/.config/pgshift/pgshift.toml if present)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fleet inventory (default: the built-in lab fleet)
    #[arg(long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Control store: sqlite://PATH or postgres://… (default: SQLite in the state dir)
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
    /// No colours (NO_COLOR is honoured too)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Refuse every action that changes anything
    #[arg(long, global = true)]
    pub readonly: bool,
    /// While migrate, retry, resume or run works: ask each app through its route 4 times a
    /// second and report what answered (loopback URLs only)
    #[arg(long, global = true)]
    pub probe: bool,
    /// trace, debug, info, warn or error (logs go to files, never the terminal)
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What `pgshift backups` does besides listing.
#[derive(Debug, Subcommand)]
pub enum BackupsAction {
    /// Delete backups past their expiry whose app is migrated and verified and has no run
    /// under way. Lists them only, unless --yes
    Sweep {
        /// Delete them (default: list what would be deleted)
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The local lab: two real PostgreSQL servers (13 and 15) seeded with the fixture fleet
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// List the fleet: apps, regions, service instances
    Inventory {
        #[arg(long)]
        json: bool,
    },
    /// Paths pgshift uses: config, inventory, store, logs, themes
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Predict failures before the window, against the real OLD and NEW servers
    Preflight {
        /// Only this app (default: every candidate)
        #[arg(long, value_name = "APP")]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Plan the night: candidates by region, seeded shuffle, canary first, batches against the window
    #[command(args_conflicts_with_subcommands = true)]
    Plan {
        #[command(subcommand)]
        edit: Option<PlanAction>,
        /// Same seed, same plan
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 10, value_parser = args::at_least_one)]
        batch_size: usize,
        /// Apps in each region's first (canary) batch; 0 for none
        #[arg(long, default_value_t = 2)]
        canary: usize,
        /// The maintenance window: 4h, 90m, or seconds
        #[arg(long, default_value = "4h", value_parser = args::window)]
        window: u64,
        /// Only these regions
        #[arg(long = "region", value_name = "REGION")]
        regions: Vec<String>,
        /// Leave these apps out of the plan
        #[arg(long = "exclude", value_name = "APP")]
        exclude: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Migrate one app now: every step shown, logs streamed; exit 3 if it failed (rolled back)
    Migrate {
        #[arg(long, value_name = "APP")]
        app: String,
        /// One JSON object per event
        #[arg(long)]
        json: bool,
        /// Runbook file (default: the built-in pg13-to-pg15)
        #[arg(long, value_name = "FILE")]
        runbook: Option<PathBuf>,
        /// Run preflight first and apply its remediations up front
        #[arg(long)]
        apply_preflight: bool,
    },
    /// Run the latest plan: regions in parallel, batches in order, failures never stop the rest
    Run {
        /// Only batch K of every region
        #[arg(long, value_name = "K", conflicts_with = "all")]
        batch: Option<usize>,
        /// Every batch (the default)
        #[arg(long)]
        all: bool,
        /// Run preflight first and apply its remediations up front
        #[arg(long)]
        apply_preflight: bool,
        /// Sim world only: simulated seconds per real second (0: instant steps)
        #[arg(long, default_value_t = 1.0, value_parser = args::non_negative)]
        speed: f64,
        /// Only progress, failures and outcomes, not every step's log
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a generated fleet like the seed's (for rehearsals on the sim platform)
    #[command(hide = true)]
    SimFleet {
        #[arg(long, default_value_t = 7326, value_parser = args::at_least_one)]
        apps: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Continue every run a crashed or killed pgshift left unfinished
    Resume {
        #[arg(long)]
        json: bool,
    },
    /// List open failures: app, region, step, class, matched line, remediations
    Failures {
        #[arg(long)]
        json: bool,
    },
    /// Apply a remediation to a failed app and run its runbook again
    Retry {
        #[arg(long, value_name = "APP")]
        app: String,
        /// Remediation id (default: the first one its failure offers; `pgshift failures` lists them)
        #[arg(long, value_name = "ID")]
        remediation: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put a migrated app back on its old database (refused if NEW took writes since)
    Rollback {
        #[arg(long, value_name = "APP")]
        app: String,
        #[arg(long)]
        json: bool,
    },
    /// Drop a migrated app's OLD database: only after the runbook's retention, only with --confirm
    Deprovision {
        #[arg(long, value_name = "APP")]
        app: String,
        /// Yes, drop OLD for good
        #[arg(long)]
        confirm: bool,
        /// The runbook that migrated it (default: the built-in pg13-to-pg15)
        #[arg(long, value_name = "FILE")]
        runbook: Option<PathBuf>,
    },
    /// Pause, resume or stop one region of the running fleet run
    Region {
        #[command(subcommand)]
        action: RegionAction,
    },
    /// Cancel the running fleet run: current steps stop, their apps roll back to OLD, unpaused
    Cancel {
        /// Really cancel (every current migration is rolled back)
        #[arg(long)]
        confirm: bool,
    },
    /// One app: state, current service, DATABASE_URL (password masked)
    App {
        #[command(subcommand)]
        action: AppAction,
    },
    /// List kept backups: size on disk, expiry, notes, checksum; `sweep` deletes expired ones
    Backups {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<BackupsAction>,
    },
    /// The night's summary: migrations, failures by class, regions, durations, downtime, backups
    Report {
        /// Only this run (default: the whole night as the store holds it)
        #[arg(long, value_name = "N")]
        run: Option<i64>,
        /// md (default) or json
        #[arg(long, value_enum, default_value = "md")]
        format: report_cmd::Format,
    },
    /// Classify a log (deploy log, pg_restore output…): class, matched lines, remediations
    Diagnose {
        /// Log file, or - (default) for standard input
        file: Option<PathBuf>,
        /// An array of findings, each with a `class` field
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Edit the latest plan (saved as a new plan): move an app, leave apps out, reorder batches
    Edit {
        /// Move APP to batch --to of its region
        #[arg(long = "move", value_name = "APP", requires = "to")]
        move_app: Option<String>,
        /// Leave APP out of the plan
        #[arg(long, value_name = "APP")]
        exclude: Vec<String>,
        /// Reorder: run batch K of --region at position --to
        #[arg(long, value_name = "K", requires_all = ["region", "to"], conflicts_with = "move_app")]
        batch: Option<usize>,
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Target batch (with --move) or position (with --batch)
        #[arg(long, value_name = "K")]
        to: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegionAction {
    /// Start no new migrations in REGION until resumed; current ones finish
    Pause { region: String },
    /// Let a paused region go on
    Resume { region: String },
    /// Start no new migrations in REGION for the rest of this run; current ones finish
    Stop { region: String },
}

#[derive(Debug, Subcommand)]
pub enum AppAction {
    /// State, current service instance and DATABASE_URL
    Show {
        app: String,
        #[arg(long)]
        json: bool,
        /// Show the password in DATABASE_URL
        #[arg(long)]
        reveal_secrets: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Create (first time), start and seed the lab; a no-op when it is up
    Up,
    /// Stop both servers
    Down,
    /// Drop every lab database and role, and seed the fixture fleet again (or one app's)
    Reset {
        /// Only this app: its OLD database re-seeded, its NEW one dropped, its state forgotten
        #[arg(long, value_name = "APP")]
        app: Option<String>,
    },
    /// Versions, admin URLs (password in a passfile, never on screen), running or not
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The lab platform's hook commands (the `exec` platform contract): exit 0 done, 1 the
    /// app failed (its own output says why), 2 the hook failed
    #[command(hide = true)]
    Hook {
        op: crate::lab::paas::HookOp,
        app: String,
    },
}

pub use crate::ops::{Context, ensure_writable};

/// Parse, run, and turn the outcome into an exit code with a one-line message on stderr.
pub fn main() -> i32 {
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .install();
    quiet_when_the_reader_leaves();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.chain().any(|c| c.is::<crate::error::PreflightRefusal>()) {
                exit::MIGRATION_FAILED
            } else if is_user_error(&e) {
                exit::BAD_INPUT
            } else {
                exit::INTERNAL
            };
            tracing::error!(error = %format!("{e:#}"), "command failed");
            eprintln!("pgshift: {}", one_line(&e));
            code
        }
    }
}

/// `pgshift inventory | head`: once the reader has gone, `println!` panics on the closed pipe.
/// There is nobody left to tell; end quietly, as `ls | head` does. (Events during a migration
/// are written with their errors ignored, so a closed pipe never stops a migration midway.)
fn quiet_when_the_reader_leaves() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}

fn one_line(e: &color_eyre::Report) -> String {
    // The outermost message says what failed; the chain says why. One line for operators.
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ").replace('\n', " ")
}

fn run(cli: Cli) -> Result<i32> {
    let ov = Overrides {
        config_file: cli.config.clone(),
        inventory: cli.inventory.clone(),
        store: cli.store.clone(),
        log_level: cli.log_level.clone(),
    };
    let (cfg, config_file) = Config::load(&ov)?;
    // Bad input is refused before anything is written, the log file included.
    if let Some(path) = &cfg.inventory {
        crate::inventory::load(&Source::File(path.clone()))?;
    }
    if let Some(
        Command::Migrate {
            runbook: Some(path),
            ..
        }
        | Command::Deprovision {
            runbook: Some(path),
            ..
        },
    ) = &cli.command
    {
        crate::runbook::Runbook::load(path)?;
    }
    let _guard = crate::logging::init(&cfg.log_dir(), &cfg.log_level)?;
    let ctx = Context {
        inventory: cfg
            .inventory
            .clone()
            .map_or(Source::BuiltinLab, Source::File),
        no_color: cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        readonly: cli.readonly,
        probe: cli.probe,
        cfg,
        config_file,
    };
    tracing::info!(command = ?cli.command.as_ref().map(command_name), "pgshift starting");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            None => crate::console::run(&ctx).await,
            Some(Command::Lab { action }) => lab_cmd::run(&ctx, action).await,
            Some(Command::Inventory { json }) => inventory_cmd::run(&ctx, json),
            Some(Command::Info { json }) => info::run(&ctx, json).await,
            Some(Command::Migrate {
                app,
                json,
                runbook,
                apply_preflight,
            }) => {
                let what = engine_cmd::What::App(ops::app::Verb::Migrate {
                    app,
                    preflight: apply_preflight,
                });
                engine_cmd::run(&ctx, what, json, runbook.as_deref()).await
            }
            Some(Command::Plan {
                edit:
                    Some(PlanAction::Edit {
                        move_app,
                        exclude,
                        batch,
                        region,
                        to,
                        json,
                    }),
                ..
            }) => {
                let mut edits = Vec::new();
                if let (Some(app), Some(to)) = (move_app, to) {
                    edits.push(crate::plan::edit::Edit::Move { app, to });
                }
                if let (Some(batch), Some(region), Some(to)) = (batch, region, to) {
                    edits.push(crate::plan::edit::Edit::Reorder { region, batch, to });
                }
                edits.extend(
                    exclude
                        .into_iter()
                        .map(|app| crate::plan::edit::Edit::Exclude { app }),
                );
                fleet_cmd::plan_edit(&ctx, &edits, json).await
            }
            Some(Command::Plan {
                edit: None,
                seed,
                batch_size,
                canary,
                window,
                regions,
                exclude,
                json,
            }) => {
                let window_seconds = window;
                let params = crate::plan::PlanParams {
                    seed,
                    batch_size,
                    canary,
                    window_seconds,
                    regions,
                };
                fleet_cmd::plan(
                    &ctx,
                    fleet_cmd::PlanArgs {
                        params,
                        exclude,
                        json,
                    },
                )
                .await
            }
            Some(Command::Run {
                batch,
                all: _,
                apply_preflight,
                speed,
                quiet,
                json,
            }) => {
                fleet_cmd::run(
                    &ctx,
                    fleet_cmd::RunArgs {
                        batch,
                        json,
                        apply_preflight,
                        speed,
                        quiet,
                    },
                )
                .await
            }
            Some(Command::SimFleet { apps, seed }) => {
                print!("{}", crate::platform::sim_fleet::generate(apps, seed));
                Ok(exit::OK)
            }
            Some(Command::Preflight { app, json }) => {
                preflight_cmd::run(&ctx, app.as_deref(), json).await
            }
            Some(Command::Resume { json }) => {
                engine_cmd::run(&ctx, engine_cmd::What::Resume, json, None).await
            }
            Some(Command::Retry {
                app,
                remediation,
                json,
            }) => {
                let verb = ops::app::Verb::Retry { app, remediation };
                engine_cmd::run(&ctx, engine_cmd::What::App(verb), json, None).await
            }
            Some(Command::Deprovision {
                app,
                confirm,
                runbook,
            }) => {
                engine_cmd::run(
                    &ctx,
                    engine_cmd::What::App(ops::app::Verb::Deprovision { app, confirm }),
                    false,
                    runbook.as_deref(),
                )
                .await
            }
            Some(Command::Rollback { app, json }) => {
                let verb = ops::app::Verb::Rollback { app };
                engine_cmd::run(&ctx, engine_cmd::What::App(verb), json, None).await
            }
            Some(Command::App {
                action:
                    AppAction::Show {
                        app,
                        json,
                        reveal_secrets,
                    },
            }) => app_cmd::show(&ctx, &app, json, reveal_secrets).await,
            Some(Command::Backups { json, action: None }) => app_cmd::backups(&ctx, json).await,
            Some(Command::Backups {
                json,
                action: Some(BackupsAction::Sweep { yes, json: j }),
            }) => app_cmd::sweep(&ctx, yes, json || j).await,
            Some(Command::Region { action }) => control_cmd::region(&ctx, action).await,
            Some(Command::Cancel { confirm }) => control_cmd::cancel(&ctx, confirm).await,
            Some(Command::Diagnose { file, json }) => diagnose_cmd::run(file.as_deref(), json),
            Some(Command::Failures { json }) => app_cmd::failures(&ctx, json).await,
            Some(Command::Report { run, format }) => report_cmd::run(&ctx, run, format).await,
        }
    })
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Lab { .. } => "lab",
        Command::Inventory { .. } => "inventory",
        Command::Info { .. } => "info",
        Command::Preflight { .. } => "preflight",
        Command::Plan { .. } => "plan",
        Command::Migrate { .. } => "migrate",
        Command::Run { .. } => "run",
        Command::SimFleet { .. } => "sim-fleet",
        Command::Resume { .. } => "resume",
        Command::Failures { .. } => "failures",
        Command::Retry { .. } => "retry",
        Command::Rollback { .. } => "rollback",
        Command::Deprovision { .. } => "deprovision",
        Command::App { .. } => "app",
        Command::Region { .. } => "region",
        Command::Cancel { .. } => "cancel",
        Command::Backups { .. } => "backups",
        Command::Report { .. } => "report",
        Command::Diagnose { .. } => "diagnose",
    }
}
