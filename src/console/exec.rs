//! Running a changing command as a `pgshift` child: the same binary, config, inventory and
//! store (passed through the environment, so a store password never shows in `ps`), stdin
//! null, its own process group (the terminal's ctrl-c must not kill it mid-step; the child
//! rolls back on its own cancel). Its stdout JSON lines become events on the console's
//! bounded channel; its last stderr line becomes the one-line error.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::action::Action;
use super::data::ChildMsg;
use super::effect::Command;
use crate::engine::Event;

/// How children find what the console uses.
#[derive(Debug, Clone, Default)]
pub struct ChildEnv {
    pub config_file: Option<PathBuf>,
    pub inventory: Option<PathBuf>,
    pub store_url: String,
}

/// Spawn `cmd` (its runs one after the other) and report over `tx`; returns at once.
pub fn spawn(cmd: Command, env: &ChildEnv, tx: mpsc::Sender<Action>) {
    let runs = cmd.runs();
    if runs.is_empty() {
        return;
    }
    let env = env.clone();
    tokio::spawn(async move {
        let _ = tx.send(Action::Child(ChildMsg::Started(cmd.clone()))).await;
        let (mut ok, mut last_line) = (true, String::new());
        for args in &runs {
            let (this_ok, line) = run_child(args, &env, &tx).await;
            if !this_ok {
                ok = false;
                last_line = line;
            }
        }
        let _ = tx
            .send(Action::Child(ChildMsg::Exited { cmd, ok, last_line }))
            .await;
    });
}

/// One `pgshift` child to its end: whether it succeeded, and its last stderr (or non-JSON
/// stdout) line.
async fn run_child(args: &[String], env: &ChildEnv, tx: &mpsc::Sender<Action>) -> (bool, String) {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return (false, format!("cannot find pgshift itself: {e}")),
    };
    let mut c = tokio::process::Command::new(exe);
    c.args(args)
        .env("PGSHIFT_STORE", &env.store_url)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if let Some(f) = &env.config_file {
        c.env("PGSHIFT_CONFIG", f);
    }
    if let Some(f) = &env.inventory {
        c.env("PGSHIFT_INVENTORY", f);
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return (false, format!("cannot start pgshift: {e}")),
    };
    let stderr = child.stderr.take().map(|s| {
        tokio::spawn(async move {
            let (mut last, mut error) = (String::new(), None);
            let mut r = BufReader::new(s);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).await.unwrap_or(0) > 0 {
                let l = String::from_utf8_lossy(&buf).trim().to_string();
                buf.clear();
                // clap and pgshift say what went wrong first ("error: …", "pgshift: …");
                // what follows is advice like "try '--help'".
                if error.is_none() && (l.starts_with("error:") || l.starts_with("pgshift:")) {
                    error = Some(l.clone());
                }
                if !l.is_empty() {
                    last = l;
                }
            }
            error.unwrap_or(last)
        })
    });
    let mut last_out = String::new();
    if let Some(out) = child.stdout.take() {
        let mut r = BufReader::new(out);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).await.unwrap_or(0) > 0 {
            let l = String::from_utf8_lossy(&buf).trim().to_string();
            buf.clear();
            if l.starts_with('{') {
                // Bounded: a child faster than the screen waits here, never the UI.
                if let Some(msg) = parse_event(&l)
                    && tx.send(Action::Child(msg)).await.is_err()
                {
                    break;
                }
            } else if !l.is_empty() {
                last_out = l;
            }
        }
    }
    let status = child.wait().await;
    let mut last = match stderr {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    if last.is_empty() {
        last = last_out;
    }
    match status {
        Ok(s) => (s.success(), last),
        Err(e) => (false, format!("waiting for pgshift: {e}")),
    }
}

/// `pgshift preflight --json` as a child: its findings as `(app, classes)`.
pub fn preflight(env: &ChildEnv, tx: mpsc::Sender<Action>) {
    let env = env.clone();
    tokio::spawn(async move {
        let r = async {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find pgshift: {e}"))?;
            let mut c = tokio::process::Command::new(exe);
            c.args(["preflight", "--json"])
                .env("PGSHIFT_STORE", &env.store_url)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .process_group(0);
            if let Some(f) = &env.config_file {
                c.env("PGSHIFT_CONFIG", f);
            }
            if let Some(f) = &env.inventory {
                c.env("PGSHIFT_INVENTORY", f);
            }
            let out = c
                .output()
                .await
                .map_err(|e| format!("cannot start pgshift: {e}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(err.lines().next().unwrap_or("failed").to_string());
            }
            parse_preflight(&out.stdout)
        }
        .await;
        let _ = tx.send(Action::PreflightDone(r)).await;
    });
}

/// `[{app, risks: [{class, …}]}]` → `(app, classes)`.
pub fn parse_preflight(json: &[u8]) -> Result<Vec<(String, Vec<String>)>, String> {
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| format!("unreadable preflight output: {e}"))?;
    Ok(v.iter()
        .filter_map(|r| {
            let app = r.get("app")?.as_str()?.to_string();
            let classes = r
                .get("risks")?
                .as_array()?
                .iter()
                .filter_map(|x| Some(x.get("class")?.as_str()?.to_string()))
                .collect();
            Some((app, classes))
        })
        .collect())
}

/// An engine event the console acts on; log lines are read from the store instead (one
/// source of truth, and a chatty restore never floods the channel).
pub fn parse_event(line: &str) -> Option<ChildMsg> {
    match serde_json::from_str(line).ok()? {
        Event::Log { .. } => None,
        ev => Some(ChildMsg::Event(ev)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_json_lines_become_events_and_logs_are_left_to_the_store() {
        let done = r#"{"event":"done","run_id":2,"app":"forum-live","outcome":"failed"}"#;
        assert_eq!(
            parse_event(done),
            Some(ChildMsg::Event(Event::Done {
                run_id: 2,
                app: "forum-live".into(),
                outcome: crate::domain::AppState::Failed,
            }))
        );
        let log = r#"{"event":"log","app":"a","step":"restore","stream":"stderr","line":"x"}"#;
        assert_eq!(parse_event(log), None);
        assert_eq!(parse_event("pgshift: not json"), None);
    }

    #[test]
    fn preflight_json_becomes_classes_per_app() {
        let j = br#"[{"app":"a","region":"r","libpq":"9.6","risks":[{"class":"libpq-scram","detail":"x","remediation":"md5-password"}]},{"app":"b","region":"r","libpq":"15","risks":[]}]"#;
        assert_eq!(
            parse_preflight(j),
            Ok(vec![
                ("a".into(), vec!["libpq-scram".into()]),
                ("b".into(), vec![])
            ])
        );
        assert!(parse_preflight(b"nope").is_err());
    }
}
