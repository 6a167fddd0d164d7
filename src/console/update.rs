//! `update(model, action)`: the console's only way to change state. Pure, so it is tested
//! without a terminal.

use super::action::Action;
use super::model::{Mode, Model};

/// Apply an action; returns whether the screen must be redrawn.
pub fn update(m: &mut Model, action: Action) -> bool {
    let len = m.visible().len();
    match action {
        Action::MoveDown => m.selected = (m.selected + 1).min(len.saturating_sub(1)),
        Action::MoveUp => m.selected = m.selected.saturating_sub(1),
        Action::Top => m.selected = 0,
        Action::Bottom => m.selected = len.saturating_sub(1),
        Action::NextRegion => {
            m.region = (m.region + 1) % (m.regions.len() + 1);
            m.selected = 0;
        }
        Action::PrevRegion => {
            m.region = (m.region + m.regions.len()) % (m.regions.len() + 1);
            m.selected = 0;
        }
        Action::StartFilter => m.mode = Mode::Filter,
        Action::FilterInput(c) => {
            m.filter.push(c);
            m.selected = 0;
        }
        Action::FilterBackspace => {
            m.filter.pop();
            m.selected = 0;
        }
        Action::ApplyFilter => m.mode = Mode::Fleet,
        Action::ToggleHelp => {
            m.mode = if m.mode == Mode::Help {
                Mode::Fleet
            } else {
                Mode::Help
            }
        }
        Action::Back => match m.mode {
            Mode::Help => m.mode = Mode::Fleet,
            Mode::Filter => {
                m.filter.clear();
                m.mode = Mode::Fleet;
                m.selected = 0;
            }
            Mode::Fleet if !m.filter.is_empty() => {
                m.filter.clear();
                m.selected = 0;
            }
            Mode::Fleet => m.quit = true,
        },
        Action::Quit => m.quit = true,
        Action::States(states) => return m.apply_states(&states),
        Action::Resize => {}
    }
    true
}
