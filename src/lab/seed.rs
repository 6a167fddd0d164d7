//! Seeding fixture databases: a login role with a generated password, a database it owns,
//! role and database settings, extensions, and the profile's schema and data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};
use sha2::{Digest, Sha256};

use super::profiles;
use super::secrets::Secrets;
use crate::inventory::{Inventory, LabSeed};
use crate::postgres::{Endpoint, PasswordMethod, exec, hash_password, ident, literal};

/// One fixture database to create on a lab cluster.
#[derive(Debug, Clone)]
pub struct SeedTask {
    pub app: String,
    pub service_id: String,
    /// Inventory name of the server (`pg13`), which names the secrets directory.
    pub server: String,
    pub major: u32,
    pub database: String,
    pub role: String,
    pub seed: LabSeed,
}

impl SeedTask {
    /// Changes whenever anything that shapes the database changes, so `lab up` re-seeds it.
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = Sha256::new();
        // Bump when the seeding procedure itself changes (v2: app sessions' TimeZone).
        h.update(b"seed-v2|");
        h.update(format!("{}|{}|{}|", self.server, self.database, self.role));
        h.update(profiles::sql(&self.seed)?);
        h.update(profiles::extensions(&self.seed.profile).join(","));
        h.update(profiles::admin_sql(&self.seed.profile, &self.role).unwrap_or_default());
        h.update(
            profiles::database_settings(&self.seed.profile)
                .iter()
                .map(|(k, v)| format!("{k}={v};"))
                .collect::<String>(),
        );
        h.update(
            ROLE_SETTINGS
                .iter()
                .map(|(k, v)| format!("{k}={v};"))
                .collect::<String>(),
        );
        Ok(hex::encode(&h.finalize()[..12]))
    }
}

/// Settings a real app's role and database carry; the engine must copy them to NEW.
const ROLE_SETTINGS: &[(&str, &str)] = &[("statement_timeout", "30s"), ("lock_timeout", "10s")];
const DATABASE_SETTINGS: &[(&str, &str)] = &[("timezone", "Europe/Zurich"), ("work_mem", "8MB")];
const CONNECTION_LIMIT: u32 = 20;

/// The lab services of an inventory that have a seed, on lab servers of known majors.
pub fn tasks(inv: &Inventory) -> Vec<SeedTask> {
    let mut out = Vec::new();
    for app in &inv.apps {
        for s in &app.services {
            let (Some(server), Some(db), Some(role), Some(seed)) =
                (&s.server, &s.database, &s.user, &s.seed)
            else {
                continue;
            };
            let Some(srv) = inv.server(server).filter(|x| x.is_lab()) else {
                continue;
            };
            if !s.provisioned {
                continue;
            }
            out.push(SeedTask {
                app: app.name.clone(),
                service_id: s.id.clone(),
                server: server.clone(),
                major: srv.version,
                database: db.clone(),
                role: role.clone(),
                seed: seed.clone(),
            });
        }
    }
    // Biggest first: it overlaps with all the small ones.
    out.sort_by_key(|t| std::cmp::Reverse(t.seed.rows * u64::from(t.seed.payload.max(50))));
    out
}

/// Create (or re-create) one fixture database. Idempotent: drops what a half-done seed left.
/// `ALTER {target} SET k = 'v'` for each setting (`target`: `ROLE r` or `DATABASE d`).
async fn set_all(
    admin: &mut sqlx::PgConnection,
    target: &str,
    settings: &[(&str, &str)],
) -> Result<()> {
    for (k, v) in settings {
        exec(admin, format!("ALTER {target} SET {k} = {}", literal(v))).await?;
    }
    Ok(())
}

pub async fn seed(ep: &Endpoint, secrets: &Secrets, task: &SeedTask) -> Result<()> {
    let mut admin = ep.connect("postgres").await?;
    let db = ident(&task.database);
    let role = ident(&task.role);
    exec(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    )
    .await?;
    exec(&mut admin, format!("DROP ROLE IF EXISTS {role}")).await?;
    let method: String = sqlx::query_scalar("SELECT current_setting('password_encryption')")
        .fetch_one(&mut admin)
        .await?;
    let method = PasswordMethod::from_setting(&method).unwrap_or(PasswordMethod::ScramSha256);
    let password = secrets.new_role_password(&task.server, &task.role)?;
    // Hashed here, as libpq's PQencryptPasswordConn does, so plaintext never travels in SQL.
    let verifier = hash_password(method, &task.role, password.expose());
    exec(
        &mut admin,
        format!(
            "CREATE ROLE {role} LOGIN PASSWORD {} CONNECTION LIMIT {CONNECTION_LIMIT}",
            literal(&verifier)
        ),
    )
    .await?;
    exec(&mut admin, format!("CREATE DATABASE {db} OWNER {role}")).await?;
    set_all(&mut admin, &format!("ROLE {role}"), ROLE_SETTINGS).await?;
    // A profile's own settings are SQL as written (a list such as search_path must not be
    // quoted into one element).
    for (k, v) in profiles::database_settings(&task.seed.profile) {
        exec(&mut admin, format!("ALTER DATABASE {db} SET {k} = {v}")).await?;
    }
    set_all(&mut admin, &format!("DATABASE {db}"), DATABASE_SETTINGS).await?;
    drop(admin);

    let mut conn = ep.connect(&task.database).await?;
    for ext in profiles::extensions(&task.seed.profile) {
        exec(
            &mut conn,
            format!("CREATE EXTENSION IF NOT EXISTS {}", ident(ext)),
        )
        .await?;
    }
    if let Some(sql) = profiles::admin_sql(&task.seed.profile, &task.role) {
        exec(&mut conn, sql)
            .await
            .wrap_err_with(|| format!("seeding {} as admin", task.database))?;
    }
    let body = profiles::sql(&task.seed)?;
    // As the app's own sessions would run it: with the database's TimeZone (sqlx's own
    // connection asks for UTC), so time-bucketing views hold what the app would see.
    let tz = DATABASE_SETTINGS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("timezone"))
        .map_or("UTC", |(_, v)| v);
    let script = format!(
        "SET ROLE {role};\nSET TimeZone = {};\n{body}\nRESET ROLE;",
        literal(tz)
    );
    exec(&mut conn, script)
        .await
        .wrap_err_with(|| format!("seeding {} (profile {})", task.database, task.seed.profile))?;
    exec(&mut conn, "ANALYZE".into()).await?;
    Ok(())
}

/// Which services are seeded, by fingerprint: `<lab>/seeded.json`.
pub struct Ledger {
    path: PathBuf,
    pub entries: BTreeMap<String, String>,
}

impl Ledger {
    pub fn load(lab_dir: &Path) -> Self {
        let path = lab_dir.join("seeded.json");
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Self { path, entries }
    }

    pub fn record(&mut self, service_id: &str, fingerprint: &str) -> Result<()> {
        self.entries
            .insert(service_id.to_string(), fingerprint.to_string());
        self.save()
    }

    pub fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.save()
    }

    fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.entries)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}
