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
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "llada" => Ok(Self::Llada),
            "dream" => Ok(Self::Dream),
            "fast" => Ok(Self::Fast),
            other => Err(invalid(format!(
                "unknown sampler `{other}`: use llada, dream or fast"
            ))),
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
            other => Err(invalid(format!(
                "unknown cache mode `{other}`: use none, prefix or dual"
            ))),
        }
    }
}

impl std::str::FromStr for ConfidenceRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "low_confidence" => Ok(Self::LowConfidence),
            "random" => Ok(Self::Random),
            other => Err(invalid(format!(
                "unknown remasking `{other}`: use low_confidence or random"
            ))),
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
            other => Err(invalid(format!(
                "unknown alg `{other}`: use origin, maskgit_plus, topk_margin or entropy"
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
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
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
                return Err(invalid(format!(
                    "threshold {threshold} is outside (0, 1]: use e.g. 0.9 (higher = fewer tokens per step)"
                )));
            }
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(invalid(format!(
                "temperature {} must be a finite number >= 0",
                self.temperature
            )));
        }
        if let Some(top_p) = self.top_p {
            if !(top_p > 0.0 && top_p <= 1.0) {
                return Err(invalid(format!("top_p {top_p} is outside (0, 1]")));
            }
        }
        if self.top_k == Some(0) {
            return Err(invalid("top_k must be at least 1"));
        }
        if self.tokens_per_step == Some(0) {
            return Err(invalid("tokens_per_step must be at least 1"));
        }
        if self.steps == Some(0) {
            return Err(invalid("steps must be at least 1"));
        }
        if self.block_length == 0 {
            return Err(invalid("block_length must be at least 1"));
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return Err(invalid(format!("eps {} is outside (0, 1)", self.eps)));
        }
        if !(self.cfg_scale >= 0.0 && self.cfg_scale.is_finite()) {
            return Err(invalid(format!(
                "cfg_scale {} must be >= 0",
                self.cfg_scale
            )));
        }
        if self.cfg_scale > 0.0 && self.sampler != SamplerKind::Llada {
            return Err(invalid("cfg_scale is only supported by the llada sampler"));
        }
        if !(self.alg_temp >= 0.0 && self.alg_temp.is_finite()) {
            return Err(invalid(format!("alg_temp {} must be >= 0", self.alg_temp)));
        }
        Ok(())
    }

    /// Check the settings against one open-ended generation of `gen_length` tokens after a prompt.
    pub fn validate_generation(&self, prompt_len: usize, max_sequence_length: usize) -> Result<()> {
        self.validate()?;
        if self.gen_length == 0 {
            return Err(invalid("gen_length must be at least 1"));
        }
        let total = prompt_len + self.gen_length;
        if total > max_sequence_length {
            return Err(invalid(format!(
                "prompt ({prompt_len} tokens) + gen_length ({}) = {total} exceeds the model's context of \
                 {max_sequence_length} tokens: shorten the prompt or lower --gen-length",
                self.gen_length
            )));
        }
        if self.sampler != SamplerKind::Dream && !self.gen_length.is_multiple_of(self.block_length)
        {
            return Err(invalid(format!(
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
            SamplerKind::Dream => false,
            SamplerKind::Fast => self.threshold.is_none() && self.tokens_per_step.is_none(),
        };
        if fixed {
            let steps = self.total_steps(generated);
            if num_blocks > 0 && !steps.is_multiple_of(num_blocks) {
                return Err(invalid(format!(
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
    fn names_parse() {
        assert_eq!("dual".parse::<CacheKind>().unwrap(), CacheKind::Dual);
        assert_eq!(
            "topk_margin".parse::<DreamAlgorithm>().unwrap(),
            DreamAlgorithm::TopkMargin
        );
        assert!("nope".parse::<SamplerKind>().is_err());
    }
}
