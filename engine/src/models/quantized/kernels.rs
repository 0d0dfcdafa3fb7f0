//! hone's own CPU matmul for GGML q8_0 and q4k weights: `dst [m, n] = lhs [m, k] · W [n, k]^T`
//! with W in GGML's compact blocks, as llama.cpp does it. The activations are quantized once per
//! matmul to 8-bit blocks ([`QuantizedActivations`]: blocks of 32 with an f32 scale for q8_0
//! weights, blocks of 256 for q4k, with the scaled sum of every 32 values for q4k's minimums);
//! each output is then a sum of integer block dot products, each scaled once.
//!
//! The work: output columns (weight rows) are cut into items of about 16 KiB of weights, spread
//! over candle's CPU pool; an item runs every tile of activation rows (8, then 4, 2, 1) over its
//! weight rows, so each weight block is read from memory once per matmul and from cache once per
//! tile. With AVX-512 VNNI and a few rows ([`panel_min_rows`]), q8_0 and q4k run by panels
//! instead: an item is 32 weight rows, repacked once ([`Panel`]: 16 columns' weights, widened to
//! bytes, four at a time in the lanes of a vector, with their per-block scales and q8_0's `-128 ·
//! Σ w` biases or q4k's minimums), so one `vpdpbusd` multiplies four activations by four weights
//! of 16 columns; tiles of 6 activation rows × 32 columns keep 12 integer and 12 float
//! accumulators in registers, the outputs come out in lanes (no horizontal sums), and the
//! per-block scaling is one conversion and one `fma` per 16 columns instead of per column. The block dot products come from one [`Kernel`], picked at run
//! time: AVX-512 VNNI,
//! AVX-VNNI (q8_0; its q4k uses the AVX2 kernel, whose `maddubs`+`madd` already applies the
//! sub-block scale), AVX2, or the portable scalar code here, which defines the result. The
//! integer dot products are exact in every kernel; only the order of the f32 accumulation differs,
//! so the SIMD kernels agree with the scalar one to f32 rounding (tests below and in `simd.rs`).
//!
//! This module owns no `unsafe`: the SIMD kernels and the shared output writer are in `simd.rs`.

use std::ops::Range;

use candle_core::quantized::GgmlDType;
use half::f16;

use super::simd;

/// Values in a q8_0 block, and its bytes (f16 scale + 32 × i8).
pub(super) const Q8_0_VALUES: usize = 32;
pub(super) const Q8_0_BYTES: usize = 34;
/// Values in a q4k super-block, and its bytes (f16 d, f16 dmin, 12 bytes of 6-bit sub-block
/// scales and minimums, 128 bytes of 4-bit values).
pub(super) const Q4K_VALUES: usize = 256;
pub(super) const Q4K_BYTES: usize = 144;
/// Values per sub-block sum kept for q4k's minimums.
pub(super) const SUB_BLOCK: usize = 32;

/// Weight bytes an item of work aims at (its weight rows stay in L1/L2 across the row tiles).
const ITEM_BYTES: usize = 16 * 1024;
/// The most weight rows in an item (bounds the item's output buffer).
const ITEM_MAX_ROWS: usize = 64;
/// Activation rows per tile, largest first.
const TILES: [usize; 4] = [8, 4, 2, 1];

/// Output columns of a q8_0 panel strip (the 32-bit lanes of a 512-bit vector).
pub(super) const PANEL_STRIP: usize = 16;
/// Strips in a panel: the panel kernel's register tile is a row tile × this many strips.
pub(super) const PANEL_STRIPS: usize = 2;
/// Activation rows per panel tile, largest first (6 rows × 2 strips: 12 integer and 12 float
/// accumulators, the two weight vectors and a broadcast fill the 32 registers; `quantized_speed` at
/// 320 rows: 4 rows 150–160 GMAC/s, 6 rows 177–207 GMAC/s at one thread).
const PANEL_TILES: [usize; 4] = [6, 4, 2, 1];
/// From this many activation rows on, a matmul runs by panels: repacking the weights costs about
/// as much as a row or two of q8_0 products (`quantized_speed`, one thread: at 4 rows the panels
/// are ahead, at 1 behind), a few rows of q4k's (at 4 rows the panels lose on 1536-wide rows, at
/// 8 they win on every shape).
fn panel_min_rows(dtype: GgmlDType) -> usize {
    match dtype {
        GgmlDType::Q8_0 => 4,
        _ => 8,
    }
}

