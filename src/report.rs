//! The night's summary — `pgshift report` and the console's Report view draw the same model:
//! migrations and databases, success rate, failures by class with their share (as they
//! happened, and what remained open after remedies), per region, durations, the time each
//! app was paused, and the backups kept. Built by a pure function from what the store holds.

mod load;
mod markdown;

pub use load::{backups, downtime, load};

use serde::Serialize;

use crate::domain::{AppState, FleetState};
use crate::store::AppRunSpan;

/// One app as the report counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppOutcome {
    pub name: String,
    pub region: String,
    pub candidate: bool,
    /// Its state in the store (pending when none), or not a candidate.
    pub state: FleetState,
}

/// A backup pgshift keeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupLine {
    pub app: String,
    pub path: String,
    pub size_bytes: i64,
    pub taken_at: String,
    /// When retention may delete it; `None`: kept until an operator removes it.
    pub expires_at: Option<String>,
}

/// How long pgshift kept an app behind its maintenance page (pause → unpause), per pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downtime {
    pub app: String,
    pub run_id: i64,
    /// pgshift's own paused interval; `None` while still paused.
    pub paused_seconds: Option<f64>,
    /// What the prober (`--probe`) observed of this pause: first to last maintenance answer.
    pub observed_seconds: Option<f64>,
}

/// What the report is built from.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub apps: Vec<AppOutcome>,
    /// Regions in inventory order.
    pub regions: Vec<String>,
    /// Every app's passes, oldest first.
    pub spans: Vec<AppRunSpan>,
    /// The class of every failure recorded, open or closed.
    pub failures: Vec<String>,
    /// The class of every failure still open (what remedies did not clear).
    pub open_failures: Vec<String>,
    pub downtime: Vec<Downtime>,
    pub backups: Vec<BackupLine>,
    /// Only this run (`report --run N`).
    pub run: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassShare {
    pub class: String,
    pub count: usize,
    /// Of all failures in the same list, 0–1.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionLine {
    pub name: String,
    pub candidates: usize,
    pub migrated: usize,
    pub failed: usize,
    /// migrated ÷ (migrated + failed), when either happened.
    pub success_rate: Option<f64>,
}

/// The night in figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub run: Option<i64>,
    pub candidates: usize,
    pub migrated: usize,
    pub failed: usize,
    pub rolled_back: usize,
    pub running: usize,
    /// One database per migrated app's PostgreSQL service.
    pub databases_moved: usize,
    /// migrated ÷ (migrated + failed + rolled back), when anything finished.
    pub success_rate: Option<f64>,
    /// Seconds each migrated app's last complete pass took, ascending.
    pub durations: Vec<f64>,
    pub failures_happened: Vec<ClassShare>,
    pub failures_remaining: Vec<ClassShare>,
    pub regions: Vec<RegionLine>,
    pub downtime: Vec<Downtime>,
    pub backups: Vec<BackupLine>,
}

impl Report {
    /// The duration at quantile `q` (0–1) of the migrated apps, if any.
    pub fn duration_at(&self, q: f64) -> Option<f64> {
        if self.durations.is_empty() {
            return None;
        }
        let i = ((self.durations.len() - 1) as f64 * q).round() as usize;
        self.durations.get(i).copied()
    }
}

