//! Open-dCoder, the code model of Open-dLLM ("Open Diffusion Large Language Models", Peng et al.,
//! 2025; model card `fredzzp/open-dcoder-0.5B`): a Qwen2.5-Coder-0.5B network retrained as a
//! masked-diffusion model. Its checkpoint is a plain `Qwen2ForCausalLM` (`model_type: "qwen2"`) with
//! no `mask_token_id`: the mask token lives only in the tokenizer (`[MASK]` in the parity fixture,
//! `<M>` id 151665 reportedly in the real checkpoint), which is how it is told apart from an
//! autoregressive Qwen2 (see `checkpoint::detect_architecture`).
//!
//! Reference: Open-dLLM's `veomni/models/transformers/qwen2` (`modeling_qwen2.py` with bidirectional
//! attention; `generation_utils.py`, `MDMGenerationMixin._mdm_sample`). The network is exactly
//! Dream's (Qwen2 tensor names `model.embed_tokens`, `model.layers.{i}.self_attn.{q,k,v,o}_proj`
//! with q/k/v bias, `mlp.{gate,up,down}_proj`, `model.norm`, `lm_head` or tied embeddings;
//! bidirectional, GQA), so this file only adapts `dream.rs`: the family's facts, and position ids
//! that stay `0..L` under padding (the sampler passes only the key mask, no position ids).
//! Logits come out raw; the sampler shifts them right by one, as for Dream.

use super::dream::{self, PaddedPositions};
use super::layers::Weights;
use crate::model::{Architecture, ModelInfo};
use crate::Result;

/// Open-dCoder's `config.json` is Qwen2's, whose network fields are Dream's.
pub type Config = dream::Config;

/// The family's facts: Dream's, under the Open-dCoder name.
pub fn info(config: &Config) -> ModelInfo {
    config.info_as(Architecture::OpenDcoder)
}

/// Build an Open-dCoder model from a `VarBuilder` rooted at the checkpoint's top level.
pub fn load(config: Config, vb: Weights) -> Result<dream::Model> {
    let info = info(&config);
    dream::Model::load_as(config, info, PaddedPositions::Index, vb)
}
