//! The one place sampler settings are resolved: what a caller asks for ([`SamplerOverrides`]: flags
//! of `hone generate`, fields of a `hone serve` request, the agent's sampling of `hone run`) over the
//! checkpoint's `generation_config.json` ([`GenerationDefaults`]) over the family's own defaults
//! (`family::base_settings`), validated once. Every caller gets the same answer for the same input,
//! and every refusal is an `Error::InvalidSetting` naming the `SamplerSettings` field; callers spell
//! it as their own flag or request field.
//!
//! Rules that are not plain precedence, each for a reason:
//! - A name the caller gives (`sampler`, `alg`, `remasking`, `cache`) must be one hone knows; a name
//!   in `generation_config.json` that hone does not know (e.g. `alg: confidence_threshold`, written
//!   for the checkpoint's own Python code) is ignored and the family's value kept: the user cannot
//!   fix a hub checkpoint's file.
//! - `cfg_scale` asked for with any sampler but `llada` is refused (only LLaDA's reference sampler
//!   has classifier-free guidance); the checkpoint's `cfg_scale` is for that sampler and is ignored
//!   under any other.
//! - The checkpoint's `steps` belong to its own `gen_length` and its reference sampler: they apply
//!   only to a non-`fast` sampler generating that many tokens (or when the checkpoint names no
//!   length). For block diffusion (`llada2`, `llada21`) `steps` means steps per block, as in the
//!   reference `generate(steps=...)`.
//! - `tokens_per_step` without a `threshold` switches the threshold off. A sampler other than the
//!   family's starts from its own threshold default (0.9 for `fast`, 0.95 for block diffusion).

use super::settings::{CacheKind, ConfidenceRule, DreamAlgorithm, SamplerKind, SamplerSettings};
use crate::tokenizer::GenerationDefaults;
use crate::Result;

/// The threshold block diffusion falls back to when a family that is not block-causal is decoded
/// with `llada2` / `llada21` (LLaDA2.0's `generate` default).
const BLOCK_DIFFUSION_THRESHOLD: f64 = 0.95;

/// What a caller asks for; `None` says nothing and leaves the setting to the checkpoint and the
/// family. Names (`sampler`, `alg`, `remasking`, `cache`) stay text so that [`SamplerSettings::resolve`]
/// is the one place that refuses an unknown one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplerOverrides {
    pub sampler: Option<String>,
    pub gen_length: Option<usize>,
    pub steps: Option<usize>,
    pub block_length: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub remasking: Option<String>,
    pub alg: Option<String>,
    pub cache: Option<String>,
    pub cfg_scale: Option<f64>,
    pub threshold: Option<f64>,
    pub tokens_per_step: Option<usize>,
    /// `Some(false)`: keep generating past EOS (`stop_at_eos` and `eos_early_stop` off).
    pub early_stop: Option<bool>,
    pub steps_per_block: Option<usize>,
    pub minimal_topk: Option<usize>,
    pub editing_threshold: Option<f64>,
    pub max_post_steps: Option<usize>,
    pub num_to_transfer: Option<usize>,
}

/// A name given by the caller: unknown is an error naming the field.
fn requested<T: std::str::FromStr<Err = crate::Error>>(value: Option<&str>) -> Result<Option<T>> {
    value.map(str::parse).transpose()
}

/// A name from `generation_config.json`: unknown is ignored (see the module header).
fn suggested<T: std::str::FromStr>(field: &str, value: Option<&String>) -> Option<T> {
    let value = value.filter(|value| !value.is_empty())?;
    let parsed = value.parse().ok();
    if parsed.is_none() {
        tracing::debug!("generation_config.json {field} `{value}` is not one hone knows: ignored");
    }
    parsed
}

