//! Denoising schedules: *how many* masked tokens to commit at each step. Separate from the selection
//! rule (`select`), which decides *which* ones.

/// LLaDA `get_num_transfer_tokens`: `masked` tokens spread over `steps` steps, the remainder going
/// to the earliest steps (`[3, 3, 2, 2]` for 10 over 4).
pub fn llada_transfer_counts(masked: usize, steps: usize) -> Vec<usize> {
    if steps == 0 {
        return Vec::new();
    }
    let base = masked / steps;
    let remainder = masked % steps;
    (0..steps)
        .map(|i| base + usize::from(i < remainder))
        .collect()
}

/// Dream's timesteps `torch.linspace(1, eps, steps + 1)` in float32, computed as torch's CPU kernel
/// does (the first half counts up from the start, the second half down from the end), so the
/// `int(n * (1 - s / t))` truncations below fall on the same side as the reference's.
pub fn dream_timesteps(steps: usize, eps: f64) -> Vec<f32> {
    let count = steps + 1;
    let start = 1.0f32;
    let end = eps as f32;
    if count == 1 {
        return vec![start];
    }
    let step = (end - start) / (count - 1) as f32;
    let halfway = count / 2;
    (0..count)
        .map(|i| {
            if i < halfway {
                start + step * i as f32
            } else {
                end - step * (count - i - 1) as f32
            }
        })
        .collect()
}

/// Dream `_sample`: tokens to commit at step `i` of `steps` with `masked` positions still masked:
/// `int(masked * (1 - s / t))` in float32, everything at the last step.
pub fn dream_transfer_count(masked: usize, step: usize, timesteps: &[f32]) -> usize {
    let steps = timesteps.len().saturating_sub(1);
    if step + 1 >= steps {
        return masked;
    }
    let (t, s) = (timesteps[step], timesteps[step + 1]);
    let fraction = 1.0f32 - s / t;
    // `int()` truncates toward zero; the product is non-negative.
    (masked as f32 * fraction) as usize
}

/// Dream `origin`: the probability of revealing each masked position at step `i`.
pub fn dream_reveal_probability(step: usize, timesteps: &[f32]) -> f32 {
    let steps = timesteps.len().saturating_sub(1);
    if step + 1 >= steps {
        return 1.0;
    }
    1.0f32 - timesteps[step + 1] / timesteps[step]
}

/// How many tokens one fast-decoding step may commit.
#[derive(Debug, Clone, PartialEq)]
pub enum StepBudget {
    /// Every candidate with confidence `>= threshold`, and always the most confident one.
    Threshold(f64),
    /// Exactly this many (or fewer when fewer are masked).
    Count(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llada_counts_match_reference_examples() {
        assert_eq!(llada_transfer_counts(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(llada_transfer_counts(32, 32), vec![1; 32]);
        assert_eq!(llada_transfer_counts(8, 2), vec![4, 4]);
        assert_eq!(llada_transfer_counts(3, 5), vec![1, 1, 1, 0, 0]);
        assert_eq!(llada_transfer_counts(0, 3).iter().sum::<usize>(), 0);
    }

    #[test]
    fn dream_schedule_commits_everything_by_the_last_step() {
        for steps in [1usize, 3, 8, 12, 24] {
            let ts = dream_timesteps(steps, 1e-3);
            assert_eq!(ts.len(), steps + 1);
            assert_eq!(ts[0], 1.0);
            assert!((ts[steps] - 1e-3).abs() < 1e-6);
            let mut masked = 24usize;
            for step in 0..steps {
                let n = dream_transfer_count(masked, step, &ts);
                assert!(n <= masked);
                masked -= n;
            }
            assert_eq!(masked, 0);
        }
    }

    #[test]
    fn dream_first_step_truncates_like_the_reference() {
        // 24 * (1 - s/t) = 24 * 0.999/24 = 0.999 -> int() = 0: nothing is committed at step 0.
        let ts = dream_timesteps(24, 1e-3);
        assert_eq!(dream_transfer_count(24, 0, &ts), 0);
    }
}
