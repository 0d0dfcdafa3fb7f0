//! From logits to one (token, confidence) pair per masked position.
//!
//! The greedy paths (temperature 0, no top-p / top-k) bring back only two numbers per position: on
//! a GPU they run as tensor ops on the device, on the CPU they read the logits in place, rows in
//! parallel (`greedy`), so a step copies nothing per vocabulary entry.
//! Sampling (Gumbel-max, categorical, top-p / top-k) needs the sequence's own RNG and runs on the
//! host over the candidate rows only.
//!
//! [`logits_for_positions`] applies Dream's shift of the logits to whole logits; samplers, which ask
//! the model for selected rows only, map positions to rows by the same rule (`row_scoring::LogitRows`).

use candle_core::{DType, Device, Tensor, D};

use super::select::SeededRng;

mod greedy;
mod host;
use crate::{Error, Result};
use host::score_on_host;

/// Returns the logits that predict the tokens at absolute positions `[start, end)`, `[B, end -
/// start, W]`, from the model's raw logits `raw` (`[B, n, W]`, covering absolute positions
/// `[span_start, span_start + n)`).
///
/// With `shift` (Dream: "logits shifted right by one"), position `p` is predicted by the raw row at
/// `p - 1`, and position 0 by row 0 itself (the reference's `cat([logits[:, :1], logits[:, :-1]])`).
/// A span that starts after 0 therefore needs to begin one position before the first position it
/// predicts; the samplers arrange that (Fast-dLLM instead copied the span's first row, an
/// approximation we avoid).
pub fn logits_for_positions(
    raw: &Tensor,
    span_start: usize,
    start: usize,
    end: usize,
    shift: bool,
) -> Result<Tensor> {
    let n = raw.dim(1)?;
    let len = end.saturating_sub(start);
    if !shift {
        if start < span_start || end > span_start + n {
            return Err(Error::InvalidInput(format!(
                "internal: positions {start}..{end} are outside the forward span {span_start}..{}",
                span_start + n
            )));
        }
        return Ok(raw.narrow(1, start - span_start, len)?);
    }
    if start == 0 {
        if span_start != 0 || end > n {
            return Err(Error::InvalidInput(
                "internal: shifted logits need the span from 0".into(),
            ));
        }
        let first = raw.narrow(1, 0, 1)?;
        if len <= 1 {
            return Ok(first.narrow(1, 0, len)?);
        }
        let rest = raw.narrow(1, 0, len - 1)?;
        return Ok(Tensor::cat(&[&first, &rest], 1)?);
    }
    if start - 1 < span_start || end - 1 > span_start + n {
        return Err(Error::InvalidInput(format!(
            "internal: shifted positions {start}..{end} need the span to start at {} (it starts at {span_start})",
            start - 1
        )));
    }
    Ok(raw.narrow(1, start - 1 - span_start, len)?)
}

/// How the token at a position is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChoice {
    /// LLaDA `add_gumbel_noise` + argmax: `exp(l) / (-ln u)^temperature` in f64.
    GumbelMax,
    /// Dream `sample_tokens`: `logits / temperature`, top-p, top-k, softmax, then a categorical
    /// draw (or the most probable token at temperature 0).
    Categorical,
}

/// How a position's confidence is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfidenceMeasure {
    /// Probability of the chosen token.
    Probability,
    /// Top-1 minus top-2 probability.
    Margin,
    /// `sum(p * ln(p + 1e-10))`.
    NegEntropy,
    /// A uniform random number.
    Random,
}

/// Everything that decides tokens and confidences for one sequence.
#[derive(Debug, Clone)]
pub struct ScoreSpec {
    pub choice: TokenChoice,
    pub measure: ConfidenceMeasure,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    /// Ids never chosen (their logits become -inf): EOS under `suppress_eos`, the mask id in fast
    /// decoding.
    pub banned: Vec<u32>,
    /// Ids whose logits become -inf only for the confidence softmax, after the token is chosen
    /// (LLaDA's `confidence_eos_eot_inf`, as the reference actually behaves).
    pub confidence_banned: Vec<u32>,
    /// Ids `>= vocab_size` are never valid outputs.
    pub vocab_size: usize,
}

