//! `update(model, action)`: the console's only way to change state. Pure, so it is tested
//! without a terminal: anything that touches the world is pushed to `m.effects` for the loop.

use super::action::Action;
use super::data::{AppWatch, ChildMsg, Data};
use super::effect::{Command, Effect, PlanArgs};
use super::model::{Mode, Model, View};
use super::palette;
use crate::engine::Event;

/// Apply an action; returns whether the screen must be redrawn.
pub fn update(m: &mut Model, action: Action) -> bool {
    match action {
        Action::MoveDown => move_by(m, 1),
        Action::MoveUp => move_by(m, -1),
        Action::PageDown => move_by(m, m.page as isize),
        Action::PageUp => move_by(m, -(m.page as isize)),
        Action::Top => to_end(m, false),
        Action::Bottom => to_end(m, true),
        Action::NextRegion => {
            m.region = (m.region + 1) % (m.regions.len() + 1);
            m.selected = 0;
        }
        Action::PrevRegion => {
            m.region = (m.region + m.regions.len()) % (m.regions.len() + 1);
            m.selected = 0;
        }
        Action::StartFilter => m.mode = Mode::Filter,
        Action::SearchLog => {
            if let Some(w) = &mut m.watch {
                w.log.search.clear();
            }
            m.mode = Mode::Search;
        }
        Action::OpenPalette => {
            m.palette.clear();
            m.mode = Mode::Palette;
        }
        Action::FilterInput(c) => match m.mode {
            Mode::Palette => m.palette.push(c),
            Mode::Search => {
                if let Some(w) = &mut m.watch {
                    w.log.search.push(c);
                }
            }
            _ => {
                m.filter.push(c);
                m.selected = 0;
            }
        },
        Action::FilterBackspace => match m.mode {
            Mode::Palette => {
                m.palette.pop();
            }
            Mode::Search => {
                if let Some(w) = &mut m.watch {
                    w.log.search.pop();
                }
            }
            _ => {
                m.filter.pop();
                m.selected = 0;
            }
        },
        Action::ApplyFilter => match m.mode {
            Mode::Palette => {
                m.mode = m.view.mode();
                let text = std::mem::take(&mut m.palette);
                match palette::parse(&text) {
                    Ok(Some(a)) => return update(m, a),
                    Ok(None) => {}
                    Err(e) => m.say(e, true),
                }
            }
            Mode::Search => {
                m.mode = m.view.mode();
                if let Some(w) = &mut m.watch
                    && !w.log.next_hit()
                {
                    let s = w.log.search.clone();
                    m.say(format!("no line contains \"{s}\""), true);
                }
            }
            _ => m.mode = m.view.mode(),
        },
        Action::NextHit => {
            if let Some(w) = &mut m.watch {
                w.log.next_hit();
            }
        }
        Action::ToggleHelp => {
            m.mode = if m.mode == Mode::Help {
                m.view.mode()
            } else {
                Mode::Help
            }
        }
        Action::Back => back(m),
        Action::Quit => m.quit = true,
        Action::ShowFleet => show(m, View::Fleet),
        Action::ShowPlan => show(m, View::Plan),
        Action::ShowRun => show(m, View::Run),
        Action::ShowFailures => show(m, View::Failures),
        Action::ShowReport => show(m, View::Report),
        Action::OpenApp => {
            if let Some(app) = target_app(m) {
                open_app(m, &app);
            }
        }
        Action::OpenAppNamed(app) => {
            if m.row(&app).is_some() {
                open_app(m, &app);
            } else {
                m.say(format!("no app named {app} in the inventory"), true);
            }
        }
        Action::ToggleMark => {
            if let Some(app) = m.selected_row().map(|r| r.name.clone()) {
                if !m.marked.remove(&app) {
                    m.marked.insert(app);
                }
                move_by(m, 1);
            }
        }
        Action::Preflight => {
            m.say(
                "preflight: checking every candidate against OLD and NEW…",
                false,
            );
            m.effects.push(Effect::Preflight);
        }
        Action::PreflightDone(Ok(found)) => {
            let at_risk = found.iter().filter(|(_, c)| !c.is_empty()).count();
            m.say(
                format!("preflight: {at_risk} of {} candidates at risk", found.len()),
                false,
            );
            m.risks = Some(found.into_iter().collect());
        }
        Action::PreflightDone(Err(e)) => m.say(format!("preflight: {e}"), true),
        Action::CycleSort => {
            m.sort = m.sort.next();
            m.selected = 0;
        }
        Action::Migrate if m.view == View::Fleet && !m.marked.is_empty() => {
            let apps = m.marked.iter().cloned().collect();
            return update(m, Action::ConfirmAction(Command::MigrateMany { apps }));
        }
        Action::Migrate => {
            if let Some(app) = target_app(m) {
                return update(m, Action::ConfirmAction(Command::Migrate { app }));
            }
        }
        Action::Retry => {
            let Some(f) = m.selected_failure() else {
                return false;
            };
            let offered = f.retry_remediations();
            let Some((id, _)) = offered.get(m.remediation_sel % offered.len().max(1)) else {
                let app = f.app.clone();
                m.say(
                    format!("{app}: no remediation to retry with; roll back or mark manual"),
                    true,
                );
                return true;
            };
            let cmd = Command::Retry {
                app: f.app.clone(),
                remediation: *id,
            };
            return update(m, Action::ConfirmAction(cmd));
        }
        Action::NextRemediation => {
            let n = m
                .selected_failure()
                .map_or(0, |f| f.retry_remediations().len());
            m.remediation_sel = if n == 0 {
                0
            } else {
                (m.remediation_sel + 1) % n
            };
        }
        Action::Rollback => {
            if let Some(app) = target_app(m) {
                return update(m, Action::ConfirmAction(Command::Rollback { app }));
            }
        }
        Action::MarkManual => {
            if let Some(f) = m.selected_failure() {
                let cmd = Command::MarkManual {
                    failure_id: f.id,
                    app: f.app.clone(),
                };
                return update(m, Action::ConfirmAction(cmd));
            }
        }
        Action::NextStep | Action::PrevStep => {
            if let Some(w) = &mut m.watch {
                w.select_step(if action == Action::NextStep { 1 } else { -1 });
            }
        }
        Action::ToggleFollow => {
            if let Some(w) = &mut m.watch {
                w.log.follow = !w.log.follow;
                if !w.log.follow {
                    w.log.top = w.log.len().saturating_sub(m.page);
                }
            }
        }
        Action::ToggleWrap => {
            if let Some(w) = &mut m.watch {
                w.log.wrap = !w.log.wrap;
            }
        }
        Action::SaveLog => {
            if let Some(w) = &m.watch {
                let lines = w
                    .log
                    .iter()
                    .map(|l| format!("[{}] {}: {}", l.step, l.stream, l.text))
                    .collect();
                m.effects.push(Effect::SaveLog {
                    app: w.name.clone(),
                    lines,
                });
            }
        }
        Action::PauseRegion | Action::ResumeRegion | Action::StopRegion => {
            let Some(region) = selected_lane(m) else {
                m.say("no region in the plan", true);
                return true;
            };
            let cmd = match action {
                Action::PauseRegion => Command::RegionPause { region },
                Action::ResumeRegion => Command::RegionResume { region },
                _ => Command::RegionStop { region },
            };
            return update(m, Action::ConfirmAction(cmd));
        }
        Action::CancelRun => return update(m, Action::ConfirmAction(Command::CancelRun)),
        Action::StartBatch if m.plan_edited => {
            m.say("the plan has unsaved edits: w saves them first", true);
        }
        Action::PrevApp | Action::NextApp => {
            let n = selected_batch(m).map_or(0, |b| b.apps.len());
            let d = if action == Action::NextApp { 1 } else { -1 };
            m.plan_app = (m.plan_app as isize + d).clamp(0, n.saturating_sub(1) as isize) as usize;
        }
        Action::MoveEarlier | Action::MoveLater => {
            let d = if action == Action::MoveLater { 1 } else { -1 };
            let Some(app) = selected_batch_app(m) else {
                return false;
            };
            let from = m.night_sel;
            let Some(plan) = m.night.plan.as_mut() else {
                return false;
            };
            match super::plan_edit::move_app(plan, from, &app, d) {
                Some(to) => {
                    m.night_sel = to;
                    m.plan_app = plan.batches[to].apps.len() - 1;
                    m.plan_edited = true;
                }
                None => m.say(
                    format!(
                        "{app}: no {} batch in its region",
                        if d > 0 { "later" } else { "earlier" }
                    ),
                    true,
                ),
            }
        }
        Action::ToggleCanary => {
            let i = m.night_sel;
            if let Some(plan) = m.night.plan.as_mut() {
                super::plan_edit::toggle_canary(plan, i);
                m.plan_edited = true;
            }
        }
        Action::SavePlan => {
            if !m.plan_edited {
                m.say("nothing to save: the plan is as stored", false);
                return true;
            }
            if let Some(plan) = m.night.plan.clone() {
                let params = m.night.plan_params.clone();
                return update(
                    m,
                    Action::ConfirmAction(Command::SavePlan {
                        params,
                        plan: Box::new(plan),
                    }),
                );
            }
        }
        Action::StartBatch => {
            let Some(k) = selected_batch_index(m) else {
                m.say("no plan yet: n plans the night", true);
                return true;
            };
            return update(m, Action::ConfirmAction(Command::RunBatch { batch: k }));
        }
        Action::NewSeed | Action::BatchBigger | Action::BatchSmaller | Action::ExcludeApp => {
            let Some(mut args) = plan_args(m) else {
                m.say(
                    "no plan yet: plan the night with `pgshift plan` first",
                    true,
                );
                return true;
            };
            match action {
                Action::NewSeed => args.seed += 1,
                Action::BatchBigger => args.batch_size += 1,
                Action::BatchSmaller => args.batch_size = args.batch_size.saturating_sub(1).max(1),
                _ => match selected_batch_app(m) {
                    Some(app) => args.exclude.push(app),
                    None => return false,
                },
            }
            return update(m, Action::ConfirmAction(Command::Replan(args)));
        }
        Action::ConfirmAction(cmd) => {
            if m.readonly {
                m.say(
                    format!("read-only: refused \"{}\"", cmd.describe().to_lowercase()),
                    true,
                );
            } else {
                m.confirm = Some(cmd);
                m.mode = Mode::Confirm;
            }
        }
        Action::Confirm => {
            m.mode = m.view.mode();
            if let Some(cmd) = m.confirm.take() {
                return update(m, Action::ConfirmedAction(cmd));
            }
        }
        Action::ConfirmedAction(cmd) => {
            // The readonly check again: a confirmed action can come from elsewhere (palette).
            if m.readonly {
                m.say("read-only: refused", true);
                return true;
            }
            if matches!(cmd, Command::MigrateMany { .. }) {
                m.marked.clear();
            }
            if matches!(cmd, Command::Replan(_)) {
                // A new plan replaces the edited one.
                m.plan_edited = false;
            }
            if let Some(app) = cmd.app().map(str::to_string) {
                open_app(m, &app);
            }
            m.say(format!("{}…", cmd.describe()), false);
            m.effects.push(Effect::Run(cmd));
        }
        Action::States(states) => return m.apply_states(&states),
        Action::Data(d) => return apply_data(m, d),
        Action::Child(c) => child(m, c),
        Action::Saved(Ok(path)) => m.say(format!("log saved to {path}"), false),
        Action::Saved(Err(e)) => m.say(e, true),
        Action::Resize => {}
    }
    true
}

