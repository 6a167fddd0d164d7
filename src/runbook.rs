//! Runbooks as data: preconditions and a closed set of operations (nesting allowed), loaded
//! from TOML with `file:line` errors, flattened into the steps the engine runs, each with an
//! estimated execution time. Knows nothing of terminals or the store's schema.

mod estimate;

pub use estimate::{Throughput, estimated_seconds};

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::inventory::{App, ServiceKind, Strategy};

/// The seed's runbook, compiled in.
pub const PG13_TO_PG15: &str = include_str!("../fixtures/runbooks/pg13-to-pg15.toml");
/// The key of a run's params that names its runbook file.
const RUNBOOK_FILE: &str = "runbook_file";

pub const PG13_TO_PG15_NAME: &str = "fixtures/runbooks/pg13-to-pg15.toml (built in)";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub name: String,
    /// The file it was loaded from (None: the built-in one); recorded with each run so that
    /// `resume` continues with the runbook the run started with.
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub preconditions: Vec<Precondition>,
    /// Apps whose inventory size is at least this many MB use the logical strategy unless
    /// they choose one themselves (`strategy = "dump"` in the inventory); none: dump.
    #[serde(default)]
    pub logical_from_mb: Option<f64>,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Precondition {
    HasServiceInstance {
        service: String,
        #[serde(default = "yes")]
        provisioned: bool,
    },
}

fn yes() -> bool {
    true
}

/// The closed set of operations a runbook can use.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Find the app's service instances the preconditions matched.
    CollectServiceInstances {},
    /// A NEW instance per collected one, of the overridden service, with runtime options copied.
    ReprovisionCollectedServiceInstances {
        overrides: BTreeMap<String, String>,
        #[serde(default)]
        copy_runtime_options: bool,
    },
    /// Pause the app behind a maintenance page for exactly the inner operations.
    WithMaintenancePage {
        #[serde(default = "yes")]
        pause: bool,
        operations: Vec<Operation>,
    },
    /// pg_dump of OLD, kept as a listed backup until `keep` has passed (default: as long as
    /// OLD is kept, the deprovision's `after`), its data files gzipped once the app serves
    /// again unless `compress = false`.
    BackupCollectedServices {
        #[serde(default)]
        notes: String,
        #[serde(default)]
        keep: Option<String>,
        #[serde(default = "yes")]
        compress: bool,
    },
    /// pg_restore of the backup into NEW (followed by verification, always).
    RestoreBackupToReprovisionedServices {},
    /// Point the app's DATABASE_URL at NEW.
    EnableReprovisionedServices {},
    /// Deploy the app again; its health check must pass against the enabled database.
    Redeploy {},
    /// Drop OLD, only after `after` has passed and with explicit confirmation.
    DeprovisionCollectedServiceInstances { after: String },
}

/// What one step of an app's step machine does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Collect,
    Reprovision,
    Pause,
    Backup,
    Restore,
    Verify,
    Enable,
    Unpause,
    Redeploy,
    /// A real request to the app through its route, after it serves again.
    Health,
    /// Gzip the backup's data files, after the app serves again (off the paused path).
    CompressBackup,
    /// Recorded so the operator sees when OLD may go; never executed in the same run.
    ScheduleDeprovision,
    /// Logical strategy: a subscription on NEW to the slot the backup was taken in.
    Subscribe,
    /// Logical strategy: NEW applies what OLD took since the snapshot, app serving from OLD.
    CatchUp,
    /// Logical strategy, behind the page: NEW has every change (lag 0), sequences copied,
    /// row counts compared, then subscription, slot and publication dropped.
    Sync,
}

