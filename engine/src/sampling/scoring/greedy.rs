//! Greedy scoring (temperature 0, no top-p / top-k) of logits that live in CPU memory, read in
//! place: per row, one pass for the maximum (and the two largest values for the margin), one for
//! the softmax denominator, one more for the entropy, all in f64 as the host path computes them.
//! Banned ids are skipped, not overwritten, so nothing `[positions x vocab]` is allocated or
//! copied; rows are split across threads. Only a token and a confidence per row come out.
//!
//! The results equal `host::score_on_host` at temperature 0 (same f64 formulas), which the
//! module's tests check; on other devices `scoring` reduces on the device instead.

use candle_core::{DType, Storage, Tensor};

use super::{ConfidenceMeasure, ScoreSpec, Scored, TokenChoice};
use crate::Result;

/// Rows below this many logits in all are scored on the calling thread (spawning costs more).
const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

/// Scores `logits` `[n, W]` (only the first `vocab` columns are valid ids); `None` when the
/// tensor is not f32 in CPU memory (the caller then reduces on the device).
pub(super) fn score_in_place(
    logits: &Tensor,
    spec: &ScoreSpec,
    vocab: usize,
) -> Result<Option<Scored>> {
    if !logits.device().is_cpu() || logits.dtype() != DType::F32 {
        return Ok(None);
    }
    let logits = logits.contiguous()?;
    let (n, width) = logits.dims2()?;
    let (storage, layout) = logits.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let offset = layout.start_offset();
    let data = &cpu.as_slice::<f32>()?[offset..offset + n * width];
    let rules = Rules::new(spec, vocab);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(n);
    let mut results = vec![(0u32, 0f64); n];
    if threads <= 1 || n * vocab < PARALLEL_MIN_ELEMENTS {
        for (row, out) in data.chunks(width).zip(results.iter_mut()) {
            *out = rules.row(&row[..vocab]);
        }
    } else {
        let per_thread = n.div_ceil(threads);
        std::thread::scope(|scope| {
            for (rows, outs) in data
                .chunks(per_thread * width)
                .zip(results.chunks_mut(per_thread))
            {
                let rules = &rules;
                scope.spawn(move || {
                    for (row, out) in rows.chunks(width).zip(outs.iter_mut()) {
                        *out = rules.row(&row[..vocab]);
                    }
                });
            }
        });
    }
    Ok(Some(Scored {
        tokens: results.iter().map(|&(token, _)| token).collect(),
        confidence: results.iter().map(|&(_, confidence)| confidence).collect(),
    }))
}

/// Which ids the token may not be, and which the confidence softmax leaves out.
struct Rules {
    /// Ids never chosen, sorted, below the vocabulary.
    banned: Vec<usize>,
    /// `banned` plus, for LLaDA's Gumbel rule, `confidence_banned`: the softmax's excluded ids.
    excluded: Vec<usize>,
    measure: ConfidenceMeasure,
}

impl Rules {
    fn new(spec: &ScoreSpec, vocab: usize) -> Self {
        let sorted = |ids: &mut Vec<usize>| {
            ids.retain(|&id| id < vocab);
            ids.sort_unstable();
            ids.dedup();
        };
        let mut banned: Vec<usize> = spec.banned.iter().map(|&id| id as usize).collect();
        sorted(&mut banned);
        let mut excluded = banned.clone();
        if spec.choice == TokenChoice::GumbelMax {
            excluded.extend(spec.confidence_banned.iter().map(|&id| id as usize));
        }
        sorted(&mut excluded);
        Self {
            banned,
            excluded,
            measure: spec.measure,
        }
    }

