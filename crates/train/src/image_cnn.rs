//! Training `aqiqat_visual::residual_cnn` for one split of `image-folds`: balanced batches of
//! random crops (flipped half the time) from the training rows, AdamW with a cosine rate,
//! then every scored row's whole image through the network.

use crate::rng::Rng;
use aqiqat_intake::image::RgbImage;
use aqiqat_visual::residual_cnn::{ResidualCnn, residual, whole};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};

#[derive(clap::Args, Clone, Debug)]
pub struct CnnOptions {
    /// Epochs of the network candidate.
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// Training crops per epoch, half of each class.
    #[arg(long, default_value_t = 4096)]
    pub examples: usize,
    /// The side of a training crop (a multiple of 8).
    #[arg(long, default_value_t = 96)]
    pub crop: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
}

/// Trains on `train` (rows of `images`, `ai` their labels) and returns the log-odds of AI for
/// each row of `score`.
pub fn fit_score(
    images: &[RgbImage],
    ai: &[bool],
    train: &[usize],
    score: &[usize],
    opts: &CnnOptions,
    seed: u64,
) -> candle_core::Result<Vec<f64>> {
    let (_, net) = fit(images, ai, train, opts, seed)?;
    score.iter().map(|&r| logit(&net, &images[r])).collect()
}

/// The network's log-odds of AI for a whole image.
pub fn logit(net: &ResidualCnn, image: &RgbImage) -> candle_core::Result<f64> {
    let logit = net.logits(&whole(image, &Device::Cpu)?)?;
    Ok(f64::from(logit.to_vec1::<f32>()?[0]))
}

/// Trains a network on `train`; the variables come back for saving.
pub fn fit(
    images: &[RgbImage],
    ai: &[bool],
    train: &[usize],
    opts: &CnnOptions,
    seed: u64,
) -> candle_core::Result<(VarMap, ResidualCnn)> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let net = ResidualCnn::new(VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let mut rng = Rng::new(seed);
    crate::initialise(&varmap, &mut rng)?;
    let mut opt = crate::optimiser(&varmap, opts.lr)?;
    let (pos, neg): (Vec<usize>, Vec<usize>) = train.iter().partition(|&&r| ai[r]);
    let side = opts.crop;
    let steps = (opts.examples / opts.batch).max(1);
    for epoch in 0..opts.epochs {
        opt.set_learning_rate(crate::cosine_rate(opts.lr, epoch, opts.epochs));
        let started = std::time::Instant::now();
        let mut total = 0.0;
        for _ in 0..steps {
            let mut data = Vec::with_capacity(opts.batch * 3 * side * side);
            let mut target = Vec::with_capacity(opts.batch);
            for k in 0..opts.batch {
                let from = if k % 2 == 0 { &pos } else { &neg };
                let image = &images[from[rng.below(from.len())]];
                let x = rng.below(image.width as usize - side + 1);
                let y = rng.below(image.height as usize - side + 1);
                data.extend(residual(image, (x, y), (side, side), rng.below(2) == 1));
                target.push(if k % 2 == 0 { 1.0f32 } else { 0.0 });
            }
            let x = Tensor::from_vec(data, (opts.batch, 3, side, side), &device)?;
            let t = Tensor::from_vec(target, opts.batch, &device)?;
            let loss = candle_nn::loss::binary_cross_entropy_with_logit(&net.logits(&x)?, &t)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                candle_core::bail!("the loss diverged at epoch {epoch}; try a lower --lr");
            }
            opt.backward_step(&loss)?;
            total += value;
        }
        eprintln!(
            "  epoch {epoch}: loss {:.4} ({:.0?})",
            total / steps as f32,
            started.elapsed()
        );
    }
    Ok((varmap, net))
}
