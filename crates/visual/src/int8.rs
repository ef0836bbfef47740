//! Linear layers in 8-bit integers, for the CLIP encoder: weights int8 with one scale per
//! output column (as converted), activations quantised per row to u8 with their own scale
//! and zero point, products summed in i32.
//!
//! Per-row (not per-tensor) activation scales, and a row's few outlying values kept in f32
//! ([`OUTLIERS`], [`OUTLIER_RATIO`]), are what hold the result to the f32 path: CLIP's tokens carry a few channels tens
//! of times larger than the rest, which would otherwise take most of the 256 levels.
//!
//! The integer product runs on AVX-512 VNNI (`vpdpbusd`: 64 u8×i8 products summed into 16
//! i32 lanes per instruction) where the CPU has it, else on a portable loop; both give the
//! same integers, which a test holds.

/// Values per row kept in f32 beside the quantised rest, at most.
pub const OUTLIERS: usize = 8;
/// A value is kept in f32 when its magnitude is above this many times its row's mean
/// magnitude.
pub const OUTLIER_RATIO: f32 = 6.0;

/// Columns in one packed block: one 512-bit register of i32 sums.
const LANES: usize = 16;
/// Registers of columns a micro-kernel keeps (a panel of 64 columns).
const PANEL_REGS: usize = 4;
const PANEL: usize = LANES * PANEL_REGS;
/// Rows a micro-kernel keeps (6 × 4 accumulators of the 32 registers).
const ROWS: usize = 6;

/// A linear layer `y = x·W + b` with `W` int8 `[in, out]` times a per-column scale.
pub struct QuantLinear {
    n_in: usize,
    n_out: usize,
    /// `W` as stored, row-major `[in, out]`: the outliers' rows are read from it.
    rows: Vec<i8>,
    /// `W` packed for the kernels: per panel of [`PANEL`] columns, per group of 4 inputs, the
    /// panel's columns each with its 4 inputs' bytes.
    packed: Vec<i8>,
    /// Σ over inputs of each column, for the zero point.
    column_sums: Vec<i32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
}

/// One row of activations in u8: `x ≈ (q − zero) · step` for the values not kept apart.
struct QuantRow {
    step: f32,
    zero: i32,
    /// Inputs kept in f32: index and value, the first `count`.
    outliers: [(usize, f32); OUTLIERS],
    count: usize,
}

