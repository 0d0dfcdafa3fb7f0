//! The local diffusion engine behind the agent's `Model` trait. The engine is synchronous and owns
//! the model; it runs on its own thread, fed by a channel, and answers each request through a
//! oneshot channel (streamed text through an unbounded one), so the agent's async loop never blocks
//! on it and requests are served one at a time in arrival order.
//!
//! Chat requests are rendered with the checkpoint's chat template (plain `role: content` turns when
//! it has none). Infill requests render the conversation the same way and append the response
//! skeleton, whose holes the engine fills at each candidate length.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use hone_agent::{
    Candidate, ChatRequest, ChatResponse, FinishReason, InfillCandidate, InfillRequest,
    InfillResponse, Message, Model, ModelDescription, Sampling, Segment, StreamCallback,
    StreamUpdate, Usage,
};
use hone_engine::generate::{
    self as engine_generate, GenerateEvent, GenerateOutput, GenerateRequest, Prompt, TokenCodec,
};
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::SamplerSettings;
use hone_engine::tokenizer::{GenerationDefaults, TextTokenizer};

use super::{ModelSettings, DEFAULT_CPU_MODEL, DEFAULT_CUDA_MODEL};
use crate::exit::Hinted;

/// Candidates per iteration on the local engine: diffusion makes several cheap.
pub const DEFAULT_CANDIDATES: usize = 4;

/// Temperature used for `n > 1` chat candidates when none is configured: greedy decoding would give
/// `n` identical answers.
const DIVERSE_TEMPERATURE: f64 = 0.7;

type Reply = tokio::sync::oneshot::Sender<hone_engine::Result<GenerateOutput>>;

struct Job {
    request: GenerateRequest,
    reply: Reply,
    stream: Option<tokio::sync::mpsc::UnboundedSender<StreamUpdate>>,
}

/// The engine adapter.
pub struct LocalModel {
    jobs: mpsc::Sender<Job>,
    description: ModelDescription,
    tokenizer: Arc<TextTokenizer>,
    defaults: GenerationDefaults,
    /// The family's own sampler and settings (`sampling::family::base_settings`).
    base: SamplerSettings,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("description", &self.description)
            .finish()
    }
}

