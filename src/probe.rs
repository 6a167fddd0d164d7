//! Downtime as a user sees it: a prober asks every app it is given, a few times a second,
//! through its public route, and counts what answered — the app (2xx…), the maintenance page
//! (503) or nothing usable (any other status, a refused or dropped connection, a timeout).
//! Bounded in requests and time, and loopback only: it is a lab and rehearsal instrument, and
//! it never sends traffic anywhere else.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use color_eyre::eyre::{Result, eyre};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::error::UserError;

/// One app to probe: its name and the URL its platform reports.
#[derive(Debug, Clone)]
pub struct Target {
    pub app: String,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    /// `http://127.0.0.1:8080/shop-live/`; anything but plain HTTP to a loopback address is
    /// refused.
    pub fn new(app: &str, url: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            UserError::new(format!(
                "the prober asks plain http:// URLs only; {app}'s is {url}"
            ))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| UserError::new(format!("{app}'s URL {url} has a bad port")))?,
            ),
            _ => (authority, 80),
        };
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(UserError::new(format!(
                "the prober asks loopback addresses only; {app}'s URL {url} is not one"
            ))
            .into());
        }
        Ok(Self {
            app: app.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Answer {
    /// The app answered, with this status.
    App(u16),
    /// HTTP 503: the maintenance page.
    Maintenance,
    /// Another status, or no HTTP answer at all.
    Failed(String),
}

impl Answer {
    /// "200", "503", "error: connection refused".
    pub fn short(&self) -> String {
        match self {
            Answer::App(code) => code.to_string(),
            Answer::Maintenance => "503".into(),
            Answer::Failed(e) => format!("error: {e}"),
        }
    }
}

/// Per app, what the prober saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub answered: u64,
    pub maintenance: u64,
    pub failed: u64,
    pub first_maintenance: Option<DateTime<Utc>>,
    pub last_maintenance: Option<DateTime<Utc>>,
    pub last: Option<Answer>,
    pub last_at: Option<DateTime<Utc>>,
    /// The first few failures, as they were.
    pub failures: Vec<String>,
}

impl Tally {
    fn count(&mut self, answer: Answer, at: DateTime<Utc>) {
        match &answer {
            Answer::App(_) => self.answered += 1,
            Answer::Maintenance => {
                self.maintenance += 1;
                self.first_maintenance.get_or_insert(at);
                self.last_maintenance = Some(at);
            }
            Answer::Failed(e) => {
                self.failed += 1;
                if self.failures.len() < 5 {
                    self.failures
                        .push(format!("{}: {e}", at.format("%H:%M:%S%.3f")));
                }
            }
        }
        self.last = Some(answer);
        self.last_at = Some(at);
    }

    /// Seconds between the first and the last maintenance answer.
    pub fn maintenance_seconds(&self) -> Option<f64> {
        Some((self.last_maintenance? - self.first_maintenance?).num_milliseconds() as f64 / 1e3)
    }
}

/// Hard bounds: a prober never outlives a night or floods an app.
const MAX_REQUESTS_PER_APP: u64 = 200_000;
const MAX_RUNTIME: Duration = Duration::from_secs(12 * 3600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BODY: usize = 64 * 1024;

pub type Tallies = Arc<Mutex<BTreeMap<String, Tally>>>;

/// A running prober; `stop` ends it and hands back what it saw.
pub struct Prober {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tallies: Tallies,
}

impl Prober {
    pub fn start(targets: Vec<Target>, interval: Duration) -> Self {
        let stop = CancellationToken::new();
        let tallies: Tallies = Arc::default();
        let tasks = targets
            .into_iter()
            .map(|t| {
                let stop = stop.clone();
                let tallies = tallies.clone();
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + MAX_RUNTIME;
                    let mut tick = tokio::time::interval(interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    for _ in 0..MAX_REQUESTS_PER_APP {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep_until(deadline) => break,
                            _ = tick.tick() => {}
                        }
                        let answer = ask(&t).await;
                        let at = Utc::now();
                        if let Ok(mut m) = tallies.lock() {
                            m.entry(t.app.clone()).or_default().count(answer, at);
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            tallies,
        }
    }

    /// What the prober has seen so far (shared: it goes on counting).
    pub fn tallies(&self) -> Tallies {
        self.tallies.clone()
    }

    pub async fn stop(self) -> BTreeMap<String, Tally> {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.tallies.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// One GET, `Connection: close`: every request a new connection, as a browser's first visit.
pub async fn ask(t: &Target) -> Answer {
    match tokio::time::timeout(REQUEST_TIMEOUT, get(t)).await {
        Ok(Ok(503)) => Answer::Maintenance,
        Ok(Ok(code)) if (200..400).contains(&code) => Answer::App(code),
        Ok(Ok(code)) => Answer::Failed(format!("HTTP {code}")),
        Ok(Err(e)) => Answer::Failed(e.to_string()),
        Err(_) => Answer::Failed(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
    }
}

async fn get(t: &Target) -> Result<u16> {
    let mut s = tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: pgshift-prober\r\nConnection: close\r\n\r\n",
        t.path, t.host, t.port
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_BODY {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..buf.len().min(64)]).to_string();
    let code = head
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            if buf.is_empty() {
                eyre!("connection closed without an answer")
            } else {
                eyre!("not an HTTP answer")
            }
        })?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls_are_probed() {
        assert!(Target::new("a", "http://127.0.0.1:8080/a/").is_ok());
        assert!(Target::new("a", "http://localhost/a/").is_ok());
        assert!(Target::new("a", "http://[::1]:81/").is_ok());
        assert!(Target::new("a", "http://10.0.0.1:8080/").is_err());
        assert!(Target::new("a", "https://127.0.0.1/").is_err());
        assert!(Target::new("a", "http://example.ch/").is_err());
    }

    #[tokio::test]
    async fn answers_are_told_apart_by_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for reply in [
                "HTTP/1.1 200 OK\r\n\r\nok",
                "HTTP/1.1 503 Service Unavailable\r\n\r\n",
                "HTTP/1.1 502 Bad Gateway\r\n\r\n",
                "garbage",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let t = Target::new("a", &format!("http://127.0.0.1:{port}/a/")).unwrap();
        assert_eq!(ask(&t).await, Answer::App(200));
        assert_eq!(ask(&t).await, Answer::Maintenance);
        assert_eq!(ask(&t).await, Answer::Failed("HTTP 502".into()));
        assert_eq!(ask(&t).await, Answer::Failed("not an HTTP answer".into()));
        assert!(
            matches!(ask(&t).await, Answer::Failed(_)),
            "nobody listens any more"
        );
    }
}
