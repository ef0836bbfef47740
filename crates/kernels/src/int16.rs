//! Linear layers in 16-bit integers, for networks whose errors compound: an LSTM feeds each
//! step's rounding into the next 160 steps, and GE2E's voiceprints drift to a cosine of 0.997
//! from the f32 path on 8-bit weights (measured on the reference clips), where 13-bit weights
//! keep them above 0.99999.
//!
//! Weights are stored with [`WEIGHT_LEVELS`] levels each side of zero and one scale per output
//! column; activations are quantised per row, symmetrically, to as many levels as keep every
//! i32 sum from overflowing ([`Linear16::activation_levels`]). Products run on AVX-512 VNNI
//! (`vpdpwssd`: 32 i16×i16 products summed into 16 i32 lanes per instruction, half the rate of
//! the 8-bit layers and twice that of f32 FMA on the same registers) where the CPU has it, else
//! on a portable loop that gives the same integers.

use crate::vnni::PANEL;

/// Levels each side of zero a weight is quantised to (13 bits with the sign). Measured on GE2E
/// (weights 1023 / 2047 / 4095 / 8191, activations taking what the i32 sums leave): the largest
/// change in a smoke-set similarity was 2.2e-3 / 1.4e-3 / 1.0e-3 / 1.2e-3.
pub const WEIGHT_LEVELS: i32 = 4095;

/// A linear layer `y = x·W + b` with `W` stored as i16 times a per-column scale.
pub struct Linear16 {
    n_in: usize,
    n_out: usize,
    bias: Vec<f32>,
    /// `W` packed for the kernels: per panel of [`PANEL`] columns, per pair of inputs, the
    /// panel's columns each with their 2 inputs' values.
    packed: Vec<i16>,
    scale: Vec<f32>,
    levels: f32,
}

/// Buffers a [`Linear16::forward_into`] call works in, kept between calls.
#[derive(Default)]
pub struct Scratch16 {
    q: Vec<i16>,
    steps: Vec<f32>,
    sums: Vec<i32>,
}

impl Linear16 {
    /// The layer from f32 weights row-major `[n_in, n_out]`; `n_in` even, `n_out` a multiple
    /// of 64.
    pub fn from_f32(n_in: usize, n_out: usize, weights: &[f32], bias: Vec<f32>) -> Self {
        assert_eq!(weights.len(), n_in * n_out);
        assert_eq!(bias.len(), n_out);
        assert!(
            n_in.is_multiple_of(2) && n_out.is_multiple_of(PANEL) && n_in > 0,
            "{n_in}×{n_out}"
        );
        let mut scale = vec![0f32; n_out];
        for row in weights.chunks_exact(n_out) {
            for (s, &w) in scale.iter_mut().zip(row) {
                *s = s.max(w.abs());
            }
        }
        for s in &mut scale {
            *s = (*s / WEIGHT_LEVELS as f32).max(f32::MIN_POSITIVE);
        }
        let level = |k: usize, c: usize| {
            (weights[k * n_out + c] / scale[c])
                .round()
                .clamp(-WEIGHT_LEVELS as f32, WEIGHT_LEVELS as f32) as i16
        };
        let mut packed = Vec::with_capacity(n_in * n_out);
        for panel in 0..n_out / PANEL {
            for pair in 0..n_in / 2 {
                for column in panel * PANEL..(panel + 1) * PANEL {
                    packed.push(level(2 * pair, column));
                    packed.push(level(2 * pair + 1, column));
                }
            }
        }
        Self {
            n_in,
            n_out,
            bias,
            packed,
            scale,
            levels: Self::activation_levels(n_in) as f32,
        }
    }

    /// Levels each side of zero an activation gets with `n_in` inputs: the most that keep
    /// `n_in · levels · WEIGHT_LEVELS` (the largest sum) inside an i32, at most 32767.
    pub fn activation_levels(n_in: usize) -> i32 {
        let most = i32::MAX as i64 / (WEIGHT_LEVELS as i64 * n_in as i64);
        most.min(i16::MAX as i64) as i32
    }

