//! The x86 kernels behind the safe wrappers of `simd.rs` (its `#![allow(unsafe_code)]` covers
//! them). Shared preconditions, checked by those wrappers: `w` holds `cols` rows of `blocks` GGML
//! blocks; `quants` holds `T` rows of `blocks * values-per-block` bytes, `scales` `T` rows of
//! `blocks` scales, `sums` `T` rows of `k / 32` sums; `out` holds `cols * T` floats.
use std::arch::x86_64::*;

use super::{Q4K_BYTES, Q4K_VALUES, Q8_0_BYTES, Q8_0_VALUES};
use crate::models::quantized::kernels::q4k_scale_min;

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    // SAFETY: register-only intrinsics; callers are compiled with AVX2.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// The f16 at `p` (unaligned) as f32.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: callers pass a pointer to two readable bytes and are compiled with F16C.
    unsafe {
        let bits = std::ptr::read_unaligned(p as *const u16);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// AVX-512: two q8_0 blocks per 512-bit vector. The activations are stored `+128`, so
/// `vpdpbusd(-128·Σw, a+128, w)` is the signed dot product, lane by lane (4 values a lane,
/// 8 lanes a block); each lane is scaled by its block's `dw · da` in f32.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q8_0_avx512<const T: usize>(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q8_0_VALUES;
    let row_bytes = blocks * Q8_0_BYTES;
    // SAFETY: every pointer below stays inside the slices by the shared preconditions: block
    // `b < blocks` of row `c < cols` spans `w[(c * row_bytes + b * 34)..][..34]`; activation
    // row `r < T` spans `quants[r * k..][..k]` and `scales[r * blocks..][..blocks]`; the odd
    // last block is read with a 32-byte mask.
    unsafe {
        let halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        let offset = _mm512_set1_epi8(-128);
        let zero = _mm512_setzero_si512();
        for c in 0..cols {
            let row = w.as_ptr().add(c * row_bytes);
            let mut acc = [_mm512_setzero_ps(); T];
            let mut b = 0;
            while b < blocks {
                let pair = b + 1 < blocks;
                let p0 = row.add(b * Q8_0_BYTES);
                let lo = _mm256_loadu_si256(p0.add(2) as *const __m256i);
                let (wv, dw1) = if pair {
                    let p1 = p0.add(Q8_0_BYTES);
                    let hi = _mm256_loadu_si256(p1.add(2) as *const __m256i);
                    (
                        _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                        f16_at(p1),
                    )
                } else {
                    (_mm512_castsi256_si512(lo), 0.0)
                };
                // Mask off the upper half when there is one block left (a zero weight gives
                // a zero dot product whatever the activation).
                let wv = if pair {
                    wv
                } else {
                    _mm512_maskz_mov_epi8(0xFFFF_FFFF, wv)
                };
                let bias = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, wv));
                let dw = _mm512_permutexvar_ps(
                    halves,
                    _mm512_castps128_ps512(_mm_setr_ps(f16_at(p0), dw1, 0.0, 0.0)),
                );
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = quants.as_ptr().add(r * k + b * Q8_0_VALUES);
                    let s = scales.as_ptr().add(r * blocks + b);
                    let (av, da) = if pair {
                        (
                            _mm512_loadu_si512(a as *const _),
                            _mm_castpd_ps(_mm_load_sd(s as *const f64)),
                        )
                    } else {
                        (
                            _mm512_maskz_loadu_epi8(0xFFFF_FFFF, a as *const i8),
                            _mm_load_ss(s),
                        )
                    };
                    let dot = _mm512_dpbusd_epi32(bias, av, wv);
                    let da = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(da));
                    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, da), *acc);
                }
                b += 2;
            }
            for (r, acc) in acc.iter().enumerate() {
                out[c * T + r] = _mm512_reduce_add_ps(*acc);
            }
        }
    }
}

