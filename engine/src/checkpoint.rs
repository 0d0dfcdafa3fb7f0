//! Finding and loading checkpoints: a Hugging Face style folder (`config.json`, `model.safetensors`
//! or a sharded `model.safetensors.index.json`, `tokenizer.json`, `tokenizer_config.json`,
//! `generation_config.json`) or a hub id resolved through the HF cache (`hub`). Detects the family
//! from `config.json` (and, for a Qwen2 config, the tokenizer's mask token), refusing known but
//! unsupported diffusion families and unknown architectures by name; maps the weights (`weights`)
//! and builds the model in the requested dtype on the requested device.

pub mod gguf;
mod gguf_header;
pub mod gguf_names;
pub mod gguf_weights;
pub mod hub;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde_json::Value;

use crate::model::{Architecture, DiffusionModel, ModelInfo};
use crate::models::{Quantization, Weights};
use crate::tokenizer::{
    find_mask_token, special_tokens, GenerationDefaults, LoadWarning, SpecialTokens, TextTokenizer,
};
use crate::{Error, Result};
use gguf_weights::GgufWeights;
use weights::{MappedWeights, WeightSource};

/// What to load and where.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// A checkpoint folder or a hub id.
    pub model: String,
    /// Overrides the family detected from `config.json`.
    pub arch: Option<Architecture>,
    pub device: Device,
    /// `None`: [`crate::device::default_dtype`] of the device.
    pub dtype: Option<DType>,
    /// How the linear layers are stored (quantized at load, or dense).
    pub quantization: Quantization,
}

/// A model ready to run, with everything needed to turn text into ids and back.
pub struct LoadedModel {
    pub model: Box<dyn DiffusionModel>,
    pub tokenizer: Option<TextTokenizer>,
    pub special: SpecialTokens,
    pub generation: GenerationDefaults,
    /// The name the user gave (folder or hub id).
    pub name: String,
    /// The folder the files were read from.
    pub source: PathBuf,
    /// What is odd about the checkpoint but did not stop it loading (the caller shows them).
    pub warnings: Vec<LoadWarning>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("info", self.model.info())
            .field("special", &self.special)
            .field("name", &self.name)
            .field("source", &self.source)
            .finish()
    }
}

/// Parse an `--arch` value (`llada`, `dream`, `open-dcoder`, `llada-moe`, `llada2`).
pub fn parse_architecture(name: &str) -> Result<Architecture> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    Architecture::ALL
        .into_iter()
        .find(|arch| arch.name() == wanted)
        .ok_or_else(|| {
            let names: Vec<&str> = Architecture::ALL.iter().map(|a| a.name()).collect();
            Error::InvalidInput(format!(
                "unknown architecture `{wanted}`: use one of {}",
                names.join(", ")
            ))
        })
}

/// The families this engine runs, for refusal messages.
pub const SUPPORTED: &str = "supported: llada (LLaDA-8B Base/Instruct, LLaDA-1.5, d3LLM-LLaDA), \
     dream (Dream-v0, Dream-Coder, DiffuCoder, d3LLM-Dream), open-dcoder (Open-dCoder, a Qwen2 with a mask \
     token), llada-moe (LLaDA-MoE-7B-A1B) and llada2 (LLaDA2.0 / LLaDA2.1 mini and flash)";

/// Diffusion families known by name that this engine does not run, matched on `model_type` and
/// `architectures` (lowercase): a pattern that must all appear, and the family's name.
const KNOWN_UNSUPPORTED: &[(&[&str], &str)] = &[
    (&["sdar"], "SDAR"),
    (&["fast_dllm"], "Fast-dLLM v2"),
    (&["fastdllm"], "Fast-dLLM v2"),
    (&["nemotron", "diffusion"], "Nemotron-Labs-Diffusion"),
    (&["gemma", "diffusion"], "DiffusionGemma"),
];

