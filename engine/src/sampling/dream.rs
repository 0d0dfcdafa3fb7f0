//! Dream's reference sampler (`generation_utils.py::DreamGenerationMixin._sample`), token-exact at
//! temperature 0.
//!
//! Every step runs the model over the whole canvas, shifts the logits right by one
//! (`scoring::logits_for_positions`), and scores every masked position with `sample_tokens`
//! (temperature, top-p, top-k, softmax; confidence by `alg`). The timesteps are
//! `linspace(1, eps, steps + 1)` in float32; step `i` commits `int(n_masked * (1 - s / t))` of the
//! most confident positions (everything at the last step), or with `alg_temp > 0` draws them from
//! `softmax(confidence / alg_temp)`. `origin` instead reveals each masked position with probability
//! `1 - s / t`.
//!
//! Differences, all without effect on the reference's own cases: the reference takes `n_masked`
//! as the batch average (`mask_index.sum() / batch`); we use each sequence's own count, which is
//! the same number whenever the rows have equal hole sizes (always, for Dream's `generate`) and
//! keeps a sequence's result independent of its batch. Random draws come from the sequence's RNG.

use super::cohort::{score_positions, score_spec, Cohort, LogitRows};
use super::events::FinishReason;
use super::schedule::{dream_reveal_probability, dream_timesteps, dream_transfer_count};
use super::select::{sample_positions, top_k_positions};
use super::settings::{DreamAlgorithm, SamplerKind};
use crate::model::{CacheMode, DiffusionModel};
use crate::Result;

pub(crate) fn step(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
) -> Result<Vec<Vec<(usize, u32)>>> {
    let mut committed = vec![Vec::new(); cohort.rows.len()];
    let live: Vec<usize> = (0..cohort.rows.len())
        .filter(|&i| cohort.rows[i].is_live())
        .collect();
    let (canvases, masks) = cohort.inputs(&live);
    let total = cohort.layout.canvas.len();
    let steps = cohort.key_steps();
    let window_start = cohort.layout.holes.first().map_or(0, |hole| hole.start);
    let window_end = cohort.layout.holes.last().map_or(total, |hole| hole.end);
    let shift = cohort.info.shift_logits;
    // Every masked position may be scored (`origin` draws which after the forward).
    let wanted = live.iter().flat_map(|&i| {
        let row = &cohort.rows[i];
        row.masked_in(window_start..window_end, row.tokens.mask)
    });
    let rows = LogitRows::new(wanted, 0, total, shift)?;
    let logits = cohort.forward(model, &canvases, &masks, 0, total, CacheMode::None, &rows)?;

    for (b, &i) in live.iter().enumerate() {
        let spec = score_spec(&cohort.rows[i], &cohort.info, SamplerKind::Dream);
        let row = &mut cohort.rows[i];
        let timesteps = dream_timesteps(steps, row.settings.eps);
        let masked = row.masked_in(window_start..window_end, row.tokens.mask);
        let chosen: Vec<(usize, u32)> = if row.settings.alg == DreamAlgorithm::Origin {
            let p_transfer = f64::from(dream_reveal_probability(cohort.step, &timesteps));
            let revealed: Vec<usize> = masked
                .iter()
                .copied()
                .filter(|_| row.rng.next_open01() < p_transfer)
                .collect();
            let window = rows.select(&logits, b, &revealed)?;
            let scored = score_positions(&window, &revealed, &spec, &mut row.rng)?;
            scored.into_iter().map(|(p, token, _)| (p, token)).collect()
        } else {
            let window = rows.select(&logits, b, &masked)?;
            let scored = score_positions(&window, &masked, &spec, &mut row.rng)?;
            let k = dream_transfer_count(masked.len(), cohort.step, &timesteps);
            let candidates: Vec<(usize, f64)> = scored.iter().map(|&(p, _, c)| (p, c)).collect();
            let picked = if k == 0 {
                Vec::new()
            } else if row.settings.alg_temp > 0.0 {
                sample_positions(&candidates, k, row.settings.alg_temp, &mut row.rng)
            } else {
                top_k_positions(&candidates, k)
            };
            picked
                .into_iter()
                .filter_map(|p| {
                    scored
                        .iter()
                        .find(|(q, _, _)| *q == p)
                        .map(|&(_, token, _)| (p, token))
                })
                .collect()
        };
        for (position, token) in chosen {
            row.canvas[position] = token;
            committed[i].push((position, token));
        }
        row.forwards += 1;
        row.steps_taken += 1;
    }

    cohort.step += 1;
    if cohort.step >= steps {
        for &i in &live {
            cohort.rows[i].finished = Some(FinishReason::Length);
        }
        cohort.done = true;
    }
    Ok(committed)
}