impl StepKind {
    pub fn id(&self) -> &'static str {
        match self {
            StepKind::Collect => "collect",
            StepKind::Reprovision => "reprovision",
            StepKind::Pause => "pause",
            StepKind::Backup => "backup",
            StepKind::Restore => "restore",
            StepKind::Verify => "verify",
            StepKind::Enable => "enable",
            StepKind::Unpause => "unpause",
            StepKind::Redeploy => "redeploy",
            StepKind::Health => "health",
            StepKind::CompressBackup => "compress_backup",
            StepKind::ScheduleDeprovision => "schedule_deprovision",
            StepKind::Subscribe => "subscribe",
            StepKind::CatchUp => "catch_up",
            StepKind::Sync => "sync",
        }
    }

    /// Whether the step changes anything outside pgshift (a server, a file, the app). Only
    /// such a step needs its start made durable before its work: after a crash, a step that
    /// changed nothing is simply run again.
    pub fn changes_the_world(&self) -> bool {
        !matches!(
            self,
            StepKind::Collect
                | StepKind::Verify
                | StepKind::Health
                | StepKind::ScheduleDeprovision
                | StepKind::CatchUp
        )
    }

    pub fn from_id(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// A step with the parameters its operation gave it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Service name overrides (`postgresql-database-13` → `postgresql-database-15`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    #[serde(default)]
    pub copy_runtime_options: bool,
    /// For `schedule_deprovision`: how long OLD is kept; for `backup`: how long the backup
    /// is kept (its expiry, for `pgshift backups sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seconds: Option<u64>,
    /// For `backup`: taken in a logical replication slot's snapshot (the logical strategy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logical: bool,
}

