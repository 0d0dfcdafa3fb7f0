//! A CPU matmul for the few rows of a denoising step against a wide f32 weight stored as read:
//! `dst [m, n] = x [m, k] · W [n, k]^T`, W row-major. This is the output head's shape (`m` up to
//! a block's masked positions, `n` the 126k–152k vocabulary): gemm packs the transposed W on
//! every call, so at `m ≈ 16` it spends most of the step copying the whole head (250+ MB at
//! llada-100m) instead of multiplying. Here each output is a dot product of two contiguous rows:
//! weight rows are cut into items of about [`ITEM_BYTES`] spread over candle's CPU pool; an item
//! takes its weight rows a few at a time and runs every tile of activation rows (8, then 4, 2, 1)
//! over them while they are in L1, prefetching the next ones, so W streams from memory once.
//!
//! The dot products run in AVX-512 (`x86.rs`, the only `unsafe`, entered after
//! `is_x86_feature_detected!`); [`dot_rows_scalar`] defines the result, which the SIMD kernel
//! reproduces up to the order of the f32 additions. Without AVX-512 [`matmul`] answers `None` and
//! the caller runs candle's matmul.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use super::quantized::SharedOutput;

/// Weight bytes an item of work aims at (its rows stay in L2 across the row tiles).
const ITEM_BYTES: usize = 64 * 1024;
/// The most weight rows in an item (bounds the item's output buffer).
const ITEM_MAX_ROWS: usize = 64;
/// Above this many activation rows gemm's packing pays for itself; callers use candle's matmul.
pub const MAX_ROWS: usize = 64;

/// Whether this CPU runs the SIMD kernel, detected once.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(x86_available)
}

