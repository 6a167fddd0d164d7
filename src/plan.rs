//! Planning a night: candidates grouped by region, shuffled with a seed (the same seed gives
//! the same plan), a canary batch of small low-risk apps first, then batches that spread big
//! databases and one customer's apps apart, each with an estimated duration against the
//! window. Pure: sizes and throughput come in as data.

pub mod edit;

use std::collections::HashMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::inventory::{App, Inventory};
use crate::runbook::{Runbook, Throughput, estimated_seconds};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanParams {
    pub seed: u64,
    pub batch_size: usize,
    /// Apps in each region's canary batch (0: none).
    pub canary: usize,
    pub window_seconds: u64,
    /// Only these regions (empty: all).
    #[serde(default)]
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub region: String,
    pub index: usize,
    pub canary: bool,
    pub estimated_seconds: f64,
    /// When this batch ends, counted from the region's start.
    pub ends_after_seconds: f64,
    pub fits_window: bool,
    /// App names in run order.
    pub apps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub seed: u64,
    pub batch_size: usize,
    pub canary: usize,
    pub window_seconds: u64,
    pub batches: Vec<Batch>,
    /// Apps left out by the operator.
    #[serde(default)]
    pub excluded: Vec<String>,
}

impl Plan {
    pub fn apps(&self) -> impl Iterator<Item = &str> {
        self.batches
            .iter()
            .flat_map(|b| b.apps.iter().map(String::as_str))
    }
}

/// What the planner knows of one candidate.
struct Candidate<'a> {
    app: &'a App,
    bytes: u64,
    seconds: f64,
    risky: bool,
}

/// An app's estimated migration time: every step of the runbook on its size.
pub fn app_seconds(runbook: &Runbook, bytes: u64, t: &Throughput) -> f64 {
    runbook
        .steps()
        .map(|steps| {
            steps
                .iter()
                .map(|s| estimated_seconds(&s.kind, bytes, t))
                .sum()
        })
        .unwrap_or(0.0)
}

/// Build the plan. `sizes` maps app name → OLD database bytes (unknown: 10 MB).
pub fn plan(
    inv: &Inventory,
    runbook: &Runbook,
    p: &PlanParams,
    sizes: &HashMap<String, u64>,
    throughput: &Throughput,
    excluded: &[String],
) -> Plan {
    let batch_size = p.batch_size.max(1);
    let mut batches = Vec::new();
    for region in &inv.regions {
        if !p.regions.is_empty() && !p.regions.contains(&region.name) {
            continue;
        }
        let mut cands: Vec<Candidate> = inv
            .apps_in(&region.name)
            .filter(|a| runbook.applies_to(a) && !excluded.contains(&a.name))
            .map(|a| {
                let bytes = sizes.get(&a.name).copied().unwrap_or(10_000_000);
                Candidate {
                    app: a,
                    bytes,
                    seconds: app_seconds(runbook, bytes, throughput),
                    risky: !a.client.supports_scram(),
                }
            })
            .collect();
        // The region's own stream of the seed: adding a region does not reshuffle the others.
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ fnv(&region.name));
        cands.shuffle(&mut rng);

        let mut region_batches: Vec<Vec<usize>> = Vec::new();
        let mut taken = vec![false; cands.len()];
        if p.canary > 0 && !cands.is_empty() {
            // Small, low-risk apps, stage before live, in shuffled order among equals.
            let mut order: Vec<usize> = (0..cands.len()).filter(|&i| !cands[i].risky).collect();
            order.sort_by_key(|&i| {
                (
                    cands[i].app.environment != crate::inventory::Environment::Stage,
                    cands[i].bytes,
                )
            });
            let mut canary = Vec::new();
            for i in order {
                if canary.len() == p.canary {
                    break;
                }
                if canary
                    .iter()
                    .any(|&j: &usize| cands[j].app.customer == cands[i].app.customer)
                {
                    continue;
                }
                canary.push(i);
                taken[i] = true;
            }
            if !canary.is_empty() {
                region_batches.push(canary);
            }
        }
        let rest: Vec<usize> = (0..cands.len()).filter(|&i| !taken[i]).collect();
        let n = rest.len().div_ceil(batch_size);
        let first = region_batches.len();
        region_batches.extend((0..n).map(|_| Vec::new()));
        let mut load = vec![0u64; n];
        // Most constrained first (customers with the most apps), biggest first among equals,
        // each into the lightest batch with room and without that customer (or, when
        // unavoidable, the lightest with room): customers and big databases spread.
        let mut per_customer: HashMap<&str, usize> = HashMap::new();
        for &i in &rest {
            *per_customer
                .entry(cands[i].app.customer.as_str())
                .or_default() += 1;
        }
        let mut by_size = rest.clone();
        by_size.sort_by_key(|&i| {
            (
                std::cmp::Reverse(per_customer[cands[i].app.customer.as_str()]),
                std::cmp::Reverse(cands[i].bytes),
            )
        });
        for i in by_size {
            let room = |b: usize| region_batches[first + b].len() < batch_size;
            let no_customer = |b: usize| {
                !region_batches[first + b]
                    .iter()
                    .any(|&j| cands[j].app.customer == cands[i].app.customer)
            };
            let pick = (0..n)
                .filter(|&b| room(b) && no_customer(b))
                .min_by_key(|&b| (load[b], b))
                .or_else(|| (0..n).filter(|&b| room(b)).min_by_key(|&b| (load[b], b)));
            if let Some(b) = pick {
                region_batches[first + b].push(i);
                load[b] += cands[i].bytes;
            }
        }
        let mut elapsed = 0.0;
        for (k, mut members) in region_batches.into_iter().enumerate() {
            // Run order inside a batch: the shuffled order.
            members.sort_unstable();
            let secs: Vec<f64> = members.iter().map(|&i| cands[i].seconds).collect();
            let est = makespan(&secs, region.concurrency as usize);
            elapsed += est;
            batches.push(Batch {
                region: region.name.clone(),
                index: k,
                canary: p.canary > 0 && k == 0 && first == 1,
                estimated_seconds: est,
                ends_after_seconds: elapsed,
                fits_window: elapsed <= p.window_seconds as f64,
                apps: members.iter().map(|&i| cands[i].app.name.clone()).collect(),
            });
        }
    }
    Plan {
        seed: p.seed,
        batch_size,
        canary: p.canary,
        window_seconds: p.window_seconds,
        batches,
        excluded: excluded.to_vec(),
    }
}

/// Longest-processing-time scheduling onto `lanes` parallel migrations.
pub(crate) fn makespan(secs: &[f64], lanes: usize) -> f64 {
    let mut sorted = secs.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut lane = vec![0.0f64; lanes.max(1)];
    for s in sorted {
        if let Some(min) = lane.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *min += s;
        }
    }
    lane.into_iter().fold(0.0, f64::max)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `4h`, `90m`, `3600` (seconds).
pub fn parse_window(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    crate::runbook::parse_duration(s).map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makespan_packs_lanes() {
        assert_eq!(makespan(&[4.0, 3.0, 3.0, 2.0], 2), 6.0);
        // LPT is an approximation: the optimum here is 6 (3+3 | 2+2+2), LPT says 7.
        assert_eq!(makespan(&[3.0, 3.0, 2.0, 2.0, 2.0], 2), 7.0);
        assert_eq!(makespan(&[5.0], 4), 5.0);
        assert_eq!(makespan(&[], 2), 0.0);
    }
}
