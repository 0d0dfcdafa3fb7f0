//! Memory-mapped safetensors files (one or several shards) as a `VarBuilder` backend.
//!
//! Each file is mapped once and its header parsed and checked up front (a truncated or corrupt file
//! fails before any model is built, naming the file). A tensor is copied out of the map into its
//! device tensor (converted to the requested dtype) on request, and the pages it came from are then
//! released, so loading peaks at about the weights' size instead of twice it. Missing tensors and
//! shape mismatches are reported with the tensor's name and file.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use memmap2::Mmap;

use crate::models::Quantization;
use crate::{Error, Result};

/// Where a tensor's bytes are: file index, dtype, shape and byte range inside the data section.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub file: usize,
    pub dtype: DType,
    pub shape: Vec<usize>,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct MappedFile {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
}

/// A set of mapped safetensors files and the index of their tensors.
#[derive(Debug)]
pub struct MappedWeights {
    files: Vec<MappedFile>,
    tensors: HashMap<String, TensorEntry>,
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!(
        "{} is not a valid safetensors file ({what}): the download may be incomplete; fetch it again",
        path.display()
    ))
}

fn parse_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "U32" => DType::U32,
        "U8" => DType::U8,
        _ => return None,
    })
}

/// Map `path` read-only. The map is only ever read, never handed out past a borrow of `self`.
#[allow(unsafe_code)]
pub(crate) fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the mapping is read-only and private; checkpoints are not expected to change while
    // hone reads them (the same assumption candle and PyTorch's safetensors loaders make).
    unsafe { Mmap::map(&file) }.map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl MappedWeights {
    /// Map and index `paths`; a tensor name present in two files is an error.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            let map = map_file(path)?;
            let (data_start, entries) = parse_header(path, &map, index)?;
            for (name, entry) in entries {
                if tensors.insert(name.clone(), entry).is_some() {
                    return Err(Error::Checkpoint(format!(
                        "tensor `{name}` appears in more than one weights file ({})",
                        path.display()
                    )));
                }
            }
            files.push(MappedFile {
                path: path.clone(),
                map,
                data_start,
            });
        }
        Ok(Self { files, tensors })
    }

    pub fn entries(&self) -> &HashMap<String, TensorEntry> {
        &self.tensors
    }

    /// Total bytes of tensor data in the files.
    pub fn data_bytes(&self) -> u64 {
        self.tensors
            .values()
            .map(|e| (e.end - e.start) as u64)
            .sum()
    }

    /// Number of scalar weights in the files.
    pub fn parameter_count(&self) -> u64 {
        self.tensors
            .values()
            .map(|e| e.shape.iter().product::<usize>() as u64)
            .sum()
    }

    /// The dtype most of the bytes are stored in.
    pub fn stored_dtype(&self) -> Option<DType> {
        let mut bytes: HashMap<DType, usize> = HashMap::new();
        for e in self.tensors.values() {
            *bytes.entry(e.dtype).or_default() += e.end - e.start;
        }
        bytes.into_iter().max_by_key(|(_, b)| *b).map(|(d, _)| d)
    }

    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let entry = self.tensors.get(name).ok_or_else(|| {
            let files: Vec<String> = self
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect();
            candle_core::Error::Msg(format!(
                "tensor `{name}` is missing from {}: the weights do not match config.json",
                files.join(", ")
            ))
        })?;
        let file = &self.files[entry.file];
        let offset = file.data_start + entry.start;
        let len = entry.end - entry.start;
        let bytes = &file.map[offset..offset + len];
        let tensor =
            Tensor::from_raw_buffer(bytes, entry.dtype, &entry.shape, device)?.to_dtype(dtype)?;
        release_pages(&file.map, offset, len);
        Ok(tensor)
    }
}

/// Tell the kernel the mapped pages of a tensor already copied out are not needed any more, so the
/// resident set does not hold the file and the weights at the same time. Best effort.
#[allow(unsafe_code)]
pub(crate) fn release_pages(map: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: the map is a private read-only file mapping and no borrow of these bytes outlives
        // `load`; after MADV_DONTNEED a later read faults the same bytes back in from the file.
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (map, offset, len);
}

