//! Scoring on the host, one row at a time in f64: sampling (Gumbel-max, categorical draws, top-p /
//! top-k) with the sequence's own RNG, and the confidence statistics.

use candle_core::Tensor;

use super::{ConfidenceMeasure, ScoreSpec, Scored, TokenChoice};
use crate::sampling::select::SeededRng;
use crate::Result;

pub(super) fn score_on_host(
    logits: &Tensor,
    spec: &ScoreSpec,
    rng: &mut SeededRng,
) -> Result<Scored> {
    let rows = logits.to_vec2::<f32>()?;
    let mut scored = Scored::default();
    for row in rows {
        let (token, confidence) = match spec.choice {
            TokenChoice::GumbelMax => gumbel_row(&row, spec, rng),
            TokenChoice::Categorical => categorical_row(&row, spec, rng),
        };
        scored.tokens.push(token);
        scored.confidence.push(confidence);
    }
    Ok(scored)
}

fn softmax64(row: &[f64]) -> Vec<f64> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = row.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// LLaDA: Gumbel-max in f64, confidence from the (f64) softmax of the un-noised logits.
fn gumbel_row(row: &[f32], spec: &ScoreSpec, rng: &mut SeededRng) -> (u32, f64) {
    let logits: Vec<f64> = row.iter().map(|&l| f64::from(l)).collect();
    let token = if spec.temperature > 0.0 {
        let noisy: Vec<f64> = logits
            .iter()
            .map(|&l| l.exp() / (-rng.next_open01().ln()).powf(spec.temperature))
            .collect();
        argmax(&noisy)
    } else {
        argmax(&logits)
    };
    let mut conf_logits = logits;
    for &id in &spec.confidence_banned {
        if let Some(l) = conf_logits.get_mut(id as usize) {
            *l = f64::NEG_INFINITY;
        }
    }
    let probs = softmax64(&conf_logits);
    (token as u32, statistic(&probs, token, spec.measure))
}

/// Dream `sample_tokens` on one row.
fn categorical_row(row: &[f32], spec: &ScoreSpec, rng: &mut SeededRng) -> (u32, f64) {
    let mut logits: Vec<f64> = row.iter().map(|&l| f64::from(l)).collect();
    if spec.temperature > 0.0 {
        logits.iter_mut().for_each(|l| *l /= spec.temperature);
    }
    if let Some(top_p) = spec.top_p.filter(|&p| p < 1.0) {
        // Keep the smallest prefix (by descending probability) whose mass exceeds top_p; always
        // keep the first token.
        let probs = softmax64(&logits);
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| {
            probs[b]
                .partial_cmp(&probs[a])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        });
        let mut cumulative = 0.0;
        let mut remove_next = false;
        for &i in &order {
            if remove_next {
                logits[i] = f64::NEG_INFINITY;
            }
            cumulative += probs[i];
            if cumulative > top_p {
                remove_next = true;
            }
        }
    }
    if let Some(top_k) = spec.top_k {
        let mut sorted = logits.clone();
        sorted.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(&kth) = sorted.get(top_k.min(sorted.len()).saturating_sub(1)) {
            logits
                .iter_mut()
                .filter(|l| **l < kth)
                .for_each(|l| *l = f64::NEG_INFINITY);
        }
    }
    let probs = softmax64(&logits);
    let token = if spec.temperature > 0.0 {
        let u = rng.next_open01();
        let mut cumulative = 0.0;
        let mut chosen = argmax(&probs);
        for (i, &p) in probs.iter().enumerate() {
            cumulative += p;
            if u < cumulative && p > 0.0 {
                chosen = i;
                break;
            }
        }
        chosen
    } else {
        argmax(&probs)
    };
    (token as u32, statistic(&probs, token, spec.measure))
}

fn statistic(probs: &[f64], token: usize, measure: ConfidenceMeasure) -> f64 {
    match measure {
        ConfidenceMeasure::Probability | ConfidenceMeasure::Random => {
            probs.get(token).copied().unwrap_or(0.0)
        }
        ConfidenceMeasure::Margin => {
            let mut top = [0.0f64; 2];
            for &p in probs {
                if p > top[0] {
                    top = [p, top[0]];
                } else if p > top[1] {
                    top[1] = p;
                }
            }
            top[0] - top[1]
        }
        ConfidenceMeasure::NegEntropy => probs.iter().map(|&p| p * (p + 1e-10).ln()).sum(),
    }
}
