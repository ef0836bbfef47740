//! A small convolutional network on an image's high-pass residual, fully convolutional so that
//! it scores any image size and says where: its last layer gives one logit per 16×16-pixel
//! cell (the heat map), and the image's logit is their mean.
//!
//! Input: the RGB image less its 3×3 box blur (content mostly gone, the generator's and the
//! camera's fine traces kept), scaled to about unit range. Four 3×3 convolutions with ReLU,
//! each followed by a 2×2 mean pool (only the first sees full resolution: that keeps a
//! training step cheap enough for two CPU cores), then a 1×1 convolution to the logit map.
//!
//! The convolutions are computed as a matrix product over the unfolded input (narrow, stack,
//! matmul), not with `candle_nn::Conv2d`: candle 0.11.1's CPU convolution gradients are wrong
//! for non-contiguous kernels (see the voice model's `TimeConv`), and these ops' gradients are
//! right. Weights keep `Conv2d`'s layout, `[c_out, c_in, 3, 3]`.

use aqiqat_intake::image::RgbImage;
use candle_core::{D, Device, Result, Tensor};
use candle_nn::VarBuilder;

/// Channels of the four convolutions.
pub const CHANNELS: [usize; 4] = [16, 32, 32, 64];

/// The side of a heat-map cell, in pixels (four 2×2 pools).
pub const CELL: usize = 16;

