//! LLaDA2.0 and LLaDA2.1 ("LLaDA2.0: Scaling Up Diffusion Language Models to 100B", inclusionAI,
//! 2025; model cards `inclusionAI/LLaDA2.0-mini` 16B-A1.4B, `LLaDA2.0-flash` 100B-A6B and the 2.1
//! versions, which keep the same `config.json` format): a Ling2 (BailingMoe-V2) mixture-of-experts
//! transformer trained for block diffusion. The samplers run it under a block-causal mask (a position
//! sees its own block and every earlier one), so a finished block's keys and values never change.
//!
//! Reference: `modeling_llada2_moe.py` / `configuration_llada2_moe.py` (`LLaDA2MoeModelLM`), as in
//! the public `dllm` repository (`dllm/pipelines/llada2/models/`). Tensor names:
//! `model.word_embeddings`, `model.layers.{i}.{input_layernorm, post_attention_layernorm}`,
//! `attention.query_key_value` (fused, split q | k | v by heads), `attention.{query,key}_layernorm`
//! (per-head RMSNorm, `use_qk_norm`), `attention.dense`; MoE layers `mlp.gate.weight`,
//! `mlp.gate.expert_bias`, `mlp.experts.{e}.{gate,up,down}_proj`,
//! `mlp.shared_experts.{gate,up,down}_proj`; dense layers (`i < first_k_dense_replace`)
//! `mlp.{gate,up,down}_proj`; `model.norm`, `lm_head`.
//!
//! RoPE rotates the first `head_dim * partial_rotary_factor` dims of each head (`rotate_half` within
//! that part, `theta^(-2i/rot)`), tables in f32 applied in the model dtype; scale `head_dim^-0.5`.
//! The router runs in f32 with sigmoid scores and grouped top-k (see `moe::Routing::SigmoidGrouped`).
//! Config keys the reference never reads are not read here either: `score_function`,
//! `norm_topk_prob`, `moe_router_enable_expert_bias` (the bias always exists and is always used),
//! `router_dtype`, `norm_softmax`, `rotary_dim`, `sliding_window`. No logit shift. Padding masks keys
//! only; positions are always `0..L`.

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::layers::{self, Embedding, Linear, RmsNorm, Rotary, Weights};
use super::moe::{Mlp, Routing, SparseMoe};
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
fn default_one_f64() -> f64 {
    1.0
}
fn default_one() -> usize {
    1
}
fn default_true() -> bool {
    true
}

