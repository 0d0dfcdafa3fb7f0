//! A GGUF file's tensors served by their Hugging Face names: as a `VarBuilder` backend (dense
//! tensors: f32/f16/bf16 read as they are, quantized ones dequantized one tensor at a time) and as
//! the source of already-quantized linear weights, which then stay quantized. Each tensor is copied
//! out of the memory map on request (its expert's slice of a stacked tensor, rows un-permuted where
//! the converter permuted them) and its pages released, as for safetensors.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

use super::gguf::GgufFile;
use super::gguf_names::unpermute_rows;
use super::weights::release_pages;

/// A checked GGUF file and the head counts its q/k rows were permuted with; cheap to clone (one
/// handle serves as the `VarBuilder` backend and as the source of quantized weights).
#[derive(Debug, Clone)]
pub struct GgufWeights(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    file: GgufFile,
    heads: usize,
    kv_heads: usize,
}

impl std::ops::Deref for GgufWeights {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// One tensor's bytes, ready for candle: GGML type, shape, data.
struct Raw<'a> {
    dtype: GgmlDType,
    dims: Vec<usize>,
    bytes: Cow<'a, [u8]>,
    /// The mapped range the bytes came from, released once they are copied.
    range: (usize, usize),
}

fn msg(text: String) -> candle_core::Error {
    candle_core::Error::Msg(text)
}

impl GgufWeights {
    pub fn new(file: GgufFile) -> crate::Result<Self> {
        let (heads, kv_heads) = file.head_counts()?;
        Ok(Self(Arc::new(Inner {
            file,
            heads,
            kv_heads,
        })))
    }
}

impl Inner {
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Total bytes of tensor data in the file.
    pub fn data_bytes(&self) -> u64 {
        self.file.tensors.values().map(|t| t.len as u64).sum()
    }

    /// Number of scalar weights in the file.
    pub fn parameter_count(&self) -> u64 {
        self.file
            .tensors
            .values()
            .map(|t| t.dims.iter().product::<usize>() as u64)
            .sum()
    }

    /// The GGML type most of the bytes are stored in (`q8_0`, `f32`, ...).
    pub fn stored_type(&self) -> Option<GgmlDType> {
        let mut bytes: Vec<(GgmlDType, u64)> = Vec::new();
        for t in self.file.tensors.values() {
            match bytes.iter_mut().find(|(d, _)| *d == t.dtype) {
                Some((_, b)) => *b += t.len as u64,
                None => bytes.push((t.dtype, t.len as u64)),
            }
        }
        bytes.into_iter().max_by_key(|(_, b)| *b).map(|(d, _)| d)
    }

    fn raw(&self, hf_name: &str) -> candle_core::Result<Raw<'_>> {
        let path = self.file.path.display();
        let located = self
            .file
            .locate(hf_name, self.heads, self.kv_heads)
            .ok_or_else(|| {
                msg(format!(
                    "tensor `{hf_name}` has no GGUF name for {}: the file does not match its architecture",
                    self.file.architecture
                ))
            })?;
        let tensor = self.file.tensors.get(&located.name).ok_or_else(|| {
            msg(format!(
                "tensor `{}` (for `{hf_name}`) is missing from {path}: the GGUF does not match its metadata",
                located.name
            ))
        })?;
        let (mut start, mut len, mut dims) = (tensor.start, tensor.len, tensor.dims.clone());
        if let Some(expert) = located.expert {
            let experts = dims.first().copied().unwrap_or(0);
            if dims.len() != 3 || expert >= experts {
                return Err(msg(format!(
                    "tensor `{}` in {path} has shape {dims:?}, expected [experts > {expert}, out, in]",
                    located.name
                )));
            }
            len /= experts;
            start += expert * len;
            dims.remove(0);
        }
        let bytes = &self.file.map[start..start + len];
        let bytes = match located.permuted_heads {
            Some(heads) => {
                let rows = dims.first().copied().unwrap_or(0);
                Cow::Owned(unpermute_rows(bytes, rows, heads).ok_or_else(|| {
                    msg(format!(
                        "tensor `{}` in {path} has {rows} rows, which do not split into {heads} heads of an even size",
                        located.name
                    ))
                })?)
            }
            None => Cow::Borrowed(bytes),
        };
        Ok(Raw {
            dtype: tensor.dtype,
            dims,
            bytes,
            range: (start, len),
        })
    }

    fn check_shape(&self, hf_name: &str, dims: &[usize], want: &Shape) -> candle_core::Result<()> {
        if dims != want.dims() {
            return Err(msg(format!(
                "tensor `{hf_name}` has shape {dims:?} in {}, its metadata implies {:?}",
                self.file.path.display(),
                want.dims()
            )));
        }
        Ok(())
    }

    /// The tensor dense in `dtype` on `device`, its shape checked first when `want` is given.
    fn dense(
        &self,
        hf_name: &str,
        want: Option<&Shape>,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let raw = self.raw(hf_name)?;
        if let Some(want) = want {
            self.check_shape(hf_name, &raw.dims, want)?;
        }
        let plain = match raw.dtype {
            GgmlDType::F32 => Some(DType::F32),
            GgmlDType::F16 => Some(DType::F16),
            GgmlDType::BF16 => Some(DType::BF16),
            _ => None,
        };
        let tensor = match plain {
            Some(stored) => Tensor::from_raw_buffer(&raw.bytes, stored, &raw.dims, device)?,
            None => qtensor_from_ggml(raw.dtype, &raw.bytes, raw.dims.clone(), &Device::Cpu)?
                .dequantize(device)?,
        }
        .to_dtype(dtype)?;
        release_pages(&self.file.map, raw.range.0, raw.range.1);
        Ok(tensor)
    }

    /// The tensor as a quantized `QTensor` on `device` when the file stores it quantized; `None` for
    /// f32/f16/bf16 tensors (read those densely).
    pub fn quantized(
        &self,
        hf_name: &str,
        device: &Device,
    ) -> candle_core::Result<Option<QTensor>> {
        let Some(located) = self.file.locate(hf_name, self.heads, self.kv_heads) else {
            return Ok(None);
        };
        match self.file.tensors.get(&located.name).map(|t| t.dtype) {
            None | Some(GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) => return Ok(None),
            Some(_) => {}
        }
        let raw = self.raw(hf_name)?;
        let q = qtensor_from_ggml(raw.dtype, &raw.bytes, raw.dims, device).map_err(|e| {
            msg(format!(
                "tensor `{hf_name}` in {}: {e}",
                self.file.path.display()
            ))
        })?;
        release_pages(&self.file.map, raw.range.0, raw.range.1);
        Ok(Some(q))
    }
}

impl SimpleBackend for GgufWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.dense(name, Some(&shape), dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.dense(name, None, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.file
            .locate(name, self.heads, self.kv_heads)
            .is_some_and(|l| self.file.tensors.contains_key(&l.name))
    }
}

impl crate::models::linear::QuantizedTensors for GgufWeights {
    fn quantized(&self, name: &str, device: &Device) -> candle_core::Result<Option<Arc<QTensor>>> {
        Ok(Inner::quantized(self, name, device)?.map(Arc::new))
    }
}
