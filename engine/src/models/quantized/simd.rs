//! Every `unsafe` of the quantized CPU path: the x86 SIMD block dot products behind `kernels.rs`
//! (`simd/x86.rs`: AVX-512 VNNI, AVX-VNNI, AVX2, entered only after `is_x86_feature_detected!`),
//! the view of candle's block storage as bytes, and the writer that lets the pool's workers fill
//! disjoint columns of one output. Each kernel computes what `kernels::q8_0_tile_scalar` /
//! `kernels::q4k_tile_scalar` compute, with the same exact integer block dot products and the f32
//! additions in another order (the panel kernels too, on weights their pack functions repacked);
//! the AVX-512 activation quantizer gives the scalar loop's bytes and scales bit for bit. The safe wrappers check every length the pointer arithmetic
//! relies on and return `false` (the caller then runs the scalar kernel) when a check fails or
//! the CPU lacks the features.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Range;

use candle_core::quantized::QuantizedType;

use super::kernels::{
    Kernel, Panel, PANEL_STRIP, PANEL_STRIPS, Q4K_BYTES, Q4K_VALUES, Q8_0_BYTES, Q8_0_VALUES,
    SUB_BLOCK,
};

/// The blocks of `blocks` as bytes (the GGML layout).
pub(super) fn block_bytes(blocks: &dyn QuantizedType) -> &[u8] {
    // SAFETY: `as_ptr` points at the start of the block vector, which holds
    // `storage_size_in_bytes` initialised bytes (plain-old-data blocks) and lives as long as
    // `blocks`; candle reads quantized storage the same way (`QStorage::data`).
    unsafe { std::slice::from_raw_parts(blocks.as_ptr(), blocks.storage_size_in_bytes()) }
}

pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub(super) fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2() && is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub(super) fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[rows, cols]` f32 output that the pool's workers fill in disjoint column ranges.
pub(in crate::models) struct SharedOutput<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: the pointer comes from a `&mut [f32]` held for `'a`; workers only write through
// `write`, each to the columns of its own work item, so no element is written twice at once.
unsafe impl Sync for SharedOutput<'_> {}

impl<'a> SharedOutput<'a> {
    pub(in crate::models) fn new(dst: &'a mut [f32], rows: usize, cols: usize) -> Self {
        debug_assert!(dst.len() >= rows * cols);
        // Never let a short buffer be indexed past its end: treat it as having no rows.
        let rows = if dst.len() >= rows * cols { rows } else { 0 };
        Self {
            ptr: dst.as_mut_ptr(),
            rows,
            cols,
            _borrow: PhantomData,
        }
    }

    /// `dst[row, col] = tile[(row - rows.start) * width + (col - cols.start)]` (a row-major tile
    /// `width >= cols.len()` wide). Callers give each column range to one worker only.
    pub(in crate::models) fn write_rows(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        tile: &[f32],
        width: usize,
    ) {
        if rows.end > self.rows
            || cols.end > self.cols
            || width < cols.len()
            || tile.len() < rows.len() * width
        {
            debug_assert!(false, "tile outside the output");
            return;
        }
        for (r, row) in rows.enumerate() {
            let from = &tile[r * width..r * width + cols.len()];
            // SAFETY: `row < self.rows` and `cols.end <= self.cols` (checked above), so the
            // `cols.len()` floats from `row * self.cols + cols.start` are inside the buffer
            // borrowed for `'a`; the column range belongs to this caller alone (see the type).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    from.as_ptr(),
                    self.ptr.add(row * self.cols + cols.start),
                    cols.len(),
                )
            };
        }
    }

    /// `dst[row, col] = tile[(col - cols.start) * rows.len() + (row - rows.start)]`. Callers
    /// give each column range to one worker only.
    pub(in crate::models) fn write(&self, rows: Range<usize>, cols: Range<usize>, tile: &[f32]) {
        let height = rows.len();
        if rows.end > self.rows || cols.end > self.cols || tile.len() < cols.len() * height {
            debug_assert!(false, "tile outside the output");
            return;
        }
        for (r, row) in rows.enumerate() {
            for (c, col) in cols.clone().enumerate() {
                // SAFETY: `row < self.rows` and `col < self.cols` (checked above), so the index
                // is inside the `rows * cols` buffer borrowed for `'a`; the column range belongs
                // to this caller alone (see the type).
                unsafe { *self.ptr.add(row * self.cols + col) = tile[c * height + r] };
            }
        }
    }
}

/// The preconditions every kernel's pointer arithmetic relies on: `w` is whole rows of `k /
/// values` blocks of `bytes` bytes, and the `T` activation rows (`quants`, one byte a value;
/// `scales`, one a block) and `out` (`T` a weight row) are long enough for them. `(blocks per
/// row, weight rows)` when they hold.
fn tile_shape<const T: usize>(
    w: &[u8],
    k: usize,
    values: usize,
    bytes: usize,
    quants: &[u8],
    scales: &[f32],
    out: &[f32],
) -> Option<(usize, usize)> {
    let blocks = k / values;
    let row_bytes = blocks * bytes;
    if blocks == 0
        || !w.len().is_multiple_of(row_bytes)
        || quants.len() < T * k
        || scales.len() < T * blocks
        || out.len() < w.len() / row_bytes * T
    {
        return None;
    }
    Some((blocks, w.len() / row_bytes))
}

