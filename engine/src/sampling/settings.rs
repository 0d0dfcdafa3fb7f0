//! Sampler settings: every knob of the reference samplers and of fast decoding, with defaults and
//! validation that turns bad combinations into clear errors instead of panics.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which decoding algorithm to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// LLaDA `generate.py::generate`: semi-autoregressive blocks, fixed linear schedule.
    Llada,
    /// Dream `generation_utils.py::_sample`: timestep schedule over the whole canvas.
    Dream,
    /// Fast-dLLM confidence-threshold parallel decoding with an optional KV cache (the default).
    #[default]
    Fast,
    /// Open-dLLM `generation_utils.py::MDMGenerationMixin._mdm_sample` (Open-dCoder): Dream's
    /// timestep schedule plus `p2` re-masking.
    Mdm,
    /// LLaDA2.0 block diffusion (dllm `llada2/sampler.py::LLaDA2Sampler`, and the model's own
    /// `LLaDA2MoeModelLM.generate`): block-causal blocks from position 0, threshold + quota.
    Llada2,
    /// LLaDA2.1 block diffusion with editing (dllm `llada21/sampler.py::LLaDA21Sampler`).
    Llada21,
}

impl SamplerKind {
    /// Block-causal samplers: blocks aligned to position 0, finished blocks never change.
    pub fn is_block_causal(self) -> bool {
        matches!(self, Self::Llada2 | Self::Llada21)
    }
}

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Llada => "llada",
            Self::Dream => "dream",
            Self::Fast => "fast",
            Self::Mdm => "mdm",
            Self::Llada2 => "llada2",
            Self::Llada21 => "llada21",
        }
    }

    /// Samplers whose reference implementations take only a whole number of blocks (checked where
    /// hone reproduces a reference call: `validate_generation`, for `sample_ids` and the bench;
    /// `generate` and the server end a generation with a short block instead). The LLaDA2 family
    /// pads its canvas to whole blocks; Dream and mdm have no blocks.
    pub fn needs_whole_blocks(self) -> bool {
        matches!(self, Self::Llada | Self::Fast)
    }
}

/// Which of the two LLaDA2 reference loops decides the end of text. They differ only in how an
/// EOS ends decoding (see `sampling::llada2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EosRules {
    /// The checkpoint's `LLaDA2MoeModelLM.generate` (what users of the model run): stop after any
    /// block containing EOS; with `eos_early_stop`, stop as soon as an EOS is placed with no mask
    /// before it. Output cut after the first EOS.
    #[default]
    Generate,
    /// dllm's `LLaDA2Sampler.sample`: `eos_early_stop` only ends the current block; every block
    /// is decoded.
    Sampler,
}

/// Fast decoding's key/value cache (Fast-dLLM's block-wise approximate caching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// Recompute the whole canvas every step (exact).
    None,
    /// Cache keys/values of everything before the current block; recompute the block and the rest.
    Prefix,
    /// Cache everything; recompute only the current block (fastest, most approximate).
    #[default]
    Dual,
}

/// How a masked position's confidence is measured (LLaDA's `remasking`, fast decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceRule {
    /// Softmax probability of the chosen token (`low_confidence` remasking, Dream `maskgit_plus`).
    #[default]
    LowConfidence,
    /// A uniform random number per position (`random` remasking).
    Random,
}

/// Dream's `alg`: which positions to unmask at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DreamAlgorithm {
    /// Each masked position is revealed with probability `1 - s/t`.
    Origin,
    /// Highest probability of the sampled token.
    #[default]
    MaskgitPlus,
    /// Largest gap between the two most probable tokens.
    TopkMargin,
    /// Lowest entropy (confidence = negative entropy).
    Entropy,
    /// Open-dLLM's `p2` (mdm sampler only): every step predicts every masked position and keeps
    /// the `n_free * (1 - (i + 1) / steps)` least confident of them masked.
    P2,
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "llada" => Ok(Self::Llada),
            "dream" => Ok(Self::Dream),
            "fast" => Ok(Self::Fast),
            "mdm" => Ok(Self::Mdm),
            "llada2" => Ok(Self::Llada2),
            "llada21" => Ok(Self::Llada21),
            other => Err(setting(
                "sampler",
                format!(
                    "unknown sampler `{other}`: use llada, dream, fast, mdm, llada2 or llada21"
                ),
            )),
        }
    }
}

impl std::str::FromStr for EosRules {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "generate" => Ok(Self::Generate),
            "sampler" => Ok(Self::Sampler),
            other => Err(setting(
                "eos_rules",
                format!("unknown eos rules `{other}`: use generate or sampler"),
            )),
        }
    }
}

