//! Key bindings per mode. Dispatch, the `?` help and the status-bar hints all read this one
//! table, so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;
use super::model::Mode;

/// A binding: in `mode`, `key` (as written, e.g. `ctrl-c`) does `action`; `hint` puts it in
/// the status bar.
pub struct Binding {
    pub mode: Mode,
    pub key: &'static str,
    pub action: Action,
    pub hint: bool,
}

const fn b(mode: Mode, key: &'static str, action: Action, hint: bool) -> Binding {
    Binding {
        mode,
        key,
        action,
        hint,
    }
}

pub fn bindings() -> Vec<Binding> {
    use Action::{
        ApplyFilter, Back, BatchBigger, BatchSmaller, Bottom, CancelRun, CycleSort, ExcludeApp,
        FilterBackspace, MarkManual, Migrate, MoveDown, MoveEarlier, MoveLater, MoveUp, NewSeed,
        NextApp, NextHit, NextRegion, NextRemediation, NextStep, OpenApp, OpenPalette, PageDown,
        PageUp, PauseRegion, Preflight, PrevApp, PrevRegion, PrevStep, Quit, ResumeRegion, Retry,
        Rollback, SaveLog, SavePlan, SearchLog, ShowFailures, ShowFleet, ShowPlan, ShowReport,
        ShowRun, StartBatch, StartFilter, StopRegion, ToggleCanary, ToggleFollow, ToggleHelp,
        ToggleMark, ToggleWrap, Top,
    };
    use Mode::{App, Failures, Filter, Fleet, Help, Palette, Plan, Report, Run, Search};
    let mut v = vec![
        b(Fleet, "j", MoveDown, true),
        b(Fleet, "down", MoveDown, false),
        b(Fleet, "k", MoveUp, true),
        b(Fleet, "up", MoveUp, false),
        b(Fleet, "g", Top, false),
        b(Fleet, "home", Top, false),
        b(Fleet, "G", Bottom, false),
        b(Fleet, "end", Bottom, false),
        b(Fleet, "tab", NextRegion, true),
        b(Fleet, "l", NextRegion, false),
        b(Fleet, "right", NextRegion, false),
        b(Fleet, "shift-tab", PrevRegion, false),
        b(Fleet, "h", PrevRegion, false),
        b(Fleet, "left", PrevRegion, false),
        b(Fleet, "/", StartFilter, true),
        b(Fleet, "enter", OpenApp, true),
        b(Fleet, "m", Migrate, true),
        b(Fleet, "space", ToggleMark, false),
        b(Fleet, "s", CycleSort, false),
        b(Fleet, "P", Preflight, false),
        b(Fleet, "esc", Back, false),
        b(Fleet, "q", Quit, true),
        // One app: its steps and its log.
        b(App, "j", MoveDown, false),
        b(App, "down", MoveDown, false),
        b(App, "k", MoveUp, false),
        b(App, "up", MoveUp, false),
        b(App, "pagedown", PageDown, false),
        b(App, "pageup", PageUp, false),
        b(App, "g", Top, false),
        b(App, "G", Bottom, false),
        b(App, "]", NextStep, true),
        b(App, "[", PrevStep, false),
        b(App, "f", ToggleFollow, true),
        b(App, "w", ToggleWrap, true),
        b(App, "/", SearchLog, true),
        b(App, "n", NextHit, false),
        b(App, "s", SaveLog, true),
        b(App, "m", Migrate, true),
        b(App, "b", Rollback, false),
        b(App, "esc", Back, true),
        b(App, "q", Back, false),
        // Triage.
        b(Failures, "j", MoveDown, true),
        b(Failures, "down", MoveDown, false),
        b(Failures, "k", MoveUp, false),
        b(Failures, "up", MoveUp, false),
        b(Failures, "g", Top, false),
        b(Failures, "G", Bottom, false),
        b(Failures, "tab", NextRemediation, true),
        b(Failures, "r", Retry, true),
        b(Failures, "b", Rollback, true),
        b(Failures, "M", MarkManual, true),
        b(Failures, "enter", OpenApp, true),
        b(Failures, "esc", Back, true),
        b(Failures, "q", Back, false),
        // The running night.
        b(Run, "j", MoveDown, false),
        b(Run, "down", MoveDown, false),
        b(Run, "k", MoveUp, false),
        b(Run, "up", MoveUp, false),
        b(Run, "p", PauseRegion, true),
        b(Run, "u", ResumeRegion, true),
        b(Run, "s", StopRegion, true),
        b(Run, "x", CancelRun, true),
        b(Run, "enter", OpenApp, true),
        b(Run, "esc", Back, true),
        b(Run, "q", Back, false),
        // The plan.
        b(Plan, "j", MoveDown, false),
        b(Plan, "down", MoveDown, false),
        b(Plan, "k", MoveUp, false),
        b(Plan, "up", MoveUp, false),
        b(Plan, "enter", StartBatch, true),
        b(Plan, "n", NewSeed, true),
        b(Plan, "+", BatchBigger, true),
        b(Plan, "-", BatchSmaller, true),
        b(Plan, "x", ExcludeApp, true),
        b(Plan, "h", PrevApp, false),
        b(Plan, "left", PrevApp, false),
        b(Plan, "l", NextApp, false),
        b(Plan, "right", NextApp, false),
        b(Plan, "<", MoveEarlier, true),
        b(Plan, ">", MoveLater, true),
        b(Plan, "c", ToggleCanary, true),
        b(Plan, "w", SavePlan, true),
        b(Plan, "esc", Back, true),
        b(Plan, "q", Back, false),
        b(Report, "esc", Back, true),
        b(Report, "q", Back, false),
        // Popups and input lines.
        b(Filter, "enter", ApplyFilter, true),
        b(Filter, "esc", Back, true),
        b(Filter, "backspace", FilterBackspace, false),
        b(Search, "enter", ApplyFilter, true),
        b(Search, "esc", Back, true),
        b(Search, "backspace", FilterBackspace, false),
        b(Palette, "enter", ApplyFilter, true),
        b(Palette, "esc", Back, true),
        b(Palette, "backspace", FilterBackspace, false),
        b(Mode::Confirm, "y", Action::Confirm, true),
        b(Mode::Confirm, "enter", Action::Confirm, false),
        b(Mode::Confirm, "n", Back, true),
        b(Mode::Confirm, "esc", Back, false),
        b(Help, "?", ToggleHelp, false),
        b(Help, "esc", Back, true),
        b(Help, "q", Back, false),
    ];
    // Every view: switch views, the palette, help.
    for mode in [Fleet, App, Failures, Run, Plan, Report] {
        v.extend([
            b(mode, "1", ShowFleet, false),
            b(mode, "2", ShowPlan, false),
            b(mode, "3", ShowRun, false),
            b(mode, "4", ShowFailures, false),
            b(mode, "5", ShowReport, false),
            b(mode, ":", OpenPalette, true),
            b(mode, "?", ToggleHelp, true),
        ]);
    }
    v
}

