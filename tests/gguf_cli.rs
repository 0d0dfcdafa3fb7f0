//! End-to-end: `hone engine forward`, `hone engine sample`, `hone generate` and `hone engine info`
//! with `--model x.gguf`. The GGUF files are written here byte by byte (f32, GGUF v3) from the tiny
//! parity checkpoints the way llama.cpp's `convert_hf_to_gguf.py` lays them out (its tensor names,
//! LLaDA's per-head q/k row permutation, LLaDA-MoE's stacked experts), independently of the engine's
//! reader; nothing binary is committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture, succeeded};
use serde_json::Value;

fn hone(args: &[&str]) -> Output {
    common::hone()
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HONE_MODEL")
        .output()
        .unwrap()
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

enum Meta {
    U32(u64),
    F32(f64),
    Str(&'static str),
}

/// GGUF name of a Hugging Face tensor (experts excepted), as `tensor_mapping.py` has it.
fn gguf_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.').unwrap();
    let top = match stem {
        "model.transformer.wte" | "model.embed_tokens" => Some("token_embd"),
        "model.transformer.ln_f" | "model.norm" => Some("output_norm"),
        "model.transformer.ff_out" | "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(top) = top {
        return Some(format!("{top}.{suffix}"));
    }
    let rest = stem
        .strip_prefix("model.transformer.blocks.")
        .or_else(|| stem.strip_prefix("model.layers."))
        .unwrap();
    let (layer, part) = rest.split_once('.').unwrap();
    let to = match part {
        p if p.starts_with("mlp.experts.") => return None,
        "attn_norm" | "input_layernorm" => "attn_norm",
        "q_proj" | "self_attn.q_proj" => "attn_q",
        "k_proj" | "self_attn.k_proj" => "attn_k",
        "v_proj" | "self_attn.v_proj" => "attn_v",
        "attn_out" | "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "ff_norm" | "post_attention_layernorm" => "ffn_norm",
        "ff_proj" | "mlp.gate_proj" => "ffn_gate",
        "up_proj" | "mlp.up_proj" => "ffn_up",
        "ff_out" | "mlp.down_proj" => "ffn_down",
        "mlp.gate" => "ffn_gate_inp",
        other => panic!("no GGUF name for {other}"),
    };
    Some(format!("blk.{layer}.{to}.{suffix}"))
}

/// Rows of each of `heads` heads reordered from rotate-half to interleaved pairs (the converter's
/// `LLaDAModel.permute`): stored row `2j + s` of a head is original row `s * d/2 + j`.
fn permute(bytes: &[u8], rows: usize, heads: usize) -> Vec<u8> {
    let row = bytes.len() / rows;
    let d = rows / heads;
    let mut out = Vec::with_capacity(bytes.len());
    for h in 0..heads {
        for j in 0..d / 2 {
            for s in 0..2 {
                let original = h * d + s * d / 2 + j;
                out.extend_from_slice(&bytes[original * row..(original + 1) * row]);
            }
        }
    }
    out
}

/// Write `case` as an f32 GGUF named `model.gguf` in a temp folder, with its tokenizer beside it.
fn write_gguf(case: &Path) -> (tempfile::TempDir, PathBuf) {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("config.json")).unwrap()).unwrap();
    let n = |key: &str| config[key].as_u64().unwrap();
    let bytes = std::fs::read(case.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let moe = config.get("num_experts").is_some();
    let llada = config["model_type"] == "llada" && !moe;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let Some(target) = gguf_name(&name) else {
            continue;
        };
        let shape = view.shape().to_vec();
        let mut data = view.data().to_vec();
        if llada && name.contains(".q_proj.") {
            data = permute(&data, shape[0], n("n_heads") as usize);
        } else if llada && name.contains(".k_proj.") {
            data = permute(&data, shape[0], n("n_kv_heads") as usize);
        }
        tensors.push((target, shape, data));
    }
    let mut meta: Vec<(String, Meta)> = Vec::new();
    let arch = if moe {
        "llada-moe"
    } else if llada {
        "llada"
    } else {
        "dream"
    };
    let key = |k: &str| format!("{arch}.{k}");
    if moe {
        let experts = n("num_experts");
        for layer in 0..n("num_hidden_layers") {
            for (proj, target) in [
                ("gate_proj", "ffn_gate_exps"),
                ("up_proj", "ffn_up_exps"),
                ("down_proj", "ffn_down_exps"),
            ] {
                let mut data = Vec::new();
                let mut shape = Vec::new();
                for e in 0..experts {
                    let view = st
                        .tensor(&format!(
                            "model.layers.{layer}.mlp.experts.{e}.{proj}.weight"
                        ))
                        .unwrap();
                    shape = view.shape().to_vec();
                    data.extend_from_slice(view.data());
                }
                shape.insert(0, experts as usize);
                tensors.push((format!("blk.{layer}.{target}.weight"), shape, data));
            }
        }
        meta.push((key("expert_count"), Meta::U32(experts)));
        meta.push((
            key("expert_used_count"),
            Meta::U32(n("num_experts_per_tok")),
        ));
        meta.push((
            key("expert_feed_forward_length"),
            Meta::U32(n("expert_intermediate_size")),
        ));
    }
    let (layers, hidden, heads, kv, ctx) = if llada {
        (
            "n_layers",
            "d_model",
            "n_heads",
            "n_kv_heads",
            "max_sequence_length",
        )
    } else {
        (
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        )
    };
    meta.push((key("block_count"), Meta::U32(n(layers))));
    meta.push((key("embedding_length"), Meta::U32(n(hidden))));
    meta.push((key("attention.head_count"), Meta::U32(n(heads))));
    meta.push((key("attention.head_count_kv"), Meta::U32(n(kv))));
    meta.push((key("context_length"), Meta::U32(n(ctx))));
    meta.push((
        key("rope.freq_base"),
        Meta::F32(config["rope_theta"].as_f64().unwrap()),
    ));
    meta.push((
        key("attention.layer_norm_rms_epsilon"),
        Meta::F32(config["rms_norm_eps"].as_f64().unwrap()),
    ));
    meta.push((
        "tokenizer.ggml.mask_token_id".into(),
        Meta::U32(n("mask_token_id")),
    ));
    meta.insert(0, ("general.architecture".into(), Meta::Str(arch)));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));

    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in &meta {
        out.extend(string(k));
        match v {
            Meta::U32(v) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&(*v as u32).to_le_bytes());
            }
            Meta::F32(v) => {
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(*v as f32).to_le_bytes());
            }
            Meta::Str(v) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend(string(v));
            }
        }
    }
    let pad = |len: usize| len.div_ceil(32) * 32;
    let mut offset = 0usize;
    for (name, shape, data) in &tensors {
        out.extend(string(name));
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for d in shape.iter().rev() {
            out.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // GGML_TYPE_F32
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset += pad(data.len());
    }
    out.resize(pad(out.len()), 0);
    for (_, _, data) in &tensors {
        out.extend_from_slice(data);
        out.resize(pad(out.len()), 0);
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.gguf");
    std::fs::write(&file, out).unwrap();
    std::fs::copy(
        case.join("tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    (tmp, file)
}

#[test]
fn gguf_files_sample_the_reference_tokens_from_the_command_line() {
    for case in [
        "parity/llada-tiny",
        "parity/dream-tied",
        "parity-v2/llada-moe-tiny",
    ] {
        let dir = fixture(case);
        let (_tmp, file) = write_gguf(&dir);
        let out = hone(&[
            "engine",
            "sample",
            "--model",
            file.to_str().unwrap(),
            "--cases",
            dir.join("generate.json").to_str().unwrap(),
            "--json",
        ]);
        let json: Value = serde_json::from_str(&succeeded(&out)).unwrap();
        assert_eq!(json["all_match"], true, "{case}: {json}");
    }
}

#[test]
fn generate_and_info_run_on_a_gguf_like_on_its_folder() {
    let dir = fixture("parity/llada-tiny");
    let (tmp, file) = write_gguf(&dir);
    let generate = |model: &Path| {
        let out = hone(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
            "--gen-length",
            "16",
            "--block-length",
            "8",
            "--json",
            "def add(a, b):",
        ]);
        let json: Value = serde_json::from_str(&succeeded(&out)).unwrap();
        json["candidates"].clone()
    };
    let from_folder = generate(&dir);
    assert_eq!(generate(&file), from_folder);
    assert_eq!(
        generate(tmp.path()),
        from_folder,
        "a folder holding the GGUF"
    );

    let out = hone(&[
        "engine",
        "info",
        "--model",
        file.to_str().unwrap(),
        "--load",
        "--json",
    ]);
    let info: Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(info["architecture"], "llada");
    assert_eq!(info["stored_dtype"], "f32");
    assert_eq!(info["layers"], 2);
    assert!(info["peak_rss_bytes"].as_u64().unwrap() > 0);

    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let out = hone(&["generate", "--model", file.to_str().unwrap(), "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no tokenizer.json beside"), "{stderr}");
}
