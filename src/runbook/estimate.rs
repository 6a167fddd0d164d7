//! How long a step should take, from the instance's size and observed throughput.

use super::StepKind;

/// Bytes per second a kind of step moves; defaults until the store has observed better.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub dump_bps: f64,
    pub restore_bps: f64,
    pub verify_bps: f64,
}

impl Default for Throughput {
    fn default() -> Self {
        // Conservative figures for a 2-core machine: restore builds indexes, so it is slowest.
        Self {
            dump_bps: 80e6,
            restore_bps: 40e6,
            verify_bps: 120e6,
        }
    }
}

/// Estimated execution time of a step on a database of `size_bytes`.
pub fn estimated_seconds(kind: &StepKind, size_bytes: u64, t: &Throughput) -> f64 {
    let size = size_bytes as f64;
    match kind {
        StepKind::Backup => 1.0 + size / t.dump_bps,
        StepKind::Restore => 2.0 + size / t.restore_bps,
        StepKind::Verify => 1.0 + size / t.verify_bps,
        // gzip of the dump's data files, about a third of OLD's size (indexes are not dumped).
        StepKind::CompressBackup => 1.0 + size / 3.0 / 40e6,
        StepKind::Reprovision => 1.0,
        StepKind::Redeploy => 3.0,
        StepKind::Subscribe | StepKind::CatchUp | StepKind::Sync => 1.0,
        StepKind::Collect
        | StepKind::Pause
        | StepKind::Enable
        | StepKind::Unpause
        | StepKind::Health
        | StepKind::ScheduleDeprovision => 0.2,
    }
}
