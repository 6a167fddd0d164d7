//! The catalog half of verification: per kind of object, one line per object the app owns,
//! read the same way on OLD (13) and NEW (15) so the two sets compare equal when the restore
//! carried everything. Objects that belong to an extension are the extension's, not the app's
//! (NEW may install another version of it), and are left out.
//!
//! Version differences tolerated, each on purpose (also in docs/verification.md):
//! - ICU collations: 15 keeps the locale in `pg_collation.colliculocale` (`collcollate` and
//!   `collctype` are NULL), 13 in `collcollate`/`collctype`. Both are read as one `locale`.
//!   `collversion` is not compared: it is the OS's/ICU's, not the app's (class `collation`).
//! - Schema `public`: 15 makes `pg_database_owner` own it and revokes CREATE from PUBLIC; its
//!   owner and ACL are not compared (class `public-schema-permission` covers the effect).
//! - Extension versions: NEW installs its own default version; only name and schema compare.
//! - Settings that 14 or 15 removed (`REMOVED_SETTINGS`) are not copied to NEW (class
//!   `unknown-setting`); a setting of that name present only on OLD is not a difference.
//! - ACL entries compare as a set: pg_restore may GRANT them in another order.
//! - Object owners are not compared: pg_restore runs `--no-owner --role=APP`, so NEW's
//!   objects are the app role's whatever OLD had. ACL entries are (they name roles).

use std::collections::{BTreeMap, BTreeSet};

use color_eyre::eyre::{Result, WrapErr};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};

const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// Settings PostgreSQL 14 and 15 removed: present on OLD, never copied to NEW.
pub const REMOVED_SETTINGS: &[&str] = &[
    "operator_precedence_warning",
    "vacuum_cleanup_index_scale_factor",
    "stats_temp_directory",
];

/// `NOT EXISTS` an extension membership of `oid` in catalog `class`.
fn own(class: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{class}'::regclass AND dep.objid = {oid} AND dep.deptype = 'e')"
    )
}

