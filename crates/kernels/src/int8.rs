//! Linear layers in 8-bit integers: weights int8 with one scale per output column,
//! activations quantised per row to u8 with their own step and zero point, products summed in
//! i32. CLIP's blocks (`aqiqat-visual`) and GE2E's LSTM (`aqiqat-models`) run on them.
//!
//! Per-row (not per-tensor) activation scales, and a row's few outlying values kept in f32
//! ([`OUTLIERS`], [`OUTLIER_RATIO`]), are what hold the result to the f32 path: CLIP's tokens
//! carry a few channels tens of times larger than the rest, which would otherwise take most of
//! the 256 levels.
//!
//! The integer product runs on AVX-512 VNNI (`vpdpbusd`: 64 u8×i8 products summed into 16
//! i32 lanes per instruction) where the CPU has it, else on a portable loop; both give the
//! same integers, which a test holds.

/// Values per row kept in f32 beside the quantised rest, at most.
pub const OUTLIERS: usize = 8;
/// A value is kept in f32 when its magnitude is above this many times its row's mean
/// magnitude.
pub const OUTLIER_RATIO: f32 = 6.0;

use crate::vnni::PANEL;

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

    pub fn n_in(&self) -> usize {
        self.n_in
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

    /// The layer from f32 weights row-major `[n_in, n_out]`, each column quantised
    /// symmetrically to int8 with its own scale (its largest magnitude maps to 127).
    pub fn from_f32(n_in: usize, n_out: usize, weights: &[f32], bias: Vec<f32>) -> Self {
        assert_eq!(weights.len(), n_in * n_out);
        let mut scale = vec![0f32; n_out];
        for row in weights.chunks_exact(n_out) {
            for (s, &w) in scale.iter_mut().zip(row) {
                *s = s.max(w.abs());
            }
        }
        for s in &mut scale {
            *s = (*s / 127.0).max(f32::MIN_POSITIVE);
        }
        let quantised = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (w / scale[i % n_out]).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Self::new(n_in, n_out, quantised, scale, bias)
    }

    /// `x` is `[m, n_in]` row-major; returns `[m, n_out]`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; x.len() / self.n_in * self.n_out];
        self.forward_into(x, &mut y, &mut Scratch::default());
        y
    }

    /// `dst = x·W + b`, `x` `[m, n_in]` and `dst` `[m, n_out]` row-major; `scratch` is reused
    /// between calls, so that a network's layers allocate nothing per call.
    pub fn forward_into(&self, x: &[f32], dst: &mut [f32], scratch: &mut Scratch) {
        for row in dst.chunks_exact_mut(self.n_out) {
            row.copy_from_slice(&self.bias);
        }
        self.add_product(x, dst, self.n_out, scratch);
    }

    /// `dst[r] += x[r]·W` for every row `r` of `x` (`[m, n_in]` row-major), without the bias;
    /// `dst`'s rows `dst_stride` apart.
    fn add_product(&self, x: &[f32], dst: &mut [f32], dst_stride: usize, scratch: &mut Scratch) {
        let m = crate::rows_checked(x.len(), (self.n_in, self.n_out), dst.len(), dst_stride);
        #[cfg(target_arch = "x86_64")]
        if crate::has_avx512() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { self.add_product_avx512(x, m, dst, dst_stride, scratch) };
        }
        self.add_product_portable(x, m, dst, dst_stride, scratch)
    }

    /// The quantisation and the rows' final sums compiled for AVX-512 (the same code).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn add_product_avx512(
        &self,
        x: &[f32],
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch,
    ) {
        self.add_product_portable(x, m, dst, dst_stride, scratch)
    }

    #[inline(always)]
    fn add_product_portable(
        &self,
        x: &[f32],
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            q,
            rows,
            rest,
            sums,
            kept,
        } = scratch;
        q.resize(m * self.n_in, 0);
        rest.resize(self.n_in, 0.0);
        sums.resize(m * self.n_out, 0);
        kept.resize(self.n_out, 0.0);
        rows.clear();
        // A plain loop, so that the row's code is compiled into the caller's features.
        for (x, q) in x.chunks_exact(self.n_in).zip(q.chunks_exact_mut(self.n_in)) {
            rows.push(quantise_row(x, q, rest));
        }
        integer_product(q, m, self.n_in, &self.packed, self.n_out, sums);
        for (r, row) in rows.iter().enumerate() {
            let out = &mut dst[r * dst_stride..r * dst_stride + self.n_out];
            let sums = &sums[r * self.n_out..(r + 1) * self.n_out];
            // The kept values' products, in f32 with the unscaled weights, then one scale.
            kept.fill(0.0);
            for &(k, v) in &row.outliers[..row.count] {
                let weights = &self.rows[k * self.n_out..(k + 1) * self.n_out];
                for (acc, &w) in kept.iter_mut().zip(weights) {
                    *acc += v * f32::from(w);
                }
            }
            for (((out, &sum), &column_sum), (&kept, &scale)) in out
                .iter_mut()
                .zip(sums)
                .zip(&self.column_sums)
                .zip(kept.iter().zip(&self.scale))
            {
                let integer = (sum - row.zero * column_sum) as f32 * row.step;
                *out += (integer + kept) * scale;
            }
        }
    }
}

/// Buffers a [`QuantLinear::forward_into`] call works in, kept between calls.
#[derive(Default)]
pub struct Scratch {
    q: Vec<u8>,
    rows: Vec<QuantRow>,
    rest: Vec<f32>,
    sums: Vec<i32>,
    kept: Vec<f32>,
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
    for (qk, &v) in q.iter_mut().zip(rest.iter()) {
        *qk = to_level(v * inverse + zero + 0.5);
    }
    QuantRow {
        step,
        zero: zero as i32,
        outliers,
        count,
    }
}

/// `t as u8` (truncation, saturating at 0 and 255), in a form that vectorises: the cast itself
/// keeps the loop scalar. Adding 0.5 before it rounds the non-negative levels; the arithmetic is
/// the one the CLIP head's features were computed with, to the bit (a test holds it).
#[inline(always)]
fn to_level(t: f32) -> u8 {
    crate::nearest_int(t.trunc()).clamp(0, 255) as u8
}

/// `sums[m, n_out] = q[m, n_in] · W`, with `W` packed as [`QuantLinear::packed`].
fn integer_product(q: &[u8], m: usize, n_in: usize, packed: &[i8], n_out: usize, sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { crate::vnni::product::<false>(q, m, n_in, bytes_of(packed), n_out, sums) };
        return;
    }
    portable_product(q, m, n_in, packed, n_out, sums);
}

/// The int8 weights as the bytes the kernel reads.
fn bytes_of(packed: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(packed.as_ptr().cast(), packed.len()) }
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
    fn levels_are_the_saturating_cast_to_the_bit() {
        let mut t = -3.0f32;
        while t < 259.0 {
            assert_eq!(to_level(t), t as u8, "{t}");
            // Every f32 near the half-integers, and a coarse walk elsewhere.
            let near_half = (t - t.floor() - 0.5).abs() < 1e-3;
            t = if near_half { t.next_up() } else { t + 1e-3 };
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