/// AVX-VNNI: one q8_0 block per 256-bit vector, `+128` activations as in the AVX-512 kernel.
#[target_feature(enable = "avxvnni,avx2,fma,f16c")]
pub(super) unsafe fn q8_0_avx_vnni<const T: usize>(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q8_0_VALUES;
    let row_bytes = blocks * Q8_0_BYTES;
    // SAFETY: as in `q8_0_avx512`, one whole block at a time.
    unsafe {
        let offset = _mm256_set1_epi8(-128);
        let zero = _mm256_setzero_si256();
        for c in 0..cols {
            let row = w.as_ptr().add(c * row_bytes);
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..blocks {
                let p = row.add(b * Q8_0_BYTES);
                let wv = _mm256_loadu_si256(p.add(2) as *const __m256i);
                let bias = _mm256_sub_epi32(zero, _mm256_dpbusd_avx_epi32(zero, offset, wv));
                let dw = f16_at(p);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = quants.as_ptr().add(r * k + b * Q8_0_VALUES);
                    let av = _mm256_loadu_si256(a as *const __m256i);
                    let dot = _mm256_dpbusd_avx_epi32(bias, av, wv);
                    let s = _mm256_set1_ps(dw * *scales.get_unchecked(r * blocks + b));
                    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, *acc);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                out[c * T + r] = hsum256(*acc);
            }
        }
    }
}

/// AVX2: one q8_0 block per 256-bit vector; `vpmaddubsw(|a|, sign(w, a))` (the activations
/// are signed and never -128, so `|a|` fits a byte and no pair sum saturates).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q8_0_avx2<const T: usize>(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q8_0_VALUES;
    let row_bytes = blocks * Q8_0_BYTES;
    // SAFETY: as in `q8_0_avx512`, one whole block at a time.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        for c in 0..cols {
            let row = w.as_ptr().add(c * row_bytes);
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..blocks {
                let p = row.add(b * Q8_0_BYTES);
                let wv = _mm256_loadu_si256(p.add(2) as *const __m256i);
                let dw = f16_at(p);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = quants.as_ptr().add(r * k + b * Q8_0_VALUES);
                    let av = _mm256_loadu_si256(a as *const __m256i);
                    let pairs =
                        _mm256_maddubs_epi16(_mm256_sign_epi8(av, av), _mm256_sign_epi8(wv, av));
                    let dot = _mm256_madd_epi16(pairs, ones);
                    let s = _mm256_set1_ps(dw * *scales.get_unchecked(r * blocks + b));
                    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, *acc);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                out[c * T + r] = hsum256(*acc);
            }
        }
    }
}

/// A q4k block's `d · sc_j` and `dmin · m_j` (j = 0..8).
#[inline(always)]
unsafe fn q4k_scales(block: *const u8) -> ([f32; 8], [f32; 8]) {
    // SAFETY: `block` points at a whole 144-byte q4k block; callers are compiled with F16C.
    unsafe {
        let d = f16_at(block);
        let dmin = f16_at(block.add(2));
        let bytes = std::slice::from_raw_parts(block.add(4), 12);
        let mut sc = [0f32; 8];
        let mut mn = [0f32; 8];
        for j in 0..8 {
            let (s, m) = q4k_scale_min(j, bytes);
            sc[j] = d * s as f32;
            mn[j] = dmin * m as f32;
        }
        (sc, mn)
    }
}

