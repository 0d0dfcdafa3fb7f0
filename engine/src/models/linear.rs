//! Linear layers, dense or quantized (GGML block formats: compact host blocks on the CPU, candle's
//! `QTensor` elsewhere), and projections that read the same input packed into one matmul (fused
//! q/k/v, fused gate/up). They load from a [`Weights`] (`weights.rs`, with the [`Quantization`],
//! the embedding and the parallel layer loader, re-exported here).
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
use candle_core::{DType, Device, Module, Tensor};

use super::quantized::HostQuantized;
use super::weights::EmbeddingTable;
pub use super::weights::{load_layers, Embedding, Quantization, QuantizedTensors, Weights};

/// `format` when rows of `in_dim` values split into its blocks, else q8_0 when they split into 32,
/// else dense.
pub(super) fn fitting_format(format: Option<GgmlDType>, in_dim: usize) -> Option<GgmlDType> {
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

    /// The same dense weight, still `[out_dim, in_dim]` to every reader, stored as the transposed
    /// view of a contiguous `[in_dim, out_dim]` tensor when it lives in f32 in CPU memory: the
    /// matmul `x W^T` then reads a row-major right-hand side, which `gemm` streams without packing
    /// it on every call. With the few rows of a denoising block (32) that made the block layers'
    /// matmuls 1.4–2.3× faster (`[32, 512] x [512, 1536]`: 0.66 -> 0.29 ms) at identical results
    /// (same products, same summation order). Not for the head: there the `[rows, vocab]`
    /// product was faster with the weight as stored, and a tied head shares the embedding table.
    fn row_major_rhs(self) -> candle_core::Result<Self> {
        match self {
            LinearWeight::Dense(w) if w.device().is_cpu() && w.dtype() == DType::F32 => {
                Ok(LinearWeight::Dense(w.t()?.contiguous()?.t()?))
            }
            other => Ok(other),
        }
    }

    /// [`Self::row_major_rhs`] for a block layer's weight with the `avx512` feature (on by
    /// default), where its micro-benchmark ran. Built without it, gemm's AVX2 kernels were ~15%
    /// slower that way on the dual-cache layers (60 -> 68–72 ms a step, llada-100m), so such a
    /// build keeps the weights as stored.
    fn for_block_layer(self) -> candle_core::Result<Self> {
        if cfg!(feature = "avx512") {
            self.row_major_rhs()
        } else {
            Ok(self)
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
            LinearWeight::Dense(w) => match super::dense_rows::matmul(x, w)? {
                Some(y) => Ok(y),
                None => x.matmul(&w.t()?),
            },
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
        let weight = vb
            .linear_weight(in_dim, out_dim, vb.quantization.ggml_dtype())?
            .for_block_layer()?;
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
        let weight = weight.for_block_layer()?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn row_major_rhs_keeps_the_shape_and_the_products() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (48, 40), &device).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 48, &device).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 32, 40), &device).unwrap();
        let plain = Linear::from_weights(LinearWeight::Dense(weight.clone()), Some(bias.clone()));
        let stored = LinearWeight::Dense(weight.clone()).row_major_rhs().unwrap();
        let LinearWeight::Dense(w) = &stored else {
            panic!("a dense weight stays dense");
        };
        assert_eq!(w.dims(), &[48, 40]);
        assert!(
            w.t().unwrap().is_contiguous(),
            "stored as a contiguous [in, out]"
        );
        assert_eq!(stored.dims().unwrap(), (48, 40));
        let fast = Linear::from_weights(stored, Some(bias.clone()));
        // gemm on either layout: the same products in the same order. (`plain.forward` may run
        // `dense_rows`, whose sums are ordered differently, so the reference is candle's matmul.)
        let reference = x
            .reshape((64, 40))
            .unwrap()
            .matmul(&weight.t().unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap()
            .reshape((2, 32, 48))
            .unwrap();
        let (a, b) = (plain.forward(&x).unwrap(), fast.forward(&x).unwrap());
        assert_eq!(a.dims(), &[2, 32, 48]);
        let diff = (&reference - b).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        let diff = (reference - a).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);

        // Packed parts (fused q/k/v) come out in the block layers' layout, each part still exact.
        let parts: Vec<Linear> = [16, 8, 8]
            .iter()
            .map(|&rows| {
                Linear::from_weight(Tensor::randn(0f32, 1.0, (rows, 40), &device).unwrap())
            })
            .collect();
        let separate: Vec<Tensor> = parts.iter().map(|l| l.forward(&x).unwrap()).collect();
        let fused = FusedLinear::pack(parts).unwrap();
        let FusedLinear::Packed { linear, .. } = &fused else {
            panic!("dense parts pack");
        };
        let LinearWeight::Dense(w) = linear.weight() else {
            panic!("packed dense weight");
        };
        // The layout only with the `avx512` feature (`for_block_layer`).
        assert_eq!(w.t().unwrap().is_contiguous(), cfg!(feature = "avx512"));
        // Each part as its own layer (possibly `dense_rows`) against its slice of the packed
        // product: equal up to the order of the sums.
        for (one, packed) in separate.iter().zip(fused.forward(&x).unwrap()) {
            let diff = (one - packed).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }
}
