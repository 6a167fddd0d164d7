//! Preflight: before the window, against the real OLD and NEW servers, predict per app the
//! failures a migration would hit — and the remediation that avoids each one.

use std::collections::HashSet;

use color_eyre::eyre::Result;
use serde::Serialize;
use sqlx::{AssertSqlSafe, Executor};

use crate::inventory::App;
use crate::platform::servers::Servers;
use crate::postgres::wire::{AuthRequest, auth_request};
use crate::postgres::{Endpoint, PasswordMethod, exec, hash_password, ident, literal};
use crate::runbook::Runbook;

/// The btree limit for an index row on 8 kB pages.
const BTREE_MAX: i32 = 2704;
/// Index tuple header and alignment around the stored datum (measured: a 3,677-byte datum
/// made a 3,696-byte index row).
const INDEX_ROW_OVERHEAD: i32 = 20;
/// Values shorter than this cannot exceed the limit whatever the compression.
const CANDIDATE_BYTES: i32 = BTREE_MAX - INDEX_ROW_OVERHEAD;
/// At most this many oversized values are tried per indexed column: bounded cost on big tables.
const SAMPLE: i64 = 200;

use crate::diagnose::RemediationId;
pub use crate::diagnose::Risk;

#[derive(Debug, Clone, Serialize)]
pub struct AppPreflight {
    pub app: String,
    pub region: String,
    pub libpq: String,
    pub risks: Vec<Risk>,
    /// For an app that asks for the logical strategy: the strategy it gets, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategyNote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyNote {
    pub strategy: crate::inventory::Strategy,
    pub why: String,
}

impl AppPreflight {
    /// The remediations to apply up front, comma-joined for a run's parameters.
    pub fn remediations(&self) -> Option<String> {
        let r: Vec<RemediationId> = self.risks.iter().filter_map(|r| r.remediation).collect();
        RemediationId::join_list(&r)
    }
}

/// Where an app's databases are: OLD's admin endpoint and database, NEW's admin endpoint.
struct Target {
    old: Endpoint,
    database: String,
    role: String,
    new: Endpoint,
}

fn target(servers: &Servers, runbook: &Runbook, app: &App) -> Result<Option<Target>> {
    let wanted = runbook.collected_services();
    let Some(s) = app
        .services
        .iter()
        .find(|s| s.provisioned && wanted.contains(&s.service.as_str()))
    else {
        return Ok(None);
    };
    let (Some(server), Some(database), Some(role)) = (&s.server, &s.database, &s.user) else {
        return Ok(None);
    };
    let major = runbook.target_major().unwrap_or(15);
    let region = servers
        .inventory()
        .regions
        .iter()
        .find(|r| r.name == app.region);
    let Some(new_server) = region.and_then(|r| r.targets.get(&major)) else {
        return Ok(None);
    };
    Ok(Some(Target {
        old: servers.admin(server)?,
        database: database.clone(),
        role: role.clone(),
        new: servers.admin(new_server)?,
    }))
}

pub async fn check(servers: &Servers, runbook: &Runbook, app: &App) -> Result<AppPreflight> {
    let mut out = AppPreflight {
        app: app.name.clone(),
        region: app.region.clone(),
        libpq: app.client.to_string(),
        risks: Vec::new(),
        strategy: None,
    };
    let Some(t) = target(servers, runbook, app)? else {
        return Ok(out);
    };
    let (want, why) = runbook.strategy_for(app);
    if want == crate::inventory::Strategy::Logical {
        let lacks = crate::postgres::logical::blockers(&t.old, &t.database).await?;
        out.strategy = Some(if lacks.is_empty() {
            StrategyNote {
                strategy: want,
                why: format!("{why}; OLD can publish every table"),
            }
        } else {
            StrategyNote {
                strategy: crate::inventory::Strategy::Dump,
                why: format!("logical asked ({why}), but {}", lacks.join("; ")),
            }
        });
    }
    if !app.client.supports_scram()
        && let Some(r) = scram(&t, app).await?
    {
        out.risks.push(r);
    }
    out.risks
        .extend(blockers(&t.old, &t.database, Some(&t.new)).await?);
    out.risks.extend(btree(&t).await?);
    out.risks.extend(extensions_and_settings(&t).await?);
    Ok(out)
}

