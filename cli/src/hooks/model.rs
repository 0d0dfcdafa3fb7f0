//! The model behind the hooks (commit message drafts, fixes), `hone batch` agent tasks and
//! `hone refactor`, built from the configuration with the backends `hone run` uses. Hooks get
//! `None` when no model is configured, or it cannot be opened within their budget: a commit must
//! never fail or stall for want of a model, and a hook never downloads the default checkpoint.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use crate::backends::{self, Backend, BackendKind, ModelSettings};
use crate::config::Config;

/// Model flags shared by `hone batch` and `hone refactor` (config and `HONE_*` fill the rest).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelArgs {
    /// Backend: local (the diffusion engine) or openai (any OpenAI-compatible endpoint).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Local: model folder or hub id. OpenAI: model name.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// TEST ONLY: the script of the scripted backend.
    #[arg(long, hide = true)]
    pub script: Option<PathBuf>,
}

/// Settings for `backend` from flags over configuration. The scripted backend's script may come
/// from `HONE_SCRIPT`, so that hooks (which take no flags) can be tested with it.
pub fn settings(args: &ModelArgs, config: &Config) -> anyhow::Result<ModelSettings> {
    let mut settings = ModelSettings::from_config(args.backend, config)?;
    if let Some(model) = &args.model {
        settings.model = Some(model.clone());
    }
    settings.script = args
        .script
        .clone()
        .or_else(|| std::env::var_os("HONE_SCRIPT").map(PathBuf::from));
    Ok(settings)
}

/// Open the model for a command that needs one (errors say how to configure it).
pub fn open(args: &ModelArgs, config: &Config) -> anyhow::Result<Backend> {
    backends::open(&settings(args, config)?)
}

/// The model for a hook: `None` unless a backend or model is configured explicitly and opens
/// within `within` (a slow local load is abandoned, not waited for).
pub fn for_hooks(config: &Config, within: Duration) -> Option<Backend> {
    if config.backend.is_none() && config.model.is_none() {
        return None;
    }
    let settings = settings(&ModelArgs::default(), config).ok()?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(backends::open(&settings));
    });
    match receiver.recv_timeout(within) {
        Ok(Ok(backend)) => Some(backend),
        Ok(Err(error)) => {
            tracing::debug!("no model for the hook: {error:#}");
            None
        }
        Err(_) => {
            tracing::debug!("the model did not open within {within:?}");
            None
        }
    }
}
