//! Random-weight models of a given `config.json`, built directly on the target device from a seed:
//! for benchmarks and GPU checks of real shapes (an 8B LLaDA in bf16 on a GPU) without carrying
//! checkpoints around. Also a few preset configs (`llada-tiny`, `llada-100m`, `llada-8b`,
//! `dream-tiny`, `dream-100m`, `dream-7b`, `llada-moe-tiny`, `llada-moe-7b`, `llada2-tiny`,
//! `llada2-mini`, and `llada-moe-7b-dense`, the dense model of LLaDA-MoE-7B's active size).
//!
//! Weights are uniform with the standard deviation of the references' init (0.02); norm weights are
//! 1 and biases 0. Each tensor's stream is seeded from the seed and the tensor's name, so a model
//! does not depend on the order in which its tensors are built. The same seed gives the same
//! weights on the same device kind (the CPU uses a ChaCha stream, CUDA its own generator).

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::model::{Architecture, DiffusionModel};
use crate::models::{Quantization, Weights};
use crate::Result;

/// Standard deviation of the references' `init_std` / `initializer_range`.
const INIT_STD: f64 = 0.02;

/// A random-weight model of family `arch` with the shapes of `config` (a `config.json` value).
pub fn random_model(
    arch: Architecture,
    config: &Value,
    seed: u64,
    device: &Device,
    dtype: DType,
    quantization: Quantization,
) -> Result<Box<dyn DiffusionModel>> {
    let vb = VarBuilder::from_backend(Box::new(RandomWeights { seed }), dtype, device.clone());
    crate::models::build(arch, config, Weights::new(vb, quantization))
}

/// The names [`preset`] accepts.
pub const PRESETS: &[&str] = &[
    "llada-tiny",
    "llada-100m",
    "llada-8b",
    "dream-tiny",
    "dream-100m",
    "dream-7b",
    "llada-moe-tiny",
    "llada-moe-7b",
    "llada-moe-7b-dense",
    "llada2-tiny",
    "llada2-mini",
];

/// A preset config by name (see [`PRESETS`]).
pub fn preset(name: &str) -> Option<(Architecture, Value)> {
    Some(match name {
        "llada-tiny" => (
            Architecture::Llada,
            llada_config(64, 4, 4, 2, 128, 256, false),
        ),
        "llada-100m" => (Architecture::Llada, llada_100m_config()),
        "llada-8b" => (Architecture::Llada, llada_8b_config()),
        "dream-tiny" => (
            Architecture::Dream,
            dream_config(64, 4, 2, 2, 128, 256, false),
        ),
        "dream-100m" => (Architecture::Dream, dream_100m_config()),
        "dream-7b" => (Architecture::Dream, dream_7b_config()),
        "llada-moe-tiny" => (
            Architecture::LladaMoe,
            llada_moe_config(64, 4, 2, 128, 8, 2, 32, 256),
        ),
        "llada-moe-7b" => (Architecture::LladaMoe, llada_moe_7b_config()),
        "llada-moe-7b-dense" => (Architecture::Llada, llada_moe_7b_dense_config()),
        "llada2-tiny" => (
            Architecture::Llada2,
            llada2_config(64, 4, 2, 16, 2, 128, 8, 2, 4, 2, 32, 256),
        ),
        "llada2-mini" => (Architecture::Llada2, llada2_mini_config()),
        _ => return None,
    })
}

/// LLaDA-8B's shape (32 layers, d_model 4096, 32 heads, MLP 12288, vocab 126464), as in
/// GSAI-ML/LLaDA-8B-Instruct's `config.json`.
pub fn llada_8b_config() -> Value {
    llada_config(4096, 32, 32, 32, 12288, 126_464, false)
}

/// A ~100M-parameter LLaDA shape with LLaDA's real vocabulary (103M: 12 layers of d_model 512, tied
/// embeddings, which dominate at this size).
pub fn llada_100m_config() -> Value {
    llada_config(512, 8, 8, 12, 1408, 126_464, true)
}

/// A ~100M-parameter Dream shape with Qwen2's vocabulary (112M: 12 layers of 512, GQA 8/2, tied).
pub fn dream_100m_config() -> Value {
    dream_config(512, 8, 2, 12, 1408, 151_936, true)
}

/// Dream-v0-7B's shape (Qwen2.5-7B: 28 layers, hidden 3584, 28/4 heads, MLP 18944, vocab 152064).
pub fn dream_7b_config() -> Value {
    dream_config(3584, 28, 4, 28, 18_944, 152_064, false)
}

/// LLaDA-MoE-7B-A1B's shape (inclusionAI/LLaDA-MoE-7B-A1B-Base `config.json`, as quoted by its
/// model card and the LLaDA-MoE paper, arXiv:2509.24389): 16 layers, hidden 2048, 16/16 heads, 64
/// experts of 1024 with top-8 in every layer (`moe_layer_freq` all 1), no shared expert, QK-norm,
/// rope_theta 50000, 8192 positions, vocab 157184 (the LLaDA2 tokenizer, mask `<|mask|>` 156895).
/// 7.4B total, 1.7B active per token (1.4B without the embedding).
pub fn llada_moe_7b_config() -> Value {
    llada_moe_config(2048, 16, 16, 8192, 64, 8, 1024, 157_184)
}

