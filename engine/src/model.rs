//! The seam between model files and samplers: one forward pass of a masked-diffusion transformer over
//! a span of the sequence, bidirectional or block-causal (block diffusion: LLaDA2), optionally reading
//! and writing a per-layer key/value cache.
//!
//! Model files (`models/*.rs`) implement [`DiffusionModel`]; samplers use only this trait, so they can
//! be tested with a toy model. The model returns *raw* logits: the shift by one position of Dream and
//! Open-dCoder is applied by the sampler (`sampling`), in one clearly named place.

use candle_core::{DType, Device, Tensor};

use crate::Result;

/// The architecture families the engine implements (`--arch` names in [`Architecture::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// LLaDA-8B, LLaDA-1.5, d3LLM-LLaDA (`models/llada.rs`).
    Llada,
    /// Dream-v0, Dream-Coder, DiffuCoder, d3LLM-Dream (`models/dream.rs`).
    Dream,
    /// Open-dCoder: a bidirectional Qwen2 (`models/open_dcoder.rs`).
    OpenDcoder,
    /// LLaDA-MoE-7B-A1B (`models/llada_moe.rs`).
    LladaMoe,
    /// LLaDA2.0 / LLaDA2.1 mini and flash: MoE, block diffusion (`models/llada2.rs`).
    Llada2,
}

impl Architecture {
    /// Every family, in the order `--arch` lists them.
    pub const ALL: [Architecture; 5] = [
        Architecture::Llada,
        Architecture::Dream,
        Architecture::OpenDcoder,
        Architecture::LladaMoe,
        Architecture::Llada2,
    ];

    /// The `--arch` / JSON name (`llada`, `dream`, `open-dcoder`, `llada-moe`, `llada2`).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llada => "llada",
            Architecture::Dream => "dream",
            Architecture::OpenDcoder => "open-dcoder",
            Architecture::LladaMoe => "llada-moe",
            Architecture::Llada2 => "llada2",
        }
    }

    /// Whether the family is trained for block diffusion: block-causal attention, a block's keys and
    /// values never change once it is finished (so a per-block KV cache is exact).
    pub fn block_causal(self) -> bool {
        matches!(self, Architecture::Llada2)
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    /// Dream, Open-dCoder: `logits[i]` predicts token `i` from position `i - 1` (see `sampling`).
    pub shift_logits: bool,
    /// Block diffusion (LLaDA2): the family is trained with block-causal attention; samplers pass
    /// [`ForwardInput::block_causal`] and may keep finished blocks in a [`CacheMode::Extend`] cache.
    pub block_causal: bool,
    /// Weights of the whole model (embeddings and head included), from the config's shapes.
    pub total_parameters: u64,
    /// Weights one token passes through: the total less the experts it is not routed to (equal to
    /// `total_parameters` for dense families).
    pub active_parameters: u64,
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

    /// Keep only positions `[0, len)` of every layer (no-op when the cache is not longer).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        for layer in &mut self.layers {
            let Some((k, v)) = layer.as_ref() else {
                continue;
            };
            let cached = k.dim(2)?;
            if len == 0 {
                *layer = None;
            } else if len < cached {
                *layer = Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?));
            }
        }
        Ok(())
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
    /// Growing cache (block diffusion): the cache holds exactly positions `[0, span_start)` (empty
    /// when `span_start == 0`); the span's keys and values are computed attending to cache + span
    /// (under the mask) and appended, so afterwards `cache.len() == span_start + n`. Positions after
    /// the span are not attended. Roll back with [`KvCache::truncate`].
    Extend(&'a mut KvCache),
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
    /// `None`: bidirectional. `Some(b)`: block-causal over absolute positions with blocks of `b`
    /// tokens from position 0 (position `i` attends to `j` iff `j / b <= i / b`), combined with the
    /// padding mask.
    pub block_causal: Option<usize>,
    /// Rows of the span (indices into `0..n`, ascending and distinct) whose logits are wanted, or
    /// `None` for every row. The final norm and the output head run on these rows only: the head
    /// over a 126k-152k vocabulary costs more than a layer, and a sampler needs only the rows that
    /// predict still-masked positions (with Dream's shift: the rows before them).
    pub logits_rows: Option<&'a [usize]>,
}

/// A masked-diffusion language model: one forward pass per denoising step.
pub trait DiffusionModel: Send {
    fn info(&self) -> &ModelInfo;
    fn device(&self) -> &Device;
    /// The dtype of weights and activations (logits are always returned in f32).
    fn dtype(&self) -> DType;
    /// Raw, unshifted logits, f32 `[batch, rows, logits_width]`: for every position of the span
    /// (`rows = n`), or for [`ForwardInput::logits_rows`] in that order.
    fn forward(&mut self, input: ForwardInput<'_>) -> Result<Tensor>;
}
