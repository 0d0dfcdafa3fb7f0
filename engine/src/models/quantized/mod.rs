//! A GGML-quantized weight matrix kept in host memory in its compact block format. q8_0 and q4k
//! weights are multiplied by hone's own kernels (`kernels.rs`: activations quantized once per
//! matmul, integer block dot products with AVX-512 VNNI / AVX-VNNI / AVX2 chosen at run time, a
//! scalar fallback that defines the results; all `unsafe` in `simd.rs`); other GGML formats a GGUF
//! may hold go through candle's block kernels (`QuantizedType::matmul_t`).
//!
//! Why not candle's `QMatMul` on the CPU: candle 0.11 repacks a quantized weight into wider
//! 16-row tiles on its first use and keeps both copies (a q4k tile holds 6 bits a weight next to
//! the 4.5 of the blocks, q8_0 the same 8.5 again), which roughly doubles the resident weights
//! — an 8B model at q4k would need 9 GB instead of 4. The compact kernels read each weight once
//! per row tile of activations and stay within the memory a user chose the format for. On other
//! devices candle's `QTensor` path is used unchanged (`linear.rs`).

mod kernels;
mod simd;

use std::borrow::Cow;
use std::sync::OnceLock;

use candle_core::quantized::{GgmlDType, QTensor, QuantizedType};
pub use kernels::Kernel;
pub(in crate::models) use simd::SharedOutput;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

/// `[rows, cols]` weights in GGML blocks (rows are whole numbers of blocks) in host memory.
pub struct HostQuantized {
    blocks: Box<dyn QuantizedType>,
    rows: usize,
    cols: usize,
}

impl std::fmt::Debug for HostQuantized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HostQuantized[{}, {}; {:?}]",
            self.rows,
            self.cols,
            self.dtype()
        )
    }
}

impl HostQuantized {
    /// Quantize `values` (`rows * cols`, row-major) to `dtype`; `cols` must be a whole number of
    /// blocks.
    pub fn quantize(
        values: &[f32],
        rows: usize,
        cols: usize,
        dtype: GgmlDType,
    ) -> candle_core::Result<Self> {
        if !cols.is_multiple_of(dtype.block_size()) || values.len() != rows * cols {
            candle_core::bail!(
                "cannot quantize {} values as [{rows}, {cols}] in {dtype:?} (blocks of {})",
                values.len(),
                dtype.block_size()
            );
        }
        let mut blocks = dtype.cpu_zeros(rows * cols);
        blocks.from_float(values);
        Ok(Self { blocks, rows, cols })
    }

    /// Quantize a dense `[rows, cols]` tensor (any dtype, any device).
    pub fn quantize_tensor(dense: &Tensor, dtype: GgmlDType) -> candle_core::Result<Self> {
        let (rows, cols) = dense.dims2()?;
        let values = dense
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Self::quantize(&values, rows, cols, dtype)
    }

    /// The raw blocks of a `[rows, cols]` matrix (a GGUF tensor's bytes).
    pub fn from_bytes(
        bytes: Cow<'_, [u8]>,
        rows: usize,
        cols: usize,
        dtype: GgmlDType,
    ) -> candle_core::Result<Self> {
        let expected = rows * cols / dtype.block_size() * dtype.type_size();
        if !cols.is_multiple_of(dtype.block_size()) || bytes.len() != expected {
            candle_core::bail!(
                "{} bytes do not hold [{rows}, {cols}] weights in {dtype:?}",
                bytes.len()
            );
        }
        Ok(Self {
            blocks: dtype.from_data(bytes),
            rows,
            cols,
        })
    }

    /// A host copy of `q` (`[rows, cols]`).
    pub fn from_qtensor(q: &QTensor) -> candle_core::Result<Self> {
        let (rows, cols) = q.shape().dims2()?;
        Self::from_bytes(Cow::Owned(q.data()?.into_owned()), rows, cols, q.dtype())
    }

    /// Stack matrices of one format and width along the rows (their blocks, byte by byte).
    pub fn concat_rows(parts: &[&HostQuantized]) -> candle_core::Result<Option<Self>> {
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        if parts
            .iter()
            .any(|p| p.dtype() != first.dtype() || p.cols != first.cols)
        {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.storage_bytes()).sum());
        for part in parts {
            bytes.extend_from_slice(part.bytes());
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        Self::from_bytes(Cow::Owned(bytes), rows, first.cols, first.dtype()).map(Some)
    }

    pub fn dtype(&self) -> GgmlDType {
        self.blocks.dtype()
    }

    /// The blocks as bytes (the GGML layout).
    pub fn bytes(&self) -> &[u8] {
        simd::block_bytes(self.blocks.as_ref())
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn storage_bytes(&self) -> usize {
        self.blocks.storage_size_in_bytes()
    }

    /// The weights back in f32 (`[rows, cols]`, on the CPU).
    pub fn dequantize(&self) -> candle_core::Result<Tensor> {
        match self.blocks.dequantize(self.rows * self.cols)? {
            CpuStorage::F32(values) => {
                Tensor::from_vec(values, (self.rows, self.cols), &Device::Cpu)
            }
            _ => candle_core::bail!("quantized weights dequantize to f32"),
        }
    }

    /// The weights back in f32, row-major.
    pub fn dequantize_vec(&self) -> candle_core::Result<Vec<f32>> {
        match self.blocks.dequantize(self.rows * self.cols)? {
            CpuStorage::F32(values) => Ok(values),
            _ => candle_core::bail!("quantized weights dequantize to f32"),
        }
    }

    /// `x [m, cols]` (f32, CPU) -> `[m, rows]`.
    pub fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.to_dtype(DType::F32)?
            .contiguous()?
            .apply_op1_no_bwd(&MatmulOp(self))
    }
}

/// The kernel this CPU runs, detected once.
fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(Kernel::detect)
}

struct MatmulOp<'a>(&'a HostQuantized);

impl CustomOp1 for MatmulOp<'_> {
    fn name(&self) -> &'static str {
        "host-quantized-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let weights = self.0;
        let (m, k) = layout.shape().dims2()?;
        if k != weights.cols {
            candle_core::bail!(
                "quantized matmul: input has {k} columns, the weight {}",
                weights.cols
            );
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("quantized matmul: the input is not contiguous");
        };
        let lhs = &storage.as_slice::<f32>()?[start..end];
        let n = weights.rows;
        let mut dst = vec![0f32; m * n];
        let dtype = weights.dtype();
        let done = kernels::supports(dtype)
            && kernels::matmul(kernel(), dtype, weights.bytes(), (m, k, n), lhs, &mut dst);
        if !done {
            weights.blocks.matmul_t((m, k, n), lhs, &mut dst)?;
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }
}