impl LocalModel {
    /// Load the checkpoint (the default for the device when none is given) and start its thread.
    pub fn open(settings: &ModelSettings) -> anyhow::Result<Self> {
        let device = hone_engine::device::select_device(&settings.device).map_err(|error| {
            Hinted::new(error, ["pass --device cpu, or build with --features cuda"])
        })?;
        let model_name = settings.model.clone().unwrap_or_else(|| {
            if device.is_cuda() {
                DEFAULT_CUDA_MODEL
            } else {
                DEFAULT_CPU_MODEL
            }
            .to_owned()
        });
        let arch = settings
            .arch
            .as_deref()
            .map(hone_engine::checkpoint::parse_architecture)
            .transpose()
            .map_err(|error| Hinted::new(error, ["--arch takes llada or dream"]))?;
        let dtype = settings
            .dtype
            .as_deref()
            .map(hone_engine::device::parse_dtype)
            .transpose()
            .map_err(|error| Hinted::new(error, ["--dtype takes f32, bf16 or f16"]))?;
        let spec = hone_engine::checkpoint::ModelSpec {
            model: model_name.clone(),
            arch,
            device,
            dtype,
            quantization: settings.quantize,
        };
        let loaded = hone_engine::checkpoint::load(&spec).map_err(|error| {
            let mut hints: Vec<String> = Vec::new();
            // The engine's own message already says how to download a missing hub checkpoint.
            if !error.to_string().contains("download") {
                hints.push(format!(
                "fetch it with `huggingface-cli download {model_name}` (or `hf download {model_name}`), or pass --model DIR: a folder with config.json, tokenizer.json and *.safetensors"
            ));
            }
            if settings.model.is_none() {
                hints.push(format!(
                    "without --model hone uses {DEFAULT_CPU_MODEL} on CPU and {DEFAULT_CUDA_MODEL} on CUDA; --backend openai --base-url URL uses a server instead"
                ));
            }
            Hinted::new(error, hints)
        })?;
        let Some(tokenizer) = loaded.tokenizer else {
            return Err(Hinted::new(
                anyhow::anyhow!(
                    "{} has no tokenizer.json: hone run needs text in and out",
                    loaded.source.display()
                ),
                ["use a checkpoint folder that ships tokenizer.json"],
            )
            .into());
        };
        let tokenizer = Arc::new(tokenizer);
        let tokens = TokenIds::from(&loaded.special);
        let context_window = loaded.model.info().max_sequence_length;
        let base = hone_engine::sampling::family::base_settings(loaded.model.info(), &loaded.name);
        let description = ModelDescription {
            backend: "local".to_owned(),
            name: loaded.name.clone(),
            // Block-causal models (LLaDA2) cannot see text after a hole (docs/ENGINE.md).
            supports_infill: !loaded.model.info().block_causal,
            context_window: Some(context_window),
            default_candidates: DEFAULT_CANDIDATES,
        };
        let (jobs, receiver) = mpsc::channel::<Job>();
        let mut model = loaded.model;
        let codec = tokenizer.clone();
        std::thread::Builder::new()
            .name("hone-engine".to_owned())
            .spawn(move || {
                // Requests are served one at a time; the thread ends when the adapter is dropped.
                while let Ok(job) = receiver.recv() {
                    let mut on_event = |event: &GenerateEvent<'_>| {
                        if let (
                            Some(stream),
                            GenerateEvent::Step {
                                candidate,
                                text_so_far,
                                ..
                            },
                        ) = (&job.stream, event)
                        {
                            let _ = stream.send(StreamUpdate {
                                index: *candidate,
                                delta: (*text_so_far).to_owned(),
                            });
                        }
                    };
                    let codec: &dyn TokenCodec = codec.as_ref();
                    let result = engine_generate::generate(
                        model.as_mut(),
                        Some(codec),
                        &tokens,
                        &job.request,
                        &mut on_event,
                        None,
                    );
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|error| anyhow::anyhow!("starting the engine thread: {error}"))?;
        Ok(Self {
            jobs,
            description,
            tokenizer,
            defaults: loaded.generation,
            base,
        })
    }

    /// Sampler settings: the family's defaults, then the checkpoint's generation_config.json, then
    /// the request's.
    fn settings(
        &self,
        sampling: &Sampling,
        gen_length: usize,
        candidates: usize,
    ) -> SamplerSettings {
        let mut settings = self.base.clone();
        let defaults = &self.defaults;
        if let Some(block_length) = sampling.block_length.or(defaults.block_length) {
            settings.block_length = block_length.max(1);
        }
        settings.steps = sampling.steps.or(defaults.steps).or(self.base.steps);
        settings.temperature = sampling
            .temperature
            .map(f64::from)
            .or(defaults.temperature)
            .unwrap_or(if candidates > 1 {
                DIVERSE_TEMPERATURE.max(self.base.temperature)
            } else {
                self.base.temperature
            });
        settings.top_p = sampling.top_p.map(f64::from).or(defaults.top_p);
        settings.top_k = defaults.top_k.or(self.base.top_k);
        if let Some(threshold) = sampling.threshold.map(f64::from).or(defaults.threshold) {
            settings.threshold = Some(threshold);
        }
        // Blocks must tile the generation, and the generation must leave the prompt room: at most
        // half the model's window (a tiny model's 512 tokens cannot hold a 2048-token answer).
        let block = settings.block_length;
        let window = self.description.context_window.unwrap_or(usize::MAX);
        let cap = ((window / 2) / block).max(1) * block;
        settings.gen_length = (gen_length.max(1).div_ceil(block) * block).min(cap);
        if let Some(steps) = settings.steps {
            let blocks = settings.gen_length / block;
            settings.steps = Some(steps.max(blocks).div_ceil(blocks) * blocks);
        }
        settings
    }

    fn render(&self, messages: &[Message]) -> String {
        let turns: Vec<(String, String)> = messages
            .iter()
            .map(|message| (message.role.as_str().to_owned(), message.content.clone()))
            .collect();
        let codec: &dyn TokenCodec = self.tokenizer.as_ref();
        codec.render_chat(&turns).unwrap_or_else(|_| {
            let mut text: String = turns
                .iter()
                .map(|(role, content)| format!("{role}: {content}\n\n"))
                .collect();
            text.push_str("assistant: ");
            text
        })
    }

    /// Keep the end of `prompt` so that it plus `reserve` tokens fit the model's window: the end of a
    /// conversation (the latest request, the skeleton's start) matters most. Logged when it cuts.
    fn fit(&self, prompt: String, reserve: usize) -> String {
        let window = self.description.context_window.unwrap_or(usize::MAX);
        let budget = window.saturating_sub(reserve.saturating_add(8));
        let Ok(ids) = self.tokenizer.encode(&prompt, false) else {
            return prompt;
        };
        if ids.len() <= budget {
            return prompt;
        }
        tracing::debug!(
            tokens = ids.len(),
            budget,
            window,
            "prompt longer than the model's window: keeping its end"
        );
        self.tokenizer
            .decode(&ids[ids.len() - budget..], false)
            .unwrap_or(prompt)
    }

    async fn submit(
        &self,
        request: GenerateRequest,
        stream: Option<StreamCallback<'_>>,
    ) -> hone_agent::Result<GenerateOutput> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel::<StreamUpdate>();
        let job = Job {
            request,
            reply,
            stream: stream.is_some().then_some(sender),
        };
        self.jobs
            .send(job)
            .map_err(|_| hone_agent::Error::Backend("the engine thread has stopped".into()))?;
        // The engine reports the committed text so far; pass on only what was appended.
        let mut sent: Vec<String> = Vec::new();
        let mut answer = std::pin::pin!(answer);
        loop {
            tokio::select! {
                result = &mut answer => {
                    let output = result.map_err(|_| hone_agent::Error::Backend("the engine thread stopped mid-request".into()))?;
                    return output.map_err(|error| hone_agent::Error::Backend(error.to_string()));
                }
                Some(update) = updates.recv() => {
                    if let Some(stream) = stream {
                        if sent.len() <= update.index {
                            sent.resize(update.index + 1, String::new());
                        }
                        let previous = &mut sent[update.index];
                        if let Some(delta) = update.delta.strip_prefix(previous.as_str()) {
                            if !delta.is_empty() {
                                stream(StreamUpdate { index: update.index, delta: delta.to_owned() });
                            }
                        }
                        *previous = update.delta;
                    }
                }
            }
        }
    }
}

