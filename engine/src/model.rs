//! The seam between model files and samplers: one forward pass of a bidirectional (masked-diffusion)
//! transformer over a span of the sequence, optionally reading and writing a per-layer key/value cache.
//!
//! Model files (`models/llada.rs`, `models/dream.rs`) implement [`DiffusionModel`]; samplers use only
//! this trait, so they can be tested with a toy model. The model returns *raw* logits: Dream's shift by
//! one position is applied by the sampler (`sampling`), in one clearly named place.

use candle_core::{DType, Device, Tensor};

use crate::Result;

/// The architecture families the engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Llada,
    Dream,
}

/// Facts about a loaded model that samplers and callers need.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub architecture: Architecture,
    /// Ids `>= vocab_size` are never valid outputs (LLaDA's logits are `embedding_size` wide).
    pub vocab_size: usize,
    /// Width of the logits the model returns.
    pub logits_width: usize,
    /// Longest sequence the model was trained for (positions beyond it are refused).
    pub max_sequence_length: usize,
    /// Dream: `logits[i]` predicts token `i` from position `i - 1` (see `sampling`).
    pub shift_logits: bool,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// Per-layer keys and values of a whole sequence, `[batch, kv_heads, len, head_dim]` each, after RoPE.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
        }
    }

    /// Length of the cached sequence (0 when empty).
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|layer| layer.as_ref())
            .map_or(0, |(k, _)| k.dims().get(2).copied().unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a forward pass uses the key/value cache (Fast-dLLM's block-wise caching).
#[derive(Debug)]
pub enum CacheMode<'a> {
    /// No cache: the span is the whole sequence (`span_start == 0`).
    None,
    /// The span is the whole sequence; every layer's keys/values are recorded into the cache.
    Record(&'a mut KvCache),
    /// Prefix cache: keys/values of `[0, span_start)` are read from the cache (which may hold more;
    /// only the prefix is used); the span runs from `span_start` to the end of the sequence.
    Prefix(&'a KvCache),
    /// Dual cache: keys/values of the whole sequence come from the cache, with the span's positions
    /// `[span_start, span_start + n)` replaced by freshly computed ones (written back into the cache).
    Dual(&'a mut KvCache),
}

/// One forward pass over `input_ids`, which are the tokens at `[span_start, span_start + n)` of a
/// sequence of `total_len` tokens.
#[derive(Debug)]
pub struct ForwardInput<'a> {
    /// u32 `[batch, n]`.
    pub input_ids: &'a Tensor,
    /// Key mask over the *whole* sequence, `[batch, total_len]` (1 = real token, 0 = padding), or
    /// `None` when nothing is padded. Each family derives its position ids from it (LLaDA: `0..L`
    /// always; Dream: `cumsum(mask) - 1` with pads at 1).
    pub attention_mask: Option<&'a Tensor>,
    pub span_start: usize,
    pub total_len: usize,
    pub cache: CacheMode<'a>,
}

/// A masked-diffusion language model: bidirectional attention, one forward pass per denoising step.
pub trait DiffusionModel: Send {
    fn info(&self) -> &ModelInfo;
    fn device(&self) -> &Device;
    /// The dtype of weights and activations (logits are always returned in f32).
    fn dtype(&self) -> DType;
    /// Raw, unshifted logits, f32 `[batch, n, logits_width]`, for the span's positions.
    fn forward(&mut self, input: ForwardInput<'_>) -> Result<Tensor>;
}
