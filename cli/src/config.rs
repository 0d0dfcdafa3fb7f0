//! hone's configuration, in layers: `~/.config/hone/config.toml` (or `$XDG_CONFIG_HOME/hone/`,
//! or the file named by `HONE_CONFIG`), then `.hone.toml` at the repository root, then `HONE_*`
//! environment variables; command-line flags override all of them (applied by each command).
//! Unknown keys are errors, so a typo never silently does nothing.
//!
//! A repository's `.hone.toml` comes with the code, so it is not trusted by default: the keys that
//! choose where data and credentials go (`backend`, `model`, `base_url`, `api_key_env`, `headers`)
//! are ignored from it, with a one-line notice, until the user runs `hone trust` there. Trust is
//! recorded in `trusted.toml` beside the user config, as the file's path and content hash, so an
//! edited `.hone.toml` is untrusted again. The user config, `HONE_*` and flags are always trusted.
//!
//! ```toml
//! backend = "local"            # or "openai"
//! model = "path/or/hub-id"     # local: folder or hub id; openai: model name
//! base_url = "http://127.0.0.1:8000/v1"
//! api_key_env = "OPENAI_API_KEY"
//! headers = { "X-Team" = "tools" }
//! device = "auto"
//! test = "cargo test -q"
//! test_timeout = "10m"
//! candidates = 4
//! max_iterations = 4
//! budget = "5m"
//! [sampling]
//! temperature = 0.2
//! steps = 64
//! [hook]
//! fix = "suggest"             # off | suggest | stage
//! budget = "90s"
//! fail_open = true
//! test = "cargo test -q"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::exit::Hinted;

/// What a pre-commit hook does when the staged content fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFix {
    /// Report and block.
    #[default]
    Off,
    /// Also run the agent and write the proposed patch to a file.
    Suggest,
    /// Apply the verified fix and re-stage it (opt-in).
    Stage,
}

/// The `[hook]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookConfig {
    pub fix: HookFix,
    /// Time budget of a hook (agent included).
    pub budget: Option<Duration>,
    /// When the budget runs out: let the commit through (true) or block it (false, default).
    pub fail_open: bool,
    /// Check command for hooks (defaults to `test`).
    pub test: Option<String>,
}

/// The `[sampling]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub steps: Option<usize>,
    pub block_length: Option<usize>,
    pub threshold: Option<f32>,
    pub max_tokens: Option<usize>,
}

/// The merged configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub backend: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub device: Option<String>,
    pub dtype: Option<String>,
    pub test: Option<String>,
    pub test_timeout: Option<Duration>,
    pub candidates: Option<usize>,
    pub max_iterations: Option<usize>,
    pub budget: Option<Duration>,
    pub sampling: SamplingConfig,
    pub hook: HookConfig,
    /// The files that were read, in order.
    pub sources: Vec<PathBuf>,
    /// Keys of an untrusted `.hone.toml` that were ignored (see `hone trust`).
    pub ignored: Vec<&'static str>,
}

/// Keys of a repository's `.hone.toml` that need `hone trust`: they choose which endpoint or model
/// source receives the code, the diffs and the credentials.
pub const SENSITIVE_KEYS: [&str; 5] = ["backend", "model", "base_url", "api_key_env", "headers"];

/// A duration in a config file: seconds as a number, or `90s`, `5m`, `1h`, `1.5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConfigDuration(Duration);

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

