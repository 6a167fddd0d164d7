//! The report as Markdown (`pgshift report --format md`).

use std::fmt::Write;

use super::{ClassShare, Report};

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |r| format!("{:.1} %", r * 100.0))
}

/// `1 h 02 m`, `3 m 05 s`, `12.3 s` — as the console shows durations.
pub fn duration(s: f64) -> String {
    super::duration(s)
}

fn classes(out: &mut String, title: &str, list: &[ClassShare]) {
    let _ = writeln!(out, "\n## {title}\n");
    if list.is_empty() {
        let _ = writeln!(out, "none");
        return;
    }
    let _ = writeln!(out, "| class | failures | share |\n|---|---:|---:|");
    for c in list {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} % |",
            c.class,
            c.count,
            c.share * 100.0
        );
    }
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let title = match self.run {
            Some(r) => format!("# pgshift report: run {r}"),
            None => "# pgshift report: the night".to_string(),
        };
        let _ = writeln!(out, "{title}\n");
        let _ = writeln!(
            out,
            "- migrated: {} of {} candidates\n- failed: {}\n- rolled back: {}\n- running: {}\n- databases moved: {}\n- success rate: {}",
            self.migrated,
            self.candidates,
            self.failed,
            self.rolled_back,
            self.running,
            self.databases_moved,
            pct(self.success_rate)
        );
        let d = |q: f64| self.duration_at(q).map_or("—".into(), duration);
        let _ = writeln!(
            out,
            "- durations: median {} · p95 {} · max {}",
            d(0.5),
            d(0.95),
            d(1.0)
        );
        classes(
            &mut out,
            "Failures by class, as they happened",
            &self.failures_happened,
        );
        classes(
            &mut out,
            "Failures by class, still open after remedies",
            &self.failures_remaining,
        );
        let _ = writeln!(
            out,
            "\n## Per region\n\n| region | candidates | migrated | failed | success |\n|---|---:|---:|---:|---:|"
        );
        for r in &self.regions {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.name,
                r.candidates,
                r.migrated,
                r.failed,
                pct(r.success_rate)
            );
        }
        let _ = writeln!(
            out,
            "\n## Downtime per app\n\npgshift's paused interval (pause → unpause); observed: what a prober recorded, if one did.\n"
        );
        if self.downtime.is_empty() {
            let _ = writeln!(out, "no app was paused");
        } else {
            let _ = writeln!(
                out,
                "| app | run | paused | observed |\n|---|---:|---:|---:|"
            );
            for t in &self.downtime {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    t.app,
                    t.run_id,
                    t.paused_seconds.map_or("still paused".into(), duration),
                    t.observed_seconds.map_or("—".into(), duration)
                );
            }
        }
        let _ = writeln!(out, "\n## Backups kept\n");
        if self.backups.is_empty() {
            let _ = writeln!(out, "none");
        } else {
            let _ = writeln!(
                out,
                "| app | size | taken | expires | path |\n|---|---:|---|---|---|"
            );
            for b in &self.backups {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} MB | {} | {} | {} |",
                    b.app,
                    b.size_bytes as f64 / 1e6,
                    b.taken_at,
                    b.expires_at.as_deref().unwrap_or("kept (no retention)"),
                    b.path
                );
            }
        }
        out
    }
}
