//! One configuration layer as written in a file (`Layer`, with `[hook]` as `HookLayer`), read with
//! unknown keys refused; durations as seconds or `90s` / `5m` text.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{parse_seconds, HookFix, SamplingConfig, SandboxConfig, SENSITIVE_KEYS};
use crate::{Error, Result};

/// A duration in a config file: seconds as a number, or `90s`, `5m`, `1h`, `1.5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConfigDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let seconds = match Raw::deserialize(deserializer)? {
            Raw::Number(seconds) => Ok(seconds),
            Raw::Text(text) => parse_seconds(&text),
        }
        .map_err(serde::de::Error::custom)?;
        Duration::try_from_secs_f64(seconds)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// One layer as written in a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layer {
    pub(crate) backend: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key_env: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) device: Option<String>,
    pub(crate) dtype: Option<String>,
    pub(crate) test: Option<String>,
    pub(crate) test_timeout: Option<ConfigDuration>,
    pub(crate) candidates: Option<usize>,
    pub(crate) max_iterations: Option<usize>,
    pub(crate) budget: Option<ConfigDuration>,
    #[serde(default)]
    pub(crate) sampling: SamplingConfig,
    #[serde(default)]
    pub(crate) hook: HookLayer,
    #[serde(default)]
    pub(crate) sandbox: SandboxConfig,
}

impl Layer {
    /// Drop the sensitive keys, returning the names of those that were set.
    pub(crate) fn remove_sensitive(&mut self) -> Vec<&'static str> {
        let mut removed = Vec::new();
        let flags = [
            self.backend.take().is_some(),
            self.model.take().is_some(),
            self.base_url.take().is_some(),
            self.api_key_env.take().is_some(),
            !std::mem::take(&mut self.headers).is_empty(),
        ];
        for (key, was_set) in SENSITIVE_KEYS.into_iter().zip(flags) {
            if was_set {
                removed.push(key);
            }
        }
        removed
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookLayer {
    pub(crate) fix: Option<HookFix>,
    pub(crate) budget: Option<ConfigDuration>,
    pub(crate) fail_open: Option<bool>,
    pub(crate) test: Option<String>,
}

/// Read one file; a syntax error, an unknown key or a bad value is [`Error::ConfigFile`].
pub(crate) fn read_layer(path: &Path) -> Result<Layer> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::io(format!("reading {}", path.display()), source))?;
    toml::from_str(&text).map_err(|error| Error::ConfigFile {
        path: path.to_path_buf(),
        message: error.message().to_owned(),
    })
}
