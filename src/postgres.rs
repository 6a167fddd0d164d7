//! Real server work shared by the lab and the engine: connection options, SQL quoting and
//! password hashing done the way libpq's `PQencryptPasswordConn` does it.

pub mod blockers;
pub mod catalog;
pub mod copy;
pub mod digest;
pub mod leftovers;
pub mod logical;
mod password;
pub mod process;
pub mod provision;
pub mod verify;
pub mod wire;

pub use password::{PasswordMethod, hash_password};

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

use crate::inventory::Secret;

/// Where a server listens and who pgshift is there.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
}

impl Endpoint {
    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password.expose())
            .database(database)
            .application_name("pgshift")
            .log_statements(tracing::log::LevelFilter::Off)
            // sqlx logs slow statements in full; a CREATE ROLE carries a password verifier.
            .log_slow_statements(tracing::log::LevelFilter::Off, Duration::from_secs(3600))
    }

    /// Connect, naming the server in the error: operators must know which one is down.
    pub async fn connect(&self, database: &str) -> Result<PgConnection, ServerError> {
        let opts = self.options(database);
        match tokio::time::timeout(Duration::from_secs(15), PgConnection::connect_with(&opts)).await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(ServerError::Connect {
                target: self.describe(database),
                reason: one_line(&e.to_string()),
            }),
            Err(_) => Err(ServerError::Connect {
                target: self.describe(database),
                reason: "timed out after 15 s".into(),
            }),
        }
    }

    pub fn describe(&self, database: &str) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, database)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
}

/// Run one or more statements built from [`ident`] and [`literal`] — the only places pgshift
/// puts names or values into SQL text — over the simple query protocol.
pub async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
        .await
        .map(|_| ())
}

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on everywhere we go).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