impl std::str::FromStr for CacheKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "prefix" => Ok(Self::Prefix),
            "dual" => Ok(Self::Dual),
            other => Err(setting(
                "cache",
                format!("unknown cache mode `{other}`: use none, prefix or dual"),
            )),
        }
    }
}

impl std::str::FromStr for ConfidenceRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "low_confidence" => Ok(Self::LowConfidence),
            "random" => Ok(Self::Random),
            other => Err(setting(
                "remasking",
                format!("unknown remasking `{other}`: use low_confidence or random"),
            )),
        }
    }
}

impl std::str::FromStr for DreamAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "origin" => Ok(Self::Origin),
            "maskgit_plus" => Ok(Self::MaskgitPlus),
            "topk_margin" => Ok(Self::TopkMargin),
            "entropy" => Ok(Self::Entropy),
            "p2" => Ok(Self::P2),
            other => Err(setting(
                "alg",
                format!(
                "unknown alg `{other}`: use origin, maskgit_plus, topk_margin, entropy or p2 (mdm only)"
            ))),
        }
    }
}

/// Every setting of one sequence's decoding. Per-sequence: two sequences in one batch may differ in
/// seed, temperature, threshold and the selection knobs, but not in the canvas shape or step
/// structure (see `cohort`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerSettings {
    pub sampler: SamplerKind,
    /// Tokens to generate (LLaDA `gen_length`, Dream `max_new_tokens`). Infill ignores it: the hole
    /// lengths decide.
    pub gen_length: usize,
    /// Denoising steps in total (reference samplers; fast decoding with a fixed schedule). `None`:
    /// one step per generated token.
    pub steps: Option<usize>,
    /// Semi-autoregressive block length (LLaDA, fast). Dream's reference sampler has no blocks.
    pub block_length: usize,
    /// 0 = greedy. LLaDA: Gumbel-max in f64; Dream and fast: categorical sampling.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    /// LLaDA reference and fast decoding: confidence measure.
    pub remasking: ConfidenceRule,
    /// Dream reference: unmasking order.
    pub alg: DreamAlgorithm,
    /// Dream: > 0 samples the positions to unmask from `softmax(confidence / alg_temp)`.
    pub alg_temp: f64,
    /// Dream: the last timestep of `linspace(1, eps, steps + 1)`.
    pub eps: f64,
    /// LLaDA reference: classifier-free guidance (0 = off).
    pub cfg_scale: f64,
    /// Fast decoding: commit every masked token of the block whose confidence is at least this
    /// (and always at least one). `None` uses `tokens_per_step` or the linear schedule.
    pub threshold: Option<f64>,
    /// Fast decoding without a threshold: commit exactly this many tokens per step.
    pub tokens_per_step: Option<usize>,
    pub cache: CacheKind,
    /// LLaDA `logits_eos_inf`: never choose EOS.
    pub suppress_eos: bool,
    /// LLaDA `confidence_eos_eot_inf` (reproduced with the reference's exact effect, see `llada`).
    pub suppress_eos_eot_confidence: bool,
    /// Fast decoding: stop after the block in which EOS appears and cut the output there.
    pub stop_at_eos: bool,
    /// LLaDA2 / 2.1: denoising steps per block (2.0: `steps_per_block`, capped by
    /// `gen_length / minimal_topk`; 2.1 ignores it: it runs until the block is done).
    pub steps_per_block: usize,
    /// LLaDA2: the step count is capped at `gen_length / minimal_topk`.
    pub minimal_topk: usize,
    /// LLaDA2 / 2.1: end decoding early at EOS (the exact rule depends on `eos_rules`).
    pub eos_early_stop: bool,
    /// LLaDA2: which reference loop's EOS rules apply.
    pub eos_rules: EosRules,
    /// LLaDA2.1: a decoded token is rewritten when the model's new argmax differs and its
    /// probability exceeds this.
    pub editing_threshold: f64,
    /// LLaDA2.1: extra editing-only steps once a block has no mask left.
    pub max_post_steps: usize,
    /// LLaDA2.1: masked positions committed per step when fewer pass `threshold`.
    pub num_to_transfer: usize,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            sampler: SamplerKind::Fast,
            gen_length: 128,
            steps: None,
            block_length: 32,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            remasking: ConfidenceRule::LowConfidence,
            alg: DreamAlgorithm::MaskgitPlus,
            alg_temp: 0.0,
            eps: 1e-3,
            cfg_scale: 0.0,
            threshold: Some(0.9),
            tokens_per_step: None,
            cache: CacheKind::Dual,
            suppress_eos: false,
            suppress_eos_eot_confidence: false,
            stop_at_eos: true,
            // LLaDA2 knobs: the reference functions' own defaults (dllm `LLaDA2SamplerConfig`,
            // `LLaDA21SamplerConfig`); family defaults are in `sampling::family_defaults`.
            steps_per_block: 32,
            minimal_topk: 1,
            eos_early_stop: false,
            eos_rules: EosRules::Generate,
            editing_threshold: 0.9,
            max_post_steps: 16,
            num_to_transfer: 1,
        }
    }
}

