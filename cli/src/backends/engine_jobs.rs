//! Whole generation requests (every candidate of one `GenerateRequest`) decoded on the one engine
//! thread: `hone_serve::scheduler::Scheduler` over [`EngineDecoder`], as in `hone serve`. The local
//! backend of `hone run` submits a request's candidates as sequences, so
//! - they are batched like a server's choices (one forward for the candidates that share a shape);
//! - their text streams through the scheduler's stop-string hold-back (`hone_serve::text`), so a
//!   caller never sees the first characters of a stop string;
//! - a caller that stops waiting (the agent's budget runs out and drops the future) drops the event
//!   receivers, which the scheduler takes as cancellation before its next step: the engine is free
//!   for the next job instead of finishing a generation nobody reads.
//!
//! What a chat client does not need but `hone run` does (each hole's text for infill, the ids, the
//! forwards per candidate) is read from the final canvas, which [`EngineDecoder`] hands back when a
//! sequence leaves it, with `hone_engine::generate::CandidateSlot`, exactly as `generate` reads it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hone_agent::{StreamCallback, StreamUpdate};
use hone_engine::generate::{
    candidate_requests, Candidate, CandidateSlot, GenerateRequest, TokenCodec,
};
use hone_engine::model::{DiffusionModel, ModelInfo};
use hone_engine::sampling::cohort::{validate_request, TokenIds};
use hone_engine::tokenizer::TextTokenizer;
use hone_serve::metrics::Metrics;
use hone_serve::scheduler::{Event, Job, Scheduler, SchedulerConfig};

use super::serve::{EngineDecoder, EngineSequence, FinalCanvas};

/// At most this many candidates decode at once; more wait for a free slot. Larger than any
/// `--candidates` times infill lengths hone asks for, so one request's candidates share steps.
const MAX_BATCH: usize = 256;

/// Sequences that may wait beyond `MAX_BATCH` (requests of concurrent callers).
const MAX_QUEUE: usize = 4096;

/// A request's candidates (in request order) and its counts.
#[derive(Debug)]
pub struct Decoded {
    pub candidates: Vec<Candidate>,
    pub usage: hone_agent::Usage,
}

/// The engine thread and what turns requests into its sequences.
pub struct EngineJobs {
    scheduler: Scheduler<EngineSequence>,
    tokenizer: Arc<TextTokenizer>,
    tokens: TokenIds,
    info: ModelInfo,
}

impl EngineJobs {
    /// Start the engine thread around `model`.
    pub fn start(
        model: Box<dyn DiffusionModel>,
        tokenizer: Arc<TextTokenizer>,
        tokens: TokenIds,
    ) -> std::io::Result<Self> {
        let info = model.info().clone();
        let config = SchedulerConfig {
            max_batch: MAX_BATCH,
            max_queue: MAX_QUEUE,
            // A request's candidates are submitted together: nobody else to wait for.
            batch_window: Duration::ZERO,
        };
        let decoder = EngineDecoder::new(model, tokenizer.clone());
        let scheduler = Scheduler::start(decoder, config, Arc::new(Metrics::default()))?;
        Ok(Self {
            scheduler,
            tokenizer,
            tokens,
            info,
        })
    }

    /// Decode every candidate of `request`. With `stream`, each candidate's new text is passed on as
    /// it is committed (never a stop string, nor the start of one). Dropping the future cancels the
    /// candidates still decoding.
    pub async fn generate(
        &self,
        request: &GenerateRequest,
        stream: Option<StreamCallback<'_>>,
    ) -> hone_agent::Result<Decoded> {
        let started = Instant::now();
        let (canvases, prompt_tokens) = {
            let codec: &dyn TokenCodec = self.tokenizer.as_ref();
            candidate_requests(request, Some(codec), &self.tokens).map_err(model_error)?
        };
        let mut slots = Vec::with_capacity(canvases.len());
        let mut finals = Vec::with_capacity(canvases.len());
        let mut jobs = Vec::with_capacity(canvases.len());
        for (index, (sequence, text, lengths)) in canvases.into_iter().enumerate() {
            validate_request(&sequence, &self.info).map_err(model_error)?;
            slots.push(CandidateSlot {
                index,
                seed: sequence.seed,
                lengths,
                text: text.clone(),
                stopped_by_string: false,
            });
            let (sequence, final_canvas) = EngineSequence::new(sequence, text).reporting();
            finals.push(final_canvas);
            jobs.push(Job {
                sequence,
                stop: request.stop.clone(),
                prompt_tokens,
            });
        }
        let receivers = self.scheduler.submit(jobs).map_err(model_error)?;
        let mut events = futures::stream::select_all(receivers.into_iter().enumerate().map(
            |(index, receiver)| {
                futures::stream::unfold(receiver, |mut receiver| async move {
                    receiver.recv().await.map(|event| (event, receiver))
                })
                .map(move |event| (index, event))
                .boxed()
            },
        ));
        let mut finished = vec![false; slots.len()];
        while let Some((index, event)) = events.next().await {
            match event {
                Event::Text(delta) => {
                    if let Some(stream) = stream {
                        stream(StreamUpdate { index, delta });
                    }
                }
                Event::Finished { .. } => finished[index] = true,
                Event::Failed(error) => return Err(model_error(error)),
            }
        }
        if finished.contains(&false) {
            return Err(hone_agent::Error::Backend(
                "the engine thread stopped mid-request".into(),
            ));
        }
        let mut candidates = Vec::with_capacity(slots.len());
        for (slot, final_canvas) in slots.iter().zip(finals) {
            let FinalCanvas { canvas, forwards } = final_canvas.await.map_err(|_| {
                hone_agent::Error::Backend("the engine thread lost a finished candidate".into())
            })?;
            let codec: &dyn TokenCodec = self.tokenizer.as_ref();
            candidates.push(
                slot.finish(&canvas, Some(codec), forwards)
                    .map_err(model_error)?,
            );
        }
        let usage = hone_agent::Usage {
            prompt_tokens: prompt_tokens as u64,
            completion_tokens: candidates.iter().map(|c| c.ids.len() as u64).sum(),
            nfe: candidates.iter().map(|c| c.forwards as u64).sum(),
            model_time: started.elapsed(),
        };
        Ok(Decoded { candidates, usage })
    }
}

/// An engine or scheduler error, kept whole for the CLI (a scheduler error's `source` is the
/// engine's own error when decoding failed).
fn model_error(error: impl std::error::Error + Send + Sync + 'static) -> hone_agent::Error {
    hone_agent::Error::Model(Box::new(error))
}