/// Provision a throwaway role on NEW the way reprovision would and ask NEW which
/// authentication it wants for it.
async fn scram(t: &Target, app: &App) -> Result<Option<Risk>> {
    let mut admin = t.new.connect("postgres").await?;
    let setting: String = sqlx::query_scalar("SELECT current_setting('password_encryption')")
        .fetch_one(&mut admin)
        .await?;
    let method = PasswordMethod::from_setting(&setting).unwrap_or(PasswordMethod::ScramSha256);
    let probe = format!("pgshift_preflight_{:08x}", rand::random::<u32>());
    let password: String = format!("{:032x}", rand::random::<u128>());
    exec(
        &mut admin,
        format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            ident(&probe),
            literal(&hash_password(method, &probe, &password))
        ),
    )
    .await?;
    let asked = auth_request(&t.new.host, t.new.port, &probe, "postgres").await;
    exec(&mut admin, format!("DROP ROLE IF EXISTS {}", ident(&probe))).await?;
    Ok(match asked? {
        AuthRequest::Sasl(mechs) => Some(Risk {
            class: crate::diagnose::FailureClass::LibpqScram,
            detail: format!(
                "NEW hashes new passwords {setting} and asks for {}; the image's {} cannot answer",
                mechs.join("/"),
                app.client.label()
            ),
            remediation: Some(RemediationId::Md5Password),
        }),
        _ => None,
    })
}

/// Values in btree-indexed text columns that fit the limit compressed on OLD but would not
/// with NEW's `default_toast_compression`.
async fn btree(t: &Target) -> Result<Vec<Risk>> {
    let mut old = t.old.connect(&t.database).await?;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT DISTINCT format('%I.%I', n.nspname, c.relname), a.attname::text, i.relname::text
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_am am ON am.oid = i.relam AND am.amname = 'btree'
         JOIN pg_class c ON c.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (x.indkey)
         WHERE a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&mut old)
    .await?;
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let mut new = t.new.connect("postgres").await?;
    let compression: String =
        sqlx::query_scalar("SELECT current_setting('default_toast_compression')")
            .fetch_one(&mut new)
            .await?;
    new.execute(AssertSqlSafe(format!(
        "CREATE TEMP TABLE pgshift_probe (v text COMPRESSION {}, p text COMPRESSION pglz)",
        ident(&compression)
    )))
    .await?;
    let mut risks = Vec::new();
    for (table, column, index) in columns {
        let sql = format!(
            "SELECT {col}::text FROM {table} WHERE octet_length({col}) > {CANDIDATE_BYTES} LIMIT {SAMPLE}",
            col = ident(&column)
        );
        let values: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&mut old)
            .await?;
        if values.is_empty() {
            continue;
        }
        new.execute("TRUNCATE pgshift_probe").await?;
        for v in &values {
            sqlx::query("INSERT INTO pgshift_probe (v, p) VALUES ($1, $1)")
                .bind(v)
                .execute(&mut new)
                .await?;
        }
        let (on_new, with_pglz): (i32, i32) = sqlx::query_as(
            "SELECT max(pg_column_size(v)), max(pg_column_size(p)) FROM pgshift_probe",
        )
        .fetch_one(&mut new)
        .await?;
        if on_new + INDEX_ROW_OVERHEAD > BTREE_MAX {
            let pglz_fits = with_pglz + INDEX_ROW_OVERHEAD <= BTREE_MAX;
            risks.push(Risk {
                class: crate::diagnose::FailureClass::BtreeIndexRowSize,
                detail: format!(
                    "index {index} on {table}.{column}: a value compresses to {on_new} bytes with {compression} (limit {BTREE_MAX}), {with_pglz} with pglz"
                ),
                remediation: pglz_fits.then_some(RemediationId::PglzRestore),
            });
        }
    }
    Ok(risks)
}

/// The one text column of `sql`'s rows, as a set.
async fn names(conn: &mut sqlx::PgConnection, sql: &'static str) -> Result<HashSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(conn).await?;
    Ok(rows.into_iter().collect())
}