/// The block dot-product code a matmul runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust; defines the results the others reproduce.
    Scalar,
    /// AVX2 + FMA + F16C: `vpmaddubsw` on sign-folded operands (llama.cpp's x86 path).
    Avx2,
    /// AVX-VNNI (256-bit `vpdpbusd`) for q8_0; q4k runs the AVX2 kernel.
    AvxVnni,
    /// AVX-512 F/BW + VNNI (512-bit `vpdpbusd`).
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        Self::available()
            .into_iter()
            .last()
            .unwrap_or(Kernel::Scalar)
    }

    /// Every kernel this CPU runs, slowest first (always [`Kernel::Scalar`]).
    pub fn available() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Scalar];
        if simd::has_avx2() {
            kernels.push(Kernel::Avx2);
            if simd::has_avx_vnni() {
                kernels.push(Kernel::AvxVnni);
            }
            if simd::has_avx512_vnni() {
                kernels.push(Kernel::Avx512Vnni);
            }
        }
        kernels
    }

    /// Whether this kernel has the panel code (weights repacked per matmul so that one 512-bit
    /// `vpdpbusd` serves 16 output columns), for q8_0 and q4k.
    fn panels(self) -> bool {
        self == Kernel::Avx512Vnni
    }

    /// Whether the q8_0 activations this kernel reads are stored `+128` (as unsigned bytes, for
    /// `vpdpbusd`, whose first operand is unsigned).
    fn q8_0_offset(self) -> bool {
        matches!(self, Kernel::AvxVnni | Kernel::Avx512Vnni)
    }
}

/// `rows` rows of `cols` activations quantized to 8 bits in blocks of `block` values: for each
/// block `scale = max|x| / 127` and `q = round(x / scale)` in `[-127, 127]` (so `-q` never
/// overflows in the sign-folding kernels).
#[derive(Debug, Clone)]
pub struct QuantizedActivations {
    pub cols: usize,
    pub block: usize,
    /// `rows * cols` bytes, row-major: `q` as two's complement, or `q + 128` when `offset`.
    pub quants: Vec<u8>,
    /// `rows * cols / block` scales.
    pub scales: Vec<f32>,
    /// `scale * Σ q` over every [`SUB_BLOCK`] values (`rows * cols / 32`); empty unless asked.
    pub sums: Vec<f32>,
    pub offset: bool,
}

impl QuantizedActivations {
    /// Quantize `lhs` (`rows * cols`, row-major; `cols` a multiple of `block`), with `kernel`'s
    /// SIMD code where it has some (the same bytes and scales as the scalar loop here).
    pub fn quantize(
        kernel: Kernel,
        lhs: &[f32],
        rows: usize,
        cols: usize,
        block: usize,
        offset: bool,
        with_sums: bool,
    ) -> Self {
        let blocks = rows * cols / block;
        let mut quants = vec![0u8; rows * cols];
        let mut scales = vec![0f32; blocks];
        let mut sums = if with_sums {
            vec![0f32; rows * cols / SUB_BLOCK]
        } else {
            Vec::new()
        };
        let flip = if offset { 0x80 } else { 0 };
        let simd = lhs.len() == rows * cols
            && simd::quantize(
                kernel,
                lhs,
                block,
                offset,
                &mut quants,
                &mut scales,
                &mut sums,
            );
        if !simd {
            for (b, (values, out)) in lhs
                .chunks_exact(block)
                .zip(quants.chunks_exact_mut(block))
                .enumerate()
            {
                let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = amax / 127.0;
                let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                for (q, &v) in out.iter_mut().zip(values) {
                    *q = ((v * inverse).round().clamp(-127.0, 127.0) as i8 as u8) ^ flip;
                }
                scales[b] = scale;
                if with_sums {
                    let per = block / SUB_BLOCK;
                    for (s, sub) in out.chunks_exact(SUB_BLOCK).enumerate() {
                        let total: i32 = sub.iter().map(|&q| ((q ^ flip) as i8) as i32).sum();
                        sums[b * per + s] = scale * total as f32;
                    }
                }
            }
        }
        Self {
            cols,
            block,
            quants,
            scales,
            sums,
            offset,
        }
    }

    /// The activations of rows `rows` (quants, scales, sums).
    pub(super) fn tile(&self, rows: Range<usize>) -> (&[u8], &[f32], &[f32]) {
        let per_row_blocks = self.cols / self.block;
        let per_row_sums = if self.sums.is_empty() {
            0
        } else {
            self.cols / SUB_BLOCK
        };
        (
            &self.quants[rows.start * self.cols..rows.end * self.cols],
            &self.scales[rows.start * per_row_blocks..rows.end * per_row_blocks],
            &self.sums[rows.start * per_row_sums..rows.end * per_row_sums],
        )
    }
}

/// Up to [`PANEL_STRIP`] · [`PANEL_STRIPS`] weight rows repacked for a panel kernel (the
/// `simd` pack functions give the layouts): the weights widened to bytes, 16 columns four values
/// at a time in the 32-bit lanes of a vector, and per block (q8_0) or sub-block (q4k) the 16
/// columns' scales; q8_0 adds their biases `-128 · Σ w`, q4k their minimums `dmin · m_j`.
#[derive(Debug, Default)]
pub(super) struct Panel {
    pub blocks: usize,
    pub quants: Vec<u8>,
    pub scales: Vec<f32>,
    pub bias: Vec<i32>,
    pub mins: Vec<f32>,
}

