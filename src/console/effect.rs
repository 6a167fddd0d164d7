//! What `update` asks the outside world to do. Changing commands run as a `pgshift` child
//! (the same binary, config and environment), so the console never migrates in-process and
//! a crash of the console never leaves a step half-done.

use crate::diagnose::RemediationId;

/// A command that changes something: confirmed first, refused under `--readonly`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Migrate {
        app: String,
    },
    /// Several apps, one after the other (each its own `pgshift migrate`).
    MigrateMany {
        apps: Vec<String>,
    },
    Retry {
        app: String,
        remediation: RemediationId,
    },
    Rollback {
        app: String,
    },
    MarkManual {
        failure_id: i64,
        app: String,
    },
    RunBatch {
        batch: usize,
    },
    RegionPause {
        region: String,
    },
    RegionResume {
        region: String,
    },
    RegionStop {
        region: String,
    },
    CancelRun,
    Replan(PlanArgs),
    /// Save a plan edited by hand as the newest plan (in-process: the store).
    SavePlan {
        params: String,
        plan: Box<crate::plan::Plan>,
    },
}

/// `pgshift plan` arguments the Plan view edits.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanArgs {
    pub seed: u64,
    pub batch_size: usize,
    pub canary: usize,
    pub window_seconds: u64,
    pub exclude: Vec<String>,
}

impl Command {
    /// The `pgshift` runs of this command, in order (empty: done in-process).
    pub fn runs(&self) -> Vec<Vec<String>> {
        match self {
            Command::MigrateMany { apps } => apps
                .iter()
                .filter_map(|a| Command::Migrate { app: a.clone() }.args())
                .collect(),
            other => other.args().into_iter().collect(),
        }
    }

    /// The `pgshift` arguments of this command (`None`: done in-process or several runs).
    pub fn args(&self) -> Option<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Some(match self {
            Command::Migrate { app } => s(&["migrate", "--app", app, "--json"]),
            Command::Retry { app, remediation } => s(&[
                "retry",
                "--app",
                app,
                "--remediation",
                remediation.as_str(),
                "--json",
            ]),
            Command::Rollback { app } => s(&["rollback", "--app", app, "--json"]),
            Command::MarkManual { .. } | Command::MigrateMany { .. } | Command::SavePlan { .. } => {
                return None;
            }
            Command::RunBatch { batch } => s(&["run", "--batch", &batch.to_string(), "--json"]),
            Command::RegionPause { region } => s(&["region", "pause", region]),
            Command::RegionResume { region } => s(&["region", "resume", region]),
            Command::RegionStop { region } => s(&["region", "stop", region]),
            // The console asked for its own confirmation first.
            Command::CancelRun => s(&["cancel", "--confirm"]),
            Command::Replan(p) => {
                let mut v = s(&[
                    "plan",
                    "--seed",
                    &p.seed.to_string(),
                    "--batch-size",
                    &p.batch_size.to_string(),
                    "--canary",
                    &p.canary.to_string(),
                    "--window",
                    &p.window_seconds.to_string(),
                    "--json",
                ]);
                for a in &p.exclude {
                    v.push("--exclude".into());
                    v.push(a.clone());
                }
                v
            }
        })
    }

    /// The question the confirmation asks, in the operator's words.
    pub fn describe(&self) -> String {
        match self {
            Command::Migrate { app } => format!("Migrate {app} now"),
            Command::MigrateMany { apps } => {
                format!(
                    "Migrate {} apps now, one after the other: {}",
                    apps.len(),
                    apps.join(", ")
                )
            }
            Command::Retry { app, remediation } => {
                format!("Retry {app} with remediation {remediation}")
            }
            Command::Rollback { app } => format!("Roll {app} back onto OLD"),
            Command::MarkManual { app, .. } => format!("Mark {app}'s failure for manual handling"),
            Command::RunBatch { batch } => format!("Start batch {batch} in every region"),
            Command::RegionPause { region } => format!("Pause region {region}"),
            Command::RegionResume { region } => format!("Resume region {region}"),
            Command::RegionStop { region } => {
                format!("Stop region {region} after its current migrations")
            }
            Command::CancelRun => "Cancel the running fleet run (running apps roll back)".into(),
            Command::SavePlan { plan, .. } => format!(
                "Save the edited plan ({} batches) as the night's plan",
                plan.batches.len()
            ),
            Command::Replan(p) => format!(
                "Plan again: seed {}, batches of {}{}",
                p.seed,
                p.batch_size,
                if p.exclude.is_empty() {
                    String::new()
                } else {
                    format!(", excluding {}", p.exclude.join(", "))
                }
            ),
        }
    }

    /// Does it touch a database or an app (danger styling in the confirmation)?
    pub fn dangerous(&self) -> bool {
        !matches!(
            self,
            Command::Replan(_) | Command::MarkManual { .. } | Command::SavePlan { .. }
        )
    }

    /// The app whose steps the operator wants to watch once it starts.
    pub fn app(&self) -> Option<&str> {
        match self {
            Command::Migrate { app } | Command::Retry { app, .. } | Command::Rollback { app } => {
                Some(app)
            }
            Command::MigrateMany { apps } => apps.first().map(String::as_str),
            _ => None,
        }
    }
}

/// Work for the loop: run a command, or load what a view shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Run(Command),
    /// Load an app's newest run (steps and log tail) into the single-app view.
    WatchApp(String),
    LoadFailures,
    /// Run `pgshift preflight --json` and report its findings.
    Preflight,
    /// Re-read app states and the current view now (a child just finished).
    Refresh,
    /// The whole step log behind a failure.
    LoadFailureLog {
        failure_id: i64,
        step_id: i64,
    },
    LoadRun,
    LoadPlan,
    LoadReport,
    /// Write lines to a file under the state dir's `console/` and say where.
    SaveLog {
        app: String,
        lines: Vec<String>,
    },
}
