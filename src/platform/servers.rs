//! Who pgshift is on each inventory server: admin endpoints and app-role endpoints, from the
//! lab's secrets for lab servers and from the inventory's password sources otherwise.

use std::str::FromStr;
use std::sync::Arc;

use color_eyre::eyre::Result;
use sqlx::postgres::PgConnectOptions;

use crate::error::UserError;
use crate::inventory::{Inventory, Secret, Server, ServerKind};
use crate::lab::Lab;
use crate::lab::secrets::Secrets;
use crate::postgres::Endpoint;

#[derive(Clone)]
pub struct Servers {
    inv: Arc<Inventory>,
    lab: Option<Arc<Lab>>,
    /// Passwords pgshift generated for the NEW roles it created on remote servers.
    created: Option<Arc<Secrets>>,
}

impl Servers {
    pub fn new(inv: Arc<Inventory>, lab: Option<Arc<Lab>>) -> Self {
        Self {
            inv,
            lab,
            created: None,
        }
    }

    /// Keep the passwords of NEW roles created on remote servers under `state_dir`.
    pub fn with_state_dir(mut self, state_dir: &std::path::Path) -> Self {
        self.created = Some(Arc::new(Secrets::new(state_dir)));
        self
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    fn server(&self, name: &str) -> Result<&Server> {
        self.inv
            .server(name)
            .ok_or_else(|| UserError::new(format!("unknown server \"{name}\"")).into())
    }

    fn lab_for(&self, s: &Server) -> Result<&Lab> {
        self.lab.as_deref().ok_or_else(|| {
            UserError::new(format!(
                "server \"{}\" is a lab server, but the lab binaries are not installed: run scripts/install-deps",
                s.name
            ))
            .into()
        })
    }

    /// pgshift's superuser endpoint on a server.
    /// What a server is, to tell two apart whatever the inventory calls them: its address,
    /// `host:port` (`localhost` and `127.0.0.1` are one host). A server whose address cannot
    /// be read is only itself.
    pub fn identity(&self, name: &str) -> String {
        match self.admin(name) {
            Ok(ep) => {
                let host = ep.host.to_ascii_lowercase();
                let host = match host.as_str() {
                    "localhost" | "::1" | "[::1]" => "127.0.0.1".to_string(),
                    _ => host,
                };
                format!("{host}:{}", ep.port)
            }
            Err(_) => format!("server {name}"),
        }
    }

    pub fn admin(&self, name: &str) -> Result<Endpoint> {
        let s = self.server(name)?;
        let url = match &s.kind {
            ServerKind::Lab => return self.lab_for(s)?.admin(s.version),
            ServerKind::Sim => {
                return Ok(Endpoint {
                    host: format!("{name}.sim"),
                    port: 5432,
                    user: "pgshift".into(),
                    password: Secret::new(""),
                });
            }
            ServerKind::Remote { url } => url,
        };
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| UserError::new(format!("server \"{name}\": bad url: {e}")))?;
        let password = match &s.password {
            Some(src) => src
                .resolve(|| None)
                .map_err(|e| UserError::new(format!("server \"{name}\": {e}")))?,
            None => Secret::new(""),
        };
        Ok(Endpoint {
            host: opts.get_host().to_string(),
            port: opts.get_port(),
            user: opts.get_username().to_string(),
            password,
        })
    }

    /// The app role's endpoint (its own password) on a server.
    pub fn role(&self, name: &str, user: &str) -> Result<Endpoint> {
        let s = self.server(name)?;
        let admin = self.admin(name)?;
        let password = match s.kind {
            ServerKind::Lab => self.lab_for(s)?.role_password(name, user)?,
            ServerKind::Sim => Secret::new(""),
            ServerKind::Remote { .. } => {
                let src = self
                    .inv
                    .apps
                    .iter()
                    .flat_map(|a| &a.services)
                    .find(|x| x.server.as_deref() == Some(name) && x.user.as_deref() == Some(user))
                    .and_then(|x| x.password.as_ref());
                // A NEW role pgshift created itself keeps its password in the state dir.
                let created = self
                    .created
                    .as_ref()
                    .map(|c| c.role_path(name, user))
                    .filter(|p| p.exists());
                match (src, created, &self.created) {
                    (Some(src), _, _) => src
                        .resolve(|| None)
                        .map_err(|e| UserError::new(format!("role {user} on \"{name}\": {e}")))?,
                    (None, Some(path), Some(c)) => c.read(&path)?,
                    _ => {
                        return Err(UserError::new(format!(
                            "no password for role {user} on server \"{name}\" in the inventory"
                        ))
                        .into());
                    }
                }
            }
        };
        Ok(Endpoint {
            user: user.to_string(),
            password,
            ..admin
        })
    }

    /// A freshly generated password for a NEW role, kept where `role` finds it.
    pub fn new_role_password(&self, name: &str, user: &str) -> Result<Secret> {
        let s = self.server(name)?;
        match s.kind {
            ServerKind::Lab => return self.lab_for(s)?.new_role_password(name, user),
            ServerKind::Sim => return Ok(Secret::new(format!("{:032x}", rand::random::<u128>()))),
            ServerKind::Remote { .. } => {}
        }
        match &self.created {
            Some(c) => c.new_role_password(name, user),
            None => Err(UserError::new(format!(
                "reprovisioning onto \"{name}\" needs pgshift's state dir to keep the NEW role's password"
            ))
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_names_for_one_address_are_one_server() {
        let inv = crate::inventory::parse(
            r#"
[servers.old]
version = 13
url = "postgres://admin@DB.example:5433/postgres"
password = { value = "x" }

[servers.alias]
version = 15
url = "postgres://admin@db.example:5433/postgres"
password = { value = "x" }

[servers.other]
version = 15
url = "postgres://admin@db.example:5434/postgres"
password = { value = "x" }

[[regions]]
name = "r1"
targets = { "15" = "alias" }

[[apps]]
name = "a1"
region = "r1"
environment = "live"
libpq = "15.1"
"#,
            "t.toml",
            std::path::Path::new("."),
        )
        .expect("inventory");
        let s = Servers::new(Arc::new(inv), None);
        assert_eq!(s.identity("old"), s.identity("alias"));
        assert_ne!(s.identity("old"), s.identity("other"));
        assert_eq!(s.identity("other"), "db.example:5434");
    }
}