/// The fields of `configuration_llada2_moe.py` that shape the network.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
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
    #[serde(default)]
    pub use_qkv_bias: bool,
    #[serde(default)]
    pub use_bias: bool,
    #[serde(default = "default_true")]
    pub use_qk_norm: bool,
    #[serde(default)]
    pub norm_head: bool,
    /// `None`: a dense model (every layer uses `intermediate_size`).
    #[serde(default)]
    pub num_experts: Option<usize>,
    #[serde(default = "default_one")]
    pub num_experts_per_tok: usize,
    #[serde(default = "default_one")]
    pub n_group: usize,
    #[serde(default = "default_one")]
    pub topk_group: usize,
    #[serde(default = "default_one_f64")]
    pub routed_scaling_factor: f64,
    #[serde(default)]
    pub num_shared_experts: Option<usize>,
    #[serde(default)]
    pub moe_intermediate_size: Option<usize>,
    #[serde(default)]
    pub first_k_dense_replace: usize,
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Rotated dims per head: `int(head_dim * partial_rotary_factor)`.
    pub fn rotary_dim(&self) -> usize {
        (self.head_dim() as f64 * self.partial_rotary_factor) as usize
    }

    fn is_moe_layer(&self, layer: usize) -> bool {
        self.num_experts.is_some() && layer >= self.first_k_dense_replace
    }

    fn expert_size(&self) -> usize {
        self.moe_intermediate_size.unwrap_or(self.intermediate_size)
    }

    /// Refuse what the reference does not implement either, naming the field.
    pub fn validate(&self) -> Result<()> {
        let unsupported = |what: String| {
            Err(Error::Unsupported(format!(
                "LLaDA2 config: {what} is not supported"
            )))
        };
        if self.hidden_act != "silu" {
            return unsupported(format!("hidden_act `{}` (only `silu`)", self.hidden_act));
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("rope_scaling".into());
        }
        if self.norm_head {
            return unsupported("norm_head = true".into());
        }
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0 || kv == 0 || !heads.is_multiple_of(kv) || self.head_dim() == 0 {
            return Err(Error::Checkpoint(format!(
                "LLaDA2 config: num_attention_heads {heads} / num_key_value_heads {kv} / head_dim {} do not fit",
                self.head_dim()
            )));
        }
        let rot = self.rotary_dim();
        if rot == 0 || !rot.is_multiple_of(2) || rot > self.head_dim() {
            return Err(Error::Checkpoint(format!(
                "LLaDA2 config: partial_rotary_factor {} gives {rot} rotary dims of a head of {}: need an even number, at most the head size",
                self.partial_rotary_factor,
                self.head_dim()
            )));
        }
        if let Some(experts) = self.num_experts {
            let (group, top_group, k) = (self.n_group, self.topk_group, self.num_experts_per_tok);
            if experts == 0
                || group == 0
                || !experts.is_multiple_of(group)
                || top_group == 0
                || top_group > group
                || k == 0
                || k > top_group * (experts / group)
            {
                return Err(Error::Checkpoint(format!(
                    "LLaDA2 config: num_experts {experts}, n_group {group}, topk_group {top_group} and \
                     num_experts_per_tok {k} do not fit (experts split evenly into groups, k experts within the kept groups)"
                )));
            }
        }
        Ok(())
    }

    /// Total weights and the weights one token passes through (routed experts counted `top_k` times
    /// out of `num_experts`).
    pub fn parameter_counts(&self) -> (u64, u64) {
        let d = self.hidden_size as u64;
        let hd = self.head_dim() as u64;
        let (q, kv) = (
            self.num_attention_heads as u64 * hd,
            self.kv_heads() as u64 * hd,
        );
        let mut attention = d * (q + 2 * kv) + q * d + 2 * d;
        if self.use_qkv_bias {
            attention += q + 2 * kv;
        }
        if self.use_bias {
            attention += d;
        }
        if self.use_qk_norm {
            attention += 2 * hd;
        }
        let mlp = |inter: usize| 3 * d * inter as u64;
        let (mut total, mut active) = (0u64, 0u64);
        for layer in 0..self.num_hidden_layers {
            total += attention;
            active += attention;
            if self.is_moe_layer(layer) {
                let experts = self.num_experts.unwrap_or(0) as u64;
                let expert = mlp(self.expert_size());
                let shared = mlp(self.expert_size() * self.num_shared_experts.unwrap_or(0));
                let router = experts * d + experts;
                total += experts * expert + shared + router;
                active += self.num_experts_per_tok as u64 * expert + shared + router;
            } else {
                total += mlp(self.intermediate_size);
                active += mlp(self.intermediate_size);
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
            architecture: Architecture::Llada2,
            vocab_size: self.vocab_size,
            logits_width: self.vocab_size,
            max_sequence_length: self.max_position_embeddings,
            shift_logits: false,
            block_causal: true,
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

impl FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            FeedForward::Dense(mlp) => Ok(mlp.forward(x)?),
            FeedForward::Sparse(moe) => moe.forward(x),
        }
    }
}

#[derive(Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    query_key_value: Linear,
    query_layernorm: Option<RmsNorm>,
    key_layernorm: Option<RmsNorm>,
    dense: Linear,
    post_attention_layernorm: RmsNorm,
    mlp: FeedForward,
}

