//! The block-diffusion loop of LLaDA2.0 / 2.1 (see `llada2` for the rules it applies and the
//! references): per-row block state, the exact per-block KV cache, the EOS rules at step and block
//! ends.
//!
//! Cache: with `cache` not `none`, every forward is a [`CacheMode::Extend`] from the end of the
//! cached prefix to the end of the current block, and the cache is cut back to the block start
//! afterwards (the current block's keys/values change every step; finished blocks' never do, since
//! attention is block-causal). The first step of a block therefore also appends the previous
//! block's final keys/values; every further step costs one block against the cache.

use candle_core::Tensor;

use super::cohort::{score_positions, score_spec, Cohort, LogitRows, Row};
use super::events::FinishReason;
use super::llada2::{edits, effective_steps, transfer, MAX_STEPS_PER_BLOCK};
use super::schedule::llada_transfer_counts;
use super::settings::{CacheKind, EosRules, SamplerKind};
use crate::model::{CacheMode, DiffusionModel, KvCache};
use crate::Result;

pub(crate) fn step(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
) -> Result<Vec<Vec<(usize, u32)>>> {
    let mut committed = vec![Vec::new(); cohort.rows.len()];
    if !advance(cohort)? {
        return Ok(committed);
    }

    let block = cohort.layout.blocks[cohort.block].clone();
    let batch = cohort.cached_rows.clone();
    let prompt_len = cohort.layout.prefix_len();
    let sampler = cohort.key_sampler();
    let waiting = |i: usize| cohort.rows[i].is_live() && !cohort.rows[i].block_done;
    let wanted: Vec<usize> = batch
        .iter()
        .filter(|&&i| waiting(i))
        .flat_map(|&i| scored_positions(&cohort.rows[i], &block, &cohort.layout.canvas, sampler))
        .collect();
    let (logits, rows) = block_forward(cohort, model, &batch, &block, wanted)?;
    let step_index = cohort.step;
    for (b, &i) in batch.iter().enumerate() {
        if !cohort.rows[i].is_live() || cohort.rows[i].block_done {
            continue;
        }
        let spec = score_spec(&cohort.rows[i], &cohort.info, sampler);
        let positions = scored_positions(&cohort.rows[i], &block, &cohort.layout.canvas, sampler);
        let window = rows.select(&logits, b, &positions)?;
        let row = &mut cohort.rows[i];
        let mask = row.tokens.mask;
        let masked = row.masked_in(block.clone(), mask);
        let scored = score_positions(&window, &positions, &spec, &mut row.rng)?;
        let candidates: Vec<(usize, f64)> = scored
            .iter()
            .filter(|(p, _, _)| masked.contains(p))
            .map(|&(p, _, c)| (p, c))
            .collect();
        let threshold = row.settings.threshold.unwrap_or(1.0);
        let quota = if sampler == SamplerKind::Llada21 {
            row.settings.num_to_transfer
        } else {
            row.counts.get(step_index).copied().unwrap_or(0)
        };
        let mut writes: Vec<(usize, u32)> = if masked.is_empty() {
            Vec::new()
        } else {
            transfer(&candidates, threshold, quota)
                .into_iter()
                .filter_map(|p| scored.iter().find(|s| s.0 == p).map(|s| (p, s.1)))
                .collect()
        };
        let mut edited = false;
        if sampler == SamplerKind::Llada21 {
            let editable: Vec<(usize, u32, u32, f64)> = scored
                .iter()
                .filter(|(p, _, _)| !masked.contains(p))
                .map(|&(p, token, c)| (p, row.canvas[p], token, c))
                .collect();
            let edit = edits(&editable, row.settings.editing_threshold);
            edited = !edit.is_empty();
            writes.extend(edit);
        }
        let mut changed = false;
        for &(position, token) in &writes {
            changed |= row.canvas[position] != token;
            row.canvas[position] = token;
            committed[i].push((position, token));
        }
        row.forwards += 1;
        row.steps_taken += 1;
        row.block_steps += 1;

        match sampler {
            SamplerKind::Llada21 => {
                let stuck = !changed && row.settings.temperature == 0.0;
                if (masked.is_empty() && !edited) || stuck || row.block_steps >= MAX_STEPS_PER_BLOCK
                {
                    row.block_done = true;
                }
            }
            _ if row.settings.eos_early_stop => {
                let Some(eos) = row.tokens.eos else { continue };
                match row.settings.eos_rules {
                    EosRules::Sampler => {
                        if row.canvas[block.clone()].contains(&eos) {
                            row.block_done = true;
                        }
                    }
                    EosRules::Generate => {
                        let placed_eos = writes.iter().any(|&(_, t)| t == eos);
                        let first = row.canvas[..block.end].iter().position(|&t| t == eos);
                        if let (true, Some(at)) = (placed_eos, first) {
                            let before = row.canvas.get(prompt_len..at).unwrap_or(&[]);
                            if !before.contains(&mask) {
                                row.finished = Some(FinishReason::Stop);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    cohort.step += 1;
    for &i in &batch {
        pre_step_check(cohort, i, &block);
    }
    // End finished blocks now, so the step that completes the last one reports the finish.
    advance(cohort)?;
    Ok(committed)
}

/// The positions a row scores in `block`: 2.1 also scores decoded non-prompt positions (editing),
/// 2.0 only the masked ones.
fn scored_positions(
    row: &Row,
    block: &std::ops::Range<usize>,
    initial: &[u32],
    sampler: SamplerKind,
) -> Vec<usize> {
    let mask = row.tokens.mask;
    if sampler == SamplerKind::Llada21 {
        block.clone().filter(|&p| initial[p] == mask).collect()
    } else {
        row.masked_in(block.clone(), mask)
    }
}

/// Moves to a block with work left, ending blocks whose rows are all done; `false` (and every row
/// finished) when none is left.
fn advance(cohort: &mut Cohort) -> Result<bool> {
    loop {
        if cohort.block >= cohort.layout.blocks.len() || !cohort.rows.iter().any(|r| r.is_live()) {
            finish_all(cohort);
            return Ok(false);
        }
        if !cohort.started_block {
            start_block(cohort)?;
        }
        let waiting = cohort
            .cached_rows
            .iter()
            .any(|&i| cohort.rows[i].is_live() && !cohort.rows[i].block_done);
        if waiting {
            return Ok(true);
        }
        end_block(cohort);
    }
}

/// The checks the references make at the start of a step (see the module note). Run right after
/// each step and at the block start, so a row's block ends as soon as it is known to.
fn pre_step_check(cohort: &mut Cohort, i: usize, block: &std::ops::Range<usize>) {
    let sampler = cohort.key_sampler();
    let step = cohort.step;
    let row = &mut cohort.rows[i];
    if !row.is_live() || row.block_done {
        return;
    }
    let no_mask = !row.canvas[block.clone()].contains(&row.tokens.mask);
    if sampler == SamplerKind::Llada21 {
        if no_mask {
            row.post_steps += 1;
        }
        if row.post_steps > row.settings.max_post_steps {
            row.block_done = true;
        }
    } else if no_mask || step >= row.counts.len() {
        row.block_done = true;
    }
}

fn start_block(cohort: &mut Cohort) -> Result<()> {
    let block = cohort.layout.blocks[cohort.block].clone();
    let generated = cohort.layout.generated_len();
    let live: Vec<usize> = (0..cohort.rows.len())
        .filter(|&i| cohort.rows[i].is_live())
        .collect();
    for &i in &live {
        let row = &mut cohort.rows[i];
        row.block_done = false;
        row.post_steps = 0;
        row.block_steps = 0;
        row.counts = llada_transfer_counts(block.len(), effective_steps(&row.settings, generated));
    }
    // Rows that left since the cache was filled leave the cache too.
    if let Some(cache) = cohort.cache.as_mut() {
        if cohort.cached_rows != live {
            let keep: Vec<u32> = live
                .iter()
                .filter_map(|i| cohort.cached_rows.iter().position(|c| c == i))
                .map(|p| p as u32)
                .collect();
            select_rows(cache, &keep)?;
        }
    }
    cohort.cached_rows = live.clone();
    cohort.step = 0;
    cohort.started_block = true;
    for &i in &live {
        pre_step_check(cohort, i, &block);
    }
    Ok(())
}

fn end_block(cohort: &mut Cohort) {
    let block = cohort.layout.blocks[cohort.block].clone();
    let prompt_len = cohort.layout.prefix_len();
    let sampler = cohort.key_sampler();
    for row in cohort.rows.iter_mut().filter(|row| row.is_live()) {
        let Some(eos) = row.tokens.eos else { continue };
        let generated = row.canvas.get(prompt_len..block.end).unwrap_or(&[]);
        let stop = match (sampler, row.settings.eos_rules) {
            (SamplerKind::Llada2, EosRules::Generate) => generated.contains(&eos),
            (SamplerKind::Llada2, EosRules::Sampler) => false,
            _ => {
                row.settings.eos_early_stop
                    && !generated.contains(&row.tokens.mask)
                    && generated.contains(&eos)
            }
        };
        if stop {
            row.finished = Some(FinishReason::Stop);
        }
    }
    cohort.block += 1;
    cohort.started_block = false;
}

fn finish_all(cohort: &mut Cohort) {
    for row in cohort.rows.iter_mut().filter(|row| row.is_live()) {
        row.finished = Some(FinishReason::Length);
    }
    cohort.done = true;
    cohort.cache = None;
}

/// Keeps rows `keep` (in that order) of every layer of the cache.
fn select_rows(cache: &mut KvCache, keep: &[u32]) -> Result<()> {
    for layer in cache.layers.iter_mut() {
        if let Some((k, v)) = layer.as_ref() {
            if keep.is_empty() {
                *layer = None;
                continue;
            }
            let index = Tensor::from_vec(keep.to_vec(), keep.len(), k.device())?;
            *layer = Some((
                k.contiguous()?.index_select(&index, 0)?,
                v.contiguous()?.index_select(&index, 0)?,
            ));
        }
    }
    Ok(())
}

/// One forward of `batch` up to the end of `block`, returning the logits of the rows predicting
/// `wanted` (positions inside the block) and which rows those are.
fn block_forward(
    cohort: &mut Cohort,
    model: &mut dyn DiffusionModel,
    batch: &[usize],
    block: &std::ops::Range<usize>,
    wanted: Vec<usize>,
) -> Result<(Tensor, LogitRows)> {
    let canvases: Vec<&[u32]> = batch
        .iter()
        .map(|&i| &cohort.rows[i].canvas[..block.end])
        .collect();
    let masks = vec![None; batch.len()];
    if cohort.key_cache() == CacheKind::None {
        let rows = LogitRows::new(wanted, 0, block.end, false)?;
        let logits = cohort.forward_window(
            model,
            &canvases,
            &masks,
            0,
            block.end,
            block.end,
            CacheMode::None,
            &rows,
        )?;
        return Ok((logits, rows));
    }
    let mut cache = cohort
        .cache
        .take()
        .unwrap_or_else(|| KvCache::new(cohort.info.num_layers));
    let span_start = cache.len().min(block.start);
    let rows = LogitRows::new(wanted, span_start, block.end - span_start, false)?;
    cache.truncate(span_start)?;
    let result = cohort.forward_window(
        model,
        &canvases,
        &masks,
        span_start,
        block.end - span_start,
        block.end,
        CacheMode::Extend(&mut cache),
        &rows,
    );
    // Keep exactly the finished blocks: the current block's keys/values change every step.
    let truncated = cache.truncate(block.start);
    cohort.cache = Some(cache);
    truncated?;
    Ok((result?, rows))
}
