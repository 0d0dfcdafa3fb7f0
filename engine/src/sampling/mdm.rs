//! Open-dLLM's sampler for Open-dCoder (`veomni/models/transformers/qwen2/generation_utils.py::
//! MDMGenerationMixin._mdm_sample`), token-exact at temperature 0.
//!
//! Every step runs the model over the whole canvas with the key mask `x != pad_token_id` built once
//! from the *initial* canvas ([`pad_attention_mask`]: prompt pads are masked keys; tokens decoded
//! later are attended even when they are the pad id), shifts the logits right by one
//! (`scoring::logits_for_positions`, Open-dCoder is trained like Dream) and scores every masked
//! position (`sample_tokens`: temperature, top-p, top-k, softmax, argmax or a draw). The loop ends
//! after `steps` steps, or earlier once nothing is masked (the reference's `break`).
//!
//! - `maskgit_plus`, `topk_margin`, `entropy`, `origin`: Dream's rules with each row's own mask
//!   count, `int(n_mask * (1 - s / t))` in float32 over `linspace(1, eps, steps + 1)`, everything
//!   at the last step. `_mdm_sample` counts per row (`mask_index.sum(dim=1)`), which is exactly
//!   what `dream::step` already does, so these algs run through it. (`entropy` clamps
//!   probabilities at 1e-10 where Dream adds 1e-10; the two differ by about 1e-10, far below
//!   float32 resolution of the sums.)
//! - `p2` ([`p2_remask_count`], [`p2_step`]; path planning): at step `i` (0-based) the whole
//!   canvas is predicted, and every free position (mask in the initial canvas), decoded or not, gets
//!   the argmax and its probability as confidence; fixed positions (prompt, prompt pads) have +inf.
//!   The `floor(n_free * (1 - (i + 1) / steps))` free positions with the lowest confidence
//!   (ascending) are mask after the step, *decoded ones too* (they are re-masked); every other
//!   position that was mask takes its argmax, and decoded positions not re-masked keep their
//!   token. The product is float32 as in the reference (`num_positions.float() * (1 - kappa_t)`:
//!   torch casts the Python scalar to the tensor's float32). This is the rule of the reference the
//!   golden data was made with (the parity-v2 README); a copy of the file that scores only masked
//!   positions gives decoded ones +inf and so never re-masks them. Ties among equal confidences
//!   mask the lower position first (the module note of `select` on ties applies).

use super::cohort::{score_positions, score_spec, Cohort, LogitRows};
use super::events::FinishReason;
use super::settings::{DreamAlgorithm, SamplerKind};
use crate::model::{CacheMode, DiffusionModel};
use crate::Result;

/// `(x != pad_token_id)` of the initial canvas, or `None` when nothing in it is the pad id (a key
/// mask of all ones changes nothing).
pub fn pad_attention_mask(canvas: &[u32], pad: Option<u32>) -> Option<Vec<u32>> {
    let pad = pad?;
    canvas
        .contains(&pad)
        .then(|| canvas.iter().map(|&t| u32::from(t != pad)).collect())
}

/// `p2`: positions that are mask after step `step` of `steps`, out of `n_free` non-fixed positions:
/// `(n_free as f32 * (1 - (step + 1) / steps) as f32).long()`.
pub fn p2_remask_count(n_free: usize, step: usize, steps: usize) -> usize {
    if steps == 0 {
        return 0;
    }
    let kappa = (step + 1) as f64 / steps as f64;
    let product = n_free as f32 * (1.0 - kappa) as f32;
    // `.long()` truncates toward zero; the product is non-negative.
    product.max(0.0) as usize
}

/// One `p2` step for one row: `scored` holds `(position, argmax, confidence)` of every free
/// (non-fixed) position, `masked` says which of them are mask now. The `remask` least confident
/// free positions are mask after the step (decoded ones too); every other masked position takes its
/// argmax. Returns the positions to commit (with their tokens) and the decoded positions to mask
/// again.
pub fn p2_step(
    scored: &[(usize, u32, f64)],
    masked: &[usize],
    remask: usize,
) -> (Vec<(usize, u32)>, Vec<usize>) {
    // Ascending confidence, ties to the lower position (see the module note).
    let mut order: Vec<(usize, f64)> = scored.iter().map(|&(p, _, c)| (p, c)).collect();
    order.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => {
            a.1.partial_cmp(&b.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.0.cmp(&b.0))
        }
    });
    let masked_after: std::collections::HashSet<usize> =
        order.iter().take(remask).map(|&(p, _)| p).collect();
    let mut commit = Vec::new();
    let mut remasked = Vec::new();
    for &(p, token, _) in scored {
        let was_masked = masked.contains(&p);
        match (was_masked, masked_after.contains(&p)) {
            (true, false) => commit.push((p, token)),
            (false, true) => remasked.push(p),
            _ => {}
        }
    }
    (commit, remasked)
}