async fn extensions_and_settings(t: &Target) -> Result<Vec<Risk>> {
    let mut risks = Vec::new();
    let mut old = t.old.connect(&t.database).await?;
    let exts: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql'")
            .fetch_all(&mut old)
            .await?;
    let opts =
        crate::postgres::provision::read_runtime_options(&t.old, &t.database, &t.role).await?;
    let db_owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(&mut old)
    .await?;
    let mut new = t.new.connect("postgres").await?;
    let available = names(&mut new, "SELECT name::text FROM pg_available_extensions").await?;
    for e in exts.iter().filter(|e| !available.contains(*e)) {
        risks.push(Risk {
            class: crate::diagnose::FailureClass::ExtensionMissing,
            detail: format!("extension {e} is not available on NEW"),
            remediation: None,
        });
    }
    // Extensions outside schema public are created by the restore, as the app's role: NEW's
    // default version must be one the app role may create (trusted).
    let elsewhere: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname <> 'plpgsql' AND n.nspname <> 'public'",
    )
    .fetch_all(&mut old)
    .await?;
    for (e, schema) in elsewhere.iter().filter(|(e, _)| available.contains(e)) {
        let trusted: Option<bool> = sqlx::query_scalar(
            "SELECT v.trusted FROM pg_available_extension_versions v JOIN pg_available_extensions a ON a.name = v.name AND a.default_version = v.version
             WHERE v.name = $1",
        )
        .bind(e)
        .fetch_optional(&mut new)
        .await?;
        if trusted == Some(false) {
            risks.push(Risk {
                class: crate::diagnose::FailureClass::Privilege,
                detail: format!(
                    "extension {e} in schema {schema} is not trusted on NEW: the restore, running as the app's role, cannot create it; remedy: have an admin CREATE EXTENSION {e} SCHEMA {schema} on NEW before the restore"
                ),
                remediation: None,
            });
        }
    }
    // An extension whose version on OLD NEW neither ships nor can update from: the app's
    // objects that depend on that version's behaviour are on their own.
    let versions: Vec<(String, String)> = sqlx::query_as(
        "SELECT extname::text, extversion::text FROM pg_extension WHERE extname <> 'plpgsql'",
    )
    .fetch_all(&mut old)
    .await?;
    for (e, v) in versions.iter().filter(|(e, _)| available.contains(e)) {
        let reachable: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extension_versions WHERE name = $1 AND version = $2)
                 OR EXISTS (SELECT 1 FROM pg_available_extensions a, pg_extension_update_paths(a.name) p
                            WHERE a.name = $1 AND p.source = $2 AND p.target = a.default_version AND p.path IS NOT NULL)",
        )
        .bind(e)
        .bind(v)
        .fetch_one(&mut new)
        .await?;
        if !reachable {
            risks.push(Risk {
                class: crate::diagnose::FailureClass::ExtensionVersion,
                detail: format!(
                    "extension {e} {v} on OLD: NEW has neither that version nor an update path from it to its default; remedy: ALTER EXTENSION {e} UPDATE on OLD to a version NEW ships"
                ),
                remediation: None,
            });
        }
    }
    let known = names(&mut new, "SELECT lower(name) FROM pg_settings").await?;
    for (k, v) in opts.role_settings.iter().chain(&opts.database_settings) {
        if !known.contains(&k.to_lowercase()) {
            risks.push(Risk {
                class: crate::diagnose::FailureClass::UnknownSetting,
                detail: format!("{k}={v} is not a setting NEW knows; it will not be copied"),
                remediation: Some(RemediationId::FilterSettings),
            });
        }
    }
    if db_owner != t.role {
        risks.push(Risk {
            class: crate::diagnose::FailureClass::PublicSchemaPermission,
            detail: format!(
                "OLD's database is owned by {db_owner}, not the app role {}: on 15 the app can no longer CREATE in schema public unless it owns the database",
                t.role
            ),
            remediation: None,
        });
    }
    Ok(risks)
}

pub use crate::postgres::blockers::{blockers, blocks_migration};