/// q8_0 weight rows `w` (each `k / 32` blocks) against `T` activation rows: `out[c * T + r]`.
/// `false` when `kernel` has no SIMD code here or the lengths do not fit.
pub(super) fn q8_0_tile<const T: usize>(
    kernel: Kernel,
    w: &[u8],
    k: usize,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) -> bool {
    let Some((blocks, cols)) = tile_shape::<T>(w, k, Q8_0_VALUES, Q8_0_BYTES, quants, scales, out)
    else {
        return false;
    };
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
            Kernel::Avx512Vnni if has_avx512_vnni() => {
                // SAFETY: the features were detected; lengths checked above.
                unsafe { x86::q8_0_avx512::<T>(w, cols, blocks, quants, scales, out) };
                return true;
            }
            Kernel::AvxVnni if has_avx_vnni() => {
                // SAFETY: as above.
                unsafe { x86::q8_0_avx_vnni::<T>(w, cols, blocks, quants, scales, out) };
                return true;
            }
            Kernel::Avx2 if has_avx2() => {
                // SAFETY: as above.
                unsafe { x86::q8_0_avx2::<T>(w, cols, blocks, quants, scales, out) };
                return true;
            }
            _ => {}
        }
    }
    let _ = (kernel, blocks, cols);
    false
}

/// The weight rows in `w` when it can be packed as one panel: whole rows of `blocks` blocks of
/// `block_bytes`, at most `PANEL_STRIP * PANEL_STRIPS` of them, and a strip's byte offsets (the
/// pack's gathers) within `i32`.
fn panel_columns(w: &[u8], blocks: usize, block_bytes: usize) -> Option<usize> {
    let row_bytes = blocks * block_bytes;
    let fits = blocks > 0
        && w.len().is_multiple_of(row_bytes)
        && w.len() / row_bytes <= PANEL_STRIP * PANEL_STRIPS
        && i32::try_from(PANEL_STRIP * row_bytes).is_ok();
    fits.then(|| w.len() / row_bytes)
}

/// Repacks q8_0 weight rows `w` (each `k / 32` blocks, at most `PANEL_STRIP * PANEL_STRIPS`
/// rows) into `panel` (its buffers sized here). `false` when `kernel` has no panel code or the
/// sizes do not fit.
pub(super) fn q8_0_pack(kernel: Kernel, w: &[u8], k: usize, panel: &mut Panel) -> bool {
    let blocks = k / Q8_0_VALUES;
    let width = PANEL_STRIP * PANEL_STRIPS;
    let Some(cols) = panel_columns(w, blocks, Q8_0_BYTES) else {
        return false;
    };
    panel.blocks = blocks;
    panel.quants.resize(blocks * width * Q8_0_VALUES, 0);
    panel.scales.resize(blocks * width, 0.0);
    panel.bias.resize(blocks * width, 0);
    panel.mins.clear();
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512Vnni && has_avx512_vnni() {
            // SAFETY: the features were detected; the sizes were checked and set above.
            unsafe {
                x86::q8_0_pack_avx512(
                    w,
                    cols,
                    blocks,
                    &mut panel.quants,
                    &mut panel.scales,
                    &mut panel.bias,
                )
            };
            return true;
        }
    }
    let _ = (kernel, cols);
    false
}

/// `T` activation rows (`+128`, as for the AVX-512 kernel) against a packed q8_0 panel:
/// `out[r * PANEL_STRIP * PANEL_STRIPS + c]` for the panel's column `c`. `false` when `kernel`
/// has no panel code or the lengths do not fit.
pub(super) fn q8_0_panel_tile<const T: usize>(
    kernel: Kernel,
    panel: &Panel,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) -> bool {
    let blocks = panel.blocks;
    let width = PANEL_STRIP * PANEL_STRIPS;
    if blocks == 0
        || panel.quants.len() < blocks * width * Q8_0_VALUES
        || panel.scales.len() < blocks * width
        || panel.bias.len() < blocks * width
        || quants.len() < T * blocks * Q8_0_VALUES
        || scales.len() < T * blocks
        || out.len() < T * width
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512Vnni && has_avx512_vnni() {
            // SAFETY: the features were detected; lengths checked above.
            unsafe {
                x86::q8_0_panel_avx512::<T>(
                    &panel.quants,
                    &panel.scales,
                    &panel.bias,
                    blocks,
                    quants,
                    scales,
                    out,
                )
            };
            return true;
        }
    }
    let _ = (kernel, quants, scales, out);
    false
}

