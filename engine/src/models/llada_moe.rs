//! LLaDA-MoE ("LLaDA-MoE: A Sparse MoE Diffusion Language Model", Zhu et al., 2025,
//! arXiv:2509.24389; model cards `inclusionAI/LLaDA-MoE-7B-A1B-Base` / `-Instruct`): an OLMoE-style
//! mixture-of-experts transformer (7B total, about 1.4B active per token) trained as a bidirectional
//! masked diffusion model with LLaDA's sampler.
//!
//! Reference: `modeling_lladamoe.py` / `configuration_lladamoe.py` (`LLaDAMoEModelLM`, `model_type:
//! "llada"`), as in the public `dllm` repository (`dllm/pipelines/llada/models/`). Tensor names are
//! OLMoE's: `model.embed_tokens`, `model.layers.{i}.self_attn.{q,k,v,o}_proj`,
//! `self_attn.{q,k}_norm` (per-head RMSNorm over `head_dim`, `qk_layernorm`), `input_layernorm`,
//! `post_attention_layernorm`; MoE layers `mlp.gate` `[experts, hidden]`,
//! `mlp.experts.{e}.{gate,up,down}_proj`, `mlp.expert_bias` (only with
//! `moe_router_enable_expert_bias`), `shared_expert.{gate,up,down}_proj` on the layer (only with
//! `shared_expert_intermediate_size`); dense layers (`moe_layer_freq[i] == 0`) `mlp.{gate,up,down}_proj`
//! of `dense_intermediate_size`; `model.norm`, `lm_head` (or tied).
//!
//! Router: the gate in the model dtype, softmax over all experts in f32, `+ expert_bias`, top-k whose
//! values are the weights, never renormalised (the reference hard-codes `norm_topk_prob = False`;
//! `moe_router_score_function` and `routed_scaling_factor` are not read). RoPE rotates the first
//! `head_dim * partial_rotary_factor` dims, tables in f32 applied in the model dtype. Positions are
//! `0..L`; padding masks keys only. No logit shift.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::layers::{self, Embedding, FusedLinear, Linear, RmsNorm, Rotary, Weights};
use super::moe::{Mlp, Routing, SparseMoe};
use crate::model::{Architecture, DiffusionModel, ForwardInput, ModelInfo};
use crate::{Error, Result};

fn default_act() -> String {
    "silu".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_len() -> usize {
    4096
}
fn default_one_f64() -> f64 {
    1.0
}
fn default_one() -> usize {
    1
}
fn default_true() -> bool {
    true
}

/// `moe_layer_freq`: one flag per layer (0 = dense), or a single number for every layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LayerFreq {
    PerLayer(Vec<usize>),
    All(usize),
}

