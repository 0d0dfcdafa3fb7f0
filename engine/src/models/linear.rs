//! How a model's weights are stored once loaded: linear layers dense or quantized (candle's
//! `QTensor`, GGML block formats), projections that read the same input packed into one matmul
//! (fused q/k/v, fused gate/up), and the token embedding. [`Weights`] is what every model's `load`
//! takes: the checkpoint's `VarBuilder` plus the [`Quantization`] chosen by the caller, and
//! optionally tensors that arrive already quantized (a GGUF file, through [`QuantizedTensors`]).
//!
//! What is quantized under `--quantize`: the linear layers of every block (attention and MLP,
//! routed and shared experts) in the chosen format, the output head in q8_0 whatever the choice
//! (its error lands directly on the logits, and it is a small share of a 7–8B model). Norms, the MoE
//! routers and biases stay f32 (tiny, and the routing decision is discrete); the embedding is kept
//! dense in f16 (a lookup costs no compute, f16 holds the f32/bf16 values of an embedding to 11
//! significant bits, and it halves the largest dense tensor). A weight whose rows do not divide into
//! the format's blocks (256 values for q4k, 32 for q8_0) falls back to q8_0, then stays dense.
//! Nothing here decides which files or names exist; the model files do.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Shape, Tensor};
use candle_nn::VarBuilder;

use super::quantized::HostQuantized;

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
    quantization: Quantization,
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

    fn prequantized(&self, name: &str) -> candle_core::Result<Option<Arc<QTensor>>> {
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
    fn linear_weight(
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

    fn bias(&self, out_dim: usize, bias: bool) -> candle_core::Result<Option<Tensor>> {
        if bias {
            Ok(Some(self.vb.get(out_dim, "bias")?))
        } else {
            Ok(None)
        }
    }
}

/// `format` when rows of `in_dim` values split into its blocks, else q8_0 when they split into 32,
/// else dense.
fn fitting_format(format: Option<GgmlDType>, in_dim: usize) -> Option<GgmlDType> {
    let format = format?;
    if in_dim.is_multiple_of(format.block_size()) {
        Some(format)
    } else if in_dim.is_multiple_of(GgmlDType::Q8_0.block_size()) {
        Some(GgmlDType::Q8_0)
    } else {
        None
    }
}

/// A linear layer's weight `[out_dim, in_dim]`: dense in the model dtype, or GGML-quantized
/// (compact blocks in host memory on the CPU, see `quantized.rs`; candle's `QTensor` elsewhere).
#[derive(Debug, Clone)]
pub enum LinearWeight {
    Dense(Tensor),
    Quantized(Arc<HostQuantized>),
    DeviceQuantized(Arc<QTensor>),
}

impl LinearWeight {
    /// Quantize a dense `[out_dim, in_dim]` weight (any dtype) to `dtype` on its device.
    pub fn quantize(dense: &Tensor, dtype: GgmlDType) -> candle_core::Result<Self> {
        let device = dense.device().clone();
        if device.is_cpu() {
            Ok(Self::Quantized(Arc::new(HostQuantized::quantize_tensor(
                dense, dtype,
            )?)))
        } else {
            let host = dense.to_device(&Device::Cpu)?;
            Ok(Self::DeviceQuantized(Arc::new(QTensor::quantize_onto(
                &host, dtype, &device,
            )?)))
        }
    }

    /// A weight that arrived quantized (GGUF): copied into compact host blocks on the CPU.
    pub fn from_qtensor(q: Arc<QTensor>) -> candle_core::Result<Self> {
        if q.device().is_cpu() {
            Ok(Self::Quantized(Arc::new(HostQuantized::from_qtensor(&q)?)))
        } else {
            Ok(Self::DeviceQuantized(q))
        }
    }

    /// `(out_dim, in_dim)`.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        match self {
            LinearWeight::Dense(w) => w.dims2(),
            LinearWeight::Quantized(q) => Ok(q.dims()),
            LinearWeight::DeviceQuantized(q) => q.shape().dims2(),
        }
    }

    /// Bytes the weight takes in memory.
    pub fn storage_bytes(&self) -> usize {
        match self {
            LinearWeight::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
            LinearWeight::Quantized(q) => q.storage_bytes(),
            LinearWeight::DeviceQuantized(q) => q.storage_size_in_bytes(),
        }
    }

    /// The GGML format, `None` when dense.
    pub fn ggml_dtype(&self) -> Option<GgmlDType> {
        match self {
            LinearWeight::Dense(_) => None,
            LinearWeight::Quantized(q) => Some(q.dtype()),
            LinearWeight::DeviceQuantized(q) => Some(q.dtype()),
        }
    }

    /// `x [rows, in_dim] -> [rows, out_dim]`, in `x`'s dtype.
    fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            LinearWeight::Dense(w) => x.matmul(&w.t()?),
            // The quantized kernels take contiguous f32 activations.
            LinearWeight::Quantized(q) => q.matmul(x)?.to_dtype(x.dtype()),
            LinearWeight::DeviceQuantized(q) => QMatMul::QTensor(q.clone())
                .forward(&x.to_dtype(DType::F32)?.contiguous()?)?
                .to_dtype(x.dtype()),
        }
    }

    /// Stack `parts` (same `in_dim`) along the output rows, `None` when they cannot be packed
    /// (quantized parts of different formats, or a dense part next to a quantized one).
    fn concat_rows(parts: &[LinearWeight]) -> candle_core::Result<Option<LinearWeight>> {
        let dense: Option<Vec<&Tensor>> = parts
            .iter()
            .map(|p| match p {
                LinearWeight::Dense(w) => Some(w),
                _ => None,
            })
            .collect();
        if let Some(dense) = dense {
            return Ok(Some(LinearWeight::Dense(Tensor::cat(&dense, 0)?)));
        }
        let host: Option<Vec<&HostQuantized>> = parts
            .iter()
            .map(|p| match p {
                LinearWeight::Quantized(q) => Some(q.as_ref()),
                _ => None,
            })
            .collect();
        if let Some(host) = host {
            return Ok(
                HostQuantized::concat_rows(&host)?.map(|q| LinearWeight::Quantized(Arc::new(q)))
            );
        }
        let device: Option<Vec<&Arc<QTensor>>> = parts
            .iter()
            .map(|p| match p {
                LinearWeight::DeviceQuantized(q) => Some(q),
                _ => None,
            })
            .collect();
        let Some(device) = device else {
            return Ok(None);
        };
        let dtype = device[0].dtype();
        if device.iter().any(|q| q.dtype() != dtype) {
            return Ok(None);
        }
        // A row of `in_dim` values is a whole number of blocks, so rows stack byte by byte.
        let mut bytes = Vec::new();
        let mut rows = 0;
        let mut in_dim = 0;
        for q in &device {
            let (r, k) = q.shape().dims2()?;
            rows += r;
            in_dim = k;
            bytes.extend_from_slice(&q.data()?);
        }
        let storage = QStorage::from_data(Cow::Owned(bytes), &device[0].device(), dtype)?;
        Ok(Some(LinearWeight::DeviceQuantized(Arc::new(QTensor::new(
            storage,
            (rows, in_dim),
        )?))))
    }
}

