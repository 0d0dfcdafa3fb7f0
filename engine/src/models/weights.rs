//! Where a model's weights come from and how they are kept: [`Weights`] (the checkpoint's
//! `VarBuilder` plus the [`Quantization`] the caller chose, and optionally tensors that arrive
//! already quantized through [`QuantizedTensors`]) is what every model's `load` takes; the
//! token [`Embedding`]; and [`load_layers`], which builds a model's layers in parallel. The linear
//! layers themselves are `linear.rs`'s.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;

use super::linear::{fitting_format, LinearWeight};

/// How the linear layers of a model are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    /// Dense, in the model dtype (the default).
    #[default]
    None,
    /// GGML q8_0: blocks of 32 int8 values and one f16 scale (8.5 bits a weight).
    Q8_0,
    /// GGML q4_K: super-blocks of 256 4-bit values with 6-bit sub-block scales (4.5 bits a weight).
    Q4K,
}

impl Quantization {
    /// The `--quantize` names.
    pub const NAMES: [&'static str; 3] = ["none", "q8_0", "q4k"];

    pub fn name(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Q8_0 => "q8_0",
            Quantization::Q4K => "q4k",
        }
    }

    /// Parse a `--quantize` name (`q4_k` and `q4km` are accepted for q4k).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" | "f32" | "dense" => Quantization::None,
            "q8_0" | "q8" => Quantization::Q8_0,
            "q4k" | "q4_k" | "q4" => Quantization::Q4K,
            _ => return None,
        })
    }

    /// The GGML format of the block linear layers, `None` when dense.
    pub fn ggml_dtype(self) -> Option<GgmlDType> {
        match self {
            Quantization::None => None,
            Quantization::Q8_0 => Some(GgmlDType::Q8_0),
            Quantization::Q4K => Some(GgmlDType::Q4K),
        }
    }

    /// The GGML format of the output head: q8_0 whenever anything is quantized.
    pub fn head_dtype(self) -> Option<GgmlDType> {
        self.ggml_dtype().map(|_| GgmlDType::Q8_0)
    }

    /// Bytes one weight of the block layers takes (0.5625 for q4k, 1.0625 for q8_0), `None` when
    /// dense (the model dtype decides).
    pub fn bytes_per_weight(self) -> Option<f64> {
        self.ggml_dtype()
            .map(|d| d.type_size() as f64 / d.block_size() as f64)
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Tensors that a weight source holds already quantized (a GGUF file): looked up by full dotted
/// name before the `VarBuilder` is asked, and used as they are.
pub trait QuantizedTensors: Send + Sync {
    /// `Ok(None)` when `name` is not stored quantized (read it densely instead).
    fn quantized(&self, name: &str, device: &Device) -> candle_core::Result<Option<Arc<QTensor>>>;
}

/// A checkpoint's tensors and how to store the linear layers: what a model's `load` takes.
#[derive(Clone)]
pub struct Weights<'a> {
    vb: VarBuilder<'a>,
    pub(super) quantization: Quantization,
    prequantized: Option<Arc<dyn QuantizedTensors>>,
}

impl std::fmt::Debug for Weights<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("prefix", &self.vb.prefix())
            .field("quantization", &self.quantization)
            .field("prequantized", &self.prequantized.is_some())
            .finish()
    }
}

impl<'a> Weights<'a> {
    pub fn new(vb: VarBuilder<'a>, quantization: Quantization) -> Self {
        Self {
            vb,
            quantization,
            prequantized: None,
        }
    }

    /// Take the tensors `source` holds quantized from it (GGUF), the rest from the `VarBuilder`.
    pub fn with_prequantized(mut self, source: Arc<dyn QuantizedTensors>) -> Self {
        self.prequantized = Some(source);
        self
    }

    pub fn pp<S: ToString>(&self, s: S) -> Self {
        Self {
            vb: self.vb.pp(s),
            quantization: self.quantization,
            prequantized: self.prequantized.clone(),
        }
    }

    pub fn quantization(&self) -> Quantization {
        self.quantization
    }

    pub fn dtype(&self) -> DType {
        self.vb.dtype()
    }

    pub fn device(&self) -> &Device {
        self.vb.device()
    }

    pub fn get<S: Into<Shape>>(&self, shape: S, name: &str) -> candle_core::Result<Tensor> {
        self.vb.get(shape, name)
    }

    /// A tensor in `dtype` whatever the model dtype (norm weights, routers: f32).
    pub fn get_with_dtype<S: Into<Shape>>(
        &self,
        shape: S,
        name: &str,
        dtype: DType,
    ) -> candle_core::Result<Tensor> {
        self.vb
            .get_with_hints_dtype(shape, name, Default::default(), dtype)
    }