/// The family of a `config.json`, from `model_type` and `architectures`.
///
/// A `qwen2` config is Open-dCoder's (its config is a stock `Qwen2ForCausalLM`): whether it really is
/// a diffusion model is told by its tokenizer's mask token, checked in
/// [`CheckpointFiles::architecture`].
pub fn detect_architecture(config: &Value) -> Result<Architecture> {
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let architectures: Vec<String> = config
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let lower = model_type.to_ascii_lowercase();
    let names: Vec<String> = std::iter::once(lower.clone())
        .chain(architectures.iter().map(|a| a.to_ascii_lowercase()))
        .collect();
    let has_arch = |prefix: &str| architectures.iter().any(|a| a.starts_with(prefix));
    let text = names.join(" ");
    for (patterns, family) in KNOWN_UNSUPPORTED {
        if patterns.iter().all(|p| text.contains(p)) {
            return Err(Error::Unsupported(format!(
                "{family} is not supported (config.json says model_type `{model_type}`, architectures \
                 {architectures:?}); {SUPPORTED}"
            )));
        }
    }
    if lower == "llada2_moe" || lower == "llada2" || has_arch("LLaDA2") {
        return Ok(Architecture::Llada2);
    }
    let is_moe = config.as_object().is_some_and(|map| {
        map.keys()
            .any(|k| k == "num_experts" || k == "n_experts" || k.starts_with("moe_"))
    }) || architectures
        .iter()
        .any(|a| a.to_ascii_lowercase().contains("moe"));
    let says_llada = lower.starts_with("llada") || has_arch("LLaDA");
    if says_llada && (is_moe || lower == "lladamoe" || lower == "llada_moe") {
        return Ok(Architecture::LladaMoe);
    }
    if is_moe {
        return Err(Error::Unsupported(format!(
            "this mixture-of-experts model is not supported (config.json says model_type `{model_type}`, \
             architectures {architectures:?}); {SUPPORTED}"
        )));
    }
    if says_llada {
        return Ok(Architecture::Llada);
    }
    if lower == "dream" || has_arch("Dream") {
        return Ok(Architecture::Dream);
    }
    if lower == "qwen2" || has_arch("Qwen2ForCausalLM") {
        return Ok(Architecture::OpenDcoder);
    }
    Err(Error::UnknownArchitecture {
        model_type,
        architectures,
    })
}

/// Shard file names of a `model.safetensors.index.json`, in first-seen order.
pub fn shards_from_index(text: &str, path: &Path) -> Result<Vec<String>> {
    let index: Value = serde_json::from_str(text)
        .map_err(|e| Error::Checkpoint(format!("{} is not valid JSON: {e}", path.display())))?;
    let map = index
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Checkpoint(format!("{} has no weight_map", path.display())))?;
    let mut files: Vec<String> = Vec::new();
    for file in map.values().filter_map(Value::as_str) {
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    Ok(files)
}

/// The files of a checkpoint folder, read and checked, weights not mapped yet.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub dir: PathBuf,
    pub config: Value,
    pub weights: Vec<PathBuf>,
    pub tokenizer_json: Option<PathBuf>,
    pub tokenizer_config: Option<Value>,
    pub generation_config: Option<Value>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint(format!("{} is not valid JSON: {e}", path.display())))
}

fn read_optional_json(path: &Path) -> Result<Option<Value>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Resolve `model` (folder or hub id) to a folder.
pub fn resolve(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() || gguf::is_gguf(path) {
        return Ok(path.to_path_buf());
    }
    if path.exists() {
        return Err(Error::Checkpoint(format!(
            "{model} is a file: pass the checkpoint folder that holds config.json and the weights, or a .gguf file"
        )));
    }
    if hub::looks_like_hub_id(model) {
        return hub::resolve(model);
    }
    Err(Error::Checkpoint(format!(
        "model folder {model} does not exist: pass a model folder or a hub id (owner/name)"
    )))
}

