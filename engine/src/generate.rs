//! The engine's high-level generation API, used by `hone generate`: text (or ids, or a chat) in,
//! text and ids out, with `n` candidates, stop strings, multi-segment infill, streaming events,
//! cancellation and usage counts.
//!
//! Text goes through a [`TokenCodec`] (implemented for the checkpoint's tokenizer), so this module
//! also runs on a toy codec in tests. Decoding itself is `sampling`'s job; the engine thread of
//! `hone serve` and `hone run` (hone-serve's scheduler), which needs step-level control, drives
//! `sampling::BatchDecoder` itself with the same pieces: [`candidate_requests`] for the canvases,
//! [`CandidateText`] for the text so far, [`CandidateSlot`] for the finished candidate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::DiffusionModel;
use crate::sampling::cohort::TokenIds;
use crate::sampling::{
    BatchDecoder, FinishReason, Layout, SamplerSettings, SequenceEvent, SequenceRequest,
};
use crate::{Error, Result};

/// Text <-> ids, and chat rendering.
pub trait TokenCodec {
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
    /// Decodes ids, skipping special tokens.
    fn decode(&self, ids: &[u32]) -> Result<String>;
    /// Renders a conversation with the model's chat template, ending with the assistant's turn.
    fn render_chat(&self, _messages: &[(String, String)]) -> Result<String> {
        Err(Error::Unsupported(
            "this tokenizer has no chat template".into(),
        ))
    }
}

impl TokenCodec for crate::tokenizer::TextTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::tokenizer::TextTokenizer::encode(self, text, false)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        crate::tokenizer::TextTokenizer::decode(self, ids, true)
    }

    fn render_chat(&self, messages: &[(String, String)]) -> Result<String> {
        let messages: Vec<crate::tokenizer::ChatMessage> = messages
            .iter()
            .map(|(role, content)| crate::tokenizer::ChatMessage {
                role: role.clone(),
                content: content.clone(),
            })
            .collect();
        crate::tokenizer::TextTokenizer::render_chat(self, &messages, true)
    }
}

impl From<&crate::tokenizer::SpecialTokens> for TokenIds {
    fn from(special: &crate::tokenizer::SpecialTokens) -> Self {
        Self {
            mask: special.mask,
            eos: special.eos,
            end_of_turn: special.end_of_turn.clone(),
            pad: special.pad,
        }
    }
}

/// One piece of a multi-segment infill prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Fixed text, kept as is.
    Text(String),
    /// A hole to fill; several lengths (in tokens) give several candidates, since the right length
    /// is unknown. All holes of a request list the same number of lengths (or exactly one, used
    /// for every variant): variant `j` uses each hole's `j`-th length.
    Hole { lengths: Vec<usize> },
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Plain text; the generation follows it.
    Text(String),
    /// Token ids; the generation follows them.
    Ids(Vec<u32>),
    /// `(role, content)` turns rendered with the model's chat template.
    Chat(Vec<(String, String)>),
    /// Fixed text and holes (infill).
    Segments(Vec<Segment>),
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub settings: SamplerSettings,
    /// Independent samples per variant (seeds `seed, seed + 1, ...`).
    pub candidates: usize,
    pub seed: u64,
    /// Cut the text at the first of these (and stop decoding that candidate early).
    pub stop: Vec<String>,
}

/// One finished candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub index: usize,
    pub seed: u64,
    /// The hole lengths this candidate was decoded with.
    pub hole_lengths: Vec<usize>,
    /// Generated ids (the holes, in order; open-ended generation is cut at the first EOS).
    pub ids: Vec<u32>,
    /// Generated text: the continuation, or for infill the filled holes joined in order.
    pub text: String,
    /// Infill: each hole's text (EOS / padding stripped).
    pub holes: Vec<String>,
    /// Infill: the whole document with the holes filled.
    pub filled: Option<String>,
    pub finish_reason: FinishReason,
    /// Forward passes (NFE) this candidate took part in.
    pub forwards: usize,
}

/// Counts for a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Batched forward passes run (one per step and cohort).
    pub forward_passes: usize,
    /// Sum over candidates of the forwards each took part in (NFE).
    pub nfe: usize,
    #[serde(with = "duration_seconds")]
    pub wall_time: Duration,
}