impl Step {
    fn new(kind: StepKind) -> Self {
        Self {
            kind,
            notes: None,
            overrides: BTreeMap::new(),
            copy_runtime_options: false,
            after_seconds: None,
            logical: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{col}: {message}")]
pub struct RunbookError {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Runbook {
    pub fn builtin() -> Self {
        Self::parse(PG13_TO_PG15, PG13_TO_PG15_NAME).expect("the built-in runbook is valid")
    }

    /// Note a run's runbook file in its params (nothing for the built-in one).
    pub fn record_in(&self, params: &mut serde_json::Value) {
        if let Some(f) = &self.file {
            params[RUNBOOK_FILE] = f.display().to_string().into();
        }
    }

    /// The runbook file a run's params recorded, if it was not the built-in one.
    pub fn recorded(params: &str) -> Option<std::path::PathBuf> {
        let v: serde_json::Value = serde_json::from_str(params).ok()?;
        v[RUNBOOK_FILE].as_str().map(Into::into)
    }

    pub fn load(path: &Path) -> Result<Self, RunbookError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RunbookError {
            path: name.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read runbook: {e}"),
        })?;
        let mut rb = Self::parse(&text, &name)?;
        rb.file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(rb)
    }

    pub fn parse(text: &str, name: &str) -> Result<Self, RunbookError> {
        let err = |offset: usize, message: String| {
            let (line, col) = crate::inventory::line_col(text, offset);
            RunbookError {
                path: name.to_string(),
                line,
                col,
                message,
            }
        };
        let rb: Runbook = toml::from_str(text).map_err(|e| {
            err(
                e.span().map_or(0, |s| s.start),
                e.message().lines().next().unwrap_or("").to_string(),
            )
        })?;
        // Semantic checks need positions too: find the offending key in the text.
        let at = |needle: &str| text.find(needle).unwrap_or(0);
        if rb.operations.is_empty() {
            return Err(err(0, "a runbook needs at least one operation".into()));
        }
        if rb.name.trim().is_empty() {
            return Err(err(at("name"), "the runbook's name is empty".into()));
        }
        if rb.preconditions.is_empty() {
            return Err(err(
                0,
                "a runbook needs at least one precondition (has_service_instance = { service = \"postgresql-database-13\" }): without one every app would be a candidate".into(),
            ));
        }
        for p in &rb.preconditions {
            let Precondition::HasServiceInstance { service, .. } = p;
            if !matches!(
                ServiceKind::from_service_name(service),
                ServiceKind::Postgres { .. }
            ) {
                return Err(err(
                    at(service),
                    format!(
                        "precondition service \"{service}\" is not a PostgreSQL service (postgresql-database-N)"
                    ),
                ));
            }
        }
        let steps = rb.steps().map_err(|(needle, m)| err(at(needle), m))?;
        let has = |k: StepKind| steps.iter().any(|s| s.kind == k);
        if has(StepKind::Restore) && !has(StepKind::Backup) {
            return Err(err(
                at("restore_backup_to_reprovisioned_services"),
                "restore_backup_to_reprovisioned_services needs a backup_collected_services before it".into(),
            ));
        }
        let collected = rb.collected_services();
        for step in steps.iter().filter(|s| s.kind == StepKind::Reprovision) {
            for (from, to) in &step.overrides {
                let quoted = |x: &str| at(&format!("\"{x}\""));
                let (ServiceKind::Postgres { major: a }, ServiceKind::Postgres { major: b }) = (
                    ServiceKind::from_service_name(from),
                    ServiceKind::from_service_name(to),
                ) else {
                    let bad = if matches!(
                        ServiceKind::from_service_name(from),
                        ServiceKind::Postgres { .. }
                    ) {
                        to
                    } else {
                        from
                    };
                    return Err(err(
                        quoted(bad),
                        format!(
                            "override \"{from}\" = \"{to}\" must map a PostgreSQL service to a PostgreSQL service (postgresql-database-N)"
                        ),
                    ));
                };
                if b <= a {
                    return Err(err(
                        quoted(to),
                        format!(
                            "override \"{from}\" = \"{to}\" does not move to a newer major ({a} → {b})"
                        ),
                    ));
                }
                if !collected.contains(&from.as_str()) {
                    return Err(err(
                        quoted(from),
                        format!(
                            "override of \"{from}\": no precondition collects that service ({})",
                            collected.join(", ")
                        ),
                    ));
                }
            }
        }
        if has(StepKind::Enable) && !has(StepKind::Restore) {
            return Err(err(
                at("enable_reprovisioned_services"),
                "enable_reprovisioned_services needs a restore before it: NEW would be empty"
                    .into(),
            ));
        }
        Ok(rb)
    }

    /// Does the app meet every precondition?
    pub fn applies_to(&self, app: &App) -> bool {
        self.preconditions.iter().all(|p| match p {
            Precondition::HasServiceInstance {
                service,
                provisioned,
            } => app
                .services
                .iter()
                .any(|s| s.service == *service && s.provisioned == *provisioned),
        })
    }

    /// The services the preconditions name (what `collect_service_instances` collects).
    pub fn collected_services(&self) -> Vec<&str> {
        self.preconditions
            .iter()
            .map(|p| match p {
                Precondition::HasServiceInstance { service, .. } => service.as_str(),
            })
            .collect()
    }

    /// The operations flattened into steps: the maintenance page becomes pause … unpause, and
    /// verification follows every restore.
    pub fn steps(&self) -> Result<Vec<Step>, (&'static str, String)> {
        let mut out = Vec::new();
        let mut compress = false;
        flatten(&self.operations, &mut out, false, &mut compress)?;
        // A backup without its own `keep` is kept as long as OLD is.
        let old_kept = out
            .iter()
            .find(|s| s.kind == StepKind::ScheduleDeprovision)
            .and_then(|s| s.after_seconds);
        for s in out.iter_mut().filter(|s| s.kind == StepKind::Backup) {
            s.after_seconds = s.after_seconds.or(old_kept);
        }
        // Compression once the app serves again: after its health check, else before the
        // deprovision is scheduled, else last.
        if compress && let Some(b) = out.iter().position(|s| s.kind == StepKind::Backup) {
            let at = out[b..]
                .iter()
                .position(|s| s.kind == StepKind::Health)
                .map(|k| b + k + 1)
                .or_else(|| {
                    out[b..]
                        .iter()
                        .position(|s| s.kind == StepKind::ScheduleDeprovision)
                        .map(|k| b + k)
                })
                .unwrap_or(out.len());
            out.insert(at, Step::new(StepKind::CompressBackup));
        }
        Ok(out)
    }

    /// The strategy an app asks for, and why: its own inventory setting, else the runbook's
    /// size threshold, else dump. Whether OLD allows it is preflight's and the engine's call.
    pub fn strategy_for(&self, app: &App) -> (Strategy, String) {
        if let Some(s) = app.strategy {
            return (
                s,
                format!("the inventory sets strategy = \"{s}\" for {}", app.name),
            );
        }
        let size: f64 = app.services.iter().filter_map(|s| s.size_mb).sum();
        match self.logical_from_mb {
            Some(from) if size >= from => (
                Strategy::Logical,
                format!(
                    "{} is {size:.0} MB, at least the runbook's logical_from_mb = {from}",
                    app.name
                ),
            ),
            _ => (Strategy::Dump, "the default strategy".into()),
        }
    }

    /// The steps of the given strategy. Logical: the backup (in a replication slot's
    /// snapshot), restore and verification move before the maintenance page, then a
    /// subscription catches NEW up while the app serves from OLD; behind the page only `sync`
    /// (lag 0, sequences, counts, replication dropped) comes before enable.
    pub fn steps_for(&self, strategy: Strategy) -> Result<Vec<Step>, (&'static str, String)> {
        let steps = self.steps()?;
        if strategy == Strategy::Dump {
            return Ok(steps);
        }
        let early =
            |k: &StepKind| matches!(k, StepKind::Backup | StepKind::Restore | StepKind::Verify);
        let mut moved: Vec<Step> = steps.iter().filter(|s| early(&s.kind)).cloned().collect();
        for s in moved.iter_mut().filter(|s| s.kind == StepKind::Backup) {
            s.logical = true;
        }
        let mut out = Vec::new();
        let mut placed = false;
        let place = |out: &mut Vec<Step>, moved: &mut Vec<Step>| {
            out.append(moved);
            out.push(Step::new(StepKind::Subscribe));
            out.push(Step::new(StepKind::CatchUp));
        };
        for s in steps.into_iter().filter(|s| !early(&s.kind)) {
            match s.kind {
                StepKind::Pause if !placed => {
                    place(&mut out, &mut moved);
                    placed = true;
                    out.push(s);
                    out.push(Step::new(StepKind::Sync));
                }
                StepKind::Enable if !placed => {
                    place(&mut out, &mut moved);
                    placed = true;
                    out.push(Step::new(StepKind::Sync));
                    out.push(s);
                }
                _ => out.push(s),
            }
        }
        if !placed {
            return Err((
                "enable_reprovisioned_services",
                "the logical strategy needs an enable_reprovisioned_services step".into(),
            ));
        }
        Ok(out)
    }

    /// The major version NEW gets, from the reprovision overrides (`…-13` → `…-15`).
    pub fn target_major(&self) -> Option<u32> {
        self.steps().ok()?.iter().find_map(|s| {
            s.overrides
                .values()
                .find_map(|v| match ServiceKind::from_service_name(v) {
                    ServiceKind::Postgres { major } => Some(major),
                    ServiceKind::Other => None,
                })
        })
    }
}

fn flatten(
    ops: &[Operation],
    out: &mut Vec<Step>,
    paused: bool,
    compress: &mut bool,
) -> Result<(), (&'static str, String)> {
    for op in ops {
        match op {
            Operation::CollectServiceInstances {} => out.push(Step::new(StepKind::Collect)),
            Operation::ReprovisionCollectedServiceInstances {
                overrides,
                copy_runtime_options,
            } => {
                if overrides.is_empty() {
                    return Err((
                        "reprovision_collected_service_instances",
                        "reprovision needs overrides, e.g. { \"postgresql-database-13\" = \"postgresql-database-15\" }".into(),
                    ));
                }
                let mut s = Step::new(StepKind::Reprovision);
                s.overrides = overrides.clone();
                s.copy_runtime_options = *copy_runtime_options;
                out.push(s);
            }
            Operation::WithMaintenancePage { pause, operations } => {
                if paused {
                    return Err((
                        "with_maintenance_page",
                        "maintenance pages do not nest".into(),
                    ));
                }
                if *pause {
                    out.push(Step::new(StepKind::Pause));
                }
                flatten(operations, out, *pause, compress)?;
                if *pause {
                    out.push(Step::new(StepKind::Unpause));
                    out.push(Step::new(StepKind::Health));
                }
            }
            Operation::BackupCollectedServices {
                notes,
                keep,
                compress: c,
            } => {
                let mut s = Step::new(StepKind::Backup);
                s.notes = Some(notes.clone());
                if let Some(keep) = keep {
                    let Some(d) = parse_duration(keep) else {
                        return Err((
                            "keep =",
                            format!(
                                "keep = \"{keep}\" is not a duration like \"14d\", \"36h\" or \"90m\""
                            ),
                        ));
                    };
                    s.after_seconds = Some(d.as_secs());
                }
                *compress |= *c;
                out.push(s);
            }
            Operation::RestoreBackupToReprovisionedServices {} => {
                out.push(Step::new(StepKind::Restore));
                out.push(Step::new(StepKind::Verify));
            }
            Operation::EnableReprovisionedServices {} => out.push(Step::new(StepKind::Enable)),
            Operation::Redeploy {} => out.push(Step::new(StepKind::Redeploy)),
            Operation::DeprovisionCollectedServiceInstances { after } => {
                let Some(d) = parse_duration(after) else {
                    return Err((
                        "deprovision_collected_service_instances",
                        format!(
                            "after = \"{after}\" is not a duration like \"7d\", \"36h\" or \"90m\""
                        ),
                    ));
                };
                let mut s = Step::new(StepKind::ScheduleDeprovision);
                s.after_seconds = Some(d.as_secs());
                out.push(s);
            }
        }
    }
    Ok(())
}

pub use crate::inventory::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_runs_params_record_its_runbook_file_and_only_a_file() {
        let mut params = serde_json::json!({ "app": "a" });
        Runbook::builtin().record_in(&mut params);
        assert_eq!(params, serde_json::json!({ "app": "a" }));
        assert_eq!(Runbook::recorded(&params.to_string()), None);
        let rb = Runbook::load(Path::new("fixtures/runbooks/pg13-to-pg15.toml")).expect("load");
        rb.record_in(&mut params);
        let file = Runbook::recorded(&params.to_string()).expect("recorded");
        assert!(file.is_absolute() && file.ends_with("fixtures/runbooks/pg13-to-pg15.toml"));
        assert_eq!(Runbook::load(&file).expect("reload").name, rb.name);
    }

    #[test]
    fn seed_runbook_flattens_with_verify_before_enable() {
        let rb = Runbook::builtin();
        let kinds: Vec<&str> = rb.steps().unwrap().iter().map(|s| s.kind.id()).collect();
        assert_eq!(
            kinds,
            [
                "collect",
                "reprovision",
                "pause",
                "backup",
                "restore",
                "verify",
                "enable",
                "redeploy",
                "unpause",
                "health",
                "compress_backup",
                "schedule_deprovision"
            ]
        );
        assert_eq!(rb.target_major(), Some(15));
        let backup = rb
            .steps()
            .unwrap()
            .into_iter()
            .find(|s| s.kind == StepKind::Backup);
        assert_eq!(
            backup.and_then(|b| b.after_seconds),
            Some(14 * 86_400),
            "the built-in runbook keeps backups 14 days"
        );
        let steps = rb.steps().unwrap();
        assert!(
            steps[3]
                .notes
                .as_deref()
                .unwrap()
                .starts_with("Backup taken prior")
        );
        assert_eq!(steps[11].kind, StepKind::ScheduleDeprovision);
        assert_eq!(steps[11].after_seconds, Some(7 * 86_400));
    }

    #[test]
    fn a_backup_is_kept_as_long_as_old_unless_told_and_compressed_unless_told() {
        let text = PG13_TO_PG15.replace(", keep = \"14d\"", "");
        let rb = Runbook::parse(&text, "rb.toml").expect("valid");
        let steps = rb.steps().unwrap();
        let backup = steps.iter().find(|s| s.kind == StepKind::Backup).unwrap();
        assert_eq!(backup.after_seconds, Some(7 * 86_400), "OLD's retention");
        let off = text.replace("Postgres 15.\" }", "Postgres 15.\", compress = false }");
        assert_ne!(off, text);
        let rb = Runbook::parse(&off, "rb.toml").expect("valid");
        assert!(
            !rb.steps()
                .unwrap()
                .iter()
                .any(|s| s.kind == StepKind::CompressBackup)
        );
        let bad = PG13_TO_PG15.replace("keep = \"14d\"", "keep = \"soon\"");
        let e = Runbook::parse(&bad, "rb.toml").expect_err("bad keep");
        assert!(e.message.contains("keep = \"soon\""), "{e}");
        assert_eq!(e.line, line_of(&bad, "keep = \"soon\""));
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].lines().count()
    }