impl CheckpointFiles {
    /// Read the folder's JSON files and list its weights; a `.gguf` file (or a folder whose only
    /// weights are one) is read by [`gguf::checkpoint_files`].
    pub fn open(dir: &Path) -> Result<Self> {
        if let Some(file) = gguf::gguf_of(dir)? {
            return gguf::checkpoint_files(&file);
        }
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(Error::Checkpoint(format!(
                "config.json not found in {}: pass a model folder or a hub id",
                dir.display()
            )));
        }
        let config = read_json(&config_path)?;
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let weights = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path).map_err(|source| Error::Io {
                path: index_path.clone(),
                source,
            })?;
            shards_from_index(&text, &index_path)?
                .into_iter()
                .map(|f| dir.join(f))
                .collect()
        } else if single.exists() {
            vec![single]
        } else {
            let pytorch = dir.join("pytorch_model.bin").exists()
                || dir.join("pytorch_model.bin.index.json").exists();
            let why = if pytorch {
                "only PyTorch .bin weights are there; convert them to safetensors first"
            } else {
                "expected model.safetensors or model.safetensors.index.json"
            };
            return Err(Error::Checkpoint(format!(
                "no weights in {}: {why}",
                dir.display()
            )));
        };
        for file in &weights {
            if !file.exists() {
                return Err(Error::Checkpoint(format!(
                    "weights file {} listed in the index is missing: the download is incomplete",
                    file.display()
                )));
            }
        }
        let tokenizer_json = Some(dir.join("tokenizer.json")).filter(|p| p.exists());
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer_json,
            tokenizer_config: read_optional_json(&dir.join("tokenizer_config.json"))?,
            generation_config: read_optional_json(&dir.join("generation_config.json"))?,
        })
    }

    /// The family: `arch` when given, otherwise detected. A Qwen2 config is Open-dCoder only when the
    /// checkpoint has a mask token (in `config.json` or among the tokenizer's special tokens); an
    /// autoregressive Qwen2 is refused, saying why.
    pub fn architecture(&self, arch: Option<Architecture>) -> Result<Architecture> {
        if let Some(arch) = arch {
            return Ok(arch);
        }
        let detected = detect_architecture(&self.config)?;
        if detected == Architecture::OpenDcoder && self.config.get("mask_token_id").is_none() {
            let tokenizer = self
                .tokenizer_json
                .as_ref()
                .map(|path| {
                    TextTokenizer::from_files(path, self.tokenizer_config.as_ref(), detected)
                })
                .transpose()?;
            if tokenizer.as_ref().and_then(find_mask_token).is_none() {
                let why = if tokenizer.is_some() {
                    "its tokenizer has no mask token among its special tokens"
                } else {
                    "it has no tokenizer.json to find a mask token in"
                };
                return Err(Error::Unsupported(format!(
                    "{} is a plain Qwen2 (model_type `qwen2`, no mask_token_id) and {why}: an autoregressive \
                     Qwen2 is not a diffusion model. Open-dCoder checkpoints load as they are; {SUPPORTED}",
                    self.dir.display()
                )));
            }
        }
        Ok(detected)
    }

    /// The model's facts from its config.
    pub fn info(&self, arch: Architecture) -> Result<ModelInfo> {
        crate::models::info(arch, &self.config)
    }

    /// Map the weights (headers are checked; no tensor is read yet).
    pub fn map_weights(&self) -> Result<WeightSource> {
        match self.weights.as_slice() {
            [file] if gguf::is_gguf(file) => Ok(WeightSource::Gguf(GgufWeights::new(
                gguf::GgufFile::open(file)?,
            )?)),
            files => Ok(WeightSource::Safetensors(MappedWeights::open(files)?)),
        }
    }

    pub fn tokenizer(&self, arch: Architecture) -> Result<Option<TextTokenizer>> {
        self.tokenizer_json
            .as_ref()
            .map(|path| TextTokenizer::from_files(path, self.tokenizer_config.as_ref(), arch))
            .transpose()
    }

    pub fn special_tokens(&self, tokenizer: Option<&TextTokenizer>) -> Result<SpecialTokens> {
        special_tokens(
            &self.config,
            self.generation_config.as_ref(),
            self.tokenizer_config.as_ref(),
            tokenizer,
        )
    }

    pub fn generation_defaults(&self) -> GenerationDefaults {
        self.generation_config
            .as_ref()
            .map(GenerationDefaults::from_json)
            .unwrap_or_default()
    }
}

