//! Choosing and opening the model backend behind the agent's `Model` trait: the local diffusion
//! engine (adapter in `local`, engine on the one engine thread, `engine_jobs`), an OpenAI-compatible endpoint, or — for
//! tests only, and only when named — the scripted backend. `serve` adapts the engine to `hone serve`'s
//! HTTP stack (hone-serve's `Frontend` and `StepDecoder`).
//!
//! Default local model (no `--model`): `fredzzp/open-dcoder-0.5B` (Open-dCoder 0.5B, a Qwen2-based
//! masked-diffusion code model, ~1 GB) on CPU; `apple/DiffuCoder-7B-cpGRPO` (~15 GB) on CUDA. Both
//! resolve from the Hugging Face cache, or are downloaded on first use when a network is available.

pub mod engine_jobs;
pub mod local;
pub mod serve;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hone_agent::openai::{OpenAiConfig, OpenAiModel};
use hone_agent::testing::ScriptedModel;
use hone_agent::Model;

use crate::exit::Hinted;

/// Default checkpoint on CPU.
pub const DEFAULT_CPU_MODEL: &str = "fredzzp/open-dcoder-0.5B";
/// Default checkpoint on CUDA.
pub const DEFAULT_CUDA_MODEL: &str = "apple/DiffuCoder-7B-cpGRPO";
/// Default endpoint when `--backend openai` is given without `--base-url`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The local diffusion engine.
    Local,
    /// An OpenAI-compatible `/v1/chat/completions` endpoint.
    Openai,
    /// TEST ONLY: answers from a JSON script (`--script FILE`); fails on unexpected calls.
    #[value(hide = true)]
    Scripted,
}

impl BackendKind {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "local" => Ok(Self::Local),
            "openai" => Ok(Self::Openai),
            "scripted" => Ok(Self::Scripted),
            other => Err(Hinted::new(
                anyhow::anyhow!("unknown backend `{other}`"),
                ["use `local` (the diffusion engine) or `openai` (any OpenAI-compatible endpoint)"],
            )
            .into()),
        }
    }
}

/// Everything needed to open a backend (merged from config and flags by the command).
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub backend: BackendKind,
    /// Local: folder or hub id (default per device). OpenAI: model name (required).
    pub model: Option<String>,
    pub arch: Option<String>,
    pub device: String,
    pub dtype: Option<String>,
    /// Local: how the linear layers are stored.
    pub quantize: hone_engine::models::Quantization,
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// OpenAI: the model's context window in tokens, when known (prompts are budgeted to it).
    pub context_window: Option<usize>,
    /// Scripted backend only.
    pub script: Option<PathBuf>,
}

impl ModelSettings {
    pub fn new(backend: BackendKind) -> Self {
        Self {
            backend,
            model: None,
            arch: None,
            device: "auto".to_owned(),
            dtype: None,
            quantize: Default::default(),
            base_url: None,
            api_key_env: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(600),
            context_window: None,
            script: None,
        }
    }

    /// The configuration layer: the backend (`backend` if given, else the config's, else local)
    /// with the config's model, device, dtype, endpoint and headers. Commands put their flags on top.
    pub fn from_config(
        backend: Option<BackendKind>,
        config: &crate::config::Config,
    ) -> anyhow::Result<Self> {
        let backend = match (backend, &config.backend) {
            (Some(kind), _) => kind,
            (None, Some(name)) => BackendKind::parse(name)?,
            (None, None) => BackendKind::Local,
        };
        let mut settings = Self::new(backend);
        settings.model = config.model.clone();
        if let Some(device) = &config.device {
            settings.device = device.clone();
        }
        settings.dtype = config.dtype.clone();
        settings.base_url = config.base_url.clone();
        settings.api_key_env = config.api_key_env.clone();
        settings.headers = config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(settings)
    }
}

/// An opened backend. Keep it for the whole command and call [`Backend::finish`] at the end.
pub struct Backend {
    pub model: Arc<dyn Model>,
    scripted: Option<Arc<ScriptedModel>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("model", &self.model.describe())
            .finish()
    }
}

impl Backend {
    /// For the scripted backend: fail when the script expected more calls than were made.
    pub fn finish(&self) -> anyhow::Result<()> {
        if let Some(scripted) = &self.scripted {
            scripted.finish()?;
        }
        Ok(())
    }
}

/// Open the backend the settings describe.
pub fn open(settings: &ModelSettings) -> anyhow::Result<Backend> {
    match settings.backend {
        BackendKind::Local => {
            let model = local::LocalModel::open(settings)?;
            Ok(Backend {
                model: Arc::new(model),
                scripted: None,
            })
        }
        BackendKind::Openai => {
            let Some(model) = settings.model.clone() else {
                return Err(Hinted::new(
                    anyhow::anyhow!("--backend openai needs a model name"),
                    ["pass --model NAME (e.g. --model gpt-4.1-mini), or set `model` in .hone.toml"],
                )
                .into());
            };
            let base_url = settings
                .base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
            let mut config = OpenAiConfig::new(base_url, model);
            if let Some(variable) = &settings.api_key_env {
                match std::env::var(variable) {
                    Ok(key) if !key.is_empty() => config.api_key = Some(key),
                    _ => {
                        return Err(Hinted::new(
                            anyhow::anyhow!("the API key variable {variable} is not set"),
                            [format!("export {variable}=... or pass --api-key-env with the variable that holds the key")],
                        )
                        .into())
                    }
                }
            }
            config.headers = settings.headers.clone();
            config.timeout = settings.timeout;
            config.context_window = settings.context_window;
            let model = OpenAiModel::new(config)
                .map_err(|error| Hinted::new(error, ["check --base-url"]))?;
            Ok(Backend {
                model: Arc::new(model),
                scripted: None,
            })
        }
        BackendKind::Scripted => {
            let Some(script) = &settings.script else {
                return Err(Hinted::new(
                    anyhow::anyhow!("--backend scripted needs --script FILE"),
                    ["the scripted backend exists for hone's own tests; use --backend local or openai"],
                )
                .into());
            };
            let scripted = Arc::new(ScriptedModel::from_file(script)?);
            Ok(Backend {
                model: scripted.clone(),
                scripted: Some(scripted),
            })
        }
    }
}