/// AVX-512: a q4k block is four 512-bit vectors of nibbles (two sub-blocks each, as the
/// activations run), `vpdpbusd(nibbles, a)` gives the sub-block dot products lane by lane,
/// scaled by `d · sc_j` in f32; the minimums are `dmin · m_j` times the activations' scaled
/// sub-block sums, eight at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q4k_avx512<const T: usize>(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q4K_VALUES;
    let row_bytes = blocks * Q4K_BYTES;
    let sums_per_row = k / super::SUB_BLOCK;
    // SAFETY: block `b < blocks` of row `c < cols` spans `w[c * row_bytes + b * 144..][..144]`
    // (the nibbles at offset 16..144); activation row `r < T` spans `quants[r * k..][..k]`,
    // `scales[r * blocks..][..blocks]` and `sums[r * k / 32..][..k / 32]`.
    unsafe {
        let low = _mm512_set1_epi8(0x0F);
        let zero = _mm512_setzero_si512();
        let mut pair_index = [_mm512_setzero_si512(); 4];
        for (i, index) in pair_index.iter_mut().enumerate() {
            let (a, b) = (2 * i as i32, 2 * i as i32 + 1);
            *index = _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
        }
        for c in 0..cols {
            let row = w.as_ptr().add(c * row_bytes);
            let mut acc = [_mm512_setzero_ps(); T];
            let mut mins = [_mm256_setzero_ps(); T];
            for b in 0..blocks {
                let block = row.add(b * Q4K_BYTES);
                let (sc, mn) = q4k_scales(block);
                let sc = _mm512_castps256_ps512(_mm256_loadu_ps(sc.as_ptr()));
                let mn = _mm256_loadu_ps(mn.as_ptr());
                let mut nibbles = [zero; 4];
                let mut scale = [_mm512_setzero_ps(); 4];
                for i in 0..4 {
                    let q = _mm256_loadu_si256(block.add(16 + 32 * i) as *const __m256i);
                    let both =
                        _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                    nibbles[i] = _mm512_and_si512(both, low);
                    scale[i] = _mm512_permutexvar_ps(pair_index[i], sc);
                }
                for r in 0..T {
                    let a = quants.as_ptr().add(r * k + b * Q4K_VALUES);
                    let mut part = _mm512_setzero_ps();
                    for i in 0..4 {
                        let av = _mm512_loadu_si512(a.add(64 * i) as *const _);
                        let dot = _mm512_dpbusd_epi32(zero, nibbles[i], av);
                        part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale[i], part);
                    }
                    let da = _mm512_set1_ps(*scales.get_unchecked(r * blocks + b));
                    acc[r] = _mm512_fmadd_ps(part, da, acc[r]);
                    let s = _mm256_loadu_ps(sums.as_ptr().add(r * sums_per_row + b * 8));
                    mins[r] = _mm256_fmadd_ps(mn, s, mins[r]);
                }
            }
            for r in 0..T {
                out[c * T + r] = _mm512_reduce_add_ps(acc[r]) - hsum256(mins[r]);
            }
        }
    }
}

/// AVX2: a q4k block is eight 256-bit vectors of nibbles (one sub-block each);
/// `vpmaddwd(vpmaddubsw(nibbles, a), sc_j)` applies the integer sub-block scale (15 · 127 · 2
/// fits an i16, · 63 an i32), so a block is one integer sum scaled by `d · da`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4k_avx2<const T: usize>(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q4K_VALUES;
    let row_bytes = blocks * Q4K_BYTES;
    let sums_per_row = k / super::SUB_BLOCK;
    // SAFETY: as in `q4k_avx512`.
    unsafe {
        let low = _mm256_set1_epi8(0x0F);
        for c in 0..cols {
            let row = w.as_ptr().add(c * row_bytes);
            let mut acc = [_mm256_setzero_ps(); T];
            let mut mins = [_mm256_setzero_ps(); T];
            for b in 0..blocks {
                let block = row.add(b * Q4K_BYTES);
                let d = f16_at(block);
                let dmin = f16_at(block.add(2));
                let bytes = std::slice::from_raw_parts(block.add(4), 12);
                let mut sc = [_mm256_setzero_si256(); 8];
                let mut mn = [0f32; 8];
                for j in 0..8 {
                    let (s, m) = q4k_scale_min(j, bytes);
                    sc[j] = _mm256_set1_epi16(s as i16);
                    mn[j] = dmin * m as f32;
                }
                let mn = _mm256_loadu_ps(mn.as_ptr());
                let mut sums_int = [_mm256_setzero_si256(); T];
                for i in 0..4 {
                    let q = _mm256_loadu_si256(block.add(16 + 32 * i) as *const __m256i);
                    let lo = _mm256_and_si256(q, low);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
                    for (r, total) in sums_int.iter_mut().enumerate() {
                        let a = quants.as_ptr().add(r * k + b * Q4K_VALUES + 64 * i);
                        let a0 = _mm256_loadu_si256(a as *const __m256i);
                        let a1 = _mm256_loadu_si256(a.add(32) as *const __m256i);
                        let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), sc[2 * i]);
                        let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), sc[2 * i + 1]);
                        *total = _mm256_add_epi32(*total, _mm256_add_epi32(p0, p1));
                    }
                }
                for r in 0..T {
                    let s = _mm256_set1_ps(d * *scales.get_unchecked(r * blocks + b));
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums_int[r]), s, acc[r]);
                    let sub = _mm256_loadu_ps(sums.as_ptr().add(r * sums_per_row + b * 8));
                    mins[r] = _mm256_fmadd_ps(mn, sub, mins[r]);
                }
            }
            for r in 0..T {
                out[c * T + r] = hsum256(acc[r]) - hsum256(mins[r]);
            }
        }
    }
}

