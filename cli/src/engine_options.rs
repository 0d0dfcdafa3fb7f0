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

    /// Override architecture detection (`llada` or `dream`), e.g. for checkpoints that ship a Qwen2
    /// config.
    #[arg(long)]
    pub arch: Option<String>,

    /// Where to run: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Weights and activations dtype: f32, bf16 or f16 (default: f32 on CPU, bf16 on GPU).
    #[arg(long)]
    pub dtype: Option<String>,
}
