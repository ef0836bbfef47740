//! The micro-kernel both integer layers share: rows of activations against panels of 64
//! packed weight columns, in groups of 4 bytes per row and column (4 u8×i8 products for
//! [`crate::int8`], 2 i16×i16 products for [`crate::int16`]), summed into i32 lanes by one
//! VNNI instruction per register (`vpdpbusd` or `vpdpwssd`).
//!
//! Packed layout (the layers write it): per panel of [`PANEL`] columns, per group of 4 bytes
//! of input, the panel's columns each with their 4 bytes.

/// Columns in one packed block: one 512-bit register of i32 sums.
pub(crate) const LANES: usize = 16;
/// Registers of columns a micro-kernel keeps (a panel of 64 columns).
pub(crate) const PANEL_REGS: usize = 4;
pub const PANEL: usize = LANES * PANEL_REGS;
/// Rows a micro-kernel keeps (6 × 4 accumulators of the 32 registers).
pub(crate) const ROWS: usize = 6;

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::product;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, PANEL, PANEL_REGS, ROWS};
    use std::arch::x86_64::*;

    /// `sums[m, n_out] = a[m, row_bytes] · W`, `W` packed as the module says; `WIDE` picks
    /// i16×i16 pairs (`vpdpwssd`) over u8×i8 quadruples (`vpdpbusd`).
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn product<const WIDE: bool>(
        a: &[u8],
        m: usize,
        row_bytes: usize,
        packed: &[u8],
        n_out: usize,
        sums: &mut [i32],
    ) {
        let panel_bytes = row_bytes * PANEL;
        for (panel, weights) in packed.chunks_exact(panel_bytes).enumerate() {
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(ROWS);
                let at = (a, r, row_bytes);
                let to = (&mut *sums, n_out, panel);
                // SAFETY: the slices hold `rows` rows from `r` and the panel's weights.
                unsafe {
                    match rows {
                        6 => block::<6, WIDE>(at, weights, to),
                        5 => block::<5, WIDE>(at, weights, to),
                        4 => block::<4, WIDE>(at, weights, to),
                        3 => block::<3, WIDE>(at, weights, to),
                        2 => block::<2, WIDE>(at, weights, to),
                        _ => block::<1, WIDE>(at, weights, to),
                    }
                }
                r += rows;
            }
        }
    }

    /// `R` rows from `r` against one panel of 64 columns.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    unsafe fn block<const R: usize, const WIDE: bool>(
        (a, r, row_bytes): (&[u8], usize, usize),
        weights: &[u8],
        (sums, n_out, panel): (&mut [i32], usize, usize),
    ) {
        assert!(a.len() >= (r + R) * row_bytes && weights.len() == row_bytes * PANEL);
        assert!(sums.len() >= (r + R - 1) * n_out + (panel + 1) * PANEL);
        let mut acc = [[_mm512_setzero_si512(); PANEL_REGS]; R];
        let a = a.as_ptr();
        let w = weights.as_ptr();
        for group in 0..row_bytes / 4 {
            // SAFETY: `group · 4 · PANEL + 64 · PANEL_REGS ≤ weights.len()` and each row's 4
            // bytes lie inside `a` (asserted above).
            unsafe {
                let b = w.add(group * 4 * PANEL);
                let regs = [
                    _mm512_loadu_si512(b as *const _),
                    _mm512_loadu_si512(b.add(64) as *const _),
                    _mm512_loadu_si512(b.add(128) as *const _),
                    _mm512_loadu_si512(b.add(192) as *const _),
                ];
                for (i, acc) in acc.iter_mut().enumerate() {
                    let four =
                        (a.add((r + i) * row_bytes + group * 4) as *const i32).read_unaligned();
                    let broadcast = _mm512_set1_epi32(four);
                    for j in 0..PANEL_REGS {
                        acc[j] = if WIDE {
                            _mm512_dpwssd_epi32(acc[j], broadcast, regs[j])
                        } else {
                            _mm512_dpbusd_epi32(acc[j], broadcast, regs[j])
                        };
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