fn usage(output: &GenerateOutput) -> Usage {
    Usage {
        prompt_tokens: output.usage.prompt_tokens as u64,
        completion_tokens: output.usage.generated_tokens as u64,
        nfe: output.usage.nfe as u64,
        model_time: output.usage.wall_time,
    }
}

fn finish(reason: hone_engine::sampling::FinishReason) -> FinishReason {
    match reason {
        hone_engine::sampling::FinishReason::Length => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

impl Model for LocalModel {
    fn describe(&self) -> ModelDescription {
        self.description.clone()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, hone_agent::Result<ChatResponse>> {
        Box::pin(async move {
            let started = Instant::now();
            let n = request.n.max(1);
            let settings = self.settings(&request.sampling, request.max_tokens, n);
            // Block diffusion pads the canvas to whole blocks: reserve one more block.
            let reserve = settings.gen_length + settings.block_length;
            let generate = GenerateRequest {
                prompt: Prompt::Text(self.fit(self.render(&request.messages), reserve)),
                settings,
                candidates: n,
                seed: request.sampling.seed.unwrap_or(0),
                stop: request.stop.clone(),
            };
            let output = self.submit(generate, stream).await?;
            let mut usage = usage(&output);
            usage.model_time = started.elapsed();
            let mut candidates: Vec<_> = output.candidates.into_iter().collect();
            candidates.sort_by_key(|candidate| candidate.index);
            let candidates = candidates
                .into_iter()
                .map(|candidate| Candidate {
                    text: candidate.text,
                    finish_reason: finish(candidate.finish_reason),
                })
                .collect();
            Ok(ChatResponse { candidates, usage })
        })
    }

    fn infill<'a>(
        &'a self,
        request: &'a InfillRequest,
    ) -> BoxFuture<'a, hone_agent::Result<InfillResponse>> {
        Box::pin(async move {
            let started = Instant::now();
            // Everything after the first hole is kept whole; the conversation and the skeleton's
            // head are cut from the left if the window demands it.
            let mut reserve = 0;
            for segment in request
                .skeleton
                .iter()
                .skip_while(|segment| matches!(segment, Segment::Text(_)))
            {
                reserve += match segment {
                    Segment::Text(text) => self.count_tokens(text).unwrap_or(text.len()),
                    Segment::Hole { lengths } => lengths.iter().copied().max().unwrap_or(0),
                };
            }
            let mut head = self.render(&request.messages);
            for segment in request
                .skeleton
                .iter()
                .take_while(|segment| matches!(segment, Segment::Text(_)))
            {
                if let Segment::Text(text) = segment {
                    head.push_str(text);
                }
            }
            let mut segments = Vec::new();
            let mut pending = self.fit(head, reserve);
            let skeleton = request
                .skeleton
                .iter()
                .skip_while(|segment| matches!(segment, Segment::Text(_)));
            for segment in skeleton {
                match segment {
                    Segment::Text(text) => pending.push_str(text),
                    Segment::Hole { lengths } => {
                        segments.push(engine_generate::Segment::Text(std::mem::take(&mut pending)));
                        segments.push(engine_generate::Segment::Hole {
                            lengths: lengths.clone(),
                        });
                    }
                }
            }
            if !pending.is_empty() {
                segments.push(engine_generate::Segment::Text(pending));
            }
            let longest: usize = request
                .skeleton
                .iter()
                .filter_map(|segment| match segment {
                    Segment::Hole { lengths } => lengths.iter().max().copied(),
                    Segment::Text(_) => None,
                })
                .sum();
            let generate = GenerateRequest {
                prompt: Prompt::Segments(segments),
                settings: self.settings(&request.sampling, longest.max(1), request.n.max(1)),
                candidates: request.n.max(1),
                seed: request.sampling.seed.unwrap_or(0),
                stop: Vec::new(),
            };
            let output = self.submit(generate, None).await?;
            let mut usage = usage(&output);
            usage.model_time = started.elapsed();
            let candidates = output
                .candidates
                .into_iter()
                .map(|candidate| {
                    let mut holes = candidate.holes.iter();
                    let text: String = request
                        .skeleton
                        .iter()
                        .map(|segment| match segment {
                            Segment::Text(text) => text.clone(),
                            Segment::Hole { .. } => holes.next().cloned().unwrap_or_default(),
                        })
                        .collect();
                    InfillCandidate {
                        holes: candidate.holes,
                        text,
                        lengths: candidate.hole_lengths,
                    }
                })
                .collect();
            Ok(InfillResponse { candidates, usage })
        })
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.tokenizer.token_count(text).ok()
    }
}
