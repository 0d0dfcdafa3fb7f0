//! Sampler parity cases: the `generate.json` format of `tests/fixtures/parity` and
//! `tests/fixtures/parity-v2` (ids in, ids out), read into [`SamplerSettings`] and run. Shared by
//! the engine's golden tests and `hone engine sample`, so both read a case the same way.
//!
//! Formats (`sampler`): `llada`, `dream` (first set); `mdm`, `llada2`, `llada21` (second set,
//! read its README). LLaDA2 cases carry two expectations: `expected_ids`, the dllm sampler's whole
//! canvas (run with [`EosRules::Sampler`]), and `expected_generate_ids`, the checkpoint's
//! `generate` output (run with [`EosRules::Generate`], cut after the first EOS).

use serde::Deserialize;

use super::cohort::TokenIds;
use super::llada2::generated_ids;
use super::resolve::SamplerOverrides;
use super::settings::{EosRules, SamplerKind, SamplerSettings};
use crate::model::DiffusionModel;
use crate::tokenizer::GenerationDefaults;
use crate::{Error, Result};

/// One case of a `generate.json` file. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct SamplerCase {
    pub sampler: String,
    pub prompt_ids: Vec<Vec<u32>>,
    #[serde(default)]
    pub attention_mask: Option<Vec<Vec<u32>>>,
    #[serde(default)]
    pub expected_ids: Option<Vec<Vec<u32>>>,
    /// LLaDA2 / 2.1: the model's `generate` output (batch 1), generated tokens only.
    #[serde(default)]
    pub expected_generate_ids: Option<Vec<Vec<u32>>>,
    pub steps: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: Option<u64>,
    // llada
    pub gen_length: Option<usize>,
    pub block_length: Option<usize>,
    pub remasking: Option<String>,
    pub cfg_scale: Option<f64>,
    // dream, mdm
    pub max_new_tokens: Option<usize>,
    pub alg: Option<String>,
    pub eps: Option<f64>,
    pub alg_temp: Option<f64>,
    pub mask_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    // llada2, llada21
    pub block_size: Option<usize>,
    pub steps_per_block: Option<usize>,
    pub threshold: Option<f64>,
    pub minimal_topk: Option<usize>,
    pub eos_early_stop: Option<bool>,
    pub eos_id: Option<u32>,
    pub editing_threshold: Option<f64>,
    pub max_post_steps: Option<usize>,
    pub num_to_transfer: Option<usize>,
}

/// A file `{"cases": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CaseFile {
    pub cases: Vec<SamplerCase>,
}

/// What a case produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutput {
    /// The full sequences (prompt and canvas), comparable to `expected_ids`.
    pub ids: Vec<Vec<u32>>,
    /// LLaDA2 / 2.1 with `expected_generate_ids`: the `generate` output.
    pub generate_ids: Option<Vec<Vec<u32>>>,
}

impl CaseOutput {
    /// Whether every expectation the case has is met (`None` when it has none).
    pub fn matches(&self, case: &SamplerCase) -> Option<bool> {
        let ids = case.expected_ids.as_ref().map(|e| *e == self.ids);
        let generate = case
            .expected_generate_ids
            .as_ref()
            .map(|e| Some(e) == self.generate_ids.as_ref());
        match (ids, generate) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(true) && b.unwrap_or(true)),
        }
    }
}

fn missing(field: &str, sampler: &str) -> Error {
    Error::InvalidInput(format!("a `{sampler}` case needs `{field}`"))
}

