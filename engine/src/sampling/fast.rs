//! Fast decoding (the default): Fast-dLLM's confidence-threshold parallel decoding with block-wise
//! KV caching (NVlabs Fast-dLLM: `llada/generate.py::generate_with_prefix_cache` /
//! `generate_with_dual_cache`, and `dream/model/generation_utils_block.py` for Dream).
//!
//! Per block, left to right:
//! 1. **Block start**: one forward over the whole canvas (recording every layer's keys/values when
//!    a cache is used). LLaDA family: commit by the step rule below. Dream family (shifted logits):
//!    commit only the block's first position (Fast-dLLM's first-token-of-block rule), if masked.
//! 2. **Further steps** until the block has no mask left:
//!    - `cache none`: forward over the whole canvas (exact);
//!    - `cache prefix`: forward over `[block start, end of canvas)` reading keys/values of
//!      everything before the block from the cache recorded at the block start;
//!    - `cache dual`: forward over the block only, reading keys/values of *everything* else from
//!      that cache.
//!
//!    Step rule: with `threshold`, commit every masked position of the block whose confidence is at
//!    least the threshold, and always the most confident one; with `tokens_per_step = k`, the k
//!    most confident; otherwise LLaDA's linear schedule over `steps / blocks` steps.
//! 3. **Early stop**: for open-ended generation, once a block is complete and the generated text
//!    so far contains EOS or an end-of-turn id, the sequence stops; its output is cut at the first
//!    such id. The mask id is never committed (its logit is -inf).
//!
//! **Approximations (cache prefix / dual), as in Fast-dLLM.** Cached keys/values were computed
//! when the block started; tokens committed since then change the true keys/values of the
//! positions whose hidden states depend on them, i.e. every position, since attention is
//! bidirectional. Prefix cache: the prefix's cached keys/values ignore what the current block and
//! the suffix became since the block start (the prefix's tokens are fixed, so the error is only
//! through attention to changing positions; it is reset at every block start). Dual cache: in
//! addition, the suffix (later masked blocks, an infill suffix) is frozen at its block-start state.
//! Fast-dLLM measured both as near-lossless on GSM8K/HumanEval with LLaDA and Dream; the effect on
//! any one output is a possibly different token where confidences are close. `cache none` has no
//! approximation.
//!
//! **Dream's shift in a cached span.** Fast-dLLM copies the span's first logit row, so the block's
//! first position is predicted from itself (hence its first-token rule, which commits that
//! position from exact logits at the block start). We start Dream's span one position earlier, so
//! every position of the block is predicted from the true previous position (exact shift); the
//! first-token rule is kept for fidelity to the reference's decoding order.
//!
//! **Where `cache none` equals the fixed-schedule sampler.** For the LLaDA family at temperature 0
//! with `low_confidence`, `cache none` and no threshold and no `tokens_per_step` (the linear
//! schedule), this is exactly LLaDA's reference `generate` (cfg 0): same blocks, same
//! `get_num_transfer_tokens`, same selection and tie rule — except that the mask id can never be
//! chosen here. With a `threshold` that no confidence reaches (e.g. 1.0 when no probability
//! saturates to 1 in float32) it commits exactly one token per step and equals the reference with
//! `steps = gen_length`. Both are tested (`engine/tests/sampling.rs`).

use std::ops::Range;

use super::cohort::{score_positions, score_spec, Cohort, LogitRows, Row};
use super::events::FinishReason;
use super::schedule::{llada_transfer_counts, StepBudget};
use super::select::{threshold_positions, top_k_positions};
use super::settings::{CacheKind, SamplerKind};
use crate::model::{CacheMode, DiffusionModel, KvCache};
use crate::Result;

