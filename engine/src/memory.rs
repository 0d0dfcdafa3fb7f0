//! A memory estimate for running a model — weights, the activations of one batched forward pass,
//! and the key/value caches — and the check of that estimate against the memory the system has
//! available (`MemAvailable` in `/proc/meminfo`), so that a run that cannot fit fails with a clear
//! message *before* anything is allocated instead of being killed by the kernel's OOM killer.
//!
//! The estimate is deliberately coarse (within a factor of about 1.5 for LLaDA/Dream shapes): it
//! counts the tensors that dominate — the f32 logits over the whole vocabulary, the attention
//! scores, the MLP's widened hidden states — and ignores allocator slack. It depends only on
//! `ModelInfo`, so new model families get it for free. It does not load or size anything itself.
//! Quantized weights are counted at their block format's size ([`weight_bytes`]).

use crate::model::ModelInfo;
use crate::models::Quantization;

/// Bytes needed for one run, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The weights in their working dtype (0 when they are already loaded).
    pub weights: u64,
    /// Peak activations of one forward pass over the whole batch.
    pub activations: u64,
    /// Key/value caches (prefix or dual cache) of the whole batch.
    pub caches: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.activations)
            .saturating_add(self.caches)
    }
}

/// The shape of a run to estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Number of weights (`random::parameter_count`); 0 when they are already in memory.
    pub parameters: u64,
    /// Bytes per weight and per activation element in the working dtype (4 for f32, 2 for bf16).
    pub dtype_bytes: u64,
    /// How the linear layers are stored (their weights then take the format's bytes).
    pub quantization: Quantization,
    /// Sequences decoded together.
    pub batch: u64,
    /// Tokens per sequence (prompt + generated).
    pub sequence_length: u64,
}

/// Estimate the memory of `workload` on a model shaped like `info`.
pub fn estimate(info: &ModelInfo, workload: &Workload) -> MemoryEstimate {
    let tokens = workload.batch.saturating_mul(workload.sequence_length);
    let hidden = info.hidden_size as u64;
    let element = workload.dtype_bytes.max(1);
    // Logits are materialised in f32 for sampling (softmax, confidences): the largest tensor.
    let logits = tokens
        .saturating_mul(info.logits_width as u64)
        .saturating_mul(4);
    // Residual, normed input, q/k/v/o projections and the MLP's ~3 widened states (~4 x hidden).
    let hidden_states = tokens.saturating_mul(hidden).saturating_mul(20 * element);
    // One layer's attention scores and probabilities are alive at a time.
    let scores = workload
        .batch
        .saturating_mul(info.num_heads as u64)
        .saturating_mul(workload.sequence_length)
        .saturating_mul(workload.sequence_length)
        .saturating_mul(2 * element);
    let kv_width = (info.num_kv_heads * info.head_dim) as u64;
    let caches = tokens
        .saturating_mul(info.num_layers as u64)
        .saturating_mul(2 * kv_width)
        .saturating_mul(element);
    MemoryEstimate {
        weights: weight_bytes(
            info,
            workload.parameters,
            workload.dtype_bytes,
            workload.quantization,
        ),
        activations: logits
            .saturating_mul(2)
            .saturating_add(hidden_states)
            .saturating_add(scores),
        caches,
    }
}

/// Bytes `parameters` weights of a model shaped like `info` take once loaded: all in the dtype
/// when dense; quantized, the embedding in f16, the head in q8_0 and the rest in the format (the
/// layout `models::linear` loads). Without knowing whether the head is tied, a quantized model is
/// counted with a separate head, and the head's weights once more at the block rate: a slight
/// over-estimate (under 5% for a 7–8B model).
pub fn weight_bytes(
    info: &ModelInfo,
    parameters: u64,
    dtype_bytes: u64,
    quantization: Quantization,
) -> u64 {
    let Some(rate) = quantization.bytes_per_weight() else {
        return parameters.saturating_mul(dtype_bytes.max(1));
    };
    let embedding = (info.logits_width as u64).saturating_mul(info.hidden_size as u64);
    let body = parameters.saturating_sub(embedding) as f64 * rate;
    let head = embedding as f64 * (34.0 / 32.0);
    embedding
        .saturating_mul(2)
        .saturating_add((body + head).ceil() as u64)
}

/// `MemAvailable` of `/proc/meminfo` in bytes; `None` where it cannot be read (not Linux).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

/// This process's peak resident set (`VmHWM`) and current resident set (`VmRSS`) in bytes, from
/// `/proc/self/status`; `None` where it cannot be read (not Linux).
pub fn process_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The estimate does not fit in the available memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} needs about {} (weights {}, activations {}, caches {}) but only {} is available: \
     use quantized weights, a smaller model, batch or length, a GPU, or free memory",
    gib(estimate.total()),
    gib(estimate.weights),
    gib(estimate.activations),
    gib(estimate.caches),
    gib(*available)
)]
pub struct NotEnoughMemory {
    pub what: String,
    pub estimate: MemoryEstimate,
    pub available: u64,
}

/// Refuse `estimate` when it exceeds `available` bytes (no check when unknown).
pub fn check_fits(
    what: &str,
    estimate: MemoryEstimate,
    available: Option<u64>,
) -> Result<(), NotEnoughMemory> {
    match available {
        Some(available) if estimate.total() > available => Err(NotEnoughMemory {
            what: what.to_string(),
            estimate,
            available,
        }),
        _ => Ok(()),
    }
}

