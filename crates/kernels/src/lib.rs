//! # aqiqat-kernels
//!
//! The arithmetic aqiqat's networks spend their time in, written for the CPUs the scans run
//! on: linear layers in 8-bit integers (`int8`), whose products run on AVX-512 VNNI where the
//! CPU has it and on a portable loop that gives the same integers where it does not; and the gates' sigmoid
//! and tanh in a form the compiler vectorises (`activation`); and f32 products of blocks read in
//! place through strides, with their bounds checked (`matmul`).
//!
//! **Owns:** quantisation of weights and activations, the packed weight layout and the integer
//! micro-kernels, and the tests that hold each kernel to the plain definition.
//! **Must not touch:** any model's structure or weights files (`aqiqat-models`,
//! `aqiqat-visual` build their layers from these parts), decoding, verdicts.

pub mod activation;
pub mod int16;
pub mod int8;
pub mod matmul;
mod vnni;

/// Whether the CPU runs the AVX-512 builds of the layers' quantisation and sums.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// The rows of a product's input of `x_len` values for a layer of `n_in` → `n_out`, after
/// checking that the input is whole rows and that the output rows, `dst_stride` apart, fit in
/// `dst_len`.
pub(crate) fn rows_checked(
    x_len: usize,
    (n_in, n_out): (usize, usize),
    dst_len: usize,
    dst_stride: usize,
) -> usize {
    let m = x_len / n_in;
    assert_eq!(m * n_in, x_len, "input of whole rows");
    assert!(n_out <= dst_stride);
    assert!(
        m == 0 || dst_len >= (m - 1) * dst_stride + n_out,
        "dst too small"
    );
    m
}

/// `x` rounded to the nearest integer (ties to even), for |x| < 2^22.
///
/// Adding 1.5·2^23 leaves the integer in the low mantissa bits. Unlike Rust's saturating `as`
/// casts, which keep loops over slices from vectorising, this is two vector instructions.
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    const ROUNDER: f32 = 12_582_912.0;
    ((x + ROUNDER).to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_int_rounds_like_round_ties_even() {
        for i in -4_000_000..=4_000_000 {
            let x = i as f32 * 0.37;
            assert_eq!(super::nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
        for x in [0.5f32, 1.5, 2.5, -0.5, -1.5, 4_194_303.0, -4_194_303.0] {
            assert_eq!(super::nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }
}