/// An `Error::InvalidSetting` about `field` (a `SamplerSettings` field name).
pub(crate) fn setting(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        field,
        reason: reason.into(),
    }
}

impl SamplerSettings {
    /// The total number of steps: `steps`, or one per generated token.
    pub fn total_steps(&self, generated: usize) -> usize {
        self.steps.unwrap_or(generated)
    }

    /// Check settings that do not depend on the canvas.
    pub fn validate(&self) -> Result<()> {
        if let Some(threshold) = self.threshold {
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(setting("threshold", format!(
                    "threshold {threshold} is outside (0, 1]: use e.g. 0.9 (higher = fewer tokens per step)"
                )));
            }
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(setting(
                "temperature",
                format!(
                    "temperature {} must be a finite number >= 0",
                    self.temperature
                ),
            ));
        }
        if let Some(top_p) = self.top_p {
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(setting("top_p", format!("top_p {top_p} is outside (0, 1]")));
            }
        }
        if self.top_k == Some(0) {
            return Err(setting("top_k", "top_k must be at least 1"));
        }
        if self.tokens_per_step == Some(0) {
            return Err(setting(
                "tokens_per_step",
                "tokens_per_step must be at least 1",
            ));
        }
        if self.steps == Some(0) {
            return Err(setting("steps", "steps must be at least 1"));
        }
        if self.block_length == 0 {
            return Err(setting("block_length", "block_length must be at least 1"));
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return Err(setting(
                "eps",
                format!("eps {} is outside (0, 1)", self.eps),
            ));
        }
        if !(self.cfg_scale >= 0.0 && self.cfg_scale.is_finite()) {
            return Err(setting(
                "cfg_scale",
                format!("cfg_scale {} must be >= 0", self.cfg_scale),
            ));
        }
        if self.cfg_scale > 0.0 && self.sampler != SamplerKind::Llada {
            return Err(setting(
                "cfg_scale",
                format!(
                    "cfg_scale is only supported by the llada sampler, not {}",
                    self.sampler.name()
                ),
            ));
        }
        if !(self.alg_temp >= 0.0 && self.alg_temp.is_finite()) {
            return Err(setting(
                "alg_temp",
                format!("alg_temp {} must be >= 0", self.alg_temp),
            ));
        }
        if self.alg == DreamAlgorithm::P2 && self.sampler == SamplerKind::Dream {
            return Err(setting("alg", 
                "alg p2 is Open-dLLM's (sampler mdm); Dream's sampler has origin, maskgit_plus, topk_margin and entropy",
            ));
        }
        if self.sampler.is_block_causal() {
            if self.threshold.is_none() {
                return Err(setting(
                    "threshold",
                    format!(
                        "the {} sampler needs a threshold in (0, 1] (e.g. 0.95)",
                        self.sampler.name()
                    ),
                ));
            }
            if self.steps_per_block == 0 {
                return Err(setting(
                    "steps_per_block",
                    "steps_per_block must be at least 1",
                ));
            }
            if self.minimal_topk == 0 {
                return Err(setting("minimal_topk", "minimal_topk must be at least 1"));
            }
            if self.num_to_transfer == 0 {
                return Err(setting(
                    "num_to_transfer",
                    "num_to_transfer must be at least 1",
                ));
            }
            if !(self.editing_threshold.is_finite() && self.editing_threshold <= 1.0) {
                return Err(setting(
                    "editing_threshold",
                    format!(
                    "editing_threshold {} must be a number <= 1 (1 or more switches editing off)",
                    self.editing_threshold
                ),
                ));
            }
        }
        Ok(())
    }

    /// Check the settings against one open-ended generation of `gen_length` tokens after a prompt.
    pub fn validate_generation(&self, prompt_len: usize, max_sequence_length: usize) -> Result<()> {
        self.validate()?;
        if self.gen_length == 0 {
            return Err(setting("gen_length", "gen_length must be at least 1"));
        }
        let total = prompt_len + self.gen_length;
        if total > max_sequence_length {
            return Err(setting("gen_length", format!(
                "prompt ({prompt_len} tokens) + gen_length ({}) = {total} exceeds the model's context of \
                 {max_sequence_length} tokens: shorten the prompt or lower gen_length",
                self.gen_length
            )));
        }
        if self.sampler.needs_whole_blocks() && !self.gen_length.is_multiple_of(self.block_length) {
            return Err(setting("gen_length", format!(
                "gen_length {} is not a multiple of block_length {}: pick a block length that divides it",
                self.gen_length, self.block_length
            )));
        }
        self.validate_steps(self.gen_length, self.gen_length.div_ceil(self.block_length))
    }

    /// Steps must split evenly over blocks where a fixed schedule is used.
    pub(crate) fn validate_steps(&self, generated: usize, num_blocks: usize) -> Result<()> {
        let fixed = match self.sampler {
            SamplerKind::Llada => true,
            SamplerKind::Dream | SamplerKind::Mdm | SamplerKind::Llada2 | SamplerKind::Llada21 => {
                false
            }
            SamplerKind::Fast => self.threshold.is_none() && self.tokens_per_step.is_none(),
        };
        if fixed {
            let steps = self.total_steps(generated);
            if num_blocks > 0 && !steps.is_multiple_of(num_blocks) {
                return Err(setting("steps", format!(
                    "steps {steps} cannot be split evenly over {num_blocks} blocks: use a multiple of {num_blocks}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let base = SamplerSettings {
            gen_length: 32,
            block_length: 8,
            ..Default::default()
        };
        assert!(base.validate_generation(10, 512).is_ok());
        let cases = [
            (
                SamplerSettings {
                    block_length: 7,
                    ..base.clone()
                },
                "not a multiple",
            ),
            (
                SamplerSettings {
                    sampler: SamplerKind::Llada,
                    steps: Some(6),
                    ..base.clone()
                },
                "split evenly",
            ),
            (
                SamplerSettings {
                    threshold: Some(0.0),
                    ..base.clone()
                },
                "outside (0, 1]",
            ),
            (
                SamplerSettings {
                    threshold: Some(1.5),
                    ..base.clone()
                },
                "outside (0, 1]",
            ),
            (
                SamplerSettings {
                    gen_length: 0,
                    ..base.clone()
                },
                "at least 1",
            ),
        ];
        for (settings, needle) in cases {
            let err = settings
                .validate_generation(10, 512)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let err = base.validate_generation(500, 512).unwrap_err().to_string();
        assert!(err.contains("exceeds the model's context"), "{err}");
    }

    #[test]
    fn new_sampler_settings_are_checked() {
        let cases = [
            (
                SamplerSettings {
                    sampler: SamplerKind::Dream,
                    alg: DreamAlgorithm::P2,
                    ..SamplerSettings::default()
                },
                "p2 is Open-dLLM's",
            ),
            (
                SamplerSettings {
                    sampler: SamplerKind::Llada2,
                    threshold: None,
                    ..SamplerSettings::default()
                },
                "needs a threshold",
            ),
            (
                SamplerSettings {
                    sampler: SamplerKind::Llada21,
                    num_to_transfer: 0,
                    ..SamplerSettings::default()
                },
                "num_to_transfer",
            ),
            (
                SamplerSettings {
                    sampler: SamplerKind::Llada2,
                    minimal_topk: 0,
                    ..SamplerSettings::default()
                },
                "minimal_topk",
            ),
            (
                SamplerSettings {
                    sampler: SamplerKind::Llada21,
                    editing_threshold: f64::NAN,
                    ..SamplerSettings::default()
                },
                "editing_threshold",
            ),
        ];
        for (settings, needle) in cases {
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        // Block diffusion pads to whole blocks: gen_length need not be a multiple.
        let llada2 = SamplerSettings {
            sampler: SamplerKind::Llada2,
            gen_length: 20,
            block_length: 8,
            ..SamplerSettings::default()
        };
        assert!(llada2.validate_generation(6, 512).is_ok());
        assert_eq!(
            "llada21".parse::<SamplerKind>().unwrap(),
            SamplerKind::Llada21
        );
        assert_eq!("p2".parse::<DreamAlgorithm>().unwrap(), DreamAlgorithm::P2);
    }

    #[test]
    fn names_parse() {
        assert_eq!("dual".parse::<CacheKind>().unwrap(), CacheKind::Dual);
        assert_eq!(
            "topk_margin".parse::<DreamAlgorithm>().unwrap(),
            DreamAlgorithm::TopkMargin
        );
        assert!("nope".parse::<SamplerKind>().is_err());
    }
}
