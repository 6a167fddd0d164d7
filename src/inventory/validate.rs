//! Cross-references the raw inventory (regions, servers, unique names) into the model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::client::{Client, ClientFamily};
use toml::Spanned;

use super::model::{
    App, Inventory, RawInventory, Region, Server, ServerKind, ServiceInstance, ServiceKind,
    Strategy,
};

/// A validation failure at a byte offset of the source.
pub(super) struct Violation {
    pub offset: usize,
    pub message: String,
}

fn at<T>(span: &toml::Spanned<T>, message: impl Into<String>) -> Violation {
    Violation {
        offset: span.span().start,
        message: message.into(),
    }
}

pub(super) fn validate(raw: RawInventory, base: &Path) -> Result<Inventory, Violation> {
    let raw_platform = raw.platform;
    let mut servers = Vec::new();
    for (name, s) in raw.servers {
        let kind = match (s.lab, s.sim, &s.url) {
            (true, false, None) => ServerKind::Lab,
            (false, true, None) => ServerKind::Sim,
            (false, false, Some(url)) => {
                if let Err(why) = check_server_url(url.get_ref()) {
                    return Err(at(url, format!("server \"{}\" url: {why}", name.get_ref())));
                }
                ServerKind::Remote {
                    url: url.get_ref().clone(),
                }
            }
            _ => {
                return Err(at(
                    &name,
                    format!(
                        "server \"{}\" needs exactly one of `url = \"postgres://…\"`, `lab = true` or `sim = true`",
                        name.get_ref()
                    ),
                ));
            }
        };
        if !(MIN_MAJOR..=MAX_MAJOR).contains(s.version.get_ref()) {
            return Err(at(
                &s.version,
                format!(
                    "server \"{}\" version {} is not a PostgreSQL major version ({MIN_MAJOR}–{MAX_MAJOR})",
                    name.get_ref(),
                    s.version.get_ref()
                ),
            ));
        }
        if let Err(why) = check_name(name.get_ref()) {
            return Err(at(
                &name,
                format!("server name \"{}\" {why}", name.get_ref()),
            ));
        }
        servers.push(Server {
            name: name.into_inner(),
            version: s.version.into_inner(),
            kind,
            password: s.password.map(|p| p.anchored(base)),
        });
    }

    let mut regions: Vec<Region> = Vec::new();
    for r in raw.regions {
        if let Err(why) = check_name(r.name.get_ref()) {
            return Err(at(
                &r.name,
                format!("region name \"{}\" {why}", r.name.get_ref()),
            ));
        }
        if regions.iter().any(|x| x.name == *r.name.get_ref()) {
            return Err(at(
                &r.name,
                format!("duplicate region \"{}\"", r.name.get_ref()),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(r.concurrency.get_ref()) {
            return Err(at(
                &r.concurrency,
                format!(
                    "concurrency of region \"{}\" is {}: it must be between 1 and {MAX_CONCURRENCY}",
                    r.name.get_ref(),
                    r.concurrency.get_ref()
                ),
            ));
        }
        let mut targets = BTreeMap::new();
        for (major, server) in r.targets {
            let Ok(major) = major.parse::<u32>() else {
                return Err(at(
                    &server,
                    format!("target key \"{major}\" is not a major version"),
                ));
            };
            match servers.iter().find(|s| s.name == *server.get_ref()) {
                Some(s) if s.version == major => {}
                Some(s) => {
                    return Err(at(
                        &server,
                        format!(
                            "target for {major} is server \"{}\", which runs {}",
                            s.name, s.version
                        ),
                    ));
                }
                None => return Err(unknown_server(&server, &servers)),
            }
            targets.insert(major, server.into_inner());
        }
        regions.push(Region {
            name: r.name.into_inner(),
            concurrency: r.concurrency.into_inner(),
            targets,
        });
    }

    let mut apps: Vec<App> = Vec::new();
    // (server, database) → (service id, app): one database is one service's.
    let mut databases: HashMap<(String, String), (String, String)> = HashMap::new();
    let mut app_lines: HashMap<String, usize> = HashMap::new();
    let mut service_ids: HashMap<String, String> = HashMap::new();
    let mut service_names: HashMap<String, usize> = HashMap::new();
    for a in raw.apps {
        let name = a.name.get_ref().clone();
        if let Err(why) = check_name(&name) {
            return Err(at(&a.name, format!("app name \"{}\" {why}", shown(&name))));
        }
        if let Some(c) = &a.customer
            && c.trim().is_empty()
        {
            return Err(at(&a.name, format!("app \"{name}\" has an empty customer")));
        }
        if app_lines.contains_key(&name) {
            return Err(at(&a.name, format!("duplicate app \"{name}\"")));
        }
        app_lines.insert(name.clone(), a.name.span().start);
        if !regions.iter().any(|r| r.name == *a.region.get_ref()) {
            let known: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
            return Err(at(
                &a.region,
                format!(
                    "unknown region \"{}\" for app \"{name}\" (regions: {})",
                    a.region.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        let client = match (&a.libpq, &a.client) {
            (Some(v), None) => Client::libpq(v.get_ref()).ok_or_else(|| {
                at(
                    v,
                    format!(
                        "libpq version \"{}\" of app \"{name}\" is not like \"9.6\" or \"15.4\"",
                        v.get_ref()
                    ),
                )
            })?,
            (None, Some(c)) => Client::parse(c.get_ref()).ok_or_else(|| {
                let families: Vec<&str> = ClientFamily::ALL.iter().map(|f| f.id()).collect();
                at(
                    c,
                    format!(
                        "client \"{}\" of app \"{name}\" is not a family and a version like \"node-postgres 7.4.0\" (families: {})",
                        c.get_ref(),
                        families.join(", ")
                    ),
                )
            })?,
            (Some(_), Some(c)) => {
                return Err(at(
                    c,
                    format!("app \"{name}\" sets both libpq and client: keep one"),
                ));
            }
            (None, None) => {
                return Err(at(
                    &a.name,
                    format!(
                        "app \"{name}\" does not say which PostgreSQL client its image carries: add libpq = \"15.4\" or client = \"node-postgres 8.11.3\""
                    ),
                ));
            }
        };
        let mut services = Vec::new();
        for s in a.services {
            let id = s.id.get_ref().clone();
            if let Err(why) = check_name(&id) {
                return Err(at(&s.id, format!("service id \"{}\" {why}", shown(&id))));
            }
            if let Some(owner) = service_ids.get(&id) {
                return Err(at(
                    &s.id,
                    format!(
                        "duplicate service instance id \"{id}\" (already used by app \"{owner}\")"
                    ),
                ));
            }
            service_ids.insert(id.clone(), name.clone());
            service_names.insert(id.clone(), s.id.span().start);
            let kind = ServiceKind::from_service_name(s.service.get_ref());
            if let ServiceKind::Postgres { major } = kind
                && s.provisioned
            {
                let Some(server) = &s.server else {
                    return Err(at(
                        &s.id,
                        format!(
                            "provisioned service \"{id}\" needs `server`, `database` and `user`"
                        ),
                    ));
                };
                match servers.iter().find(|x| x.name == *server.get_ref()) {
                    None => return Err(unknown_server(server, &servers)),
                    Some(x) if x.version != major => {
                        return Err(at(
                            server,
                            format!(
                                "service \"{id}\" is {} but server \"{}\" runs PostgreSQL {}",
                                s.service.get_ref(),
                                x.name,
                                x.version
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                let (Some(database), Some(user), Some(_)) = (&s.database, &s.user, &s.password)
                else {
                    return Err(at(
                        &s.id,
                        format!(
                            "provisioned service \"{id}\" needs `database`, `user` and `password`"
                        ),
                    ));
                };
                for (what, v) in [("database", database), ("user", user)] {
                    if let Err(why) = check_pg_name(v.get_ref()) {
                        return Err(at(
                            v,
                            format!(
                                "{what} \"{}\" of service \"{id}\" {why}",
                                shown(v.get_ref())
                            ),
                        ));
                    }
                }
                let key = (server.get_ref().clone(), database.get_ref().clone());
                if let Some((other, _)) = databases.get(&key) {
                    return Err(at(
                        database,
                        format!(
                            "database \"{}\" on server \"{}\" is already service \"{other}\"'s: two services cannot share one database",
                            key.1, key.0
                        ),
                    ));
                }
                databases.insert(key, (id.clone(), name.clone()));
            }
            if let Some(size) = &s.size_mb
                && !(size.get_ref().is_finite() && *size.get_ref() >= 0.0)
            {
                return Err(at(
                    size,
                    format!(
                        "size_mb of service \"{id}\" is {}: it must be a size in MB, 0 or more",
                        size.get_ref()
                    ),
                ));
            }
            services.push(ServiceInstance {
                id,
                service: s.service.into_inner(),
                kind,
                provisioned: s.provisioned,
                server: s.server.map(|x| x.into_inner()),
                database: s.database.map(Spanned::into_inner),
                user: s.user.map(Spanned::into_inner),
                password: s.password.map(|p| p.anchored(base)),
                seed: s.seed,
                size_mb: s.size_mb.map(Spanned::into_inner),
            });
        }
        let strategy = match &a.strategy {
            None => None,
            Some(v) => Some(Strategy::parse(v.get_ref()).ok_or_else(|| {
                at(
                    v,
                    format!(
                        "strategy \"{}\" of app \"{name}\" is not \"dump\" or \"logical\"",
                        v.get_ref()
                    ),
                )
            })?),
        };
        apps.push(App {
            strategy,
            customer: a.customer.unwrap_or_else(|| name.clone()),
            name,
            region: a.region.into_inner(),
            environment: a.environment,
            client,
            services,
        });
    }

    if apps.is_empty() {
        return Err(Violation {
            offset: 0,
            message: "the inventory lists no apps: add [[apps]] entries (docs/inventory.md)".into(),
        });
    }
    new_collisions(&regions, &apps, &service_names)?;

    let platform = match raw_platform {
        Some(p) => Some(
            super::platform::validate(p)
                .map_err(|(offset, message)| Violation { offset, message })?,
        ),
        None => None,
    };
    Ok(Inventory {
        servers,
        regions,
        apps,
        platform,
    })
}

/// PostgreSQL majors an inventory may name.
const MIN_MAJOR: u32 = 9;
const MAX_MAJOR: u32 = 99;
/// Apps one region migrates at once; more is a typo, not a plan.
const MAX_CONCURRENCY: u32 = 256;
/// PostgreSQL keeps NAMEDATALEN - 1 bytes of a name and drops the rest.
pub const PG_NAME_MAX: usize = 63;

/// A long value cut for a one-line message.
fn shown(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// App, region, server and service names: they appear in PostgreSQL names (probe roles,
/// lease keys), file names and the console; letters, digits, '-' and '_', at most 63 bytes.
fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > PG_NAME_MAX {
        return Err(format!("is {} bytes long: at most {PG_NAME_MAX}", s.len()));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("may only hold letters, digits, '-' and '_'".into());
    }
    Ok(())
}

/// A database or role name: PostgreSQL would silently cut it after 63 bytes, so two long
/// names that agree on their first 63 bytes would become one database on NEW.
fn check_pg_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > PG_NAME_MAX {
        return Err(format!(
            "is {} bytes long: PostgreSQL keeps only {PG_NAME_MAX}",
            s.len()
        ));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("holds a control character".into());
    }
    Ok(())
}

/// `postgres://[user@]host[:port][/database][?options]`, without a password (that goes in
/// `password = …`, never in a URL that ends up in logs).
pub fn check_server_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("it must start with postgres:// or postgresql://")?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it holds a space or control character".into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            if userinfo.contains(':') {
                return Err(
                    "it holds a password: put it in `password = { file = … }` instead".into(),
                );
            }
            if userinfo.is_empty() {
                return Err("the user before '@' is empty".into());
            }
            hp
        }
        None => authority,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ']'")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("it names no host".into());
    }
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err(format!("port \"{p}\" is not a port (1–65535)")),
        }
    }
    Ok(())
}

/// Two services that would become the same database on NEW: reprovision keeps the database
/// name, so services of regions that share a target server must not share a database name.
fn new_collisions(
    regions: &[Region],
    apps: &[App],
    spans: &HashMap<String, usize>,
) -> Result<(), Violation> {
    let mut seen: HashMap<(String, String), &str> = HashMap::new();
    for app in apps {
        let Some(region) = regions.iter().find(|r| r.name == app.region) else {
            continue;
        };
        for s in &app.services {
            let (ServiceKind::Postgres { major }, true, Some(db)) =
                (&s.kind, s.provisioned, &s.database)
            else {
                continue;
            };
            for (target_major, target) in &region.targets {
                if target_major <= major {
                    continue;
                }
                let key = (target.clone(), db.clone());
                if let Some(other) = seen.get(&key) {
                    return Err(Violation {
                        offset: spans.get(&s.id).copied().unwrap_or(0),
                        message: format!(
                            "services \"{other}\" and \"{}\" would both become database \"{db}\" on server \"{target}\": rename one database",
                            s.id
                        ),
                    });
                }
                seen.insert(key, &s.id);
            }
        }
    }
    Ok(())
}

fn unknown_server(name: &toml::Spanned<String>, servers: &[Server]) -> Violation {
    let known: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    at(
        name,
        format!(
            "unknown server \"{}\" (servers: {})",
            name.get_ref(),
            known.join(", ")
        ),
    )
}
