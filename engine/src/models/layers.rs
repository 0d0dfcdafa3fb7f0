//! Building blocks shared by the model files (linear layers are `linear`'s): RMSNorm in f32,
//! rotary tables computed in f32 (whole or partial rotary), the attention bias (key padding and the
//! block-causal mask), grouped-query attention without repeating keys, and the per-layer key/value
//! cache plumbing behind [`CacheMode`].
//!
//! Numerics follow the PyTorch references: norms and RoPE tables in f32, attention scores upcast to
//! f32 for the mask and the softmax, everything else in the model dtype.

use candle_core::{DType, Device, Tensor};

pub use super::linear::{load_layers, Embedding, FusedLinear, Linear, Weights};

use crate::model::{CacheMode, ForwardInput, ModelInfo};
use crate::{Error, Result};

/// RMSNorm computed in f32 whatever the model dtype (both references upcast), weight kept in f32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f32,
}

impl RmsNorm {
    pub fn load(vb: Weights, size: usize, eps: f64, bias: bool) -> candle_core::Result<Self> {
        let weight = vb.get_with_dtype(size, "weight", DType::F32)?;
        let bias = if bias {
            Some(vb.get_with_dtype(size, "bias", DType::F32)?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            eps: eps as f32,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?.contiguous()?;
        let y = candle_nn::ops::rms_norm(&x32, &self.weight, self.eps)?;
        let y = match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        };
        y.to_dtype(dtype)
    }
}

/// Inverse frequencies of NeoX-style RoPE (`rotate_half`: the two halves of each head rotate
/// together), computed in f32 exactly as `1 / theta^(2i/d)` is in the references.
#[derive(Debug, Clone)]
pub struct Rotary {
    inv_freq: Vec<f32>,
}

impl Rotary {
    pub fn new(head_dim: usize, theta: f64) -> Self {
        let theta = theta as f32;
        let inv_freq = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / theta.powf(i as f32 / head_dim as f32))
            .collect();
        Self { inv_freq }
    }

    /// `cos`, `sin` f32 `[n, head_dim / 2]` for positions `start..start + n` (shared by every row).
    pub fn range(&self, start: usize, n: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let positions: Vec<f32> = (start..start + n).map(|p| p as f32).collect();
        let (cos, sin) = self.tables(&positions);
        let half = self.inv_freq.len();
        Ok((
            Tensor::from_vec(cos, (n, half), device)?,
            Tensor::from_vec(sin, (n, half), device)?,
        ))
    }

    /// `cos`, `sin` f32 `[batch, n, head_dim / 2]` for per-row positions.
    pub fn rows(&self, positions: &[Vec<f32>], device: &Device) -> Result<(Tensor, Tensor)> {
        let batch = positions.len();
        let n = positions.first().map_or(0, Vec::len);
        let flat: Vec<f32> = positions.iter().flatten().copied().collect();
        let (cos, sin) = self.tables(&flat);
        let half = self.inv_freq.len();
        Ok((
            Tensor::from_vec(cos, (batch, n, half), device)?,
            Tensor::from_vec(sin, (batch, n, half), device)?,
        ))
    }

    fn tables(&self, positions: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut cos = Vec::with_capacity(positions.len() * self.inv_freq.len());
        let mut sin = Vec::with_capacity(cos.capacity());
        for &p in positions {
            for &f in &self.inv_freq {
                // f32 product as in the references (`einsum` / `inv_freq @ position_ids` in f32).
                let angle = p * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        (cos, sin)
    }
}

/// Apply RoPE to `x` laid out `[batch, len, heads, head_dim]`, rotating in the dtype of `cos`/`sin`
/// (f32 tables for LLaDA's `rope_full_precision`, the model dtype for Dream) and returning `x`'s.
pub fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(cos.dtype())?.contiguous()?;
    candle_nn::rotary_emb::rope_thd(&x, cos, sin)?.to_dtype(dtype)
}

/// RoPE on the first `rot_dim` dims of each head of `x` `[batch, len, heads, head_dim]` (partial
/// rotary: `cos`/`sin` are `rot_dim / 2` wide, from [`Rotary::new`]`(rot_dim, theta)`), the rest passing
/// through unchanged, as the references' `q[..., :rotary_dim]` / `q[..., rotary_dim:]`.
pub fn apply_partial_rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    rot_dim: usize,
) -> candle_core::Result<Tensor> {
    let head_dim = x.dim(3)?;
    if rot_dim >= head_dim {
        return apply_rope(x, cos, sin);
    }
    let rotated = apply_rope(&x.narrow(3, 0, rot_dim)?, cos, sin)?;
    let rest = x.narrow(3, rot_dim, head_dim - rot_dim)?;
    Tensor::cat(&[&rotated, &rest], 3)
}

