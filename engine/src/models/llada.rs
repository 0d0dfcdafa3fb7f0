//! LLaDA, "Large Language Diffusion Models" (Nie et al., 2025, arXiv:2502.09992): a bidirectional
//! Llama-style transformer trained as a masked diffusion model.
//!
//! Reference implementation: `modeling_llada.py` / `configuration_llada.py` of the GSAI-ML LLaDA
//! checkpoints (OLMo-derived; `LLaDALlamaBlock`). Tensor names are OLMo's: `model.transformer.wte`,
//! `blocks.{i}.{attn_norm, q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, ff_out}`,
//! `ln_f`, and the head `ff_out` (or `wte` with `weight_tying`). `ff_proj` is the SwiGLU *gate*:
//! `ff_out(silu(ff_proj(x)) * up_proj(x))`. RMSNorm and RoPE run in f32 (`rope_full_precision`).
//! Positions are always `0..L`; padding only masks keys. Logits are `embedding_size` wide and are
//! not shifted.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::layers::{self, Embedding, FusedLinear, Linear, RmsNorm, Rotary, Weights};
use crate::model::{Architecture, DiffusionModel, ForwardInput, ModelInfo};
use crate::{Error, Result};

fn default_true() -> bool {
    true
}
fn default_block_type() -> String {
    "llama".into()
}
fn default_norm_type() -> String {
    "rms".into()
}
fn default_activation() -> String {
    "silu".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_one() -> usize {
    1
}
fn default_max_len() -> usize {
    4096
}

/// The fields of LLaDA's `config.json` that shape the network (`configuration_llada.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub d_model: usize,
    pub n_heads: usize,
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    #[serde(default)]
    pub multi_query_attention: Option<bool>,
    pub n_layers: usize,
    #[serde(default)]
    pub mlp_hidden_size: Option<usize>,
    #[serde(default)]
    pub mlp_ratio: Option<usize>,
    pub vocab_size: usize,
    #[serde(default)]
    pub embedding_size: Option<usize>,
    #[serde(default = "default_max_len")]
    pub max_sequence_length: usize,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub weight_tying: bool,
    #[serde(default)]
    pub include_bias: bool,
    #[serde(default)]
    pub include_qkv_bias: bool,
    #[serde(default)]
    pub bias_for_layer_norm: Option<bool>,
    #[serde(default = "default_norm_type")]
    pub layer_norm_type: String,
    #[serde(default = "default_true")]
    pub layer_norm_with_affine: bool,
    #[serde(default = "default_block_type")]
    pub block_type: String,
    #[serde(default = "default_activation")]
    pub activation_type: String,
    #[serde(default)]
    pub attention_layer_norm: bool,
    #[serde(default = "default_true")]
    pub attention_layer_norm_with_affine: bool,
    #[serde(default)]
    pub scale_logits: bool,
    #[serde(default)]
    pub input_emb_norm: Option<bool>,
    #[serde(default = "default_true")]
    pub rope: bool,
    #[serde(default)]
    pub alibi: bool,
    #[serde(default = "default_one")]
    pub block_group_size: usize,
    #[serde(default = "default_true")]
    pub rope_full_precision: bool,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        match (self.n_kv_heads, self.multi_query_attention) {
            (Some(n), _) => n,
            (None, Some(true)) => 1,
            (None, _) => self.n_heads,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }

    pub fn mlp_hidden(&self) -> usize {
        self.mlp_hidden_size
            .unwrap_or(self.mlp_ratio.unwrap_or(4) * self.d_model)
    }

    pub fn logits_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.vocab_size)
    }

    fn norm_bias(&self) -> bool {
        self.bias_for_layer_norm.unwrap_or(self.include_bias)
    }

    /// Refuse the OLMo options LLaDA checkpoints do not use, naming the field.
    pub fn validate(&self) -> Result<()> {
        let unsupported = |what: String| {
            Err(Error::Unsupported(format!(
                "LLaDA config: {what} is not supported"
            )))
        };
        if self.block_type != "llama" {
            return unsupported(format!("block_type `{}` (only `llama`)", self.block_type));
        }
        if self.layer_norm_type != "rms" {
            return unsupported(format!(
                "layer_norm_type `{}` (only `rms`)",
                self.layer_norm_type
            ));
        }
        if !self.layer_norm_with_affine {
            return unsupported("layer_norm_with_affine = false".into());
        }
        if self.activation_type != "silu" {
            return unsupported(format!(
                "activation_type `{}` (only `silu`)",
                self.activation_type
            ));
        }
        if !self.rope || self.alibi {
            return unsupported("a model without RoPE (alibi or learned positions)".into());
        }
        if self.block_group_size != 1 {
            return unsupported(format!("block_group_size {}", self.block_group_size));
        }
        if self.attention_layer_norm && !self.attention_layer_norm_with_affine {
            return unsupported("attention_layer_norm without affine weights".into());
        }
        let kv = self.kv_heads();
        if self.n_heads == 0
            || !self.d_model.is_multiple_of(self.n_heads)
            || kv == 0
            || !self.n_heads.is_multiple_of(kv)
        {
            return Err(Error::Checkpoint(format!(
                "LLaDA config: d_model {} / n_heads {} / n_kv_heads {kv} do not divide evenly",
                self.d_model, self.n_heads
            )));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(Error::Checkpoint(format!(
                "LLaDA config: head size {} is odd",
                self.head_dim()
            )));
        }
        if self.logits_width() < self.vocab_size {
            return Err(Error::Checkpoint(
                "LLaDA config: embedding_size is smaller than vocab_size".into(),
            ));
        }
        Ok(())
    }

    /// Number of weights, from the shapes (biases of q/k/v counted when present).
    pub fn parameter_count(&self) -> u64 {
        let d = self.d_model as u64;
        let q = d;
        let kv = (self.kv_heads() * self.head_dim()) as u64;
        let mlp = self.mlp_hidden() as u64;
        let qkv_bias = if self.include_bias || self.include_qkv_bias {
            q + 2 * kv
        } else {
            0
        };
        let per_layer = d * q + 2 * d * kv + q * d + 3 * d * mlp + 2 * d + qkv_bias;
        let embedding = self.logits_width() as u64 * d;
        let head = if self.weight_tying { 0 } else { embedding };
        embedding + head + self.n_layers as u64 * per_layer + d
    }

    pub fn info(&self) -> ModelInfo {
        let parameters = self.parameter_count();
        ModelInfo {
            architecture: Architecture::Llada,
            vocab_size: self.vocab_size,
            logits_width: self.logits_width(),
            max_sequence_length: self.max_sequence_length,
            shift_logits: false,
            block_causal: false,
            total_parameters: parameters,
            active_parameters: parameters,
            num_layers: self.n_layers,
            hidden_size: self.d_model,
            num_heads: self.n_heads,
            num_kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
        }
    }
}