fn shares(classes: &[String]) -> Vec<ClassShare> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for c in classes {
        match counts.iter_mut().find(|(k, _)| k == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.clone(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total = classes.len().max(1) as f64;
    counts
        .into_iter()
        .map(|(class, count)| ClassShare {
            class,
            count,
            share: count as f64 / total,
        })
        .collect()
}

fn seconds(a: Option<&str>, b: Option<&str>) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(a?).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(b?).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

/// The report of `input` (pure).
pub fn build(input: &Input) -> Report {
    let spans: Vec<&AppRunSpan> = input
        .spans
        .iter()
        .filter(|s| input.run.is_none_or(|r| s.run_id == r))
        .collect();
    // With --run, an app's outcome is its pass in that run; otherwise the store's state.
    let state_of = |a: &AppOutcome| -> FleetState {
        match input.run {
            None => a.state,
            Some(_) => FleetState::App(match spans.iter().rev().find(|s| s.app == a.name) {
                Some(s) if s.failed > 0 => AppState::Failed,
                Some(s) if s.unfinished > 0 => AppState::Running,
                Some(_) => AppState::Migrated,
                None => AppState::Pending,
            }),
        }
    };
    let cands: Vec<(&AppOutcome, FleetState)> = input
        .apps
        .iter()
        .filter(|a| a.candidate)
        .map(|a| (a, state_of(a)))
        .collect();
    let count = |s: AppState| cands.iter().filter(|(_, st)| *st == s).count();
    let (migrated, failed, rolled_back) = (
        count(AppState::Migrated),
        count(AppState::Failed),
        count(AppState::RolledBack),
    );
    let finished = migrated + failed + rolled_back;

    let mut last_ok: std::collections::HashMap<&str, &AppRunSpan> = Default::default();
    for s in spans.iter().filter(|s| s.failed == 0 && s.unfinished == 0) {
        last_ok.insert(s.app.as_str(), s);
    }
    let mut durations: Vec<f64> = cands
        .iter()
        .filter(|(_, st)| *st == AppState::Migrated)
        .filter_map(|(a, _)| {
            let s = last_ok.get(a.name.as_str())?;
            seconds(s.started_at.as_deref(), s.finished_at.as_deref())
        })
        .collect();
    durations.sort_by(f64::total_cmp);

    let regions = input
        .regions
        .iter()
        .map(|r| {
            let here: Vec<_> = cands.iter().filter(|(a, _)| a.region == *r).collect();
            let m = here
                .iter()
                .filter(|(_, st)| *st == AppState::Migrated)
                .count();
            let f = here
                .iter()
                .filter(|(_, st)| *st == AppState::Failed)
                .count();
            RegionLine {
                name: r.clone(),
                candidates: here.len(),
                migrated: m,
                failed: f,
                success_rate: (m + f > 0).then(|| m as f64 / (m + f) as f64),
            }
        })
        .collect();

    let in_run = |run_id: Option<i64>| input.run.is_none() || run_id == input.run;
    Report {
        run: input.run,
        candidates: cands.len(),
        migrated,
        failed,
        rolled_back,
        running: count(AppState::Running),
        databases_moved: migrated,
        success_rate: (finished > 0).then(|| migrated as f64 / finished as f64),
        durations,
        failures_happened: shares(&input.failures),
        failures_remaining: shares(&input.open_failures),
        regions,
        downtime: input
            .downtime
            .iter()
            .filter(|d| in_run(Some(d.run_id)))
            .cloned()
            .collect(),
        backups: input.backups.clone(),
    }
}

/// Seconds as an operator reads them: "4.2 s", "42 s", "3 m 05 s", "2 h 10 m".
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if secs < 10.0 {
        format!("{:.1} s", secs.max(0.0))
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} m {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, region: &str, state: &str) -> AppOutcome {
        AppOutcome {
            name: name.into(),
            region: region.into(),
            candidate: true,
            state: match state {
                "not-candidate" => FleetState::NotCandidate,
                s => FleetState::App(s.parse().expect("an app state")),
            },
        }
    }

    fn span(run: i64, app: &str, a: &str, b: &str, failed: i64) -> AppRunSpan {
        AppRunSpan {
            run_id: run,
            app: app.into(),
            region: "r1".into(),
            started_at: Some(a.into()),
            finished_at: Some(b.into()),
            failed,
            unfinished: 0,
        }
    }

    #[test]
    fn figures_shares_and_regions_follow_the_outcomes() {
        let input = Input {
            apps: vec![
                app("a", "r1", "migrated"),
                app("b", "r1", "failed"),
                app("c", "r2", "migrated"),
                app("d", "r2", "migrated"),
                AppOutcome {
                    candidate: false,
                    ..app("e", "r2", "not-candidate")
                },
            ],
            regions: vec!["r1".into(), "r2".into()],
            spans: vec![
                span(1, "a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z", 0),
                span(1, "b", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", 1),
                span(1, "c", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", 0),
                span(2, "d", "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", 0),
            ],
            failures: vec!["libpq-scram".into(), "libpq-scram".into(), "timeout".into()],
            open_failures: vec!["timeout".into()],
            ..Input::default()
        };
        let r = build(&input);
        assert_eq!((r.candidates, r.migrated, r.failed), (4, 3, 1));
        assert_eq!(r.success_rate, Some(0.75));
        assert_eq!(r.durations, vec![10.0, 30.0, 60.0]);
        assert_eq!(r.failures_happened[0].class, "libpq-scram");
        assert!((r.failures_happened[0].share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.failures_remaining[0].share, 1.0);
        assert_eq!(r.regions[1].success_rate, Some(1.0));
        // Only run 2: d migrated there; the others had no pass in it.
        let only = build(&Input {
            run: Some(2),
            ..input
        });
        assert_eq!((only.migrated, only.failed), (1, 0));
        assert_eq!(only.durations, vec![10.0]);
    }
}
