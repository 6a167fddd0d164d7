//! Cross-references the raw inventory (regions, servers, unique names) into the model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::client::{Client, ClientFamily};
use super::model::{
    App, Inventory, RawInventory, Region, Server, ServerKind, ServiceInstance, ServiceKind,
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
                if !(url.get_ref().starts_with("postgres://")
                    || url.get_ref().starts_with("postgresql://"))
                {
                    return Err(at(url, "server url must start with postgres://"));
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
        servers.push(Server {
            name: name.into_inner(),
            version: s.version.into_inner(),
            kind,
            password: s.password.map(|p| p.anchored(base)),
        });
    }

    let mut regions: Vec<Region> = Vec::new();
    for r in raw.regions {
        if regions.iter().any(|x| x.name == *r.name.get_ref()) {
            return Err(at(
                &r.name,
                format!("duplicate region \"{}\"", r.name.get_ref()),
            ));
        }
        if *r.concurrency.get_ref() == 0 {
            return Err(at(&r.concurrency, "concurrency must be at least 1"));
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
    let mut app_lines: HashMap<String, usize> = HashMap::new();
    let mut service_ids: HashMap<String, String> = HashMap::new();
    for a in raw.apps {
        let name = a.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at(
                &a.name,
                format!("app name \"{name}\" may only hold letters, digits, '-' and '_'"),
            ));
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
            if let Some(owner) = service_ids.get(&id) {
                return Err(at(
                    &s.id,
                    format!(
                        "duplicate service instance id \"{id}\" (already used by app \"{owner}\")"
                    ),
                ));
            }
            service_ids.insert(id.clone(), name.clone());
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
                if s.database.is_none() || s.user.is_none() || s.password.is_none() {
                    return Err(at(
                        &s.id,
                        format!(
                            "provisioned service \"{id}\" needs `database`, `user` and `password`"
                        ),
                    ));
                }
            }
            services.push(ServiceInstance {
                id,
                service: s.service.into_inner(),
                kind,
                provisioned: s.provisioned,
                server: s.server.map(|x| x.into_inner()),
                database: s.database,
                user: s.user,
                password: s.password.map(|p| p.anchored(base)),
                seed: s.seed,
                size_mb: s.size_mb,
            });
        }
        apps.push(App {
            customer: a.customer.unwrap_or_else(|| name.clone()),
            name,
            region: a.region.into_inner(),
            environment: a.environment,
            client,
            services,
        });
    }

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
