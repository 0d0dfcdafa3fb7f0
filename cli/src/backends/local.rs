//! The local diffusion engine behind the agent's `Model` trait. The engine is synchronous and owns
//! the model; it runs on the engine thread `hone serve` uses (`engine_jobs`: hone-serve's scheduler
//! over `EngineDecoder`, batching a request's candidates, streaming through the stop-string
//! hold-back, cancelling when the agent stops waiting), so the agent's async loop never blocks on it.
//!
//! Chat requests are rendered with the checkpoint's chat template (plain `role: content` turns when
//! it has none). Infill requests render the conversation the same way and append the response
//! skeleton, whose holes the engine fills at each candidate length.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use hone_agent::{
    Candidate, ChatRequest, ChatResponse, FinishReason, InfillCandidate, InfillRequest,
    InfillResponse, Message, Model, ModelDescription, Sampling, Segment, StreamCallback,
};
use hone_engine::checkpoint::LoadedModel;
use hone_engine::generate::{self as engine_generate, GenerateRequest, Prompt, TokenCodec};
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::{SamplerOverrides, SamplerSettings};
use hone_engine::tokenizer::{GenerationDefaults, TextTokenizer};

use super::engine_jobs::EngineJobs;
use super::{ModelSettings, DEFAULT_CPU_MODEL, DEFAULT_CUDA_MODEL};
use crate::exit::Hinted;

/// Candidates per iteration on the local engine: diffusion makes several cheap.
pub const DEFAULT_CANDIDATES: usize = 4;

/// Temperature used for `n > 1` chat candidates when none is configured: greedy decoding would give
/// `n` identical answers.
const DIVERSE_TEMPERATURE: f64 = 0.7;