/// The fields of `configuration_lladamoe.py` that shape the network.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub dense_intermediate_size: usize,
    pub expert_intermediate_size: usize,
    #[serde(default)]
    pub shared_expert_intermediate_size: Option<usize>,
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
    #[serde(default = "default_one_f64")]
    pub partial_rotary_factor: f64,
    #[serde(default = "default_true")]
    pub qk_layernorm: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub clip_qkv: Option<f64>,
    pub num_experts: usize,
    #[serde(default = "default_one")]
    pub num_experts_per_tok: usize,
    #[serde(default)]
    pub moe_layer_freq: Option<LayerFreq>,
    #[serde(default)]
    pub moe_router_enable_expert_bias: bool,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Rotated dims per head: `int(head_dim * partial_rotary_factor)`.
    pub fn rotary_dim(&self) -> usize {
        (self.head_dim() as f64 * self.partial_rotary_factor) as usize
    }

    /// Whether layer `i` is a MoE layer (`moe_layer_freq[i] != 0`; all layers when absent).
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        match &self.moe_layer_freq {
            None => true,
            Some(LayerFreq::All(n)) => *n != 0,
            Some(LayerFreq::PerLayer(flags)) => flags.get(layer).is_some_and(|&f| f != 0),
        }
    }

    fn shared_size(&self) -> Option<usize> {
        self.shared_expert_intermediate_size.filter(|&n| n > 0)
    }

    /// Refuse what the reference does not implement either, naming the field.
    pub fn validate(&self) -> Result<()> {
        let unsupported = |what: String| {
            Err(Error::Unsupported(format!(
                "LLaDA-MoE config: {what} is not supported"
            )))
        };
        if self.hidden_act != "silu" {
            return unsupported(format!("hidden_act `{}` (only `silu`)", self.hidden_act));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("rope_scaling".into());
        }
        if self.clip_qkv.is_some() {
            return unsupported("clip_qkv".into());
        }
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0
            || !self.hidden_size.is_multiple_of(heads)
            || kv == 0
            || !heads.is_multiple_of(kv)
        {
            return Err(Error::Checkpoint(format!(
                "LLaDA-MoE config: hidden_size {} / num_attention_heads {heads} / num_key_value_heads {kv} do not divide evenly",
                self.hidden_size
            )));
        }
        let rot = self.rotary_dim();
        if rot == 0 || !rot.is_multiple_of(2) || rot > self.head_dim() {
            return Err(Error::Checkpoint(format!(
                "LLaDA-MoE config: partial_rotary_factor {} gives {rot} rotary dims of a head of {}",
                self.partial_rotary_factor,
                self.head_dim()
            )));
        }
        if self.num_experts == 0
            || self.num_experts_per_tok == 0
            || self.num_experts_per_tok > self.num_experts
        {
            return Err(Error::Checkpoint(format!(
                "LLaDA-MoE config: num_experts_per_tok {} of num_experts {}",
                self.num_experts_per_tok, self.num_experts
            )));
        }
        if let Some(LayerFreq::PerLayer(flags)) = &self.moe_layer_freq {
            if flags.len() < self.num_hidden_layers {
                return Err(Error::Checkpoint(format!(
                    "LLaDA-MoE config: moe_layer_freq has {} entries for {} layers",
                    flags.len(),
                    self.num_hidden_layers
                )));
            }
        }
        Ok(())
    }

    /// Total weights and the weights one token passes through.
    pub fn parameter_counts(&self) -> (u64, u64) {
        let d = self.hidden_size as u64;
        let hd = self.head_dim() as u64;
        let (q, kv) = (
            self.num_attention_heads as u64 * hd,
            self.kv_heads() as u64 * hd,
        );
        let mut attention = d * (q + 2 * kv) + q * d + 2 * d;
        if self.attention_bias {
            attention += q + 2 * kv + d;
        }
        if self.qk_layernorm {
            attention += 2 * hd;
        }
        let mlp = |inter: usize| 3 * d * inter as u64;
        let (mut total, mut active) = (0u64, 0u64);
        for layer in 0..self.num_hidden_layers {
            total += attention;
            active += attention;
            if self.is_moe_layer(layer) {
                let experts = self.num_experts as u64;
                let expert = mlp(self.expert_intermediate_size);
                let shared = self.shared_size().map_or(0, mlp);
                let router = experts * d
                    + if self.moe_router_enable_expert_bias {
                        experts
                    } else {
                        0
                    };
                total += experts * expert + shared + router;
                active += self.num_experts_per_tok as u64 * expert + shared + router;
            } else {
                total += mlp(self.dense_intermediate_size);
                active += mlp(self.dense_intermediate_size);
            }
        }
        let embedding = self.vocab_size as u64 * d;
        let head = if self.tie_word_embeddings {
            0
        } else {
            embedding
        };
        (total + embedding + head + d, active + embedding + head + d)
    }

    pub fn info(&self) -> ModelInfo {
        let (total, active) = self.parameter_counts();
        ModelInfo {
            architecture: Architecture::LladaMoe,
            vocab_size: self.vocab_size,
            logits_width: self.vocab_size,
            max_sequence_length: self.max_position_embeddings,
            shift_logits: false,
            block_causal: false,
            total_parameters: total,
            active_parameters: active,
            num_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            num_heads: self.num_attention_heads,
            num_kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
        }
    }
}

#[derive(Debug)]
enum FeedForward {
    Dense(Mlp),
    Sparse(SparseMoe),
}

#[derive(Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    /// `q_proj`, `k_proj`, `v_proj` packed into one matmul.
    qkv: FusedLinear,
    o_proj: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    post_attention_layernorm: RmsNorm,
    mlp: FeedForward,
}

