//! What a restore on NEW cannot carry, read from OLD's catalog before the window: the checks
//! `pg_upgrade --check` runs for 13 → 14/15 and the objects only a superuser can create. Used
//! by preflight and by `migrate`, which refuses such an app before it pauses it.

use color_eyre::eyre::Result;
use sqlx::AssertSqlSafe;

use super::Endpoint;
use crate::diagnose::Risk;

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