/// The engine adapter.
pub struct LocalModel {
    engine: EngineJobs,
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
        let device = crate::engine_options::device(&settings.device)?;
        let model_name = settings.model.clone().unwrap_or_else(|| {
            if device.is_cuda() {
                DEFAULT_CUDA_MODEL
            } else {
                DEFAULT_CPU_MODEL
            }
            .to_owned()
        });
        let spec = crate::engine_options::spec_on(
            model_name.clone(),
            settings.arch.as_deref(),
            device,
            settings.dtype.as_deref(),
            settings.quantize,
        )?;
        let loaded = hone_engine::checkpoint::load(&spec).map_err(|error| {
            let default = settings.model.is_none().then(|| format!(
                "without --model hone uses {DEFAULT_CPU_MODEL} on CPU and {DEFAULT_CUDA_MODEL} on CUDA; --backend openai --base-url URL uses a server instead"
            ));
            Hinted::new(error, default)
        })?;
        Self::start(loaded)
    }

    /// Start the engine thread around a loaded checkpoint.
    pub fn start(loaded: LoadedModel) -> anyhow::Result<Self> {
        let source = loaded.source.display().to_string();
        let tokenizer = loaded.tokenizer.ok_or_else(|| {
            let error =
                anyhow::anyhow!("{source} has no tokenizer.json: hone run needs text in and out");
            Hinted::new(error, ["use a checkpoint folder that ships tokenizer.json"])
        })?;
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
        let engine = EngineJobs::start(loaded.model, tokenizer.clone(), tokens)
            .map_err(|error| anyhow::anyhow!("starting the engine thread: {error}"))?;
        Ok(Self {
            engine,
            description,
            tokenizer,
            defaults: loaded.generation,
            base,
        })
    }

    /// Sampler settings: the request's over the checkpoint's generation_config.json over the
    /// family's (`SamplerSettings::resolve`), then fitted to the engine: `n > 1` candidates get a
    /// diverse temperature when nobody chose one, and the generation is rounded up to whole blocks
    /// and capped at half the model's window.
    fn settings(
        &self,
        sampling: &Sampling,
        gen_length: usize,
        candidates: usize,
    ) -> hone_agent::Result<SamplerSettings> {
        let diverse = (candidates > 1 && self.defaults.temperature.is_none())
            .then(|| DIVERSE_TEMPERATURE.max(self.base.temperature));
        let overrides = SamplerOverrides {
            gen_length: Some(gen_length.max(1)),
            steps: sampling.steps,
            block_length: sampling.block_length.map(|length| length.max(1)),
            temperature: sampling.temperature.map(f64::from).or(diverse),
            top_p: sampling.top_p.map(f64::from),
            threshold: sampling.threshold.map(f64::from),
            ..SamplerOverrides::default()
        };
        let mut settings = SamplerSettings::resolve(&overrides, &self.defaults, &self.base)
            .map_err(|error| hone_agent::Error::Model(Box::new(error)))?;
        // Blocks must tile the generation, and the generation must leave the prompt room: at most
        // half the model's window (a tiny model's 512 tokens cannot hold a 2048-token answer).
        let block = settings.block_length;
        let window = self.description.context_window.unwrap_or(usize::MAX);
        let cap = ((window / 2) / block).max(1) * block;
        settings.gen_length = (settings.gen_length.div_ceil(block) * block).min(cap);
        if let Some(steps) = settings.steps {
            let blocks = settings.gen_length / block;
            settings.steps = Some(steps.max(blocks).div_ceil(blocks) * blocks);
        }
        Ok(settings)
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
            let settings = self.settings(&request.sampling, request.max_tokens, n)?;
            // Block diffusion pads the canvas to whole blocks: reserve one more block.
            let reserve = settings.gen_length + settings.block_length;
            let generate = GenerateRequest {
                prompt: Prompt::Text(self.fit(self.render(&request.messages), reserve)),
                settings,
                candidates: n,
                seed: request.sampling.seed.unwrap_or(0),
                stop: request.stop.clone(),
            };
            let output = self.engine.generate(&generate, stream).await?;
            let mut usage = output.usage;
            usage.model_time = started.elapsed();
            let mut candidates: Vec<_> = output.candidates.into_iter().collect();
            candidates.sort_by_key(|candidate| candidate.index);
            let candidates = candidates
                .into_iter()
                .map(|candidate| Candidate {
                    text: candidate.text,
                    finish_reason: match candidate.finish_reason {
                        hone_engine::sampling::FinishReason::Length => FinishReason::Length,
                        _ => FinishReason::Stop,
                    },
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
            // Everything from the first hole on is kept whole; the conversation and the skeleton's
            // head are cut from the left if the window demands it.
            let first_hole = (request.skeleton.iter())
                .position(|segment| matches!(segment, Segment::Hole { .. }))
                .unwrap_or(request.skeleton.len());
            let (head_parts, tail) = request.skeleton.split_at(first_hole);
            let mut head = self.render(&request.messages);
            for segment in head_parts {
                if let Segment::Text(text) = segment {
                    head.push_str(text);
                }
            }
            let reserve = (tail.iter())
                .map(|segment| match segment {
                    Segment::Text(text) => self.count_tokens(text).unwrap_or(text.len()),
                    Segment::Hole { lengths } => lengths.iter().copied().max().unwrap_or(0),
                })
                .sum();
            let (mut segments, mut longest) = (Vec::new(), 0);
            let mut pending = self.fit(head, reserve);
            for segment in tail {
                match segment {
                    Segment::Text(text) => pending.push_str(text),
                    Segment::Hole { lengths } => {
                        longest += lengths.iter().copied().max().unwrap_or(0);
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
            let generate = GenerateRequest {
                prompt: Prompt::Segments(segments),
                settings: self.settings(&request.sampling, longest.max(1), request.n.max(1))?,
                candidates: request.n.max(1),
                seed: request.sampling.seed.unwrap_or(0),
                stop: Vec::new(),
            };
            let output = self.engine.generate(&generate, None).await?;
            let mut usage = output.usage;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use candle_core::{DType, Device, Tensor};
    use hone_agent::{Role, StreamUpdate};
    use hone_engine::model::{DiffusionModel, ForwardInput, ModelInfo};

    use super::*;

    /// The tiny checkpoint, each forward slowed down and counted.
    struct SlowModel {
        inner: Box<dyn DiffusionModel>,
        forwards: Arc<AtomicUsize>,
    }

    impl DiffusionModel for SlowModel {
        fn info(&self) -> &ModelInfo {
            self.inner.info()
        }
        fn device(&self) -> &Device {
            self.inner.device()
        }
        fn dtype(&self) -> DType {
            self.inner.dtype()
        }
        fn forward(&mut self, input: ForwardInput<'_>) -> hone_engine::Result<Tensor> {
            std::thread::sleep(Duration::from_millis(10));
            self.forwards.fetch_add(1, Ordering::SeqCst);
            self.inner.forward(input)
        }
    }

    fn tiny_model(forwards: Arc<AtomicUsize>) -> LocalModel {
        let spec = crate::engine_options::spec_on(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/fixtures/parity/llada-tiny"
            )
            .to_owned(),
            None,
            Device::Cpu,
            None,
            hone_engine::models::Quantization::None,
        )
        .unwrap();
        let mut loaded = hone_engine::checkpoint::load(&spec).unwrap();
        loaded.model = Box::new(SlowModel {
            inner: loaded.model,
            forwards,
        });
        LocalModel::start(loaded).unwrap()
    }

    fn chat(max_tokens: usize) -> ChatRequest {
        ChatRequest {
            messages: vec![Message {
                role: Role::User,
                content: "def add(a, b):".into(),
            }],
            n: 2,
            max_tokens,
            sampling: Sampling {
                // One token per step: a long job takes `max_tokens` steps.
                steps: Some(max_tokens),
                block_length: Some(max_tokens),
                ..Sampling::default()
            },
            ..ChatRequest::default()
        }
    }

    /// The agent's budget drops a local job's future: the shared engine thread (hone-serve's
    /// scheduler) drops its candidates before the next step, and the next job runs at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_job_frees_the_engine_for_the_next() {
        let forwards = Arc::new(AtomicUsize::new(0));
        let model = tiny_model(forwards.clone());
        // The long job run to the end: how many forwards it takes.
        let long = model.chat(&chat(128), None).await.unwrap();
        let whole = forwards.swap(0, Ordering::SeqCst);
        assert_eq!(long.candidates.len(), 2);
        assert!(whole >= 20, "{whole} forwards");

        let abandoned =
            tokio::time::timeout(Duration::from_millis(100), model.chat(&chat(128), None)).await;
        assert!(abandoned.is_err(), "the budget ran out first");
        let deltas = Mutex::new(Vec::new());
        let record = |update: StreamUpdate| deltas.lock().unwrap().push(update);
        let next =
            tokio::time::timeout(Duration::from_secs(30), model.chat(&chat(4), Some(&record)))
                .await
                .expect("the engine is free for the next job")
                .unwrap();
        assert_eq!(next.candidates.len(), 2);
        let spent = forwards.load(Ordering::SeqCst) - next.usage.nfe as usize / 2;
        assert!(
            spent < whole,
            "the abandoned job stopped early: {spent} of {whole} forwards"
        );
        // Nothing runs once the next job is answered.
        let idle = forwards.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(forwards.load(Ordering::SeqCst), idle);
        // The streamed text adds up to each candidate's answer.
        let deltas = deltas.into_inner().unwrap();
        for (index, candidate) in next.candidates.iter().enumerate() {
            let streamed: String = deltas
                .iter()
                .filter(|update| update.index == index)
                .map(|update| update.delta.as_str())
                .collect();
            assert_eq!(streamed, candidate.text, "candidate {index}");
        }
    }
}
