//! GGUF files of the tiny parity checkpoints, written here at run time the way llama.cpp's
//! `convert_hf_to_gguf.py` writes them (`LLaDAModel`, `DreamModel`, `LLaDAMoEModel`: its tensor
//! names, LLaDA's per-head q/k row permutation for interleaved RoPE, LLaDA-MoE's experts stacked
//! per layer, its metadata keys), load to the same logits as the safetensors checkpoint (f32: the
//! parity tolerance; q8_0: a relative-L2 bound), and broken files fail with clear errors.

use super::common::{argmax_agreement, relative_l2};
use super::*;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use serde_json::Value as Json;

/// q8_0 stores each weight as one of 255 steps of its 32-value block's largest magnitude: the
/// rounding error is uniform with std `max / (127 * sqrt(12))`, about 0.5% of a Gaussian block's
/// spread. Independent errors add in quadrature through the ~7 matmuls between input and logits
/// of these 2-3 layer models (q, k, v, o, gate/up, down, head), and the quantized kernels round
/// the activations to q8_0 as well: measured 1.7-2.9% on the five cases, 5% as the bound. Argmax
/// agreement measured 0.979-1.0 (one position of 48 flips where two logits of a random tiny model
/// nearly tie); 0.9 as the bound.
const Q8_0_RELATIVE_L2: f64 = 5e-2;