/// Columns of a q8_0 panel strip: one per 32-bit lane of a 512-bit vector.
const STRIP: usize = super::super::kernels::PANEL_STRIP;
/// Strips of a panel (the kernel's register tile is `T` rows × `STRIPS` strips).
const STRIPS: usize = super::super::kernels::PANEL_STRIPS;

/// Repacks up to `STRIP * STRIPS` q8_0 weight rows `w` (`cols` rows of `blocks` blocks) into a
/// panel for [`q8_0_panel_avx512`]: block `b` of strip `g` (columns `16g..16g+16`) is 512 bytes
/// at `quants[(b * STRIPS + g) * 512..]`, four consecutive weights of column `c` in lane `c` of
/// chunk `j` (bytes `j * 64 + c * 4..`, the block's values `4j..4j+4`); its 16 scales `dw` and
/// biases `-128 · Σ w` at `[(b * STRIPS + g) * 16..]`. Missing columns are zero (zero scale, zero
/// weights), so they add nothing. Preconditions (checked by the wrapper): `w` holds `cols <=
/// STRIP * STRIPS` rows, `quants` `blocks * STRIPS * 512` bytes, `dw` and `bias` `blocks * STRIPS
/// * 16` values, and `STRIP * blocks * 34` fits an `i32` (the gather offsets).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q8_0_pack_avx512(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &mut [u8],
    dw: &mut [f32],
    bias: &mut [i32],
) {
    let row_bytes = blocks * Q8_0_BYTES;
    // SAFETY: a gather reads lane `c` only when `c < lanes`, i.e. column `16g + c < cols`, at
    // byte `(16g + c) * row_bytes + b * 34 + o` with `o <= 2 + 28`, four bytes inside that
    // column's block `b < blocks`; the strip's base pointer is formed only when it has a lane.
    // The stores stay inside `quants`, `dw` and `bias` by their lengths above.
    unsafe {
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let offsets = _mm512_mullo_epi32(lane, _mm512_set1_epi32(row_bytes as i32));
        let offset = _mm512_set1_epi8(-128);
        let zero = _mm512_setzero_si512();
        for g in 0..STRIPS {
            let lanes = cols.saturating_sub(g * STRIP).min(STRIP);
            let mask: __mmask16 = ((1u32 << lanes) - 1) as __mmask16;
            for b in 0..blocks {
                let at = (b * STRIPS + g) * STRIP;
                let q = quants.as_mut_ptr().add(at * 32);
                if lanes == 0 {
                    for j in 0..8 {
                        _mm512_storeu_si512(q.add(j * 64) as *mut _, zero);
                    }
                    _mm512_storeu_ps(dw.as_mut_ptr().add(at), _mm512_setzero_ps());
                    _mm512_storeu_si512(bias.as_mut_ptr().add(at) as *mut _, zero);
                    continue;
                }
                let base = w.as_ptr().add(g * STRIP * row_bytes + b * Q8_0_BYTES);
                let chunks = strip_chunks(base.add(2), lanes, offsets);
                let mut sum = zero;
                for (j, v) in chunks.into_iter().enumerate() {
                    sum = _mm512_dpbusd_epi32(sum, offset, v);
                    _mm512_storeu_si512(q.add(j * 64) as *mut _, v);
                }
                let halves =
                    _mm512_mask_i32gather_epi32::<1>(zero, mask, offsets, base as *const _);
                let scales = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(halves));
                _mm512_storeu_ps(dw.as_mut_ptr().add(at), scales);
                _mm512_storeu_si512(
                    bias.as_mut_ptr().add(at) as *mut _,
                    _mm512_sub_epi32(zero, sum),
                );
            }
        }
    }
}