/// Additive bias of a masked key: a large finite value (as LLaDA's `finfo.min`), halved so that the
/// padding and block-causal biases added together stay finite: a query row with every key masked
/// (a padded position) keeps finite scores instead of NaN.
pub const MASKED: f32 = f32::MIN / 2.0;

/// What one forward pass needs besides the ids, validated once for all layers.
#[derive(Debug)]
pub struct Prepared {
    pub batch: usize,
    pub len: usize,
    pub span_start: usize,
    pub total_len: usize,
    /// Number of keys every layer attends to: `total_len`, or `span_start + len` for
    /// [`CacheMode::Extend`].
    pub keys: usize,
    /// Host copy of the key mask `[batch][total_len]` when something is padded.
    pub mask: Option<Vec<Vec<f32>>>,
    /// Additive f32 bias `[batch | 1, 1, 1, len | 1, keys]` (see [`attention`]): 0 for attended keys,
    /// [`MASKED`] for padded keys and keys of later blocks under `block_causal`; `None` when nothing
    /// is masked.
    pub bias: Option<Tensor>,
}

/// Check ids, span, mask and cache against the model before any work is done, and build the
/// attention bias (padding and block-causal mask).
pub fn prepare(
    input: &ForwardInput<'_>,
    info: &ModelInfo,
    embedding_rows: usize,
    device: &Device,
) -> Result<Prepared> {
    let (batch, len) = input.input_ids.dims2().map_err(|_| {
        Error::InvalidInput(format!(
            "input_ids must be a 2-D [batch, len] tensor, got shape {:?}",
            input.input_ids.dims()
        ))
    })?;
    if batch == 0 || len == 0 {
        return Err(Error::InvalidInput(format!(
            "input_ids is empty (shape [{batch}, {len}]): pass at least one token"
        )));
    }
    let total_len = input.total_len;
    let span_start = input.span_start;
    if span_start + len > total_len {
        return Err(Error::InvalidInput(format!(
            "span [{span_start}, {}) does not fit a sequence of {total_len} tokens",
            span_start + len
        )));
    }
    if total_len > info.max_sequence_length {
        return Err(Error::InvalidInput(format!(
            "sequence of {total_len} tokens is longer than the model's maximum of {}",
            info.max_sequence_length
        )));
    }
    if input.block_causal == Some(0) {
        return Err(Error::InvalidInput(
            "block_causal block size must be at least 1".into(),
        ));
    }
    let max_id = input
        .input_ids
        .to_dtype(DType::U32)?
        .max_all()?
        .to_scalar::<u32>()? as usize;
    if max_id >= embedding_rows {
        return Err(Error::InvalidInput(format!(
            "input id {max_id} is out of range: the model's embedding has {embedding_rows} rows"
        )));
    }
    check_cache(
        &input.cache,
        info.num_layers,
        batch,
        span_start,
        len,
        total_len,
    )?;
    let keys = match input.cache {
        CacheMode::Extend(_) => span_start + len,
        _ => total_len,
    };

    let mut mask = None;
    let mut bias = None;
    if let Some(m) = input.attention_mask {
        let dims = m.dims();
        if dims != [batch, total_len] {
            return Err(Error::InvalidInput(format!(
                "attention_mask must be [batch, total_len] = [{batch}, {total_len}], got {dims:?}"
            )));
        }
        let rows = m.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        if rows.iter().any(|row| row[..keys].contains(&0.0)) {
            let values: Vec<f32> = rows
                .iter()
                .flat_map(|row| row[..keys].iter())
                .map(|&v| if v == 0.0 { MASKED } else { 0.0 })
                .collect();
            bias = Some(Tensor::from_vec(values, (batch, 1, 1, 1, keys), device)?);
        }
        if rows.iter().flatten().any(|&v| v == 0.0) {
            mask = Some(rows);
        }
    }
    if let Some(block) = input.block_causal {
        // Only needed when some key lies in a later block than some query.
        if (keys - 1) / block > span_start / block {
            let query_blocks: Vec<f32> = (span_start..span_start + len)
                .map(|i| (i / block) as f32)
                .collect();
            let key_blocks: Vec<f32> = (0..keys).map(|j| (j / block) as f32).collect();
            let query_blocks = Tensor::from_vec(query_blocks, (len, 1), device)?;
            let key_blocks = Tensor::from_vec(key_blocks, (1, keys), device)?;
            // Block ids are whole numbers: a key in a later block differs by at least 1.
            let later = key_blocks
                .broadcast_sub(&query_blocks)?
                .clamp(0f32, 1f32)?
                .affine(f64::from(MASKED), 0.0)?
                .reshape((1, 1, 1, len, keys))?;
            bias = Some(match bias {
                Some(padding) => padding.broadcast_add(&later)?,
                None => later,
            });
        }
    }
    Ok(Prepared {
        batch,
        len,
        span_start,
        total_len,
        keys,
        mask,
        bias,
    })
}