/// Tokens and confidences of a run of positions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    pub tokens: Vec<u32>,
    pub confidence: Vec<f64>,
}

impl ScoreSpec {
    fn greedy(&self) -> bool {
        self.temperature == 0.0 && self.top_k.is_none() && self.top_p.is_none_or(|p| p >= 1.0)
    }
}

fn ban_bias(ids: &[u32], vocab: usize, device: &Device) -> Result<Option<Tensor>> {
    let mut bias = vec![0f32; vocab];
    let mut any = false;
    for &id in ids {
        if let Some(slot) = bias.get_mut(id as usize) {
            *slot = f32::NEG_INFINITY;
            any = true;
        }
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Tensor::from_vec(bias, vocab, device)?))
}

/// Scores `logits` (`[n, W]` f32, one row per position of one sequence).
pub fn score(logits: &Tensor, spec: &ScoreSpec, rng: &mut SeededRng) -> Result<Scored> {
    let n = logits.dim(0)?;
    if n == 0 {
        return Ok(Scored::default());
    }
    let width = logits.dim(1)?;
    let vocab = spec.vocab_size.min(width);
    if spec.greedy() {
        // CPU memory: read the logits in place (no `[n, vocab]` temporaries), rows in parallel.
        if let Some(mut scored) = greedy::score_in_place(logits, spec, vocab)? {
            if spec.measure == ConfidenceMeasure::Random {
                scored.confidence = (0..n).map(|_| rng.next_open01()).collect();
            }
            return Ok(scored);
        }
    }
    let mut logits = logits.narrow(1, 0, vocab)?.to_dtype(DType::F32)?;
    if let Some(bias) = ban_bias(&spec.banned, vocab, logits.device())? {
        logits = logits.broadcast_add(&bias)?;
    }
    let mut scored = if spec.greedy() {
        score_on_device(&logits, spec)?
    } else {
        score_on_host(&logits, spec, rng)?
    };
    if spec.measure == ConfidenceMeasure::Random {
        scored.confidence = (0..n).map(|_| rng.next_open01()).collect();
    }
    Ok(scored)
}

