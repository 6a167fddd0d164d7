//! `:` commands: the views by name and the app commands with an app named, for when the row
//! is not on screen. Parsed into the same actions the keys send, so they are confirmed and
//! refused under `--readonly` exactly like the keys.

use super::action::Action;
use super::effect::Command;

/// Every palette command, for help and errors.
pub const COMMANDS: &[(&str, &str)] = &[
    ("fleet | plan | run | failures | report", "show a view"),
    ("app APP", "open an app's steps and log"),
    ("migrate APP", "migrate an app now"),
    ("retry APP REMEDIATION", "retry a failed app"),
    ("rollback APP", "roll an app back onto OLD"),
    ("quit", "quit pgshift"),
];

/// `Ok(None)`: nothing typed.
pub fn parse(text: &str) -> Result<Option<Action>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(None);
    };
    let app = |what: &str| -> Result<String, String> {
        args.first()
            .map(|a| a.to_string())
            .ok_or_else(|| format!(":{what} needs an app, e.g. :{what} forum-live"))
    };
    let a = match cmd {
        "fleet" | "f" => Action::ShowFleet,
        "plan" | "p" => Action::ShowPlan,
        "run" | "r" => Action::ShowRun,
        "failures" | "triage" => Action::ShowFailures,
        "report" => Action::ShowReport,
        "help" | "h" => Action::ToggleHelp,
        "quit" | "q" => Action::Quit,
        "app" | "open" => Action::OpenAppNamed(app("app")?),
        "migrate" => Action::ConfirmAction(Command::Migrate {
            app: app("migrate")?,
        }),
        "rollback" => Action::ConfirmAction(Command::Rollback {
            app: app("rollback")?,
        }),
        "retry" => {
            let app = app("retry")?;
            let remediation = args
                .get(1)
                .ok_or(":retry needs a remediation, e.g. :retry forum-live pglz-restore")?
                .parse()?;
            Action::ConfirmAction(Command::Retry { app, remediation })
        }
        other => {
            let known: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
            return Err(format!(
                "unknown command \":{other}\"; commands: {}",
                known.join(", ")
            ));
        }
    };
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_commands_become_the_actions_keys_send() {
        assert_eq!(parse("run"), Ok(Some(Action::ShowRun)));
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(
            parse("retry forum-live pglz-restore"),
            Ok(Some(Action::ConfirmAction(Command::Retry {
                app: "forum-live".into(),
                remediation: crate::diagnose::RemediationId::PglzRestore
            })))
        );
        assert!(parse("migrate").unwrap_err().contains("needs an app"));
        assert!(parse("launch").unwrap_err().contains("unknown command"));
    }
}
