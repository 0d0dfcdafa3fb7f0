//! Flags shared by every command that loads the local engine: `--model`, `--arch`, `--device`,
//! `--dtype`, `--quantize`, and the one place they become the engine's `ModelSpec` ([`model_spec`]) and a loaded
//! model ([`load_model`]), with the hints for engine errors ([`engine_error`]). Owned here so every
//! engine command spells and resolves them the same way.

use clap::Args;
use hone_engine::checkpoint::{self, LoadedModel, ModelSpec};

use crate::exit::{Hinted, FAILURE};

/// How to find and place a checkpoint.
#[derive(Debug, Clone, Args)]
pub struct EngineOptions {
    /// A Hugging Face style model folder, or a hub id (resolved from the local HF cache, downloaded if
    /// a network is available).
    #[arg(long, short = 'm', env = "HONE_MODEL")]
    pub model: String,

    /// Override architecture detection (`llada`, `dream`, `open-dcoder`, `llada-moe`, `llada2`), e.g.
    /// for checkpoints whose config.json names another architecture.
    #[arg(long)]
    pub arch: Option<String>,

    /// Where to run: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Weights and activations dtype: f32, bf16 or f16 (default: f32 on CPU, bf16 on GPU).
    #[arg(long)]
    pub dtype: Option<String>,

    /// Quantize the linear layers at load (CPU; CUDA untested): q8_0 (8.5 bits a weight) or q4k
    /// (4.5 bits, coarser); the output head is then q8_0 and the embedding f16. none keeps every
    /// weight in --dtype. Activations stay in --dtype.
    #[arg(long, default_value = "none", value_parser = crate::flags::quantization)]
    pub quantize: hone_engine::models::Quantization,
}

/// A `--random-config` value: a preset name (`hone_engine::random::PRESETS`) or a config.json file;
/// returns the detected architecture and the config for `hone_engine::random::random_model`.
pub fn read_random_config(
    config: &str,
) -> anyhow::Result<(hone_engine::model::Architecture, serde_json::Value)> {
    use anyhow::Context as _;
    if let Some(preset) = hone_engine::random::preset(config) {
        return Ok(preset);
    }
    let text = std::fs::read_to_string(config).map_err(|e| {
        crate::exit::Hinted::new(
            anyhow::anyhow!("cannot read --random-config {config}: {e}"),
            [format!(
                "pass a config.json file or a preset: {}",
                hone_engine::random::PRESETS.join(", ")
            )],
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{config} is not JSON"))?;
    Ok((hone_engine::checkpoint::detect_architecture(&value)?, value))
}

/// An engine error for people: bad input and setup problems exit 2 with a hint, failures of the
/// computation itself exit 1.
pub fn engine_error(error: hone_engine::Error) -> anyhow::Error {
    let code = match error {
        hone_engine::Error::Candle(_) => FAILURE,
        _ => crate::exit::BAD_INPUT,
    };
    Hinted::new(anyhow::Error::new(error), None::<String>)
        .with_code(code)
        .into()
}

/// The device named by `--device`, with the hint for a build without CUDA.
pub fn device(spec: &str) -> anyhow::Result<candle_core::Device> {
    hone_engine::device::select_device(spec).map_err(|e| {
        Hinted::new(
            e,
            ["use --device cpu, or build with --features cuda for a GPU"],
        )
        .into()
    })
}

/// The engine's [`ModelSpec`] for the shared `--model --arch --device --dtype` flags.
pub fn model_spec(options: &EngineOptions) -> anyhow::Result<ModelSpec> {
    spec_on(
        options.model.clone(),
        options.arch.as_deref(),
        device(&options.device)?,
        options.dtype.as_deref(),
        options.quantize,
    )
}

/// The [`ModelSpec`] of `model` on a device already chosen (`hone run` picks its default model by
/// device), with `--arch` and `--dtype` parsed the one way.
pub fn spec_on(
    model: String,
    arch: Option<&str>,
    device: candle_core::Device,
    dtype: Option<&str>,
    quantization: hone_engine::models::Quantization,
) -> anyhow::Result<ModelSpec> {
    let arch = arch
        .map(checkpoint::parse_architecture)
        .transpose()
        .map_err(engine_error)?;
    let dtype = dtype
        .map(hone_engine::device::parse_dtype)
        .transpose()
        .map_err(engine_error)?;
    Ok(ModelSpec {
        model,
        arch,
        device,
        dtype,
        quantization,
    })
}

/// Loads the model named by the engine flags, with hints for the usual mistakes.
pub fn load_model(engine: &EngineOptions) -> anyhow::Result<LoadedModel> {
    load_spec(&model_spec(engine)?)
}

/// Loads the model of a [`ModelSpec`] built by [`spec_on`], with the same hints.
pub fn load_spec(spec: &ModelSpec) -> anyhow::Result<LoadedModel> {
    checkpoint::load(spec).map_err(|error| {
        let own = match &error {
            hone_engine::Error::CheckpointMissing { .. }
            | hone_engine::Error::UnknownArchitecture { .. } => None,
            _ => Some("pass --model with a checkpoint folder or a hub id"),
        };
        Hinted::new(error, own).into()
    })
}
