//! LLaDA's reference sampler (`generate.py::generate` of the LLaDA repository), token-exact at
//! temperature 0.
//!
//! Per block of `block_length` (steps split evenly over blocks): every step runs the model over the
//! whole canvas, picks `x0` per masked position (argmax, with Gumbel noise in f64 when
//! `temperature > 0`), measures confidence (`low_confidence`: softmax probability of `x0`;
//! `random`: a uniform number), and commits the `get_num_transfer_tokens` most confident masked
//! positions of the current block (positions after the block never compete). Committed tokens
//! never change.
//!
//! - `cfg_scale > 0`: a second, unconditional row per sequence with every fixed (prompt) position
//!   masked; logits are `un + (cfg + 1) * (cond - un)`.
//! - `suppress_eos` (`logits_eos_inf`): EOS's logit is -inf before anything else.
//! - `suppress_eos_eot_confidence` (`confidence_eos_eot_inf`): the reference writes
//!   `logits_with_noise[:, :, eos] = logits[:, :, eot] = -inf` *after* choosing `x0`, so its only
//!   effect is that the confidence softmax runs with EoT's logit at -inf (EoT, if chosen, gets
//!   confidence 0). We reproduce that effect, not the evident intent.
//! - Left-padded batches: the attention mask masks padded keys (the model's business); padding
//!   counts as prompt, as in the reference.
//! - Randomness comes from the sequence's own RNG, not torch's: sampled runs are reproducible
//!   with a seed but differ from the reference's draws.

use candle_core::Tensor;

use super::cohort::{score_positions, score_spec, Cohort, LogitRows};
use super::events::FinishReason;
use super::schedule::llada_transfer_counts;
use super::select::top_k_positions;
use super::settings::SamplerKind;
use crate::model::{CacheMode, DiffusionModel};
use crate::Result;

pub(crate) fn step(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
) -> Result<Vec<Vec<(usize, u32)>>> {
    let mut committed = vec![Vec::new(); cohort.rows.len()];
    let block = cohort.layout.blocks[cohort.block].clone();
    let steps_per_block = (cohort.key_steps() / cohort.layout.blocks.len()).max(1);
    let live: Vec<usize> = (0..cohort.rows.len())
        .filter(|&i| cohort.rows[i].is_live())
        .collect();
    if cohort.step == 0 {
        for &i in &live {
            let row = &mut cohort.rows[i];
            let masked = row.masked_in(block.clone(), row.tokens.mask).len();
            row.counts = llada_transfer_counts(masked, steps_per_block);
        }
    }

    let cfg = cohort.key_cfg();
    let mut canvases: Vec<Vec<u32>> = live
        .iter()
        .map(|&i| cohort.rows[i].canvas.clone())
        .collect();
    let mut masks: Vec<Option<Vec<u32>>> = live
        .iter()
        .map(|&i| cohort.rows[i].attention_mask.clone())
        .collect();
    if cfg {
        // The unconditional row masks every fixed position (the reference's `prompt_index`).
        for &i in &live {
            let row = &cohort.rows[i];
            let fixed_masked: Vec<u32> = row
                .canvas
                .iter()
                .zip(&cohort.layout.canvas)
                .map(|(&token, &initial)| {
                    if initial != row.tokens.mask {
                        row.tokens.mask
                    } else {
                        token
                    }
                })
                .collect();
            canvases.push(fixed_masked);
            masks.push(row.attention_mask.clone());
        }
    }
    let canvas_refs: Vec<&[u32]> = canvases.iter().map(Vec::as_slice).collect();
    let mask_refs: Vec<Option<&[u32]>> = masks.iter().map(Option::as_deref).collect();
    let total = cohort.layout.canvas.len();
    let shift = cohort.info.shift_logits;
    // Only the block's masked positions are scored: the head runs on their rows only.
    let wanted = live.iter().flat_map(|&i| {
        let row = &cohort.rows[i];
        row.masked_in(block.clone(), row.tokens.mask)
    });
    let rows = LogitRows::new(wanted, 0, total, shift)?;
    let logits = cohort.forward(
        model,
        &canvas_refs,
        &mask_refs,
        0,
        total,
        CacheMode::None,
        &rows,
    )?;

    for (b, &i) in live.iter().enumerate() {
        let spec = score_spec(&cohort.rows[i], &cohort.info, SamplerKind::Llada);
        let positions = {
            let row = &cohort.rows[i];
            row.masked_in(block.clone(), row.tokens.mask)
        };
        let mut row_logits = rows.select(&logits, b, &positions)?;
        if cfg {
            let unconditional = rows.select(&logits, live.len() + b, &positions)?;
            let scale = cohort.rows[i].settings.cfg_scale;
            row_logits = guided(&row_logits, &unconditional, scale)?;
        }
        let row = &mut cohort.rows[i];
        let scored = score_positions(&row_logits, &positions, &spec, &mut row.rng)?;
        let k = row.counts.get(cohort.step).copied().unwrap_or(0);
        let candidates: Vec<(usize, f64)> = scored.iter().map(|&(p, _, c)| (p, c)).collect();
        for position in top_k_positions(&candidates, k) {
            if let Some(&(_, token, _)) = scored.iter().find(|(p, _, _)| *p == position) {
                row.canvas[position] = token;
                committed[i].push((position, token));
            }
        }
        row.forwards += 1;
        row.steps_taken += 1;
    }

    cohort.step += 1;
    if cohort.step >= steps_per_block {
        cohort.step = 0;
        cohort.block += 1;
        if cohort.block >= cohort.layout.blocks.len() {
            for &i in &live {
                cohort.rows[i].finished = Some(FinishReason::Length);
            }
            cohort.done = true;
        }
    }
    Ok(committed)
}

/// Classifier-free guidance: `un + (scale + 1) * (cond - un)`.
fn guided(conditional: &Tensor, unconditional: &Tensor, scale: f64) -> Result<Tensor> {
    let difference = (conditional - unconditional)?;
    Ok((unconditional + (difference * (scale + 1.0))?)?)
}
