//! Scoring one row of a cohort: the [`ScoreSpec`] each sampler derives from a row's settings
//! (token choice, confidence measure, banned ids), and scoring a row's candidate positions.

use candle_core::Tensor;

use super::cohort::Row;
use super::scoring::{ConfidenceMeasure, ScoreSpec, TokenChoice};
use super::select::SeededRng;
use super::settings::{ConfidenceRule, DreamAlgorithm, SamplerKind};
use crate::model::ModelInfo;
use crate::profile::{self, Phase};
use crate::{Error, Result};

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

/// The rows of a forward whose logits a step needs: those predicting the positions it scores
/// (position `p` is predicted by row `p`, or with Dream's shift by row `p - 1`, and position 0 by
/// row 0: the reference's `cat([logits[:, :1], logits[:, :-1]])`), relative to the span start.
/// Every row of the batch gets the same rows (the union of what the rows need).
#[derive(Debug, Clone)]
pub(crate) struct LogitRows {
    rows: Vec<usize>,
    span_start: usize,
    shift: bool,
}

impl LogitRows {
    /// The rows predicting `positions` (any order, repeats allowed) in a span of `span_len`
    /// positions from `span_start`.
    pub fn new(
        positions: impl IntoIterator<Item = usize>,
        span_start: usize,
        span_len: usize,
        shift: bool,
    ) -> Result<Self> {
        let mut this = Self {
            rows: Vec::new(),
            span_start,
            shift,
        };
        let mut rows = positions
            .into_iter()
            .map(|p| this.row(p))
            .collect::<Result<Vec<_>>>()?;
        rows.sort_unstable();
        rows.dedup();
        if rows.is_empty() {
            // Nothing to score: the forward still runs (it may fill a cache); a row is cheap.
            rows.push(0);
        }
        if rows.len() == 1 && span_len > 1 {
            // Never one row alone: a one-row head is a matrix-vector product, which candle sums in
            // another order than a matrix product, so a sequence's logits (and, on near ties, its
            // tokens) would depend on whether it shares the forward with others.
            let neighbour = if rows[0] > 0 { rows[0] - 1 } else { 1 };
            rows.push(neighbour);
            rows.sort_unstable();
        }
        if let Some(&last) = rows.last().filter(|&&last| last >= span_len) {
            return Err(Error::InvalidInput(format!(
                "internal: row {last} is outside the forward's span of {span_len}"
            )));
        }
        this.rows = rows;
        Ok(this)
    }

    /// Span-relative rows, ascending (for [`crate::model::ForwardInput::logits_rows`]).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    fn row(&self, position: usize) -> Result<usize> {
        let raw = if self.shift {
            position.saturating_sub(1)
        } else {
            position
        };
        raw.checked_sub(self.span_start).ok_or_else(|| {
            Error::InvalidInput(format!(
                "internal: position {position} is not predicted by a span starting at {}",
                self.span_start
            ))
        })
    }

    /// The logits predicting `positions` for batch row `b`, `[positions.len(), W]`, from the
    /// forward's output `logits` `[B, rows, W]` (all of its rows when `positions` is empty: there
    /// is nothing to score then).
    pub fn select(&self, logits: &Tensor, b: usize, positions: &[usize]) -> Result<Tensor> {
        let timer = profile::start(logits.device())?;
        let selected = self.select_untimed(logits, b, positions);
        timer.stop(Phase::Scoring, logits.device())?;
        selected
    }

    fn select_untimed(&self, logits: &Tensor, b: usize, positions: &[usize]) -> Result<Tensor> {
        let mine = logits.get(b)?;
        if positions.is_empty() {
            return Ok(mine);
        }
        let index = positions
            .iter()
            .map(|&p| {
                let row = self.row(p)?;
                self.rows
                    .binary_search(&row)
                    .map(|i| i as u32)
                    .map_err(|_| {
                        Error::InvalidInput(format!(
                            "internal: the logits of position {position} were not asked for",
                            position = p
                        ))
                    })
            })
            .collect::<Result<Vec<u32>>>()?;
        let all = index.len() == self.rows.len()
            && index.iter().enumerate().all(|(i, &r)| r as usize == i);
        if all {
            return Ok(mine);
        }
        let index = Tensor::from_vec(index, positions.len(), logits.device())?;
        Ok(mine.index_select(&index, 0)?)
    }
}

/// Scores the candidate `positions` of one row from `logits` `[positions.len(), W]`, the rows
/// predicting them ([`LogitRows::select`]).
pub(crate) fn score_positions(
    logits: &Tensor,
    positions: &[usize],
    spec: &ScoreSpec,
    rng: &mut SeededRng,
) -> Result<Vec<(usize, u32, f64)>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let timer = profile::start(logits.device())?;
    let scored = super::scoring::score(logits, spec, rng)?;
    timer.stop(Phase::Scoring, logits.device())?;
    Ok(positions
        .iter()
        .zip(scored.tokens)
        .zip(scored.confidence)
        .map(|((&p, token), confidence)| (p, token, confidence))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn rows_follow_the_shift_and_never_stand_alone() {
        // Unshifted: position p is row p - span_start; repeats and order do not matter.
        let rows = LogitRows::new([7, 5, 7], 4, 10, false).unwrap();
        assert_eq!(rows.rows(), &[1, 3]);
        // Shifted: position p is row p - 1, and position 0 row 0.
        let rows = LogitRows::new([0, 1, 4], 0, 8, true).unwrap();
        assert_eq!(rows.rows(), &[0, 3]);
        // One row gets a neighbour (a one-row head rounds differently from a batch's).
        assert_eq!(LogitRows::new([6], 0, 8, false).unwrap().rows(), &[5, 6]);
        assert_eq!(LogitRows::new([0], 0, 8, false).unwrap().rows(), &[0, 1]);
        assert_eq!(LogitRows::new([], 0, 8, false).unwrap().rows(), &[0, 1]);
        // A position before the span, or past it, is an internal error.
        assert!(LogitRows::new([3], 4, 8, false).is_err());
        assert!(LogitRows::new([4], 4, 8, true).is_err());
        assert!(LogitRows::new([12], 4, 8, false).is_err());
    }

    #[test]
    fn select_picks_each_positions_row() {
        // Batch of 2, rows [1, 3] of a span from 4: logits[b][j] = 10 b + j.
        let logits = Tensor::new(&[[[0f32], [1.0]], [[10.0], [11.0]]], &Device::Cpu).unwrap();
        let rows = LogitRows::new([5, 7], 4, 6, false).unwrap();
        let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(rows.select(&logits, 1, &[7]).unwrap()), vec![11.0]);
        assert_eq!(
            values(rows.select(&logits, 0, &[7, 5]).unwrap()),
            vec![1.0, 0.0]
        );
        assert_eq!(
            values(rows.select(&logits, 1, &[5, 7]).unwrap()),
            vec![10.0, 11.0]
        );
        assert!(rows.select(&logits, 0, &[6]).is_err());
    }
}
