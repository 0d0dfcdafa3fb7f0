//! Trust of a repository's `.hone.toml` (`hone trust`): `trusted.toml` beside the user config
//! records each trusted file's absolute path and content hash, so an edited file is untrusted again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// The trust records' file name, beside the user config.
pub(crate) const TRUST_FILE: &str = "trusted.toml";

/// `trusted.toml`: the absolute path of each trusted `.hone.toml` and the hash of its content.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct TrustRecords {
    #[serde(default)]
    trusted: BTreeMap<String, String>,
}

/// The content hash recorded for a trusted file (git's blob id: no extra dependency).
fn content_hash(bytes: &[u8]) -> Result<String> {
    git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
        .map(|id| id.to_string())
        .map_err(|error| Error::Tools(error.into()))
}

fn read_trust(trust_file: &Path) -> Result<TrustRecords> {
    match std::fs::read_to_string(trust_file) {
        Ok(text) => toml::from_str(&text).map_err(|error| Error::TrustFile {
            path: trust_file.to_path_buf(),
            message: error.message().to_owned(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TrustRecords::default()),
        Err(error) => Err(Error::io(
            format!("reading {}", trust_file.display()),
            error,
        )),
    }
}

pub(crate) fn is_trusted(trust_file: &Path, config_file: &Path) -> Result<bool> {
    let records = read_trust(trust_file)?;
    let key = trust_key(config_file);
    let Some(recorded) = records.trusted.get(&key) else {
        return Ok(false);
    };
    let bytes = std::fs::read(config_file)
        .map_err(|source| Error::io(format!("reading {}", config_file.display()), source))?;
    Ok(*recorded == content_hash(&bytes)?)
}

fn trust_key(config_file: &Path) -> String {
    config_file
        .canonicalize()
        .unwrap_or_else(|_| config_file.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Where trust records live for this environment (beside the user config).
pub fn trust_file_with(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    super::user_config_path(env).map(|path| path.with_file_name(TRUST_FILE))
}

/// Record (`trust = true`) or remove the trust of `config_file` as it is now. Returns its hash.
pub fn set_trust(trust_file: &Path, config_file: &Path, trust: bool) -> Result<String> {
    let bytes = std::fs::read(config_file)
        .map_err(|source| Error::io(format!("reading {}", config_file.display()), source))?;
    let hash = content_hash(&bytes)?;
    let mut records = read_trust(trust_file)?;
    let key = trust_key(config_file);
    if trust {
        records.trusted.insert(key, hash.clone());
    } else {
        records.trusted.remove(&key);
    }
    if let Some(parent) = trust_file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|source| Error::io(format!("creating {}", parent.display()), source))?;
    }
    let text = toml::to_string(&records).map_err(|error| Error::TrustFile {
        path: trust_file.to_path_buf(),
        message: error.to_string(),
    })?;
    let temporary = trust_file.with_extension("toml.tmp");
    std::fs::write(&temporary, text)
        .map_err(|source| Error::io(format!("writing {}", temporary.display()), source))?;
    std::fs::rename(&temporary, trust_file)
        .map_err(|source| Error::io(format!("writing {}", trust_file.display()), source))?;
    Ok(hash)
}
