//! The engine seam of the server: what the engine thread asks of a decoder ([`StepDecoder`]: add,
//! remove, step) and what a step reports per sequence. Engine-independent: `hone-cli` implements it
//! over hone-engine, the tests over a scripted fake. The thread that drives it is in `scheduler`.

use std::sync::Arc;

/// Identifies one sequence inside the decoder.
pub type SequenceKey = u64;

/// Why a choice ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Where one sequence stands after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceUpdate {
    pub key: SequenceKey,
    /// The committed prefix of the generated text so far (it only grows).
    pub text: String,
    /// Tokens in that prefix.
    pub tokens: usize,
    pub status: SequenceStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SequenceStatus {
    Running,
    Finished(FinishReason),
    Failed(String),
}

/// What one `step` did.
#[derive(Debug, Default)]
pub struct StepReport {
    /// Forward passes the step ran (NFE), usually 1.
    pub forward_passes: u64,
    /// One update per active sequence (sequences not mentioned are still running).
    pub updates: Vec<SequenceUpdate>,
}

/// The engine as the engine thread drives it: sequences join and leave between steps, and each step
/// advances every active sequence. A sequence's output must not depend on the others in the batch.
pub trait StepDecoder: Send + 'static {
    /// A prepared, validated sequence (prompt ids, settings, seed).
    type Sequence: Send + 'static;

    /// Add a sequence; it takes part from the next step on.
    fn add(&mut self, key: SequenceKey, sequence: Self::Sequence) -> Result<(), DecoderError>;
    /// Forget a sequence (finished or cancelled) and free its slot.
    fn remove(&mut self, key: SequenceKey);
    /// One batched step over all active sequences. An `Err` fails every active sequence.
    fn step(&mut self) -> Result<StepReport, DecoderError>;
}

/// A decoder's failure: the engine's own error kept whole (this crate does not know its type; the
/// binary can downcast it), shown to clients as a 500 with its message. Shared (`Arc`) because one
/// failed step fails every sequence in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct DecoderError(pub Arc<dyn std::error::Error + Send + Sync>);

impl DecoderError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Arc::from(error.into()))
    }
}

/// The same failure (one step's error shared by its sequences), not equal messages.
impl PartialEq for DecoderError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DecoderError {}