fn check_cache(
    cache: &CacheMode<'_>,
    num_layers: usize,
    batch: usize,
    span_start: usize,
    len: usize,
    total_len: usize,
) -> Result<()> {
    let whole = |mode: &str| {
        if span_start != 0 || len != total_len {
            Err(Error::InvalidInput(format!(
                "cache mode {mode} runs over the whole sequence: span_start must be 0 and the ids must cover all {total_len} tokens"
            )))
        } else {
            Ok(())
        }
    };
    let filled = |layers: &[Option<(Tensor, Tensor)>], need: usize, mode: &str| -> Result<()> {
        if layers.len() != num_layers {
            return Err(Error::InvalidInput(format!(
                "{mode} cache has {} layers, the model has {num_layers}: record it with this model first",
                layers.len()
            )));
        }
        for layer in layers {
            let (k, _) = layer.as_ref().ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{mode} cache is empty: record it first (CacheMode::Record)"
                ))
            })?;
            let (b, _, cached_len, _) = k.dims4()?;
            if b != batch || cached_len < need {
                return Err(Error::InvalidInput(format!(
                    "{mode} cache holds [{b} rows, {cached_len} positions], this pass needs [{batch}, {need}]"
                )));
            }
        }
        Ok(())
    };
    match cache {
        CacheMode::None => whole("none"),
        CacheMode::Record(_) => whole("record"),
        CacheMode::Prefix(c) => {
            if span_start + len != total_len {
                return Err(Error::InvalidInput(format!(
                    "prefix cache: the span must run to the end of the sequence ({span_start} + {len} != {total_len})"
                )));
            }
            filled(&c.layers, span_start, "prefix")
        }
        CacheMode::Dual(c) => {
            filled(&c.layers, total_len, "dual")?;
            match c.layers.first().and_then(|l| l.as_ref()) {
                Some((k, _)) if k.dim(2)? != total_len => Err(Error::InvalidInput(format!(
                    "dual cache holds {} positions, the sequence has {total_len}",
                    k.dim(2)?
                ))),
                _ => Ok(()),
            }
        }
        CacheMode::Extend(c) => {
            if span_start == 0 {
                // A fresh (or reused) cache: the span starts the sequence, nothing is read.
                return if c.is_empty() {
                    Ok(())
                } else {
                    Err(Error::InvalidInput(format!(
                        "extend cache holds {} positions but the span starts at 0: truncate it first (KvCache::truncate)",
                        c.len()
                    )))
                };
            }
            for layer in c.layers.iter().flatten() {
                let cached = layer.0.dim(2)?;
                if cached != span_start {
                    return Err(Error::InvalidInput(format!(
                        "extend cache holds {cached} positions, the span starts at {span_start}: \
                         the cache must end where the span starts (KvCache::truncate)"
                    )));
                }
            }
            filled(&c.layers, span_start, "extend")
        }
    }
}

