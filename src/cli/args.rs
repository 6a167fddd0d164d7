//! Command-line values clap cannot check alone, and clap's own errors as the one line
//! (`pgshift: …`, exit 2) every other bad input gets.

use clap::Parser;

use super::Cli;
use crate::error::exit;

/// A count that must be at least 1 (`--batch-size`, `--reps`, `--apps`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("\"{s}\" is not a whole number")),
    }
}

/// A finite rate, 0 or more (`--speed`).
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("\"{s}\" is not a number, 0 or more")),
    }
}

/// A maintenance window longer than nothing: `4h`, `90m`, or seconds.
pub fn window(s: &str) -> Result<u64, String> {
    match crate::plan::parse_window(s.trim()) {
        Some(0) => Err("the window must be longer than 0".into()),
        Some(n) => Ok(n),
        None => Err(format!("\"{s}\" is not a duration like 4h, 90m or seconds")),
    }
}

/// Parse argv; help and version print as clap prints them, any other error is one line.
pub fn parse() -> Result<Cli, i32> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return Err(exit::OK);
            }
            // clap's message is its first paragraph ("…not provided:" is followed by the
            // arguments); usage and tips follow a blank line.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let line = message.join(" ");
            eprintln!(
                "pgshift: {}",
                if line.is_empty() {
                    "invalid arguments"
                } else {
                    line.trim_start_matches("error: ")
                }
            );
            Err(exit::BAD_INPUT)
        }
    }
}