impl SamplerSettings {
    /// `overrides` over the checkpoint's `generation_config.json` over `family` (the family's own
    /// settings, `family::base_settings`), validated. See the module header for the rules.
    pub fn resolve(
        overrides: &SamplerOverrides,
        checkpoint: &GenerationDefaults,
        family: &SamplerSettings,
    ) -> Result<SamplerSettings> {
        let sampler =
            requested::<SamplerKind>(overrides.sampler.as_deref())?.unwrap_or(family.sampler);
        let gen_length = overrides
            .gen_length
            .or(checkpoint.gen_length)
            .or(checkpoint.max_new_tokens)
            .unwrap_or(family.gen_length);
        let checkpoint_length = checkpoint.gen_length.or(checkpoint.max_new_tokens);
        let checkpoint_steps = checkpoint
            .steps
            .filter(|_| checkpoint_length.is_none_or(|length| length == gen_length));
        let steps = match overrides.steps {
            Some(steps) => Some(steps),
            None if sampler == SamplerKind::Fast => None,
            None => checkpoint_steps.or(family.steps.filter(|_| sampler == family.sampler)),
        };
        let steps_per_block = overrides
            .steps_per_block
            .or(overrides.steps.filter(|_| sampler.is_block_causal()))
            .or(checkpoint_steps)
            .unwrap_or(family.steps_per_block);
        let mut threshold = match (overrides.tokens_per_step, overrides.threshold) {
            (_, Some(threshold)) => Some(threshold),
            (Some(_), None) => None,
            (None, None) => checkpoint.threshold.or(family.threshold),
        };
        if sampler != family.sampler && overrides.threshold.is_none() {
            if sampler.is_block_causal() {
                threshold = threshold.or(Some(BLOCK_DIFFUSION_THRESHOLD));
            } else if sampler == SamplerKind::Fast && overrides.tokens_per_step.is_none() {
                threshold = threshold.or(SamplerSettings::default().threshold);
            }
        }
        let checkpoint_cfg_scale = checkpoint
            .cfg_scale
            .filter(|_| sampler == SamplerKind::Llada);
        let early_stop = overrides.early_stop.unwrap_or(true);
        let settings = SamplerSettings {
            sampler,
            gen_length,
            steps,
            block_length: overrides
                .block_length
                .or(checkpoint.block_length)
                .unwrap_or(family.block_length),
            temperature: overrides
                .temperature
                .or(checkpoint.temperature)
                .unwrap_or(family.temperature),
            top_p: overrides.top_p.or(checkpoint.top_p).or(family.top_p),
            top_k: overrides.top_k.or(checkpoint.top_k).or(family.top_k),
            remasking: requested::<ConfidenceRule>(overrides.remasking.as_deref())?
                .or_else(|| suggested("remasking", checkpoint.remasking.as_ref()))
                .unwrap_or(family.remasking),
            alg: requested::<DreamAlgorithm>(overrides.alg.as_deref())?
                .or_else(|| suggested("alg", checkpoint.alg.as_ref()))
                .unwrap_or(family.alg),
            alg_temp: checkpoint.alg_temp.unwrap_or(family.alg_temp),
            eps: checkpoint.eps.unwrap_or(family.eps),
            cfg_scale: overrides
                .cfg_scale
                .or(checkpoint_cfg_scale)
                .unwrap_or(family.cfg_scale),
            threshold,
            tokens_per_step: overrides.tokens_per_step,
            cache: requested::<CacheKind>(overrides.cache.as_deref())?.unwrap_or(family.cache),
            stop_at_eos: family.stop_at_eos && early_stop,
            eos_early_stop: family.eos_early_stop && early_stop,
            steps_per_block,
            minimal_topk: overrides.minimal_topk.unwrap_or(family.minimal_topk),
            editing_threshold: overrides
                .editing_threshold
                .unwrap_or(family.editing_threshold),
            max_post_steps: overrides.max_post_steps.unwrap_or(family.max_post_steps),
            num_to_transfer: overrides.num_to_transfer.unwrap_or(family.num_to_transfer),
            ..family.clone()
        };
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Error;

    fn field_of(error: Error) -> (&'static str, String) {
        match error {
            Error::InvalidSetting { field, reason } => (field, reason),
            other => panic!("not an InvalidSetting: {other:?}"),
        }
    }

    fn checkpoint() -> GenerationDefaults {
        GenerationDefaults {
            gen_length: Some(64),
            block_length: Some(16),
            temperature: Some(0.3),
            steps: Some(64),
            threshold: Some(0.8),
            alg: Some("entropy".into()),
            remasking: Some("random".into()),
            eps: Some(0.01),
            alg_temp: Some(0.2),
            ..GenerationDefaults::default()
        }
    }

    #[test]
    fn overrides_win_over_the_checkpoint_which_wins_over_the_family() {
        let family = SamplerSettings {
            sampler: SamplerKind::Dream,
            temperature: 0.9,
            top_k: Some(50),
            ..SamplerSettings::default()
        };
        // Nothing asked: the checkpoint's values, the family's where the checkpoint is silent.
        let settings =
            SamplerSettings::resolve(&SamplerOverrides::default(), &checkpoint(), &family).unwrap();
        assert_eq!(settings.sampler, SamplerKind::Dream);
        assert_eq!(settings.gen_length, 64);
        assert_eq!(settings.block_length, 16);
        assert_eq!(settings.temperature, 0.3);
        assert_eq!(settings.top_k, Some(50));
        assert_eq!(settings.threshold, Some(0.8));
        assert_eq!(settings.alg, DreamAlgorithm::Entropy);
        assert_eq!(settings.remasking, ConfidenceRule::Random);
        assert_eq!(settings.eps, 0.01);
        assert_eq!(settings.alg_temp, 0.2);
        assert_eq!(
            settings.steps,
            Some(64),
            "the checkpoint's steps for its own length"
        );

        // Asked: the caller's values.
        let overrides = SamplerOverrides {
            gen_length: Some(32),
            block_length: Some(8),
            temperature: Some(0.0),
            top_k: Some(5),
            threshold: Some(0.5),
            alg: Some("origin".into()),
            remasking: Some("low_confidence".into()),
            ..SamplerOverrides::default()
        };
        let settings = SamplerSettings::resolve(&overrides, &checkpoint(), &family).unwrap();
        assert_eq!(settings.gen_length, 32);
        assert_eq!(settings.block_length, 8);
        assert_eq!(settings.temperature, 0.0);
        assert_eq!(settings.top_k, Some(5));
        assert_eq!(settings.threshold, Some(0.5));
        assert_eq!(settings.alg, DreamAlgorithm::Origin);
        assert_eq!(settings.remasking, ConfidenceRule::LowConfidence);
        assert_eq!(
            settings.steps, None,
            "the checkpoint's 64 steps belong to its 64 tokens, not 32"
        );

        // Neither: the family's.
        let settings = SamplerSettings::resolve(
            &SamplerOverrides::default(),
            &GenerationDefaults::default(),
            &family,
        )
        .unwrap();
        assert_eq!(settings.temperature, 0.9);
        assert_eq!(settings.gen_length, family.gen_length);
        assert_eq!(settings.threshold, family.threshold);
    }

    #[test]
    fn unknown_names_asked_for_are_refused_with_their_field() {
        for (overrides, field) in [
            (
                SamplerOverrides {
                    remasking: Some("sometimes".into()),
                    ..SamplerOverrides::default()
                },
                "remasking",
            ),
            (
                SamplerOverrides {
                    sampler: Some("greedy".into()),
                    ..SamplerOverrides::default()
                },
                "sampler",
            ),
            (
                SamplerOverrides {
                    alg: Some("best".into()),
                    ..SamplerOverrides::default()
                },
                "alg",
            ),
            (
                SamplerOverrides {
                    cache: Some("all".into()),
                    ..SamplerOverrides::default()
                },
                "cache",
            ),
            (
                SamplerOverrides {
                    threshold: Some(1.5),
                    ..SamplerOverrides::default()
                },
                "threshold",
            ),
        ] {
            let error = SamplerSettings::resolve(
                &overrides,
                &GenerationDefaults::default(),
                &SamplerSettings::default(),
            )
            .unwrap_err();
            let (named, reason) = field_of(error);
            assert_eq!(named, field, "{reason}");
            assert!(
                !reason.contains("--"),
                "no flag names in the engine: {reason}"
            );
        }
    }

    #[test]
    fn unknown_names_in_the_checkpoint_are_ignored() {
        let checkpoint = GenerationDefaults {
            remasking: Some("sometimes".into()),
            alg: Some("confidence_threshold".into()),
            ..GenerationDefaults::default()
        };
        let family = SamplerSettings {
            alg: DreamAlgorithm::TopkMargin,
            ..SamplerSettings::default()
        };
        let settings =
            SamplerSettings::resolve(&SamplerOverrides::default(), &checkpoint, &family).unwrap();
        assert_eq!(settings.remasking, family.remasking);
        assert_eq!(settings.alg, DreamAlgorithm::TopkMargin);
    }

    #[test]
    fn cfg_scale_is_refused_off_llada_and_the_checkpoints_is_ignored() {
        let asked = SamplerOverrides {
            cfg_scale: Some(1.5),
            ..SamplerOverrides::default()
        };
        let error = SamplerSettings::resolve(
            &asked,
            &GenerationDefaults::default(),
            &SamplerSettings::default(),
        )
        .unwrap_err();
        assert_eq!(field_of(error).0, "cfg_scale");

        let checkpoint = GenerationDefaults {
            cfg_scale: Some(1.5),
            ..GenerationDefaults::default()
        };
        let fast = SamplerSettings::resolve(
            &SamplerOverrides::default(),
            &checkpoint,
            &SamplerSettings::default(),
        )
        .unwrap();
        assert_eq!(fast.cfg_scale, 0.0);
        let llada = SamplerSettings::resolve(
            &SamplerOverrides {
                sampler: Some("llada".into()),
                gen_length: Some(32),
                block_length: Some(8),
                ..SamplerOverrides::default()
            },
            &checkpoint,
            &SamplerSettings::default(),
        )
        .unwrap();
        assert_eq!(llada.cfg_scale, 1.5);
    }

    #[test]
    fn samplers_switches_and_block_diffusion_steps() {
        // tokens_per_step switches the threshold off.
        let settings = SamplerSettings::resolve(
            &SamplerOverrides {
                tokens_per_step: Some(2),
                ..SamplerOverrides::default()
            },
            &checkpoint(),
            &SamplerSettings::default(),
        )
        .unwrap();
        assert_eq!(settings.threshold, None);
        assert_eq!(settings.tokens_per_step, Some(2));

        // Block diffusion on a family that is not block-causal: its own threshold; steps per block.
        let settings = SamplerSettings::resolve(
            &SamplerOverrides {
                sampler: Some("llada2".into()),
                steps: Some(8),
                ..SamplerOverrides::default()
            },
            &GenerationDefaults::default(),
            &SamplerSettings {
                threshold: None,
                ..SamplerSettings::default()
            },
        )
        .unwrap();
        assert_eq!(settings.threshold, Some(BLOCK_DIFFUSION_THRESHOLD));
        assert_eq!(settings.steps_per_block, 8);

        // Keep going past EOS.
        let family = SamplerSettings {
            eos_early_stop: true,
            ..SamplerSettings::default()
        };
        let settings = SamplerSettings::resolve(
            &SamplerOverrides {
                early_stop: Some(false),
                ..SamplerOverrides::default()
            },
            &GenerationDefaults::default(),
            &family,
        )
        .unwrap();
        assert!(!settings.stop_at_eos && !settings.eos_early_stop);
    }
}