/// 32 bytes at `base` in each of the first `lanes <= 16` of 16 rows as eight vectors: lane `c`
/// of vector `j` holds bytes `4j..4j+4` of row `c` (zero for `c >= lanes`); `offsets` holds row
/// `c`'s distance from `base` in lane `c`. Eight masked gathers: in the real benchmark (Dream-100M
/// at q8_0, the output head at 2–31 rows) they beat 16 row loads transposed by three rounds of
/// `vpermt2d`, with or without prefetching, although the transposition won the micro-benchmark.
#[inline(always)]
unsafe fn strip_chunks(base: *const u8, lanes: usize, offsets: __m512i) -> [__m512i; 8] {
    // SAFETY: the caller passes `lanes >= 1` rows with 32 readable bytes at `base` plus lane
    // `c`'s offset; the gather reads only the lanes below `lanes`.
    unsafe {
        let mask: __mmask16 = ((1u32 << lanes) - 1) as __mmask16;
        let zero = _mm512_setzero_si512();
        std::array::from_fn(|j| {
            let at = _mm512_add_epi32(offsets, _mm512_set1_epi32(4 * j as i32));
            _mm512_mask_i32gather_epi32::<1>(zero, mask, at, base as *const _)
        })
    }
}

/// `T` activation rows (stored `+128`) against a q8_0 panel of `STRIPS` strips (see
/// [`q8_0_pack_avx512`]): `out[r * STRIP * STRIPS + c]` for column `c` of the panel. Each
/// 512-bit `vpdpbusd` multiplies four activations (broadcast) by four weights of 16 columns, so a
/// block is 8 of them per strip and row, started from the column biases; then one conversion and
/// one `fma` by `dw · da` per strip and row. The weight vectors serve `T` rows, the activation
/// broadcasts `STRIPS` strips. Preconditions: the panel holds `blocks` blocks, `quants` `T` rows
/// of `blocks * 32` bytes, `scales` `T` rows of `blocks`, `out` `T * STRIP * STRIPS` floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q8_0_panel_avx512<const T: usize>(
    panel_quants: &[u8],
    panel_dw: &[f32],
    panel_bias: &[i32],
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q8_0_VALUES;
    // SAFETY: panel block `b < blocks` of strip `g < STRIPS` spans `panel_quants[(b * STRIPS +
    // g) * 512..][..512]` and `panel_dw`/`panel_bias[(b * STRIPS + g) * 16..][..16]`; activation
    // row `r < T` spans `quants[r * k..][..k]` (4 bytes read at `b * 32 + 4j`, `j < 8`) and
    // `scales[r * blocks..][..blocks]`; `out` holds `T * 32` floats.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); STRIPS]; T];
        for b in 0..blocks {
            let at = b * STRIPS * STRIP;
            let wq = panel_quants.as_ptr().add(at * 32);
            let mut dots = [[_mm512_setzero_si512(); STRIPS]; T];
            for g in 0..STRIPS {
                let bias = _mm512_loadu_si512(panel_bias.as_ptr().add(at + g * STRIP) as *const _);
                for row in dots.iter_mut() {
                    row[g] = bias;
                }
            }
            for j in 0..8 {
                let wv: [__m512i; STRIPS] = std::array::from_fn(|g| {
                    _mm512_loadu_si512(wq.add(g * 512 + j * 64) as *const _)
                });
                for (r, row) in dots.iter_mut().enumerate() {
                    let a = quants.as_ptr().add(r * k + b * Q8_0_VALUES + 4 * j);
                    let av = _mm512_set1_epi32(std::ptr::read_unaligned(a as *const i32));
                    for g in 0..STRIPS {
                        row[g] = _mm512_dpbusd_epi32(row[g], av, wv[g]);
                    }
                }
            }
            for (r, (acc, dots)) in acc.iter_mut().zip(&dots).enumerate() {
                let da = _mm512_set1_ps(*scales.get_unchecked(r * blocks + b));
                for g in 0..STRIPS {
                    let dw = _mm512_loadu_ps(panel_dw.as_ptr().add(at + g * STRIP));
                    acc[g] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[g]), _mm512_mul_ps(dw, da), acc[g]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (g, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr().add((r * STRIPS + g) * STRIP), *acc);
            }
        }
    }
}

