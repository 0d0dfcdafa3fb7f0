//! Scoring one row of a cohort: the [`ScoreSpec`] each sampler derives from a row's settings
//! (token choice, confidence measure, banned ids), and scoring a row's candidate positions.

use candle_core::Tensor;

use super::cohort::Row;
use super::scoring::{ConfidenceMeasure, ScoreSpec, TokenChoice};
use super::select::SeededRng;
use super::settings::{ConfidenceRule, DreamAlgorithm, SamplerKind};
use crate::model::ModelInfo;
use crate::Result;

/// The scoring rule of a row for the sampler it runs.
pub(crate) fn score_spec(row: &Row, info: &ModelInfo, sampler: SamplerKind) -> ScoreSpec {
    let settings = &row.settings;
    let mut spec = ScoreSpec {
        choice: TokenChoice::GumbelMax,
        measure: match settings.remasking {
            ConfidenceRule::LowConfidence => ConfidenceMeasure::Probability,
            ConfidenceRule::Random => ConfidenceMeasure::Random,
        },
        temperature: settings.temperature,
        top_p: settings.top_p,
        top_k: settings.top_k,
        banned: Vec::new(),
        confidence_banned: Vec::new(),
        vocab_size: info.vocab_size.min(info.logits_width),
    };
    match sampler {
        SamplerKind::Llada => {
            if settings.suppress_eos {
                spec.banned.extend(row.tokens.eos);
            }
            if settings.suppress_eos_eot_confidence {
                // The reference writes `logits_with_noise[.., eos] = logits[.., eot] = -inf` after
                // choosing x0: only EoT's confidence logit changes (see `llada`).
                spec.confidence_banned
                    .extend(row.tokens.end_of_turn.iter().copied());
            }
        }
        SamplerKind::Dream | SamplerKind::Mdm => {
            spec.choice = TokenChoice::Categorical;
            spec.measure = match settings.alg {
                DreamAlgorithm::Origin | DreamAlgorithm::MaskgitPlus | DreamAlgorithm::P2 => {
                    ConfidenceMeasure::Probability
                }
                DreamAlgorithm::TopkMargin => ConfidenceMeasure::Margin,
                DreamAlgorithm::Entropy => ConfidenceMeasure::NegEntropy,
            };
        }
        SamplerKind::Llada2 | SamplerKind::Llada21 => {
            // `sample_tokens` of both LLaDA2 samplers: softmax (after temperature, top-k, top-p),
            // argmax or a categorical draw, confidence = probability of the chosen token.
            spec.choice = TokenChoice::Categorical;
            spec.measure = ConfidenceMeasure::Probability;
        }
        SamplerKind::Fast => {
            // Fast-dLLM follows each family's own token choice; the mask id is never a valid output.
            if info.shift_logits {
                spec.choice = TokenChoice::Categorical;
            }
            spec.banned.push(row.tokens.mask);
            if settings.suppress_eos {
                spec.banned.extend(row.tokens.eos);
            }
        }
    }
    spec
}

/// Scores the candidate `positions` of one row. `window` holds the logits predicting absolute
/// positions `[window_start, window_start + n)`, `[n, W]`; only the candidates' rows are scored.
pub(crate) fn score_positions(
    window: &Tensor,
    window_start: usize,
    positions: &[usize],
    spec: &ScoreSpec,
    rng: &mut SeededRng,
) -> Result<Vec<(usize, u32, f64)>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let n = window.dim(0)?;
    let contiguous = positions.len() == n && positions.first() == Some(&window_start);
    let rows = if contiguous {
        window.clone()
    } else {
        let relative: Vec<u32> = positions
            .iter()
            .map(|&p| (p - window_start) as u32)
            .collect();
        let index = Tensor::from_vec(relative, positions.len(), window.device())?;
        window.index_select(&index, 0)?
    };
    let scored = super::scoring::score(&rows, spec, rng)?;
    Ok(positions
        .iter()
        .zip(scored.tokens)
        .zip(scored.confidence)
        .map(|((&p, token), confidence)| (p, token, confidence))
        .collect())
}