/// Tokens of the smallest run a loaded model is checked for: one sequence of 1,024 tokens (its
/// activations and caches come on top of the weights).
const CHECKED_TOKENS: u64 = 1024;

/// Refuse, before anything is read, a model whose weights (in `dtype`, under `quantization`) and
/// one short run do not fit in the memory available.
pub fn check_model(
    name: &str,
    info: &ModelInfo,
    dtype: candle_core::DType,
    quantization: Quantization,
) -> Result<(), NotEnoughMemory> {
    let workload = Workload {
        parameters: info.total_parameters,
        dtype_bytes: dtype.size_in_bytes() as u64,
        quantization,
        batch: 1,
        sequence_length: CHECKED_TOKENS.min(info.max_sequence_length as u64),
    };
    let estimate = estimate(info, &workload);
    check_fits(name, estimate, available_memory())
}

/// [`check_model`] for a random-weight model built from `config` (`hone bench --random-config`):
/// refused before anything is built when its weights plus a `batch` of `sequence_length` tokens do
/// not fit (an 8B model in f32 needs ~32 GB and used to be killed by the OOM killer unannounced).
pub fn check_random_model(
    name: &str,
    arch: crate::model::Architecture,
    config: &serde_json::Value,
    dtype: candle_core::DType,
    quantization: Quantization,
    batch: usize,
    sequence_length: usize,
) -> crate::Result<()> {
    let info = crate::models::info(arch, config)?;
    let workload = Workload {
        parameters: info.total_parameters,
        dtype_bytes: dtype.size_in_bytes() as u64,
        quantization,
        batch: batch as u64,
        sequence_length: sequence_length as u64,
    };
    check_fits(name, estimate(&info, &workload), available_memory())?;
    Ok(())
}

/// Whether a `batch` of `sequence_length` tokens (activations and caches, f32) fits in the memory
/// left once a model is loaded.
pub fn check_activations(
    what: &str,
    info: &ModelInfo,
    batch: usize,
    sequence_length: usize,
) -> Result<(), NotEnoughMemory> {
    let workload = Workload {
        parameters: 0,
        dtype_bytes: 4,
        quantization: Quantization::default(),
        batch: batch as u64,
        sequence_length: sequence_length.min(info.max_sequence_length) as u64,
    };
    check_fits(what, estimate(info, &workload), available_memory())
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::Architecture;

    fn llada_8b() -> ModelInfo {
        let (arch, config) = crate::random::preset("llada-8b").unwrap();
        assert_eq!(arch, Architecture::Llada);
        crate::models::info(arch, &config).unwrap()
    }

    #[test]
    fn an_8b_model_in_f32_does_not_fit_in_16_gib() {
        let (arch, config) = crate::random::preset("llada-8b").unwrap();
        let parameters = crate::random::parameter_count(arch, &config).unwrap();
        let estimate = estimate(
            &llada_8b(),
            &Workload {
                parameters,
                dtype_bytes: 4,
                quantization: Quantization::None,
                batch: 1,
                sequence_length: 256,
            },
        );
        assert!(estimate.weights > 25 << 30, "{estimate:?}");
        assert!(estimate.activations < 2 << 30, "{estimate:?}");
        let error = check_fits("llada-8b", estimate, Some(16 << 30)).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("llada-8b needs about "), "{message}");
        assert!(message.contains("only 16.0 GiB is available"), "{message}");
        assert!(check_fits("llada-8b", estimate, Some(64 << 30)).is_ok());
        assert!(check_fits("llada-8b", estimate, None).is_ok());
    }

    #[test]
    fn quantized_8b_weights_fit_the_targets() {
        let info = llada_8b();
        let parameters = info.total_parameters;
        let gib = |q| weight_bytes(&info, parameters, 4, q) as f64 / (1u64 << 30) as f64;
        let (dense, q8, q4) = (
            gib(Quantization::None),
            gib(Quantization::Q8_0),
            gib(Quantization::Q4K),
        );
        // 8.0B weights: 30 GiB in f32; q8_0 ~8.5 bits and q4k ~4.5 bits a weight for the layers,
        // plus the f16 embedding (0.97 GiB) and the q8_0 head (0.51 GiB).
        assert!((29.0..31.0).contains(&dense), "{dense}");
        assert!((8.5..9.5).contains(&q8), "{q8}");
        assert!((5.0..6.0).contains(&q4), "{q4}");
    }

    #[test]
    fn activations_grow_with_batch_and_length_without_overflow() {
        let info = llada_8b();
        let small = estimate(
            &info,
            &Workload {
                parameters: 0,
                dtype_bytes: 2,
                quantization: Quantization::None,
                batch: 1,
                sequence_length: 128,
            },
        );
        let large = estimate(
            &info,
            &Workload {
                parameters: 0,
                dtype_bytes: 2,
                quantization: Quantization::None,
                batch: 4,
                sequence_length: 128,
            },
        );
        assert_eq!(small.weights, 0);
        assert!(large.activations >= 4 * small.activations);
        let huge = estimate(
            &info,
            &Workload {
                parameters: u64::MAX,
                dtype_bytes: 4,
                quantization: Quantization::None,
                batch: u64::MAX,
                sequence_length: u64::MAX,
            },
        );
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn reads_mem_available() {
        let meminfo = "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(2048 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }
}
