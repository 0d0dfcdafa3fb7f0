//! hone's configuration (`hone_agent::settings`), in layers: `~/.config/hone/config.toml` (or `$XDG_CONFIG_HOME/hone/`,
//! or the file named by `HONE_CONFIG`), then `.hone.toml` at the repository root, then `HONE_*`
//! environment variables; command-line flags override all of them (applied by each CLI command).
//! Unknown keys are errors, so a typo never silently does nothing. Errors are typed
//! ([`Error::ConfigFile`], [`Error::ConfigEnv`], [`Error::TrustFile`]); the CLI adds the hints.
//!
//! A repository's `.hone.toml` comes with the code, so it is not trusted by default: the keys that
//! choose where data and credentials go (`backend`, `model`, `base_url`, `api_key_env`, `headers`)
//! are ignored from it, with a one-line notice, until the user runs `hone trust` there. Trust is
//! recorded in `trusted.toml` (`trust`) beside the user config, as the file's path and content hash, so an
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
//! [sandbox]                   # how test commands are confined (docs/sandbox.md)
//! mode = "strict"             # strict | workspace | off (HONE_SANDBOX, --sandbox)
//! network = false             # HONE_SANDBOX_NETWORK
//! writable = ["/var/cache/pip"]  # extra writable folders (user config only)
//! include = ["vendor/"]       # ignored paths linked into sandboxes
//! ```
//! A repository's `.hone.toml` may only add `include` paths to `[sandbox]`: keys that weaken the
//! confinement (`mode`, `network`, `writable`) are taken from the user's config, `HONE_*` and
//! flags only, so a cloned repository cannot switch its own sandbox off.

mod duration;
mod env;
mod layer;
mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use duration::{parse_duration, parse_seconds};
use layer::Layer;
pub use trust::{set_trust, trust_file_with};

use crate::Result;

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

/// The `[sandbox]` table: how commands that run model-written code are confined.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    pub mode: Option<hone_tools::SandboxMode>,
    pub network: Option<bool>,
    /// Extra writable folders (shared caches).
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Ignored paths of the repository linked into every sandbox, on top of the defaults.
    #[serde(default)]
    pub include: Vec<String>,
}

impl SandboxConfig {
    /// What a repository's own `.hone.toml` may set: `include` only; the keys it set that would
    /// weaken confinement are returned, ignored (the CLI says so).
    pub(crate) fn limited_to_repository(self) -> (Self, Vec<&'static str>) {
        let mut refused = Vec::new();
        if self
            .mode
            .is_some_and(|mode| mode != hone_tools::SandboxMode::Strict)
        {
            refused.push("mode");
        }
        if self.network == Some(true) {
            refused.push("network");
        }
        if !self.writable.is_empty() {
            refused.push("writable");
        }
        let limited = Self {
            include: self.include,
            ..Self::default()
        };
        (limited, refused)
    }
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
    pub sandbox: SandboxConfig,
    /// The files that were read, in order.
    pub sources: Vec<PathBuf>,
    /// Keys of an untrusted `.hone.toml` that were ignored (see `hone trust`).
    pub ignored: Vec<&'static str>,
    /// Keys of the repository's `[sandbox]` table that were ignored because they would weaken
    /// confinement (`mode`, `network`, `writable`): only the user may set those.
    pub ignored_sandbox: Vec<&'static str>,
}

/// Keys of a repository's `.hone.toml` that need `hone trust`: they choose which endpoint or model
/// source receives the code, the diffs and the credentials.
pub const SENSITIVE_KEYS: [&str; 5] = ["backend", "model", "base_url", "api_key_env", "headers"];

impl Config {
    /// The agent's run defaults from this configuration: the one place every caller of the agent
    /// (`hone batch` agent tasks, `hone refactor`, hook fixes) takes them from.
    pub fn run_defaults(&self) -> crate::RunDefaults {
        crate::RunDefaults {
            test_command: self.test.clone(),
            candidates: self.candidates,
            max_iterations: self.max_iterations,
            budget: self.budget,
        }
    }

    /// Load the layers for a repository (or none). Environment variables are read from the process.
    pub fn load(repo_root: Option<&Path>) -> Result<Self> {
        Self::load_with(repo_root, &|name| std::env::var(name).ok())
    }

    /// Load with an explicit environment (tests).
    pub fn load_with(
        repo_root: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut config = Config::default();
        let user = user_config_path(env);
        let trust_file = user
            .as_ref()
            .map(|path| path.with_file_name(trust::TRUST_FILE));
        if let Some(path) = user.filter(|path| path.is_file()) {
            config.merge(layer::read_layer(&path)?);
            config.sources.push(path);
        }
        if let Some(path) = repo_root
            .map(|root| root.join(".hone.toml"))
            .filter(|path| path.is_file())
        {
            let mut layer = layer::read_layer(&path)?;
            // A repository's own config never loosens confinement.
            (layer.sandbox, config.ignored_sandbox) = layer.sandbox.limited_to_repository();
            let trusted = match &trust_file {
                Some(trust_file) => trust::is_trusted(trust_file, &path)?,
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
        set(&mut self.sandbox.mode, layer.sandbox.mode);
        set(&mut self.sandbox.network, layer.sandbox.network);
        self.sandbox.writable.extend(layer.sandbox.writable);
        self.sandbox.include.extend(layer.sandbox.include);
    }
}

pub(crate) fn user_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn repository_config_cannot_weaken_the_sandbox() {
        let home = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(
            repo.path().join(".hone.toml"),
            "[sandbox]\nmode = \"off\"\nnetwork = true\nwritable = [\"/\"]\ninclude = [\"vendor/\"]\n",
        )
        .unwrap();
        let user = home.path().join("config.toml");
        std::fs::write(
            &user,
            "[sandbox]\nnetwork = false\nwritable = [\"/var/cache/pip\"]\n",
        )
        .unwrap();
        let env = |name: &str| (name == "HONE_CONFIG").then(|| user.display().to_string());
        let config = Config::load_with(Some(repo.path()), &env).unwrap();
        assert_eq!(config.ignored_sandbox, ["mode", "network", "writable"]);
        assert_eq!(config.sandbox.mode, None);
        assert_eq!(config.sandbox.network, Some(false));
        assert_eq!(
            config.sandbox.writable,
            vec![PathBuf::from("/var/cache/pip")]
        );
        assert_eq!(config.sandbox.include, vec!["vendor/".to_owned()]);
        let env = |name: &str| (name == "HONE_SANDBOX").then(|| "workspace".to_owned());
        let config = Config::load_with(None, &env).unwrap();
        assert_eq!(
            config.sandbox.mode,
            Some(hone_tools::SandboxMode::Workspace)
        );
        let env = |name: &str| (name == "HONE_SANDBOX").then(|| "loose".to_owned());
        assert!(Config::load_with(None, &env).is_err());
    }

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
}