fn show(m: &mut Model, v: View) {
    if m.view != v {
        // Coming back to a view on the path returns along it: the stack never grows forever.
        match m.back_stack.iter().position(|x| *x == v) {
            Some(i) => m.back_stack.truncate(i),
            None => m.back_stack.push(m.view),
        }
        m.view = v;
    }
    m.mode = v.mode();
    m.night_sel = 0;
    if v == View::Run {
        watch_running(m);
    }
    match v {
        View::Failures => m.effects.push(Effect::LoadFailures),
        View::Run => m.effects.push(Effect::LoadRun),
        View::Plan => m.effects.push(Effect::LoadPlan),
        View::Report => m.effects.push(Effect::LoadReport),
        View::Fleet | View::App => {}
    }
}

fn open_app(m: &mut Model, app: &str) {
    if m.watch.as_ref().is_none_or(|w| w.name != app) {
        m.watch = Some(AppWatch::new(app));
    }
    show(m, View::App);
    m.effects.push(Effect::WatchApp(app.to_string()));
}

fn back(m: &mut Model) {
    match m.mode {
        Mode::Help | Mode::Search | Mode::Palette => m.mode = m.view.mode(),
        Mode::Confirm => {
            m.confirm = None;
            m.mode = m.view.mode();
            m.say("cancelled", false);
        }
        Mode::Filter => {
            m.filter.clear();
            m.mode = m.view.mode();
            m.selected = 0;
        }
        Mode::Fleet if !m.filter.is_empty() => {
            m.filter.clear();
            m.selected = 0;
        }
        Mode::Fleet => m.quit = true,
        _ => {
            let prev = m.back_stack.pop().unwrap_or(View::Fleet);
            m.view = prev;
            m.mode = prev.mode();
        }
    }
}