/// [`QuantizedActivations::quantize`](super::super::kernels::QuantizedActivations::quantize) in
/// AVX-512, bit for bit: per block of `block` values (a multiple of 32) `amax` by `max` (which
/// ignores a NaN value as `f32::max` does), `scale = amax / 127` and `inverse = 1 / scale` in
/// scalar f32 as there, `q = round(x · inverse)` rounding halves away from zero as `f32::round`
/// (add the largest f32 below ½ with x's sign, then truncate: exact for |x| < 2^23, and
/// `|x · inverse| <= 127` here), clamped to ±127 with a NaN kept NaN until the integer conversion
/// makes its byte 0 as `as i8` does. `sums` (empty, or one per 32 values) gets `scale · Σ q` (a
/// NaN activation's sum aside: its lane adds `i32::MIN`). Preconditions (checked by the
/// wrapper): `lhs.len() == quants.len()`, a multiple of `block`; `scales` holds `lhs.len() /
/// block` values; `sums` is empty or holds `lhs.len() / 32`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn quantize_avx512(
    lhs: &[f32],
    block: usize,
    offset: bool,
    quants: &mut [u8],
    scales: &mut [f32],
    sums: &mut [f32],
) {
    let flip = _mm_set1_epi8(if offset { -128 } else { 0 });
    // The largest f32 below one half: `x + copysign(it, x)` rounds (to nearest, in f32) past the
    // next integer exactly when x's fraction is at least one half.
    let below_half = _mm512_set1_ps(f32::from_bits(0.5f32.to_bits() - 1));
    let sign = _mm512_castsi512_ps(_mm512_set1_epi32(i32::MIN));
    let low = _mm512_set1_ps(-127.0);
    let high = _mm512_set1_ps(127.0);
    let with_sums = !sums.is_empty();
    // SAFETY: block `b < lhs.len() / block` spans `lhs[b * block..][..block]` and the same
    // bytes of `quants`, read and written 16 at a time (`block` is a multiple of 32); `scales[b]`
    // and `sums[b * block / 32 + s]` for `s < block / 32` are inside their slices by the
    // preconditions.
    unsafe {
        for b in 0..lhs.len() / block {
            let x = lhs.as_ptr().add(b * block);
            let mut amax = _mm512_setzero_ps();
            for i in (0..block).step_by(16) {
                amax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x.add(i))), amax);
            }
            let scale = _mm512_reduce_max_ps(amax) / 127.0;
            let inverse = _mm512_set1_ps(if scale > 0.0 { 1.0 / scale } else { 0.0 });
            *scales.get_unchecked_mut(b) = scale;
            for sub in 0..block / 32 {
                let mut total = _mm512_setzero_si512();
                for i in 0..2 {
                    let at = b * block + sub * 32 + i * 16;
                    let v = _mm512_mul_ps(_mm512_loadu_ps(lhs.as_ptr().add(at)), inverse);
                    let r = _mm512_add_ps(v, _mm512_or_ps(below_half, _mm512_and_ps(v, sign)));
                    let r = _mm512_min_ps(high, _mm512_max_ps(low, r));
                    let q = _mm512_cvttps_epi32(r);
                    total = _mm512_add_epi32(total, q);
                    let bytes = _mm_xor_si128(_mm512_cvtepi32_epi8(q), flip);
                    _mm_storeu_si128(quants.as_mut_ptr().add(at) as *mut __m128i, bytes);
                }
                if with_sums {
                    let s = _mm512_reduce_add_epi32(total);
                    *sums.get_unchecked_mut(b * block / 32 + sub) = scale * s as f32;
                }
            }
        }
    }
}

