//! Editing a saved plan before the night: move an app to another batch of its region,
//! leave an app out, or run a region's batch earlier or later. Every edit re-estimates the
//! batches and the window fit; the canary batch stays first. Pure.

use std::collections::HashMap;

use super::{Plan, makespan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Move an app to batch `to` of its own region (an app's region is where its server is).
    Move { app: String, to: usize },
    /// Leave an app out of the plan.
    Exclude { app: String },
    /// Run batch `batch` of `region` at position `to` instead.
    Reorder {
        region: String,
        batch: usize,
        to: usize,
    },
}

/// What the estimates need: each app's seconds, each region's concurrency.
pub struct Estimates<'a> {
    pub app_seconds: &'a HashMap<String, f64>,
    pub concurrency: &'a HashMap<String, usize>,
}

/// Apply one edit, or say why it cannot be done (the plan is then unchanged).
pub fn apply(plan: &mut Plan, edit: &Edit, est: &Estimates) -> Result<(), String> {
    let mut next = plan.clone();
    match edit {
        Edit::Move { app, to } => {
            let (from, pos) = locate(&next, app)?;
            let region = next.batches[from].region.clone();
            let target = next
                .batches
                .iter()
                .position(|b| b.region == region && b.index == *to)
                .ok_or_else(|| {
                    format!(
                        "{region} has no batch {to} (batches {})",
                        indices(&next, &region)
                    )
                })?;
            if target == from {
                return Err(format!("{app} is already in batch {to} of {region}"));
            }
            let name = next.batches[from].apps.remove(pos);
            next.batches[target].apps.push(name);
        }
        Edit::Exclude { app } => {
            let (from, pos) = locate(&next, app)?;
            let name = next.batches[from].apps.remove(pos);
            next.excluded.push(name);
        }
        Edit::Reorder { region, batch, to } => {
            let mine: Vec<usize> = next
                .batches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.region == *region)
                .map(|(i, _)| i)
                .collect();
            if mine.is_empty() {
                return Err(format!("the plan has no batches in region {region}"));
            }
            let k = mine
                .iter()
                .position(|&i| next.batches[i].index == *batch)
                .ok_or_else(|| {
                    format!(
                        "{region} has no batch {batch} (batches {})",
                        indices(&next, region)
                    )
                })?;
            if *to >= mine.len() {
                return Err(format!(
                    "{region} has {} batches: position {to} is past the last",
                    mine.len()
                ));
            }
            let canary_first = next.batches[mine[0]].canary;
            if canary_first && (k == 0 || *to == 0) && k != *to {
                return Err(format!(
                    "the canary batch of {region} runs first: move apps instead"
                ));
            }
            let mut order: Vec<crate::plan::Batch> =
                mine.iter().map(|&i| next.batches[i].clone()).collect();
            let b = order.remove(k);
            order.insert(*to, b);
            for (slot, b) in mine.iter().zip(order) {
                next.batches[*slot] = b;
            }
        }
    }
    reestimate(&mut next, est);
    *plan = next;
    Ok(())
}

fn locate(plan: &Plan, app: &str) -> Result<(usize, usize), String> {
    plan.batches
        .iter()
        .enumerate()
        .find_map(|(b, batch)| batch.apps.iter().position(|a| a == app).map(|p| (b, p)))
        .ok_or_else(|| {
            if plan.excluded.iter().any(|a| a == app) {
                format!("{app} is excluded from this plan")
            } else {
                format!("{app} is not in this plan")
            }
        })
}

fn indices(plan: &Plan, region: &str) -> String {
    let v: Vec<String> = plan
        .batches
        .iter()
        .filter(|b| b.region == region)
        .map(|b| b.index.to_string())
        .collect();
    v.join(", ")
}