/// A dense LLaDA of LLaDA-MoE-7B's *active* size: same layers, width, heads and vocabulary, with
/// one MLP of 8192 = 8 experts x 1024 (the same multiply-adds per token as the routed experts).
/// The baseline for the MoE step-time ratio in `hone bench`.
pub fn llada_moe_7b_dense_config() -> Value {
    let mut config = llada_config(2048, 16, 16, 16, 8192, 157_184, false);
    config["mask_token_id"] = json!(156_895);
    config["eos_token_id"] = json!(156_892);
    config["pad_token_id"] = json!(156_892);
    config
}

/// LLaDA2.0-mini's shape (16B-A1.4B), from the `config.json` of inclusionAI/LLaDA2.1-mini (same
/// network as LLaDA2.0-mini) and the LLaDA2.0 model card (vocab 157184): 20 layers, hidden 2048,
/// 16 heads of 128 (4 kv), partial rotary 0.5, rope_theta 600000, layer 0 dense (5120), then 256
/// experts of 512 in 8 groups, top-8 of the best 4 groups, 1 shared expert, routed scaling 2.5.
/// 16.2B total, 1.43B active per token (embedding and head included).
pub fn llada2_mini_config() -> Value {
    llada2_config(2048, 16, 4, 128, 20, 5120, 256, 8, 8, 4, 512, 157_184)
}

