//! Dream, "Dream 7B: Diffusion Large Language Models" (Ye et al., 2025, arXiv:2508.15487): a Qwen2.5
//! transformer turned bidirectional and trained as a masked diffusion model. The same file serves
//! Dream-v0 Base/Instruct, Dream-Coder and DiffuCoder, which share `modeling_dream.py`.
//!
//! Reference implementation: `modeling_dream.py` of the Dream-org checkpoints (`DreamModel`,
//! `DreamSdpaAttention`, `DreamRMSNorm`). Tensor names are Qwen2's: `model.embed_tokens`,
//! `model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
//! mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head` (absent with `tie_word_embeddings`). q/k/v have
//! biases; attention is grouped-query and never causal. RMSNorm runs in f32; the RoPE tables are
//! computed in f32 and applied in the model dtype, as transformers does.
//!
//! Logits come out raw: Dream's sampler reads `logits[i - 1]` for token `i`; that shift lives in
//! `sampling`, not here. Padding: position ids are `cumsum(mask) - 1` with pads set to 1, and padded
//! keys are masked. Rows of padded *queries* are never read; they attend to the real keys here (the
//! reference masks them entirely), which keeps them finite.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::layers::{self, Embedding, FusedLinear, Linear, RmsNorm, Rotary, Weights};
use crate::model::{Architecture, DiffusionModel, ForwardInput, ModelInfo};
use crate::{Error, Result};

fn default_act() -> String {
    "silu".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_len() -> usize {
    32_768
}

/// The fields of Dream's `config.json` that shape the network (`configuration_dream.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_max_len")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Refuse options the reference does not implement either, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.hidden_act != "silu" {
            return Err(Error::Unsupported(format!(
                "Dream config: hidden_act `{}` is not supported (only `silu`)",
                self.hidden_act
            )));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(Error::Unsupported(
                "Dream config: rope_scaling is not supported".into(),
            ));
        }
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0
            || !self.hidden_size.is_multiple_of(heads)
            || kv == 0
            || !heads.is_multiple_of(kv)
        {
            return Err(Error::Checkpoint(format!(
                "Dream config: hidden_size {} / num_attention_heads {heads} / num_key_value_heads {kv} do not divide evenly",
                self.hidden_size
            )));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(Error::Checkpoint(format!(
                "Dream config: head size {} is odd",
                self.head_dim()
            )));
        }
        Ok(())
    }

    /// Number of weights, from the shapes.
    pub fn parameter_count(&self) -> u64 {
        let d = self.hidden_size as u64;
        let q = (self.num_attention_heads * self.head_dim()) as u64;
        let kv = (self.kv_heads() * self.head_dim()) as u64;
        let mlp = self.intermediate_size as u64;
        let per_layer = d * q + 2 * d * kv + q * d + 3 * d * mlp + 2 * d + q + 2 * kv;
        let embedding = self.vocab_size as u64 * d;
        let head = if self.tie_word_embeddings {
            0
        } else {
            embedding
        };
        embedding + head + self.num_hidden_layers as u64 * per_layer + d
    }

    /// The facts of this config as `architecture` (Dream, or Open-dCoder which shares the network).
    pub fn info_as(&self, architecture: Architecture) -> ModelInfo {
        let parameters = self.parameter_count();
        ModelInfo {
            architecture,
            vocab_size: self.vocab_size,
            logits_width: self.vocab_size,
            max_sequence_length: self.max_position_embeddings,
            shift_logits: true,
            block_causal: false,
            total_parameters: parameters,
            active_parameters: parameters,
            num_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
        }
    }

    pub fn info(&self) -> ModelInfo {
        self.info_as(Architecture::Dream)
    }
}

#[derive(Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    /// `q_proj`, `k_proj`, `v_proj` packed into one matmul.
    qkv: FusedLinear,
    o_proj: Linear,
    post_attention_layernorm: RmsNorm,
    /// `gate_proj` and `up_proj` packed into one matmul.
    gate_up: FusedLinear,
    down_proj: Linear,
}

impl Layer {
    fn load(vb: Weights, cfg: &Config) -> candle_core::Result<Self> {
        let d = cfg.hidden_size;
        let kv_dim = cfg.kv_heads() * cfg.head_dim();
        let q_dim = cfg.num_attention_heads * cfg.head_dim();
        let attn = vb.pp("self_attn");
        let mlp = vb.pp("mlp");
        Ok(Self {
            input_layernorm: RmsNorm::load(vb.pp("input_layernorm"), d, cfg.rms_norm_eps, false)?,
            qkv: FusedLinear::load(
                &[
                    (attn.pp("q_proj"), q_dim),
                    (attn.pp("k_proj"), kv_dim),
                    (attn.pp("v_proj"), kv_dim),
                ],
                d,
                true,
            )?,
            o_proj: Linear::load(attn.pp("o_proj"), q_dim, d, false)?,
            post_attention_layernorm: RmsNorm::load(
                vb.pp("post_attention_layernorm"),
                d,
                cfg.rms_norm_eps,
                false,
            )?,
            gate_up: FusedLinear::load(
                &[
                    (mlp.pp("gate_proj"), cfg.intermediate_size),
                    (mlp.pp("up_proj"), cfg.intermediate_size),
                ],
                d,
                false,
            )?,
            down_proj: Linear::load(mlp.pp("down_proj"), cfg.intermediate_size, d, false)?,
        })
    }
}

