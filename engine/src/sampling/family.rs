//! Each model family's own decoding defaults: the sampler its authors ship and the settings their
//! model card recommends. Callers start from [`base_settings`], then apply the checkpoint's
//! `generation_config.json`, then the user's flags or request fields (in that order), so a
//! checkpoint's own file always wins over what is written here.
//!
//! Sources (none of these checkpoints ships a `generation_config.json` with sampler settings):
//! - LLaDA, Dream: hone's fast decoding (Fast-dLLM threshold 0.9, dual cache), unchanged.
//! - Open-dCoder (`fredzzp/open-dcoder-0.5B`): Open-dLLM's `sample.py` / model card, which call
//!   `diffusion_generate` with `alg="p2"`, `steps = max_new_tokens = 128`, `temperature=0.5`,
//!   `top_k=200` (`alg_temp=0.5` is not read by `p2`).
//! - LLaDA2.0-mini/flash: the model card's `model.generate(..., gen_length=512, block_length=32,
//!   steps=32, temperature=0.0, eos_early_stop=True)` with the function's `threshold=0.95`,
//!   `minimal_topk=1` defaults.
//! - LLaDA2.1-mini/flash: the model card's quality mode (also the Diffusers `LLaDA2Pipeline`
//!   example): `gen_length=256, block_length=32, steps=32, threshold=0.7, editing_threshold=0.5,
//!   max_post_steps=16, temperature=0.0`. LLaDA2.0 and 2.1 share one config format
//!   (`model_type: llada2_moe`); the checkpoint's name tells them apart ([`is_llada21`]).

use super::settings::{CacheKind, DreamAlgorithm, EosRules, SamplerKind, SamplerSettings};
use crate::model::{Architecture, ModelInfo};

/// Whether a LLaDA2-format checkpoint is a LLaDA2.1 (by its name: `LLaDA2.1-mini`,
/// `llada21-tiny`, ...).
pub fn is_llada21(model_name: &str) -> bool {
    let name = model_name.to_ascii_lowercase();
    name.contains("llada2.1") || name.contains("llada21") || name.contains("llada2_1")
}

/// The settings a family decodes with before `generation_config.json` and the user have a say.
pub fn base_settings(info: &ModelInfo, model_name: &str) -> SamplerSettings {
    let base = SamplerSettings::default();
    match info.architecture {
        Architecture::OpenDcoder => SamplerSettings {
            sampler: SamplerKind::Mdm,
            alg: DreamAlgorithm::P2,
            gen_length: 128,
            // `steps = max_new_tokens`: one step per generated token, whatever the length.
            steps: None,
            temperature: 0.5,
            top_k: Some(200),
            threshold: None,
            ..base
        },
        Architecture::Llada2 if is_llada21(model_name) => SamplerSettings {
            sampler: SamplerKind::Llada21,
            gen_length: 256,
            block_length: 32,
            steps_per_block: 32,
            temperature: 0.0,
            threshold: Some(0.7),
            editing_threshold: 0.5,
            max_post_steps: 16,
            eos_early_stop: true,
            eos_rules: EosRules::Generate,
            cache: CacheKind::Prefix,
            ..base
        },
        Architecture::Llada2 => SamplerSettings {
            sampler: SamplerKind::Llada2,
            gen_length: 512,
            block_length: 32,
            steps_per_block: 32,
            temperature: 0.0,
            threshold: Some(0.95),
            minimal_topk: 1,
            eos_early_stop: true,
            eos_rules: EosRules::Generate,
            cache: CacheKind::Prefix,
            ..base
        },
        Architecture::Llada | Architecture::Dream | Architecture::LladaMoe => base,
    }
}

/// The samplers a family can run (for `hone engine info` and error messages).
pub fn supported_samplers(info: &ModelInfo) -> Vec<SamplerKind> {
    if info.block_causal {
        vec![SamplerKind::Llada2, SamplerKind::Llada21]
    } else if info.shift_logits {
        vec![
            SamplerKind::Fast,
            SamplerKind::Dream,
            SamplerKind::Mdm,
            SamplerKind::Llada,
        ]
    } else {
        vec![SamplerKind::Fast, SamplerKind::Llada, SamplerKind::Dream]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llada21_is_told_by_name() {
        assert!(is_llada21("inclusionAI/LLaDA2.1-mini"));
        assert!(is_llada21("tests/fixtures/parity-v2/llada21-tiny"));
        assert!(!is_llada21("inclusionAI/LLaDA2.0-mini"));
        assert!(!is_llada21("llada2-tiny"));
    }
}