/// Modes whose unbound printable keys are text.
fn takes_text(mode: Mode) -> bool {
    matches!(mode, Mode::Filter | Mode::Search | Mode::Palette)
}

/// Parse `ctrl-c`, `shift-tab`, `G`, `/`, `down`, `f5` into a key event.
pub fn parse_key(s: &str) -> Option<KeyEvent> {
    let mut mods = KeyModifiers::NONE;
    let mut rest = s;
    loop {
        if let Some(r) = rest.strip_prefix("ctrl-") {
            mods |= KeyModifiers::CONTROL;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("alt-") {
            mods |= KeyModifiers::ALT;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("shift-") {
            mods |= KeyModifiers::SHIFT;
            rest = r;
        } else {
            break;
        }
    }
    let code = match rest {
        "esc" => KeyCode::Esc,
        "space" => KeyCode::Char(' '),
        "enter" => KeyCode::Enter,
        "tab" if mods.contains(KeyModifiers::SHIFT) => {
            mods -= KeyModifiers::SHIFT;
            KeyCode::BackTab
        }
        "tab" => KeyCode::Tab,
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
        c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
        _ => return None,
    };
    Some(KeyEvent::new(code, mods))
}

/// Does a pressed key match a binding's key? Shift on printable characters is carried by
/// the character itself (`G`), so it is ignored there.
fn matches(bound: &KeyEvent, pressed: &KeyEvent) -> bool {
    let strip = |k: &KeyEvent| match k.code {
        KeyCode::Char(_) | KeyCode::BackTab => k.modifiers - KeyModifiers::SHIFT,
        _ => k.modifiers,
    };
    bound.code == pressed.code && strip(bound) == strip(pressed)
}

/// The action for a key in a mode: the mode's bindings first, then `ctrl-c` (always quit),
/// then free text in the filter.
pub fn action_for(mode: Mode, key: KeyEvent) -> Option<Action> {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::Quit);
    }
    for bnd in bindings().into_iter().filter(|x| x.mode == mode) {
        if parse_key(bnd.key).is_some_and(|k| matches(&k, &key)) {
            return Some(bnd.action);
        }
    }
    match key.code {
        KeyCode::Char(c) if takes_text(mode) && !key.modifiers.contains(KeyModifiers::CONTROL) => {
            Some(Action::FilterInput(c))
        }
        _ => None,
    }
}

