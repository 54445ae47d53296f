//! Where the keys that encrypt personal data come from, and `chime keys rotate`.
//!
//! Keys are configured as `[encryption] keys = ["k1:<base64 of 32 bytes>", "k2:…"]` (the last
//! is the newest and encrypts; the others only decrypt), or `CHIME_ENCRYPTION__KEYS` as a
//! comma-separated list. They never print: `Debug` shows key ids only, and the section is never
//! serialised.
//!
//! With no key configured, the embedded default falls back to a key file in the data directory
//! (`encryption.key`, created on first start with mode 0600) and warns: convenient for one
//! machine, but a copy of the data directory then carries its own key. The fallback is an
//! explicit setting (`encryption.data_dir_key`, on by default) so that a production profile
//! can turn it off and refuse to start without configured keys.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chime_crypto::rotate::{Progress, DEFAULT_BATCH};
use chime_crypto::Keyring;
use chime_roles::occurrence::tokens::ActionKeys;
use chime_store::sqlite::{SqliteOptions, SqliteStore};
use serde::{Deserialize, Deserializer};

use crate::Config;

/// The key file of the data-directory fallback.
pub const KEY_FILE: &str = "encryption.key";
/// The id of the key in [`KEY_FILE`].
pub const DATA_DIR_KEY_ID: &str = "local";

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// `id:<base64 of 32 bytes>`, oldest first; the last one encrypts.
    #[serde(deserialize_with = "keys_list")]
    pub keys: Vec<String>,
    /// With no `keys`, use (creating it if needed) a key file in the data directory.
    pub data_dir_key: bool,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            data_dir_key: true,
        }
    }
}

impl fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.split_once(':').map_or("?", |(id, _)| id))
            .collect();
        f.debug_struct("EncryptionConfig")
            .field("key_ids", &ids)
            .field("data_dir_key", &self.data_dir_key)
            .finish()
    }
}

impl EncryptionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.keys.is_empty() {
            Keyring::parse(&self.keys).context("encryption.keys")?;
        } else if !self.data_dir_key {
            bail!(
                "encryption.keys: no key is configured and encryption.data_dir_key is off: \
                 configure at least one key (`id:<base64 of 32 bytes>`)"
            );
        }
        Ok(())
    }
}

