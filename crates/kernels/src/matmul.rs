//! Products of f32 matrices read in place through strides, on `gemm`'s kernels.
//!
//! One safe entry point for the networks that multiply f32 blocks they do not own whole (a
//! head's slice of a fused q/k/v buffer, a key read transposed, a gate block inside a wider
//! row): the bounds are checked here once, so the callers keep no `unsafe` of their own.

/// A matrix read in place: element (i, j) at `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// Rows `row_stride` apart, each row's values side by side.
    pub fn rows(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of [`View::rows`]`(data, stride)`: element (i, j) is the stored (j, i).
    pub fn transposed(data: &'a [f32], stride: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: stride,
        }
    }

    /// Panics unless every element of a `rows × cols` block lies inside `data`.
    fn check(&self, rows: usize, cols: usize, name: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
        assert!(last < self.data.len(), "{name} holds no [{rows}, {cols}]");
    }
}

/// `dst[m×n] = scale · a[m×k] · b[k×n]`, added to `dst` when `accumulate`; `dst` row-major
/// with rows `dst_stride` apart. One thread: the caller decides parallelism.
///
/// Panics if a block reaches outside its slice or if `dst`'s rows overlap (`n > dst_stride`).
pub fn product(
    (m, k, n): (usize, usize, usize),
    a: View,
    b: View,
    dst: &mut [f32],
    dst_stride: usize,
    accumulate: bool,
    scale: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    a.check(m, k, "a");
    b.check(k, n, "b");
    assert!(n <= dst_stride, "dst rows overlap");
    View::rows(dst, dst_stride).check(m, n, "dst");
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: every element the product reads or writes lies inside its slice (checked
    // above), the output rows do not overlap, and `dst` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers, so that every sum is exact in f32 and the comparison can be `==`.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 9) as f32 - 4.0)
            .collect()
    }

    fn definition(
        (m, k, n): (usize, usize, usize),
        a: View,
        b: View,
        dst: &mut [f32],
        dst_stride: usize,
        accumulate: bool,
        scale: f32,
    ) {
        for i in 0..m {
            for j in 0..n {
                let sum: f32 = (0..k)
                    .map(|l| {
                        a.data[i * a.row_stride + l * a.col_stride]
                            * b.data[l * b.row_stride + j * b.col_stride]
                    })
                    .sum();
                let out = &mut dst[i * dst_stride + j];
                *out = if accumulate { *out } else { 0.0 } + scale * sum;
            }
        }
    }

    #[test]
    fn strided_and_transposed_products_match_the_definition() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 48, 40), (5, 0, 3)] {
            for accumulate in [false, true] {
                for transposed in [false, true] {
                    // a sits inside wider rows; b is read either way round.
                    let a_data = values(m * (k + 3), 1);
                    let a = View::rows(&a_data, k + 3);
                    let b_data = values(k * n + n * k, 2);
                    let b = if transposed {
                        View::transposed(&b_data, k)
                    } else {
                        View::rows(&b_data, n)
                    };
                    let stride = n + 2;
                    let start = values(m * stride, 3);
                    let (mut got, mut want) = (start.clone(), start);
                    product((m, k, n), a, b, &mut got, stride, accumulate, 0.5);
                    definition((m, k, n), a, b, &mut want, stride, accumulate, 0.5);
                    assert_eq!(got, want, "{m}×{k}×{n} acc {accumulate} t {transposed}");
                }
            }
        }
    }

    /// A 2×3 by 3×2 product with `b` of `b_len` values and output rows `dst_stride` apart.
    fn two_by_three(b_len: usize, dst_stride: usize) {
        let (a, b) = (vec![0.0; 6], vec![0.0; b_len]);
        let mut dst = vec![0.0; 8];
        let (a, b) = (View::rows(&a, 3), View::rows(&b, 2));
        product((2, 3, 2), a, b, &mut dst, dst_stride, false, 1.0);
    }

    #[test]
    fn blocks_that_fit_are_accepted() {
        two_by_three(6, 2);
    }

    #[test]
    #[should_panic(expected = "b holds no")]
    fn a_block_past_its_slice_panics() {
        two_by_three(5, 2);
    }

    #[test]
    #[should_panic(expected = "dst rows overlap")]
    fn overlapping_output_rows_panic() {
        two_by_three(6, 1);
    }
}
