//! GGUF files as llama.cpp's `convert_hf_to_gguf.py` writes them for the diffusion families it knows
//! (`general.architecture` `llada`, `dream`, `llada-moe`): the file memory-mapped and its header
//! checked up front (every tensor's declared size must fit the file, so a truncated or forged file
//! fails before anything is allocated), the metadata turned back into the family's `config.json`
//! (so the model files and their validation are the same as for a Hugging Face folder), and tensors
//! read one at a time by their Hugging Face names (`gguf_names` maps them and undoes the converter's
//! rewrites; `gguf_header` holds the size checks). Does not decide where the file is or which tokenizer goes with it (`checkpoint`).

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use memmap2::Mmap;
use serde_json::{json, Value as Json};

use super::gguf_header::{check_alignment, check_tensor};
use super::gguf_names::{self, Located};
use super::weights::map_file;
use super::{read_optional_json, CheckpointFiles};
use crate::model::Architecture;
use crate::{Error, Result};

/// The GGUF architectures hone runs, with the family each one is.
const ARCHITECTURES: [(&str, Architecture); 3] = [
    ("llada", Architecture::Llada),
    ("dream", Architecture::Dream),
    ("llada-moe", Architecture::LladaMoe),
];

/// The tensor types candle can read (the header parser refuses the rest by number).
const READABLE: &str = "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k";

/// Where one tensor's bytes are in the map, with its GGML type and shape (`[out, in]` order, as the
/// Hugging Face checkpoint had it).
#[derive(Debug, Clone)]
pub struct GgufTensor {
    pub dtype: GgmlDType,
    pub dims: Vec<usize>,
    pub start: usize,
    pub len: usize,
}

/// A mapped and checked GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    pub path: PathBuf,
    pub map: Mmap,
    pub architecture: Architecture,
    metadata: HashMap<String, Value>,
    pub tensors: HashMap<String, GgufTensor>,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!(
        "{} is not a valid GGUF file ({what}): the download may be incomplete; fetch it again",
        path.display()
    ))
}

