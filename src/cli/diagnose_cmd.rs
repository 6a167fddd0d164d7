//! `pgshift diagnose [FILE|-] [--json]`: classify any log — a deploy log pasted from the
//! platform, a pg_restore log from elsewhere.

use std::io::Read;
use std::path::Path;

use color_eyre::eyre::Result;

use crate::diagnose::diagnose_all;
use crate::error::{UserError, exit};

pub fn run(file: Option<&Path>, json: bool) -> Result<i32> {
    let mut bytes = Vec::new();
    match file {
        None => {
            std::io::stdin().read_to_end(&mut bytes)?;
        }
        Some(p) if p == Path::new("-") => {
            std::io::stdin().read_to_end(&mut bytes)?;
        }
        Some(p) => {
            bytes = std::fs::read(p)
                .map_err(|e| UserError::new(format!("{}: cannot read log: {e}", p.display())))?;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let findings = diagnose_all(&lines);
    if json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
        return Ok(exit::OK);
    }
    if findings.is_empty() {
        println!("empty log: nothing to diagnose");
    }
    for f in &findings {
        println!(
            "{} {}{} — {}",
            if f.harmless { "⚠" } else { "✗" },
            f.class,
            if f.harmless { " (harmless)" } else { "" },
            f.explanation
        );
        for (k, m) in f.matched.iter().enumerate() {
            if k == 0 && f.class != "unknown" {
                let (a, b) = (&m.line[..m.start], &m.line[m.start..m.end]);
                println!("  {:>5} │ {a}»{b}«{}", m.index + 1, &m.line[m.end..]);
            } else {
                println!("  {:>5} │ {}", m.index + 1, m.line);
            }
        }
        for r in &f.remediations {
            println!("        remedy {}: {}", r.id, r.description);
        }
    }
    Ok(exit::OK)
}