fn score_on_device(logits: &Tensor, spec: &ScoreSpec) -> Result<Scored> {
    let vocab = logits.dim(1)?;
    let device = logits.device();
    let (tokens, confidence) = match spec.choice {
        TokenChoice::GumbelMax => {
            // x0 = argmax(logits); confidence = softmax(logits')[x0].
            let tokens = logits.argmax_keepdim(D::Minus1)?;
            let conf_logits = match ban_bias(&spec.confidence_banned, vocab, device)? {
                Some(bias) => logits.broadcast_add(&bias)?,
                None => logits.clone(),
            };
            let max = conf_logits.max_keepdim(D::Minus1)?;
            let exp = conf_logits.broadcast_sub(&max)?.exp()?;
            let sum = exp.sum_keepdim(D::Minus1)?;
            let chosen = exp.gather(&tokens, D::Minus1)?;
            let confidence = match spec.measure {
                ConfidenceMeasure::Probability | ConfidenceMeasure::Random => chosen.div(&sum)?,
                ConfidenceMeasure::Margin | ConfidenceMeasure::NegEntropy => {
                    let probs = exp.broadcast_div(&sum)?;
                    probability_statistic(&probs, &tokens, spec.measure)?
                }
            };
            (tokens, confidence)
        }
        TokenChoice::Categorical => {
            // probs = softmax(logits); confidence, x0 = probs.max(-1).
            let max = logits.max_keepdim(D::Minus1)?;
            let exp = logits.broadcast_sub(&max)?.exp()?;
            let sum = exp.sum_keepdim(D::Minus1)?;
            let probs = exp.broadcast_div(&sum)?;
            let tokens = probs.argmax_keepdim(D::Minus1)?;
            let confidence = match spec.measure {
                ConfidenceMeasure::Probability | ConfidenceMeasure::Random => {
                    probs.max_keepdim(D::Minus1)?
                }
                ConfidenceMeasure::Margin | ConfidenceMeasure::NegEntropy => {
                    probability_statistic(&probs, &tokens, spec.measure)?
                }
            };
            (tokens, confidence)
        }
    };
    let tokens = tokens
        .squeeze(D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    let confidence = confidence
        .squeeze(D::Minus1)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect();
    Ok(Scored { tokens, confidence })
}

/// Margin (top-1 minus top-2) or negative entropy of `probs` `[n, V]`, keeping a trailing dim.
fn probability_statistic(
    probs: &Tensor,
    tokens: &Tensor,
    measure: ConfidenceMeasure,
) -> Result<Tensor> {
    match measure {
        ConfidenceMeasure::Margin => {
            let vocab = probs.dim(1)?;
            let top1 = probs.max_keepdim(D::Minus1)?;
            let ids = Tensor::arange(0u32, vocab as u32, probs.device())?.unsqueeze(0)?;
            let is_top = ids.broadcast_eq(&tokens.to_dtype(DType::U32)?)?;
            let floor = Tensor::full(f32::NEG_INFINITY, probs.dims(), probs.device())?;
            let top2 = is_top.where_cond(&floor, probs)?.max_keepdim(D::Minus1)?;
            // With a single valid token there is no second one: the margin is the top probability.
            let top2 = top2.maximum(0f32)?;
            Ok(top1.sub(&top2)?)
        }
        _ => {
            let log = (probs + 1e-10)?.log()?;
            Ok((probs * log)?.sum_keepdim(D::Minus1)?)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn spec(choice: TokenChoice, measure: ConfidenceMeasure) -> ScoreSpec {
        ScoreSpec {
            choice,
            measure,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            banned: vec![],
            confidence_banned: vec![],
            vocab_size: 4,
        }
    }

    fn rows() -> Tensor {
        Tensor::new(
            &[[1.0f32, 3.0, 2.0, 0.0], [0.5, 0.1, 0.2, 4.0]],
            &Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn device_and_host_paths_agree() {
        for choice in [TokenChoice::GumbelMax, TokenChoice::Categorical] {
            for measure in [
                ConfidenceMeasure::Probability,
                ConfidenceMeasure::Margin,
                ConfidenceMeasure::NegEntropy,
            ] {
                let s = spec(choice, measure);
                let device = score_on_device(&rows(), &s).unwrap();
                let host = score_on_host(&rows(), &s, &mut SeededRng::new(0)).unwrap();
                assert_eq!(device.tokens, host.tokens);
                assert_eq!(device.tokens, vec![1, 3]);
                for (a, b) in device.confidence.iter().zip(&host.confidence) {
                    assert!((a - b).abs() < 1e-5, "{choice:?} {measure:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn banned_ids_are_never_chosen() {
        let mut s = spec(TokenChoice::GumbelMax, ConfidenceMeasure::Probability);
        s.banned = vec![1];
        assert_eq!(
            score(&rows(), &s, &mut SeededRng::new(0)).unwrap().tokens,
            vec![2, 3]
        );
        s.temperature = 1.0;
        for seed in 0..20 {
            let scored = score(&rows(), &s, &mut SeededRng::new(seed)).unwrap();
            assert!(!scored.tokens.contains(&1));
        }
    }

    #[test]
    fn shift_moves_predictions_one_position_right() {
        let raw = Tensor::arange(0f32, 5.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 5, 1))
            .unwrap();
        let rows = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            rows(logits_for_positions(&raw, 0, 0, 5, true).unwrap()),
            vec![0.0, 0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(
            rows(logits_for_positions(&raw, 0, 2, 4, true).unwrap()),
            vec![1.0, 2.0]
        );
        // A span starting at 3 holds positions 3..8: it predicts 4..8 exactly.
        assert_eq!(
            rows(logits_for_positions(&raw, 3, 4, 6, true).unwrap()),
            vec![0.0, 1.0]
        );
        assert!(logits_for_positions(&raw, 3, 3, 6, true).is_err());
        assert_eq!(
            rows(logits_for_positions(&raw, 3, 4, 6, false).unwrap()),
            vec![1.0, 2.0]
        );
    }
}
