//! The server's backend over hone-engine: [`EngineFrontend`] turns a request into the engine's
//! sequences (chat template, tokenisation, settings from the request over generation_config.json,
//! context check), and [`EngineDecoder`] drives `sampling::BatchDecoder` on the engine thread
//! (the one engine thread: `hone run`'s local backend submits its candidates to the same
//! scheduler over the same decoder, `backends/engine_jobs.rs`).
//!
//! Every open-ended request becomes `prompt + hole(max_tokens)` and every `suffix` request
//! `prompt + hole(max_tokens) + suffix` (infill), both through `generate::candidate_requests`, so
//! `max_tokens` is honoured exactly (the last block of a hole may be shorter than `block_length`).
//! The engine batches sequences that share a canvas shape and step structure and arrive before the
//! same step into one forward; others run as separate cohorts in the same step.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use hone_engine::generate::{
    candidate_requests, CandidateText, GenerateRequest, Prompt as EnginePrompt, Segment,
};
use hone_engine::model::{DiffusionModel, ModelInfo};
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::{
    BatchDecoder, FinishReason as EngineFinish, SamplerOverrides, SamplerSettings, SequenceId,
    SequenceRequest,
};
use hone_engine::tokenizer::{GenerationDefaults, TextTokenizer};

use hone_serve::error::ApiError;
use hone_serve::request::{Endpoint, GenerationRequest, Prompt};
use hone_serve::scheduler::{
    DecoderError, FinishReason, SequenceKey, SequenceStatus, SequenceUpdate, StepDecoder,
    StepReport,
};
use hone_serve::{Frontend, Prepared};

/// `max_tokens` when neither the request nor generation_config.json gives one.
pub const FALLBACK_MAX_TOKENS: usize = 128;

/// One choice, ready for the engine thread.
#[derive(Debug)]
pub struct EngineSequence {
    request: SequenceRequest,
    text: CandidateText,
    /// Where the final canvas goes when the sequence leaves the decoder.
    report: Option<oneshot::Sender<FinalCanvas>>,
}

impl EngineSequence {
    pub fn new(request: SequenceRequest, text: CandidateText) -> Self {
        Self {
            request,
            text,
            report: None,
        }
    }

    /// Also hand back the final canvas when the sequence leaves the decoder (finished, stopped at
    /// a stop string, cancelled or failed: the scheduler removes every sequence at its end), for a
    /// caller that reads more than the streamed text (`hone run`: each hole, the ids, the NFE).
    pub fn reporting(mut self) -> (Self, oneshot::Receiver<FinalCanvas>) {
        let (sender, receiver) = oneshot::channel();
        self.report = Some(sender);
        (self, receiver)
    }
}

/// A sequence's canvas when it left the decoder, and the forward passes it took part in.
#[derive(Debug)]
pub struct FinalCanvas {
    pub canvas: Vec<u32>,
    pub forwards: usize,
}

/// Request-side half: tokenizer, chat template, defaults and limits.
pub struct EngineFrontend {
    model_id: String,
    tokenizer: Arc<TextTokenizer>,
    tokens: TokenIds,
    defaults: GenerationDefaults,
    /// The model's facts: its context length, and whether it is block-causal.
    info: ModelInfo,
    /// The family's own sampler and settings, under generation_config.json and the request.
    base: SamplerSettings,
}

impl EngineFrontend {
    pub fn new(
        model_id: String,
        tokenizer: Arc<TextTokenizer>,
        tokens: TokenIds,
        defaults: GenerationDefaults,
        info: ModelInfo,
    ) -> Self {
        Self {
            model_id,
            tokenizer,
            tokens,
            defaults,
            info,
            base: SamplerSettings::default(),
        }
    }

    /// Decode with the model family's own sampler and settings
    /// (`hone_engine::sampling::family::base_settings`) where the request says nothing.
    pub fn with_base_settings(mut self, base: SamplerSettings) -> Self {
        self.base = base;
        self
    }

    /// The sampler settings of a request: its fields over the checkpoint's generation_config.json
    /// over the family's (`SamplerSettings::resolve`, as for `hone generate` and `hone run`).
    fn settings(
        &self,
        request: &GenerationRequest,
        max_tokens: usize,
    ) -> Result<SamplerSettings, ApiError> {
        let diffusion = &request.diffusion;
        let overrides = SamplerOverrides {
            sampler: diffusion.sampler.clone(),
            gen_length: Some(max_tokens),
            steps: diffusion.steps,
            block_length: diffusion.block_length,
            temperature: request.temperature,
            top_p: request.top_p,
            cache: diffusion.cache.clone(),
            threshold: diffusion.threshold,
            tokens_per_step: diffusion.tokens_per_step,
            remasking: diffusion.remasking.clone(),
            alg: diffusion.alg.clone(),
            cfg_scale: diffusion.cfg_scale,
            ..SamplerOverrides::default()
        };
        SamplerSettings::resolve(&overrides, &self.defaults, &self.base).map_err(engine_error)
    }
}