/// `(keys, description)` pairs for a mode, keys of one action joined: `j/down  down`.
pub fn help(mode: Mode, hints_only: bool) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let mut actions: Vec<Action> = Vec::new();
    for bnd in bindings().into_iter().filter(|x| x.mode == mode) {
        if hints_only && !bnd.hint {
            continue;
        }
        if let Some(i) = actions.iter().position(|a| *a == bnd.action) {
            out[i].0.push('/');
            out[i].0.push_str(bnd.key);
        } else {
            actions.push(bnd.action.clone());
            out.push((bnd.key.to_string(), bnd.action.describe()));
        }
    }
    if !hints_only {
        out.push(("ctrl-c".into(), "quit from anywhere"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parser_understands_modifiers_and_names() {
        assert_eq!(
            parse_key("ctrl-c"),
            Some(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
        );
        assert_eq!(
            parse_key("shift-tab"),
            Some(KeyEvent::new(KeyCode::BackTab, KeyModifiers::NONE))
        );
        assert_eq!(
            parse_key("G"),
            Some(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::NONE))
        );
        assert_eq!(
            parse_key("f5"),
            Some(KeyEvent::new(KeyCode::F(5), KeyModifiers::NONE))
        );
        assert_eq!(parse_key("nonsense"), None);
    }

    #[test]
    fn every_bound_action_has_a_description_for_help_and_hints() {
        for b in bindings() {
            assert!(
                !b.action.describe().is_empty(),
                "{:?} on {}",
                b.action,
                b.key
            );
        }
    }

    #[test]
    fn no_key_is_bound_twice_in_one_mode() {
        let all = bindings();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(
                    !(a.mode == b.mode && a.key == b.key),
                    "{} bound twice in {:?}",
                    a.key,
                    a.mode
                );
            }
        }
    }

    #[test]
    fn every_binding_parses() {
        for b in bindings() {
            assert!(parse_key(b.key).is_some(), "unparsable key {}", b.key);
        }
    }

    #[test]
    fn capital_g_with_shift_goes_to_bottom() {
        let k = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(action_for(Mode::Fleet, k), Some(Action::Bottom));
    }

    #[test]
    fn typing_q_in_the_filter_filters_instead_of_quitting() {
        let k = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(action_for(Mode::Filter, k), Some(Action::FilterInput('q')));
        assert_eq!(action_for(Mode::Fleet, k), Some(Action::Quit));
    }

    #[test]
    fn help_joins_keys_of_one_action() {
        let h = help(Mode::Fleet, false);
        assert!(
            h.iter().any(|(k, d)| k == "j/down" && *d == "down"),
            "{h:?}"
        );
    }
}
