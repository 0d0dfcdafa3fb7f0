//! Flags shared by every command that loads the local engine: `--model`, `--arch`, `--device`,
//! `--dtype`. Owned here so every engine command spells them the same way.

use clap::Args;

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
