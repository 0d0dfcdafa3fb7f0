//! Block diffusion for LLaDA2.0 and LLaDA2.1, token-exact at temperature 0:
//! - 2.0: dllm `pipelines/llada2/sampler.py::LLaDA2Sampler.sample` and the checkpoint's own
//!   `modeling_llada2_moe.py::LLaDA2MoeModelLM.generate` ([`EosRules`] picks whose EOS rules);
//! - 2.1: dllm `pipelines/llada21/sampler.py::LLaDA21Sampler.sample` (its `generate` runs the same
//!   loop and only cuts the output after the first EOS).
//!
//! This file holds the rules (schedule, selection, editing, the `generate` output); the loop that
//! applies them, with its per-block KV cache, is `sampling::block`.
//!
//! The canvas is `prompt + gen_length` masks padded to whole blocks, blocks counted from position 0
//! (`Layout::block_aligned`). Block `b` runs the model on `x[:, :(b + 1) * block]` under the
//! block-causal mask and uses only the last block's logits, so the keys and values of finished
//! blocks never change and a per-block KV cache is exact, not an approximation: it equals
//! recomputing the prefix (`cache none`), tested in `engine/tests/sampling.rs`.
//!
//! A step, per row: softmax (temperature, top-k, top-p) -> argmax (or a draw) and its probability.
//! - 2.0: masked positions of the block with probability `> threshold` are all committed if there
//!   are at least the step's quota of them, else the quota's most probable ([`transfer`]). Quota:
//!   `block_size` split evenly over `min(steps_per_block, gen_length / minimal_topk)` steps, the
//!   first `block_size % steps` getting one more (`llada_transfer_counts`). The block ends when it
//!   has no mask at the start of a step or its steps are used up.
//! - 2.1: quota `num_to_transfer` every step, no step limit, plus editing ([`edits`]): every
//!   non-prompt position of the block that was not a mask at the start of the step, whose argmax
//!   differs from its token and whose probability is `> editing_threshold`, takes the argmax in the
//!   same step. At the start of a step with no mask in the block `post_steps += 1`, and the block
//!   ends once `post_steps > max_post_steps` (before running the model); after a step, the block
//!   ends if it had no mask at the start and made no edit.
//!
//! End of text:
//! - 2.0 `generate` rules: a block containing an EOS (after the prompt) is the last; with
//!   `eos_early_stop`, a step that commits an EOS ends decoding when the first EOS of the window has
//!   no mask between the prompt and it. 2.0 `sampler` rules: `eos_early_stop` only ends the current
//!   block (its masks stay) once the block holds an EOS; later blocks are still decoded.
//! - 2.1 (both): with `eos_early_stop`, decoding ends after a block when the generated part has no
//!   mask and holds an EOS.
//!
//! The output of `generate` ([`generated_ids`]) is the `gen_length` tokens after the prompt, cut
//! after the first EOS (inclusive).
//!
//! Batches: rows share the blocks and the forward but decide everything from their own row; a row
//! whose block is done waits (unchanged) until every row's block is done, so a batch equals its
//! rows run one by one (the reference 2.1 sampler refuses batches; we run them this way).
//!
//! One guard the references lack: if the argmax of a masked position is the mask id itself, the
//! reference rewrites a mask with a mask; in 2.1's step-unlimited loop at temperature 0 that repeats
//! forever. A 2.1 block therefore also ends after a step that changed nothing at temperature 0, and
//! after `MAX_STEPS_PER_BLOCK` steps (dInfer's `max_steps_per_block` default).

use super::select::top_k_positions;
use super::settings::SamplerSettings;

/// 2.1's step cap per block (dInfer's `max_steps_per_block` default); see the module note.
pub const MAX_STEPS_PER_BLOCK: usize = 1000;

/// 2.0's denoising steps per block: `min(steps_per_block, gen_length / minimal_topk)`.
pub fn effective_steps(settings: &SamplerSettings, gen_length: usize) -> usize {
    settings
        .steps_per_block
        .min(gen_length / settings.minimal_topk.max(1))
}

/// The mask-to-token rule of both samplers: every candidate with probability `> threshold` if
/// there are at least `quota` of them, else the `min(quota, candidates)` most probable. The
/// comparison is in float32 as in the reference (a float32 tensor against a Python scalar).
pub fn transfer(candidates: &[(usize, f64)], threshold: f64, quota: usize) -> Vec<usize> {
    let high: Vec<usize> = candidates
        .iter()
        .filter(|&&(_, c)| (c as f32) > threshold as f32)
        .map(|&(p, _)| p)
        .collect();
    if high.len() >= quota {
        return high;
    }
    top_k_positions(candidates, quota.min(candidates.len()))
}

/// 2.1's editing rule over `(position, current token, argmax, probability)` of the block's
/// editable positions (non-prompt, not mask at the start of the step).
pub fn edits(editable: &[(usize, u32, u32, f64)], editing_threshold: f64) -> Vec<(usize, u32)> {
    editable
        .iter()
        .filter(|&&(_, current, argmax, p)| {
            argmax != current && (p as f32) > editing_threshold as f32
        })
        .map(|&(position, _, argmax, _)| (position, argmax))
        .collect()
}

/// What `LLaDA2MoeModelLM.generate` returns from a finished canvas: the `gen_length` tokens after
/// the prompt, cut after the first EOS (inclusive).
pub fn generated_ids(
    canvas: &[u32],
    prompt_len: usize,
    gen_length: usize,
    eos: Option<u32>,
) -> Vec<u32> {
    let end = (prompt_len + gen_length).min(canvas.len());
    let generated = canvas.get(prompt_len..end).unwrap_or(&[]);
    match eos.and_then(|eos| generated.iter().position(|&t| t == eos)) {
        Some(at) => generated[..=at].to_vec(),
        None => generated.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_takes_all_confident_or_the_quota() {
        let c = [(4, 0.96), (5, 0.5), (6, 0.97), (7, 0.2)];
        assert_eq!(transfer(&c, 0.95, 2), vec![4, 6]);
        assert_eq!(transfer(&c, 0.95, 1), vec![4, 6]);
        assert_eq!(transfer(&c, 0.95, 3), vec![6, 4, 5]);
        assert_eq!(transfer(&c, 0.99, 0), Vec::<usize>::new());
        assert_eq!(transfer(&c[..1], 0.99, 3), vec![4]);
    }

    #[test]
    fn editing_needs_a_change_and_confidence() {
        let e = [(1, 5, 5, 0.99), (2, 5, 6, 0.95), (3, 5, 7, 0.5)];
        assert_eq!(edits(&e, 0.9), vec![(2, 6)]);
        assert!(edits(&e, 1.0).is_empty());
    }

    #[test]
    fn generate_output_is_cut_after_the_first_eos() {
        let canvas = [1, 2, 3, 7, 9, 7, 8, 8];
        assert_eq!(generated_ids(&canvas, 3, 4, Some(9)), vec![7, 9]);
        assert_eq!(generated_ids(&canvas, 3, 4, Some(5)), vec![7, 9, 7, 8]);
        assert_eq!(generated_ids(&canvas, 3, 4, None), vec![7, 9, 7, 8]);
    }

    #[test]
    fn steps_are_capped_by_minimal_topk() {
        let s = SamplerSettings {
            steps_per_block: 16,
            minimal_topk: 2,
            ..SamplerSettings::default()
        };
        assert_eq!(effective_steps(&s, 24), 12);
        assert_eq!(effective_steps(&s, 64), 16);
    }
}
