//! Editing the night's plan by hand before it runs: move an app to its region's previous or
//! next batch, mark a batch as the canary. Pure; the edited plan is saved (confirmed) as the
//! newest plan, which is what `pgshift run` reads.

use crate::plan::Plan;

/// Move app `app` of batch `from` to the previous (`-1`) or next (`+1`) batch of the same
/// region; its share of the estimate moves with it. Returns the batch it landed in.
pub fn move_app(plan: &mut Plan, from: usize, app: &str, d: isize) -> Option<usize> {
    let region = plan.batches.get(from)?.region.clone();
    let same: Vec<usize> = (0..plan.batches.len())
        .filter(|&i| plan.batches[i].region == region)
        .collect();
    let pos = same.iter().position(|&i| i == from)? as isize + d;
    let to = *same.get(usize::try_from(pos).ok()?)?;
    let src = &mut plan.batches[from];
    let k = src.apps.iter().position(|a| a == app)?;
    let share = src.estimated_seconds / src.apps.len().max(1) as f64;
    src.apps.remove(k);
    src.estimated_seconds -= share;
    let dst = &mut plan.batches[to];
    dst.apps.push(app.to_string());
    dst.estimated_seconds += share;
    plan.batches.retain(|b| !b.apps.is_empty());
    recompute(plan);
    plan.batches
        .iter()
        .position(|b| b.region == region && b.apps.iter().any(|a| a == app))
}

/// Make batch `i` its region's canary (and no other batch of that region).
pub fn toggle_canary(plan: &mut Plan, i: usize) {
    let Some(b) = plan.batches.get(i) else {
        return;
    };
    let (region, was) = (b.region.clone(), b.canary);
    for b in plan.batches.iter_mut().filter(|b| b.region == region) {
        b.canary = false;
    }
    plan.batches[i].canary = !was;
}

/// Batch ends and window fit, per region, after an edit.
fn recompute(plan: &mut Plan) {
    let mut ends: Vec<(String, f64)> = Vec::new();
    let mut idx: Vec<(String, usize)> = Vec::new();
    for b in &mut plan.batches {
        let end = match ends.iter_mut().find(|(r, _)| *r == b.region) {
            Some((_, e)) => {
                *e += b.estimated_seconds;
                *e
            }
            None => {
                ends.push((b.region.clone(), b.estimated_seconds));
                b.estimated_seconds
            }
        };
        b.ends_after_seconds = end;
        b.fits_window = end <= plan.window_seconds as f64;
        let k = match idx.iter_mut().find(|(r, _)| *r == b.region) {
            Some((_, k)) => {
                *k += 1;
                *k
            }
            None => {
                idx.push((b.region.clone(), 0));
                0
            }
        };
        b.index = k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Batch;

    fn plan() -> Plan {
        let b = |region: &str, index, apps: &[&str], est| Batch {
            region: region.into(),
            index,
            canary: index == 0,
            estimated_seconds: est,
            ends_after_seconds: 0.0,
            fits_window: true,
            apps: apps.iter().map(|a| a.to_string()).collect(),
        };
        Plan {
            seed: 1,
            batch_size: 2,
            canary: 1,
            window_seconds: 100,
            batches: vec![
                b("a", 0, &["x"], 10.0),
                b("b", 0, &["p"], 10.0),
                b("a", 1, &["y", "z"], 80.0),
            ],
            excluded: vec![],
        }
    }

    #[test]
    fn moving_an_app_carries_its_estimate_and_never_crosses_regions() {
        let mut p = plan();
        assert_eq!(move_app(&mut p, 2, "z", -1), Some(0));
        assert_eq!(p.batches[0].apps, ["x", "z"]);
        assert_eq!(p.batches[0].estimated_seconds, 50.0);
        assert_eq!(p.batches[2].ends_after_seconds, 90.0);
        assert_eq!(move_app(&mut p, 1, "p", 1), None, "b has one batch");
        assert_eq!(move_app(&mut p, 0, "x", 1), Some(2));
        assert_eq!(
            move_app(&mut p, 0, "z", 1),
            Some(1),
            "the emptied batch is gone"
        );
        assert!(p.batches.iter().all(|b| !b.apps.is_empty()));
        assert_eq!(p.batches[1].apps, ["y", "x", "z"]);
        assert_eq!(p.batches[1].index, 0, "region a's batches renumbered");
        assert!(!p.batches[1].fits_window || p.batches[1].ends_after_seconds <= 100.0);
    }

    #[test]
    fn one_canary_per_region() {
        let mut p = plan();
        toggle_canary(&mut p, 2);
        assert!(!p.batches[0].canary && p.batches[2].canary && p.batches[1].canary);
        toggle_canary(&mut p, 2);
        assert!(!p.batches[2].canary);
    }
}