/// Repacks up to `STRIP * STRIPS` q4k weight rows `w` (`cols` rows of `blocks` super-blocks) for
/// [`q4k_panel_avx512`]: sub-block `j` of super-block `b` of strip `g` is 512 bytes of 4-bit
/// values widened to bytes at `quants[((b * STRIPS + g) * 8 + j) * 512..]`, four consecutive
/// values of column `c` in lane `c` of chunk `i` (as in [`q8_0_pack_avx512`]); its 16 scales `d ·
/// sc_j` and minimums `dmin · m_j` at `scales`/`mins[((b * STRIPS + g) * 8 + j) * 16..]`. Missing
/// columns are zero. Preconditions (checked by the wrapper): `w` holds `cols <= STRIP * STRIPS`
/// rows, `quants` `blocks * STRIPS * 8 * 512` bytes, `scales` and `mins` `blocks * STRIPS * 8 *
/// 16` values, and `STRIP * blocks * 144` fits an `i32`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q4k_pack_avx512(
    w: &[u8],
    cols: usize,
    blocks: usize,
    quants: &mut [u8],
    scales: &mut [f32],
    mins: &mut [f32],
) {
    let row_bytes = blocks * Q4K_BYTES;
    // SAFETY: a strip with `lanes >= 1` columns reads, per column `16g + c < cols` and block
    // `b < blocks`, the 144 bytes at `(16g + c) * row_bytes + b * 144` (32 at a time from byte
    // 16 on, and the scale bytes through `q4k_scales`); a strip without columns reads nothing.
    // The stores stay inside `quants`, `scales` and `mins` by their lengths above.
    unsafe {
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let offsets = _mm512_mullo_epi32(lane, _mm512_set1_epi32(row_bytes as i32));
        let low = _mm512_set1_epi8(0x0F);
        let zero = _mm512_setzero_si512();
        for g in 0..STRIPS {
            let lanes = cols.saturating_sub(g * STRIP).min(STRIP);
            for b in 0..blocks {
                let at = (b * STRIPS + g) * 8;
                let q = quants.as_mut_ptr().add(at * 512);
                if lanes == 0 {
                    for i in 0..8 * 8 {
                        _mm512_storeu_si512(q.add(i * 64) as *mut _, zero);
                    }
                    for j in 0..8 {
                        _mm512_storeu_ps(
                            scales.as_mut_ptr().add((at + j) * STRIP),
                            _mm512_setzero_ps(),
                        );
                        _mm512_storeu_ps(
                            mins.as_mut_ptr().add((at + j) * STRIP),
                            _mm512_setzero_ps(),
                        );
                    }
                    continue;
                }
                let base = w.as_ptr().add(g * STRIP * row_bytes + b * Q4K_BYTES);
                for pair in 0..4 {
                    let data = base.add(16 + 32 * pair);
                    let chunks = strip_chunks(data, lanes, offsets);
                    for (i, v) in chunks.into_iter().enumerate() {
                        let lo = _mm512_and_si512(v, low);
                        let hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                        _mm512_storeu_si512(q.add((2 * pair) * 512 + i * 64) as *mut _, lo);
                        _mm512_storeu_si512(q.add((2 * pair + 1) * 512 + i * 64) as *mut _, hi);
                    }
                }
                let mut sc = [[0f32; STRIP]; 8];
                let mut mn = [[0f32; STRIP]; 8];
                for c in 0..lanes {
                    let (s, m) = q4k_scales(base.add(c * row_bytes));
                    for j in 0..8 {
                        sc[j][c] = s[j];
                        mn[j][c] = m[j];
                    }
                }
                for j in 0..8 {
                    let to = (at + j) * STRIP;
                    _mm512_storeu_ps(scales.as_mut_ptr().add(to), _mm512_loadu_ps(sc[j].as_ptr()));
                    _mm512_storeu_ps(mins.as_mut_ptr().add(to), _mm512_loadu_ps(mn[j].as_ptr()));
                }
            }
        }
    }
}