/// Position ids of a padded row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddedPositions {
    /// Dream's sampler: `cumsum(mask) - 1`, pads at 1 (real tokens count from 0 after left padding).
    Cumulative,
    /// transformers' Qwen2 default when no position ids are passed: `0..L` whatever the mask.
    Index,
}

/// A Dream-family checkpoint ready to run.
#[derive(Debug)]
pub struct Model {
    config: Config,
    padded_positions: PaddedPositions,
    info: ModelInfo,
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rotary: Rotary,
    device: Device,
    dtype: DType,
}

impl Model {
    /// Build from a `VarBuilder` rooted at the checkpoint's top level.
    pub fn load(config: Config, vb: Weights) -> Result<Self> {
        let info = config.info();
        Self::load_as(config, info, PaddedPositions::Cumulative, vb)
    }

    /// Build the same network under another family's facts (Open-dCoder shares Dream's layers).
    pub fn load_as(
        config: Config,
        info: ModelInfo,
        padded_positions: PaddedPositions,
        vb: Weights,
    ) -> Result<Self> {
        config.validate()?;
        let dtype = vb.dtype();
        let device = vb.device().clone();
        let m = vb.pp("model");
        let embed_tokens =
            Embedding::load(m.pp("embed_tokens"), config.vocab_size, config.hidden_size)?;
        let lm_head = if config.tie_word_embeddings {
            Linear::tied_head(&embed_tokens, &vb)?
        } else {
            Linear::load_head(
                vb.pp("lm_head"),
                config.hidden_size,
                config.vocab_size,
                false,
            )?
        };
        let embed_tokens = embed_tokens.compact(&vb)?;
        let layers = layers::load_layers(config.num_hidden_layers, |i| {
            Layer::load(m.pp("layers").pp(i), &config)
        })?;
        let norm = RmsNorm::load(m.pp("norm"), config.hidden_size, config.rms_norm_eps, false)?;
        let rotary = Rotary::new(config.head_dim(), config.rope_theta);
        Ok(Self {
            config,
            padded_positions,
            info,
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary,
            device,
            dtype,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Dream's position ids for a padded row (`generation_utils.py`): `cumsum(mask) - 1`, pads at 1.
fn padded_positions(mask: &[f32]) -> Vec<f32> {
    let mut seen = 0.0f32;
    mask.iter()
        .map(|&m| {
            if m == 0.0 {
                1.0
            } else {
                seen += 1.0;
                seen - 1.0
            }
        })
        .collect()
}

impl DiffusionModel for Model {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn forward(&mut self, mut input: ForwardInput<'_>) -> Result<Tensor> {
        let prep = layers::prepare(&input, &self.info, self.config.vocab_size, &self.device)?;
        let cfg = &self.config;
        let (heads, kv_heads, head_dim) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_dim());
        let (cos, sin) = match &prep.mask {
            Some(rows) if self.padded_positions == PaddedPositions::Cumulative => {
                let positions: Vec<Vec<f32>> = rows
                    .iter()
                    .map(|row| {
                        padded_positions(row)[prep.span_start..prep.span_start + prep.len].to_vec()
                    })
                    .collect();
                self.rotary.rows(&positions, &self.device)?
            }
            _ => self.rotary.range(prep.span_start, prep.len, &self.device)?,
        };
        // transformers casts the f32 tables to the activations' dtype and rotates there.
        let (cos, sin) = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);

        let mut x = self.embed_tokens.forward(input.input_ids)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(&x)?;
            let [q, k, v] = layer.qkv.forward_n(&h)?;
            let q = layers::split_heads(&q, heads, head_dim)?;
            let k = layers::split_heads(&k, kv_heads, head_dim)?;
            let v = layers::split_heads(&v, kv_heads, head_dim)?;
            let q = layers::apply_rope(&q, &cos, &sin)?;
            let k = layers::heads_first(&layers::apply_rope(&k, &cos, &sin)?)?;
            let v = layers::heads_first(&v)?;
            let (k, v) = layers::layer_keys_values(&mut input.cache, i, prep.span_start, k, v)?;
            let att = layers::attention(&q, &k, &v, prep.bias.as_ref())?;
            x = (x + layer.o_proj.forward(&att)?)?;

            let h = layer.post_attention_layernorm.forward(&x)?;
            let [gate, up] = layer.gate_up.forward_n(&h)?;
            let gate = gate.silu()?;
            x = (x + layer.down_proj.forward(&(gate * up)?)?)?;
        }
        let x = self.norm.forward(&x)?;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::padded_positions;

    #[test]
    fn padded_positions_follow_dream() {
        assert_eq!(
            padded_positions(&[0.0, 0.0, 1.0, 1.0, 1.0]),
            vec![1.0, 1.0, 0.0, 1.0, 2.0]
        );
        assert_eq!(padded_positions(&[1.0, 1.0]), vec![0.0, 1.0]);
    }
}
