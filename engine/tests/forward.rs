//! Forward-pass parity with the PyTorch references on every case of `tests/fixtures/parity` and
//! `tests/fixtures/parity-v2` (block-causal and padded logits included), the cache modes against the
//! no-cache pass (the block-causal `Extend` / `Prefix` caches against the full recompute), padding
//! invariants, special-token checks at load, and clear errors on bad checkpoints and bad inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use hone_engine::checkpoint::{self, ModelSpec};
use hone_engine::model::{CacheMode, DiffusionModel, ForwardInput, KvCache};
use hone_engine::Error;

mod common;
#[path = "forward/gguf.rs"]
mod gguf;

const TOLERANCE: f32 = 1e-4;
/// Cached and uncached passes compute the same sums over different row counts, so the matmul
/// kernels may add in another order: equal up to float rounding (measured: at most 2e-5).
const CACHE_TOLERANCE: f32 = 5e-5;

fn parity_dir() -> PathBuf {
    common::fixture_set("parity")
}

fn cases() -> Vec<PathBuf> {
    common::parity_cases("parity", 4)
}

fn load(dir: &Path) -> Box<dyn DiffusionModel> {
    common::load_quantized(dir, Default::default())
}

fn golden(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("forward.safetensors"), &Device::Cpu).unwrap()
}

fn forward(
    model: &mut dyn DiffusionModel,
    ids: &Tensor,
    mask: Option<&Tensor>,
    start: usize,
    total: usize,
    cache: CacheMode<'_>,
) -> Tensor {
    forward_blocks(model, ids, mask, start, total, cache, None)
}

fn forward_blocks(
    model: &mut dyn DiffusionModel,
    ids: &Tensor,
    mask: Option<&Tensor>,
    start: usize,
    total: usize,
    cache: CacheMode<'_>,
    block_causal: Option<usize>,
) -> Tensor {
    model
        .forward(ForwardInput {
            input_ids: ids,
            attention_mask: mask,
            span_start: start,
            total_len: total,
            cache,
            block_causal,
            logits_rows: None,
        })
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn logits_match_the_reference_on_every_case() {
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let data = golden(&dir);
        let ids = data["input_ids"].to_dtype(DType::U32).unwrap();
        let total = ids.dim(1).unwrap();
        let mut model = load(&dir);
        let logits = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);
        let err = max_abs_diff(&logits, &data["logits"]);
        eprintln!("parity {name}: max abs err {err:.3e}");
        assert!(err <= TOLERANCE, "{name}: max abs error {err}");

        if let (Some(mask), Some(expected)) =
            (data.get("padded_attention_mask"), data.get("padded_logits"))
        {
            let padded = forward(model.as_mut(), &ids, Some(mask), 0, total, CacheMode::None);
            let err = max_abs_diff(&padded, expected);
            eprintln!("parity {name} padded: max abs err {err:.3e}");
            assert!(err <= TOLERANCE, "{name} padded: max abs error {err}");
            assert!(
                max_abs_diff(&padded, &logits) > 1e-3,
                "{name}: the mask must change the padded row"
            );
        }
    }
}

#[test]
fn cache_modes_reproduce_the_uncached_pass() {
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let ids = golden(&dir)["input_ids"].to_dtype(DType::U32).unwrap();
        let total = ids.dim(1).unwrap();
        let mut model = load(&dir);
        let full = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);

        let mut cache = KvCache::new(model.info().num_layers);
        let recorded = forward(
            model.as_mut(),
            &ids,
            None,
            0,
            total,
            CacheMode::Record(&mut cache),
        );
        assert_eq!(
            max_abs_diff(&recorded, &full),
            0.0,
            "{name}: record must not change the logits"
        );
        assert_eq!(cache.len(), total);

        let start = 10;
        let span = ids.narrow(1, start, total - start).unwrap();
        let prefix = forward(
            model.as_mut(),
            &span,
            None,
            start,
            total,
            CacheMode::Prefix(&cache),
        );
        let err = max_abs_diff(&prefix, &full.narrow(1, start, total - start).unwrap());
        eprintln!("cache {name} prefix: max abs diff {err:.3e}");
        assert!(
            err <= CACHE_TOLERANCE,
            "{name}: prefix cache differs by {err}"
        );

        let (start, n) = (8, 8);
        let span = ids.narrow(1, start, n).unwrap();
        let dual = forward(
            model.as_mut(),
            &span,
            None,
            start,
            total,
            CacheMode::Dual(&mut cache),
        );
        let err = max_abs_diff(&dual, &full.narrow(1, start, n).unwrap());
        eprintln!("cache {name} dual: max abs diff {err:.3e}");
        assert!(
            err <= CACHE_TOLERANCE,
            "{name}: dual cache differs by {err}"
        );
        assert_eq!(
            cache.len(),
            total,
            "{name}: dual keeps the whole sequence cached"
        );

        // A changed token in the span must change the span's logits (the cache is not stale-only).
        let changed = Tensor::full(3u32, span.dims(), &Device::Cpu).unwrap();
        let other = forward(
            model.as_mut(),
            &changed,
            None,
            start,
            total,
            CacheMode::Dual(&mut cache),
        );
        assert!(
            max_abs_diff(&other, &dual) > 1e-3,
            "{name}: new span tokens must matter"
        );
    }
}

