//! End-to-end tests of `hone engine forward` and `hone engine info`: parity with the reference
//! logits from the command line on every case of `tests/fixtures/parity` and `parity-v2` (with
//! `--expect`, `--block-causal`), clear exit-2 errors on bad input, the new families' facts, and the
//! memory `info --load` reports for a memory-mapped checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::parity;
use safetensors::tensor::{Dtype, TensorView};

fn hone(args: &[&str]) -> Output {
    common::hone()
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// An owned tensor for writing: dtype, shape, little-endian bytes.
struct Owned(Dtype, Vec<usize>, Vec<u8>);

fn write_tensors(path: &Path, tensors: &[(&str, &Owned)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, t)| {
            (
                name.to_string(),
                TensorView::new(t.0, t.1.clone(), &t.2).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Read a tensor of a safetensors file as (shape, values widened to f64).
fn read_tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(name).unwrap();
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    };
    (view.shape().to_vec(), values)
}

fn i64_tensor(shape: Vec<usize>, values: &[f64]) -> Owned {
    Owned(
        Dtype::I64,
        shape,
        values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect(),
    )
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn forward_reproduces_the_reference_logits_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    for case in ["llada-tiny", "llada-tied", "dream-tiny", "dream-tied"] {
        let dir = parity(case);
        let golden = dir.join("forward.safetensors");
        let (shape, ids) = read_tensor(&golden, "input_ids");
        let (logits_shape, expected) = read_tensor(&golden, "logits");
        let input = tmp.path().join(format!("{case}-in.safetensors"));
        let output = tmp.path().join(format!("{case}-out.safetensors"));
        write_tensors(&input, &[("input_ids", &i64_tensor(shape.clone(), &ids))]);
        let out = hone(&[
            "engine",
            "forward",
            "--model",
            dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (got_shape, got) = read_tensor(&output, "logits");
        assert_eq!(got_shape, logits_shape);
        let err = max_abs_diff(&got, &expected);
        assert!(err <= 1e-4, "{case}: max abs error {err}");

        if case.starts_with("llada") {
            let (_, mask) = read_tensor(&golden, "padded_attention_mask");
            let (_, expected) = read_tensor(&golden, "padded_logits");
            write_tensors(
                &input,
                &[
                    ("input_ids", &i64_tensor(shape.clone(), &ids)),
                    ("attention_mask", &i64_tensor(shape.clone(), &mask)),
                ],
            );
            let out = hone(&[
                "engine",
                "forward",
                "--model",
                dir.to_str().unwrap(),
                "--device",
                "cpu",
                "--input",
                input.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
            ]);
            assert!(
                out.status.success(),
                "{case} padded: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let err = max_abs_diff(&read_tensor(&output, "logits").1, &expected);
            assert!(err <= 1e-4, "{case} padded: max abs error {err}");
        }
    }
}

/// `hone engine forward --expect` exits 0 on every forward case of `tests/fixtures/parity-v2`:
/// plain logits, the block-causal ones (`--block-causal 8` / `5`) and the padded ones.
#[test]
fn forward_expect_passes_every_parity_v2_case() {
    let v2 = common::fixture("parity-v2");
    let tmp = tempfile::tempdir().unwrap();
    let output = tmp.path().join("out.safetensors");
    let run = |dir: &Path, input: &Path, key: &str, extra: &[&str]| {
        let golden = dir.join("forward.safetensors");
        let mut args = vec![
            "engine",
            "forward",
            "--model",
            dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--expect",
            golden.to_str().unwrap(),
            "--expect-key",
            key,
        ];
        args.extend_from_slice(extra);
        let out = hone(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && stdout.contains(": ok"),
            "{} {key}: {stdout} {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut runs = 0;
    for case in ["llada-moe-tiny", "llada2-tiny", "llada21-tiny", "odc-tiny"] {
        let dir = v2.join(case);
        let golden = dir.join("forward.safetensors");
        run(&dir, &golden, "logits", &[]);
        runs += 1;
        if case.starts_with("llada2") {
            run(
                &dir,
                &golden,
                "block_causal_logits_b8",
                &["--block-causal", "8"],
            );
            run(
                &dir,
                &golden,
                "block_causal_logits_b5",
                &["--block-causal", "5"],
            );
            runs += 2;
        }
        let input = tmp.path().join(format!("{case}-in.safetensors"));
        if case == "llada-moe-tiny" {
            let (shape, ids) = read_tensor(&golden, "input_ids");
            let (_, mask) = read_tensor(&golden, "padded_attention_mask");
            write_tensors(
                &input,
                &[
                    ("input_ids", &i64_tensor(shape.clone(), &ids)),
                    ("attention_mask", &i64_tensor(shape, &mask)),
                ],
            );
            run(&dir, &input, "padded_logits", &[]);
            runs += 1;
        }
        if case == "odc-tiny" {
            // The sampler's mask `x != pad_token_id` (251).
            let (shape, ids) = read_tensor(&golden, "pad_input_ids");
            let mask: Vec<f64> = ids
                .iter()
                .map(|&t| f64::from(u8::from(t != 251.0)))
                .collect();
            write_tensors(
                &input,
                &[
                    ("input_ids", &i64_tensor(shape.clone(), &ids)),
                    ("attention_mask", &i64_tensor(shape, &mask)),
                ],
            );
            run(&dir, &input, "pad_logits", &[]);
            runs += 1;
        }
    }
    assert_eq!(runs, 10);

    // Without the block mask the block-causal golden does not match: exit 1, not 0.
    let dir = v2.join("llada2-tiny");
    let golden = dir.join("forward.safetensors");
    let out = hone(&[
        "engine",
        "forward",
        "--model",
        dir.to_str().unwrap(),
        "--device",
        "cpu",
        "--input",
        golden.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--expect",
        golden.to_str().unwrap(),
        "--expect-key",
        "block_causal_logits_b8",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// Run `hone engine forward` expecting exit 2 with `needle` in the error, and no panic.
fn assert_bad_input(model: &Path, input: &Path, needle: &str) {
    let output = input.with_extension("out");
    let out = hone(&[
        "engine",
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 for `{needle}`, stderr: {stderr}"
    );
    assert!(
        stderr.contains("error:") && stderr.contains(needle),
        "expected `{needle}` in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!output.exists(), "no output on failure");
}

#[test]
fn bad_input_gives_clear_errors_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let model = parity("llada-tiny");
    let input = |name: &str| tmp.path().join(name);

    assert_bad_input(&model, &input("absent.safetensors"), "does not exist");

    let good = input("good.safetensors");
    write_tensors(
        &good,
        &[("input_ids", &i64_tensor(vec![1, 3], &[1.0, 2.0, 3.0]))],
    );
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(input("truncated.safetensors"), &bytes[..bytes.len() - 8]).unwrap();
    assert_bad_input(
        &model,
        &input("truncated.safetensors"),
        "not a readable safetensors file",
    );

    write_tensors(
        &input("flat.safetensors"),
        &[("input_ids", &i64_tensor(vec![3], &[1.0, 2.0, 3.0]))],
    );
    assert_bad_input(&model, &input("flat.safetensors"), "must be 2-D");

    write_tensors(
        &input("noids.safetensors"),
        &[("tokens", &i64_tensor(vec![1, 2], &[1.0, 2.0]))],
    );
    assert_bad_input(&model, &input("noids.safetensors"), "no `input_ids` tensor");

    write_tensors(
        &input("range.safetensors"),
        &[("input_ids", &i64_tensor(vec![1, 2], &[1.0, 999.0]))],
    );
    assert_bad_input(&model, &input("range.safetensors"), "out of range");

    write_tensors(
        &input("empty.safetensors"),
        &[("input_ids", &i64_tensor(vec![1, 0], &[]))],
    );
    assert_bad_input(&model, &input("empty.safetensors"), "empty");

    write_tensors(
        &input("mask.safetensors"),
        &[
            ("input_ids", &i64_tensor(vec![1, 2], &[1.0, 2.0])),
            ("attention_mask", &i64_tensor(vec![1, 3], &[1.0, 1.0, 1.0])),
        ],
    );
    assert_bad_input(&model, &input("mask.safetensors"), "attention_mask");

    // Checkpoint problems: unknown architecture, a missing tensor (named), no folder.
    let unknown = tmp.path().join("unknown");
    std::fs::create_dir(&unknown).unwrap();
    std::fs::write(
        unknown.join("config.json"),
        r#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}"#,
    )
    .unwrap();
    std::fs::copy(
        model.join("model.safetensors"),
        unknown.join("model.safetensors"),
    )
    .unwrap();
    assert_bad_input(&unknown, &good, "gpt2");
    assert_bad_input(&unknown, &good, "hint: pass --arch");

    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(model.join("config.json"), broken.join("config.json")).unwrap();
    let bytes = std::fs::read(model.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "model.transformer.ln_f.weight")
        .collect();
    safetensors::serialize_to_file(kept, None, &broken.join("model.safetensors")).unwrap();
    assert_bad_input(&broken, &good, "model.transformer.ln_f.weight");

    assert_bad_input(&tmp.path().join("nowhere"), &good, "does not exist");
}

/// A 16-layer LLaDA checkpoint (d_model 256) with a `vocab`-row embedding and head, filled with
/// small deterministic f32 values; returns the bytes of weights written.
fn write_llada_checkpoint(dir: &Path, vocab: usize) -> u64 {
    let (d, hidden, layers) = (256usize, 1024usize, 16usize);
    let config = serde_json::json!({
        "model_type": "llada", "d_model": d, "n_heads": 4, "n_kv_heads": 4, "n_layers": layers,
        "mlp_hidden_size": hidden, "vocab_size": vocab, "embedding_size": vocab, "max_sequence_length": 512,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "weight_tying": false, "mask_token_id": 3, "eos_token_id": 2,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.transformer.wte.weight".into(), vec![vocab, d]),
        ("model.transformer.ln_f.weight".into(), vec![d]),
        ("model.transformer.ff_out.weight".into(), vec![vocab, d]),
    ];
    for i in 0..layers {
        let p = format!("model.transformer.blocks.{i}");
        for (name, shape) in [
            ("attn_norm", vec![d]),
            ("ff_norm", vec![d]),
            ("q_proj", vec![d, d]),
            ("k_proj", vec![d, d]),
            ("v_proj", vec![d, d]),
            ("attn_out", vec![d, d]),
            ("ff_proj", vec![hidden, d]),
            ("up_proj", vec![hidden, d]),
            ("ff_out", vec![d, hidden]),
        ] {
            shapes.push((format!("{p}.{name}.weight"), shape));
        }
    }
    let mut state: u32 = 12345;
    let owned: Vec<(String, Owned)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let bytes = (0..n)
                .flat_map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((state >> 8) as f32 / 16_777_216.0 * 0.04 - 0.02).to_le_bytes()
                })
                .collect();
            (name, Owned(Dtype::F32, shape, bytes))
        })
        .collect();
    let total: u64 = owned.iter().map(|(_, t)| t.2.len() as u64).sum();
    let refs: Vec<(&str, &Owned)> = owned.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_tensors(&dir.join("model.safetensors"), &refs);
    total
}

/// `hone engine info` on the new families: family, block-causal or not, total parameters from the
/// config equal to the weights stored, fewer active than total for MoE, the samplers each runs.
#[test]
fn info_reports_family_parameters_and_samplers_of_the_new_families() {
    let v2 = common::fixture("parity-v2");
    for (case, family, block_causal, moe, sampler) in [
        ("llada-moe-tiny", "llada-moe", false, true, "llada"),
        ("llada2-tiny", "llada2", true, true, "llada2"),
        ("llada21-tiny", "llada2", true, true, "llada21"),
        ("odc-tiny", "open-dcoder", false, false, "mdm"),
    ] {
        let dir = v2.join(case);
        let out = hone(&[
            "engine",
            "info",
            "--model",
            dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["architecture"], family, "{case}");
        assert_eq!(report["block_causal"], block_causal, "{case}");
        let total = report["total_parameters"].as_u64().unwrap();
        let active = report["active_parameters"].as_u64().unwrap();
        assert_eq!(
            total,
            report["parameters"].as_u64().unwrap(),
            "{case}: the config's count is the weights stored"
        );
        assert_eq!(active < total, moe, "{case}: active {active} of {total}");
        let samplers: Vec<&str> = report["samplers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(samplers.contains(&sampler), "{case}: {samplers:?}");
        assert_eq!(report["warnings"], serde_json::json!([]), "{case}");

        let text = hone(&[
            "engine",
            "info",
            "--model",
            dir.to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains(&format!("architecture:   {family}"))
                && text.contains("active per token")
                && text.contains("samplers:"),
            "{text}"
        );
    }
}

#[test]
fn info_describes_a_checkpoint_and_loading_peaks_near_its_size() {
    let out = hone(&[
        "engine",
        "info",
        "--model",
        parity("dream-tied").to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["architecture"], "dream");
    assert_eq!(report["special_tokens"]["mask"], 250);
    assert_eq!(report["special_tokens"]["eos"], 251);
    assert_eq!(report["shift_logits"], true);
    let text = hone(&[
        "engine",
        "info",
        "--model",
        parity("llada-tiny").to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("architecture:   llada") && text.contains("memory needed:"),
        "{text}"
    );

    // ~80 MiB of f32 weights in 147 tensors: loading must not hold the mapped file and the weights
    // at once (each tensor's pages are released once copied).
    let tmp = tempfile::tempdir().unwrap();
    let weights = write_llada_checkpoint(tmp.path(), 8_000);
    let out = hone(&[
        "engine",
        "info",
        "--model",
        tmp.path().to_str().unwrap(),
        "--device",
        "cpu",
        "--load",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stored_bytes"].as_u64().unwrap(), weights);
    let before = report["rss_before_load_bytes"].as_u64().unwrap();
    let peak = report["peak_rss_bytes"].as_u64().unwrap();
    let after = report["rss_after_load_bytes"].as_u64().unwrap();
    let grown = after.saturating_sub(before) as f64 / weights as f64;
    let peak_over = peak.saturating_sub(before) as f64 / weights as f64;
    assert!(
        grown > 0.8,
        "the loaded weights are resident: grew by {grown:.2}x the weights"
    );
    assert!(
        peak_over < 1.4,
        "peak resident memory grew by {peak_over:.2}x the weights (before {before}, peak {peak})"
    );
}