/// The app an app-level action is about in the current view.
fn target_app(m: &Model) -> Option<String> {
    match m.view {
        View::Fleet => m.selected_row().map(|r| r.name.clone()),
        View::App => m.watch.as_ref().map(|w| w.name.clone()),
        View::Failures => m.selected_failure().map(|f| f.app.clone()),
        View::Run => {
            let region = selected_lane(m)?;
            m.night
                .running
                .iter()
                .find(|r| r.region == region)
                .map(|r| r.app.clone())
        }
        View::Plan | View::Report => None,
    }
}

fn move_by(m: &mut Model, d: isize) {
    let step = |cur: usize, len: usize| -> usize {
        (cur as isize + d).clamp(0, len.saturating_sub(1) as isize) as usize
    };
    match m.view {
        View::Fleet => m.selected = step(m.selected, m.visible().len()),
        View::App => {
            let page = m.page;
            if let Some(w) = &mut m.watch {
                w.log.scroll(d, page);
            }
        }
        View::Failures => {
            let new = step(m.failure_sel, m.failures.len());
            if new != m.failure_sel {
                m.failure_sel = new;
                select_failure(m);
            }
        }
        View::Run => {
            m.night_sel = step(m.night_sel, lanes(m).len());
            watch_running(m);
        }
        View::Plan => {
            let n = m.night.plan.as_ref().map_or(0, |p| p.batches.len());
            m.night_sel = step(m.night_sel, n);
            m.plan_app = 0;
        }
        View::Report => {}
    }
}