/// Kind → the query listing its objects, one text per object. `ver` is server_version_num.
fn kinds(ver: i32) -> Vec<(&'static str, String)> {
    let rel = own("pg_class", "c.oid");
    let locale = if ver >= 150000 {
        "CASE co.collprovider WHEN 'i' THEN co.colliculocale ELSE co.collcollate || '/' || co.collctype END"
    } else {
        "CASE co.collprovider WHEN 'i' THEN co.collcollate ELSE co.collcollate || '/' || co.collctype END"
    };
    vec![
        (
            "relations",
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname) || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
                   || ' rls=' || c.relrowsecurity || ' force_rls=' || c.relforcerowsecurity || ' replica_identity=' || c.relreplident::text
                   || CASE WHEN c.relkind = 'm' THEN ' populated=' || c.relispopulated ELSE '' END
                   || CASE WHEN c.relkind = 'v' THEN ' definition=' || md5(pg_get_viewdef(c.oid)) ELSE '' END
                   || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) x), '-')
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND {USER_NS} AND {rel}"
            ),
        ),
        (
            "columns",
            format!(
                "SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                   || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
                   || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
                   || ' collation=' || coalesce((SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation), '-')
                   || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), '-')
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND {USER_NS} AND {rel}"
            ),
        ),
        (
            "inheritance",
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname) || ' inherits ' || i.inhparent::regclass::text || ' #' || i.inhseqno
                   || coalesce(' ' || pg_get_expr(c.relpartbound, c.oid), '')
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'f') AND {USER_NS} AND {rel}"
            ),
        ),
        (
            "constraints",
            format!(
                "SELECT CASE WHEN c.oid IS NULL THEN 'type ' || k.contypid::regtype::text ELSE format('%I.%I', n.nspname, c.relname) END || ' ' || quote_ident(k.conname)
                   || ' ' || pg_get_constraintdef(k.oid) || ' validated=' || k.convalidated
                 FROM pg_constraint k JOIN pg_namespace kn ON kn.oid = k.connamespace
                 LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE kn.nspname NOT IN ('pg_catalog', 'information_schema') AND {}",
                own("pg_constraint", "k.oid")
            ),
        ),
        (
            "indexes",
            format!(
                "SELECT pg_get_indexdef(x.indexrelid) || ' clustered=' || x.indisclustered || ' replica_identity=' || x.indisreplident
                 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE {USER_NS} AND {rel}"
            ),
        ),
        (
            "sequences",
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || format_type(s.seqtypid, NULL) || ' start=' || s.seqstart
                   || ' increment=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
                   || ' owned_by=' || coalesce((SELECT d.refobjid::regclass::text || '.' || d.refobjsubid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass), '-')
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE {USER_NS} AND {rel}"
            ),
        ),
        (
            "functions",
            format!(
                "SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) || ' kind=' || p.prokind::text
                   || ' returns ' || coalesce(pg_get_function_result(p.oid), '-') || ' language=' || l.lanname || ' volatility=' || p.provolatile::text
                   || ' strict=' || p.proisstrict || ' security_definer=' || p.prosecdef || ' body=' || md5(p.prosrc)
                   || ' config=' || coalesce(p.proconfig::text, '-') || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) x), '-')
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
                 WHERE {USER_NS} AND {}",
                own("pg_proc", "p.oid")
            ),
        ),
        (
            "types",
            format!(
                "SELECT format('%I.%I', n.nspname, t.typname) || ' type=' || t.typtype::text
                   || coalesce(' labels=' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')
                   || CASE WHEN t.typtype = 'd' THEN ' base=' || format_type(t.typbasetype, t.typtypmod) || ' notnull=' || t.typnotnull ELSE '' END
                   || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(t.typacl) x), '-')
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm') AND NOT (t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
                   AND t.typtype <> 'm' AND {USER_NS} AND {}",
                own("pg_type", "t.oid")
            ),
        ),
        (
            "operators",
            format!(
                "SELECT format('%I.%s', n.nspname, o.oprname) || '(' || o.oprleft::regtype::text || ', ' || o.oprright::regtype::text || ') ' || o.oprcode::regproc::text
                 FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE {USER_NS} AND {}",
                own("pg_operator", "o.oid")
            ),
        ),
        (
            "collations",
            format!(
                "SELECT format('%I.%I', n.nspname, co.collname) || ' provider=' || co.collprovider::text || ' locale=' || coalesce({locale}, '-')
                   || ' deterministic=' || co.collisdeterministic
                 FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace WHERE {USER_NS} AND {}",
                own("pg_collation", "co.oid")
            ),
        ),
        (
            "schemas",
            format!(
                "SELECT quote_ident(n.nspname) || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) x), '-') FROM pg_namespace n
                 WHERE {USER_NS} AND n.nspname <> 'public' AND {}",
                own("pg_namespace", "n.oid")
            ),
        ),
        (
            "extensions",
            "SELECT quote_ident(e.extname) || ' schema=' || quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace".to_string(),
        ),
        (
            "policies",
            "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || quote_ident(p.polname) || ' cmd=' || p.polcmd::text || ' permissive=' || p.polpermissive
               || ' roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END, ',' ORDER BY 1) FROM unnest(p.polroles) r)
               || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-') || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-')
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace".to_string(),
        ),
        (
            "rules",
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || quote_ident(r.rulename) || ' enabled=' || r.ev_enabled::text || ' ' || pg_get_ruledef(r.oid)
                 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE r.rulename <> '_RETURN' AND {USER_NS}"
            ),
        ),
        (
            "triggers",
            format!(
                "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || quote_ident(t.tgname) || ' enabled=' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE NOT t.tgisinternal AND {USER_NS}"
            ),
        ),
        (
            "statistics",
            format!(
                "SELECT format('%I.%I', n.nspname, s.stxname) || ' ' || pg_get_statisticsobjdef(s.oid)
                 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE {USER_NS}"
            ),
        ),
        (
            "comments",
            "SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
             FROM pg_description d
             WHERE d.objoid >= 16384 AND d.classoid <> 'pg_extension'::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = d.classoid AND dep.objid = d.objoid AND dep.deptype = 'e')
               AND NOT EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_depend ext ON ext.classid = 'pg_class'::regclass AND ext.objid = dep.refobjid AND ext.deptype = 'e'
                               WHERE d.classoid = 'pg_class'::regclass AND dep.classid = 'pg_class'::regclass AND dep.objid = d.objoid AND dep.deptype = 'i')
               AND (d.classoid <> 'pg_class'::regclass OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = d.objoid AND " .to_string()
                + USER_NS + "))",
        ),
        (
            "default privileges",
            "SELECT pg_get_userbyid(a.defaclrole)::text || ' in ' || coalesce(quote_ident(n.nspname), '-') || ' on ' || a.defaclobjtype::text || ' ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.defaclacl) x)
             FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace".to_string(),
        ),
        (
            "large objects",
            "SELECT m.oid::text || ' bytes=' || octet_length(lo_get(m.oid)) || ' md5=' || md5(lo_get(m.oid)) || ' acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(m.lomacl) x), '-')
             FROM pg_largeobject_metadata m".to_string(),
        ),
        (
            "settings",
            "SELECT CASE WHEN s.setrole = 0 THEN 'database' ELSE 'role ' || pg_get_userbyid(s.setrole)::text END || ' ' || c
             FROM pg_db_role_setting s, unnest(s.setconfig) c
             WHERE (s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0)
                OR (s.setdatabase = 0 AND s.setrole = (SELECT datdba FROM pg_database WHERE datname = current_database()))".to_string(),
        ),
    ]
}