pub(crate) fn step(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
) -> Result<Vec<Vec<(usize, u32)>>> {
    let mut committed = vec![Vec::new(); cohort.rows.len()];
    let block = cohort.layout.blocks[cohort.block].clone();
    let shift = cohort.info.shift_logits;
    let cache_kind = cohort.key_cache();
    let total = cohort.layout.canvas.len();
    let fresh = cohort.step == 0;

    // The rows in this forward: at a block start (or always without a cache) the live rows; within
    // a cached block, the rows the cache was recorded for.
    let batch: Vec<usize> = if fresh || cache_kind == CacheKind::None {
        (0..cohort.rows.len())
            .filter(|&i| cohort.rows[i].is_live())
            .collect()
    } else {
        cohort.cached_rows.clone()
    };
    if fresh {
        let blocks = cohort.layout.blocks.len();
        let steps_per_block = (cohort.key_steps() / blocks).max(1);
        for &i in &batch {
            let row = &mut cohort.rows[i];
            let masked = row.masked_in(block.clone(), row.tokens.mask).len();
            row.counts = llada_transfer_counts(masked, steps_per_block);
        }
    }

    let canvases: Vec<Vec<u32>> = batch
        .iter()
        .map(|&i| cohort.rows[i].canvas.clone())
        .collect();
    let canvas_refs: Vec<&[u32]> = canvases.iter().map(Vec::as_slice).collect();
    let masks: Vec<Option<Vec<u32>>> = batch
        .iter()
        .map(|&i| cohort.rows[i].attention_mask.clone())
        .collect();
    let mask_refs: Vec<Option<&[u32]>> = masks.iter().map(Option::as_deref).collect();
    // Dream predicts position p from p - 1: cached spans start one earlier (see the module note).
    let lead = usize::from(shift && block.start > 0);
    let first_token_rule = fresh && shift;
    let wanted: Vec<usize> = batch
        .iter()
        .filter(|&&i| cohort.rows[i].is_live())
        .flat_map(|&i| scored_positions(&cohort.rows[i], &block, first_token_rule))
        .collect();
    let span_start = if fresh || cache_kind == CacheKind::None {
        0
    } else {
        block.start - lead
    };
    let span_len = match cache_kind {
        CacheKind::Dual if !fresh => block.end - span_start,
        _ => total - span_start,
    };
    let rows = LogitRows::new(wanted, span_start, span_len, shift)?;
    let logits = if fresh && cache_kind != CacheKind::None {
        let mut cache = KvCache::new(cohort.info.num_layers);
        let logits = cohort.forward(
            model,
            &canvas_refs,
            &mask_refs,
            0,
            total,
            CacheMode::Record(&mut cache),
            &rows,
        )?;
        cohort.cache = Some(cache);
        cohort.cached_rows = batch.clone();
        logits
    } else if fresh || cache_kind == CacheKind::None {
        cohort.forward(
            model,
            &canvas_refs,
            &mask_refs,
            0,
            total,
            CacheMode::None,
            &rows,
        )?
    } else {
        let mut cache = cohort.cache.take().unwrap_or_default();
        let result = if cache_kind == CacheKind::Prefix {
            cohort.forward(
                model,
                &canvas_refs,
                &mask_refs,
                span_start,
                total - span_start,
                CacheMode::Prefix(&cache),
                &rows,
            )
        } else {
            cohort.forward(
                model,
                &canvas_refs,
                &mask_refs,
                span_start,
                block.end - span_start,
                CacheMode::Dual(&mut cache),
                &rows,
            )
        };
        cohort.cache = Some(cache);
        result?
    };

    for (b, &i) in batch.iter().enumerate() {
        if !cohort.rows[i].is_live() {
            continue;
        }
        let positions = scored_positions(&cohort.rows[i], &block, first_token_rule);
        let spec = score_spec(&cohort.rows[i], &cohort.info, SamplerKind::Fast);
        let step_index = cohort.step;
        let row = &mut cohort.rows[i];
        row.forwards += 1;
        row.steps_taken += 1;
        if positions.is_empty() {
            continue;
        }
        let logits = rows.select(&logits, b, &positions)?;
        let scored = score_positions(&logits, &positions, &spec, &mut row.rng)?;
        let candidates: Vec<(usize, f64)> = scored.iter().map(|&(p, _, c)| (p, c)).collect();
        let picked = if first_token_rule {
            candidates.iter().map(|&(p, _)| p).collect()
        } else {
            match budget(&row.settings, &row.counts, step_index) {
                StepBudget::Threshold(threshold) => threshold_positions(&candidates, threshold),
                StepBudget::Count(k) => top_k_positions(&candidates, k),
            }
        };
        for position in picked {
            if let Some(&(_, token, _)) = scored.iter().find(|(p, _, _)| *p == position) {
                row.canvas[position] = token;
                committed[i].push((position, token));
            }
        }
    }
    cohort.step += 1;

    let block_complete = batch.iter().all(|&i| {
        !cohort.rows[i].is_live()
            || cohort.rows[i]
                .masked_in(block.clone(), cohort.rows[i].tokens.mask)
                .is_empty()
    });
    if block_complete {
        finish_block(cohort, &block);
    }
    Ok(committed)
}

/// The positions a row scores this step: its masked positions in the block, or under the
/// first-token rule only the block's first position (if masked).
fn scored_positions(row: &Row, block: &Range<usize>, first_token_rule: bool) -> Vec<usize> {
    let masked = row.masked_in(block.clone(), row.tokens.mask);
    if first_token_rule {
        masked.into_iter().filter(|&p| p == block.start).collect()
    } else {
        masked
    }
}

fn budget(
    settings: &super::settings::SamplerSettings,
    counts: &[usize],
    step: usize,
) -> StepBudget {
    match (settings.threshold, settings.tokens_per_step) {
        (Some(threshold), _) => StepBudget::Threshold(threshold),
        (None, Some(k)) => StepBudget::Count(k),
        (None, None) => StepBudget::Count(counts.get(step).copied().unwrap_or(0)),
    }
}

/// Moves to the next block: rows whose generated text contains a stop id end here.
fn finish_block(cohort: &mut Cohort, block: &Range<usize>) {
    let open_ended = cohort.layout.open_ended;
    let generated_start = cohort
        .layout
        .holes
        .last()
        .map_or(block.start, |hole| hole.start);
    for row in cohort.rows.iter_mut().filter(|row| row.is_live()) {
        let stop_ids = row.tokens.stop_ids();
        let stop = open_ended
            && row.settings.stop_at_eos
            && row.canvas[generated_start..block.end]
                .iter()
                .any(|token| stop_ids.contains(token));
        if stop {
            row.finished = Some(FinishReason::Stop);
        }
    }
    cohort.block += 1;
    cohort.step = 0;
    cohort.cache = None;
    cohort.cached_rows.clear();
    if cohort.block >= cohort.layout.blocks.len() {
        for row in cohort.rows.iter_mut().filter(|row| row.is_live()) {
            row.finished = Some(FinishReason::Length);
        }
        cohort.done = true;
    }
}
