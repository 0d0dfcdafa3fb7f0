//! Random-weight models of a given `config.json`, built directly on the target device from a seed:
//! for benchmarks and GPU checks of real shapes (an 8B LLaDA in bf16 on a GPU) without carrying
//! checkpoints around. Also a few preset configs (`llada-tiny`, `llada-100m`, `llada-8b`,
//! `dream-tiny`, `dream-100m`, `dream-7b`).
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
) -> Result<Box<dyn DiffusionModel>> {
    let vb = VarBuilder::from_backend(Box::new(RandomWeights { seed }), dtype, device.clone());
    crate::models::build(arch, config, vb)
}

/// The names [`preset`] accepts.
pub const PRESETS: &[&str] = &[
    "llada-tiny",
    "llada-100m",
    "llada-8b",
    "dream-tiny",
    "dream-100m",
    "dream-7b",
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
        for name in ["llada-tiny", "dream-tiny"] {
            let (arch, config) = preset(name).unwrap();
            let ids = Tensor::new(&[[1u32, 2, 250, 7]], &Device::Cpu).unwrap();
            let run = |seed| {
                let mut model =
                    random_model(arch, &config, seed, &Device::Cpu, DType::F32).unwrap();
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
        assert!(preset("nope").is_none());
    }
}