    /// `W` in f32 `[in, out]` as the layer holds it.
    pub fn dequantised(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.n_in * self.n_out];
        let per_panel = self.n_in * PANEL;
        for (panel, values) in self.packed.chunks_exact(per_panel).enumerate() {
            for (i, &v) in values.iter().enumerate() {
                let (pair, within) = (i / (2 * PANEL), i % (2 * PANEL));
                let (column, k) = (panel * PANEL + within / 2, 2 * pair + within % 2);
                w[k * self.n_out + column] = f32::from(v) * self.scale[column];
            }
        }
        w
    }

    /// `dst[r] = x[r]·W + b` for every row `r` of `x` (`[m, n_in]` row-major); `dst`'s rows
    /// `dst_stride` apart, and the columns past `n_out` left alone. `scratch` is reused between
    /// calls, so that a loop of small products (an LSTM's steps) allocates nothing.
    pub fn forward_into(
        &self,
        x: &[f32],
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch16,
    ) {
        self.dispatch::<false>(x, dst, dst_stride, scratch)
    }

    /// `dst[r] += x[r]·W`, without the bias: a second input's share of the same outputs,
    /// quantised on its own scale.
    pub fn add_into(&self, x: &[f32], dst: &mut [f32], dst_stride: usize, scratch: &mut Scratch16) {
        self.dispatch::<true>(x, dst, dst_stride, scratch)
    }

    fn dispatch<const ADD: bool>(
        &self,
        x: &[f32],
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch16,
    ) {
        let m = crate::rows_checked(x.len(), (self.n_in, self.n_out), dst.len(), dst_stride);
        #[cfg(target_arch = "x86_64")]
        if crate::has_avx512() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { self.product_avx512::<ADD>(x, m, dst, dst_stride, scratch) };
        }
        self.product_portable::<ADD>(x, m, dst, dst_stride, scratch)
    }

    /// The quantisation and the rows' final sums compiled for AVX-512 (the same code).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    unsafe fn product_avx512<const ADD: bool>(
        &self,
        x: &[f32],
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch16,
    ) {
        self.product_portable::<ADD>(x, m, dst, dst_stride, scratch)
    }

    #[inline(always)]
    fn product_portable<const ADD: bool>(
        &self,
        x: &[f32],
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        scratch: &mut Scratch16,
    ) {
        let Scratch16 { q, steps, sums } = scratch;
        q.resize(m * self.n_in, 0);
        sums.resize(m * self.n_out, 0);
        steps.clear();
        for (x, q) in x.chunks_exact(self.n_in).zip(q.chunks_exact_mut(self.n_in)) {
            let largest = largest_magnitude(x);
            let inverse = if largest > 0.0 {
                self.levels / largest
            } else {
                0.0
            };
            for (q, &v) in q.iter_mut().zip(x) {
                *q = crate::nearest_int(v * inverse) as i16;
            }
            steps.push(largest / self.levels);
        }
        integer_product(q, m, self.n_in, &self.packed, self.n_out, sums);
        for (r, &step) in steps.iter().enumerate() {
            let out = &mut dst[r * dst_stride..r * dst_stride + self.n_out];
            let sums = &sums[r * self.n_out..(r + 1) * self.n_out];
            for ((out, &sum), (&scale, &bias)) in out
                .iter_mut()
                .zip(sums)
                .zip(self.scale.iter().zip(&self.bias))
            {
                let base = if ADD { *out } else { bias };
                *out = (sum as f32 * step).mul_add(scale, base);
            }
        }
    }
}

/// The largest |x| of a row, in sixteen running lanes so that the loop vectorises (`f32::max`
/// keeps NaN rules that stop the compiler from doing so).
#[inline(always)]
fn largest_magnitude(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let blocks = x.chunks_exact(16);
    let tail = blocks.remainder();
    for block in blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            let v = v.abs();
            *lane = if v > *lane { v } else { *lane };
        }
    }
    lanes
        .iter()
        .chain(tail)
        .fold(0f32, |a, &v| if v.abs() > a { v.abs() } else { a })
}

/// `sums[m, n_out] = q[m, n_in] · W`, with `W` packed as [`Linear16::packed`].
fn integer_product(
    q: &[i16],
    m: usize,
    n_in: usize,
    packed: &[i16],
    n_out: usize,
    sums: &mut [i32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        // SAFETY: the CPU has the features the function is compiled for; the byte views
        // cover exactly the i16 slices.
        unsafe {
            let bytes =
                |v: &[i16]| std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 2 * v.len());
            crate::vnni::product::<true>(bytes(q), m, 2 * n_in, bytes(packed), n_out, sums)
        };
        return;
    }
    portable_product(q, m, n_in, packed, n_out, sums);
}