impl Layer {
    fn load(vb: Weights, cfg: &Config, index: usize) -> candle_core::Result<Self> {
        let d = cfg.hidden_size;
        let hd = cfg.head_dim();
        let kv_dim = cfg.kv_heads() * hd;
        let attn = vb.pp("self_attn");
        let bias = cfg.attention_bias;
        let (q_norm, k_norm) = if cfg.qk_layernorm {
            (
                Some(RmsNorm::load(
                    attn.pp("q_norm"),
                    hd,
                    cfg.rms_norm_eps,
                    false,
                )?),
                Some(RmsNorm::load(
                    attn.pp("k_norm"),
                    hd,
                    cfg.rms_norm_eps,
                    false,
                )?),
            )
        } else {
            (None, None)
        };
        let mlp_vb = vb.pp("mlp");
        let mlp = if cfg.is_moe_layer(index) {
            let experts = cfg.num_experts;
            let router = mlp_vb.pp("gate").get((experts, d), "weight")?;
            let expert_bias = if cfg.moe_router_enable_expert_bias {
                Some(
                    mlp_vb
                        .get_with_dtype(experts, "expert_bias", DType::F32)?
                        .to_vec1::<f32>()?,
                )
            } else {
                None
            };
            let expert_list = (0..experts)
                .map(|e| Mlp::load(mlp_vb.pp("experts").pp(e), d, cfg.expert_intermediate_size))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let shared = cfg
                .shared_size()
                .map(|size| Mlp::load(vb.pp("shared_expert"), d, size))
                .transpose()?;
            FeedForward::Sparse(SparseMoe::new(
                router,
                false,
                expert_list,
                shared,
                Routing::SoftmaxTopK {
                    top_k: cfg.num_experts_per_tok,
                    bias: expert_bias,
                },
            ))
        } else {
            FeedForward::Dense(Mlp::load(mlp_vb, d, cfg.dense_intermediate_size)?)
        };
        Ok(Self {
            input_layernorm: RmsNorm::load(vb.pp("input_layernorm"), d, cfg.rms_norm_eps, false)?,
            qkv: FusedLinear::load(
                &[
                    (attn.pp("q_proj"), d),
                    (attn.pp("k_proj"), kv_dim),
                    (attn.pp("v_proj"), kv_dim),
                ],
                d,
                bias,
            )?,
            o_proj: Linear::load(attn.pp("o_proj"), d, d, bias)?,
            q_norm,
            k_norm,
            post_attention_layernorm: RmsNorm::load(
                vb.pp("post_attention_layernorm"),
                d,
                cfg.rms_norm_eps,
                false,
            )?,
            mlp,
        })
    }
}

/// A LLaDA-MoE checkpoint ready to run.
#[derive(Debug)]
pub struct Model {
    config: Config,
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
            Layer::load(m.pp("layers").pp(i), &config, i)
        })?;
        let norm = RmsNorm::load(m.pp("norm"), config.hidden_size, config.rms_norm_eps, false)?;
        let rotary = Rotary::new(config.rotary_dim(), config.rope_theta);
        let info = config.info();
        Ok(Self {
            config,
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
        let rot = cfg.rotary_dim();
        let (cos, sin) = self.rotary.range(prep.span_start, prep.len, &self.device)?;
        let (cos, sin) = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);

        let mut x = self.embed_tokens.forward(input.input_ids)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(&x)?;
            let [q, k, v] = layer.qkv.forward_n(&h)?;
            let mut q = layers::split_heads(&q, heads, head_dim)?;
            let mut k = layers::split_heads(&k, kv_heads, head_dim)?;
            let v = layers::split_heads(&v, kv_heads, head_dim)?;
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                q = qn.forward(&q)?;
                k = kn.forward(&k)?;
            }
            let q = layers::apply_partial_rope(&q, &cos, &sin, rot)?;
            let k = layers::heads_first(&layers::apply_partial_rope(&k, &cos, &sin, rot)?)?;
            let v = layers::heads_first(&v)?;
            let (k, v) = layers::layer_keys_values(&mut input.cache, i, prep.span_start, k, v)?;
            let att = layers::attention(&q, &k, &v, prep.bias.as_ref())?;
            x = (x + layer.o_proj.forward(&att)?)?;

            let h = layer.post_attention_layernorm.forward(&x)?;
            let y = match &layer.mlp {
                FeedForward::Dense(mlp) => mlp.forward(&h)?,
                FeedForward::Sparse(moe) => moe.forward(&h)?,
            };
            x = (x + y)?;
        }
        let x = self.norm.forward(&x)?;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }
}
