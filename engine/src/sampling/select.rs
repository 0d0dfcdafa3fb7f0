//! Selection rules: *which* masked positions a step commits, given one confidence per candidate.
//! Also the seeded RNG every sequence owns (so a sequence's randomness never depends on what else
//! is in its batch).
//!
//! **Ties.** The references pick with `torch.topk` on CPU, which runs libstdc++'s `std::partial_sort`
//! (when `k * 64 <= n`) or `std::nth_element` + `std::sort` over (value, index) pairs compared by
//! value only. Both are unstable, so among *exactly equal* confidences straddling the k-th place the
//! reference's pick is an artifact of the introselect pivots, not a rule. We use a rule instead:
//! higher confidence first, then the **lower position first** (a stable descending sort). The two
//! agree whenever the k-th and (k+1)-th confidences differ, which is every case of the parity
//! fixtures (they were kept only where float32 and float64 runs agree, i.e. where no near-tie
//! decides the outcome). NaN confidences sort last.

use std::cmp::Ordering;

/// A small, fast, reproducible RNG (xoshiro256** seeded through SplitMix64). Owned per sequence.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: [u64; 4],
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in the open interval (0, 1): never 0, so `-ln(u)` is always finite.
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

/// Descending by confidence, then ascending by position (see the module note on ties).
fn by_confidence_then_position(a: &(usize, f64), b: &(usize, f64)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            b.1.partial_cmp(&a.1)
                .unwrap_or(Ordering::Equal)
                .then(a.0.cmp(&b.0))
        }
    }
}

/// Candidates sorted most confident first.
pub fn rank(candidates: &[(usize, f64)]) -> Vec<(usize, f64)> {
    let mut sorted = candidates.to_vec();
    sorted.sort_by(by_confidence_then_position);
    sorted
}

/// The `k` most confident positions (`torch.topk(confidence, k)` over the candidates).
pub fn top_k_positions(candidates: &[(usize, f64)], k: usize) -> Vec<usize> {
    rank(candidates)
        .into_iter()
        .take(k)
        .map(|(position, _)| position)
        .collect()
}

/// Fast-dLLM's threshold rule: the most confident candidate always, then every other one whose
/// confidence is `>= threshold`.
pub fn threshold_positions(candidates: &[(usize, f64)], threshold: f64) -> Vec<usize> {
    rank(candidates)
        .into_iter()
        .enumerate()
        .filter(|(i, (_, confidence))| *i == 0 || *confidence >= threshold)
        .map(|(_, (position, _))| position)
        .collect()
}

/// Dream with `alg_temp > 0`: `k` distinct positions drawn without replacement with probability
/// proportional to `softmax(confidence / alg_temp)` (`torch.multinomial`). Implemented with the
/// Gumbel-top-k trick, which has exactly that distribution (the draws differ from torch's RNG).
pub fn sample_positions(
    candidates: &[(usize, f64)],
    k: usize,
    alg_temp: f64,
    rng: &mut SeededRng,
) -> Vec<usize> {
    let keyed: Vec<(usize, f64)> = candidates
        .iter()
        .map(|&(position, confidence)| {
            let gumbel = -(-rng.next_open01().ln()).ln();
            (position, confidence / alg_temp + gumbel)
        })
        .filter(|(_, key)| key.is_finite())
        .collect();
    top_k_positions(&keyed, k)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn top_k_breaks_ties_by_lower_position() {
        let c = [(5, 0.5), (2, 0.9), (7, 0.5), (3, 0.5)];
        assert_eq!(top_k_positions(&c, 1), vec![2]);
        assert_eq!(top_k_positions(&c, 2), vec![2, 3]);
        assert_eq!(top_k_positions(&c, 3), vec![2, 3, 5]);
        assert_eq!(top_k_positions(&c, 10).len(), 4);
    }

    #[test]
    fn threshold_always_commits_one() {
        let c = [(0, 0.2), (1, 0.95), (2, 0.91), (3, 0.5)];
        assert_eq!(threshold_positions(&c, 0.9), vec![1, 2]);
        assert_eq!(threshold_positions(&c, 0.99), vec![1]);
        assert!(threshold_positions(&[], 0.5).is_empty());
    }

    #[test]
    fn rng_is_deterministic_and_open() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..1000 {
            let x = a.next_open01();
            assert!(x > 0.0 && x < 1.0);
            assert_eq!(x, b.next_open01());
        }
        assert_ne!(SeededRng::new(1).next_u64(), SeededRng::new(2).next_u64());
    }

    #[test]
    fn sampled_positions_are_distinct_and_skip_impossible_ones() {
        let mut rng = SeededRng::new(3);
        let c = [(0, 1.0), (1, f64::NEG_INFINITY), (2, 0.5), (3, 0.1)];
        let picked = sample_positions(&c, 3, 0.5, &mut rng);
        assert_eq!(picked.len(), 3);
        assert!(!picked.contains(&1));
    }
}