    /// (token, confidence) of one row of `vocab` logits.
    fn row(&self, row: &[f32]) -> (u32, f64) {
        // The two largest logits the softmax sees (duplicates count twice, as in `statistic`).
        let mut top = [(f32::NEG_INFINITY, usize::MAX); 2];
        for_allowed(row, &self.excluded, |start, values| {
            for (i, &l) in values.iter().enumerate() {
                if l > top[1].0 {
                    if l > top[0].0 {
                        top = [(l, start + i), top[0]];
                    } else {
                        top[1] = (l, start + i);
                    }
                }
            }
        });
        // The token may also be an id the softmax leaves out (LLaDA's end-of-turn): the first
        // largest among the allowed ids.
        let mut token = top[0];
        for &id in &self.excluded {
            if self.banned.binary_search(&id).is_err() {
                let l = row[id];
                if l > token.0 || (l == token.0 && id < token.1) {
                    token = (l, id);
                }
            }
        }
        let token_id = if token.1 == usize::MAX { 0 } else { token.1 };
        let max = f64::from(top[0].0);
        let mut sum = 0f64;
        for_allowed(row, &self.excluded, |_, values| {
            sum += values
                .iter()
                .map(|&l| (f64::from(l) - max).exp())
                .sum::<f64>();
        });
        let probability = |l: f32| (f64::from(l) - max).exp() / sum;
        let confidence = match self.measure {
            ConfidenceMeasure::Probability | ConfidenceMeasure::Random => {
                if self.excluded.binary_search(&token_id).is_ok() {
                    0.0
                } else {
                    probability(row[token_id])
                }
            }
            ConfidenceMeasure::Margin => {
                let second = if top[1].1 == usize::MAX {
                    0.0
                } else {
                    probability(top[1].0)
                };
                probability(top[0].0) - second
            }
            ConfidenceMeasure::NegEntropy => {
                let mut entropy = 0f64;
                for_allowed(row, &self.excluded, |_, values| {
                    entropy += values
                        .iter()
                        .map(|&l| {
                            let p = probability(l);
                            p * (p + 1e-10).ln()
                        })
                        .sum::<f64>();
                });
                entropy
            }
        };
        (token_id as u32, confidence)
    }
}

/// Calls `f(start, slice)` for each run of `row` between the (sorted) `skipped` ids.
fn for_allowed(row: &[f32], skipped: &[usize], mut f: impl FnMut(usize, &[f32])) {
    let mut start = 0;
    for &id in skipped {
        if id > start {
            f(start, &row[start..id]);
        }
        start = id + 1;
    }
    if start < row.len() {
        f(start, &row[start..]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::host::score_on_host;
    use super::*;
    use crate::sampling::select::SeededRng;
    use candle_core::Device;

    fn spec(choice: TokenChoice, measure: ConfidenceMeasure, vocab: usize) -> ScoreSpec {
        ScoreSpec {
            choice,
            measure,
            temperature: 0.0,
            top_p: None,
            top_k: None,
            banned: vec![],
            confidence_banned: vec![],
            vocab_size: vocab,
        }
    }

    #[test]
    fn equals_the_host_path_with_bans_on_many_rows() {
        // Enough rows and columns to take the threaded path.
        let (n, vocab) = (24, 20_000);
        let mut rng = SeededRng::new(5);
        let values: Vec<f32> = (0..n * vocab)
            .map(|_| (rng.next_open01() * 8.0 - 4.0) as f32)
            .collect();
        let logits = Tensor::from_vec(values, (n, vocab), &Device::Cpu).unwrap();
        for choice in [TokenChoice::GumbelMax, TokenChoice::Categorical] {
            for measure in [
                ConfidenceMeasure::Probability,
                ConfidenceMeasure::Margin,
                ConfidenceMeasure::NegEntropy,
            ] {
                let mut s = spec(choice, measure, vocab);
                let host = score_on_host(&logits, &s, &mut SeededRng::new(0)).unwrap();
                let fast = score_in_place(&logits, &s, vocab).unwrap().unwrap();
                assert_eq!(fast.tokens, host.tokens, "{choice:?} {measure:?}");
                for (a, b) in fast.confidence.iter().zip(&host.confidence) {
                    assert!((a - b).abs() < 1e-12, "{choice:?} {measure:?}: {a} vs {b}");
                }
                // Banning each row's winner moves the choice to the runner-up.
                s.banned = host.tokens.clone();
                let banned = score_in_place(&logits, &s, vocab).unwrap().unwrap();
                for (token, winner) in banned.tokens.iter().zip(&host.tokens) {
                    assert_ne!(token, winner);
                }
            }
        }
    }

    #[test]
    fn confidence_banned_token_is_chosen_with_zero_confidence() {
        let logits = Tensor::new(&[[1.0f32, 3.0, 2.0, 0.0]], &Device::Cpu).unwrap();
        let mut s = spec(TokenChoice::GumbelMax, ConfidenceMeasure::Probability, 4);
        s.confidence_banned = vec![1];
        let host = score_on_host(&logits, &s, &mut SeededRng::new(0)).unwrap();
        let fast = score_in_place(&logits, &s, 4).unwrap().unwrap();
        assert_eq!(fast.tokens, vec![1]);
        assert_eq!(fast, host);
    }

    #[test]
    fn columns_past_the_vocabulary_are_never_chosen() {
        let logits = Tensor::new(&[[1.0f32, 3.0, 2.0, 9.0]], &Device::Cpu).unwrap();
        let s = spec(TokenChoice::Categorical, ConfidenceMeasure::Probability, 3);
        let fast = score_in_place(&logits, &s, 3).unwrap().unwrap();
        assert_eq!(fast.tokens, vec![1]);
    }
}
