//! A scripted backend for the server's unit tests: the "model" writes a text fixed by the prompt and
//! the seed, one character per step, so tests know every output in advance and can slow steps down to
//! observe batching, queueing and cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::ApiError;
use super::request::{GenerationRequest, Prompt};
use super::scheduler::{
    DecoderError, FinishReason, SequenceKey, SequenceStatus, SequenceUpdate, StepDecoder,
    StepReport,
};
use super::{Frontend, Prepared};

pub const MODEL: &str = "fake-model";
/// The fake context: prompt characters plus max_tokens must fit.
pub const CONTEXT: usize = 200;
pub const DEFAULT_MAX_TOKENS: usize = 8;

#[derive(Debug, Clone)]
pub struct FakeSequence {
    target: String,
    /// Finish with `stop` (an end-of-sequence token) rather than `length`.
    eos: bool,
}

/// The text a prompt and seed produce: the prompt's last word and the seed, repeated; a prompt
/// containing "EOS" ends early, as if the model emitted end-of-sequence.
pub fn expected(prompt: &str, seed: u64, max_tokens: usize) -> (String, bool) {
    let word = prompt.split_whitespace().last().unwrap_or("_");
    let pattern = format!("{word}{seed} ");
    let text: String = pattern.chars().cycle().take(max_tokens).collect();
    if prompt.contains("EOS") {
        (text.chars().take(max_tokens / 2).collect(), true)
    } else {
        (text, false)
    }
}

pub struct FakeFrontend;

impl Frontend for FakeFrontend {
    type Sequence = FakeSequence;

    fn model_id(&self) -> &str {
        MODEL
    }

    fn prepare(
        &self,
        request: &GenerationRequest,
        prompt: &Prompt,
        seed: u64,
    ) -> Result<Prepared<FakeSequence>, ApiError> {
        let (text, field) = match prompt {
            Prompt::Chat(messages) => (
                messages
                    .iter()
                    .map(|m| format!("{}: {}\n", m.role, m.content))
                    .collect::<String>(),
                "messages",
            ),
            Prompt::Text { prompt, suffix } => (
                format!("{prompt} {}", suffix.as_deref().unwrap_or_default()),
                "prompt",
            ),
        };
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let prompt_tokens = text.chars().count();
        if prompt_tokens + max_tokens > CONTEXT {
            return Err(ApiError::context_length(
                field,
                format!(
                    "{prompt_tokens} prompt tokens + {max_tokens} exceed the context of {CONTEXT}"
                ),
            ));
        }
        let (target, eos) = expected(&text, seed, max_tokens);
        Ok(Prepared {
            sequence: FakeSequence { target, eos },
            prompt_tokens,
        })
    }
}

/// What the fake decoder saw, for assertions.
#[derive(Debug, Default)]
pub struct Observed {
    pub max_batch: AtomicUsize,
    pub steps: AtomicUsize,
    pub removed: Mutex<Vec<SequenceKey>>,
}

pub struct FakeDecoder {
    pub step_time: Duration,
    pub observed: Arc<Observed>,
    active: HashMap<SequenceKey, (FakeSequence, usize)>,
}

impl FakeDecoder {
    pub fn new(step_time: Duration) -> Self {
        Self {
            step_time,
            observed: Arc::default(),
            active: HashMap::new(),
        }
    }
}

impl StepDecoder for FakeDecoder {
    type Sequence = FakeSequence;

    fn add(&mut self, key: SequenceKey, sequence: FakeSequence) -> Result<(), DecoderError> {
        if self.active.insert(key, (sequence, 0)).is_some() {
            return Err(DecoderError::new(format!("sequence {key} added twice")));
        }
        Ok(())
    }

    fn remove(&mut self, key: SequenceKey) {
        self.active.remove(&key);
        if let Ok(mut removed) = self.observed.removed.lock() {
            removed.push(key);
        }
    }

    fn step(&mut self) -> Result<StepReport, DecoderError> {
        assert!(!self.active.is_empty(), "step called with an empty batch");
        self.observed
            .max_batch
            .fetch_max(self.active.len(), Ordering::SeqCst);
        self.observed.steps.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.step_time);
        let mut updates = Vec::new();
        for (key, (sequence, committed)) in &mut self.active {
            let total = sequence.target.chars().count();
            *committed = (*committed + 1).min(total);
            let text: String = sequence.target.chars().take(*committed).collect();
            let status = match (*committed == total, sequence.eos) {
                (false, _) => SequenceStatus::Running,
                (true, true) => SequenceStatus::Finished(FinishReason::Stop),
                (true, false) => SequenceStatus::Finished(FinishReason::Length),
            };
            updates.push(SequenceUpdate {
                key: *key,
                text,
                tokens: *committed,
                status,
            });
        }
        Ok(StepReport {
            forward_passes: 1,
            updates,
        })
    }
}