impl QuantLinear {
    /// `weights` row-major `[n_in, n_out]`; `n_in` a multiple of 4, `n_out` of [`PANEL`].
    pub fn new(
        n_in: usize,
        n_out: usize,
        weights: Vec<i8>,
        scale: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        assert_eq!(weights.len(), n_in * n_out);
        assert!(
            n_in.is_multiple_of(4) && n_out.is_multiple_of(PANEL),
            "{n_in}×{n_out}"
        );
        assert!(n_in > OUTLIERS);
        assert_eq!((scale.len(), bias.len()), (n_out, n_out));
        let mut packed = Vec::with_capacity(n_in * n_out);
        for panel in 0..n_out / PANEL {
            for group in 0..n_in / 4 {
                for column in panel * PANEL..(panel + 1) * PANEL {
                    for k in group * 4..group * 4 + 4 {
                        packed.push(weights[k * n_out + column]);
                    }
                }
            }
        }
        let mut column_sums = vec![0i32; n_out];
        for row in weights.chunks_exact(n_out) {
            for (sum, &w) in column_sums.iter_mut().zip(row) {
                *sum += i32::from(w);
            }
        }
        Self {
            n_in,
            n_out,
            rows: weights,
            packed,
            column_sums,
            scale,
            bias,
        }
    }

    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// `W` in f32 `[in, out]`: each weight times its column's scale.
    pub fn dequantised(&self) -> Vec<f32> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, &w)| f32::from(w) * self.scale[i % self.n_out])
            .collect()
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// `x` is `[m, n_in]` row-major; returns `[m, n_out]`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { self.forward_avx512(x) };
        }
        self.forward_portable(x)
    }

    /// The quantisation and the rows' final sums compiled for AVX-512 (the same code).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn forward_avx512(&self, x: &[f32]) -> Vec<f32> {
        self.forward_portable(x)
    }

    #[inline(always)]
    fn forward_portable(&self, x: &[f32]) -> Vec<f32> {
        let m = x.len() / self.n_in;
        assert_eq!(m * self.n_in, x.len());
        let mut q = vec![0u8; m * self.n_in];
        // A plain loop, so that the row's code is compiled into the caller's features.
        let mut rows: Vec<QuantRow> = Vec::with_capacity(m);
        let mut rest = vec![0f32; self.n_in];
        for (x, q) in x.chunks_exact(self.n_in).zip(q.chunks_exact_mut(self.n_in)) {
            rows.push(quantise_row(x, q, &mut rest));
        }
        let mut sums = vec![0i32; m * self.n_out];
        integer_product(&q, m, self.n_in, &self.packed, self.n_out, &mut sums);
        let mut y = vec![0f32; m * self.n_out];
        let mut kept = vec![0f32; self.n_out];
        for (r, row) in rows.iter().enumerate() {
            let out = &mut y[r * self.n_out..(r + 1) * self.n_out];
            let sums = &sums[r * self.n_out..(r + 1) * self.n_out];
            // The kept values' products, in f32 with the unscaled weights, then one scale.
            kept.fill(0.0);
            for &(k, v) in &row.outliers[..row.count] {
                let weights = &self.rows[k * self.n_out..(k + 1) * self.n_out];
                for (acc, &w) in kept.iter_mut().zip(weights) {
                    *acc += v * f32::from(w);
                }
            }
            for ((((out, &sum), &column_sum), &kept), (&scale, &bias)) in out
                .iter_mut()
                .zip(sums)
                .zip(&self.column_sums)
                .zip(&kept)
                .zip(self.scale.iter().zip(&self.bias))
            {
                let integer = (sum - row.zero * column_sum) as f32 * row.step;
                *out = (integer + kept) * scale + bias;
            }
        }
        y
    }
}

/// Quantises one row into `q`, keeping apart its values larger than [`OUTLIER_RATIO`] times
/// the row's mean magnitude (at most [`OUTLIERS`] of them, the largest): their `q` is the zero
/// point, so that they add nothing to the integer product.
#[inline(always)]
fn quantise_row(x: &[f32], q: &mut [u8], rest: &mut [f32]) -> QuantRow {
    // Sixteen running sums, one per lane, so that the loop vectorises.
    let mut sums = [0f32; 16];
    let blocks = x.chunks_exact(16);
    let tail: f32 = blocks.remainder().iter().map(|v| v.abs()).sum();
    for block in blocks {
        for i in 0..16 {
            sums[i] += block[i].abs();
        }
    }
    let floor = OUTLIER_RATIO * (sums.iter().sum::<f32>() + tail) / x.len() as f32;
    let mut outliers = [(0usize, 0f32); OUTLIERS];
    let mut count = 0;
    for (block, values) in x.chunks(16).enumerate() {
        // An OR over the block: it vectorises, and most blocks hold no outlier.
        let mut any = false;
        for &v in values {
            any |= v.abs() > floor;
        }
        if !any {
            continue;
        }
        for (i, &v) in values.iter().enumerate() {
            if v.abs() <= floor {
                continue;
            }
            if count < OUTLIERS {
                outliers[count] = (block * 16 + i, v);
                count += 1;
            } else {
                // Full: replace the smallest kept value if this one is larger.
                let (smallest, _) = outliers
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.1.abs().total_cmp(&b.1.1.abs()))
                    .expect("OUTLIERS > 0");
                if v.abs() > outliers[smallest].1.abs() {
                    outliers[smallest] = (block * 16 + i, v);
                }
            }
        }
    }
    // The rest, with the kept values set to 0 (which the range always holds, and which
    // quantises to the zero point).
    rest.copy_from_slice(x);
    for &(k, _) in &outliers[..count] {
        rest[k] = 0.0;
    }
    // Sixteen running extremes, one per lane, so that the loop vectorises.
    let (mut los, mut his) = ([0f32; 16], [0f32; 16]);
    let blocks = rest.chunks_exact(16);
    let tail = blocks.remainder();
    for block in blocks {
        for i in 0..16 {
            los[i] = if block[i] < los[i] { block[i] } else { los[i] };
            his[i] = if block[i] > his[i] { block[i] } else { his[i] };
        }
    }
    let (mut lo, mut hi) = (0f32, 0f32);
    for &v in los.iter().chain(his.iter()).chain(tail) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let step = ((hi - lo) / 255.0).max(f32::MIN_POSITIVE);
    let inverse = 1.0 / step;
    let zero = (-lo * inverse).round().clamp(0.0, 255.0);
    // Adding 0.5 then truncating rounds these non-negative values.
    for (qk, &v) in q.iter_mut().zip(rest.iter()) {
        *qk = (v * inverse + zero + 0.5) as u8;
    }
    QuantRow {
        step,
        zero: zero as i32,
        outliers,
        count,
    }
}