/// Build the model of `files` from already mapped `weights`.
pub fn build_model(
    files: &CheckpointFiles,
    arch: Architecture,
    weights: WeightSource,
    device: &Device,
    dtype: DType,
    quantization: Quantization,
) -> Result<Box<dyn DiffusionModel>> {
    let (backend, prequantized): (Box<dyn candle_nn::var_builder::SimpleBackend>, _) = match weights
    {
        WeightSource::Safetensors(weights) => (Box::new(weights), None),
        WeightSource::Gguf(weights) => (Box::new(weights.clone()), Some(weights)),
    };
    let vb = VarBuilder::from_backend(backend, dtype, device.clone());
    let mut weights = Weights::new(vb, quantization);
    if let Some(gguf) = prequantized {
        // Tensors the GGUF stores quantized stay so; its f32/f16 tensors follow `quantization`.
        weights = weights.with_prequantized(std::sync::Arc::new(gguf));
    }
    crate::models::build(arch, &files.config, weights).map_err(|e| match e {
        Error::Candle(inner) => Error::Checkpoint(format!("{}: {inner}", files.dir.display())),
        other => other,
    })
}

/// A checkpoint resolved and read up to its weights' headers, nothing built yet: what `hone engine
/// info` reports on, and the first half of [`load`].
#[derive(Debug)]
pub struct OpenedCheckpoint {
    /// The folder (or file) the model name resolved to.
    pub source: PathBuf,
    pub files: CheckpointFiles,
    pub arch: Architecture,
    pub info: ModelInfo,
    pub tokenizer: Option<TextTokenizer>,
    pub special: SpecialTokens,
    /// What is odd about the checkpoint but does not stop it loading.
    pub warnings: Vec<LoadWarning>,
    pub weights: WeightSource,
}

/// Resolve a checkpoint and read its config, tokenizer, special tokens and weight headers.
pub fn open(spec: &ModelSpec) -> Result<OpenedCheckpoint> {
    let dir = resolve(&spec.model)?;
    let files = CheckpointFiles::open(&dir)?;
    let arch = files.architecture(spec.arch)?;
    let info = files.info(arch)?;
    let mut tokenizer = files.tokenizer(arch)?;
    let special = files.special_tokens(tokenizer.as_ref())?;
    let warnings: Vec<LoadWarning> = tokenizer
        .as_mut()
        .and_then(|t| t.set_mask(special.mask))
        .into_iter()
        .collect();
    let weights = files.map_weights()?;
    Ok(OpenedCheckpoint {
        source: dir,
        files,
        arch,
        info,
        tokenizer,
        special,
        warnings,
        weights,
    })
}

impl OpenedCheckpoint {
    /// The dtype `spec` loads in: its own, or the device's default.
    pub fn dtype(spec: &ModelSpec) -> DType {
        spec.dtype
            .unwrap_or_else(|| crate::device::default_dtype(&spec.device))
    }

    /// Build the model on `spec`'s device, in its dtype and quantization, after checking on the
    /// CPU that it fits in memory.
    pub fn build(self, spec: &ModelSpec) -> Result<LoadedModel> {
        let dtype = Self::dtype(spec);
        if spec.device.is_cpu() {
            let quantization = self.weights.loaded_quantization(spec.quantization);
            crate::memory::check_model(&spec.model, &self.info, dtype, quantization)?;
        }
        let model = build_model(
            &self.files,
            self.arch,
            self.weights,
            &spec.device,
            dtype,
            spec.quantization,
        )?;
        Ok(LoadedModel {
            model,
            tokenizer: self.tokenizer,
            special: self.special,
            generation: self.files.generation_defaults(),
            name: spec.model.clone(),
            source: self.source,
            warnings: self.warnings,
        })
    }
}

/// Resolve, check and load a checkpoint.
pub fn load(spec: &ModelSpec) -> Result<LoadedModel> {
    open(spec)?.build(spec)
}

#[cfg(test)]
mod tests;
