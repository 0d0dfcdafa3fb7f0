//! Helpers the engine's integration-test binaries share: the parity cases committed under
//! `tests/fixtures`, loading one at f32 (optionally quantized), and the two error measures the
//! quantized and GGUF tests bound (relative L2 of the logits, argmax agreement).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use hone_engine::checkpoint::{self, ModelSpec};
use hone_engine::model::DiffusionModel;
use hone_engine::models::Quantization;

/// `tests/fixtures/<set>` (`parity` or `parity-v2`).
pub fn fixture_set(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(set)
}

/// The cases of one fixture set (folders with golden logits), sorted; at least `min` of them.
pub fn parity_cases(set: &str, min: usize) -> Vec<PathBuf> {
    let dir = fixture_set(set);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/sync-fixtures.sh)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("forward.safetensors").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= min,
        "expected at least {min} cases in {}, found {cases:?}",
        dir.display()
    );
    cases
}

/// A checkpoint folder loaded on the CPU at f32, its weights quantized as asked.
pub fn load_quantized(dir: &Path, quantization: Quantization) -> Box<dyn DiffusionModel> {
    let spec = ModelSpec {
        model: dir.display().to_string(),
        arch: None,
        device: Device::Cpu,
        dtype: Some(DType::F32),
        quantization,
    };
    checkpoint::load(&spec).unwrap().model
}

/// `||got - want|| / ||want||` over all logits, summed in f64.
pub fn relative_l2(got: &Tensor, want: &Tensor) -> f64 {
    let got = got.to_dtype(DType::F64).unwrap();
    let want = want.to_dtype(DType::F64).unwrap();
    let norm = |t: &Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    (norm(&(&got - &want).unwrap()) / norm(&want)).sqrt()
}

/// Share of positions (`[batch, positions, vocab]` logits) whose argmax token is the same.
pub fn argmax_agreement(got: &Tensor, want: &Tensor) -> f64 {
    let argmax = |t: &Tensor| -> Vec<u32> {
        t.argmax(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, b) = (argmax(got), argmax(want));
    assert_eq!(a.len(), b.len(), "different position counts");
    a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}