#[allow(clippy::too_many_arguments)]
fn llada_moe_config(
    hidden: usize,
    heads: usize,
    layers: usize,
    dense: usize,
    experts: usize,
    top_k: usize,
    expert: usize,
    vocab: usize,
) -> Value {
    let small = vocab <= 256;
    json!({
        "model_type": "llada",
        "architectures": ["LLaDAMoEModelLM"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "num_hidden_layers": layers,
        "dense_intermediate_size": dense,
        "expert_intermediate_size": expert,
        "shared_expert_intermediate_size": null,
        "num_experts": experts,
        "num_experts_per_tok": top_k,
        "moe_layer_freq": vec![1; layers],
        "moe_router_enable_expert_bias": false,
        "qk_layernorm": true,
        "partial_rotary_factor": 1.0,
        "vocab_size": vocab,
        "max_position_embeddings": if small { 512 } else { 8192 },
        "rope_theta": 50_000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": false,
        "hidden_act": "silu",
        "mask_token_id": if small { 250 } else { 156_895 },
        "eos_token_id": if small { 251 } else { 156_892 },
        "pad_token_id": if small { 252 } else { 156_892 },
    })
}

#[allow(clippy::too_many_arguments)]
fn llada2_config(
    hidden: usize,
    heads: usize,
    kv: usize,
    head_dim: usize,
    layers: usize,
    dense: usize,
    experts: usize,
    top_k: usize,
    groups: usize,
    top_groups: usize,
    expert: usize,
    vocab: usize,
) -> Value {
    let small = vocab <= 256;
    json!({
        "model_type": "llada2_moe",
        "architectures": ["LLaDA2MoeModelLM"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "num_hidden_layers": layers,
        "intermediate_size": dense,
        "first_k_dense_replace": 1,
        "num_experts": experts,
        "num_experts_per_tok": top_k,
        "n_group": groups,
        "topk_group": top_groups,
        "num_shared_experts": 1,
        "moe_intermediate_size": expert,
        "routed_scaling_factor": 2.5,
        "use_qk_norm": true,
        "use_qkv_bias": false,
        "use_bias": false,
        "partial_rotary_factor": 0.5,
        "vocab_size": vocab,
        "max_position_embeddings": if small { 512 } else { 32_768 },
        "rope_theta": 600_000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false,
        "hidden_act": "silu",
        "mask_token_id": if small { 250 } else { 156_895 },
        "eos_token_id": if small { 251 } else { 156_892 },
        "pad_token_id": if small { 251 } else { 156_892 },
    })
}

fn llada_config(
    d_model: usize,
    heads: usize,
    kv: usize,
    layers: usize,
    mlp: usize,
    vocab: usize,
    tied: bool,
) -> Value {
    let small = vocab <= 256;
    json!({
        "model_type": "llada",
        "architectures": ["LLaDAModelLM"],
        "d_model": d_model,
        "n_heads": heads,
        "n_kv_heads": kv,
        "n_layers": layers,
        "mlp_hidden_size": mlp,
        "vocab_size": vocab,
        "embedding_size": vocab,
        "max_sequence_length": 4096,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
        "weight_tying": tied,
        "include_bias": false,
        "include_qkv_bias": false,
        "layer_norm_type": "rms",
        "block_type": "llama",
        "activation_type": "silu",
        "rope": true,
        "rope_full_precision": true,
        "mask_token_id": if small { 250 } else { 126_336 },
        "eos_token_id": if small { 251 } else { 126_081 },
        "pad_token_id": if small { 252 } else { 126_081 },
    })
}

fn dream_config(
    hidden: usize,
    heads: usize,
    kv: usize,
    layers: usize,
    mlp: usize,
    vocab: usize,
    tied: bool,
) -> Value {
    let small = vocab <= 256;
    json!({
        "model_type": "Dream",
        "architectures": ["DreamModel"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "num_hidden_layers": layers,
        "intermediate_size": mlp,
        "vocab_size": vocab,
        "max_position_embeddings": if small { 512 } else { 131_072 },
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "rope_scaling": null,
        "mask_token_id": if small { 250 } else { 151_666 },
        "eos_token_id": if small { 251 } else { 151_643 },
        "pad_token_id": if small { 251 } else { 151_643 },
        "bos_token_id": if small { 252 } else { 151_643 },
    })
}

/// Number of weights a config describes, counted from its shapes (nothing is built).
pub fn parameter_count(arch: Architecture, config: &Value) -> Result<u64> {
    Ok(crate::models::info(arch, config)?.total_parameters)
}

/// A `VarBuilder` backend that makes every requested tensor up from the seed and its name.
struct RandomWeights {
    seed: u64,
}

impl RandomWeights {
    fn tensor_seed(&self, name: &str) -> u64 {
        // FNV-1a of the name, mixed with the seed: stable across runs and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^ self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let leaf = name.rsplit('.').next().unwrap_or(name);
        let parent = name.rsplit('.').nth(1).unwrap_or("");
        if leaf == "bias" {
            return Tensor::zeros(shape, dtype, dev);
        }
        if parent.contains("norm") || parent == "ln_f" {
            return Tensor::ones(shape, dtype, dev);
        }
        // Uniform on [-a, a] has standard deviation a / sqrt(3).
        let bound = INIT_STD * 3f64.sqrt();
        let seed = self.tensor_seed(name);
        if dev.is_cpu() {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let bound = bound as f32;
            let values: Vec<f32> = (0..shape.elem_count())
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)
        } else {
            dev.set_seed(seed)?;
            Tensor::rand(-bound as f32, bound as f32, shape, dev)?.to_dtype(dtype)
        }
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights need a shape for `{name}`")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn presets_build_and_are_seeded() {
        for name in ["llada-tiny", "dream-tiny", "llada-moe-tiny", "llada2-tiny"] {
            let (arch, config) = preset(name).unwrap();
            let ids = Tensor::new(&[[1u32, 2, 250, 7]], &Device::Cpu).unwrap();
            let run = |seed| {
                let mut model = random_model(
                    arch,
                    &config,
                    seed,
                    &Device::Cpu,
                    DType::F32,
                    Quantization::None,
                )
                .unwrap();
                let input = crate::model::ForwardInput {
                    input_ids: &ids,
                    attention_mask: None,
                    span_start: 0,
                    total_len: 4,
                    cache: crate::model::CacheMode::None,
                    block_causal: None,
                };
                model
                    .forward(input)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            };
            let (a, b, c) = (run(1), run(1), run(2));
            assert_eq!(a.len(), 4 * 256);
            assert_eq!(a, b, "{name}: same seed, same logits");
            assert_ne!(a, c, "{name}: another seed, other logits");
        }
    }

    #[test]
    fn preset_sizes_are_as_documented() {
        let count = |name| {
            let (arch, config) = preset(name).unwrap();
            parameter_count(arch, &config).unwrap()
        };
        assert!(
            (95_000_000..115_000_000).contains(&count("llada-100m")),
            "{}",
            count("llada-100m")
        );
        assert!(
            (100_000_000..120_000_000).contains(&count("dream-100m")),
            "{}",
            count("dream-100m")
        );
        let eight = count("llada-8b");
        assert!((7_500_000_000..8_500_000_000).contains(&eight), "{eight}");
        // The published sizes: LLaDA-MoE-7B-A1B 7B total / 1.4B active without the embeddings;
        // LLaDA2.0-mini 16B total / 1.44B active with the embeddings.
        let info = |name| {
            let (arch, config) = preset(name).unwrap();
            crate::models::info(arch, &config).unwrap()
        };
        let moe = info("llada-moe-7b");
        let embeddings = 2 * 157_184 * 2048;
        assert!(
            (6_900_000_000..7_600_000_000).contains(&moe.total_parameters),
            "{moe:?}"
        );
        let active = moe.active_parameters - embeddings;
        assert!((1_000_000_000..1_500_000_000).contains(&active), "{active}");
        let dense = info("llada-moe-7b-dense");
        let ratio = dense.total_parameters as f64 / moe.active_parameters as f64;
        assert!(
            (0.98..1.02).contains(&ratio),
            "dense baseline of the active size: {ratio}"
        );
        let mini = info("llada2-mini");
        assert!(
            (15_500_000_000..17_000_000_000).contains(&mini.total_parameters),
            "{mini:?}"
        );
        let active = mini.active_parameters;
        assert!((1_300_000_000..1_600_000_000).contains(&active), "{active}");
        assert!(preset("nope").is_none());
    }
}
