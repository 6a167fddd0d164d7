//! A minimal HTTP/1.0 GET over loopback, for health checks: no client library needed to ask
//! a process on 127.0.0.1 one question.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An HTTP answer: status code, status line, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    pub status_line: String,
    pub body: String,
}

/// `GET path` on 127.0.0.1:port; an error if nothing answers in `timeout`.
pub fn get(port: u16, path: &str, timeout: Duration) -> std::io::Result<Answer> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default().to_string();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP answer: {status_line:?}"),
            )
        })?;
    Ok(Answer {
        code,
        status_line,
        body: body.to_string(),
    })
}