struct Conv3 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv3 {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize) -> Result<Self> {
        let bound = (6.0 / (c_in * 9) as f64).sqrt();
        Ok(Self {
            weight: vb.get_with_hints(
                (c_out, c_in, 3, 3),
                "weight",
                candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            bias: vb.get_with_hints(c_out, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// `[batch, c_in, h, w]` → `[batch, c_out, h, w]` (zero padding).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c_out, c_in, _, _) = self.weight.dims4()?;
        let (batch, _, h, w) = x.dims4()?;
        let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        let mut taps = Vec::with_capacity(9);
        for dy in 0..3 {
            for dx in 0..3 {
                taps.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
            }
        }
        // [batch, c_in, 9, h, w]: row c·9 + dy·3 + dx, as the weight's layout flattens.
        let unfolded = Tensor::stack(&taps, 2)?.reshape((batch, c_in * 9, h * w))?;
        self.weight
            .reshape((c_out, c_in * 9))?
            .broadcast_left(batch)?
            .matmul(&unfolded)?
            .broadcast_add(&self.bias.reshape((1, c_out, 1))?)?
            .reshape((batch, c_out, h, w))
    }
}

/// 2×2 mean pool by reshaping (gradients through reshape and mean only).
fn pool2(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h / 2, 2, w / 2, 2))?.mean(5)?.mean(3)
}

pub struct ResidualCnn {
    convs: Vec<Conv3>,
    head_weight: Tensor,
    head_bias: Tensor,
}

impl ResidualCnn {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let mut convs = Vec::new();
        let mut c_in = 3;
        for (i, &c) in CHANNELS.iter().enumerate() {
            convs.push(Conv3::new(vb.pp(format!("conv{i}")), c_in, c)?);
            c_in = c;
        }
        Ok(Self {
            convs,
            head_weight: vb.get_with_hints(
                (1, c_in),
                "head.weight",
                candle_nn::Init::Uniform { lo: -0.1, up: 0.1 },
            )?,
            head_bias: vb.get_with_hints(1, "head.bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// `[batch, 3, h, w]` residuals (h, w multiples of [`CELL`]) → `[batch, h/16, w/16]`
    /// logits.
    pub fn logit_map(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for conv in &self.convs {
            x = pool2(&conv.forward(&x)?.relu()?)?;
        }
        let (b, c, h, w) = x.dims4()?;
        self.head_weight
            .broadcast_left(b)?
            .matmul(&x.reshape((b, c, h * w))?)?
            .broadcast_add(&self.head_bias.reshape((1, 1, 1))?)?
            .reshape((b, h, w))
    }

    /// `[batch]` image logits: the mean of each map.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.logit_map(x)?.flatten_from(1)?.mean(D::Minus1)
    }
}

/// The trained network for inference: the same arithmetic as [`ResidualCnn::logit_map`] on one
/// image, as plain loops over contiguous rows. candle's CPU path spends most of its time
/// copying the unfolded taps and reducing the pools over strided views (175 ms against 20 ms
/// here for a 448×597 image on one core); the network is small enough that direct
/// convolution, which the compiler vectorises along each row, is the fast way.
pub struct Inference {
    /// Per convolution: weights `[c_out][c_in][3][3]`, biases, `c_in`, `c_out`.
    convs: Vec<(Vec<f32>, Vec<f32>, usize, usize)>,
    head: Vec<f32>,
    head_bias: f32,
}

impl ResidualCnn {
    /// The weights copied out for [`Inference`].
    pub fn inference(&self) -> Result<Inference> {
        let convs = self
            .convs
            .iter()
            .map(|c| {
                let (c_out, c_in, _, _) = c.weight.dims4()?;
                Ok((
                    c.weight.flatten_all()?.to_vec1::<f32>()?,
                    c.bias.to_vec1::<f32>()?,
                    c_in,
                    c_out,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Inference {
            convs,
            head: self.head_weight.flatten_all()?.to_vec1::<f32>()?,
            head_bias: self.head_bias.to_vec1::<f32>()?[0],
        })
    }
}

impl Inference {
    /// `[3][h][w]` residual planes (h, w multiples of [`CELL`]) → `(h/16)·(w/16)` cell logits,
    /// row-major.
    pub fn logit_map(&self, input: &[f32], w: usize, h: usize) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has both features; checked just above.
            return unsafe { self.logit_map_avx2(input, w, h) };
        }
        self.logit_map_with::<Plain>(input, w, h)
    }

    /// The same loops compiled for AVX2 with fused multiply-adds: eight lanes instead of
    /// SSE2's four, and one instruction per tap instead of two.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn logit_map_avx2(&self, input: &[f32], w: usize, h: usize) -> Vec<f32> {
        self.logit_map_with::<Fused>(input, w, h)
    }

    #[inline(always)]
    fn logit_map_with<M: MulAdd>(&self, input: &[f32], w: usize, h: usize) -> Vec<f32> {
        let (mut planes, mut w, mut h) = (input.to_vec(), w, h);
        for (weight, bias, c_in, c_out) in &self.convs {
            let (pw, ph) = (w / 2, h / 2);
            let mut out = vec![0.0f32; c_out * ph * pw];
            // Two output rows at a time (one pooled row): they stay in L1 while every input
            // channel's taps are added.
            let mut rows = [vec![0.0f32; w], vec![0.0f32; w]];
            for o in 0..*c_out {
                let k_o = &weight[o * c_in * 9..(o + 1) * c_in * 9];
                for py in 0..ph {
                    for (r, acc) in rows.iter_mut().enumerate() {
                        acc.iter_mut().for_each(|v| *v = bias[o]);
                        for c in 0..*c_in {
                            let plane = &planes[c * h * w..(c + 1) * h * w];
                            conv3x3_row::<M>(
                                plane,
                                &k_o[c * 9..(c + 1) * 9],
                                acc,
                                2 * py + r,
                                w,
                                h,
                            );
                        }
                    }
                    // ReLU, then the 2×2 mean.
                    let pooled = &mut out[(o * ph + py) * pw..(o * ph + py + 1) * pw];
                    for (x, p) in pooled.iter_mut().enumerate() {
                        *p = 0.25
                            * (rows[0][2 * x].max(0.0)
                                + rows[0][2 * x + 1].max(0.0)
                                + rows[1][2 * x].max(0.0)
                                + rows[1][2 * x + 1].max(0.0));
                    }
                }
            }
            planes = out;
            w = pw;
            h = ph;
        }
        let mut map = vec![self.head_bias; w * h];
        for (c, &k) in self.head.iter().enumerate() {
            for (m, &v) in map.iter_mut().zip(&planes[c * w * h..(c + 1) * w * h]) {
                *m += k * v;
            }
        }
        map
    }
}

/// `acc + k·v`: plainly (two roundings), or fused where the CPU has FMA (one).
trait MulAdd {
    fn mul_add(acc: f32, k: f32, v: f32) -> f32;
}

struct Plain;

impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(acc: f32, k: f32, v: f32) -> f32 {
        acc + k * v
    }
}

#[cfg(target_arch = "x86_64")]
struct Fused;

#[cfg(target_arch = "x86_64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(acc: f32, k: f32, v: f32) -> f32 {
        k.mul_add(v, acc)
    }
}

/// `out += (plane ⋆ k)` for output row `y` (3×3, zero padding).
#[inline(always)]
fn conv3x3_row<M: MulAdd>(plane: &[f32], k: &[f32], out: &mut [f32], y: usize, w: usize, h: usize) {
    for dy in 0..3 {
        let sy = y + dy;
        if sy == 0 || sy > h {
            continue;
        }
        let row = &plane[(sy - 1) * w..sy * w];
        let (k0, k1, k2) = (k[dy * 3], k[dy * 3 + 1], k[dy * 3 + 2]);
        // Centre tap over the whole row; left and right taps shifted by one.
        for (o, &v) in out.iter_mut().zip(row) {
            *o = M::mul_add(*o, k1, v);
        }
        for (o, &v) in out[1..].iter_mut().zip(&row[..w - 1]) {
            *o = M::mul_add(*o, k0, v);
        }
        for (o, &v) in out[..w - 1].iter_mut().zip(&row[1..]) {
            *o = M::mul_add(*o, k2, v);
        }
    }
}

