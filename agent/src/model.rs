//! The model seam: the small trait through which the agent (and the hooks, batch and refactor
//! commands) reach any generator — the local diffusion engine, an OpenAI-compatible endpoint, or a
//! scripted fake in tests. It owns the request and response types; it does not know how a backend
//! talks to its model.
//!
//! Two kinds of request:
//! - **chat**: messages → `n` candidate texts (stop strings, max tokens, seed, optional streaming);
//! - **infill** (where the backend can): a response *skeleton* of fixed text and holes, each hole with
//!   several candidate lengths in tokens → the skeleton with every hole filled. A diffusion model
//!   fills all holes at once, so the output is well formed by construction.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The OpenAI / chat-template spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Why the agent asks: recorded in transcripts, checked by the scripted backend, ignored by real ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Which files and regions to change.
    Plan,
    /// The edits themselves.
    #[default]
    Edit,
    /// A commit message for a diff.
    CommitMessage,
    /// Anything else (hooks, tests of a backend).
    Other,
}

/// Sampling settings shared by chat and infill requests; `None` means the backend's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Base seed: candidate `i` uses `seed + i` where the backend supports seeds.
    pub seed: Option<u64>,
    /// Diffusion steps (local engine only).
    pub steps: Option<usize>,
    /// Diffusion block length (local engine only).
    pub block_length: Option<usize>,
    /// Confidence threshold for parallel decoding (local engine only).
    pub threshold: Option<f32>,
}

/// Messages in, `n` candidate texts out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// How many independent candidates (at least 1).
    pub n: usize,
    /// Longest answer in tokens.
    pub max_tokens: usize,
    /// Generation stops before any of these strings (they are not part of the text).
    pub stop: Vec<String>,
    pub sampling: Sampling,
    pub purpose: Purpose,
}

/// Why a candidate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End of turn, end of text or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

/// One generated candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub text: String,
    pub finish_reason: FinishReason,
}

/// What generation cost; fields a backend cannot know stay zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Network function evaluations (forward passes) of a diffusion model.
    pub nfe: u64,
    /// Wall time spent in the model call.
    #[serde(with = "duration_secs")]
    pub model_time: Duration,
}

impl Usage {
    /// Add another call's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.nfe += other.nfe;
        self.model_time += other.model_time;
    }
}

/// The answer to a [`ChatRequest`]: exactly `n` candidates, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub candidates: Vec<Candidate>,
    pub usage: Usage,
}

/// A piece of an infill skeleton.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Segment {
    /// Fixed text, reproduced verbatim.
    Text(String),
    /// Text the model writes; each entry of `lengths` (tokens) is tried as its own candidate.
    Hole { lengths: Vec<usize> },
}

/// A prompt plus a response skeleton whose holes the model fills.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InfillRequest {
    /// The conversation that precedes the response (rendered with the chat template).
    pub messages: Vec<Message>,
    /// The assistant's response: fixed text and holes.
    pub skeleton: Vec<Segment>,
    /// Candidates per hole length combination (holes with several lengths multiply the count).
    pub n: usize,
    pub sampling: Sampling,
    pub purpose: Purpose,
}

/// One filled skeleton.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfillCandidate {
    /// The text of each hole, in order (padding/end tokens removed).
    pub holes: Vec<String>,
    /// The whole response: fixed text with the holes filled in.
    pub text: String,
    /// The hole lengths (tokens) this candidate was decoded with.
    pub lengths: Vec<usize>,
}

/// The answer to an [`InfillRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InfillResponse {
    pub candidates: Vec<InfillCandidate>,
    pub usage: Usage,
}

/// Streaming progress of a chat request: the text of candidate `index` so far. Diffusion backends
/// report the committed prefix as it grows, autoregressive ones each delta appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUpdate {
    pub index: usize,
    /// New text appended to candidate `index` since the previous update.
    pub delta: String,
}

/// A callback for [`StreamUpdate`]s; called on the backend's task or thread, so keep it cheap.
pub type StreamCallback<'a> = &'a (dyn Fn(StreamUpdate) + Send + Sync);

/// What a backend is, for progress lines, transcripts and prompt budgeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDescription {
    /// `local`, `openai` or `scripted`.
    pub backend: String,
    /// Model name or checkpoint path.
    pub name: String,
    /// Whether [`Model::infill`] works.
    pub supports_infill: bool,
    /// Longest prompt + answer in tokens, when known.
    pub context_window: Option<usize>,
    /// Candidates per request the agent should default to (e.g. 4 on the local engine, 1 over HTTP).
    pub default_candidates: usize,
}

/// A generator the agent can drive. Implementations must be usable from several tasks at once
/// (`Send + Sync`); they may serialise requests internally.
pub trait Model: Send + Sync {
    /// What this backend is.
    fn describe(&self) -> ModelDescription;

    /// Generate `request.n` candidate answers to the conversation.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, Result<ChatResponse>>;

    /// Fill the holes of a response skeleton. Backends without infill keep this default.
    fn infill<'a>(&'a self, request: &'a InfillRequest) -> BoxFuture<'a, Result<InfillResponse>> {
        let _ = request;
        let backend = self.describe().backend;
        Box::pin(async move {
            Err(crate::Error::Unsupported {
                backend,
                what: "masked infill".to_owned(),
            })
        })
    }

    /// Exact token count of `text` with the model's tokenizer, when the backend has one locally.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }
}

/// Token count of `text`: exact when the model can count, otherwise an estimate of one token per
/// 3.5 characters (code-heavy text under BPE tokenizers averages 3-4; erring high keeps prompts
/// inside the window).
pub fn estimate_tokens(model: &dyn Model, text: &str) -> usize {
    model
        .count_tokens(text)
        .unwrap_or_else(|| (text.chars().count() * 2).div_ceil(7))
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Ok(Duration::try_from_secs_f64(seconds).unwrap_or_default())
    }
}

/// Shared backends (e.g. the scripted one, kept to check it was used up) are models too.
impl<T: Model + ?Sized> Model for std::sync::Arc<T> {
    fn describe(&self) -> ModelDescription {
        (**self).describe()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        (**self).chat(request, stream)
    }

    fn infill<'a>(&'a self, request: &'a InfillRequest) -> BoxFuture<'a, Result<InfillResponse>> {
        (**self).infill(request)
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        (**self).count_tokens(text)
    }
}