/// The same product in plain Rust, for CPUs without VNNI.
fn portable_product(
    q: &[i16],
    m: usize,
    n_in: usize,
    packed: &[i16],
    n_out: usize,
    sums: &mut [i32],
) {
    for r in 0..m {
        let row = &q[r * n_in..(r + 1) * n_in];
        for (panel, weights) in packed.chunks_exact(n_in * PANEL).enumerate() {
            let mut acc = [0i32; PANEL];
            for (pair, block) in weights.chunks_exact(2 * PANEL).enumerate() {
                let (a0, a1) = (i32::from(row[2 * pair]), i32::from(row[2 * pair + 1]));
                for (c, w) in block.chunks_exact(2).enumerate() {
                    acc[c] += a0 * i32::from(w[0]) + a1 * i32::from(w[1]);
                }
            }
            sums[r * n_out + panel * PANEL..r * n_out + (panel + 1) * PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(n_in: usize, n_out: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n_in * n_out)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20_001) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn the_kernels_give_the_same_integers_at_the_largest_sums() {
        let (n_in, n_out) = (512, 128);
        let layer = Linear16::from_f32(n_in, n_out, &weights(n_in, n_out, 3), vec![0.0; n_out]);
        let levels = Linear16::activation_levels(n_in) as i16;
        // Rows of the extreme levels: the sums reach the bound the levels are chosen for.
        for m in [1usize, 6, 7, 13] {
            let q: Vec<i16> = (0..m * n_in)
                .map(|i| match i % 3 {
                    0 => levels,
                    1 => -levels,
                    _ => (i % 97) as i16 - 48,
                })
                .collect();
            let mut portable = vec![0i32; m * n_out];
            portable_product(&q, m, n_in, &layer.packed, n_out, &mut portable);
            let mut dispatched = vec![0i32; m * n_out];
            integer_product(&q, m, n_in, &layer.packed, n_out, &mut dispatched);
            assert_eq!(dispatched, portable, "{m} rows");
            // Against the plain definition in i64 on the unpacked levels.
            let w = layer.dequantised();
            for r in 0..m {
                for n in 0..n_out {
                    let expected: i64 = (0..n_in)
                        .map(|k| {
                            let level = (w[k * n_out + n] / layer.scale[n]).round() as i64;
                            i64::from(q[r * n_in + k]) * level
                        })
                        .sum();
                    assert_eq!(i64::from(portable[r * n_out + n]), expected, "{r},{n}");
                }
            }
        }
    }

    #[test]
    fn products_stay_within_the_rounding_bound_of_f32() {
        let (n_in, n_out) = (256, 64);
        let dense = weights(n_in, n_out, 5);
        let bias: Vec<f32> = (0..n_out).map(|n| n as f32 * 0.01 - 0.3).collect();
        let layer = Linear16::from_f32(n_in, n_out, &dense, bias.clone());
        let x: Vec<f32> = (0..3 * n_in)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.7)
            .collect();
        let mut got = vec![0.5f32; 3 * 70];
        layer.forward_into(&x, &mut got, 70, &mut Scratch16::default());
        for r in 0..3 {
            let row = &x[r * n_in..(r + 1) * n_in];
            let step = row.iter().fold(0f32, |a, v| a.max(v.abs())) / layer.levels;
            for n in 0..n_out {
                let terms = (0..n_in).map(|k| (row[k], dense[k * n_out + n]));
                let expected: f32 = bias[n] + terms.clone().map(|(x, w)| x * w).sum::<f32>();
                // Each product is off by at most |x|·(half a weight step) + |w|·(half an
                // activation step), plus their product, plus f32's own rounding.
                let (wstep, bound) = (layer.scale[n], 1e-5f32);
                let bound = bound
                    + terms
                        .map(|(x, w)| {
                            x.abs() * wstep / 2.0 + w.abs() * step / 2.0 + wstep * step / 4.0
                        })
                        .sum::<f32>();
                let error = (got[r * 70 + n] - expected).abs();
                assert!(
                    error <= bound,
                    "{r},{n}: {} vs {expected}, bound {bound}",
                    got[r * 70 + n]
                );
                // And the bound itself is small: under 2 % of the terms' total size.
                let size: f32 = (0..n_in)
                    .map(|k| (row[k] * dense[k * n_out + n]).abs())
                    .sum();
                assert!(bound < 0.02 * size, "{r},{n}: bound {bound} of {size}");
            }
            // A second input's share adds the same product again, without the bias.
            let mut twice = got.clone();
            layer.add_into(row, &mut twice[r * 70..], 70, &mut Scratch16::default());
            for n in 0..n_out {
                let (once, again) = (got[r * 70 + n], twice[r * 70 + n]);
                assert!((again - (2.0 * once - bias[n])).abs() < 1e-5 * again.abs().max(1.0));
            }
            // Columns past n_out are left alone.
            assert!(got[r * 70 + n_out..(r + 1) * 70].iter().all(|&v| v == 0.5));
        }
        // An all-zero row gives the bias.
        let mut zero = vec![1f32; n_out];
        layer.forward_into(
            &vec![0.0; n_in],
            &mut zero,
            n_out,
            &mut Scratch16::default(),
        );
        assert_eq!(zero, bias);
    }
}