/// `T` activation rows (signed, blocks of 256 with scaled sums per 32) against a q4k panel of
/// `STRIPS` strips (see [`q4k_pack_avx512`]): `out[r * STRIP * STRIPS + c]`. Per sub-block, 8
/// `vpdpbusd` (widened 4-bit weights of 16 columns by four broadcast activations) per strip and
/// row, then `acc += dot · (d · sc_j · da)` and `acc -= (dmin · m_j) · S_j`. Preconditions: the
/// panel holds `blocks` super-blocks, `quants` `T` rows of `blocks * 256` bytes, `scales` `T` rows
/// of `blocks`, `sums` `T` rows of `blocks * 8`, `out` `T * STRIP * STRIPS` floats.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub(super) unsafe fn q4k_panel_avx512<const T: usize>(
    panel_quants: &[u8],
    panel_scales: &[f32],
    panel_mins: &[f32],
    blocks: usize,
    quants: &[u8],
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
) {
    let k = blocks * Q4K_VALUES;
    let sums_per_row = k / super::SUB_BLOCK;
    // SAFETY: panel sub-block `j < 8` of super-block `b < blocks` and strip `g < STRIPS` spans
    // `panel_quants[((b * STRIPS + g) * 8 + j) * 512..][..512]` and 16 values of `panel_scales`
    // and `panel_mins` at `((b * STRIPS + g) * 8 + j) * 16`; activation row `r < T` spans
    // `quants[r * k..][..k]` (4 bytes read at `b * 256 + 32j + 4i`, `i < 8`), `scales[r *
    // blocks..][..blocks]` and `sums[r * k / 32..][..k / 32]`; `out` holds `T * 32` floats.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); STRIPS]; T];
        for b in 0..blocks {
            for j in 0..8 {
                let mut dots = [[_mm512_setzero_si512(); STRIPS]; T];
                for i in 0..8 {
                    let wv: [__m512i; STRIPS] = std::array::from_fn(|g| {
                        let at = ((b * STRIPS + g) * 8 + j) * 512 + i * 64;
                        _mm512_loadu_si512(panel_quants.as_ptr().add(at) as *const _)
                    });
                    for (r, row) in dots.iter_mut().enumerate() {
                        let a = quants.as_ptr().add(r * k + b * Q4K_VALUES + 32 * j + 4 * i);
                        let av = _mm512_set1_epi32(std::ptr::read_unaligned(a as *const i32));
                        for g in 0..STRIPS {
                            row[g] = _mm512_dpbusd_epi32(row[g], wv[g], av);
                        }
                    }
                }
                for (r, (acc, dots)) in acc.iter_mut().zip(&dots).enumerate() {
                    let da = _mm512_set1_ps(*scales.get_unchecked(r * blocks + b));
                    let sum = _mm512_set1_ps(*sums.get_unchecked(r * sums_per_row + b * 8 + j));
                    for g in 0..STRIPS {
                        let at = ((b * STRIPS + g) * 8 + j) * STRIP;
                        let sc = _mm512_loadu_ps(panel_scales.as_ptr().add(at));
                        let mn = _mm512_loadu_ps(panel_mins.as_ptr().add(at));
                        let scaled = _mm512_mul_ps(sc, da);
                        acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[g]), scaled, acc[g]);
                        acc[g] = _mm512_fnmadd_ps(mn, sum, acc[g]);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (g, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr().add((r * STRIPS + g) * STRIP), *acc);
            }
        }
    }
}