/// `sums[m, n_out] = q[m, n_in] · W`, with `W` packed as [`QuantLinear::packed`].
fn integer_product(q: &[u8], m: usize, n_in: usize, packed: &[i8], n_out: usize, sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { vnni::product(q, m, n_in, packed, n_out, sums) };
        return;
    }
    portable_product(q, m, n_in, packed, n_out, sums);
}

/// The same product in plain Rust, for CPUs without VNNI.
fn portable_product(
    q: &[u8],
    m: usize,
    n_in: usize,
    packed: &[i8],
    n_out: usize,
    sums: &mut [i32],
) {
    let panel_bytes = n_in * PANEL;
    for r in 0..m {
        let row = &q[r * n_in..(r + 1) * n_in];
        for (panel, weights) in packed.chunks_exact(panel_bytes).enumerate() {
            let mut acc = [0i32; PANEL];
            for (group, block) in weights.chunks_exact(4 * PANEL).enumerate() {
                let a = &row[group * 4..group * 4 + 4];
                for (c, w) in block.chunks_exact(4).enumerate() {
                    acc[c] += i32::from(a[0]) * i32::from(w[0])
                        + i32::from(a[1]) * i32::from(w[1])
                        + i32::from(a[2]) * i32::from(w[2])
                        + i32::from(a[3]) * i32::from(w[3]);
                }
            }
            sums[r * n_out + panel * PANEL..r * n_out + (panel + 1) * PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{LANES, PANEL, PANEL_REGS, ROWS};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn product(
        q: &[u8],
        m: usize,
        n_in: usize,
        packed: &[i8],
        n_out: usize,
        sums: &mut [i32],
    ) {
        let panel_bytes = n_in * PANEL;
        for (panel, weights) in packed.chunks_exact(panel_bytes).enumerate() {
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(ROWS);
                // SAFETY: the slices hold `rows` rows from `r` and the panel's weights.
                unsafe {
                    match rows {
                        6 => block::<6>(q, r, n_in, weights, n_out, panel, sums),
                        5 => block::<5>(q, r, n_in, weights, n_out, panel, sums),
                        4 => block::<4>(q, r, n_in, weights, n_out, panel, sums),
                        3 => block::<3>(q, r, n_in, weights, n_out, panel, sums),
                        2 => block::<2>(q, r, n_in, weights, n_out, panel, sums),
                        _ => block::<1>(q, r, n_in, weights, n_out, panel, sums),
                    }
                }
                r += rows;
            }
        }
    }

    /// `R` rows from `r` against one panel of 64 columns.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn block<const R: usize>(
        q: &[u8],
        r: usize,
        n_in: usize,
        weights: &[i8],
        n_out: usize,
        panel: usize,
        sums: &mut [i32],
    ) {
        assert!(q.len() >= (r + R) * n_in && weights.len() == n_in * PANEL);
        assert!(sums.len() >= (r + R - 1) * n_out + (panel + 1) * PANEL);
        let mut acc = [[_mm512_setzero_si512(); PANEL_REGS]; R];
        let a = q.as_ptr();
        let w = weights.as_ptr();
        for group in 0..n_in / 4 {
            // SAFETY: `group * 4 * PANEL + 64 · PANEL_REGS ≤ weights.len()` and each row's 4
            // bytes lie inside `q` (asserted above).
            unsafe {
                let b = w.add(group * 4 * PANEL);
                let regs = [
                    _mm512_loadu_si512(b as *const _),
                    _mm512_loadu_si512(b.add(64) as *const _),
                    _mm512_loadu_si512(b.add(128) as *const _),
                    _mm512_loadu_si512(b.add(192) as *const _),
                ];
                for (i, acc) in acc.iter_mut().enumerate() {
                    let four = (a.add((r + i) * n_in + group * 4) as *const i32).read_unaligned();
                    let broadcast = _mm512_set1_epi32(four);
                    for j in 0..PANEL_REGS {
                        acc[j] = _mm512_dpbusd_epi32(acc[j], broadcast, regs[j]);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            let at = (r + i) * n_out + panel * PANEL;
            for (j, reg) in acc.iter().enumerate() {
                // SAFETY: `at + 16·(j+1) ≤ sums.len()` (asserted above).
                unsafe {
                    _mm512_storeu_si512(sums.as_mut_ptr().add(at + LANES * j) as *mut _, *reg)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n_in: usize, n_out: usize, seed: u32) -> (QuantLinear, Vec<f32>) {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let weights: Vec<i8> = (0..n_in * n_out).map(|_| (next() % 255) as i8).collect();
        let scale: Vec<f32> = (0..n_out).map(|i| 0.001 + i as f32 * 1e-5).collect();
        let bias: Vec<f32> = (0..n_out).map(|i| (i % 7) as f32 * 0.1).collect();
        let dense: Vec<f32> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| f32::from(w) * scale[i % n_out])
            .collect();
        (QuantLinear::new(n_in, n_out, weights, scale, bias), dense)
    }

    #[test]
    fn the_kernels_give_the_same_integers() {
        let (layer, _) = layer(96, 128, 7);
        for m in [1usize, 5, 6, 13] {
            let q: Vec<u8> = (0..m * 96).map(|i| (i * 37 % 256) as u8).collect();
            let mut portable = vec![0i32; m * 128];
            portable_product(&q, m, 96, &layer.packed, 128, &mut portable);
            // Against the plain definition on the unpacked weights.
            for r in 0..m {
                for n in 0..128 {
                    let expected: i32 = (0..96)
                        .map(|k| i32::from(q[r * 96 + k]) * i32::from(layer.rows[k * 128 + n]))
                        .sum();
                    assert_eq!(portable[r * 128 + n], expected, "row {r} column {n}");
                }
            }
            let mut dispatched = vec![0i32; m * 128];
            integer_product(&q, m, 96, &layer.packed, 128, &mut dispatched);
            assert_eq!(dispatched, portable, "{m} rows");
        }
    }

    #[test]
    fn a_row_with_outliers_stays_close_to_the_f32_product() {
        let (layer, dense) = layer(768, 64, 11);
        // Small values and a few channels 50 times larger, as CLIP's tokens have.
        let x: Vec<f32> = (0..2 * 768)
            .map(|i| {
                let v = ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.5;
                if i % 768 == 17 || i % 768 == 400 {
                    v * 50.0 + 20.0
                } else {
                    v
                }
            })
            .collect();
        let got = layer.forward(&x);
        for r in 0..2 {
            let row = &x[r * 768..(r + 1) * 768];
            let expected: Vec<f32> = (0..64)
                .map(|n| {
                    row.iter()
                        .enumerate()
                        .map(|(k, v)| v * dense[k * 64 + n])
                        .sum::<f32>()
                        + layer.bias[n]
                })
                .collect();
            let got = &got[r * 64..(r + 1) * 64];
            let dot: f64 = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let norm = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            let cosine = dot / norm(got) / norm(&expected);
            assert!(cosine > 0.9999, "row {r}: cosine {cosine}");
        }
    }
}