    #[test]
    fn the_logical_strategy_copies_before_the_page_and_only_syncs_behind_it() {
        let rb = Runbook::builtin();
        let steps = rb.steps_for(Strategy::Logical).unwrap();
        let kinds: Vec<&str> = steps.iter().map(|s| s.kind.id()).collect();
        assert_eq!(
            kinds,
            [
                "collect",
                "reprovision",
                "backup",
                "restore",
                "verify",
                "subscribe",
                "catch_up",
                "pause",
                "sync",
                "enable",
                "redeploy",
                "unpause",
                "health",
                "compress_backup",
                "schedule_deprovision"
            ]
        );
        assert!(steps[2].logical && steps[2].notes.is_some());
        assert_eq!(rb.steps_for(Strategy::Dump).unwrap(), rb.steps().unwrap());
    }

    #[test]
    fn an_apps_own_strategy_wins_over_the_runbooks_size_threshold() {
        let text = format!("{PG13_TO_PG15}\n")
            .replace("description = ", "logical_from_mb = 500.0\ndescription = ");
        let rb = Runbook::parse(&text, "rb.toml").unwrap();
        let inv = crate::inventory::load(&crate::inventory::Source::BuiltinLab).unwrap();
        let mut app = inv.apps[0].clone();
        app.strategy = None;
        for s in &mut app.services {
            s.size_mb = None;
        }
        assert_eq!(rb.strategy_for(&app).0, Strategy::Dump);
        app.services[0].size_mb = Some(800.0);
        let (s, why) = rb.strategy_for(&app);
        assert_eq!(s, Strategy::Logical, "{why}");
        assert!(why.contains("logical_from_mb = 500"), "{why}");
        app.strategy = Some(Strategy::Dump);
        assert_eq!(rb.strategy_for(&app).0, Strategy::Dump);
        assert_eq!(Runbook::builtin().strategy_for(&app).0, Strategy::Dump);
    }

