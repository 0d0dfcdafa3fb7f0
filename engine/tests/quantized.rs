//! Quantized weights (`Quantization::Q8_0`, `Q4K`) against f32: the relative L2 error of the logits
//! and the share of positions whose argmax token is unchanged, on every parity case (the goldens are
//! the PyTorch f32 logits) and on a random LLaDA wide enough for q4k's 256-value blocks (the parity
//! models are 64 wide, so their q4k layers fall back to q8_0). Also the layer-level pieces: fused
//! packing is exact at f32, quantized packing equals the parts run one by one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use hone_engine::model::{CacheMode, DiffusionModel, ForwardInput};
use hone_engine::models::linear::{FusedLinear, Linear, LinearWeight};
use hone_engine::models::Quantization;

use common::{argmax_agreement, load_quantized as load, parity_cases, relative_l2};

fn cases() -> Vec<PathBuf> {
    let mut cases = parity_cases("parity", 4);
    cases.extend(parity_cases("parity-v2", 4));
    cases
}

fn logits(model: &mut dyn DiffusionModel, ids: &Tensor) -> Tensor {
    let total = ids.dim(1).unwrap();
    model
        .forward(ForwardInput {
            input_ids: ids,
            attention_mask: None,
            span_start: 0,
            total_len: total,
            cache: CacheMode::None,
            block_causal: None,
            logits_rows: None,
        })
        .unwrap()
}

// Tolerances, from the figures measured on these cases (printed with --nocapture):
// - q8_0 rounds each weight to 1/127 of its 32-value block's largest magnitude (~0.3% of a weight's
//   size on average). On the parity models, whose rows are only two blocks wide (d = 64), that
//   averages out little: the dense models' logits moved by 1.5-2.6% relative L2 with 98-100% of
//   positions keeping their argmax; the MoE ones more (llada21-tiny 5.7%, 90% agreement), since a
//   small change of the router's input can send a token to another expert. We accept 8% and 85%
//   agreement: above the worst measured, and far below what a broken layer gives (a wrong packing
//   or a transposed block moves the logits by ~100%).
// - q4k (16 levels per 32 values, scales per 256) on the 256-wide random LLaDA: ~11%. Uniform random
//   weights are q4k's worst case (no outliers to spend the levels on) and their logits are nearly
//   flat, so argmax agreement is not meaningful there; we accept 20% and require q4k to be coarser
//   than q8_0 (else the test would not be exercising q4k at all).
const Q8_TOLERANCE: f64 = 0.08;
const Q4K_TOLERANCE: f64 = 0.2;
const MIN_AGREEMENT: f64 = 0.85;

#[test]
fn quantized_logits_stay_close_to_f32() {
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let golden =
            candle_core::safetensors::load(dir.join("forward.safetensors"), &Device::Cpu).unwrap();
        let ids = golden["input_ids"].to_dtype(DType::U32).unwrap();
        let want = &golden["logits"];
        let f32_logits = logits(load(&dir, Quantization::None).as_mut(), &ids);
        for quantization in [Quantization::Q8_0, Quantization::Q4K] {
            let got = logits(load(&dir, quantization).as_mut(), &ids);
            let error = relative_l2(&got, want);
            let agreement = argmax_agreement(&got, &f32_logits);
            eprintln!(
                "{name} {quantization}: relative L2 {error:.4}, argmax agreement {agreement:.3}"
            );
            assert!(
                error <= Q8_TOLERANCE,
                "{name} {quantization}: relative L2 {error}"
            );
            assert!(
                agreement >= MIN_AGREEMENT,
                "{name} {quantization}: agreement {agreement}"
            );
        }
    }
}

#[test]
fn q4k_on_wide_rows_is_close_but_coarser_than_q8_0() {
    let mut config = hone_engine::random::preset("llada-tiny").unwrap().1;
    config["d_model"] = 256.into();
    config["mlp_hidden_size"] = 512.into();
    let arch = hone_engine::model::Architecture::Llada;
    let build = |q| {
        hone_engine::random::random_model(arch, &config, 7, &Device::Cpu, DType::F32, q).unwrap()
    };
    let ids = Tensor::new(
        &[[1u32, 5, 9, 250, 250, 17, 250, 3, 44, 250, 2, 8]],
        &Device::Cpu,
    )
    .unwrap();
    let want = logits(build(Quantization::None).as_mut(), &ids);
    let q8 = logits(build(Quantization::Q8_0).as_mut(), &ids);
    let q4 = logits(build(Quantization::Q4K).as_mut(), &ids);
    let (e8, e4) = (relative_l2(&q8, &want), relative_l2(&q4, &want));
    eprintln!(
        "random llada 256 wide: q8_0 {e8:.4} (agreement {:.3}), q4k {e4:.4} (agreement {:.3})",
        argmax_agreement(&q8, &want),
        argmax_agreement(&q4, &want)
    );
    assert!(e8 <= Q8_TOLERANCE, "q8_0: {e8}");
    assert!(e4 <= Q4K_TOLERANCE, "q4k: {e4}");
    assert!(e4 > e8, "q4k ({e4}) should be coarser than q8_0 ({e8})");
}

fn matrix(rows: usize, cols: usize, seed: usize) -> Tensor {
    let values: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 31 + seed * 17) % 101) as f32 / 101.0 - 0.5)
        .collect();
    Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
}

#[test]
fn fused_layers_equal_their_parts() {
    let x = matrix(5, 256, 1);
    let (a, b) = (matrix(64, 256, 2), matrix(32, 256, 3));
    // Dense: packing is exact.
    let fused = FusedLinear::pack(vec![
        Linear::from_weight(a.clone()),
        Linear::from_weight(b.clone()),
    ])
    .unwrap();
    let [ya, yb] = fused.forward_n(&x).unwrap();
    let direct_a = x.matmul(&a.t().unwrap()).unwrap();
    let diff = (ya - &direct_a)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "{diff}");
    assert_eq!(yb.dims(), [5, 32]);
    // Quantized: the packed blocks give the same numbers as each part alone.
    for dtype in [
        candle_core::quantized::GgmlDType::Q8_0,
        candle_core::quantized::GgmlDType::Q4K,
    ] {
        let qa = LinearWeight::quantize(&a, dtype).unwrap();
        let qb = LinearWeight::quantize(&b, dtype).unwrap();
        let alone = Linear::from_weights(qb.clone(), None).forward(&x).unwrap();
        let fused = FusedLinear::pack(vec![
            Linear::from_weights(qa, None),
            Linear::from_weights(qb, None),
        ])
        .unwrap();
        assert!(matches!(fused, FusedLinear::Packed { .. }));
        assert_eq!(fused.weights()[0].ggml_dtype(), Some(dtype));
        let [_, packed_b] = fused.forward_n(&x).unwrap();
        let diff = (packed_b - alone)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "{dtype:?}");
    }
}