/// Refuse sizes that cannot fit the model before anything is allocated for them: `max_tokens`
/// over the context window, and more denoising steps than tokens to generate (each step commits at
/// least one token, so extra steps only burn engine time).
fn check_bounds(
    request: &GenerationRequest,
    max_tokens: usize,
    max_sequence_length: usize,
) -> Result<(), ApiError> {
    let field = if request.max_tokens.is_some() {
        "max_tokens"
    } else {
        "model"
    };
    if max_tokens > max_sequence_length {
        return Err(ApiError::context_length(
            field,
            format!(
                "max_tokens {max_tokens} exceeds the model's context of {max_sequence_length} tokens: lower max_tokens"
            ),
        ));
    }
    if let Some(steps) = request.diffusion.steps {
        if steps > max_tokens {
            return Err(ApiError::invalid(
                "steps",
                format!("at most max_tokens ({max_tokens}) steps, got {steps}"),
            ));
        }
    }
    Ok(())
}

fn defaults_gen_length(defaults: &GenerationDefaults) -> Option<usize> {
    defaults.gen_length.or(defaults.max_new_tokens)
}

/// An engine error as a 400 naming the request field at fault: a setting's own name where the
/// request has that field, `max_tokens` for the generation length and for settings that come from
/// the checkpoint (the request can only change the length).
fn engine_error(error: hone_engine::Error) -> ApiError {
    const REQUEST_FIELDS: [&str; 11] = [
        "block_length",
        "steps",
        "threshold",
        "tokens_per_step",
        "temperature",
        "top_p",
        "sampler",
        "cache",
        "remasking",
        "alg",
        "cfg_scale",
    ];
    match error {
        hone_engine::Error::InvalidSetting { field, reason } => {
            let field = REQUEST_FIELDS
                .into_iter()
                .find(|known| *known == field)
                .unwrap_or("max_tokens");
            ApiError::invalid(field, reason)
        }
        other => ApiError::invalid("max_tokens", other.to_string()),
    }
}

impl Frontend for EngineFrontend {
    type Sequence = EngineSequence;

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn prepare(
        &self,
        request: &GenerationRequest,
        prompt: &Prompt,
        seed: u64,
    ) -> Result<Prepared<EngineSequence>, ApiError> {
        let max_tokens = request
            .max_tokens
            .or(defaults_gen_length(&self.defaults))
            .unwrap_or(FALLBACK_MAX_TOKENS);
        // Bounds before allocation: the hole of `max_tokens` masks is allocated by
        // `candidate_requests`, so a client's `max_tokens: 1e11` must be refused before it.
        check_bounds(request, max_tokens, self.info.max_sequence_length)?;
        let settings = self.settings(request, max_tokens)?;
        let prompt_field = match request.endpoint {
            Endpoint::Chat => "messages",
            Endpoint::Completion => "prompt",
        };
        let hole = Segment::Hole {
            lengths: vec![max_tokens],
        };
        let segments = match prompt {
            Prompt::Chat(messages) => {
                let turns: Vec<_> = messages
                    .iter()
                    .map(|m| {
                        hone_engine::tokenizer::ChatMessage::new(m.role.clone(), m.content.clone())
                    })
                    .collect();
                let rendered = self.tokenizer.render_chat(&turns, true).map_err(|e| {
                    ApiError::invalid("messages", format!("the chat template failed: {e}"))
                })?;
                vec![Segment::Text(rendered), hole]
            }
            Prompt::Text {
                prompt,
                suffix: None,
            } => vec![Segment::Text(prompt.clone()), hole],
            Prompt::Text {
                prompt,
                suffix: Some(suffix),
            } => {
                vec![
                    Segment::Text(prompt.clone()),
                    hole,
                    Segment::Text(suffix.clone()),
                ]
            }
        };
        let engine_request = GenerateRequest {
            prompt: EnginePrompt::Segments(segments),
            settings,
            candidates: 1,
            seed,
            stop: request.stop.clone(),
        };
        let codec: &dyn hone_engine::generate::TokenCodec = self.tokenizer.as_ref();
        let (mut sequences, prompt_tokens) =
            candidate_requests(&engine_request, Some(codec), &self.tokens).map_err(engine_error)?;
        let total = prompt_tokens + max_tokens;
        if total > self.info.max_sequence_length {
            return Err(ApiError::context_length(
                prompt_field,
                format!(
                    "{prompt_tokens} prompt tokens + max_tokens {max_tokens} = {total} exceed the model's \
                     context of {} tokens: shorten the prompt or lower max_tokens",
                    self.info.max_sequence_length
                ),
            ));
        }
        let (request, text, _) = sequences
            .pop()
            .ok_or_else(|| ApiError::internal("the engine prepared no sequence"))?;
        hone_engine::sampling::cohort::validate_request(&request, &self.info)
            .map_err(engine_error)?;
        Ok(Prepared {
            sequence: EngineSequence::new(request, text),
            prompt_tokens,
        })
    }
}