pub(crate) fn step(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
) -> Result<Vec<Vec<(usize, u32)>>> {
    let steps = cohort.key_steps();
    let live: Vec<usize> = (0..cohort.rows.len())
        .filter(|&i| cohort.rows[i].is_live())
        .collect();
    // The reference stops once nothing is masked (the batch's rows finish together there).
    let any_masked = live.iter().any(|&i| {
        let row = &cohort.rows[i];
        row.canvas.contains(&row.tokens.mask)
    });
    if !any_masked {
        finish(cohort, &live);
        return Ok(vec![Vec::new(); cohort.rows.len()]);
    }
    let alg = cohort.rows.get(live[0]).map(|row| row.settings.alg);
    if alg != Some(DreamAlgorithm::P2) {
        return super::dream::step(cohort, model);
    }

    let mut committed = vec![Vec::new(); cohort.rows.len()];
    let (canvases, masks) = cohort.inputs(&live);
    let total = cohort.layout.canvas.len();
    let shift = cohort.info.shift_logits;
    // p2 scores every free position (mask in the initial canvas), decoded or not.
    let initial = &cohort.layout.canvas;
    let rows = LogitRows::new(
        live.iter().flat_map(|&i| {
            let mask = cohort.rows[i].tokens.mask;
            (0..total).filter(move |&p| initial[p] == mask)
        }),
        0,
        total,
        shift,
    )?;
    let logits = cohort.forward(model, &canvases, &masks, 0, total, CacheMode::None, &rows)?;
    for (b, &i) in live.iter().enumerate() {
        let spec = score_spec(&cohort.rows[i], &cohort.info, SamplerKind::Mdm);
        let initial = &cohort.layout.canvas;
        let row = &mut cohort.rows[i];
        let mask = row.tokens.mask;
        let masked = row.masked_in(0..total, mask);
        let free: Vec<usize> = (0..total).filter(|&p| initial[p] == mask).collect();
        let window = rows.select(&logits, b, &free)?;
        let scored = score_positions(&window, &free, &spec, &mut row.rng)?;
        let remask = p2_remask_count(free.len(), cohort.step, steps);
        let (commit, remasked) = p2_step(&scored, &masked, remask);
        for position in remasked {
            row.canvas[position] = mask;
        }
        for (position, token) in commit {
            row.canvas[position] = token;
            committed[i].push((position, token));
        }
        row.forwards += 1;
        row.steps_taken += 1;
    }
    cohort.step += 1;
    if cohort.step >= steps {
        finish(cohort, &live);
    }
    Ok(committed)
}

fn finish(cohort: &mut Cohort, live: &[usize]) {
    for &i in live {
        cohort.rows[i].finished = Some(FinishReason::Length);
    }
    cohort.done = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_count_follows_the_float32_product() {
        // 24 free, 24 steps: 23, 22, ..., 1, 0 stay masked.
        let counts: Vec<usize> = (0..24).map(|i| p2_remask_count(24, i, 24)).collect();
        assert_eq!(counts.first(), Some(&23));
        assert_eq!(counts.last(), Some(&0));
        assert!(counts.windows(2).all(|w| w[0] >= w[1]));
        // 16 free over 6 steps: 16 * (1 - 1/6) = 13.33 -> 13.
        assert_eq!(p2_remask_count(16, 0, 6), 13);
        assert_eq!(p2_remask_count(16, 5, 6), 0);
    }

    #[test]
    fn p2_masks_the_least_confident_free_positions() {
        let scored = [(3, 10, 0.9), (4, 11, 0.2), (5, 12, 0.5), (6, 13, 0.2)];
        let (commit, remasked) = p2_step(&scored, &[3, 4, 5, 6], 2);
        // 0.2 at 4 and 6 stay masked (lowest); 3 and 5 commit.
        assert_eq!(commit, vec![(3, 10), (5, 12)]);
        assert!(remasked.is_empty());
        // A decoded position among the least confident is masked again.
        let (commit, remasked) = p2_step(&scored, &[3, 5], 2);
        assert_eq!(commit, vec![(3, 10), (5, 12)]);
        assert_eq!(remasked, vec![4, 6]);
    }

    #[test]
    fn pad_mask_only_when_a_pad_is_present() {
        assert_eq!(pad_attention_mask(&[1, 2, 3], Some(9)), None);
        assert_eq!(
            pad_attention_mask(&[9, 9, 3, 4], Some(9)),
            Some(vec![0, 0, 1, 1])
        );
        assert_eq!(pad_attention_mask(&[9, 3], None), None);
    }
}