    #[test]
    fn another_runbook_needs_no_code_changes() {
        let text = PG13_TO_PG15
            .replace("postgresql-database-15", "postgresql-database-16")
            .replace(
                "\"postgresql-database-13\" =",
                "\"postgresql-database-15\" =",
            )
            .replace(
                "service = \"postgresql-database-13\"",
                "service = \"postgresql-database-15\"",
            );
        let rb = Runbook::parse(&text, "pg15-to-pg16.toml").unwrap();
        assert_eq!(rb.target_major(), Some(16));
        assert_eq!(rb.collected_services(), ["postgresql-database-15"]);
    }

    #[test]
    fn malformed_runbooks_name_file_and_line() {
        let bad = PG13_TO_PG15.replace("redeploy = {}", "redeploy_twice = {}");
        let e = Runbook::parse(&bad, "rb.toml").unwrap_err();
        let line = bad
            .lines()
            .position(|l| l.contains("redeploy_twice"))
            .unwrap()
            + 1;
        assert_eq!((e.path.as_str(), e.line), ("rb.toml", line), "{e}");
        assert!(
            e.message.contains("unknown variant `redeploy_twice`"),
            "{e}"
        );

        let bad = PG13_TO_PG15.replace("after = \"7d\"", "after = \"a week\"");
        let e = Runbook::parse(&bad, "rb.toml").unwrap_err();
        assert!(e.message.contains("\"a week\" is not a duration"), "{e}");
        assert_eq!(
            e.line,
            bad.lines()
                .position(|l| l.contains("deprovision_collected"))
                .unwrap()
                + 1
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("7d"),
            Some(std::time::Duration::from_secs(604_800))
        );
        assert_eq!(parse_duration("90m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("d"), None);
    }
}