/// The residual of the `side_w`×`side_h` region at `(x0, y0)`, flipped left-right if asked:
/// `[3, h, w]` values, each pixel less the mean of its 3×3 neighbourhood (edges clamped),
/// divided by 32.
pub fn residual(
    image: &RgbImage,
    (x0, y0): (usize, usize),
    (w, h): (usize, usize),
    flip: bool,
) -> Vec<f32> {
    let iw = image.width as usize;
    let ih = image.height as usize;
    let px = |x: isize, y: isize, c: usize| {
        let x = x.clamp(0, iw as isize - 1) as usize;
        let y = y.clamp(0, ih as isize - 1) as usize;
        f32::from(image.pixels[(y * iw + x) * 3 + c])
    };
    let mut out = vec![0.0f32; 3 * h * w];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let sx = if flip { x0 + w - 1 - x } else { x0 + x } as isize;
                let sy = (y0 + y) as isize;
                let mut sum = 0.0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        sum += px(sx + dx, sy + dy, c);
                    }
                }
                out[(c * h + y) * w + x] = (px(sx, sy, c) - sum / 9.0) / 32.0;
            }
        }
    }
    out
}

/// The whole image as one input: its centre cropped to multiples of [`CELL`].
pub fn whole(image: &RgbImage, device: &Device) -> Result<Tensor> {
    let (iw, ih) = (image.width as usize, image.height as usize);
    let (w, h) = (iw / CELL * CELL, ih / CELL * CELL);
    let data = residual(image, ((iw - w) / 2, (ih - h) / 2), (w, h), false);
    Tensor::from_vec(data, (1, 3, h, w), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarMap;

    #[test]
    fn the_unfolded_convolution_is_a_convolution() {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let conv = Conv3::new(vb, 2, 3).unwrap();
        let x: Vec<f32> = (0..2 * 5 * 6)
            .map(|i| ((i * 37 % 11) as f32) - 5.0)
            .collect();
        let input = Tensor::from_vec(x.clone(), (1, 2, 5, 6), &device).unwrap();
        let got = conv
            .forward(&input)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w = conv.weight.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for o in 0..3 {
            for y in 0..5 {
                for xx in 0..6 {
                    let mut sum = 0.0;
                    for c in 0..2 {
                        for dy in 0..3 {
                            for dx in 0..3 {
                                let (sy, sx) =
                                    (y as isize + dy as isize - 1, xx as isize + dx as isize - 1);
                                if sy >= 0 && sx >= 0 && sy < 5 && sx < 6 {
                                    sum += w[((o * 2 + c) * 3 + dy) * 3 + dx]
                                        * x[(c * 5 + sy as usize) * 6 + sx as usize];
                                }
                            }
                        }
                    }
                    let g = got[(o * 5 + y) * 6 + xx];
                    assert!((g - sum).abs() < 1e-4, "{o} {y} {xx}: {g} vs {sum}");
                }
            }
        }
    }

    #[test]
    fn the_inference_loops_compute_what_the_network_computes() {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let net = ResidualCnn::new(VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
        // Non-zero biases, so that their place is checked too.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.ends_with("bias") {
                let n = var.elem_count();
                let values: Vec<f32> = (0..n).map(|i| 0.05 * (i % 5) as f32 - 0.1).collect();
                var.set(&Tensor::from_vec(values, var.dims(), &device).unwrap())
                    .unwrap();
            }
        }
        let image = RgbImage {
            width: 83,
            height: 61,
            pixels: (0..83 * 61 * 3).map(|i| (i * 131 % 251) as u8).collect(),
        };
        let input = whole(&image, &device).unwrap();
        let (_, _, h, w) = input.dims4().unwrap();
        let expected = net
            .logit_map(&input)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let data = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = net.inference().unwrap().logit_map(&data, w, h);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
    }

    #[test]
    fn any_size_gives_one_logit_per_cell() {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let net = ResidualCnn::new(VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
        let image = RgbImage {
            width: 70,
            height: 45,
            pixels: (0..70 * 45 * 3).map(|i| (i * 31 % 256) as u8).collect(),
        };
        let input = whole(&image, &device).unwrap();
        assert_eq!(input.dims(), &[1, 3, 32, 64]);
        assert_eq!(net.logit_map(&input).unwrap().dims(), &[1, 2, 4]);
        assert_eq!(net.logits(&input).unwrap().dims(), &[1]);
        // Flat areas have no residual.
        let flat = RgbImage {
            width: 16,
            height: 16,
            pixels: vec![90; 16 * 16 * 3],
        };
        assert!(
            residual(&flat, (0, 0), (16, 16), false)
                .iter()
                .all(|v| v.abs() < 1e-6)
        );
    }
}
