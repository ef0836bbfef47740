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
    /// Draw AI crops with the real crops' content mix (faces, objects, scenes…): each AI crop
    /// comes from an image of the same content tag as a real image drawn at random, so content
    /// that only one class has (AI art and people scenes) cannot become a shortcut.
    #[arg(long)]
    pub balance_content: bool,
}

/// Trains on `train` (rows of `images`, `ai` their labels) and returns the log-odds of AI for
/// each row of `score`.
pub fn fit_score(
    images: &[RgbImage],
    ai: &[bool],
    content: &[String],
    train: &[usize],
    score: &[usize],
    opts: &CnnOptions,
    seed: u64,
) -> candle_core::Result<Vec<f64>> {
    let (_, net) = fit(images, ai, content, train, opts, seed)?;
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
    content: &[String],
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
    let (mut pos, mut neg): (Vec<usize>, Vec<usize>) = train.iter().partition(|&&r| ai[r]);
    // With --balance-content: AI images by content tag, real images only of tags AI also has.
    let mut pos_by: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    if opts.balance_content {
        for &r in &pos {
            pos_by.entry(content[r].as_str()).or_default().push(r);
        }
        neg.retain(|&r| pos_by.contains_key(content[r].as_str()));
        pos_by.retain(|c, _| neg.iter().any(|&r| content[r] == *c));
        pos = pos_by.values().flatten().copied().collect();
        eprintln!(
            "  content balanced: {} AI and {} real images of {:?}",
            pos.len(),
            neg.len(),
            pos_by.keys().collect::<Vec<_>>()
        );
    }
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
                let row = if k % 2 == 1 {
                    neg[rng.below(neg.len())]
                } else if opts.balance_content {
                    // A real image's tag drawn first, then an AI image of that tag.
                    let tag = content[neg[rng.below(neg.len())]].as_str();
                    let same = &pos_by[tag];
                    same[rng.below(same.len())]
                } else {
                    pos[rng.below(pos.len())]
                };
                let image = &images[row];
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
