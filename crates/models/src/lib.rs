//! # aqiqat-models
//!
//! Network definitions, one self-contained file per model, built on candle. Weights live in
//! safetensors files trained by this project's own code (`crates/train`), or converted from a
//! pinned package by a script in `tools/` that also writes the reference outputs a test holds
//! the port to (`weights/`); nothing is ever downloaded.
//!
//! **Owns:** layer shapes, parameter names, the forward pass.
//! **Must not touch:** decoding, features, files other than its weights, scores' meaning or
//! verdicts.

pub mod attentive_head;
pub mod ge2e;
pub mod tdnn_mfm;
pub mod whisper_encoder;

use candle_core::{Result, Tensor};

/// Cosine similarity of two tensors of the same shape, flattened: how a port is held to its
/// reference.
pub fn cosine(a: &Tensor, b: &Tensor) -> Result<f32> {
    let (a, b) = (a.flatten_all()?, b.flatten_all()?);
    let dot = (&a * &b)?.sum_all()?.to_scalar::<f32>()?;
    let norms = (a.sqr()?.sum_all()?.sqrt()? * b.sqr()?.sum_all()?.sqrt()?)?;
    Ok(dot / norms.to_scalar::<f32>()?)
}

/// The largest element-wise difference of two tensors of the same shape.
pub fn max_abs_difference(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn comparisons() {
        let x = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
        let y = (&x * 2.0).unwrap();
        assert!((cosine(&x, &y).unwrap() - 1.0).abs() < 1e-6);
        assert!((cosine(&x, &x.neg().unwrap()).unwrap() + 1.0).abs() < 1e-6);
        assert_eq!(max_abs_difference(&x, &y).unwrap(), 3.0);
    }
}