/// `y = x W^T (+ b)`, computed as a single 2-D matmul over all rows (one GEMM instead of a batched
/// one with a broadcast weight).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: LinearWeight,
    bias: Option<Tensor>,
}

impl Linear {
    /// A block layer: stored in the loader's quantization.
    pub fn load(
        vb: Weights,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> candle_core::Result<Self> {
        let weight = vb.linear_weight(in_dim, out_dim, vb.quantization.ggml_dtype())?;
        Ok(Self {
            weight,
            bias: vb.bias(out_dim, bias)?,
        })
    }

    /// The output head: q8_0 whenever the loader quantizes (see the module note).
    pub fn load_head(
        vb: Weights,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> candle_core::Result<Self> {
        let weight = vb.linear_weight(in_dim, out_dim, vb.quantization.head_dtype())?;
        Ok(Self {
            weight,
            bias: vb.bias(out_dim, bias)?,
        })
    }

    /// The head of a model with tied embeddings: the embedding matrix itself when dense, quantized
    /// from it (or shared, when it arrived quantized) otherwise.
    pub fn tied_head(embedding: &Embedding, vb: &Weights) -> candle_core::Result<Self> {
        let weight = match (&embedding.table, vb.quantization.head_dtype()) {
            (EmbeddingTable::Quantized(q), _) => LinearWeight::from_qtensor(q.clone())?,
            (EmbeddingTable::Dense(w), None) => LinearWeight::Dense(w.clone()),
            (EmbeddingTable::Dense(w), Some(dtype)) => match fitting_format(Some(dtype), w.dim(1)?)
            {
                Some(dtype) => LinearWeight::quantize(w, dtype)?,
                None => LinearWeight::Dense(w.to_dtype(vb.dtype())?),
            },
        };
        Ok(Self { weight, bias: None })
    }

    /// A layer around `weight` `[out_dim, in_dim]` and an optional bias.
    pub fn from_weights(weight: LinearWeight, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    /// A dense layer without bias around `weight` `[out_dim, in_dim]`.
    pub fn from_weight(weight: Tensor) -> Self {
        Self {
            weight: LinearWeight::Dense(weight),
            bias: None,
        }
    }

    pub fn weight(&self) -> &LinearWeight {
        &self.weight
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim.max(1);
        let y = self.weight.matmul(&x.reshape((rows, in_dim))?)?;
        let y = match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        };
        let mut out_dims = dims.to_vec();
        let last = out_dims.len() - 1;
        out_dims[last] = self.weight.dims()?.0;
        y.reshape(out_dims)
    }
}

/// Several projections of the same input (q/k/v; gate/up) packed once at load into one weight, so
/// a forward is one matmul whose output is narrowed into the parts. Parts that cannot be packed
/// (quantized in different formats, as some GGUF mixes store `v` apart) run one by one.
#[derive(Debug, Clone)]
pub enum FusedLinear {
    Packed { linear: Linear, widths: Vec<usize> },
    Separate(Vec<Linear>),
}

impl FusedLinear {
    /// Load the layers `parts` (`(prefix, out_dim)`, all reading `in_dim` values) and pack them.
    pub fn load(
        parts: &[(Weights, usize)],
        in_dim: usize,
        bias: bool,
    ) -> candle_core::Result<Self> {
        let linears = parts
            .iter()
            .map(|(vb, out_dim)| Linear::load(vb.clone(), in_dim, *out_dim, bias))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Self::pack(linears)
    }

    /// Pack already built layers (same input width).
    pub fn pack(linears: Vec<Linear>) -> candle_core::Result<Self> {
        let weights: Vec<LinearWeight> = linears.iter().map(|l| l.weight.clone()).collect();
        let Some(weight) = LinearWeight::concat_rows(&weights)? else {
            return Ok(FusedLinear::Separate(linears));
        };
        let widths = weights
            .iter()
            .map(|w| w.dims().map(|d| d.0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bias = if linears.iter().all(|l| l.bias.is_some()) {
            let biases: Vec<&Tensor> = linears.iter().filter_map(|l| l.bias.as_ref()).collect();
            Some(Tensor::cat(&biases, 0)?)
        } else if linears.iter().all(|l| l.bias.is_none()) {
            None
        } else {
            return Ok(FusedLinear::Separate(linears));
        };
        Ok(FusedLinear::Packed {
            linear: Linear { weight, bias },
            widths,
        })
    }

    /// The parts' outputs, in the order they were loaded.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            FusedLinear::Packed { linear, widths } => {
                let y = linear.forward(x)?;
                let last = y.rank() - 1;
                let mut start = 0;
                widths
                    .iter()
                    .map(|&width| {
                        let part = y.narrow(last, start, width);
                        start += width;
                        part
                    })
                    .collect()
            }
            FusedLinear::Separate(linears) => linears.iter().map(|l| l.forward(x)).collect(),
        }
    }

    /// The outputs of exactly `N` parts (`let [q, k, v] = qkv.forward_n(&x)?`).
    pub fn forward_n<const N: usize>(&self, x: &Tensor) -> candle_core::Result<[Tensor; N]> {
        let parts = self.forward(x)?;
        let count = parts.len();
        parts.try_into().map_err(|_| {
            candle_core::Error::Msg(format!("fused layer has {count} parts, {N} expected"))
        })
    }

    /// The layers' weights (one when packed).
    pub fn weights(&self) -> Vec<&LinearWeight> {
        match self {
            FusedLinear::Packed { linear, .. } => vec![linear.weight()],
            FusedLinear::Separate(linears) => linears.iter().map(Linear::weight).collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum EmbeddingTable {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
}

/// The token embedding `[rows, hidden]`: dense (f16 when the model is quantized, see the module
/// note) or GGML-quantized when it arrived so; looked up rows come out in the model dtype.
#[derive(Debug, Clone)]
pub struct Embedding {
    table: EmbeddingTable,
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