/// Dream shifts positions past left padding, so a padded row's real tokens get the logits of the
/// same tokens alone.
#[test]
fn dream_left_padding_equals_the_unpadded_row() {
    let dir = parity_dir().join("dream-tiny");
    let ids = golden(&dir)["input_ids"].to_dtype(DType::U32).unwrap();
    let (pad, len) = (5, 19);
    let row = ids.narrow(0, 0, 1).unwrap().narrow(1, 0, len).unwrap();
    let mut model = load(&dir);
    let alone = forward(model.as_mut(), &row, None, 0, len, CacheMode::None);
    let padding = Tensor::full(251u32, (1, pad), &Device::Cpu).unwrap();
    let padded_ids = Tensor::cat(&[&padding, &row], 1).unwrap();
    let mask = Tensor::cat(
        &[
            &Tensor::zeros((1, pad), DType::U32, &Device::Cpu).unwrap(),
            &Tensor::ones((1, len), DType::U32, &Device::Cpu).unwrap(),
        ],
        1,
    )
    .unwrap();
    let padded = forward(
        model.as_mut(),
        &padded_ids,
        Some(&mask),
        0,
        pad + len,
        CacheMode::None,
    );
    let err = max_abs_diff(&padded.narrow(1, pad, len).unwrap(), &alone);
    assert!(err <= 1e-5, "padded row differs by {err}");
}

fn forward_err(
    model: &mut dyn DiffusionModel,
    ids: &Tensor,
    mask: Option<&Tensor>,
    total: usize,
) -> String {
    let input = ForwardInput {
        input_ids: ids,
        attention_mask: mask,
        span_start: 0,
        total_len: total,
        cache: CacheMode::None,
        block_causal: None,
        logits_rows: None,
    };
    match model.forward(input) {
        Err(Error::InvalidInput(msg)) => msg,
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let mut model = load(&parity_dir().join("llada-tiny"));
    let dev = Device::Cpu;
    let out_of_range = Tensor::new(&[[1u32, 256]], &dev).unwrap();
    assert!(forward_err(model.as_mut(), &out_of_range, None, 2).contains("out of range"));
    let empty = Tensor::zeros((1, 0), DType::U32, &dev).unwrap();
    assert!(forward_err(model.as_mut(), &empty, None, 0).contains("empty"));
    let ids = Tensor::new(&[[1u32, 2, 3]], &dev).unwrap();
    let bad_mask = Tensor::ones((1, 2), DType::U32, &dev).unwrap();
    assert!(forward_err(model.as_mut(), &ids, Some(&bad_mask), 3).contains("attention_mask"));
    assert!(forward_err(model.as_mut(), &ids, None, 2).contains("span"));
    let too_long = Tensor::zeros((1, 600), DType::U32, &dev).unwrap();
    assert!(forward_err(model.as_mut(), &too_long, None, 600).contains("longer"));
    let cache = KvCache::default();
    let input = ForwardInput {
        input_ids: &ids,
        attention_mask: None,
        span_start: 1,
        total_len: 4,
        cache: CacheMode::Prefix(&cache),
        block_causal: None,
        logits_rows: None,
    };
    let err = model.forward(input).unwrap_err().to_string();
    assert!(err.contains("record"), "{err}");
}

/// Copy a parity checkpoint into a temp folder, letting `edit` change its tensors.
fn edited_checkpoint(
    case: &str,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = parity_dir().join(case);
    std::fs::copy(src.join("config.json"), tmp.path().join("config.json")).unwrap();
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, tmp.path().join("model.safetensors")).unwrap();
    tmp
}