mod duration_seconds {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Result of [`generate`].
#[derive(Debug, Clone, Serialize)]
pub struct GenerateOutput {
    pub candidates: Vec<Candidate>,
    pub usage: Usage,
}

/// Progress reported while decoding.
#[derive(Debug, Clone)]
pub enum GenerateEvent<'a> {
    Step {
        candidate: usize,
        /// The sampler's event: positions committed by this step.
        event: &'a SequenceEvent,
        /// The whole canvas as it stands (mask ids where nothing is committed yet).
        canvas: &'a [u32],
        /// Text of the committed prefix of the generation (grows monotonically; never contains
        /// text past a stop string or EOS).
        text_so_far: &'a str,
    },
    Finished {
        candidate: usize,
        reason: FinishReason,
    },
}

/// Per-candidate bookkeeping shared with the server: turns a canvas into text so far and final
/// text.
#[derive(Debug, Clone)]
pub struct CandidateText {
    pub layout: Layout,
    pub tokens: TokenIds,
    pub stop: Vec<String>,
    /// Cut open-ended output at the first EOS / end-of-turn id (`SamplerSettings::stop_at_eos`).
    pub cut_at_eos: bool,
}

impl CandidateText {
    /// The committed prefix of the generated ids (up to the first mask; open-ended generation is
    /// cut at the first stop id).
    pub fn committed_prefix(&self, canvas: &[u32]) -> Vec<u32> {
        let stop_ids = self.tokens.stop_ids();
        let mut ids = Vec::new();
        for hole in &self.layout.holes {
            for &token in &canvas[hole.clone()] {
                if token == self.tokens.mask {
                    return ids;
                }
                if self.cut_at_eos && stop_ids.contains(&token) {
                    return ids;
                }
                ids.push(token);
            }
        }
        ids
    }

    /// Generated text of a committed prefix, cut at the first stop string; `true` if one matched.
    pub fn text(&self, codec: Option<&dyn TokenCodec>, ids: &[u32]) -> Result<(String, bool)> {
        let Some(codec) = codec else {
            return Ok((String::new(), false));
        };
        let text = codec.decode(ids)?;
        Ok(cut_at_stop(text, &self.stop))
    }
}

fn cut_at_stop(mut text: String, stop: &[String]) -> (String, bool) {
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    match cut {
        Some(at) => {
            text.truncate(at);
            (text, true)
        }
        None => (text, false),
    }
}

mod candidate;
mod requests;
pub use candidate::CandidateSlot;
pub use requests::{candidate_requests, CandidateCanvas};

/// Generates every candidate of `request`, batching what can share a forward. `on_event` sees each
/// step; setting `cancel` stops all candidates after the current step.
pub fn generate(
    model: &mut dyn DiffusionModel,
    codec: Option<&dyn TokenCodec>,
    tokens: &TokenIds,
    request: &GenerateRequest,
    on_event: &mut dyn FnMut(&GenerateEvent<'_>),
    cancel: Option<&AtomicBool>,
) -> Result<GenerateOutput> {
    let started = Instant::now();
    let (requests, prompt_tokens) = candidate_requests(request, codec, tokens)?;
    let info = model.info().clone();
    let mut decoder = BatchDecoder::new(&info, 0);
    let mut entries = Vec::new();
    for (index, (sequence, text, lengths)) in requests.into_iter().enumerate() {
        let seed = sequence.seed;
        let id = decoder.add(sequence)?;
        entries.push(Entry {
            id,
            slot: CandidateSlot {
                index,
                seed,
                lengths,
                text,
                stopped_by_string: false,
            },
            streamed: String::new(),
        });
    }
    while !decoder.is_idle() {
        if cancel.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
            for entry in &entries {
                if let Some(event) = decoder.remove(entry.id) {
                    on_event(&GenerateEvent::Finished {
                        candidate: entry.slot.index,
                        reason: event.finished.unwrap_or(FinishReason::Cancelled),
                    });
                }
            }
            break;
        }
        let events = decoder.step(model)?;
        for event in &events {
            let Some(entry) = entries.iter_mut().find(|entry| entry.id == event.sequence) else {
                continue;
            };
            let canvas = decoder.canvas(entry.id).unwrap_or(&[]).to_vec();
            let prefix = entry.slot.text.committed_prefix(&canvas);
            let (text, stopped) = entry.slot.text.text(codec, &prefix)?;
            entry.streamed = text;
            on_event(&GenerateEvent::Step {
                candidate: entry.slot.index,
                event,
                canvas: &canvas,
                text_so_far: &entry.streamed,
            });
            if stopped && event.finished.is_none() && entry.slot.text.layout.open_ended {
                entry.slot.stopped_by_string = true;
                decoder.remove(entry.id);
            }
            if let Some(reason) = event.finished {
                on_event(&GenerateEvent::Finished {
                    candidate: entry.slot.index,
                    reason,
                });
            }
        }
    }

    let mut candidates = Vec::new();
    let mut usage = Usage {
        prompt_tokens,
        forward_passes: decoder.forward_passes(),
        ..Usage::default()
    };
    for entry in entries {
        let canvas = decoder.canvas(entry.id).unwrap_or(&[]).to_vec();
        let forwards = decoder.forwards(entry.id).unwrap_or(0);
        candidates.push(entry.slot.finish(&canvas, codec, forwards)?);
    }
    usage.generated_tokens = candidates.iter().map(|c| c.ids.len()).sum();
    usage.nfe = candidates.iter().map(|c| c.forwards).sum();
    usage.wall_time = started.elapsed();
    Ok(GenerateOutput { candidates, usage })
}

