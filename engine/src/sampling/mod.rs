//! Diffusion decoding: how a canvas of mask tokens becomes text, one denoising step at a time.
//!
//! The pieces, each in its own small file:
//! - [`settings`]: the user-facing knobs ([`SamplerSettings`]) and their validation;
//! - [`resolve`]: the one resolution of a caller's [`SamplerOverrides`] over the checkpoint's
//!   `generation_config.json` over the family's defaults;
//! - [`schedule`]: *how many* tokens to commit at each step (LLaDA's linear schedule, Dream's
//!   timesteps, fixed tokens per step, confidence thresholds);
//! - [`select`]: *which* masked positions to commit (top-k by confidence with a written-down tie
//!   rule, threshold selection, sampling without replacement), plus the seeded RNG;
//! - [`scoring`]: logits to (token, confidence) per position, on the device (GPU) or in place and
//!   in parallel (CPU); with `row_scoring`, which rows of logits a step asks the model for (the
//!   masked positions', under Dream's shift of the logits by one position);
//! - [`layout`]: the canvas (prompt, holes, suffix) and its blocks; multi-segment infill;
//! - [`llada`] / [`dream`]: the reference samplers (LLaDA `generate`, Dream `_sample`), token-exact;
//! - [`mdm`]: Open-dLLM's `_mdm_sample` (Open-dCoder), with `p2` re-masking;
//! - [`llada2`] / [`block`]: LLaDA2.0 / 2.1 block diffusion: the rules (threshold + quota, 2.1's
//!   editing, the `generate` output) and the block loop with its exact per-block KV cache;
//! - [`family`]: each model family's own sampler and recommended settings;
//! - [`fast`]: Fast-dLLM style confidence-threshold parallel decoding with prefix / dual KV cache;
//! - [`cohort`] (with `row_scoring`, each row's scoring rule): a lockstep batch of sequences that share a canvas shape and a step structure;
//! - [`decoder`]: the step-level batch decoder for servers (add / remove sequences between steps);
//! - [`events`]: what each step reports (committed positions, finish reasons).
//!
//! [`cases`] reads the parity fixtures' sampler cases (shared by tests and `hone engine sample`).
//!
//! This module works on token ids only; text, chat templates and stop strings live in
//! `crate::generate`.

pub mod block;
pub mod cases;
pub mod cohort;
pub mod decoder;
pub mod dream;
pub mod events;
pub mod family;
pub mod fast;
pub mod layout;
pub mod llada;
pub mod llada2;
pub mod mdm;
pub mod resolve;
mod row_scoring;
pub mod schedule;
pub mod scoring;
pub mod select;
pub mod settings;

pub use cohort::{Cohort, SequenceRequest};
pub use decoder::{BatchDecoder, SequenceId};
pub use events::{FinishReason, SequenceEvent};
pub use layout::{Layout, Piece};
pub use resolve::SamplerOverrides;
pub use select::SeededRng;
pub use settings::{
    CacheKind, ConfidenceRule, DreamAlgorithm, EosRules, SamplerKind, SamplerSettings,
};