#[derive(Debug)]
struct Block {
    attn_norm: RmsNorm,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    /// `q_proj`, `k_proj`, `v_proj` packed into one matmul.
    qkv: FusedLinear,
    attn_out: Linear,
    ff_norm: RmsNorm,
    /// `ff_proj` (the gate) and `up_proj` packed into one matmul.
    gate_up: FusedLinear,
    ff_out: Linear,
}

impl Block {
    fn load(vb: Weights, cfg: &Config) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let kv_dim = cfg.kv_heads() * cfg.head_dim();
        let hidden = cfg.mlp_hidden();
        let qkv_bias = cfg.include_bias || cfg.include_qkv_bias;
        let (q_norm, k_norm) = if cfg.attention_layer_norm {
            (
                Some(RmsNorm::load(
                    vb.pp("q_norm"),
                    d,
                    cfg.rms_norm_eps,
                    cfg.norm_bias(),
                )?),
                Some(RmsNorm::load(
                    vb.pp("k_norm"),
                    kv_dim,
                    cfg.rms_norm_eps,
                    cfg.norm_bias(),
                )?),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            attn_norm: RmsNorm::load(vb.pp("attn_norm"), d, cfg.rms_norm_eps, cfg.norm_bias())?,
            q_norm,
            k_norm,
            qkv: FusedLinear::load(
                &[
                    (vb.pp("q_proj"), d),
                    (vb.pp("k_proj"), kv_dim),
                    (vb.pp("v_proj"), kv_dim),
                ],
                d,
                qkv_bias,
            )?,
            attn_out: Linear::load(vb.pp("attn_out"), d, d, cfg.include_bias)?,
            ff_norm: RmsNorm::load(vb.pp("ff_norm"), d, cfg.rms_norm_eps, cfg.norm_bias())?,
            gate_up: FusedLinear::load(
                &[(vb.pp("ff_proj"), hidden), (vb.pp("up_proj"), hidden)],
                d,
                cfg.include_bias,
            )?,
            ff_out: Linear::load(vb.pp("ff_out"), hidden, d, cfg.include_bias)?,
        })
    }
}

