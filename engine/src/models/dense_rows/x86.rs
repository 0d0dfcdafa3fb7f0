//! The AVX-512 kernel behind `dense_rows.rs`: all activation rows against weight rows a few at a
//! time (tiles of 8, 4, 2, 1 activation rows; four weight rows, two for 8-row tiles), 16 lanes per
//! FMA, a masked load for the last partial chunk of a row. Each small group of weight rows is
//! read from memory once and then serves every tile from L1, while the next rows are prefetched:
//! the head's weight (250+ MB) streams through once per matmul.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// Weight rows ahead of the current group that the first tile prefetches.
const PREFETCH_ROWS: usize = 16;

/// `out[c * m + r]` = weight row `c` of `w` (`k` values each) · activation row `r` of `x`
/// (`m` rows). `false` when the CPU lacks AVX-512 or the lengths do not fit (nothing written).
pub(super) fn rows(w: &[f32], k: usize, x: &[f32], m: usize, out: &mut [f32]) -> bool {
    if k == 0 || !w.len().is_multiple_of(k) || x.len() < m * k {
        return false;
    }
    let cols = w.len() / k;
    if out.len() < cols * m || !super::available() {
        return false;
    }
    // SAFETY: AVX-512F and FMA were detected; `w` holds `cols` rows of `k`, `x` at least `m`
    // rows of `k`, `out` at least `cols * m` values (checked above).
    unsafe { rows_avx512(w, cols, k, x, m, out) };
    true
}

#[target_feature(enable = "avx512f,fma")]
unsafe fn rows_avx512(w: &[f32], cols: usize, k: usize, x: &[f32], m: usize, out: &mut [f32]) {
    let mut c = 0;
    // SAFETY: columns `c..c + C` are below `cols` (loop bounds), so their rows are inside `w`;
    // `tiles` reads `k` values of each and of the `m` rows of `x`, and writes `out[c * m..]`
    // for those `C` columns.
    unsafe {
        while c + 4 <= cols {
            tiles::<4>(
                w.as_ptr().add(c * k),
                k,
                x.as_ptr(),
                m,
                out.as_mut_ptr().add(c * m),
            );
            c += 4;
        }
        while c < cols {
            tiles::<1>(
                w.as_ptr().add(c * k),
                k,
                x.as_ptr(),
                m,
                out.as_mut_ptr().add(c * m),
            );
            c += 1;
        }
    }
}

/// `C` weight rows at `w` against all `m` activation rows at `x`: `out[j * m + r]`.
#[inline(always)]
unsafe fn tiles<const C: usize>(w: *const f32, k: usize, x: *const f32, m: usize, out: *mut f32) {
    // SAFETY: the caller's bounds; each call below reads rows `r..r + T` of `x` (`r + T <= m`)
    // and writes `out[j * m + r..][..T]` for `j < C`.
    unsafe {
        let mut r = 0;
        let mut first = true;
        while r + 8 <= m {
            // Accumulators: `T * C` of the 32 vector registers beside the weight and activation
            // vectors (8 x 2 here, 4 x 4 below; more would spill), so an 8-row tile takes the
            // weight rows two at a time.
            if C == 4 {
                group::<8, 2>(w, k, x.add(r * k), out.add(r), m, first);
                group::<8, 2>(w.add(2 * k), k, x.add(r * k), out.add(2 * m + r), m, first);
            } else {
                for j in 0..C {
                    group::<8, 1>(w.add(j * k), k, x.add(r * k), out.add(j * m + r), m, first);
                }
            }
            first = false;
            r += 8;
        }
        if r + 4 <= m {
            group::<4, C>(w, k, x.add(r * k), out.add(r), m, first);
            first = false;
            r += 4;
        }
        if r + 2 <= m {
            group::<2, C>(w, k, x.add(r * k), out.add(r), m, first);
            first = false;
            r += 2;
        }
        if r < m {
            group::<1, C>(w, k, x.add(r * k), out.add(r), m, first);
        }
    }
}

/// `C` weight rows from `w` against `T` activation rows from `x`, each `k` long:
/// `out[j * stride + r]`. With `prefetch`, the rows [`PREFETCH_ROWS`] ahead are prefetched.
#[inline(always)]
unsafe fn group<const T: usize, const C: usize>(
    w: *const f32,
    k: usize,
    x: *const f32,
    out: *mut f32,
    stride: usize,
    prefetch: bool,
) {
    // SAFETY: the caller guarantees `C` rows of `k` readable floats at `w`, `T` at `x`, and
    // `out[j * stride + r]` writable for `j < C`, `r < T`; full chunks are read whole, the last
    // one masked to the `k % 16` values that exist. Prefetch addresses are only hints (computed
    // with wrapping arithmetic; a prefetch past the end never faults). Inlined into the
    // AVX-512 caller.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); C]; T];
        let full = k - k % 16;
        let ahead = w.wrapping_add(PREFETCH_ROWS * k);
        let mut i = 0;
        while i < full {
            let mut wv = [_mm512_setzero_ps(); C];
            for (j, v) in wv.iter_mut().enumerate() {
                if prefetch {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(j * k + i) as *const i8);
                }
                *v = _mm512_loadu_ps(w.add(j * k + i));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_loadu_ps(x.add(r * k + i));
                for (a, v) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xv, *v, *a);
                }
            }
            i += 16;
        }
        if i < k {
            let mask: __mmask16 = (1u16 << (k - i)) - 1;
            let mut wv = [_mm512_setzero_ps(); C];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(mask, w.add(j * k + i));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_maskz_loadu_ps(mask, x.add(r * k + i));
                for (a, v) in row.iter_mut().zip(&wv) {
                    *a = _mm512_fmadd_ps(xv, *v, *a);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (j, a) in row.iter().enumerate() {
                *out.add(j * stride + r) = _mm512_reduce_add_ps(*a);
            }
        }
    }
}