/// Parse and check a safetensors header: `u64` little-endian header size, JSON header, data.
fn parse_header(
    path: &Path,
    map: &[u8],
    file: usize,
) -> Result<(usize, Vec<(String, TensorEntry)>)> {
    if map.len() < 8 {
        return Err(corrupt(
            path,
            format!("{} bytes, shorter than a header", map.len()),
        ));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&map[..8]);
    let header_len = u64::from_le_bytes(size) as usize;
    let data_start = header_len
        .checked_add(8)
        .filter(|&s| s <= map.len())
        .ok_or_else(|| {
            corrupt(
                path,
                format!(
                    "header of {header_len} bytes does not fit in {} bytes",
                    map.len()
                ),
            )
        })?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&map[8..data_start])
            .map_err(|e| corrupt(path, format!("unreadable header: {e}")))?;
    let data_len = map.len() - data_start;
    let mut entries = Vec::with_capacity(header.len());
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype_name = value.get("dtype").and_then(|v| v.as_str()).unwrap_or("?");
        let dtype = parse_dtype(dtype_name).ok_or_else(|| {
            Error::Unsupported(format!(
                "tensor `{name}` in {} has unsupported dtype {dtype_name}",
                path.display()
            ))
        })?;
        let shape: Vec<usize> = value
            .get("shape")
            .and_then(|v| v.as_array())
            .map(|dims| {
                dims.iter()
                    .filter_map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .ok_or_else(|| corrupt(path, format!("tensor `{name}` has no shape")))?;
        let offsets: Vec<usize> = value
            .get("data_offsets")
            .and_then(|v| v.as_array())
            .map(|o| {
                o.iter()
                    .filter_map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .unwrap_or_default();
        let [start, end] = offsets[..] else {
            return Err(corrupt(
                path,
                format!("tensor `{name}` has no data offsets"),
            ));
        };
        let expected = shape.iter().product::<usize>() * dtype.size_in_bytes();
        if end < start || end - start != expected {
            return Err(corrupt(
                path,
                format!("tensor `{name}` spans {start}..{end}, its shape needs {expected} bytes"),
            ));
        }
        if end > data_len {
            return Err(corrupt(
                path,
                format!("truncated: tensor `{name}` ends at byte {end} of the data, the file holds {data_len}"),
            ));
        }
        entries.push((
            name,
            TensorEntry {
                file,
                dtype,
                shape,
                start,
                end,
            },
        ));
    }
    Ok((data_start, entries))
}

impl SimpleBackend for MappedWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(entry) = self.tensors.get(name) {
            if entry.shape != shape.dims() {
                return Err(candle_core::Error::Msg(format!(
                    "tensor `{name}` has shape {:?} in {}, config.json implies {:?}",
                    entry.shape,
                    self.files[entry.file].path.display(),
                    shape.dims()
                )));
            }
        }
        self.load(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// A checkpoint's weights, mapped and checked: safetensors files or one GGUF file.
#[derive(Debug)]
pub enum WeightSource {
    Safetensors(MappedWeights),
    Gguf(super::gguf_weights::GgufWeights),
}

/// The type most of a checkpoint's bytes are stored in: a candle dtype, or a GGML type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredType(String);

impl StoredType {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl WeightSource {
    /// Total bytes of tensor data in the files.
    pub fn data_bytes(&self) -> u64 {
        match self {
            WeightSource::Safetensors(w) => w.data_bytes(),
            WeightSource::Gguf(w) => w.data_bytes(),
        }
    }

    /// Number of scalar weights in the files.
    pub fn parameter_count(&self) -> u64 {
        match self {
            WeightSource::Safetensors(w) => w.parameter_count(),
            WeightSource::Gguf(w) => w.parameter_count(),
        }
    }

    /// The quantization whose size the linear layers take once loaded, for memory estimates: a
    /// GGUF's quantized tensors stay as stored whatever was `requested` (formats of 5 bits and
    /// more counted as q8_0, smaller ones as q4k); everything else follows `requested`.
    pub fn loaded_quantization(&self, requested: Quantization) -> Quantization {
        use candle_core::quantized::GgmlDType as G;
        match self {
            WeightSource::Gguf(w) => match w.stored_type() {
                None | Some(G::F32 | G::F16 | G::BF16) => requested,
                Some(G::Q4_0 | G::Q4_1 | G::Q4K | G::Q3K | G::Q2K) => Quantization::Q4K,
                Some(_) => Quantization::Q8_0,
            },
            WeightSource::Safetensors(_) => requested,
        }
    }

    /// The type most of the bytes are stored in (`bf16`, `q8_0`, ...).
    pub fn stored_dtype(&self) -> Option<StoredType> {
        match self {
            WeightSource::Safetensors(w) => w.stored_dtype().map(|d| StoredType(d.as_str().into())),
            WeightSource::Gguf(w) => w
                .stored_type()
                .map(|d| StoredType(format!("{d:?}").to_ascii_lowercase())),
        }
    }
}