/// Keys and values this layer attends to, `[batch, kv_heads, keys, head_dim]`, given the span's fresh
/// ones; records or updates the cache as the mode says.
pub fn layer_keys_values(
    cache: &mut CacheMode<'_>,
    layer: usize,
    span_start: usize,
    k: Tensor,
    v: Tensor,
) -> Result<(Tensor, Tensor)> {
    let missing = || Error::InvalidInput(format!("key/value cache has no entry for layer {layer}"));
    match cache {
        CacheMode::None => Ok((k, v)),
        CacheMode::Record(c) => {
            if c.layers.len() <= layer {
                c.layers.resize(layer + 1, None);
            }
            c.layers[layer] = Some((k.clone(), v.clone()));
            Ok((k, v))
        }
        CacheMode::Prefix(c) => {
            let (ck, cv) = c
                .layers
                .get(layer)
                .and_then(|l| l.as_ref())
                .ok_or_else(missing)?;
            if span_start == 0 {
                return Ok((k, v));
            }
            let k = Tensor::cat(&[&ck.narrow(2, 0, span_start)?, &k], 2)?;
            let v = Tensor::cat(&[&cv.narrow(2, 0, span_start)?, &v], 2)?;
            Ok((k, v))
        }
        CacheMode::Dual(c) => {
            let entry = c.layers.get_mut(layer).ok_or_else(missing)?;
            let (ck, cv) = entry.as_ref().ok_or_else(missing)?;
            let k = splice(ck, &k, span_start)?;
            let v = splice(cv, &v, span_start)?;
            *entry = Some((k.clone(), v.clone()));
            Ok((k, v))
        }
        CacheMode::Extend(c) => {
            if c.layers.len() <= layer {
                c.layers.resize(layer + 1, None);
            }
            let entry = &mut c.layers[layer];
            let (k, v) = match entry.as_ref() {
                Some((ck, cv)) if span_start > 0 => {
                    (Tensor::cat(&[ck, &k], 2)?, Tensor::cat(&[cv, &v], 2)?)
                }
                _ => (k, v),
            };
            *entry = Some((k.clone(), v.clone()));
            Ok((k, v))
        }
    }
}

/// `cached` with positions `[start, start + fresh_len)` along dim 2 replaced by `fresh` (one copy).
fn splice(cached: &Tensor, fresh: &Tensor, start: usize) -> Result<Tensor> {
    let total = cached.dim(2)?;
    let n = fresh.dim(2)?;
    let mut parts = Vec::with_capacity(3);
    if start > 0 {
        parts.push(cached.narrow(2, 0, start)?);
    }
    parts.push(fresh.clone());
    if start + n < total {
        parts.push(cached.narrow(2, start + n, total - start - n)?);
    }
    Ok(Tensor::cat(&parts, 2)?)
}

/// Scaled dot-product attention, grouped-query without copying keys: `q` `[batch, len, heads,
/// head_dim]`, `k`/`v` `[batch, kv_heads, keys, head_dim]` contiguous, `bias` the additive f32 mask
/// `[batch | 1, 1, 1, len | 1, keys]` of [`Prepared::bias`]. Returns `[batch, len, heads * head_dim]`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (batch, len, heads, head_dim) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    let keys = k.dim(2)?;
    let group = heads / kv_heads;
    let dtype = q.dtype();
    // Query head h uses key head h / group (`repeat_interleave` in the references), so grouping the
    // query heads per key head lets one matmul serve the whole group.
    let q = q
        .reshape((batch, len, kv_heads, group, head_dim))?
        .permute((0, 2, 3, 1, 4))?
        .contiguous()?
        .reshape((batch, kv_heads, group * len, head_dim))?;
    let q = (q * (1.0 / (head_dim as f64).sqrt()))?;
    let scores = q.matmul(&k.t()?)?.to_dtype(DType::F32)?;
    let scores = match bias {
        Some(bias) => scores
            .reshape((batch, kv_heads, group, len, keys))?
            .broadcast_add(bias)?
            .reshape((batch, kv_heads, group * len, keys))?,
        None => scores,
    };
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;
    probs
        .matmul(v)?
        .reshape((batch, kv_heads, group, len, head_dim))?
        .permute((0, 3, 1, 2, 4))?
        .contiguous()?
        .reshape((batch, len, heads * head_dim))
}

/// `[batch, len, heads * head_dim]` -> `[batch, len, heads, head_dim]`.
pub fn split_heads(x: &Tensor, heads: usize, head_dim: usize) -> candle_core::Result<Tensor> {
    let (batch, len, _) = x.dims3()?;
    x.reshape((batch, len, heads, head_dim))
}

/// `[batch, len, kv_heads, head_dim]` -> contiguous `[batch, kv_heads, len, head_dim]` (cache layout).
pub fn heads_first(x: &Tensor) -> candle_core::Result<Tensor> {
    x.transpose(1, 2)?.contiguous()
}