fn config(dir: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn num(config: &Json, key: &str) -> usize {
    config[key].as_u64().unwrap_or_else(|| panic!("{key}")) as usize
}

/// `convert_hf_to_gguf.py`'s `LLaDAModel.permute`: rows of each head reordered from rotate-half
/// pairs `(j, j + d/2)` to interleaved pairs `(2j, 2j + 1)`.
fn permute(t: &Tensor, heads: usize) -> Tensor {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    let rest: usize = dims[1..].iter().product();
    t.reshape((heads, 2, rows / heads / 2, rest))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape(dims)
        .unwrap()
}

/// The GGUF name the converter gives a Hugging Face tensor (`tensor_mapping.py`), `None` for
/// experts (stacked separately).
fn gguf_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.').unwrap();
    let top = [
        ("model.transformer.wte", "token_embd"),
        ("model.transformer.ln_f", "output_norm"),
        ("model.transformer.ff_out", "output"),
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
    ];
    if let Some((_, to)) = top.iter().find(|(from, _)| *from == stem) {
        return Some(format!("{to}.{suffix}"));
    }
    let rest = stem
        .strip_prefix("model.transformer.blocks.")
        .or_else(|| stem.strip_prefix("model.layers."))?;
    let (layer, part) = rest.split_once('.').unwrap();
    if part.starts_with("mlp.experts.") {
        return None;
    }
    let to = match part {
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

/// The metadata the converter writes for the family of `config` (`set_gguf_parameters`), with its
/// value types (u32 counts, f32 floats).
fn metadata(config: &Json) -> Vec<(String, Value)> {
    let u = |v: usize| Value::U32(v as u32);
    let f = |key: &str| Value::F32(config[key].as_f64().unwrap() as f32);
    let (arch, mut kv) = if config["model_type"] == "Dream" {
        (
            "dream",
            vec![
                ("block_count", u(num(config, "num_hidden_layers"))),
                ("context_length", u(num(config, "max_position_embeddings"))),
                ("embedding_length", u(num(config, "hidden_size"))),
                ("feed_forward_length", u(num(config, "intermediate_size"))),
                (
                    "attention.head_count",
                    u(num(config, "num_attention_heads")),
                ),
                (
                    "attention.head_count_kv",
                    u(num(config, "num_key_value_heads")),
                ),
            ],
        )
    } else if config.get("num_experts").is_some() {
        (
            "llada-moe",
            vec![
                ("block_count", u(num(config, "num_hidden_layers"))),
                ("context_length", u(num(config, "max_position_embeddings"))),
                ("embedding_length", u(num(config, "hidden_size"))),
                (
                    "attention.head_count",
                    u(num(config, "num_attention_heads")),
                ),
                (
                    "attention.head_count_kv",
                    u(num(config, "num_key_value_heads")),
                ),
                ("expert_count", u(num(config, "num_experts"))),
                ("expert_used_count", u(num(config, "num_experts_per_tok"))),
                (
                    "expert_feed_forward_length",
                    u(num(config, "expert_intermediate_size")),
                ),
            ],
        )
    } else {
        let heads = num(config, "n_heads");
        (
            "llada",
            vec![
                ("block_count", u(num(config, "n_layers"))),
                ("context_length", u(num(config, "max_sequence_length"))),
                ("embedding_length", u(num(config, "d_model"))),
                ("feed_forward_length", u(num(config, "mlp_hidden_size"))),
                ("attention.head_count", u(heads)),
                ("attention.head_count_kv", u(num(config, "n_kv_heads"))),
                ("vocab_size", u(num(config, "vocab_size"))),
                ("rope.dimension_count", u(num(config, "d_model") / heads)),
            ],
        )
    };
    kv.push(("rope.freq_base", f("rope_theta")));
    kv.push(("attention.layer_norm_rms_epsilon", f("rms_norm_eps")));
    kv.push(("attention.causal", Value::Bool(false)));
    let mut out: Vec<(String, Value)> =
        vec![("general.architecture".into(), Value::String(arch.into()))];
    out.extend(kv.into_iter().map(|(k, v)| (format!("{arch}.{k}"), v)));
    if arch != "dream" {
        out.push(("diffusion.shift_logits".into(), Value::Bool(false)));
    }
    // LLaDA-MoE's converter hard-codes the real model's mask id (156895); these tiny vocabularies
    // put it at the config's mask_token_id, which is what the converter means to record.
    for (key, name) in [
        ("mask_token_id", "mask_token_id"),
        ("eos_token_id", "eos_token_id"),
        ("pad_token_id", "padding_token_id"),
        ("bos_token_id", "bos_token_id"),
    ] {
        if let Some(id) = config.get(key).and_then(Json::as_u64) {
            out.push((format!("tokenizer.ggml.{name}"), Value::U32(id as u32)));
        }
    }
    out
}

/// Write `case` (a parity checkpoint folder) as the converter would with `--outtype f32` or
/// `q8_0` (2-D weights quantized except the MoE router, 1-D tensors kept f32), with the case's
/// `tokenizer.json` beside it. Returns the folder and the file.
fn write_gguf(case: &Path, qtype: GgmlDType) -> (tempfile::TempDir, PathBuf) {
    let (meta, tensors) = converted(case, qtype);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.gguf");
    write_file(&file, &meta, &tensors);
    std::fs::copy(
        case.join("tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    (tmp, file)
}

type Converted = (Vec<(String, Value)>, Vec<(String, QTensor)>);

/// The metadata and tensors the converter writes for `case`.
fn converted(case: &Path, qtype: GgmlDType) -> Converted {
    let config = config(case);
    let tensors =
        candle_core::safetensors::load(case.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut out: Vec<(String, Tensor)> = Vec::new();
    let is_llada = config["model_type"] == "llada" && config.get("num_experts").is_none();
    for (name, t) in &tensors {
        let Some(target) = gguf_name(name) else {
            continue;
        };
        let t = if is_llada && name.contains(".q_proj.") {
            permute(t, num(&config, "n_heads"))
        } else if is_llada && name.contains(".k_proj.") {
            permute(t, num(&config, "n_kv_heads"))
        } else {
            t.clone()
        };
        out.push((target, t));
    }
    if let Some(experts) = config.get("num_experts").and_then(Json::as_u64) {
        for layer in 0..num(&config, "num_hidden_layers") {
            for (proj, target) in [
                ("gate_proj", "ffn_gate_exps"),
                ("up_proj", "ffn_up_exps"),
                ("down_proj", "ffn_down_exps"),
            ] {
                let parts: Vec<Tensor> = (0..experts)
                    .map(|e| {
                        tensors[&format!("model.layers.{layer}.mlp.experts.{e}.{proj}.weight")]
                            .clone()
                    })
                    .collect();
                out.push((
                    format!("blk.{layer}.{target}.weight"),
                    Tensor::stack(&parts, 0).unwrap(),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let qtensors: Vec<(String, QTensor)> = out
        .into_iter()
        .map(|(name, t)| {
            let keep_f32 = t.rank() < 2 || name.contains("ffn_gate_inp");
            let dtype = if keep_f32 { GgmlDType::F32 } else { qtype };
            (name, QTensor::quantize(&t, dtype).unwrap())
        })
        .collect();
    (metadata(&config), qtensors)
}

fn write_file(path: &Path, meta: &[(String, Value)], tensors: &[(String, QTensor)]) {
    let meta: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta, &tensors).unwrap();
}

fn gguf_cases() -> Vec<PathBuf> {
    let mut cases = cases();
    cases.push(parity_v2_dir().join("llada-moe-tiny"));
    cases
}

#[test]
fn gguf_files_load_to_the_safetensors_logits() {
    for case in gguf_cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let data = golden(&case);
        let ids = data["input_ids"].to_dtype(DType::U32).unwrap();
        let total = ids.dim(1).unwrap();
        let mut reference = load(&case);
        let want = forward(reference.as_mut(), &ids, None, 0, total, CacheMode::None);

        let (dir, file) = write_gguf(&case, GgmlDType::F32);
        for path in [file.as_path(), dir.path()] {
            let mut model = load(path);
            let got = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);
            let err = max_abs_diff(&got, &data["logits"]);
            eprintln!("gguf f32 {name}: max abs err {err:.3e} against the reference");
            assert!(err <= TOLERANCE, "{name}: max abs error {err}");
            assert!(max_abs_diff(&got, &want) <= TOLERANCE);
        }

        let (_dir, file) = write_gguf(&case, GgmlDType::Q8_0);
        let mut model = load(&file);
        let got = forward(model.as_mut(), &ids, None, 0, total, CacheMode::None);
        let rel = relative_l2(&got, &want);
        let agree = argmax_agreement(&got, &want);
        eprintln!("gguf q8_0 {name}: relative L2 {rel:.3e}, argmax agreement {agree:.3}");
        assert!(rel <= Q8_0_RELATIVE_L2, "{name}: q8_0 relative L2 {rel}");
        assert!(agree >= 0.9, "{name}: q8_0 argmax agreement {agree}");
    }
}

/// A GGUF v3 header by hand: `kv` (key, value type, value bytes) and tensor infos (name, dims in
/// GGUF order, GGML type, offset), no data.
fn raw_gguf(kv: &[(&str, u32, Vec<u8>)], tensors: &[(&str, &[u64], u32, u64)]) -> Vec<u8> {
    let string = |s: &str| -> Vec<u8> {
        let mut out = (s.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    };
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (key, kind, value) in kv {
        out.extend(string(key));
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(value);
    }
    for (name, dims, kind, offset) in tensors {
        out.extend(string(name));
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out
}

fn architecture_kv(name: &str) -> (&'static str, u32, Vec<u8>) {
    let mut value = (name.len() as u64).to_le_bytes().to_vec();
    value.extend_from_slice(name.as_bytes());
    ("general.architecture", 8, value)
}

/// Write the converter's output for `case`, edited by `edit`, as `model.gguf` with the case's
/// tokenizer beside it.
fn edited_gguf(case: &Path, edit: impl FnOnce(&mut Converted)) -> (tempfile::TempDir, PathBuf) {
    let mut converted = converted(case, GgmlDType::F32);
    edit(&mut converted);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.gguf");
    write_file(&file, &converted.0, &converted.1);
    std::fs::copy(
        case.join("tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    (tmp, file)
}

fn expect_err(path: &Path, wanted: &[&str]) {
    let err = load_err(path);
    for w in wanted {
        assert!(err.contains(w), "expected `{w}` in: {err}");
    }
}

#[test]
fn broken_gguf_files_are_refused_with_clear_errors() {
    let case = parity_dir().join("llada-tiny");

    let (_d, file) = edited_gguf(&case, |(meta, _)| {
        meta[0].1 = Value::String("llama".into());
    });
    expect_err(
        &file,
        &["architecture `llama`", "llada, dream or llada-moe"],
    );

    let (_d, file) = edited_gguf(&case, |(_, tensors)| {
        tensors.retain(|(name, _)| name != "blk.1.ffn_down.weight");
    });
    expect_err(&file, &["blk.1.ffn_down.weight", "missing"]);

    let (_d, file) = edited_gguf(&case, |(meta, _)| {
        meta.retain(|(key, _)| key != "llada.block_count");
    });
    expect_err(&file, &["llada.block_count is missing"]);

    let (_d, file) = edited_gguf(&case, |(meta, _)| {
        let count = meta
            .iter_mut()
            .find(|(k, _)| k == "llada.block_count")
            .unwrap();
        count.1 = Value::U64(1 << 50);
    });
    expect_err(
        &file,
        &["llada.block_count is 1125899906842624 for a file of"],
    );

    let (dir, file) = write_gguf(&case, GgmlDType::Q8_0);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() * 2 / 3]).unwrap();
    expect_err(&file, &["not a valid GGUF file", "truncated"]);
    std::fs::write(&file, &bytes[..100]).unwrap();
    expect_err(&file, &["not a valid GGUF file"]);

    std::fs::write(&file, &bytes).unwrap();
    std::fs::copy(&file, dir.path().join("other.gguf")).unwrap();
    expect_err(
        dir.path(),
        &["several GGUF files", "model.gguf", "other.gguf"],
    );
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    expect_err(
        &file,
        &["no tokenizer.json beside", "put the model's tokenizer.json"],
    );

    // Declared sizes far beyond the file: refused from the header, nothing allocated.
    let arch = architecture_kv("llada");
    for (dims, offset, wanted) in [
        (&[1u64 << 20, 1 << 20][..], 0u64, "truncated"),
        (&[1u64 << 40, 1 << 40][..], 0, "more than fit"),
        (&[64u64, 64][..], 1 << 62, "truncated"),
    ] {
        let header = raw_gguf(
            std::slice::from_ref(&arch),
            &[("token_embd.weight", dims, 0, offset)],
        );
        std::fs::write(&file, header).unwrap();
        expect_err(&file, &["not a valid GGUF file", wanted]);
    }
    let iq_type = raw_gguf(
        std::slice::from_ref(&arch),
        &[("token_embd.weight", &[256u64, 256][..], 19, 0)],
    );
    std::fs::write(&file, iq_type).unwrap();
    expect_err(&file, &["unknown dtype", "hone reads GGUF tensors of type"]);
    let mut huge_count = raw_gguf(std::slice::from_ref(&arch), &[]);
    huge_count[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&file, huge_count).unwrap();
    expect_err(&file, &["not a valid GGUF file"]);
    let zero_alignment = ("general.alignment", 4u32, 0u32.to_le_bytes().to_vec());
    std::fs::write(&file, raw_gguf(&[arch, zero_alignment], &[])).unwrap();
    expect_err(&file, &["general.alignment 0"]);
}

#[test]
fn quantized_gguf_weights_stay_quantized_and_unpermuted() {
    use hone_engine::checkpoint::gguf::GgufFile;
    use hone_engine::checkpoint::gguf_weights::GgufWeights;
    use hone_engine::models::linear::QuantizedTensors;

    let case = parity_dir().join("llada-tiny");
    let (_dir, file) = write_gguf(&case, GgmlDType::Q8_0);
    let weights = GgufWeights::new(GgufFile::open(&file).unwrap()).unwrap();
    let original =
        candle_core::safetensors::load(case.join("model.safetensors"), &Device::Cpu).unwrap();
    for name in [
        "model.transformer.blocks.0.q_proj.weight",
        "model.transformer.blocks.1.k_proj.weight",
        "model.transformer.blocks.0.ff_out.weight",
    ] {
        let q = weights.quantized(name, &Device::Cpu).unwrap().unwrap();
        assert_eq!(q.dtype(), GgmlDType::Q8_0, "{name}");
        let got = q.dequantize(&Device::Cpu).unwrap();
        let want = &original[name];
        assert_eq!(got.dims(), want.dims());
        // q8_0 rounding is at most half a step of 1/127 of a block's largest magnitude.
        let bound = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            / 127.0;
        let err = max_abs_diff(&got, want);
        assert!(
            err <= bound,
            "{name}: {err} > {bound}: rows not back in place?"
        );
    }
    // Memory estimates count the file's q8_0 weights as q8_0 whatever --quantize says.
    use hone_engine::models::Quantization;
    let files = checkpoint::CheckpointFiles::open(&file).unwrap();
    let source = files.map_weights().unwrap();
    assert_eq!(source.stored_dtype().unwrap().as_str(), "q8_0");
    assert_eq!(
        source.loaded_quantization(Quantization::None),
        Quantization::Q8_0
    );
    let (_dir, f32_file) = write_gguf(&case, GgmlDType::F32);
    let source = checkpoint::CheckpointFiles::open(&f32_file)
        .unwrap()
        .map_weights()
        .unwrap();
    assert_eq!(
        source.loaded_quantization(Quantization::Q4K),
        Quantization::Q4K
    );
    // Norms are f32 in the file: read densely, never as quantized.
    assert!(weights
        .quantized("model.transformer.blocks.0.attn_norm.weight", &Device::Cpu)
        .unwrap()
        .is_none());
}