/// A LLaDA checkpoint ready to run.
#[derive(Debug)]
pub struct Model {
    config: Config,
    info: ModelInfo,
    wte: Embedding,
    blocks: Vec<Block>,
    ln_f: RmsNorm,
    head: Linear,
    rotary: Rotary,
    device: Device,
    dtype: DType,
}

impl Model {
    /// Build from a `VarBuilder` rooted at the checkpoint's top level (names start with `model.`).
    pub fn load(config: Config, vb: Weights) -> Result<Self> {
        config.validate()?;
        let dtype = vb.dtype();
        let device = vb.device().clone();
        let t = vb.pp("model").pp("transformer");
        // Embedding and head first, while little else is in memory: each passes through f32.
        let wte = Embedding::load(t.pp("wte"), config.logits_width(), config.d_model)?;
        let head = if config.weight_tying {
            Linear::tied_head(&wte, &t)?
        } else {
            Linear::load_head(
                t.pp("ff_out"),
                config.d_model,
                config.logits_width(),
                config.include_bias,
            )?
        };
        let wte = wte.compact(&t)?;
        let blocks = layers::load_layers(config.n_layers, |i| {
            Block::load(t.pp("blocks").pp(i), &config)
        })?;
        let ln_f = RmsNorm::load(
            t.pp("ln_f"),
            config.d_model,
            config.rms_norm_eps,
            config.norm_bias(),
        )?;
        let rotary = Rotary::new(config.head_dim(), config.rope_theta);
        let info = config.info();
        Ok(Self {
            config,
            info,
            wte,
            blocks,
            ln_f,
            head,
            rotary,
            device,
            dtype,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
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
        let prep = layers::prepare(&input, &self.info, self.config.logits_width(), &self.device)?;
        let cfg = &self.config;
        let (heads, kv_heads, head_dim) = (cfg.n_heads, cfg.kv_heads(), cfg.head_dim());
        // LLaDA never shifts positions for padding: the span's positions are its indices.
        let (cos, sin) = self.rotary.range(prep.span_start, prep.len, &self.device)?;
        // `rope_full_precision`: rotate in f32 whatever the model dtype, as the reference does.
        let rope_dtype = if cfg.rope_full_precision {
            DType::F32
        } else {
            self.dtype
        };
        let (cos, sin) = (cos.to_dtype(rope_dtype)?, sin.to_dtype(rope_dtype)?);

        let mut x = self.wte.forward(input.input_ids)?;
        if cfg.input_emb_norm == Some(true) {
            x = (x * (cfg.d_model as f64).sqrt())?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(&x)?;
            let [mut q, mut k, v] = block.qkv.forward_n(&h)?;
            if let (Some(qn), Some(kn)) = (&block.q_norm, &block.k_norm) {
                q = qn.forward(&q)?;
                k = kn.forward(&k)?;
            }
            let q = layers::apply_rope(&layers::split_heads(&q, heads, head_dim)?, &cos, &sin)?;
            let k = layers::apply_rope(&layers::split_heads(&k, kv_heads, head_dim)?, &cos, &sin)?;
            let k = layers::heads_first(&k)?;
            let v = layers::heads_first(&layers::split_heads(&v, kv_heads, head_dim)?)?;
            let (k, v) = layers::layer_keys_values(&mut input.cache, i, prep.span_start, k, v)?;
            let att = layers::attention(&q, &k, &v, prep.bias.as_ref())?;
            x = (x + block.attn_out.forward(&att)?)?;

            let h = block.ff_norm.forward(&x)?;
            let [gate, up] = block.gate_up.forward_n(&h)?;
            let gate = gate.silu()?;
            x = (x + block.ff_out.forward(&(gate * up)?)?)?;
        }
        let x = self.ln_f.forward(&x)?;
        let mut logits = self.head.forward(&x)?.to_dtype(DType::F32)?;
        if cfg.scale_logits {
            logits = (logits * (1.0 / (cfg.d_model as f64).sqrt()))?;
        }
        Ok(logits)
    }
}