fn x86_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x [m, k] · w^T` for a row-major `w [n, k]`, both f32 on the CPU, when this module's kernel
/// applies (AVX-512, `1 <= m <= MAX_ROWS`, `w` contiguous as stored); `None` otherwise, for the
/// caller to run candle's matmul.
pub fn matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Option<Tensor>> {
    let applies = available()
        && x.device().is_cpu()
        && w.device().is_cpu()
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && w.is_contiguous()
        && matches!(x.dims2(), Ok((m, _)) if (1..=MAX_ROWS).contains(&m));
    if !applies {
        return Ok(None);
    }
    x.contiguous()?.apply_op2_no_bwd(w, &RowsOp).map(Some)
}

struct RowsOp;

impl CustomOp2 for RowsOp {
    fn name(&self) -> &'static str {
        "dense-rows-matmul"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, k) = x_layout.shape().dims2()?;
        let (n, wk) = w_layout.shape().dims2()?;
        if k != wk {
            candle_core::bail!("dense rows matmul: input has {k} columns, the weight {wk}");
        }
        let (Some((xs, xe)), Some((ws, we))) =
            (x_layout.contiguous_offsets(), w_layout.contiguous_offsets())
        else {
            candle_core::bail!("dense rows matmul: the operands are not contiguous");
        };
        let x = &x.as_slice::<f32>()?[xs..xe];
        let w = &w.as_slice::<f32>()?[ws..we];
        let mut dst = vec![0f32; m * n];
        if !run(x, w, (m, k, n), &mut dst) {
            candle_core::bail!("dense rows matmul: no SIMD kernel on this CPU");
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }
}

/// `dst [m, n] = x [m, k] · w [n, k]^T` with the SIMD kernel over candle's pool. `false` (nothing
/// written) when the lengths do not match the shape, `m` is above [`MAX_ROWS`] or the CPU lacks
/// the kernel.
fn run(x: &[f32], w: &[f32], (m, k, n): (usize, usize, usize), dst: &mut [f32]) -> bool {
    if x.len() != m * k || w.len() != n * k || dst.len() != m * n || m > MAX_ROWS || !available() {
        return false;
    }
    if m == 0 || n == 0 || k == 0 {
        dst.fill(0.0);
        return true;
    }
    let item_rows = (ITEM_BYTES / (k * 4)).clamp(1, ITEM_MAX_ROWS);
    let items = n.div_ceil(item_rows);
    let out = SharedOutput::new(dst, m, n);
    candle_core::utils::barrier_pool().execute_chunked(items, |range| {
        let mut local = [0f32; ITEM_MAX_ROWS * MAX_ROWS];
        for item in range {
            let cols = item * item_rows..n.min((item + 1) * item_rows);
            let rows_w = &w[cols.start * k..cols.end * k];
            let buffer = &mut local[..cols.len() * m];
            if !simd_rows(rows_w, k, x, m, buffer) {
                dot_rows_scalar(rows_w, k, x, m, buffer);
            }
            out.write(0..m, cols, buffer);
        }
    });
    true
}

fn simd_rows(w: &[f32], k: usize, x: &[f32], m: usize, out: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::rows(w, k, x, m, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, k, x, m, out);
        false
    }
}

/// The definition: `out[c * tile + r]` = weight row `c` of `w` · activation row `r` of `x`.
fn dot_rows_scalar(w: &[f32], k: usize, x: &[f32], tile: usize, out: &mut [f32]) {
    for (c, wrow) in w.chunks_exact(k).enumerate() {
        for (r, xrow) in x.chunks_exact(k).take(tile).enumerate() {
            out[c * tile + r] = wrow.iter().zip(xrow).map(|(a, b)| a * b).sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::print_stderr)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Every row count (each tile size and the remainders), widths with and without a partial
    /// 16-lane chunk, and column counts across item boundaries: the kernel equals the scalar
    /// definition up to f32 rounding of a reordered sum.
    #[test]
    fn the_simd_kernel_equals_the_scalar_definition() {
        if !available() {
            eprintln!("no AVX-512 on this CPU: the kernel is not run here");
            return;
        }
        let mut rng = StdRng::seed_from_u64(7);
        for &(m, k, n) in &[
            (1, 16, 3),
            (3, 37, 70),
            (13, 64, 129),
            (17, 512, 300),
            (64, 5, 9),
        ] {
            let x = random(m * k, &mut rng);
            let w = random(n * k, &mut rng);
            let mut got = vec![f32::NAN; m * n];
            assert!(run(&x, &w, (m, k, n), &mut got));
            for r in 0..m {
                for c in 0..n {
                    let mut want = [0f32];
                    dot_rows_scalar(
                        &w[c * k..(c + 1) * k],
                        k,
                        &x[r * k..(r + 1) * k],
                        1,
                        &mut want,
                    );
                    let bound = 1e-5 * (k as f32).sqrt() * 4.0;
                    assert!(
                        (got[r * n + c] - want[0]).abs() <= bound,
                        "m {m} k {k} n {n} at ({r}, {c}): {} vs {}",
                        got[r * n + c],
                        want[0]
                    );
                }
            }
        }
    }

    #[test]
    fn matmul_equals_candles_matmul_and_declines_what_it_does_not_cover() {
        let mut rng = StdRng::seed_from_u64(11);
        let x = Tensor::from_vec(random(17 * 96, &mut rng), (17, 96), &Device::Cpu).unwrap();
        let w = Tensor::from_vec(random(200 * 96, &mut rng), (200, 96), &Device::Cpu).unwrap();
        let want = x.matmul(&w.t().unwrap()).unwrap();
        match matmul(&x, &w).unwrap() {
            Some(got) => {
                let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap();
                assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
            }
            None => assert!(!available(), "declined although the CPU has AVX-512"),
        }
        // A transposed (non-contiguous) weight, too many rows, or another dtype: not ours.
        let wt = w.t().unwrap().contiguous().unwrap().t().unwrap();
        assert!(matmul(&x, &wt).unwrap().is_none());
        let tall = Tensor::zeros((MAX_ROWS + 1, 96), DType::F32, &Device::Cpu).unwrap();
        assert!(matmul(&tall, &w).unwrap().is_none());
        let half = x.to_dtype(DType::BF16).unwrap();
        assert!(matmul(&half, &w.to_dtype(DType::BF16).unwrap())
            .unwrap()
            .is_none());
        // Mismatched lengths are refused before any pointer arithmetic.
        let mut dst = vec![0f32; 4];
        assert!(!run(&[0.0; 3], &[0.0; 4], (2, 2, 2), &mut dst));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
mod speed {
    use super::*;
    use candle_core::Device;

    /// `cargo test --release -p hone-engine --lib dense_rows_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn dense_rows_speed() {
        for n in [512usize, 4096, 126_464] {
            let (m, k) = (17, 512);
            let reps = 126_464 / n;
            let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            for _ in 0..3 {
                let t = std::time::Instant::now();
                let mut got = None;
                for _ in 0..reps {
                    got = matmul(&x, &w).unwrap();
                }
                let a = t.elapsed();
                let t = std::time::Instant::now();
                let mut want = None;
                for _ in 0..reps {
                    want = Some(x.matmul(&w.t().unwrap()).unwrap());
                }
                let b = t.elapsed();
                // The timings are only printed; the products must still agree.
                let got = got.expect("the benchmark needs AVX-512");
                let diff = (got - want.unwrap()).unwrap().abs().unwrap();
                assert!(diff.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-3);
                let flop = 2.0 * (m * k * n * reps) as f64;
                eprintln!(
                    "n {n}: rows {:.1} ms ({:.1} GFLOP/s), candle {:.1} ms ({:.1} GFLOP/s)",
                    a.as_secs_f64() * 1e3,
                    flop / a.as_secs_f64() / 1e9,
                    b.as_secs_f64() * 1e3,
                    flop / b.as_secs_f64() / 1e9
                );
            }
        }
    }
}