/// Read every kind on `conn` (any transaction it is in stays open). Names print qualified:
/// the session's search_path is pg_catalog only, so OLD's and NEW's texts do not depend on
/// the search_path the database or role sets.
pub async fn read(conn: &mut PgConnection) -> Result<BTreeMap<String, Vec<String>>> {
    let ver: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await?;
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *conn)
        .await?;
    conn.execute("SET search_path = pg_catalog").await?;
    let mut out = BTreeMap::new();
    for (kind, sql) in kinds(ver) {
        let mut rows: Vec<Option<String>> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .wrap_err_with(|| format!("verification: reading the catalog's {kind}"))?;
        rows.sort();
        out.insert(kind.to_string(), rows.into_iter().flatten().collect());
    }
    conn.execute(AssertSqlSafe(format!(
        "SET search_path = {}",
        super::literal(&path)
    )))
    .await?;
    Ok(out)
}

/// A setting line (`database name=value` / `role r name=value`) of a setting NEW no longer has.
fn removed_setting(line: &str) -> bool {
    let rest = line.strip_prefix("database ").or_else(|| {
        line.strip_prefix("role ")
            .and_then(|r| r.split_once(' ').map(|x| x.1))
    });
    rest.and_then(|r| r.split_once('='))
        .is_some_and(|(k, _)| REMOVED_SETTINGS.contains(&k.to_lowercase().as_str()))
}

/// Every object of a kind on one side only, in words. A fingerprint stored before catalogs
/// were read (no kinds) compares nothing.
pub fn differences(
    old: &BTreeMap<String, Vec<String>>,
    new: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    if old.is_empty() || new.is_empty() {
        return out;
    }
    for (kind, a) in old {
        let a: BTreeSet<&String> = a.iter().collect();
        let b: BTreeSet<&String> = new.get(kind).into_iter().flatten().collect();
        for x in a.difference(&b) {
            if kind == "settings" && removed_setting(x) {
                continue;
            }
            out.push(format!("{kind}: only on OLD: {}", x.escape_debug()));
        }
        for x in b.difference(&a) {
            out.push(format!("{kind}: only on NEW: {}", x.escape_debug()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_removed_in_14_is_no_difference_and_others_are() {
        let old = BTreeMap::from([(
            "settings".to_string(),
            vec![
                "database work_mem=8MB".to_string(),
                "role app operator_precedence_warning=on".to_string(),
            ],
        )]);
        let new = BTreeMap::from([("settings".to_string(), vec![])]);
        assert_eq!(
            differences(&old, &new),
            vec!["settings: only on OLD: database work_mem=8MB".to_string()]
        );
    }

    #[test]
    fn names_with_newlines_are_printed_on_one_line() {
        let old = BTreeMap::from([("relations".to_string(), vec!["a\nb".to_string()])]);
        let new = BTreeMap::from([("relations".to_string(), vec![])]);
        assert_eq!(
            differences(&old, &new),
            vec![r"relations: only on OLD: a\nb"]
        );
    }
}