fn load_err(dir: &Path) -> String {
    let spec = ModelSpec {
        model: dir.display().to_string(),
        arch: None,
        device: Device::Cpu,
        dtype: None,
        quantization: Default::default(),
    };
    checkpoint::load(&spec).unwrap_err().to_string()
}

#[test]
fn broken_checkpoints_name_the_problem() {
    let missing = "model.transformer.blocks.1.up_proj.weight";
    let tmp = edited_checkpoint("llada-tiny", |t| {
        t.remove(missing);
    });
    let err = load_err(tmp.path());
    assert!(err.contains(missing) && err.contains("missing"), "{err}");

    let tmp = edited_checkpoint("dream-tiny", |t| {
        t.insert(
            "model.norm.weight".into(),
            Tensor::ones(65, DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_err(tmp.path());
    assert!(
        err.contains("model.norm.weight") && err.contains("shape"),
        "{err}"
    );

    // Untied Dream without lm_head: the head is named.
    let tmp = edited_checkpoint("dream-tiny", |t| {
        t.remove("lm_head.weight");
    });
    assert!(load_err(tmp.path()).contains("lm_head.weight"));

    let tmp = edited_checkpoint("llada-tiny", |_| {});
    let bytes = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    std::fs::write(
        tmp.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(
        err.contains("truncated") && err.contains("model.safetensors"),
        "{err}"
    );

    std::fs::write(
        tmp.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    assert!(load_err(tmp.path()).contains("not a valid safetensors file"));

    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"model_type": "sdar", "architectures": ["SDARForCausalLM"]}"#,
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(
        err.contains("SDAR is not supported") && err.contains("llada2"),
        "{err}"
    );
    std::fs::write(tmp.path().join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("gpt2") && err.contains("supported"), "{err}");

    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    assert!(load_err(tmp.path()).contains("no weights"));

    assert!(load_err(&tmp.path().join("nope")).contains("does not exist"));
}

#[test]
fn sharded_checkpoints_load_like_single_files() {
    let src = parity_dir().join("dream-tied");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), tmp.path().join("config.json")).unwrap();
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let first: Vec<&String> = names.iter().step_by(2).copied().collect();
    let second: Vec<&String> = names.iter().skip(1).step_by(2).copied().collect();
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", &first),
        ("model-00002-of-00002.safetensors", &second),
    ] {
        let shard: HashMap<String, Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), tensors[*n].clone()))
            .collect();
        candle_core::safetensors::save(&shard, tmp.path().join(file)).unwrap();
        for n in part.iter() {
            weight_map.insert((*n).clone(), serde_json::Value::String(file.into()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let ids = golden(&src)["input_ids"].to_dtype(DType::U32).unwrap();
    let total = ids.dim(1).unwrap();
    let sharded = forward(
        load(tmp.path()).as_mut(),
        &ids,
        None,
        0,
        total,
        CacheMode::None,
    );
    let single = forward(load(&src).as_mut(), &ids, None, 0, total, CacheMode::None);
    assert_eq!(max_abs_diff(&sharded, &single), 0.0);
}

#[test]
fn bf16_logits_stay_close_to_the_f32_reference() {
    let dir = parity_dir().join("llada-tiny");
    let spec = ModelSpec {
        model: dir.display().to_string(),
        arch: None,
        device: Device::Cpu,
        dtype: Some(DType::BF16),
        quantization: Default::default(),
    };
    let mut model = checkpoint::load(&spec).unwrap().model;
    let data = golden(&dir);
    let ids = data["input_ids"].to_dtype(DType::U32).unwrap();
    let logits = forward(
        model.as_mut(),
        &ids,
        None,
        0,
        ids.dim(1).unwrap(),
        CacheMode::None,
    );
    assert_eq!(logits.dtype(), DType::F32);
    let err = max_abs_diff(&logits, &data["logits"]);
    let spread = data["logits"]
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    eprintln!("bf16 llada-tiny: max abs err {err:.3e} (logit scale {spread:.2})");
    assert!(
        err <= 0.05 * spread.max(1.0),
        "bf16 error {err} too large for logits of scale {spread}"
    );
}

// ---------------------------------------------------------------------------------------------
// Second parity set: Open-dCoder, LLaDA-MoE, LLaDA2.0 / 2.1 (tests/fixtures/parity-v2).
// ---------------------------------------------------------------------------------------------

fn parity_v2_dir() -> PathBuf {
    common::fixture_set("parity-v2")
}

fn v2_cases() -> Vec<PathBuf> {
    let cases = common::parity_cases("parity-v2", 4);
    assert_eq!(
        cases.len(),
        4,
        "expected the four parity-v2 cases, found {cases:?}"
    );
    cases
}

fn check(name: &str, what: &str, got: &Tensor, expected: &Tensor) {
    let err = max_abs_diff(got, expected);
    eprintln!("parity-v2 {name} {what}: max abs err {err:.3e}");
    assert!(err <= TOLERANCE, "{name} {what}: max abs error {err}");
}

#[test]
fn v2_logits_match_the_reference_on_every_case() {
    let mut checked = 0;
    for dir in v2_cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let data = golden(&dir);
        let ids = data["input_ids"].to_dtype(DType::U32).unwrap();
        let total = ids.dim(1).unwrap();
        let mut model = load(&dir);
        let logits = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);
        check(&name, "logits", &logits, &data["logits"]);
        checked += 1;

        for block in [8, 5] {
            if let Some(expected) = data.get(&format!("block_causal_logits_b{block}")) {
                assert!(model.info().block_causal, "{name} is block-causal");
                let got = forward_blocks(
                    model.as_mut(),
                    &ids,
                    None,
                    0,
                    total,
                    CacheMode::None,
                    Some(block),
                );
                check(&name, &format!("block-causal b{block}"), &got, expected);
                assert!(
                    max_abs_diff(&got, &logits) > 1e-3,
                    "{name}: the mask must matter"
                );
                checked += 1;
            }
        }
        if let (Some(mask), Some(expected)) =
            (data.get("padded_attention_mask"), data.get("padded_logits"))
        {
            let got = forward(model.as_mut(), &ids, Some(mask), 0, total, CacheMode::None);
            check(&name, "padded", &got, expected);
            checked += 1;
        }
        if let (Some(pad_ids), Some(expected)) = (data.get("pad_input_ids"), data.get("pad_logits"))
        {
            // The sampler's mask: `x != pad_token_id` (251 in odc-tiny's config).
            let pad_ids = pad_ids.to_dtype(DType::U32).unwrap();
            let mask = pad_ids.ne(251u32).unwrap().to_dtype(DType::U32).unwrap();
            let got = forward(
                model.as_mut(),
                &pad_ids,
                Some(&mask),
                0,
                total,
                CacheMode::None,
            );
            check(&name, "pad", &got, expected);
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        4 + 2 * 2 + 1 + 1,
        "every forward golden of parity-v2 is checked"
    );
}

#[test]
fn v2_families_are_detected_with_their_facts() {
    use hone_engine::model::Architecture;
    let expect = [
        ("llada-moe-tiny", Architecture::LladaMoe, false, false),
        ("llada2-tiny", Architecture::Llada2, true, false),
        ("llada21-tiny", Architecture::Llada2, true, false),
        ("odc-tiny", Architecture::OpenDcoder, false, true),
    ];
    for (case, arch, block_causal, shift) in expect {
        let spec = ModelSpec {
            model: parity_v2_dir().join(case).display().to_string(),
            arch: None,
            device: Device::Cpu,
            dtype: Some(DType::F32),
            quantization: Default::default(),
        };
        let loaded = checkpoint::load(&spec).unwrap();
        let info = loaded.model.info();
        assert_eq!(info.architecture, arch, "{case}");
        assert_eq!(info.block_causal, block_causal, "{case}");
        assert_eq!(info.shift_logits, shift, "{case}");
        assert_eq!(loaded.special.mask, 250, "{case}: mask id");
        assert!(loaded.warnings.is_empty(), "{case}: {:?}", loaded.warnings);
        assert!(info.total_parameters >= info.active_parameters);
        if case == "odc-tiny" {
            // Mask id from the tokenizer's `[MASK]`: config.json has none.
            assert_eq!(info.total_parameters, info.active_parameters);
        } else {
            assert!(
                info.active_parameters < info.total_parameters,
                "{case}: MoE"
            );
        }
    }
}

/// The block-causal caches: a growing `Extend` cache (one block's forward per step, rolled back with
/// `truncate` to redo a block) and a `Prefix` cache give the logits of the full recompute.
#[test]
fn block_causal_caches_equal_the_full_recompute() {
    let dir = parity_v2_dir().join("llada2-tiny");
    let ids = golden(&dir)["input_ids"].to_dtype(DType::U32).unwrap();
    let total = ids.dim(1).unwrap();
    let mut model = load(&dir);
    // Row 1 left-padded by 3, to check the padding mask combines with the block mask.
    let mask = Tensor::new(
        &[[1u32; 24], {
            let mut row = [1u32; 24];
            row[..3].fill(0);
            row
        }],
        &Device::Cpu,
    )
    .unwrap();
    for block in [8usize, 5] {
        for m in [None, Some(&mask)] {
            let full = forward_blocks(
                model.as_mut(),
                &ids,
                m,
                0,
                total,
                CacheMode::None,
                Some(block),
            );
            let mut cache = KvCache::new(model.info().num_layers);
            let mut start = 0;
            while start < total {
                let n = block.min(total - start);
                let span = ids.narrow(1, start, n).unwrap();
                // A first pass over the block, then roll back and redo it, as a sampler's steps do.
                forward_blocks(
                    model.as_mut(),
                    &span,
                    m,
                    start,
                    total,
                    CacheMode::Extend(&mut cache),
                    Some(block),
                );
                assert_eq!(cache.len(), start + n);
                cache.truncate(start).unwrap();
                assert_eq!(cache.len(), start);
                let got = forward_blocks(
                    model.as_mut(),
                    &span,
                    m,
                    start,
                    total,
                    CacheMode::Extend(&mut cache),
                    Some(block),
                );
                let err = max_abs_diff(&got, &full.narrow(1, start, n).unwrap());
                assert!(
                    err <= CACHE_TOLERANCE,
                    "b{block} extend at {start}: differs by {err}"
                );
                start += n;
            }
            assert_eq!(cache.len(), total);

            // Prefix cache: the current block to the end, earlier blocks from the cache.
            let mut recorded = KvCache::new(model.info().num_layers);
            forward_blocks(
                model.as_mut(),
                &ids,
                m,
                0,
                total,
                CacheMode::Record(&mut recorded),
                Some(block),
            );
            let start = 2 * block;
            let span = ids.narrow(1, start, total - start).unwrap();
            let got = forward_blocks(
                model.as_mut(),
                &span,
                m,
                start,
                total,
                CacheMode::Prefix(&recorded),
                Some(block),
            );
            let err = max_abs_diff(&got, &full.narrow(1, start, total - start).unwrap());
            assert!(err <= CACHE_TOLERANCE, "b{block} prefix: differs by {err}");
        }
    }

    // A cache that does not end where the span starts is refused, naming the fix.
    let mut cache = KvCache::new(model.info().num_layers);
    let span = ids.narrow(1, 0, 8).unwrap();
    forward_blocks(
        model.as_mut(),
        &span,
        None,
        0,
        total,
        CacheMode::Extend(&mut cache),
        Some(8),
    );
    let span = ids.narrow(1, 16, 8).unwrap();
    let err = model
        .forward(ForwardInput {
            input_ids: &span,
            attention_mask: None,
            span_start: 16,
            total_len: total,
            cache: CacheMode::Extend(&mut cache),
            block_causal: Some(8),
            logits_rows: None,
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("truncate") && err.contains("8 positions"),
        "{err}"
    );
}

/// A folder with a parity-v2 case's files, letting `edit` rewrite its `tokenizer.json`.
fn case_with_tokenizer(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(dir.join(file), tmp.path().join(file)).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
    let mut tokenizer: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut tokenizer);
    std::fs::write(tmp.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    tmp
}

fn set_added_token_special(tokenizer: &mut serde_json::Value, id: u64, special: bool) {
    for token in tokenizer["added_tokens"].as_array_mut().unwrap() {
        if token["id"].as_u64() == Some(id) {
            token["special"] = serde_json::Value::Bool(special);
        }
    }
}

#[test]
fn a_qwen2_without_a_mask_token_is_refused_as_autoregressive() {
    let tmp = case_with_tokenizer(&parity_v2_dir().join("odc-tiny"), |t| {
        set_added_token_special(t, 250, false);
    });
    let err = load_err(tmp.path());
    assert!(
        err.contains("qwen2") && err.contains("autoregressive") && err.contains("open-dcoder"),
        "{err}"
    );
    // `--arch open-dcoder` still forces it (the user says it is one).
    let spec = ModelSpec {
        model: tmp.path().display().to_string(),
        arch: Some(hone_engine::model::Architecture::OpenDcoder),
        device: Device::Cpu,
        dtype: Some(DType::F32),
        quantization: Default::default(),
    };
    let loaded = checkpoint::load(&spec).unwrap();
    assert_eq!(loaded.special.mask, 250, "`[MASK]` is still found by name");
}

/// A mask id that is an ordinary token of the tokenizer (a Dream folder with a stock Qwen tokenizer)
/// loads with a typed warning, and a prompt containing that text is refused naming the real cause.
#[test]
fn a_mask_id_that_is_an_ordinary_token_warns_and_explains_prompt_errors() {
    use hone_engine::tokenizer::LoadWarning;
    let tmp = case_with_tokenizer(&parity_dir().join("dream-tiny"), |t| {
        set_added_token_special(t, 250, false);
    });
    let spec = ModelSpec {
        model: tmp.path().display().to_string(),
        arch: None,
        device: Device::Cpu,
        dtype: Some(DType::F32),
        quantization: Default::default(),
    };
    let loaded = checkpoint::load(&spec).unwrap();
    assert_eq!(loaded.special.mask, 250);
    assert_eq!(
        loaded.warnings,
        vec![LoadWarning::MaskIsOrdinaryToken {
            id: 250,
            token: "<|mask|>".into()
        }]
    );
    let shown = loaded.warnings[0].to_string();
    assert!(shown.contains("does not belong"), "{shown}");
    let tokenizer = loaded.tokenizer.as_ref().unwrap();
    let err = tokenizer
        .encode("fn main() { <|mask|> }", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("<|mask|>") && err.contains("mask id") && err.contains("own tokenizer"),
        "{err}"
    );
    assert!(!err.contains("gen-length"), "{err}");
    assert!(tokenizer.encode("fn main() {}", false).is_ok());

    // With the checkpoint's own tokenizer: no warning, and a literal mask token in the prompt is
    // refused as what it is.
    let loaded = checkpoint::load(&ModelSpec {
        model: parity_dir().join("dream-tiny").display().to_string(),
        ..spec
    })
    .unwrap();
    assert!(loaded.warnings.is_empty());
    let err = loaded
        .tokenizer
        .as_ref()
        .unwrap()
        .encode("a <|mask|> b", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mask token `<|mask|>`"), "{err}");
}

/// `logits_rows` returns exactly those rows of the full pass (the head and final norm run per
/// row), for every family of both fixture sets, gathered or contiguous; bad rows are refused.
#[test]
fn selected_logit_rows_equal_the_full_pass() {
    for dir in cases().into_iter().chain(v2_cases()) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let data = golden(&dir);
        let ids = data["input_ids"].to_dtype(DType::U32).unwrap();
        let total = ids.dim(1).unwrap();
        let mut model = load(&dir);
        let full = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);
        for rows in [vec![1, 3, total - 1], vec![2, 3, 4]] {
            let got = model
                .forward(ForwardInput {
                    input_ids: &ids,
                    attention_mask: None,
                    span_start: 0,
                    total_len: total,
                    cache: CacheMode::None,
                    block_causal: None,
                    logits_rows: Some(&rows),
                })
                .unwrap();
            let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let index = Tensor::new(index.as_slice(), &Device::Cpu).unwrap();
            let expected = full.index_select(&index, 1).unwrap();
            let err = max_abs_diff(&got, &expected);
            assert!(err <= CACHE_TOLERANCE, "{name} rows {rows:?}: {err}");
        }
        for bad in [vec![], vec![3, 1], vec![total]] {
            let err = model
                .forward(ForwardInput {
                    input_ids: &ids,
                    attention_mask: None,
                    span_start: 0,
                    total_len: total,
                    cache: CacheMode::None,
                    block_causal: None,
                    logits_rows: Some(&bad),
                })
                .unwrap_err()
                .to_string();
            assert!(err.contains("logits_rows"), "{name} {bad:?}: {err}");
        }
    }
}
