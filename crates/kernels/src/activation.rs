//! The logistic sigmoid and tanh in forms the compiler vectorises: an LSTM's gates spend as
//! long in `expf` and `tanhf` as in their matrix products when these run as library calls one
//! value at a time.
//!
//! `exp` reduces `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, evaluates a degree-6 polynomial for
//! `e^r` and builds `2^n` from its exponent bits: no branch and no call, so a loop over a
//! slice of gates becomes vector code. Relative error below 4e-7 (a few ulp) over the range used
//! (a test holds it against `f32::exp`).

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts, so that `x − n·ln 2` loses nothing for the `n` reached here.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5·2^23: any f32 of magnitude under 2^22 plus this has its integer part in the low bits.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` for `x` in [−87, 88] (clamped there: beyond it the sigmoid and tanh are already 0
/// or 1 to f32 precision).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Adding 1.5·2^23 rounds to an integer (to even, the FPU's mode) and leaves it in the low
    // mantissa bits: n and 2^n without a float-to-int conversion, which Rust's saturating `as`
    // would keep from vectorising.
    let shifted = x.mul_add(LOG2_E, ROUNDER);
    let n = shifted - ROUNDER;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    // Taylor terms to r⁶/720: |r| ≤ 0.347, so the next term is under 1e-8 of the result.
    // (`mul_add` becomes one FMA instruction in the callers compiled for FMA.)
    let mut p = 1.0f32 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    // 2^n from its exponent bits; n ∈ [−126, 127] for the clamped range, so n + 127 ∈ [1, 254].
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUNDER.to_bits() - 127) << 23);
    p * two_n
}

/// The logistic function `1 / (1 + e^−x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 − 2 / (e^2x + 1)`: exact at the ends, and near 0 within a few 1e-7 absolute.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// Beyond this the sigmoid is 0 or 1 and tanh ±1 in f32, so arguments are clamped here: the
/// products of three exponentials in [`lstm_cell`] stay far from overflow (e^60 < 1.2e26).
const SATURATED: f32 = 20.0;

/// One LSTM cell update from its four gate pre-activations (input, forget, cell, output):
/// `c ← σ(f)·c + σ(i)·tanh(g)`, then returns `h = σ(o)·tanh(c)`.
///
/// The fractions are put over one denominator each, so that the update costs two divisions
/// instead of five (division is the slowest vector instruction here):
/// `c' = (c·(1+e^−i)·(e^2g+1) + (e^2g−1)·(1+e^−f)) / ((1+e^−f)·(1+e^−i)·(e^2g+1))` and
/// `h = (e^2c'−1) / ((1+e^−o)·(e^2c'+1))`.
#[inline(always)]
pub fn lstm_cell(i: f32, f: f32, g: f32, o: f32, c: &mut f32) -> f32 {
    let clamp = |x: f32| x.clamp(-SATURATED, SATURATED);
    let (ei, ef, eg) = (
        1.0 + exp(-clamp(i)),
        1.0 + exp(-clamp(f)),
        exp(clamp(2.0 * g)),
    );
    let numerator = (*c * ei).mul_add(eg + 1.0, (eg - 1.0) * ef);
    *c = numerator / (ef * ei * (eg + 1.0));
    let (eo, ec) = (1.0 + exp(-clamp(o)), exp(clamp(2.0 * *c)));
    (ec - 1.0) / (eo * (ec + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-40_000..=40_000).map(|i| i as f32 * 0.002)
    }

    #[test]
    fn exp_is_within_4e_7_of_the_library() {
        for x in (-86_000..=87_000).map(|i| i as f32 * 0.001) {
            let (ours, std) = (exp(x), x.exp());
            let error = ((ours - std) / std).abs();
            assert!(error < 4e-7, "exp({x}) = {ours}, library {std}");
        }
    }

    #[test]
    fn sigmoid_and_tanh_are_within_3e_7_of_the_library() {
        for x in grid() {
            let std = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - std).abs() < 3e-7, "sigmoid({x})");
            assert!(
                (tanh(x) - x.tanh()).abs() < 3e-7,
                "tanh({x}): {} vs {}",
                tanh(x),
                x.tanh()
            );
        }
        // Saturation without NaN or overflow far outside the reduced range.
        assert!((0.0..1e-37).contains(&sigmoid(-1e6)));
        assert_eq!(sigmoid(1e6), 1.0);
        assert_eq!(tanh(1e6), 1.0);
        assert_eq!(tanh(-1e6), -1.0);
    }

    #[test]
    fn the_cell_update_is_the_textbook_one() {
        let textbook = |i: f32, f: f32, g: f32, o: f32, c: f32| {
            let s = |x: f32| 1.0 / (1.0 + (-x).exp());
            let c = s(f) * c + s(i) * g.tanh();
            (c, s(o) * c.tanh())
        };
        let values = [
            -60.0f32, -9.0, -2.5, -0.7, -0.01, 0.0, 0.02, 0.9, 3.0, 12.0, 45.0,
        ];
        for &i in &values {
            for &f in &values {
                for &g in &values {
                    for &o in &values {
                        for c in [-30.0f32, -1.5, -0.2, 0.0, 0.3, 2.0, 25.0] {
                            let (c_expected, h_expected) = textbook(i, f, g, o, c);
                            let mut c_got = c;
                            let h_got = lstm_cell(i, f, g, o, &mut c_got);
                            let scale = c_expected.abs().max(1.0);
                            assert!(
                                (c_got - c_expected).abs() < 1e-6 * scale,
                                "c: {i} {f} {g} {o} {c}: {c_got} vs {c_expected}"
                            );
                            assert!(
                                (h_got - h_expected).abs() < 1e-6,
                                "h: {i} {f} {g} {o} {c}: {h_got} vs {h_expected}"
                            );
                        }
                    }
                }
            }
        }
    }
}
