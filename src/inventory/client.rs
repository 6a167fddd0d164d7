//! The PostgreSQL client an app's image carries: a driver family and its version. What matters
//! to a migration is whether it can answer a SCRAM-SHA-256 challenge, which NEW asks for.
//!
//! The inventory writes it as `libpq = "9.6"` (the family most images link) or
//! `client = "node-postgres 7.4.0"`. The first SCRAM-capable version of each family is listed
//! with its source in `docs/clients.md`.

use std::fmt;

use serde::Serialize;

/// Driver families seen in app images. Those other than libpq implement the wire protocol
/// themselves, so their SCRAM support follows their own releases, not libpq's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientFamily {
    Libpq,
    NodePostgres,
    Pgjdbc,
    GoPq,
    Pgx,
    Npgsql,
    Asyncpg,
}

impl ClientFamily {
    pub const ALL: [ClientFamily; 7] = [
        ClientFamily::Libpq,
        ClientFamily::NodePostgres,
        ClientFamily::Pgjdbc,
        ClientFamily::GoPq,
        ClientFamily::Pgx,
        ClientFamily::Npgsql,
        ClientFamily::Asyncpg,
    ];

    /// The stable id used in inventories and `--json`.
    pub fn id(self) -> &'static str {
        match self {
            ClientFamily::Libpq => "libpq",
            ClientFamily::NodePostgres => "node-postgres",
            ClientFamily::Pgjdbc => "pgjdbc",
            ClientFamily::GoPq => "lib/pq",
            ClientFamily::Pgx => "pgx",
            ClientFamily::Npgsql => "npgsql",
            ClientFamily::Asyncpg => "asyncpg",
        }
    }

    pub fn from_id(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.id() == s)
    }

    /// The first release that authenticates with SCRAM-SHA-256 (docs/clients.md cites each).
    pub fn first_scram(self) -> Version {
        let (major, minor, patch) = match self {
            ClientFamily::Libpq => (10, 0, 0),
            ClientFamily::NodePostgres => (7, 9, 0),
            // 42.2.0 added SCRAM but shipped without the scram client classes (its changelog's
            // known issue); 42.2.1 packaged them.
            ClientFamily::Pgjdbc => (42, 2, 1),
            ClientFamily::GoPq => (1, 1, 0),
            ClientFamily::Pgx => (3, 4, 0),
            ClientFamily::Npgsql => (3, 2, 7),
            ClientFamily::Asyncpg => (0, 19, 0),
        };
        Version {
            major,
            minor,
            patch,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// "9.6", "9.6.24", "42.2.0", "v1.10.9": up to three numbers; a leading `v` is allowed.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = s.split('.');
        let num = |p: Option<&str>| -> Option<Option<u32>> {
            match p {
                None => Some(None),
                Some(p)
                    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 9 =>
                {
                    p.parse().ok().map(Some)
                }
                Some(_) => None,
            }
        };
        let major = num(parts.next())??;
        let minor = num(parts.next())?.unwrap_or(0);
        let patch = num(parts.next())?.unwrap_or(0);
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

/// An app image's client: family and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub family: ClientFamily,
    pub version: Version,
}

impl Client {
    /// `libpq = "9.6"`.
    pub fn libpq(version: &str) -> Option<Self> {
        Some(Self {
            family: ClientFamily::Libpq,
            version: Version::parse(version)?,
        })
    }

    /// `client = "node-postgres 7.4.0"` (family id, a space, the version).
    pub fn parse(s: &str) -> Option<Self> {
        let (family, version) = s.trim().split_once(char::is_whitespace)?;
        Some(Self {
            family: ClientFamily::from_id(family)?,
            version: Version::parse(version)?,
        })
    }

    /// Whether the client can answer NEW's SCRAM-SHA-256 challenge.
    pub fn supports_scram(self) -> bool {
        self.version >= self.family.first_scram()
    }

    /// What an operator reads: "libpq 9.6", "node-postgres 7.4.0".
    pub fn label(self) -> String {
        match self.family {
            ClientFamily::Libpq => format!("libpq {self}"),
            _ => self.to_string(),
        }
    }
}

/// As the `libpq` fields of `--json` have always shown it: the version alone for libpq
/// ("9.6"); other families with their id ("node-postgres 7.4.0").
impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.version;
        match self.family {
            ClientFamily::Libpq => write!(f, "{}.{}", v.major, v.minor),
            family => write!(f, "{} {}.{}.{}", family.id(), v.major, v.minor, v.patch),
        }
    }
}

impl Serialize for Client {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_scram_capable_from_its_first_scram_release_on() {
        for f in ClientFamily::ALL {
            let first = f.first_scram();
            let at = Client {
                family: f,
                version: first,
            };
            assert!(at.supports_scram(), "{f:?} at {first:?}");
            let before = Version {
                patch: 0,
                minor: first.minor.saturating_sub(1),
                major: if first.minor == 0 {
                    first.major - 1
                } else {
                    first.major
                },
            };
            let old = Client {
                family: f,
                version: before,
            };
            assert!(!old.supports_scram(), "{f:?} at {before:?}");
        }
    }

    #[test]
    fn client_strings_parse_with_their_family() {
        let c = Client::parse("node-postgres 7.4.0").unwrap();
        assert_eq!(c.family, ClientFamily::NodePostgres);
        assert!(!c.supports_scram());
        assert_eq!(c.label(), "node-postgres 7.4.0");
        assert!(Client::parse("lib/pq v1.10.9").unwrap().supports_scram());
        assert!(Client::parse("pgjdbc 42.1.4").is_some_and(|c| !c.supports_scram()));
        // 42.2.0 announced SCRAM but its jar lacked the scram client (docs/clients.md).
        assert!(Client::parse("pgjdbc 42.2.0").is_some_and(|c| !c.supports_scram()));
        assert!(Client::parse("pgjdbc 42.2.1").is_some_and(|c| c.supports_scram()));
        assert!(Client::parse("npgsql 3.2.6").is_some_and(|c| !c.supports_scram()));
        assert!(Client::parse("npgsql 3.2.7").is_some_and(|c| c.supports_scram()));
        assert!(Client::parse("pgx 3.3.0").is_some_and(|c| !c.supports_scram()));
        assert!(Client::parse("asyncpg 0.18.3").is_some_and(|c| !c.supports_scram()));
        assert!(Client::parse("asyncpg 0.19.0").is_some_and(|c| c.supports_scram()));
        assert!(Client::parse("node-postgres 7.8.0").is_some_and(|c| !c.supports_scram()));
        assert!(Client::parse("psycopg 2.8").is_none());
        assert!(Client::parse("node-postgres").is_none());
        assert!(Client::parse("node-postgres 7.x").is_none());
        assert_eq!(Client::libpq("9.6.24").unwrap().to_string(), "9.6");
        assert!(Client::libpq("9.6.24.1").is_none());
        assert!(Client::libpq("").is_none());
    }
}
