//! What a denoising step reports for each sequence: the positions it committed (with their
//! tokens), and whether the sequence finished and why. Consumers (progress display, the server's
//! streaming) rebuild "text so far" from these; `crate::generate` does it for them.

use serde::Serialize;

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence / end-of-turn token was generated (output cut there), or a stop string
    /// matched (decided by `generate`).
    Stop,
    /// Every hole was filled without EOS.
    Length,
    /// Removed by the caller.
    Cancelled,
}

/// One sequence's share of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceEvent {
    pub sequence: u64,
    /// Index of this step for this sequence (0-based).
    pub step: usize,
    /// `(position in the canvas, token)` committed by this step, ascending by position.
    pub committed: Vec<(usize, u32)>,
    /// Set on the sequence's last event.
    pub finished: Option<FinishReason>,
}
