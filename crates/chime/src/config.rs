//! Configuration, layered: built-in defaults < `chime.toml` (in the working directory, or the
//! file `--config`/`CHIME_CONFIG` names) < `CHIME_*` environment variables < command-line
//! flags; validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use chime_roles::Role;
use chime_store::sqlite::Synchronous;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded default keeps its files (SQLite store, bus log, issuer key).
    pub data_dir: PathBuf,
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// Roles this process runs (`definition,execution,notification,tick`; all by default),
    /// as a list or a comma-separated string (`CHIME_ROLES=execution,notification`).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub roles: Vec<String>,
    /// An occurrence fired more than this many seconds after its due instant is `late`.
    pub late_after_seconds: f64,
    /// SQLite durability: `normal` (survives a process crash) or `full` (power loss too).
    pub sqlite_synchronous: Synchronous,
    /// `text` (human-readable) or `json` logs.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./chime-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            roles: Role::ALL.iter().map(|r| r.name().to_owned()).collect(),
            late_after_seconds: 10.0,
            sqlite_synchronous: Synchronous::Normal,
            log_format: LogFormat::Text,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

impl Config {
    /// Loads every layer. `file` is the `--config` path, if given (it must then exist).
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        figment = match file {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                figment.merge(Toml::file(path))
            }
            None => figment.merge(Toml::file("chime.toml")),
        };
        let config: Config = figment
            .merge(Env::prefixed("CHIME_").only(&[
                "data_dir",
                "listen",
                "roles",
                "late_after_seconds",
                "sqlite_synchronous",
                "log_format",
            ]))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.roles()?;
        if !(self.late_after_seconds.is_finite() && self.late_after_seconds >= 0.0) {
            bail!(
                "late_after_seconds must be a number of seconds >= 0, not {}",
                self.late_after_seconds
            );
        }
        Ok(())
    }

    pub fn roles(&self) -> anyhow::Result<Vec<Role>> {
        if self.roles.is_empty() {
            bail!("roles: name at least one of definition, execution, notification, tick");
        }
        self.roles
            .iter()
            .map(|name| {
                Role::parse(name.trim()).with_context(|| {
                    format!(
                        "roles: unknown role `{name}`: expected definition, execution, \
                         notification or tick"
                    )
                })
            })
            .collect()
    }
}

fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Roles::deserialize(d)? {
        Roles::List(list) => list,
        Roles::Text(text) => text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}