    pub(super) fn prequantized(&self, name: &str) -> candle_core::Result<Option<Arc<QTensor>>> {
        match &self.prequantized {
            Some(source) => {
                let full = match self.vb.prefix() {
                    prefix if prefix.is_empty() => name.to_string(),
                    prefix => format!("{prefix}.{name}"),
                };
                source.quantized(&full, self.vb.device())
            }
            None => Ok(None),
        }
    }

    /// The `[out_dim, in_dim]` weight under this prefix, stored as `format` asks.
    pub(super) fn linear_weight(
        &self,
        in_dim: usize,
        out_dim: usize,
        format: Option<GgmlDType>,
    ) -> candle_core::Result<LinearWeight> {
        if let Some(q) = self.prequantized("weight")? {
            if q.shape().dims() != [out_dim, in_dim] {
                candle_core::bail!(
                    "tensor `{}.weight` has shape {:?}, config.json implies [{out_dim}, {in_dim}]",
                    self.vb.prefix(),
                    q.shape().dims()
                );
            }
            return LinearWeight::from_qtensor(q);
        }
        match fitting_format(format, in_dim) {
            None => Ok(LinearWeight::Dense(
                self.vb.get((out_dim, in_dim), "weight")?,
            )),
            Some(dtype) => {
                let dense = self.get_with_dtype((out_dim, in_dim), "weight", DType::F32)?;
                LinearWeight::quantize(&dense, dtype)
            }
        }
    }

    pub(super) fn bias(&self, out_dim: usize, bias: bool) -> candle_core::Result<Option<Tensor>> {
        if bias {
            Ok(Some(self.vb.get(out_dim, "bias")?))
        } else {
            Ok(None)
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum EmbeddingTable {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
}

/// The token embedding `[rows, hidden]`: dense (f16 when the model is quantized, see the module
/// note) or GGML-quantized when it arrived so; looked up rows come out in the model dtype.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub(super) table: EmbeddingTable,
    dtype: DType,
}

impl Embedding {
    pub fn load(vb: Weights, rows: usize, hidden: usize) -> candle_core::Result<Self> {
        let dtype = vb.dtype();
        if let Some(q) = vb.prequantized("weight")? {
            return Ok(Self {
                table: EmbeddingTable::Quantized(q),
                dtype,
            });
        }
        let weight = vb.get((rows, hidden), "weight")?;
        Ok(Self {
            table: EmbeddingTable::Dense(weight),
            dtype,
        })
    }

    /// Store a dense table in f16 from now on (after a tied head was built from the full values).
    pub fn compact(self, vb: &Weights) -> candle_core::Result<Self> {
        match self.table {
            EmbeddingTable::Dense(w) if vb.quantization != Quantization::None => Ok(Self {
                table: EmbeddingTable::Dense(w.to_dtype(DType::F16)?),
                dtype: self.dtype,
            }),
            table => Ok(Self {
                table,
                dtype: self.dtype,
            }),
        }
    }

    /// Bytes the table takes in memory.
    pub fn storage_bytes(&self) -> usize {
        match &self.table {
            EmbeddingTable::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
            EmbeddingTable::Quantized(q) => q.storage_size_in_bytes(),
        }
    }

    /// `[batch, len]` ids -> `[batch, len, hidden]` in the model dtype.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let flat = ids.to_dtype(DType::U32)?.flatten_all()?;
        let rows = match &self.table {
            EmbeddingTable::Dense(w) => w.index_select(&flat, 0)?,
            EmbeddingTable::Quantized(q) => q.embedding(&flat)?,
        };
        let hidden = rows.dim(1)?;
        rows.to_dtype(self.dtype)?.reshape((batch, len, hidden))
    }
}

/// Load `count` layers with `load(index)`, spread over the available cores: each layer is read (and
/// quantized) on its own, so a large model is built a few tensors at a time and its full-precision
/// weights never exist together. The result is in index order whatever the scheduling.
pub fn load_layers<T: Send>(
    count: usize,
    load: impl Fn(usize) -> candle_core::Result<T> + Sync,
) -> candle_core::Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    if threads <= 1 {
        return (0..count).map(load).collect();
    }
    let load = &load;
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    (worker..count)
                        .step_by(threads)
                        .map(|i| load(i).map(|layer| (i, layer)))
                        .collect::<candle_core::Result<Vec<_>>>()
                })
            })
            .collect();
        for worker in workers {
            let layers = worker
                .join()
                .map_err(|_| candle_core::Error::Msg("a layer-loading thread panicked".into()))??;
            for (i, layer) in layers {
                slots[i] = Some(layer);
            }
        }
        Ok::<(), candle_core::Error>(())
    })?;
    slots
        .into_iter()
        .map(|slot| slot.ok_or_else(|| candle_core::Error::Msg("a layer was not loaded".into())))
        .collect()
}