fn to_end(m: &mut Model, bottom: bool) {
    match m.view {
        View::App => {
            if let Some(w) = &mut m.watch {
                if bottom {
                    w.log.to_bottom();
                } else {
                    w.log.to_top();
                }
            }
        }
        View::Fleet => {
            m.selected = if bottom {
                m.visible().len().saturating_sub(1)
            } else {
                0
            }
        }
        _ => move_by(
            m,
            if bottom {
                isize::MAX / 2
            } else {
                isize::MIN / 2
            },
        ),
    }
}

/// A new failure selected: its remediation choice resets and its step log is loaded.
fn select_failure(m: &mut Model) {
    m.remediation_sel = 0;
    if let Some(f) = m.selected_failure() {
        if m.failure_log.as_ref().is_some_and(|l| l.failure_id == f.id) {
            return;
        }
        if let Some(step_id) = f.step_id {
            let e = Effect::LoadFailureLog {
                failure_id: f.id,
                step_id,
            };
            m.effects.push(e);
        }
    }
}

/// In the Run view the log pane follows the selected region's first running app; when the
/// region has none running, the last app watched stays on screen.
fn watch_running(m: &mut Model) {
    let Some(app) = target_app(m) else {
        return;
    };
    if m.watch.as_ref().is_none_or(|w| w.name != app) {
        m.watch = Some(AppWatch::new(&app));
        m.effects.push(Effect::WatchApp(app));
    }
}

fn lanes(m: &Model) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if let Some(p) = &m.night.plan {
        for b in &p.batches {
            if !v.contains(&b.region) {
                v.push(b.region.clone());
            }
        }
    }
    v
}

fn selected_lane(m: &Model) -> Option<String> {
    lanes(m).get(m.night_sel).cloned()
}

/// Batches are run by index across regions (`run --batch K`): K of the selected batch.
fn selected_batch_index(m: &Model) -> Option<usize> {
    m.night
        .plan
        .as_ref()?
        .batches
        .get(m.night_sel)
        .map(|b| b.index)
}

fn selected_batch(m: &Model) -> Option<&crate::plan::Batch> {
    m.night.plan.as_ref()?.batches.get(m.night_sel)
}

