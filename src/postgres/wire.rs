//! Just enough of the PostgreSQL wire protocol to learn which authentication a server asks a
//! role for — what a libpq < 10 client sees before it gives up on SCRAM.

use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    Ok,
    Cleartext,
    Md5,
    /// SASL with the mechanisms offered (`SCRAM-SHA-256`, …).
    Sasl(Vec<String>),
    Other(i32),
    /// The server refused before asking (e.g. no pg_hba entry, database missing).
    Error(String),
}

/// Send a StartupMessage for `user`/`database` and read the server's first answer.
pub async fn auth_request(
    host: &str,
    port: u16,
    user: &str,
    database: &str,
) -> Result<AuthRequest> {
    let fut = async {
        let mut s = TcpStream::connect((host, port)).await?;
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes()); // protocol 3.0
        for (k, v) in [("user", user), ("database", database)] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        s.write_all(&msg).await?;
        let tag = s.read_u8().await?;
        let len = s.read_i32().await?;
        if !(4..=65_536).contains(&len) {
            bail!("bad message length {len}");
        }
        let mut payload = vec![0u8; (len - 4) as usize];
        s.read_exact(&mut payload).await?;
        Ok::<_, color_eyre::Report>((tag, payload))
    };
    let (tag, payload) = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| eyre!("no answer from {host}:{port} within 10 s"))??;
    match tag {
        b'R' => {
            let code = i32::from_be_bytes(
                payload
                    .get(..4)
                    .ok_or_else(|| eyre!("short auth message"))?
                    .try_into()?,
            );
            Ok(match code {
                0 => AuthRequest::Ok,
                3 => AuthRequest::Cleartext,
                5 => AuthRequest::Md5,
                10 => AuthRequest::Sasl(
                    payload[4..]
                        .split(|b| *b == 0)
                        .filter(|m| !m.is_empty())
                        .map(|m| String::from_utf8_lossy(m).to_string())
                        .collect(),
                ),
                other => AuthRequest::Other(other),
            })
        }
        b'E' => {
            // Fields: a type byte then a C string; 'M' is the message.
            let msg = payload
                .split(|b| *b == 0)
                .find(|f| f.first() == Some(&b'M'))
                .map(|f| String::from_utf8_lossy(&f[1..]).to_string())
                .unwrap_or_else(|| "server error".into());
            Ok(AuthRequest::Error(msg))
        }
        other => bail!("unexpected message type {:?}", other as char),
    }
}
