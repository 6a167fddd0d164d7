//! Provisioning NEW as a PaaS would: a login role with a fresh password hashed the way the
//! server's `password_encryption` says, a database it owns, and OLD's runtime options copied
//! (role and database settings filtered against NEW's `pg_settings`, extensions, connection
//! limit).

use std::collections::HashSet;

use color_eyre::eyre::Result;
use serde::{Deserialize, Serialize};

use super::{Endpoint, PasswordMethod, exec, hash_password, ident, literal};
use crate::inventory::Secret;

/// What a database and its role carry besides data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    pub role_settings: Vec<(String, String)>,
    pub database_settings: Vec<(String, String)>,
    pub extensions: Vec<String>,
    pub connection_limit: i32,
}

/// Read OLD's runtime options for `database` and its `role`.
pub async fn read_runtime_options(
    old: &Endpoint,
    database: &str,
    role: &str,
) -> Result<RuntimeOptions> {
    let mut admin = old.connect("postgres").await?;
    let settings = |rows: Vec<Option<Vec<String>>>| -> Vec<(String, String)> {
        rows.into_iter()
            .flatten()
            .flatten()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    };
    let role_rows: Vec<Option<Vec<String>>> = sqlx::query_scalar(
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0",
    )
    .bind(role)
    .fetch_all(&mut admin)
    .await?;
    let db_rows: Vec<Option<Vec<String>>> = sqlx::query_scalar(
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 AND s.setrole = 0",
    )
    .bind(database)
    .fetch_all(&mut admin)
    .await?;
    let connection_limit: i32 =
        sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut admin)
            .await?
            .unwrap_or(-1);
    drop(admin);
    let mut conn = old.connect(database).await?;
    let extensions: Vec<String> = sqlx::query_scalar(
        // Only those in schema public: provisioning creates them there, as admin. An extension
        // in another schema is the restore's to create (as the app role, in its own schema):
        // created here first, the restore's CREATE EXTENSION IF NOT EXISTS would keep it in
        // the wrong schema. Preflight flags one the app role cannot create (`privilege`).
        "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' AND extnamespace = 'public'::regnamespace ORDER BY extname",
    )
    .fetch_all(&mut conn)
    .await?;
    Ok(RuntimeOptions {
        role_settings: settings(role_rows),
        database_settings: settings(db_rows),
        extensions,
        connection_limit,
    })
}

/// What provisioning did that the operator should know about.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// Settings NEW does not know, left out of the copy.
    pub skipped_settings: Vec<String>,
    pub method: Option<PasswordMethod>,
}

/// Drop (if a previous attempt left them) and create NEW's role with a password hashed as
/// NEW's `password_encryption` says, and copy the role's settings. Only ever called before NEW
/// is enabled: nothing of the app's lives there yet.
pub async fn provision_role(
    new: &Endpoint,
    database: &str,
    role: &str,
    password: &Secret,
    opts: &RuntimeOptions,
    force_method: Option<PasswordMethod>,
) -> Result<Provisioned> {
    let mut admin = new.connect("postgres").await?;
    let r = ident(role);
    exec(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(database)),
    )
    .await?;
    exec(&mut admin, format!("DROP ROLE IF EXISTS {r}")).await?;
    let setting: String = sqlx::query_scalar("SELECT current_setting('password_encryption')")
        .fetch_one(&mut admin)
        .await?;
    let method = force_method.unwrap_or_else(|| {
        PasswordMethod::from_setting(&setting).unwrap_or(PasswordMethod::ScramSha256)
    });
    // What the server itself would store for a plaintext password (under the session's
    // password_encryption), without sending the plaintext in SQL text.
    let verifier = hash_password(method, role, password.expose());
    exec(
        &mut admin,
        format!(
            "CREATE ROLE {r} LOGIN PASSWORD {} CONNECTION LIMIT {}",
            literal(&verifier),
            opts.connection_limit
        ),
    )
    .await?;
    let known = known_settings(&mut admin).await?;
    let mut out = Provisioned {
        method: Some(method),
        ..Default::default()
    };
    for (k, v) in &opts.role_settings {
        if known.contains(&k.to_lowercase()) {
            exec(
                &mut admin,
                format!("ALTER ROLE {r} SET {} = {}", ident(k), setting_value(k, v)),
            )
            .await?;
        } else {
            out.skipped_settings.push(format!("role {k}={v}"));
        }
    }
    Ok(out)
}

/// (Re)create NEW's empty database owned by `role`, with OLD's database settings and
/// extensions. Idempotent: a restore that died half-way starts from an empty database again.
pub async fn provision_database(
    new: &Endpoint,
    database: &str,
    role: &str,
    opts: &RuntimeOptions,
) -> Result<Vec<String>> {
    let mut admin = new.connect("postgres").await?;
    let db = ident(database);
    exec(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )
    .await?;
    exec(
        &mut admin,
        format!("CREATE DATABASE {db} OWNER {}", ident(role)),
    )
    .await?;
    let known = known_settings(&mut admin).await?;
    let mut skipped = Vec::new();
    for (k, v) in &opts.database_settings {
        if known.contains(&k.to_lowercase()) {
            exec(
                &mut admin,
                format!(
                    "ALTER DATABASE {db} SET {} = {}",
                    ident(k),
                    setting_value(k, v)
                ),
            )
            .await?;
        } else {
            skipped.push(format!("database {k}={v}"));
        }
    }
    drop(admin);
    if !opts.extensions.is_empty() {
        let mut conn = new.connect(database).await?;
        for e in &opts.extensions {
            exec(
                &mut conn,
                format!("CREATE EXTENSION IF NOT EXISTS {}", ident(e)),
            )
            .await?;
        }
    }
    Ok(skipped)
}

async fn known_settings(admin: &mut sqlx::PgConnection) -> Result<HashSet<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT lower(name) FROM pg_settings")
            .fetch_all(admin)
            .await?
            .into_iter()
            .collect(),
    )
}

/// List-valued settings (search_path) are stored as their list text; everything else is one
/// value to quote.
fn setting_value(key: &str, value: &str) -> String {
    if key.eq_ignore_ascii_case("search_path") {
        value
            .split(',')
            .map(|p| literal(p.trim().trim_matches('"')))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        literal(value)
    }
}

/// Does `database` exist on the server?
pub async fn database_exists(ep: &Endpoint, database: &str) -> Result<bool> {
    let mut admin = ep.connect("postgres").await?;
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(database)
            .fetch_one(&mut admin)
            .await?
            > 0,
    )
}