/// Whether [`matmul`] handles `dtype` (others go through candle's block kernels).
pub fn supports(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q8_0 | GgmlDType::Q4K)
}

/// `dst [m, n] = lhs [m, k] · W^T` for `weights`, `n` rows of `k` values in `dtype` blocks.
/// Returns `false` (and writes nothing) for a dtype [`supports`] refuses or sizes that do not
/// match.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    kernel: Kernel,
    dtype: GgmlDType,
    weights: &[u8],
    dims: (usize, usize, usize),
    lhs: &[f32],
    dst: &mut [f32],
) -> bool {
    matmul_with(
        kernel,
        dtype,
        weights,
        dims,
        lhs,
        dst,
        panel_min_rows(dtype),
    )
}

/// [`matmul`], running q8_0 by panels from `panel_min_rows` activation rows on (tests force
/// either way).
fn matmul_with(
    kernel: Kernel,
    dtype: GgmlDType,
    weights: &[u8],
    (m, k, n): (usize, usize, usize),
    lhs: &[f32],
    dst: &mut [f32],
    panel_min_rows: usize,
) -> bool {
    let (values, bytes) = match dtype {
        GgmlDType::Q8_0 => (Q8_0_VALUES, Q8_0_BYTES),
        GgmlDType::Q4K => (Q4K_VALUES, Q4K_BYTES),
        _ => return false,
    };
    let row_bytes = k / values * bytes;
    if !k.is_multiple_of(values)
        || weights.len() != n * row_bytes
        || lhs.len() != m * k
        || dst.len() != m * n
    {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    let acts = match dtype {
        GgmlDType::Q8_0 => {
            let offset = kernel.q8_0_offset();
            QuantizedActivations::quantize(kernel, lhs, m, k, Q8_0_VALUES, offset, false)
        }
        _ => QuantizedActivations::quantize(kernel, lhs, m, k, Q4K_VALUES, false, true),
    };
    let out = simd::SharedOutput::new(dst, m, n);
    if kernel.panels() && m >= panel_min_rows {
        panel_matmul(kernel, dtype, weights, (m, k, n), &acts, &out);
        return true;
    }
    let item_rows = (ITEM_BYTES / row_bytes.max(1)).clamp(1, ITEM_MAX_ROWS);
    let items = n.div_ceil(item_rows);
    candle_core::utils::barrier_pool().execute_chunked(items, |range| {
        for item in range {
            let cols = item * item_rows..n.min((item + 1) * item_rows);
            block_item(kernel, dtype, weights, row_bytes, (m, k), &acts, cols, &out);
        }
    });
    true
}

/// Weight rows `cols` against every activation row, tile by tile, by the block kernels.
#[allow(clippy::too_many_arguments)]
fn block_item(
    kernel: Kernel,
    dtype: GgmlDType,
    weights: &[u8],
    row_bytes: usize,
    (m, k): (usize, usize),
    acts: &QuantizedActivations,
    cols: Range<usize>,
    out: &simd::SharedOutput<'_>,
) {
    let mut local = [0f32; ITEM_MAX_ROWS * 8];
    for part in cols.clone().step_by(ITEM_MAX_ROWS) {
        let cols = part..cols.end.min(part + ITEM_MAX_ROWS);
        let w = &weights[cols.start * row_bytes..cols.end * row_bytes];
        let mut row = 0;
        for &tile in &TILES {
            while row + tile <= m {
                let buffer = &mut local[..cols.len() * tile];
                tile_dot(kernel, dtype, w, k, acts, row..row + tile, buffer);
                out.write(row..row + tile, cols.clone(), buffer);
                row += tile;
            }
        }
    }
}

/// By panels: output columns in items of [`PANEL_STRIP`] · [`PANEL_STRIPS`] weight rows, each
/// repacked once ([`Panel`]) and then run against every tile of activation rows.
fn panel_matmul(
    kernel: Kernel,
    dtype: GgmlDType,
    weights: &[u8],
    (m, k, n): (usize, usize, usize),
    acts: &QuantizedActivations,
    out: &simd::SharedOutput<'_>,
) {
    let width = PANEL_STRIP * PANEL_STRIPS;
    let row_bytes = weights.len() / n;
    let items = n.div_ceil(width);
    candle_core::utils::barrier_pool().execute_chunked(items, |range| {
        let mut panel = Panel::default();
        let mut local = [0f32; PANEL_TILES[0] * PANEL_STRIP * PANEL_STRIPS];
        for item in range {
            let cols = item * width..n.min((item + 1) * width);
            let w = &weights[cols.start * row_bytes..cols.end * row_bytes];
            let packed = match dtype {
                GgmlDType::Q8_0 => simd::q8_0_pack(kernel, w, k, &mut panel),
                _ => simd::q4k_pack(kernel, w, k, &mut panel),
            };
            if !packed {
                block_item(kernel, dtype, weights, row_bytes, (m, k), acts, cols, out);
                continue;
            }
            let mut row = 0;
            for &tile in &PANEL_TILES {
                while row + tile <= m {
                    let rows = row..row + tile;
                    let buffer = &mut local[..tile * width];
                    if panel_tile(kernel, dtype, &panel, acts, rows.clone(), buffer) {
                        out.write_rows(rows, cols.clone(), buffer, width);
                    } else {
                        let buffer = &mut local[..tile * cols.len()];
                        tile_dot(kernel, dtype, w, k, acts, rows.clone(), buffer);
                        out.write(rows, cols.clone(), buffer);
                    }
                    row += tile;
                }
            }
        }
    });
}

/// Activation rows `rows` against a packed panel: `out[r * width + c]`.
fn panel_tile(
    kernel: Kernel,
    dtype: GgmlDType,
    panel: &Panel,
    acts: &QuantizedActivations,
    rows: Range<usize>,
    out: &mut [f32],
) -> bool {
    let tile = rows.len();
    let (quants, scales, sums) = acts.tile(rows);
    match (dtype, tile) {
        (GgmlDType::Q8_0, 6) => simd::q8_0_panel_tile::<6>(kernel, panel, quants, scales, out),
        (GgmlDType::Q8_0, 4) => simd::q8_0_panel_tile::<4>(kernel, panel, quants, scales, out),
        (GgmlDType::Q8_0, 2) => simd::q8_0_panel_tile::<2>(kernel, panel, quants, scales, out),
        (GgmlDType::Q8_0, _) => simd::q8_0_panel_tile::<1>(kernel, panel, quants, scales, out),
        (_, 6) => simd::q4k_panel_tile::<6>(kernel, panel, quants, scales, sums, out),
        (_, 4) => simd::q4k_panel_tile::<4>(kernel, panel, quants, scales, sums, out),
        (_, 2) => simd::q4k_panel_tile::<2>(kernel, panel, quants, scales, sums, out),
        (_, _) => simd::q4k_panel_tile::<1>(kernel, panel, quants, scales, sums, out),
    }
}

/// `out[c * tile + r]` = weight row `c` of `w` · activation row `rows.start + r`.
fn tile_dot(
    kernel: Kernel,
    dtype: GgmlDType,
    w: &[u8],
    k: usize,
    acts: &QuantizedActivations,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let tile = rows.len();
    let (quants, scales, sums) = acts.tile(rows);
    let done = match (dtype, tile) {
        (GgmlDType::Q8_0, 8) => simd::q8_0_tile::<8>(kernel, w, k, quants, scales, out),
        (GgmlDType::Q8_0, 4) => simd::q8_0_tile::<4>(kernel, w, k, quants, scales, out),
        (GgmlDType::Q8_0, 2) => simd::q8_0_tile::<2>(kernel, w, k, quants, scales, out),
        (GgmlDType::Q8_0, 1) => simd::q8_0_tile::<1>(kernel, w, k, quants, scales, out),
        (GgmlDType::Q8_0, _) => false,
        (_, 8) => simd::q4k_tile::<8>(kernel, w, k, quants, scales, sums, out),
        (_, 4) => simd::q4k_tile::<4>(kernel, w, k, quants, scales, sums, out),
        (_, 2) => simd::q4k_tile::<2>(kernel, w, k, quants, scales, sums, out),
        (_, 1) => simd::q4k_tile::<1>(kernel, w, k, quants, scales, sums, out),
        // Other tile heights (a panel tile of 6 whose panel code declined) run the scalar code.
        (_, _) => false,
    };
    if !done {
        match dtype {
            GgmlDType::Q8_0 => q8_0_tile_scalar(w, k, tile, acts.offset, quants, scales, out),
            _ => q4k_tile_scalar(w, k, tile, quants, scales, sums, out),
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// The scalar q8_0 kernel: for each weight row and activation row, `Σ_b (dw_b · da_b) · dot_b`
/// in block order, `dot_b` the exact integer dot product of the block.
pub(super) fn q8_0_tile_scalar(
    w: &[u8],
    k: usize,
    tile: usize,
    offset: bool,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) {
    let blocks = k / Q8_0_VALUES;
    let flip = if offset { 0x80 } else { 0 };
    for (c, row) in w.chunks_exact(blocks * Q8_0_BYTES).enumerate() {
        for r in 0..tile {
            let a = &quants[r * k..(r + 1) * k];
            let mut sum = 0f32;
            for (b, block) in row.chunks_exact(Q8_0_BYTES).enumerate() {
                let dot: i32 = block[2..]
                    .iter()
                    .zip(&a[b * Q8_0_VALUES..(b + 1) * Q8_0_VALUES])
                    .map(|(&wq, &aq)| (wq as i8) as i32 * ((aq ^ flip) as i8) as i32)
                    .sum();
                sum += f16_at(block, 0) * scales[r * blocks + b] * dot as f32;
            }
            out[c * tile + r] = sum;
        }
    }
}

/// Sub-block `j`'s 6-bit scale and minimum from a q4k block's 12 scale bytes (GGML's
/// `get_scale_min_k4`).
pub(super) fn q4k_scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The scalar q4k kernel: per super-block `da · Σ_j (d · sc_j) · dot_j - Σ_j (dmin · m_j) · S_j`
/// (`S_j` the activations' scaled sub-block sum), accumulated in block order.
#[allow(clippy::too_many_arguments)]
pub(super) fn q4k_tile_scalar(
    w: &[u8],
    k: usize,
    tile: usize,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) {
    let blocks = k / Q4K_VALUES;
    let per_row_sums = k / SUB_BLOCK;
    for (c, row) in w.chunks_exact(blocks * Q4K_BYTES).enumerate() {
        for r in 0..tile {
            let a = &quants[r * k..(r + 1) * k];
            let mut sum = 0f32;
            let mut mins = 0f32;
            for (b, block) in row.chunks_exact(Q4K_BYTES).enumerate() {
                let d = f16_at(block, 0);
                let dmin = f16_at(block, 2);
                let scale_bytes = &block[4..16];
                let qs = &block[16..];
                let mut part = 0f32;
                for j in 0..8 {
                    let (sc, mn) = q4k_scale_min(j, scale_bytes);
                    let shift = 4 * (j % 2);
                    let nibbles = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                    let values = &a[b * Q4K_VALUES + j * SUB_BLOCK..][..SUB_BLOCK];
                    let dot: i32 = nibbles
                        .iter()
                        .zip(values)
                        .map(|(&q, &v)| ((q >> shift) & 0x0F) as i32 * (v as i8) as i32)
                        .sum();
                    part += d * sc as f32 * dot as f32;
                    mins += dmin * mn as f32 * sums[r * per_row_sums + b * 8 + j];
                }
                sum += scales[r * blocks + b] * part;
            }
            out[c * tile + r] = sum - mins;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::HostQuantized;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn run(kernel: Kernel, weights: &HostQuantized, lhs: &[f32], m: usize) -> Vec<f32> {
        run_with(kernel, weights, lhs, m, panel_min_rows(weights.dtype()))
    }

    /// [`run`] with q8_0 panels from `panel_min_rows` rows on.
    fn run_with(
        kernel: Kernel,
        weights: &HostQuantized,
        lhs: &[f32],
        m: usize,
        panel_min_rows: usize,
    ) -> Vec<f32> {
        let (n, k) = weights.dims();
        let mut dst = vec![f32::NAN; m * n];
        assert!(matmul_with(
            kernel,
            weights.dtype(),
            weights.bytes(),
            (m, k, n),
            lhs,
            &mut dst,
            panel_min_rows
        ));
        dst
    }

    /// `|w| · |x|` per output: the scale of the f32 rounding of the block sums.
    fn abs_products(dense: &[f32], lhs: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                out[r * n + c] = (0..k)
                    .map(|i| (dense[c * k + i] * lhs[r * k + i]).abs())
                    .sum();
            }
        }
        out
    }

    /// `got` equals the scalar kernel's `want` to within 1e-5 of `Σ|w·x|` (`scale`) at every
    /// output; `case` names the case in a failure.
    fn assert_close(got: &[f32], want: &[f32], scale: &[f32], case: impl Fn() -> String) {
        assert_eq!(got.len(), want.len(), "{}", case());
        for i in 0..want.len() {
            assert!(
                (got[i] - want[i]).abs() <= 1e-5 * scale[i] + 1e-30,
                "{} at {i}: {} vs {}",
                case(),
                got[i],
                want[i]
            );
        }
    }

    /// Every SIMD kernel this CPU runs equals the scalar kernel up to the order of the f32
    /// additions: within 1e-5 of `Σ|w·x|` (each of the at most k/32 scaled block sums is off by an
    /// ulp or two, 2^-23 ≈ 1.2e-7 relative), on shapes whose row counts are and are not multiples
    /// of the tiles (1, 3, 8, 13, 32 rows) and column counts that do not fill an item.
    #[test]
    fn simd_kernels_equal_the_scalar_kernel() {
        let mut rng = StdRng::seed_from_u64(12);
        for (dtype, k) in [
            (GgmlDType::Q8_0, 64),
            (GgmlDType::Q8_0, 96),
            (GgmlDType::Q8_0, 512),
            (GgmlDType::Q4K, 256),
            (GgmlDType::Q4K, 768),
        ] {
            for (m, n) in [(1, 7), (3, 33), (8, 70), (13, 5), (32, 129)] {
                let dense = random(n * k, &mut rng);
                let weights = HostQuantized::quantize(&dense, n, k, dtype).unwrap();
                let lhs = random(m * k, &mut rng);
                let scalar = run(Kernel::Scalar, &weights, &lhs, m);
                let scale = abs_products(&weights.dequantize_vec().unwrap(), &lhs, m, n, k);
                for kernel in Kernel::available() {
                    let got = run(kernel, &weights, &lhs, m);
                    assert_close(&got, &scalar, &scale, || {
                        format!("{kernel:?} {dtype:?} m={m} n={n} k={k}")
                    });
                }
            }
        }
    }

    /// `tile_dot` at a height the block kernels have no code for (a panel tile of 6 falling
    /// back, or 3, 5, 7) runs the scalar code for every row, not a one-row kernel for the first.
    #[test]
    fn tile_dot_at_any_height_equals_the_scalar_kernel() {
        let mut rng = StdRng::seed_from_u64(33);
        for (dtype, k, values) in [
            (GgmlDType::Q8_0, 96, Q8_0_VALUES),
            (GgmlDType::Q4K, 256, Q4K_VALUES),
        ] {
            let n = 5;
            let weights = HostQuantized::quantize(&random(n * k, &mut rng), n, k, dtype).unwrap();
            for tile in [3, 5, 6, 7] {
                let lhs = random(tile * k, &mut rng);
                let scalar = run(Kernel::Scalar, &weights, &lhs, tile);
                let scale = abs_products(&weights.dequantize_vec().unwrap(), &lhs, tile, n, k);
                for kernel in Kernel::available() {
                    let offset = dtype == GgmlDType::Q8_0 && kernel.q8_0_offset();
                    let acts = QuantizedActivations::quantize(
                        kernel,
                        &lhs,
                        tile,
                        k,
                        values,
                        offset,
                        dtype == GgmlDType::Q4K,
                    );
                    // `tile_dot` writes column-major (`c * tile + r`); `run` row-major.
                    let mut by_column = vec![f32::NAN; n * tile];
                    tile_dot(
                        kernel,
                        dtype,
                        weights.bytes(),
                        k,
                        &acts,
                        0..tile,
                        &mut by_column,
                    );
                    let got: Vec<f32> = (0..tile * n)
                        .map(|i| by_column[(i % n) * tile + i / n])
                        .collect();
                    assert_close(&got, &scalar, &scale, || {
                        format!("{kernel:?} {dtype:?} tile={tile}")
                    });
                }
            }
        }
    }

    /// The panel path (forced from one row on) equals the scalar kernel as the block path does,
    /// for q8_0 and q4k: every row count 1..=9 (each panel tile and their mixes) and a few
    /// larger ones, (super-)block counts odd and even, column counts below, at, and past a strip
    /// and a panel.
    #[test]
    fn panels_equal_the_scalar_kernel() {
        let mut rng = StdRng::seed_from_u64(21);
        let shapes = [
            (GgmlDType::Q8_0, 32),
            (GgmlDType::Q8_0, 96),
            (GgmlDType::Q8_0, 160),
            (GgmlDType::Q8_0, 512),
            (GgmlDType::Q4K, 256),
            (GgmlDType::Q4K, 768),
        ];
        for (dtype, k) in shapes {
            for n in [1, 5, 16, 17, 31, 32, 33, 70] {
                let dense = random(n * k, &mut rng);
                let weights = HostQuantized::quantize(&dense, n, k, dtype).unwrap();
                let deq = weights.dequantize_vec().unwrap();
                if Kernel::available().contains(&Kernel::Avx512Vnni) {
                    // The panel code runs here, not the block fallback.
                    let row_bytes = weights.bytes().len() / n;
                    let w = &weights.bytes()[..n.min(PANEL_STRIP * PANEL_STRIPS) * row_bytes];
                    let mut panel = Panel::default();
                    let packed = match dtype {
                        GgmlDType::Q8_0 => simd::q8_0_pack(Kernel::Avx512Vnni, w, k, &mut panel),
                        _ => simd::q4k_pack(Kernel::Avx512Vnni, w, k, &mut panel),
                    };
                    assert!(packed, "{dtype:?} n={n} k={k}");
                }
                for m in (1..=9).chain([13, 22]) {
                    let lhs = random(m * k, &mut rng);
                    let scalar = run(Kernel::Scalar, &weights, &lhs, m);
                    let scale = abs_products(&deq, &lhs, m, n, k);
                    for kernel in Kernel::available() {
                        let got = run_with(kernel, &weights, &lhs, m, 1);
                        assert_close(&got, &scalar, &scale, || {
                            format!("{kernel:?} {dtype:?} m={m} n={n} k={k}")
                        });
                    }
                }
            }
        }
    }

    /// Each kernel's activation quantizer gives the scalar loop's bytes, scales and sums bit for
    /// bit: random values, values that land exactly on halves (`±0.5`, `±2.5`, ... steps: rounded
    /// away from zero) and one f32 step either side of every half up to ±126.5, an all-zero
    /// block, and blocks of 32 (q8_0, with and without the `+128`) and of 256 with sums (q4k).
    #[test]
    fn simd_quantizers_equal_the_scalar_one() {
        let mut rng = StdRng::seed_from_u64(5);
        let (rows, cols) = (3, 1024);
        let mut lhs = random(rows * cols, &mut rng);
        // Block 1: max 127 so the step is exactly 1, then exact halves of both signs.
        for (i, v) in lhs[32..64].iter_mut().enumerate() {
            *v = if i == 0 {
                127.0
            } else {
                (i as f32 - 16.0) + 0.5
            };
        }
        lhs[64..96].fill(0.0);
        lhs[96..128].fill(-3.0);
        // Blocks 4..: max 127 again, then every half `h + 0.5` and its neighbours one f32 step
        // below and above, for h in -127..127 (the edge cases of rounding halves away from 0).
        let mut near_halves = Vec::new();
        for h in -127..127 {
            let half = h as f32 + 0.5;
            let (down, up) = (
                f32::from_bits(half.to_bits() - 1),
                f32::from_bits(half.to_bits() + 1),
            );
            near_halves.extend([half, down, up]);
        }
        for (block, values) in lhs[128..].chunks_mut(32).zip(near_halves.chunks(31)) {
            block[0] = 127.0;
            block[1..=values.len()].copy_from_slice(values);
        }
        for (block, offset, sums) in [(32, false, false), (32, true, false), (256, false, true)] {
            let want = QuantizedActivations::quantize(
                Kernel::Scalar,
                &lhs,
                rows,
                cols,
                block,
                offset,
                sums,
            );
            let q = |i: usize| (want.quants[32 + i] ^ if offset { 0x80 } else { 0 }) as i8;
            // Halves round away from zero: 0.5, 2.5, -0.5, -1.5.
            assert_eq!((q(16), q(18), q(15), q(14)), (1, 3, -1, -2));
            for kernel in Kernel::available() {
                let got =
                    QuantizedActivations::quantize(kernel, &lhs, rows, cols, block, offset, sums);
                assert_eq!(got.quants, want.quants, "{kernel:?} block {block}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.scales), bits(&want.scales), "{kernel:?}");
                assert_eq!(bits(&got.sums), bits(&want.sums), "{kernel:?}");
            }
        }
    }

    /// The kernels compute dequantize-then-f32-matmul but for the activations' 8-bit rounding:
    /// each activation moves by at most half its block's step (`max|x| / 254`), so an output moves
    /// by at most `Σ |w| · step / 2` (plus f32 rounding, 1e-5 of `Σ|w·x|`).
    #[test]
    fn kernels_equal_dequantized_matmul_within_activation_rounding() {
        let mut rng = StdRng::seed_from_u64(7);
        for (dtype, k) in [(GgmlDType::Q8_0, 160), (GgmlDType::Q4K, 512)] {
            let block = if dtype == GgmlDType::Q8_0 { 32 } else { 256 };
            let (m, n) = (11, 40);
            let dense = random(n * k, &mut rng);
            let weights = HostQuantized::quantize(&dense, n, k, dtype).unwrap();
            let deq = weights.dequantize_vec().unwrap();
            let lhs = random(m * k, &mut rng);
            let steps: Vec<f32> = lhs
                .chunks(block)
                .map(|b| b.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0)
                .collect();
            let scale = abs_products(&deq, &lhs, m, n, k);
            for kernel in Kernel::available() {
                let got = run(kernel, &weights, &lhs, m);
                for r in 0..m {
                    for c in 0..n {
                        let exact: f32 = (0..k).map(|i| deq[c * k + i] * lhs[r * k + i]).sum();
                        let bound: f32 = (0..k)
                            .map(|i| deq[c * k + i].abs() * steps[(r * k + i) / block] / 2.0)
                            .sum();
                        let err = (got[r * n + c] - exact).abs();
                        assert!(
                            err <= bound + 1e-5 * scale[r * n + c],
                            "{kernel:?} {dtype:?} ({r},{c}): {} vs {exact}, bound {bound}",
                            got[r * n + c]
                        );
                    }
                }
            }
        }
    }

    /// The activation rounding is real, not lost: it stays near the bound's expected size, and a
    /// row of exact multiples of its step (here: small integers) comes out exactly.
    #[test]
    fn integer_activations_give_exact_integer_dot_products() {
        let k = 256;
        let dense: Vec<f32> = (0..2 * k).map(|i| ((i % 7) as f32 - 3.0) / 4.0).collect();
        let weights = HostQuantized::quantize(&dense, 2, k, GgmlDType::Q8_0).unwrap();
        let deq = weights.dequantize_vec().unwrap();
        // max |x| = 127 in every block: the step is exactly 1.
        let lhs: Vec<f32> = (0..k)
            .map(|i| {
                if i % 32 == 0 {
                    127.0
                } else {
                    (i % 5) as f32 - 2.0
                }
            })
            .collect();
        for kernel in Kernel::available() {
            let got = run(kernel, &weights, &lhs, 1);
            for c in 0..2 {
                let exact: f32 = (0..k).map(|i| deq[c * k + i] * lhs[i]).sum();
                assert!(
                    (got[c] - exact).abs() <= 1e-4 * exact.abs().max(1.0),
                    "{kernel:?}"
                );
            }
        }
    }

    #[test]
    fn mismatched_sizes_and_other_formats_are_refused() {
        let weights = HostQuantized::quantize(&[0.5; 64], 2, 32, GgmlDType::Q8_0).unwrap();
        let mut dst = vec![0f32; 2];
        let kernel = Kernel::detect();
        assert!(!matmul(
            kernel,
            GgmlDType::Q8_0,
            weights.bytes(),
            (1, 32, 2),
            &[0.0; 31],
            &mut dst
        ));
        assert!(!matmul(
            kernel,
            GgmlDType::Q6K,
            weights.bytes(),
            (1, 32, 2),
            &[0.0; 32],
            &mut dst
        ));
        assert!(matmul(
            kernel,
            GgmlDType::Q8_0,
            weights.bytes(),
            (1, 32, 2),
            &[1.0; 32],
            &mut dst
        ));
        assert!((dst[0] - 16.0).abs() < 0.1, "{dst:?}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
mod speed {
    use super::super::HostQuantized;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `cargo test --release -p hone-engine --lib quantized_speed -- --ignored --nocapture`: the block
    /// path against the panel path on a 100M model's layer and output-head shapes (q8_0; q4k on
    /// layer shapes whose width splits into 256-value blocks).
    #[test]
    #[ignore]
    fn quantized_speed() {
        let mut rng = StdRng::seed_from_u64(3);
        let kernel = Kernel::detect();
        let (q8, q4k) = (GgmlDType::Q8_0, GgmlDType::Q4K);
        let layers = [(q8, 512usize, 1408usize), (q8, 1408, 512), (q8, 512, 512)];
        let shapes = [1usize, 4, 8, 16, 32, 320]
            .into_iter()
            .flat_map(|m| layers.map(|(dtype, k, n)| (dtype, m, k, n)))
            .chain([(q8, 8, 512, 151_936), (q8, 32, 512, 151_936)])
            .chain(
                [1, 4, 8, 32, 320]
                    .into_iter()
                    .flat_map(|m| [(q4k, m, 512, 1408), (q4k, m, 1536, 512), (q4k, m, 512, 512)]),
            );
        for (dtype, m, k, n) in shapes {
            {
                let dense: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let weights = HostQuantized::quantize(&dense, n, k, dtype).unwrap();
                let lhs: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let reps = (20_000_000_000 / (m * k * n)).max(1);
                let time = |panel_min_rows: usize| {
                    let mut dst = vec![0f32; m * n];
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        let dims = (m, k, n);
                        let bytes = weights.bytes();
                        assert!(matmul_with(
                            kernel,
                            dtype,
                            bytes,
                            dims,
                            &lhs,
                            &mut dst,
                            panel_min_rows
                        ));
                    }
                    (t.elapsed().as_secs_f64() / reps as f64, dst)
                };
                let (blocks, want) = time(usize::MAX);
                let (panels, got) = time(1);
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                    .fold(0f32, f32::max);
                assert!(worst < 1e-4, "the two paths differ by {worst}");
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    let (block, offset, sums) = match dtype {
                        GgmlDType::Q8_0 => (Q8_0_VALUES, kernel.q8_0_offset(), false),
                        _ => (Q4K_VALUES, false, true),
                    };
                    std::hint::black_box(QuantizedActivations::quantize(
                        kernel, &lhs, m, k, block, offset, sums,
                    ));
                }
                let quantize = t.elapsed().as_secs_f64() / reps as f64;
                let gmac = (m * k * n) as f64 / 1e9;
                eprintln!(
                    "{kernel:?} {dtype:?} m {m} k {k} n {n}: blocks {:.3} ms ({:.0} GMAC/s), panels {:.3} ms ({:.0} GMAC/s), of which quantizing {:.3} ms",
                    blocks * 1e3,
                    gmac / blocks,
                    panels * 1e3,
                    gmac / panels,
                    quantize * 1e3
                );
            }
        }
    }
}