/// Whether `path` names a GGUF file (by extension; the header is checked when it is opened).
pub fn is_gguf(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// The single `.gguf` file of a folder without `config.json`; `None` when there is none, an error
/// naming them when there are several.
pub fn find_in_folder(dir: &Path) -> Result<Option<PathBuf>> {
    if dir.join("config.json").exists() {
        return Ok(None);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_gguf(p))
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::Checkpoint(format!(
            "{} holds several GGUF files ({}): pass the one to load",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The GGUF file `path` names: itself, or the single one of a folder without `config.json`.
pub fn gguf_of(path: &Path) -> Result<Option<PathBuf>> {
    if is_gguf(path) {
        Ok(Some(path.to_path_buf()))
    } else if path.is_dir() {
        find_in_folder(path)
    } else {
        Ok(None)
    }
}

/// A GGUF checkpoint as [`CheckpointFiles`]: the config rebuilt from the metadata, the file as the
/// only weights, and the `tokenizer.json` (required), `tokenizer_config.json` and
/// `generation_config.json` found beside it.
pub fn checkpoint_files(file: &Path) -> Result<CheckpointFiles> {
    let gguf = GgufFile::open(file)?;
    let config = gguf.config()?;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.exists() {
        return Err(Error::Checkpoint(format!(
            "no tokenizer.json beside {}: put the model's tokenizer.json (from its Hugging Face \
             repository) in {} (hone does not build a tokenizer from the GGUF vocabulary)",
            file.display(),
            dir.display()
        )));
    }
    Ok(CheckpointFiles {
        config,
        weights: vec![file.to_path_buf()],
        tokenizer_json: Some(tokenizer),
        tokenizer_config: read_optional_json(&dir.join("tokenizer_config.json"))?,
        generation_config: read_optional_json(&dir.join("generation_config.json"))?,
        dir,
    })
}

impl GgufFile {
    /// Map `path`, parse its header and check every tensor against the file.
    pub fn open(path: &Path) -> Result<Self> {
        let map = map_file(path)?;
        check_alignment(&map).map_err(|what| corrupt(path, what))?;
        let content = Content::read(&mut Cursor::new(&map[..])).map_err(|e| {
            let what = e.to_string();
            if what.contains("unknown dtype") {
                Error::Unsupported(format!(
                    "{}: {what}; hone reads GGUF tensors of type {READABLE}: convert or quantize the \
                     model to one of these",
                    path.display()
                ))
            } else {
                corrupt(path, what)
            }
        })?;
        let architecture = match content.metadata.get("general.architecture") {
            Some(Value::String(name)) => ARCHITECTURES
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, arch)| *arch)
                .ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{} is a GGUF of architecture `{name}`, not a diffusion family hone runs: GGUF files \
                         of architecture llada, dream or llada-moe load (llama.cpp's converter names)",
                        path.display()
                    ))
                })?,
            _ => return Err(corrupt(path, "no general.architecture")),
        };
        let file_len = map.len() as u64;
        let mut tensors = HashMap::with_capacity(content.tensor_infos.len());
        for (name, info) in &content.tensor_infos {
            let tensor = check_tensor(name, info, content.tensor_data_offset, file_len)
                .map_err(|what| corrupt(path, what))?;
            tensors.insert(name.clone(), tensor);
        }
        Ok(Self {
            path: path.to_path_buf(),
            map,
            architecture,
            metadata: content.metadata,
            tensors,
        })
    }

    fn key(&self, suffix: &str) -> String {
        let arch = ARCHITECTURES
            .iter()
            .find(|(_, a)| *a == self.architecture)
            .map_or("", |(n, _)| n);
        format!("{arch}.{suffix}")
    }

    /// An unsigned integer of `<arch>.<suffix>` (any integer type the writer chose).
    fn count(&self, suffix: &str) -> Result<Option<usize>> {
        let key = self.key(suffix);
        self.metadata
            .get(&key)
            .map(|v| {
                integer(v).ok_or_else(|| {
                    corrupt(&self.path, format!("{key} is {v:?}, not a whole number"))
                })
            })
            .transpose()
    }

    fn required(&self, suffix: &str) -> Result<usize> {
        self.count(suffix)?.ok_or_else(|| {
            corrupt(
                &self.path,
                format!("metadata {} is missing", self.key(suffix)),
            )
        })
    }

    fn float(&self, suffix: &str) -> Option<f64> {
        match self.metadata.get(&self.key(suffix))? {
            Value::F32(v) => Some(f64::from(*v)),
            Value::F64(v) => Some(*v),
            other => integer(other).map(|v| v as f64),
        }
    }

    fn token_id(&self, name: &str) -> Option<usize> {
        self.metadata
            .get(&format!("tokenizer.ggml.{name}"))
            .and_then(integer)
    }

    /// The dims of tensor `name`, when the file has it.
    pub fn dims(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.dims.as_slice())
    }

    /// The family's `config.json`, rebuilt from the metadata and, where the converter writes no key,
    /// from tensor shapes (tied heads: no `output.weight`; biases and q/k norms: their tensors).
    pub fn config(&self) -> Result<Json> {
        let layers = self.required("block_count")?;
        // Every layer has several tensors: a larger count is a forged header, refused before any
        // loop over the layers.
        if layers == 0 || layers > self.tensors.len() {
            return Err(corrupt(
                &self.path,
                format!(
                    "{} is {layers} for a file of {} tensors",
                    self.key("block_count"),
                    self.tensors.len()
                ),
            ));
        }
        let hidden = self.required("embedding_length")?;
        let heads = self.required("attention.head_count")?;
        let kv_heads = self.count("attention.head_count_kv")?.unwrap_or(heads);
        let embedding_rows = self
            .dims("token_embd.weight")
            .and_then(|d| d.first().copied())
            .ok_or_else(|| corrupt(&self.path, "tensor token_embd.weight is missing"))?;
        let vocab = self.count("vocab_size")?.unwrap_or(embedding_rows);
        let tied = !self.tensors.contains_key("output.weight");
        let eps = self.float("attention.layer_norm_rms_epsilon");
        let theta = self.float("rope.freq_base");
        let context = self.count("context_length")?;
        let head_dim = hidden / heads.max(1);
        let rotary = self.count("rope.dimension_count")?.unwrap_or(head_dim);
        let has = |name: &str| self.tensors.contains_key(name);
        let mut config = match self.architecture {
            Architecture::Llada => {
                if has("blk.0.attn_q_norm.weight") {
                    return Err(Error::Unsupported(format!(
                        "{}: a llada GGUF with q/k norms is not supported (llama.cpp's converter versions \
                         store them in different layouts); load the Hugging Face checkpoint instead",
                        self.path.display()
                    )));
                }
                json!({
                    "model_type": "llada",
                    "architectures": ["LLaDAModelLM"],
                    "d_model": hidden,
                    "n_heads": heads,
                    "n_kv_heads": kv_heads,
                    "n_layers": layers,
                    "mlp_hidden_size": self.width("blk.0.ffn_gate.weight", "feed_forward_length")?,
                    "vocab_size": vocab,
                    "embedding_size": embedding_rows,
                    "max_sequence_length": context.unwrap_or(4096),
                    "rope_theta": theta.unwrap_or(10_000.0),
                    "rms_norm_eps": eps.unwrap_or(1e-5),
                    "weight_tying": tied,
                    "include_qkv_bias": has("blk.0.attn_q.bias"),
                    "include_bias": has("blk.0.attn_output.bias"),
                })
            }
            Architecture::Dream => {
                let scaling = match self.metadata.get(&self.key("rope.scaling.type")) {
                    Some(Value::String(kind)) if kind != "none" => json!({ "type": kind }),
                    _ => Json::Null,
                };
                json!({
                    "model_type": "Dream",
                    "architectures": ["DreamModel"],
                    "hidden_size": hidden,
                    "intermediate_size": self.width("blk.0.ffn_gate.weight", "feed_forward_length")?,
                    "num_hidden_layers": layers,
                    "num_attention_heads": heads,
                    "num_key_value_heads": kv_heads,
                    "vocab_size": embedding_rows,
                    "max_position_embeddings": context.unwrap_or(32_768),
                    "rope_theta": theta.unwrap_or(10_000.0),
                    "rms_norm_eps": eps.unwrap_or(1e-6),
                    "tie_word_embeddings": tied,
                    "rope_scaling": scaling,
                })
            }
            Architecture::LladaMoe => self.moe_config(layers, hidden, heads, kv_heads)?,
            other => {
                return Err(Error::Unsupported(format!(
                    "{other} does not load from GGUF"
                )))
            }
        };
        if rotary != head_dim && self.architecture != Architecture::LladaMoe {
            return Err(Error::Unsupported(format!(
                "{}: rope.dimension_count {rotary} differs from the head size {head_dim}: partial \
                 rotary is not supported for {}",
                self.path.display(),
                self.architecture
            )));
        }
        if let Some(map) = config.as_object_mut() {
            if self.architecture == Architecture::LladaMoe {
                map.insert(
                    "partial_rotary_factor".into(),
                    json!(rotary as f64 / head_dim.max(1) as f64),
                );
            }
            for (key, name) in [
                ("mask_token_id", "mask_token_id"),
                ("eos_token_id", "eos_token_id"),
                ("pad_token_id", "padding_token_id"),
                ("bos_token_id", "bos_token_id"),
            ] {
                if let Some(id) = self.token_id(name) {
                    map.insert(key.into(), json!(id));
                }
            }
        }
        Ok(config)
    }

    /// Rows of `tensor` (`[width, hidden]`), else the metadata `<arch>.<key>`.
    fn width(&self, tensor: &str, key: &str) -> Result<usize> {
        match self.dims(tensor).and_then(|d| d.first().copied()) {
            Some(rows) => Ok(rows),
            None => self.required(key),
        }
    }

    fn moe_config(&self, layers: usize, hidden: usize, heads: usize, kv: usize) -> Result<Json> {
        let mut moe_layers = Vec::with_capacity(layers.min(4096));
        for layer in 0..layers {
            if self
                .tensors
                .contains_key(&format!("blk.{layer}.ffn_gate_inp.weight"))
            {
                moe_layers.push(1);
            } else {
                return Err(Error::Unsupported(format!(
                    "{}: layer {layer} of this llada-moe GGUF has no router (blk.{layer}.ffn_gate_inp); \
                     dense layers are not supported in GGUF files (llama.cpp's llada-moe has none)",
                    self.path.display()
                )));
            }
        }
        let experts_dims = self.dims("blk.0.ffn_gate_exps.weight").unwrap_or(&[]);
        let experts = match self.count("expert_count")? {
            Some(n) => n,
            None => experts_dims.first().copied().unwrap_or(0),
        };
        let expert_width = match experts_dims.get(1) {
            Some(&n) => n,
            None => self.required("expert_feed_forward_length")?,
        };
        let dense = self.count("feed_forward_length")?.unwrap_or(expert_width);
        let has = |name: &str| self.tensors.contains_key(name);
        Ok(json!({
            "model_type": "llada",
            "architectures": ["LLaDAMoEModelLM"],
            "hidden_size": hidden,
            "dense_intermediate_size": dense,
            "expert_intermediate_size": expert_width,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv,
            "vocab_size": self.dims("token_embd.weight").and_then(|d| d.first().copied()).unwrap_or(0),
            "max_position_embeddings": self.count("context_length")?.unwrap_or(4096),
            "rope_theta": self.float("rope.freq_base").unwrap_or(10_000.0),
            "rms_norm_eps": self.float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            "tie_word_embeddings": !has("output.weight"),
            "qk_layernorm": has("blk.0.attn_q_norm.weight"),
            "attention_bias": has("blk.0.attn_q.bias"),
            "num_experts": experts,
            "num_experts_per_tok": self.required("expert_used_count")?,
            "moe_layer_freq": moe_layers,
        }))
    }

    /// Where the Hugging Face tensor `name` is in this file, for a model of `heads` / `kv_heads`.
    pub fn locate(&self, name: &str, heads: usize, kv_heads: usize) -> Option<Located> {
        gguf_names::locate(self.architecture, name, heads, kv_heads)
    }

    /// Head counts from the metadata (for the q/k un-permutation).
    pub fn head_counts(&self) -> Result<(usize, usize)> {
        let heads = self.required("attention.head_count")?;
        Ok((
            heads,
            self.count("attention.head_count_kv")?.unwrap_or(heads),
        ))
    }
}

fn integer(value: &Value) -> Option<usize> {
    match value {
        Value::U8(v) => Some(usize::from(*v)),
        Value::U16(v) => Some(usize::from(*v)),
        Value::U32(v) => usize::try_from(*v).ok(),
        Value::U64(v) => usize::try_from(*v).ok(),
        Value::I8(v) => usize::try_from(*v).ok(),
        Value::I16(v) => usize::try_from(*v).ok(),
        Value::I32(v) => usize::try_from(*v).ok(),
        Value::I64(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}
