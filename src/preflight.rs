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

#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// A failure class id from docs/failures.md.
    pub class: crate::diagnose::FailureClass,
    pub detail: String,
    /// What `--apply-preflight` applies up front; `None` when a human must act first.
    pub remediation: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppPreflight {
    pub app: String,
    pub region: String,
    pub libpq: String,
    pub risks: Vec<Risk>,
}

impl AppPreflight {
    /// The remediations to apply up front, comma-joined for a run's parameters.
    pub fn remediations(&self) -> Option<String> {
        let r: Vec<&str> = self.risks.iter().filter_map(|r| r.remediation).collect();
        (!r.is_empty()).then(|| r.join(","))
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
    };
    let Some(t) = target(servers, runbook, app)? else {
        return Ok(out);
    };
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
            remediation: Some("md5-password"),
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
                remediation: pglz_fits.then_some("pglz-restore"),
            });
        }
    }
    Ok(risks)
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
    let available: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT name::text FROM pg_available_extensions")
            .fetch_all(&mut new)
            .await?
            .into_iter()
            .collect();
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
    let known: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT lower(name) FROM pg_settings")
            .fetch_all(&mut new)
            .await?
            .into_iter()
            .collect();
    for (k, v) in opts.role_settings.iter().chain(&opts.database_settings) {
        if !known.contains(&k.to_lowercase()) {
            risks.push(Risk {
                class: crate::diagnose::FailureClass::UnknownSetting,
                detail: format!("{k}={v} is not a setting NEW knows; it will not be copied"),
                remediation: Some("filter-settings"),
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

/// A check on OLD's catalog: the failure class, the query (one row per object: its name),
/// and what to tell the operator about each object found.
struct CatalogCheck {
    class: crate::diagnose::FailureClass,
    sql: &'static str,
    why: &'static str,
    remedy: &'static str,
}

/// The routines PostgreSQL 14 re-declared over `anycompatible…` (pg_upgrade's list): a user
/// aggregate or operator built on them with `anyarray`/`anyelement` no longer restores.
const OLD_POLYMORPHICS: &str = "ARRAY['array_append(anyarray,anyelement)', 'array_cat(anyarray,anyarray)', 'array_prepend(anyelement,anyarray)', 'array_remove(anyarray,anyelement)', 'array_replace(anyarray,anyelement,anyelement)', 'array_position(anyarray,anyelement)', 'array_position(anyarray,anyelement,integer)', 'array_positions(anyarray,anyelement)', 'width_bucket(anyelement,anyarray)']::regprocedure[]";

/// What `pg_upgrade --check` refuses for a 13 → 14/15 upgrade (check.c, version.c), and what a
/// restore running as the app's role (`pg_restore --role=APP`) cannot create. All read from
/// OLD's catalog; objects of extensions are the extension's (NEW installs its own version).
fn catalog_checks() -> Vec<CatalogCheck> {
    vec![
        CatalogCheck {
            class: crate::diagnose::FailureClass::Pg14Incompatible,
            sql: "SELECT format('operator %s.%s (%s, none)', n.nspname, o.oprname, o.oprleft::regtype)
                  FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
                  WHERE o.oprright = 0 AND o.oid >= 16384
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e')",
            why: "is a user-defined postfix operator; PostgreSQL 14 removed postfix operators",
            remedy: "drop it on OLD (or re-create it as a prefix operator or a function) and change the queries that use it",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Pg14Incompatible,
            sql: "SELECT 'aggregate ' || p.oid::regprocedure::text || ' over ' || a.aggtransfn::regprocedure::text
                  FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid
                  WHERE p.oid >= 16384 AND a.aggtranstype = ANY (ARRAY['anyarray', 'anyelement']::regtype[])
                    AND (a.aggtransfn = ANY (OLD_POLYMORPHICS) OR a.aggfinalfn = ANY (OLD_POLYMORPHICS))
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
                  UNION ALL
                  SELECT 'operator ' || o.oid::regoperator::text || ' over ' || o.oprcode::regprocedure::text
                  FROM pg_operator o
                  WHERE o.oid >= 16384 AND o.oprcode = ANY (OLD_POLYMORPHICS)
                    AND o.oprleft = ANY (ARRAY['anyarray', 'anyelement']::regtype[])
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e')",
            why: "is built on a routine PostgreSQL 14 re-declared over anycompatible types (on NEW: function … (anyarray, …) does not exist)",
            remedy: "drop it on OLD and re-create it with anycompatible/anycompatiblearray instead of anyelement/anyarray",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Pg14Incompatible,
            sql: "SELECT format('encoding conversion %I.%I (%s to %s)', n.nspname, c.conname, pg_encoding_to_char(c.conforencoding), pg_encoding_to_char(c.contoencoding))
                  FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.oid >= 16384 AND c.conproc::oid >= 16384
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_conversion'::regclass AND d.objid = c.oid AND d.deptype = 'e')",
            // pg_upgrade flags every user conversion; one over a built-in function restores
            // (NEW's function of that name has the 14+ signature), so only a user function is.
            why: "is a user-defined encoding conversion over a user function; PostgreSQL 14 changed the conversion function signature",
            remedy: "drop it on OLD; re-create it on NEW with a 14+ conversion function if the app needs it",
        },
        // pg_upgrade also refuses reg* columns (regproc, regoperator, …): it keeps OIDs. pg_dump
        // writes them as names and pg_restore reads them back, so they are no risk here.
        CatalogCheck {
            class: crate::diagnose::FailureClass::Privilege,
            sql: "SELECT format('function %s in language %s', p.oid::regprocedure, l.lanname)
                  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE NOT l.lanpltrusted AND p.prokind <> 'a' AND p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')",
            why: "is in an untrusted language: only a superuser can create it, and NEW is restored as the app's role",
            remedy: "have an admin create it on NEW before the restore (or drop it on OLD); pgshift does not restore as superuser",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Privilege,
            sql: "SELECT format('base type %s', t.oid::regtype)
                  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                  WHERE t.typtype = 'b' AND t.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                    AND NOT (t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')",
            why: "is a base type: only a superuser can create one, and NEW is restored as the app's role",
            remedy: "have an admin create the type (and its I/O functions) on NEW before the restore, or drop it on OLD",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Privilege,
            sql: "SELECT format('procedural language %I', l.lanname) FROM pg_language l
                  WHERE l.oid >= 16384
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_language'::regclass AND d.objid = l.oid AND d.deptype = 'e')",
            why: "was created outside an extension: only a superuser can create it",
            remedy: "create it on NEW as an extension before the restore",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Privilege,
            sql: "SELECT format('operator class %I.%I for %s', n.nspname, c.opcname, am.amname)
                  FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am am ON am.oid = c.opcmethod
                  WHERE c.oid >= 16384
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_opclass'::regclass AND d.objid = c.oid AND d.deptype = 'e')",
            why: "is an operator class: only a superuser can create one",
            remedy: "have an admin create it on NEW before the restore, or drop it on OLD",
        },
        CatalogCheck {
            class: crate::diagnose::FailureClass::Privilege,
            sql: "SELECT format('event trigger %I', e.evtname) FROM pg_event_trigger e
                  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e')",
            why: "is an event trigger: only a superuser can create one",
            remedy: "have an admin create it on NEW after the restore, or drop it on OLD",
        },
    ]
}

/// Objects in OLD's database that a restore on NEW as the app's role cannot carry: the
/// `pg_upgrade --check` rules for 13 → 14/15 and the superuser-only objects. Reads OLD only,
/// so `migrate` runs it before the window. Each risk names one object and its remedy.
pub async fn blockers(old: &Endpoint, database: &str, new: Option<&Endpoint>) -> Result<Vec<Risk>> {
    let mut conn = old.connect(database).await?;
    let mut risks = Vec::new();
    if let Some(new) = new {
        risks.extend(removed_builtins(&mut conn, new).await?);
    }
    for check in catalog_checks() {
        let sql = check.sql.replace("OLD_POLYMORPHICS", OLD_POLYMORPHICS);
        let objects: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await?;
        for o in objects {
            risks.push(Risk {
                class: check.class,
                detail: format!("{o} {}; remedy: {}", check.why, check.remedy),
                remediation: None,
            });
        }
    }
    let _ = sqlx::Connection::close(conn).await;
    Ok(risks)
}

/// The app's objects that depend on a built-in function NEW no longer has (14 removed e.g.
/// `numeric_fac`, which PostgreSQL's own regression database uses in an operator): pg_restore
/// fails with `function … does not exist`. The polymorphic routines 14 re-declared are the
/// check above's, not repeated here.
async fn removed_builtins(old: &mut sqlx::PgConnection, new: &Endpoint) -> Result<Vec<Risk>> {
    let used: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        // Dependencies on pinned built-ins are not recorded in pg_depend: read the catalogs'
        // own function columns.
        "WITH uses (classid, objid, fn) AS (
             SELECT 'pg_operator'::regclass, o.oid, f FROM pg_operator o, unnest(ARRAY[o.oprcode, o.oprrest, o.oprjoin]::oid[]) f
             UNION ALL SELECT 'pg_proc'::regclass, a.aggfnoid, f FROM pg_aggregate a,
                 unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]) f
             UNION ALL SELECT 'pg_cast'::regclass, c.oid, c.castfunc FROM pg_cast c
             UNION ALL SELECT 'pg_type'::regclass, t.oid, f FROM pg_type t,
                 unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze]::oid[]) f
             UNION ALL SELECT 'pg_amproc'::regclass, p.oid, p.amproc FROM pg_amproc p
         )
         SELECT DISTINCT pg_describe_object(u.classid, u.objid, 0), u.fn::regprocedure::text
         FROM uses u
         WHERE u.fn <> 0 AND u.fn < 16384 AND u.objid >= 16384
           AND NOT (u.fn = ANY ({OLD_POLYMORPHICS}))
           AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = u.classid AND e.objid = u.objid AND e.deptype = 'e')
         ORDER BY 2, 1"
    )))
    .fetch_all(&mut *old)
    .await?;
    if used.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = new.connect("postgres").await?;
    let mut risks = Vec::new();
    for (object, function) in used {
        // Printed with OLD's search_path (pg_catalog first): the same text names it on NEW.
        let there: Option<String> = sqlx::query_scalar("SELECT to_regprocedure($1)::text")
            .bind(&function)
            .fetch_one(&mut conn)
            .await?;
        if there.is_none() {
            risks.push(Risk {
                class: crate::diagnose::FailureClass::Pg14Incompatible,
                detail: format!(
                    "{object} uses the built-in function {function}, which NEW no longer has; remedy: rewrite it on OLD over a function NEW has (or drop it)"
                ),
                remediation: None,
            });
        }
    }
    let _ = sqlx::Connection::close(conn).await;
    Ok(risks)
}

/// Classes of preflight findings a migration must not start with: the restore cannot carry
/// the object, and nothing pgshift applies changes that.
pub fn blocks_migration(r: &Risk) -> bool {
    matches!(
        r.class,
        crate::diagnose::FailureClass::Pg14Incompatible | crate::diagnose::FailureClass::Privilege
    )
}