/// Drop emptied batches, number each region's batches in order again, and estimate each
/// batch and the window fit anew.
fn reestimate(plan: &mut Plan, est: &Estimates) {
    plan.batches.retain(|b| !b.apps.is_empty());
    let mut elapsed: HashMap<String, f64> = HashMap::new();
    let mut count: HashMap<String, usize> = HashMap::new();
    for b in &mut plan.batches {
        let k = count.entry(b.region.clone()).or_default();
        b.index = *k;
        *k += 1;
        let secs: Vec<f64> = b
            .apps
            .iter()
            .map(|a| est.app_seconds.get(a).copied().unwrap_or(0.0))
            .collect();
        let lanes = est.concurrency.get(&b.region).copied().unwrap_or(1);
        b.estimated_seconds = makespan(&secs, lanes);
        let e = elapsed.entry(b.region.clone()).or_default();
        *e += b.estimated_seconds;
        b.ends_after_seconds = *e;
        b.fits_window = *e <= plan.window_seconds as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Batch;

    fn batch(region: &str, index: usize, canary: bool, apps: &[&str]) -> Batch {
        Batch {
            region: region.into(),
            index,
            canary,
            estimated_seconds: 0.0,
            ends_after_seconds: 0.0,
            fits_window: true,
            apps: apps.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// A plan and the estimates its edits are applied with.
    struct Fixture {
        p: Plan,
        secs: HashMap<String, f64>,
        conc: HashMap<String, usize>,
    }

    impl Fixture {
        fn edit(&mut self, edit: &Edit) -> Result<(), String> {
            let est = Estimates {
                app_seconds: &self.secs,
                concurrency: &self.conc,
            };
            apply(&mut self.p, edit, &est)
        }
    }

    fn fixture() -> Fixture {
        let plan = Plan {
            seed: 1,
            batch_size: 2,
            canary: 1,
            window_seconds: 250,
            batches: vec![
                batch("zrh", 0, true, &["a"]),
                batch("zrh", 1, false, &["b", "c"]),
                batch("zrh", 2, false, &["d", "e"]),
                batch("gva", 0, false, &["x"]),
            ],
            excluded: vec![],
        };
        let secs = [
            ("a", 10.0),
            ("b", 100.0),
            ("c", 50.0),
            ("d", 100.0),
            ("e", 100.0),
            ("x", 5.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let conc = [("zrh".to_string(), 1usize), ("gva".to_string(), 1)].into();
        Fixture {
            p: plan,
            secs,
            conc,
        }
    }

    #[test]
    fn moving_an_app_reestimates_both_batches_and_the_window() {
        let mut f = fixture();
        f.edit(&Edit::Move {
            app: "d".into(),
            to: 1,
        })
        .unwrap();
        assert_eq!(f.p.batches[1].apps, ["b", "c", "d"]);
        assert_eq!(f.p.batches[1].estimated_seconds, 250.0);
        assert_eq!(f.p.batches[2].apps, ["e"]);
        assert_eq!(f.p.batches[2].ends_after_seconds, 360.0);
        assert!(!f.p.batches[2].fits_window);
        assert!(f.p.batches[0].fits_window);
    }

    #[test]
    fn excluding_the_last_app_of_a_batch_drops_it_and_renumbers() {
        let mut f = fixture();
        f.edit(&Edit::Exclude { app: "b".into() }).unwrap();
        f.edit(&Edit::Exclude { app: "c".into() }).unwrap();
        let zrh: Vec<(usize, Vec<String>)> =
            f.p.batches
                .iter()
                .filter(|b| b.region == "zrh")
                .map(|b| (b.index, b.apps.clone()))
                .collect();
        assert_eq!(
            zrh,
            vec![(0, vec!["a".into()]), (1, vec!["d".into(), "e".into()])]
        );
        assert_eq!(f.p.excluded, ["b", "c"]);
        assert_eq!(
            f.edit(&Edit::Exclude { app: "b".into() }),
            Err("b is excluded from this plan".into())
        );
    }

    #[test]
    fn reordering_keeps_the_canary_first() {
        let mut f = fixture();
        f.edit(&Edit::Reorder {
            region: "zrh".into(),
            batch: 2,
            to: 1,
        })
        .unwrap();
        assert_eq!(f.p.batches[1].apps, ["d", "e"]);
        assert_eq!(f.p.batches[1].index, 1);
        assert_eq!(f.p.batches[2].apps, ["b", "c"]);
        let before = f.p.clone();
        let refused = [
            Edit::Reorder {
                region: "zrh".into(),
                batch: 2,
                to: 0,
            },
            Edit::Move {
                app: "zz".into(),
                to: 0,
            },
            Edit::Move {
                app: "a".into(),
                to: 7,
            },
        ];
        for edit in &refused {
            assert!(f.edit(edit).is_err(), "{edit:?} is refused");
        }
        assert_eq!(f.p, before, "a refused edit changes nothing");
    }
}