struct Entry {
    id: u64,
    slot: CandidateSlot,
    streamed: String,
}

/// Runs a batch of prompts given as ids exactly as the reference samplers receive them (one
/// batch, optional left-padding attention mask) and returns the full sequences (prompt and
/// generation), as in the parity fixtures' `expected_ids`.
pub fn sample_ids(
    model: &mut dyn DiffusionModel,
    tokens: &TokenIds,
    prompts: &[Vec<u32>],
    attention_mask: Option<&[Vec<u32>]>,
    settings: &SamplerSettings,
    seed: u64,
) -> Result<Vec<Vec<u32>>> {
    let info = model.info().clone();
    let first = prompts
        .first()
        .ok_or_else(|| Error::InvalidInput("no prompts given".into()))?;
    settings.validate_generation(first.len(), info.max_sequence_length)?;
    let mut requests = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if prompt.len() != first.len() {
            return Err(Error::InvalidInput(
                "all prompts of a batch must have the same (padded) length".into(),
            ));
        }
        let layout = if settings.sampler.is_block_causal() {
            if attention_mask.is_some() {
                return Err(Error::InvalidInput(format!(
                    "the {} sampler takes no padding mask (its references run unpadded prompts of one length)",
                    settings.sampler.name()
                )));
            }
            Layout::block_aligned(
                prompt,
                settings.gen_length,
                settings.block_length,
                tokens.mask,
            )?
        } else {
            Layout::generation(
                prompt,
                settings.gen_length,
                settings.block_length,
                tokens.mask,
            )?
        };
        let attention_mask = match attention_mask {
            Some(masks) => {
                let mask = masks.get(i).ok_or_else(|| {
                    Error::InvalidInput("the attention mask has fewer rows than the prompts".into())
                })?;
                if mask.len() != prompt.len() {
                    return Err(Error::InvalidInput(
                        "an attention mask row differs in length from its prompt".into(),
                    ));
                }
                Some(
                    mask.iter()
                        .copied()
                        .chain(std::iter::repeat_n(1, settings.gen_length))
                        .collect(),
                )
            }
            None => None,
        };
        requests.push(SequenceRequest {
            layout,
            attention_mask,
            settings: settings.clone(),
            seed: seed.wrapping_add(i as u64),
            tokens: tokens.clone(),
        });
    }
    let mut cohort = crate::sampling::Cohort::new(&info, 0, requests)?;
    while !cohort.is_done() {
        cohort.step(model)?;
    }
    (0..prompts.len() as u64)
        .map(|id| {
            cohort
                .canvas(id)
                .map(<[u32]>::to_vec)
                .ok_or_else(|| Error::InvalidInput("internal: lost a sequence".into()))
        })
        .collect()
}