struct Entry {
    id: SequenceId,
    text: CandidateText,
    report: Option<oneshot::Sender<FinalCanvas>>,
}

/// Engine-thread half: the model and the batch decoder.
pub struct EngineDecoder {
    model: Box<dyn DiffusionModel>,
    tokenizer: Arc<TextTokenizer>,
    decoder: BatchDecoder,
    entries: HashMap<SequenceKey, Entry>,
    keys: HashMap<SequenceId, SequenceKey>,
    /// Sequences done or cancelled whose cohort still runs: released once it ends.
    unreleased: Vec<SequenceId>,
}

impl EngineDecoder {
    pub fn new(model: Box<dyn DiffusionModel>, tokenizer: Arc<TextTokenizer>) -> Self {
        let decoder = BatchDecoder::new(model.info(), 0);
        Self {
            model,
            tokenizer,
            decoder,
            entries: HashMap::new(),
            keys: HashMap::new(),
            unreleased: Vec::new(),
        }
    }

    fn release_finished(&mut self) {
        let decoder = &mut self.decoder;
        self.unreleased.retain(|id| decoder.release(*id).is_err());
    }

    /// The committed prefix's text; a trailing replacement character is a multi-byte character cut
    /// in half by a token boundary, so it waits for the next token unless the sequence is done.
    fn text_of(&self, entry: &Entry, finished: bool) -> Result<(String, usize), String> {
        let canvas = self.decoder.canvas(entry.id).unwrap_or(&[]);
        let mut ids = entry.text.committed_prefix(canvas);
        if !entry.text.layout.open_ended {
            let stop_ids = entry.text.tokens.stop_ids();
            ids.retain(|id| !stop_ids.contains(id));
        }
        let mut text = self
            .tokenizer
            .decode(&ids, true)
            .map_err(|e| e.to_string())?;
        if !finished {
            while text.ends_with('\u{fffd}') {
                text.pop();
            }
        }
        Ok((text, ids.len()))
    }
}

impl StepDecoder for EngineDecoder {
    type Sequence = EngineSequence;

    fn add(&mut self, key: SequenceKey, sequence: EngineSequence) -> Result<(), DecoderError> {
        let id = self
            .decoder
            .add(sequence.request)
            .map_err(DecoderError::new)?;
        self.entries.insert(
            key,
            Entry {
                id,
                text: sequence.text,
                report: sequence.report,
            },
        );
        self.keys.insert(id, key);
        Ok(())
    }

    fn remove(&mut self, key: SequenceKey) {
        if let Some(entry) = self.entries.remove(&key) {
            self.decoder.remove(entry.id);
            if let Some(report) = entry.report {
                let _ = report.send(FinalCanvas {
                    canvas: self.decoder.canvas(entry.id).unwrap_or(&[]).to_vec(),
                    forwards: self.decoder.forwards(entry.id).unwrap_or(0),
                });
            }
            self.keys.remove(&entry.id);
            self.unreleased.push(entry.id);
        }
        self.release_finished();
    }

    fn step(&mut self) -> Result<StepReport, DecoderError> {
        let before = self.decoder.forward_passes();
        let events = self
            .decoder
            .step(self.model.as_mut())
            .map_err(DecoderError::new)?;
        let forward_passes = (self.decoder.forward_passes() - before) as u64;
        let mut updates = Vec::with_capacity(events.len());
        for event in events {
            let Some(key) = self.keys.get(&event.sequence).copied() else {
                continue;
            };
            let Some(entry) = self.entries.get(&key) else {
                continue;
            };
            let status = match event.finished {
                None => SequenceStatus::Running,
                Some(EngineFinish::Stop) => SequenceStatus::Finished(FinishReason::Stop),
                Some(EngineFinish::Length) => SequenceStatus::Finished(FinishReason::Length),
                Some(EngineFinish::Cancelled) => {
                    SequenceStatus::Failed("the sequence was cancelled".into())
                }
            };
            let finished = !matches!(status, SequenceStatus::Running);
            // A detokenisation failure ends this sequence only, not the whole batch.
            let (text, tokens, status) = match self.text_of(entry, finished) {
                Ok((text, tokens)) => (text, tokens, status),
                Err(message) => (String::new(), 0, SequenceStatus::Failed(message)),
            };
            updates.push(SequenceUpdate {
                key,
                text,
                tokens,
                status,
            });
        }
        self.release_finished();
        Ok(StepReport {
            forward_passes,
            updates,
        })
    }
}