/// A list, or one comma-separated string (as an environment variable gives it).
fn keys_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Keys {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Keys::deserialize(d)? {
        Keys::List(list) => list,
        Keys::Text(text) => text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

/// The keyring `config` names: its configured keys, or (when allowed) the data directory's
/// key file, created on first use.
pub fn keyring(config: &Config) -> anyhow::Result<Arc<Keyring>> {
    let encryption = &config.encryption;
    if !encryption.keys.is_empty() {
        return Ok(Arc::new(
            Keyring::parse(&encryption.keys).context("encryption.keys")?,
        ));
    }
    if !encryption.data_dir_key {
        bail!("encryption.keys: no key is configured and encryption.data_dir_key is off");
    }
    let path = config.data_dir.join(KEY_FILE);
    let spec = load_or_create_key_file(&path)?;
    tracing::warn!(
        key_file = %path.display(),
        "personal data is encrypted with a key kept in the data directory: in production, \
         configure encryption.keys (CHIME_ENCRYPTION__KEYS) from a secret store instead"
    );
    Ok(Arc::new(Keyring::parse(&[spec]).with_context(|| {
        format!("the key file {}", path.display())
    })?))
}

fn load_or_create_key_file(path: &Path) -> anyhow::Result<String> {
    load_or_create_secret(path, || Ok(Keyring::generate_spec(DATA_DIR_KEY_ID)?))
}

/// The key that signs action links and push buttons (`action-token.key` in the keys
/// directory), created on first use. Instances that share `keys_dir` share it.
pub fn action_keys(keys_dir: &Path) -> anyhow::Result<ActionKeys> {
    let path = keys_dir.join(ActionKeys::FILE);
    let text = load_or_create_secret(&path, || Ok(ActionKeys::generate_encoded()))?;
    ActionKeys::decode(&text)
        .with_context(|| format!("{} is not a key Chime wrote", path.display()))
}

/// The trimmed content of the secret file at `path`, created private (0600) with `generate`'s
/// text when missing; a process that creates it first at the same moment wins, the other
/// reads it.
pub fn load_or_create_secret(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let read = |path: &Path| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        Ok(text.trim().to_owned())
    };
    if path.exists() {
        return read(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    let spec = generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{spec}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            Ok(spec)
        }
        // Another process starting on the same directory created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e).with_context(|| format!("cannot create the key file {}", path.display())),
    }
}

/// The store file `chime keys rotate` works on.
pub fn store_path(config: &Config) -> PathBuf {
    config.data_dir.join("chime.sqlite")
}

/// `chime keys rotate`: re-encrypts every personal-data field of the data directory's store
/// to the newest configured key, in batches of `batch` rows, reporting each batch to
/// `progress`. Safe while `chime serve` runs on the same directory (each batch is one short
/// transaction), and to run again (fields already on the newest key are skipped).
pub async fn rotate(
    config: &Config,
    batch: usize,
    progress: impl FnMut(&Progress),
) -> anyhow::Result<chime_crypto::rotate::Summary> {
    let keys = keyring(config)?;
    if let Some(url) = &config.store.url {
        // Every instance must already hold the new key (see `[encryption] keys`): rows move
        // to it while the cluster runs.
        let store = crate::backends::SharedStore::connect(url, 2).await?;
        return chime_crypto::rotate::rotate(store.reencrypt(), keys, batch.max(1), progress)
            .await
            .context("re-encryption failed");
    }
    let path = store_path(config);
    if !path.exists() {
        bail!("there is no store at {}", path.display());
    }
    let store = SqliteStore::open(
        &path,
        &SqliteOptions {
            synchronous: config.sqlite_synchronous,
            readers: 1,
        },
    )
    .context("cannot open the SQLite store")?;
    chime_crypto::rotate::rotate(&store, keys, batch.max(1), progress)
        .await
        .context("re-encryption failed")
}

/// Rows per transaction of `chime keys rotate` unless `--batch` says otherwise.
pub const DEFAULT_ROTATE_BATCH: usize = DEFAULT_BATCH;

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn keys_come_from_the_environment_as_a_comma_separated_list_and_never_print() {
        let (k1, k2) = (
            Keyring::generate_spec("k1").expect("spec"),
            Keyring::generate_spec("k2").expect("spec"),
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHIME_ENCRYPTION__KEYS", format!("{k1}, {k2}"));
            let config = Config::load(None, &Overrides::default())
                .map_err(|e| figment::Error::from(format!("{e:#}")))?;
            assert_eq!(config.encryption.keys, [k1.clone(), k2.clone()]);
            let keys = keyring(&config).map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(keys.current_id(), "k2");
            let printed = format!("{config:?} {keys:?}");
            for spec in [&k1, &k2] {
                let material = spec.split_once(':').map(|(_, m)| m).unwrap_or_default();
                assert!(
                    !printed.contains(material),
                    "key material printed: {printed}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn without_keys_the_data_directory_key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let first = keyring(&config).expect("a key file is created");
        let path = config.data_dir.join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let spec = std::fs::read_to_string(&path).expect("key file");
        let second = keyring(&config).expect("the key file is reused");
        assert_eq!(first.current_id(), DATA_DIR_KEY_ID);
        let sealed = first.encrypt("a@example.com", "ctx").expect("encrypt");
        assert_eq!(
            second.decrypt(&sealed, "ctx").expect("decrypt"),
            "a@example.com"
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("key file"),
            spec,
            "not replaced"
        );
    }

    #[test]
    fn without_keys_and_without_the_data_directory_fallback_start_up_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.encryption.data_dir_key = false;
        assert!(config.validate().is_err());
        assert!(keyring(&config).is_err());
        assert!(!dir.path().join(KEY_FILE).exists());
    }
}