impl SamplerCase {
    /// The sampler settings the case describes (for LLaDA2 cases: the sampler's EOS rules).
    ///
    /// A case is a whole reference call: what it names is asked for ([`SamplerOverrides`]), nothing
    /// comes from a checkpoint, and the rest are the reference functions' own defaults (greedy, no
    /// threshold, no stop at EOS). It goes through the one resolution, `SamplerSettings::resolve`,
    /// so a name or value is refused exactly as `hone generate` refuses it. The base's sampler is
    /// never used (a case always names one); it is `fast`, under which resolve's rules for another
    /// sampler than the family's change nothing a case leaves unset.
    pub fn settings(&self) -> Result<SamplerSettings> {
        let gen_length = self
            .gen_length
            .or(self.max_new_tokens)
            .ok_or_else(|| missing("gen_length or max_new_tokens", &self.sampler))?;
        let overrides = SamplerOverrides {
            sampler: Some(self.sampler.clone()),
            gen_length: Some(gen_length),
            steps: self.steps,
            block_length: Some(self.block_length.or(self.block_size).unwrap_or(gen_length)),
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            remasking: self.remasking.clone(),
            alg: self.alg.clone(),
            cfg_scale: self.cfg_scale,
            threshold: self.threshold,
            steps_per_block: self.steps_per_block,
            minimal_topk: self.minimal_topk,
            editing_threshold: self.editing_threshold,
            max_post_steps: self.max_post_steps,
            num_to_transfer: self.num_to_transfer,
            ..SamplerOverrides::default()
        };
        let reference = SamplerSettings {
            sampler: SamplerKind::Fast,
            steps: None,
            temperature: 0.0,
            alg_temp: self.alg_temp.unwrap_or(0.0),
            eps: self.eps.unwrap_or(1e-3),
            threshold: None,
            stop_at_eos: false,
            eos_early_stop: self.eos_early_stop.unwrap_or(false),
            ..SamplerSettings::default()
        };
        let mut settings =
            SamplerSettings::resolve(&overrides, &GenerationDefaults::default(), &reference)?;
        match settings.sampler {
            SamplerKind::Llada | SamplerKind::Dream | SamplerKind::Mdm => {
                if self.steps.is_none() {
                    return Err(missing("steps", &self.sampler));
                }
            }
            SamplerKind::Llada2 | SamplerKind::Llada21 => {
                if self.threshold.is_none() {
                    return Err(missing("threshold", &self.sampler));
                }
                settings.eos_rules = EosRules::Sampler;
            }
            SamplerKind::Fast => {}
        }
        Ok(settings)
    }

    /// The checkpoint's special ids, overridden by the case's own (`mask_id`, `eos_id`,
    /// `pad_token_id`) where it names them.
    pub fn tokens(&self, checkpoint: &TokenIds) -> TokenIds {
        let mut tokens = checkpoint.clone();
        if let Some(mask) = self.mask_id {
            tokens.mask = mask;
        }
        if let Some(eos) = self.eos_id {
            tokens.eos = Some(eos);
        }
        if let Some(pad) = self.pad_token_id {
            tokens.pad = Some(pad);
        }
        tokens
    }

    /// Runs the case on `model`.
    pub fn run(&self, model: &mut dyn DiffusionModel, checkpoint: &TokenIds) -> Result<CaseOutput> {
        self.run_with(model, checkpoint, self.settings()?)
    }

    /// Runs the case with `settings` (the case's own, adjusted: e.g. another cache mode, which
    /// must not change the tokens where the cache is exact).
    pub fn run_with(
        &self,
        model: &mut dyn DiffusionModel,
        checkpoint: &TokenIds,
        settings: SamplerSettings,
    ) -> Result<CaseOutput> {
        let tokens = self.tokens(checkpoint);
        let seed = self.seed.unwrap_or(0);
        let ids = crate::generate::sample_ids(
            model,
            &tokens,
            &self.prompt_ids,
            self.attention_mask.as_deref(),
            &settings,
            seed,
        )?;
        let generate_ids =
            if settings.sampler.is_block_causal() && self.expected_generate_ids.is_some() {
                let generate = SamplerSettings {
                    eos_rules: EosRules::Generate,
                    ..settings.clone()
                };
                let canvases = crate::generate::sample_ids(
                    model,
                    &tokens,
                    &self.prompt_ids,
                    None,
                    &generate,
                    seed,
                )?;
                Some(
                    canvases
                        .iter()
                        .zip(&self.prompt_ids)
                        .map(|(canvas, prompt)| {
                            generated_ids(canvas, prompt.len(), settings.gen_length, tokens.eos)
                        })
                        .collect(),
                )
            } else {
                None
            };
        Ok(CaseOutput { ids, generate_ids })
    }
}