/// Parse `90`, `90s`, `5m`, `1.5h`, `250ms` into seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration: use seconds or a number with s, m or h (e.g. 90s, 5m)")
    })?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`: use s, m or h"
            ))
        }
    };
    Ok(value * factor)
}

/// Parse a duration flag or variable (same syntax as the config file).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds = parse_seconds(text)?;
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

/// One layer as written in a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    backend: Option<String>,
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    device: Option<String>,
    dtype: Option<String>,
    test: Option<String>,
    test_timeout: Option<ConfigDuration>,
    candidates: Option<usize>,
    max_iterations: Option<usize>,
    budget: Option<ConfigDuration>,
    #[serde(default)]
    sampling: SamplingConfig,
    #[serde(default)]
    hook: HookLayer,
}

impl Layer {
    /// Drop the sensitive keys, returning the names of those that were set.
    fn remove_sensitive(&mut self) -> Vec<&'static str> {
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

/// The trust records' file name, beside the user config.
const TRUST_FILE: &str = "trusted.toml";

/// `trusted.toml`: the absolute path of each trusted `.hone.toml` and the hash of its content.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct TrustRecords {
    #[serde(default)]
    trusted: BTreeMap<String, String>,
}

/// The content hash recorded for a trusted file (git's blob id: no extra dependency).
fn content_hash(bytes: &[u8]) -> anyhow::Result<String> {
    Ok(git2::Oid::hash_object(git2::ObjectType::Blob, bytes)?.to_string())
}

fn read_trust(trust_file: &Path) -> anyhow::Result<TrustRecords> {
    match std::fs::read_to_string(trust_file) {
        Ok(text) => toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {}", trust_file.display(), error.message())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TrustRecords::default()),
        Err(error) => {
            Err(anyhow::Error::from(error).context(format!("reading {}", trust_file.display())))
        }
    }
}

fn is_trusted(trust_file: &Path, config_file: &Path) -> anyhow::Result<bool> {
    let records = read_trust(trust_file)?;
    let key = trust_key(config_file);
    let Some(recorded) = records.trusted.get(&key) else {
        return Ok(false);
    };
    let bytes =
        std::fs::read(config_file).with_context(|| format!("reading {}", config_file.display()))?;
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
    user_config_path(env).map(|path| path.with_file_name(TRUST_FILE))
}

/// Record (`trust = true`) or remove the trust of `config_file` as it is now. Returns its hash.
pub fn set_trust(trust_file: &Path, config_file: &Path, trust: bool) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(config_file).with_context(|| format!("reading {}", config_file.display()))?;
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
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = toml::to_string(&records)?;
    let temporary = trust_file.with_extension("toml.tmp");
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, trust_file)
        .with_context(|| format!("writing {}", trust_file.display()))?;
    Ok(hash)
}

fn user_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HONE_CONFIG").map(PathBuf::from).or_else(|| {
        env("XDG_CONFIG_HOME")
            .filter(|dir| !dir.is_empty())
            .map(|dir| PathBuf::from(dir).join("hone").join("config.toml"))
            .or_else(|| {
                env("HOME").map(|home| {
                    PathBuf::from(home)
                        .join(".config")
                        .join("hone")
                        .join("config.toml")
                })
            })
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookLayer {
    fix: Option<HookFix>,
    budget: Option<ConfigDuration>,
    fail_open: Option<bool>,
    test: Option<String>,
}

impl Config {
    /// Load the layers for a repository (or none). Environment variables are read from the process.
    pub fn load(repo_root: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with(repo_root, &|name| std::env::var(name).ok())
    }

    /// Load with an explicit environment (tests).
    pub fn load_with(
        repo_root: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut config = Config::default();
        let user = user_config_path(env);
        let trust_file = user.as_ref().map(|path| path.with_file_name(TRUST_FILE));
        if let Some(path) = user.filter(|path| path.is_file()) {
            config.merge(read_layer(&path)?);
            config.sources.push(path);
        }
        if let Some(path) = repo_root
            .map(|root| root.join(".hone.toml"))
            .filter(|path| path.is_file())
        {
            let mut layer = read_layer(&path)?;
            let trusted = match &trust_file {
                Some(trust_file) => is_trusted(trust_file, &path)?,
                None => false,
            };
            if !trusted {
                config.ignored = layer.remove_sensitive();
            }
            config.merge(layer);
            config.sources.push(path);
        }
        config.merge_env(env)?;
        Ok(config)
    }

    /// Load, and say on stderr which keys of an untrusted `.hone.toml` were ignored.
    pub fn load_noting_untrusted(repo_root: Option<&Path>) -> anyhow::Result<Self> {
        let config = Self::load(repo_root)?;
        if !config.ignored.is_empty() {
            note!(
                "hone: ignoring {} from the repository's .hone.toml until you trust it: run `hone trust` (it sends code and credentials where it says)",
                config.ignored.join(", ")
            );
        }
        Ok(config)
    }

    fn merge(&mut self, layer: Layer) {
        fn set<T>(slot: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *slot = value;
            }
        }
        set(&mut self.backend, layer.backend);
        set(&mut self.model, layer.model);
        set(&mut self.base_url, layer.base_url);
        set(&mut self.api_key_env, layer.api_key_env);
        self.headers.extend(layer.headers);
        set(&mut self.device, layer.device);
        set(&mut self.dtype, layer.dtype);
        set(&mut self.test, layer.test);
        set(&mut self.test_timeout, layer.test_timeout.map(|d| d.0));
        set(&mut self.candidates, layer.candidates);
        set(&mut self.max_iterations, layer.max_iterations);
        set(&mut self.budget, layer.budget.map(|d| d.0));
        let sampling = layer.sampling;
        set(&mut self.sampling.temperature, sampling.temperature);
        set(&mut self.sampling.top_p, sampling.top_p);
        set(&mut self.sampling.seed, sampling.seed);
        set(&mut self.sampling.steps, sampling.steps);
        set(&mut self.sampling.block_length, sampling.block_length);
        set(&mut self.sampling.threshold, sampling.threshold);
        set(&mut self.sampling.max_tokens, sampling.max_tokens);
        if let Some(fix) = layer.hook.fix {
            self.hook.fix = fix;
        }
        set(&mut self.hook.budget, layer.hook.budget.map(|d| d.0));
        if let Some(fail_open) = layer.hook.fail_open {
            self.hook.fail_open = fail_open;
        }
        set(&mut self.hook.test, layer.hook.test);
    }

    fn merge_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let text = |name: &str| env(name).filter(|value| !value.is_empty());
        let number = |name: &str| -> anyhow::Result<Option<usize>> {
            text(name)
                .map(|value| {
                    value
                        .parse::<usize>()
                        .map_err(|_| bad_env(name, &value, "a whole number"))
                })
                .transpose()
        };
        let duration = |name: &str| -> anyhow::Result<Option<Duration>> {
            text(name)
                .map(|value| {
                    parse_duration(&value).map_err(|message| bad_env(name, &value, &message))
                })
                .transpose()
        };
        for (name, slot) in [
            ("HONE_BACKEND", &mut self.backend),
            ("HONE_MODEL", &mut self.model),
            ("HONE_BASE_URL", &mut self.base_url),
            ("HONE_API_KEY_ENV", &mut self.api_key_env),
            ("HONE_DEVICE", &mut self.device),
            ("HONE_TEST", &mut self.test),
            ("HONE_HOOK_TEST", &mut self.hook.test),
        ] {
            if let Some(value) = text(name) {
                *slot = Some(value);
            }
        }
        if let Some(value) = number("HONE_CANDIDATES")? {
            self.candidates = Some(value);
        }
        if let Some(value) = number("HONE_MAX_ITERATIONS")? {
            self.max_iterations = Some(value);
        }
        if let Some(value) = duration("HONE_BUDGET")? {
            self.budget = Some(value);
        }
        if let Some(value) = duration("HONE_HOOK_BUDGET")? {
            self.hook.budget = Some(value);
        }
        if let Some(value) = text("HONE_HOOK_FIX") {
            self.hook.fix = match value.as_str() {
                "off" => HookFix::Off,
                "suggest" => HookFix::Suggest,
                "stage" => HookFix::Stage,
                _ => return Err(bad_env("HONE_HOOK_FIX", &value, "off, suggest or stage")),
            };
        }
        if let Some(value) = text("HONE_HOOK_FAIL_OPEN") {
            self.hook.fail_open = match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(bad_env("HONE_HOOK_FAIL_OPEN", &value, "true or false")),
            };
        }
        Ok(())
    }
}

fn bad_env(name: &str, value: &str, expected: &str) -> anyhow::Error {
    Hinted::new(
        anyhow::anyhow!("{name}={value:?} is not valid: expected {expected}"),
        [format!("fix or unset {name}")],
    )
    .into()
}

fn read_layer(path: &Path) -> anyhow::Result<Layer> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|error| {
        Hinted::new(
            anyhow::anyhow!("{}: {}", path.display(), error.message()),
            [format!(
                "fix {} (keys are listed in `hone run --help` and docs/)",
                path.display()
            )],
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn layers_override_in_order() {
        let home = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        let user = home.path().join(".config/hone/config.toml");
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(
            &user,
            "backend = \"openai\"\nmodel = \"user-model\"\ncandidates = 2\nbudget = \"5m\"\n[hook]\nfix = \"suggest\"\nbudget = 30\n",
        )
        .unwrap();
        std::fs::write(
            repo.path().join(".hone.toml"),
            "model = \"repo-model\"\n[hook]\nfail_open = true\ntest = \"make check\"\n",
        )
        .unwrap();
        let home_path = home.path().to_string_lossy().into_owned();
        let env = move |name: &str| match name {
            "HOME" => Some(home_path.clone()),
            "HONE_CANDIDATES" => Some("6".into()),
            "HONE_HOOK_BUDGET" => Some("90s".into()),
            _ => None,
        };
        let config = Config::load_with(Some(repo.path()), &env).unwrap();
        assert_eq!(config.backend.as_deref(), Some("openai"));
        assert_eq!(
            config.model.as_deref(),
            Some("user-model"),
            "an untrusted repository cannot choose the model"
        );
        assert_eq!(config.ignored, ["model"]);
        assert_eq!(config.candidates, Some(6));
        assert_eq!(config.budget, Some(Duration::from_secs(300)));
        assert_eq!(config.hook.fix, HookFix::Suggest);
        assert_eq!(config.hook.budget, Some(Duration::from_secs(90)));
        assert!(config.hook.fail_open);
        assert_eq!(config.hook.test.as_deref(), Some("make check"));
        assert_eq!(config.sources.len(), 2);
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join(".hone.toml"), "candidate = 3\n").unwrap();
        let error = Config::load_with(Some(repo.path()), &|_| None).unwrap_err();
        assert!(format!("{error:#}").contains("candidate"), "{error:#}");
        let env = |name: &str| (name == "HONE_HOOK_FIX").then(|| "always".to_owned());
        let error = Config::load_with(None, &env).unwrap_err();
        assert!(format!("{error:#}").contains("HONE_HOOK_FIX"), "{error:#}");
    }

    #[test]
    fn repository_config_cannot_choose_endpoints_until_trusted() {
        let home = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        let hostile = "backend = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"AWS_SECRET_ACCESS_KEY\"\nheaders = { X = \"y\" }\ncandidates = 3\n";
        let file = repo.path().join(".hone.toml");
        std::fs::write(&file, hostile).unwrap();
        let home_path = home.path().to_string_lossy().into_owned();
        let env = move |name: &str| (name == "HOME").then(|| home_path.clone());
        let config = Config::load_with(Some(repo.path()), &env).unwrap();
        assert_eq!(config.backend, None);
        assert_eq!(config.base_url, None);
        assert_eq!(config.api_key_env, None);
        assert!(config.headers.is_empty());
        assert_eq!(config.candidates, Some(3), "harmless keys still apply");
        assert_eq!(
            config.ignored,
            ["backend", "base_url", "api_key_env", "headers"]
        );

        let trust_file = trust_file_with(&env).unwrap();
        set_trust(&trust_file, &file, true).unwrap();
        let config = Config::load_with(Some(repo.path()), &env).unwrap();
        assert_eq!(config.api_key_env.as_deref(), Some("AWS_SECRET_ACCESS_KEY"));
        assert!(config.ignored.is_empty());

        // An edited file is untrusted again.
        std::fs::write(&file, hostile.replace("9/v1", "10/v1")).unwrap();
        let config = Config::load_with(Some(repo.path()), &env).unwrap();
        assert_eq!(config.base_url, None);
        assert_eq!(config.ignored.len(), 4);
    }

    #[test]
    fn user_config_and_environment_are_trusted() {
        let home = tempfile::tempdir().unwrap();
        let user = home.path().join(".config/hone/config.toml");
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(&user, "base_url = \"http://example.invalid/v1\"\n").unwrap();
        let home_path = home.path().to_string_lossy().into_owned();
        let env = move |name: &str| match name {
            "HOME" => Some(home_path.clone()),
            "HONE_API_KEY_ENV" => Some("MY_KEY".into()),
            _ => None,
        };
        let config = Config::load_with(None, &env).unwrap();
        assert_eq!(
            config.base_url.as_deref(),
            Some("http://example.invalid/v1")
        );
        assert_eq!(config.api_key_env.as_deref(), Some("MY_KEY"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("90").unwrap(), 90.0);
        assert_eq!(parse_seconds("1.5m").unwrap(), 90.0);
        assert_eq!(parse_seconds("2h").unwrap(), 7200.0);
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("3 weeks").is_err());
    }
}