/// The app chosen with `h`/`l` in the selected batch.
fn selected_batch_app(m: &Model) -> Option<String> {
    let b = selected_batch(m)?;
    b.apps
        .get(m.plan_app.min(b.apps.len().saturating_sub(1)))
        .cloned()
}

fn plan_args(m: &Model) -> Option<PlanArgs> {
    let p = m.night.plan.as_ref()?;
    Some(PlanArgs {
        seed: p.seed,
        batch_size: p.batch_size,
        canary: p.canary,
        window_seconds: p.window_seconds,
        exclude: p.excluded.clone(),
    })
}

fn apply_data(m: &mut Model, d: Data) -> bool {
    match d {
        Data::App {
            app,
            run_id,
            steps,
            lines,
        } => {
            let Some(w) = m.watch.as_mut().filter(|w| w.name == app) else {
                return false;
            };
            let mut changed = !w.loaded;
            w.loaded = true;
            if w.run_id != run_id {
                // A new run (a retry): its log starts afresh.
                let follow = w.log.follow;
                *w = AppWatch::new(&app);
                w.log.follow = follow;
                w.run_id = run_id;
                w.loaded = true;
                changed = true;
            }
            if w.steps != steps {
                w.steps = steps;
                changed = true;
            }
            changed |= w.log.extend(lines);
            changed
        }
        Data::Failures(f) => {
            let keep = m.selected_failure().map(|f| f.id);
            m.failures = f;
            let order = m.failure_order();
            m.failure_sel = keep
                .and_then(|id| order.iter().position(|&i| m.failures[i].id == id))
                .unwrap_or(0)
                .min(order.len().saturating_sub(1));
            select_failure(m);
            true
        }
        Data::FailureLog(l) => {
            m.failure_log = Some(l);
            true
        }
        Data::Night(n) => {
            // Unsaved edits stay on screen until saved or replaced by a new plan.
            let local = m.night.plan.take();
            let spans = std::mem::take(&mut m.night.spans);
            let times = std::mem::take(&mut m.night.span_times);
            let downtime = std::mem::take(&mut m.night.downtime);
            let backups = std::mem::take(&mut m.night.backups);
            m.night = *n;
            if m.plan_edited {
                m.night.plan = local;
            }
            if !m.night.spans_read {
                m.night.spans = spans;
                m.night.span_times = times;
                m.night.downtime = downtime;
                m.night.backups = backups;
            }
            if m.view == View::Run {
                watch_running(m);
            }
            true
        }
    }
}

fn child(m: &mut Model, c: ChildMsg) {
    match c {
        ChildMsg::Started(cmd) => m.running_children.push(cmd),
        ChildMsg::Event(ev) => {
            match &ev {
                Event::Failure { app, class, .. } => {
                    m.say(format!("✗ {app} failed: {class} — 4 opens triage"), true)
                }
                Event::Done { app, outcome, .. } => {
                    m.effects.push(Effect::Refresh);
                    let ok = *outcome == crate::domain::AppState::Migrated;
                    let sym = if ok { "✓" } else { "✗" };
                    m.say(format!("{sym} {app}: {outcome}"), !ok);
                }
                _ => {}
            }
            let app = ev.app().unwrap_or_default().to_string();
            if !app.is_empty() && m.watch.as_ref().is_some_and(|w| w.name == app) {
                m.effects.push(Effect::WatchApp(app));
            }
        }
        ChildMsg::Exited { cmd, ok, last_line } => {
            if ok && matches!(cmd, Command::SavePlan { .. }) {
                m.plan_edited = false;
            }
            if let Some(i) = m.running_children.iter().position(|c| *c == cmd) {
                m.running_children.remove(i);
            }
            if !ok && !last_line.is_empty() {
                m.say(format!("{}: {last_line}", cmd.describe()), true);
            } else if ok && cmd.app().is_none() {
                m.say(format!("done: {}", cmd.describe().to_lowercase()), false);
            }
            m.effects.push(Effect::Refresh);
            match m.view {
                View::Failures => m.effects.push(Effect::LoadFailures),
                View::Plan => m.effects.push(Effect::LoadPlan),
                View::Run => m.effects.push(Effect::LoadRun),
                _ => {}
            }
        }
    }
}