/// Repacks q4k weight rows `w` (each `k / 256` super-blocks, at most `PANEL_STRIP *
/// PANEL_STRIPS` rows) into `panel` (its buffers sized here). `false` when `kernel` has no
/// panel code or the sizes do not fit.
pub(super) fn q4k_pack(kernel: Kernel, w: &[u8], k: usize, panel: &mut Panel) -> bool {
    let blocks = k / Q4K_VALUES;
    let width = PANEL_STRIP * PANEL_STRIPS;
    let sub_blocks = Q4K_VALUES / SUB_BLOCK;
    let Some(cols) = panel_columns(w, blocks, Q4K_BYTES) else {
        return false;
    };
    panel.blocks = blocks;
    panel.quants.resize(blocks * width * Q4K_VALUES, 0);
    panel.scales.resize(blocks * width * sub_blocks, 0.0);
    panel.mins.resize(blocks * width * sub_blocks, 0.0);
    panel.bias.clear();
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512Vnni && has_avx512_vnni() {
            // SAFETY: the features were detected; the sizes were checked and set above.
            unsafe {
                x86::q4k_pack_avx512(
                    w,
                    cols,
                    blocks,
                    &mut panel.quants,
                    &mut panel.scales,
                    &mut panel.mins,
                )
            };
            return true;
        }
    }
    let _ = (kernel, cols);
    false
}

/// `T` activation rows (signed, with sums) against a packed q4k panel: `out[r * PANEL_STRIP *
/// PANEL_STRIPS + c]` for the panel's column `c`. `false` when `kernel` has no panel code or the
/// lengths do not fit.
pub(super) fn q4k_panel_tile<const T: usize>(
    kernel: Kernel,
    panel: &Panel,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) -> bool {
    let blocks = panel.blocks;
    let width = PANEL_STRIP * PANEL_STRIPS;
    let sub_blocks = Q4K_VALUES / SUB_BLOCK;
    if blocks == 0
        || panel.quants.len() < blocks * width * Q4K_VALUES
        || panel.scales.len() < blocks * width * sub_blocks
        || panel.mins.len() < blocks * width * sub_blocks
        || quants.len() < T * blocks * Q4K_VALUES
        || scales.len() < T * blocks
        || sums.len() < T * blocks * sub_blocks
        || out.len() < T * width
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512Vnni && has_avx512_vnni() {
            // SAFETY: the features were detected; lengths checked above.
            unsafe {
                x86::q4k_panel_avx512::<T>(
                    &panel.quants,
                    &panel.scales,
                    &panel.mins,
                    blocks,
                    quants,
                    scales,
                    sums,
                    out,
                )
            };
            return true;
        }
    }
    let _ = (kernel, quants, scales, sums, out);
    false
}

/// `QuantizedActivations::quantize`'s loop, bit for bit, for the kernels with AVX-512: `lhs`
/// in blocks of `block` values to `quants` and `scales` (and `sums`, one per 32 values, unless
/// empty). `false` when `kernel` has no such code or the lengths do not fit.
pub(super) fn quantize(
    kernel: Kernel,
    lhs: &[f32],
    block: usize,
    offset: bool,
    quants: &mut [u8],
    scales: &mut [f32],
    sums: &mut [f32],
) -> bool {
    if block == 0
        || !block.is_multiple_of(SUB_BLOCK)
        || !lhs.len().is_multiple_of(block)
        || quants.len() != lhs.len()
        || scales.len() != lhs.len() / block
        || !(sums.is_empty() || sums.len() == lhs.len() / SUB_BLOCK)
    {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if kernel == Kernel::Avx512Vnni && has_avx512_vnni() {
            // SAFETY: the features were detected; lengths checked above.
            unsafe { x86::quantize_avx512(lhs, block, offset, quants, scales, sums) };
            return true;
        }
    }
    let _ = (kernel, offset);
    false
}

/// q4k weight rows `w` (each `k / 256` blocks) against `T` activation rows: `out[c * T + r]`.
/// `false` when `kernel` has no SIMD code here or the lengths do not fit.
pub(super) fn q4k_tile<const T: usize>(
    kernel: Kernel,
    w: &[u8],
    k: usize,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) -> bool {
    let Some((blocks, cols)) = tile_shape::<T>(w, k, Q4K_VALUES, Q4K_BYTES, quants, scales, out)
    else {
        return false;
    };
    if sums.len() < T * k / SUB_BLOCK {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match kernel {
            Kernel::Avx512Vnni if has_avx512_vnni() => {
                // SAFETY: the features were detected; lengths checked above.
                unsafe { x86::q4k_avx512::<T>(w, cols, blocks, quants, scales, sums, out) };
                return true;
            }
            Kernel::Avx2 | Kernel::AvxVnni if has_avx2() => {
                // SAFETY: as above.
                unsafe { x86::q4k_avx2::<T>(w, cols, blocks, quants, scales, sums, out) };
                return true;
            }
            _ => {}
        }
    }
    let _ = (kernel, blocks, cols);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86;