impl Layer {
    fn load(vb: Weights, cfg: &Config, index: usize) -> candle_core::Result<Self> {
        let d = cfg.hidden_size;
        let hd = cfg.head_dim();
        let heads = cfg.num_attention_heads;
        let qkv = (heads + 2 * cfg.kv_heads()) * hd;
        let attn = vb.pp("attention");
        let (query_layernorm, key_layernorm) = if cfg.use_qk_norm {
            (
                Some(RmsNorm::load(
                    attn.pp("query_layernorm"),
                    hd,
                    cfg.rms_norm_eps,
                    false,
                )?),
                Some(RmsNorm::load(
                    attn.pp("key_layernorm"),
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
            let experts = cfg.num_experts.unwrap_or(0);
            let gate = mlp_vb.pp("gate");
            let router = gate.get_with_dtype((experts, d), "weight", DType::F32)?;
            let bias = gate
                .get_with_dtype(experts, "expert_bias", DType::F32)?
                .to_vec1::<f32>()?;
            let expert_list = (0..experts)
                .map(|e| Mlp::load(mlp_vb.pp("experts").pp(e), d, cfg.expert_size()))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let shared = match cfg.num_shared_experts {
                Some(n) if n > 0 => Some(Mlp::load(
                    mlp_vb.pp("shared_experts"),
                    d,
                    cfg.expert_size() * n,
                )?),
                _ => None,
            };
            FeedForward::Sparse(SparseMoe::new(
                router,
                true,
                expert_list,
                shared,
                Routing::SigmoidGrouped {
                    top_k: cfg.num_experts_per_tok,
                    n_group: cfg.n_group,
                    topk_group: cfg.topk_group,
                    routed_scaling_factor: cfg.routed_scaling_factor as f32,
                    bias,
                },
            ))
        } else {
            FeedForward::Dense(Mlp::load(mlp_vb, d, cfg.intermediate_size)?)
        };
        Ok(Self {
            input_layernorm: RmsNorm::load(vb.pp("input_layernorm"), d, cfg.rms_norm_eps, false)?,
            query_key_value: Linear::load(attn.pp("query_key_value"), d, qkv, cfg.use_qkv_bias)?,
            query_layernorm,
            key_layernorm,
            dense: Linear::load(attn.pp("dense"), heads * hd, d, cfg.use_bias)?,
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

/// A LLaDA2.0 / LLaDA2.1 checkpoint ready to run.
#[derive(Debug)]
pub struct Model {
    config: Config,
    info: ModelInfo,
    word_embeddings: Embedding,
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
        let word_embeddings = Embedding::load(
            m.pp("word_embeddings"),
            config.vocab_size,
            config.hidden_size,
        )?;
        let lm_head = if config.tie_word_embeddings {
            Linear::tied_head(&word_embeddings, &vb)?
        } else {
            Linear::load_head(
                vb.pp("lm_head"),
                config.hidden_size,
                config.vocab_size,
                false,
            )?
        };
        let word_embeddings = word_embeddings.compact(&vb)?;
        let layers = layers::load_layers(config.num_hidden_layers, |i| {
            Layer::load(m.pp("layers").pp(i), &config, i)
        })?;
        let norm = RmsNorm::load(m.pp("norm"), config.hidden_size, config.rms_norm_eps, false)?;
        let rotary = Rotary::new(config.rotary_dim(), config.rope_theta);
        let info = config.info();
        Ok(Self {
            config,
            info,
            word_embeddings,
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
        // f32 tables cast to the activations' dtype, as the reference's rotary embedding returns.
        let (cos, sin) = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);

        let mut x = self.word_embeddings.forward(input.input_ids)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(&x)?;
            let qkv = layer.query_key_value.forward(&h)?;
            let qkv = layers::split_heads(&qkv, heads + 2 * kv_heads, head_dim)?;
            let mut q = qkv.narrow(2, 0, heads)?;
            let mut k = qkv.narrow(2, heads, kv_heads)?;
            let v = qkv.narrow(2, heads + kv_heads, kv_heads)?;
            if let (Some(qn), Some(kn)) = (&layer.query_layernorm, &layer.key_layernorm) {
                q = qn.forward(&q)?;
                k = kn.forward(&k)?;
            }
            let q = layers::apply_partial_rope(&q.contiguous()?, &cos, &sin, rot)?;
            let k = layers::apply_partial_rope(&k.contiguous()?, &cos, &sin, rot)?;
            let k = layers::heads_first(&k)?;
            let v = layers::heads_first(&v)?;
            let (k, v) = layers::layer_keys_values(&mut input.cache, i, prep.span_start, k, v)?;
            let att = layers::attention(&q.contiguous()?, &k, &v, prep.bias.as_ref())?;
            x = (x + layer.dense.forward(&att)?)?;

            let h = layer.post_attention_layernorm.forward(&x)?;
            x = (x + layer.mlp.forward(&h)?)?;
        }
        let x = self.norm.forward(&x)?;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }
}
