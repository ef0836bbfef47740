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
/// image, as direct convolution in register tiles. candle's CPU path spends most of its time
/// copying the unfolded taps and reducing the pools over strided views; the network is small
/// enough that direct convolution, which the compiler vectorises along each row, is the fast
/// way. For a 597×448 image on one core: candle about 175 ms, one output row at a time
/// (each input value loaded once per output channel) about 80 ms, tiles of 8 channels × 8
/// pixels about 32 ms, with the same bits on 346 camera and Midjourney pictures. Tiles of 16
/// pixels in AVX-512 registers (session 23, 592×448, best of 15, same run): 20 ms against
/// 28 ms with 8, the same bits.
pub struct Inference {
    convs: Vec<Layer>,
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
                Ok(Layer::new(
                    &c.weight.flatten_all()?.to_vec1::<f32>()?,
                    c.bias.to_vec1::<f32>()?,
                    c_in,
                    c_out,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
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
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (which implies FMA); checked just above.
            return unsafe { self.logit_map_avx512(input, w, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has both features; checked just above.
            return unsafe { self.logit_map_avx2(input, w, h) };
        }
        self.logit_map_with::<Plain, 8>(input, w, h)
    }

    /// The same loops compiled for AVX2 with fused multiply-adds: eight lanes instead of
    /// SSE2's four, and one instruction per tap instead of two.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn logit_map_avx2(&self, input: &[f32], w: usize, h: usize) -> Vec<f32> {
        self.logit_map_with::<Fused, 8>(input, w, h)
    }

    /// With AVX-512, tiles of 16 pixels: one register per output channel of a tile, half
    /// the multiply-adds issued. Each sum still adds its taps in the same order, so the
    /// bits are the AVX2 path's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn logit_map_avx512(&self, input: &[f32], w: usize, h: usize) -> Vec<f32> {
        self.logit_map_with::<Fused, 16>(input, w, h)
    }

    #[inline(always)]
    fn logit_map_with<M: MulAdd, const PIXELS: usize>(
        &self,
        input: &[f32],
        w: usize,
        h: usize,
    ) -> Vec<f32> {
        let (mut planes, mut w, mut h) = (Vec::new(), w, h);
        for (i, layer) in self.convs.iter().enumerate() {
            planes = layer.forward::<M, PIXELS>(if i == 0 { input } else { &planes }, w, h);
            w /= 2;
            h /= 2;
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

/// Output channels one tile computes: [`TILE_OUT`] × `PIXELS` sums stay in registers while
/// every input channel's taps are added, so each input value is loaded once per tile instead
/// of once per output channel. `PIXELS`, the pixels of one output row a tile computes, is one
/// register's lanes: 8 with AVX2, 16 with AVX-512.
const TILE_OUT: usize = 8;

/// One 3×3 convolution, its ReLU and its 2×2 mean pool, for inference.
struct Layer {
    /// `[c_out / TILE_OUT][c_in][9][TILE_OUT]`: one tile's weights for one tap side by side.
    tiled: Vec<f32>,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
}

impl Layer {
    /// `weight`: `[c_out][c_in][3][3]`, as the network holds it.
    fn new(weight: &[f32], bias: Vec<f32>, c_in: usize, c_out: usize) -> Self {
        assert_eq!(
            c_out % TILE_OUT,
            0,
            "every layer's width is a multiple of the tile"
        );
        let mut tiled = vec![0.0; weight.len()];
        for o in 0..c_out {
            for c in 0..c_in {
                for tap in 0..9 {
                    let (group, lane) = (o / TILE_OUT, o % TILE_OUT);
                    tiled[((group * c_in + c) * 9 + tap) * TILE_OUT + lane] =
                        weight[(o * c_in + c) * 9 + tap];
                }
            }
        }
        Self {
            tiled,
            bias,
            c_in,
            c_out,
        }
    }

    /// `[c_in][h][w]` → `[c_out][h/2][w/2]`. Each output adds its taps in the order the
    /// network was measured with (input channel, then row, then centre, left, right), so
    /// the tiling changes no result; the zero padding adds exact zeros where the edges once
    /// skipped a tap.
    #[inline(always)]
    fn forward<M: MulAdd, const PIXELS: usize>(
        &self,
        planes: &[f32],
        w: usize,
        h: usize,
    ) -> Vec<f32> {
        let (c_in, c_out) = (self.c_in, self.c_out);
        // One zero row above and below, one zero column on the left, and on the right enough
        // that the last tile's right taps stay inside the row.
        let tiled_w = w.div_ceil(PIXELS) * PIXELS;
        let stride = tiled_w + 2;
        let mut padded = vec![0.0f32; c_in * (h + 2) * stride];
        for c in 0..c_in {
            for y in 0..h {
                let at = (c * (h + 2) + y + 1) * stride + 1;
                padded[at..at + w].copy_from_slice(&planes[(c * h + y) * w..][..w]);
            }
        }
        let (pw, ph) = (w / 2, h / 2);
        let mut out = vec![0.0f32; c_out * ph * pw];
        // Two output rows (one pooled row) of one tile's channels: `[2][TILE_OUT][tiled_w]`.
        let mut rows = vec![0.0f32; 2 * TILE_OUT * tiled_w];
        for group in 0..c_out / TILE_OUT {
            let k = &self.tiled[group * c_in * 9 * TILE_OUT..][..c_in * 9 * TILE_OUT];
            let bias = &self.bias[group * TILE_OUT..][..TILE_OUT];
            for py in 0..ph {
                for r in 0..2 {
                    let y = 2 * py + r;
                    for x0 in (0..tiled_w).step_by(PIXELS) {
                        let mut acc = [[0.0f32; PIXELS]; TILE_OUT];
                        let at = (&padded[y * stride + x0..], ((h + 2) * stride, stride, c_in));
                        #[cfg(target_arch = "x86_64")]
                        if PIXELS == 16 {
                            // SAFETY: only `logit_map_avx512` asks for 16 lanes, after the CPU
                            // was found to have AVX-512F; the padding holds every tap read.
                            unsafe { tile_avx512(at, (k, bias), acc.as_flattened_mut()) };
                        } else {
                            tile::<M, PIXELS>(at, (k, bias), &mut acc);
                        }
                        #[cfg(not(target_arch = "x86_64"))]
                        tile::<M, PIXELS>(at, (k, bias), &mut acc);
                        for (o, a) in acc.iter().enumerate() {
                            rows[(r * TILE_OUT + o) * tiled_w + x0..][..PIXELS].copy_from_slice(a);
                        }
                    }
                }
                // ReLU, then the 2×2 mean.
                for o in 0..TILE_OUT {
                    let (top, bottom) = (
                        &rows[o * tiled_w..][..tiled_w],
                        &rows[(TILE_OUT + o) * tiled_w..][..tiled_w],
                    );
                    let pooled = &mut out[((group * TILE_OUT + o) * ph + py) * pw..][..pw];
                    for (x, p) in pooled.iter_mut().enumerate() {
                        *p = 0.25
                            * (top[2 * x].max(0.0)
                                + top[2 * x + 1].max(0.0)
                                + bottom[2 * x].max(0.0)
                                + bottom[2 * x + 1].max(0.0));
                    }
                }
            }
        }
        out
    }
}

/// Where a tile reads: the padded planes from the tile's top-left tap in the first input
/// channel, and the steps to the next channel and the next row, and the channel count.
type TileInput<'a> = (&'a [f32], (usize, usize, usize));

/// One tile of [`Layer::forward`]: `[TILE_OUT][PIXELS]` sums, each the bias plus every input
/// channel's taps (row by row; centre, left, right) with `k`'s weights.
#[inline(always)]
fn tile<M: MulAdd, const PIXELS: usize>(
    (padded, (plane, stride, c_in)): TileInput<'_>,
    (k, bias): (&[f32], &[f32]),
    acc: &mut [[f32; PIXELS]; TILE_OUT],
) {
    for (a, &b) in acc.iter_mut().zip(bias) {
        *a = [b; PIXELS];
    }
    for c in 0..c_in {
        for dy in 0..3 {
            let row = &padded[c * plane + dy * stride..][..PIXELS + 2];
            let taps = &k[(c * 9 + dy * 3) * TILE_OUT..][..3 * TILE_OUT];
            for dx in [1, 0, 2] {
                let v: &[f32; PIXELS] = row[dx..dx + PIXELS].try_into().unwrap();
                let kk = &taps[dx * TILE_OUT..][..TILE_OUT];
                for (a, &kv) in acc.iter_mut().zip(kk) {
                    for (s, &x) in a.iter_mut().zip(v) {
                        *s = M::mul_add(*s, kv, x);
                    }
                }
            }
        }
    }
}

/// [`tile`] with 16 pixels, written with AVX-512 intrinsics: the compiler, left to the
/// generic loops, spilled the 8 × 16 sums to memory and ran 7× slower than with 8 lanes.
/// The sums add their taps in [`tile`]'s order, fused. `out` is `[TILE_OUT][16]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tile_avx512(
    (padded, (plane, stride, c_in)): TileInput<'_>,
    (k, bias): (&[f32], &[f32]),
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    const LANES: usize = 16;
    let mut acc = [_mm512_setzero_ps(); TILE_OUT];
    for (a, &b) in acc.iter_mut().zip(bias) {
        *a = _mm512_set1_ps(b);
    }
    for c in 0..c_in {
        for dy in 0..3 {
            let row = &padded[c * plane + dy * stride..][..LANES + 2];
            let taps = &k[(c * 9 + dy * 3) * TILE_OUT..][..3 * TILE_OUT];
            for dx in [1, 0, 2] {
                let v: &[f32; LANES] = row[dx..dx + LANES].try_into().unwrap();
                // SAFETY: `v` holds 16 floats.
                let v = unsafe { _mm512_loadu_ps(v.as_ptr()) };
                for (a, &kv) in acc.iter_mut().zip(&taps[dx * TILE_OUT..][..TILE_OUT]) {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(kv), v, *a);
                }
            }
        }
    }
    for (a, out) in acc.iter().zip(out.chunks_exact_mut(LANES)) {
        let out: &mut [f32; LANES] = out.try_into().unwrap();
        // SAFETY: `out` holds 16 floats.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *a) };
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

/// The residual of the `side_w`×`side_h` region at `(x0, y0)`, flipped left-right if asked:
/// `[3, h, w]` values, each pixel less the mean of its 3×3 neighbourhood (edges clamped),
/// divided by 32.
pub fn residual(
    image: &RgbImage,
    (x0, y0): (usize, usize),
    (w, h): (usize, usize),
    flip: bool,
) -> Vec<f32> {
    let (iw, ih) = (image.width as usize, image.height as usize);
    let pixel = |x: usize, y: usize, c: usize| f32::from(image.pixels[(y * iw + x) * 3 + c]);
    let mut out = vec![0.0f32; 3 * h * w];
    // Column sums of three rows for source columns x0 − 1 ..= x0 + w (edges clamped); each
    // 3×3 sum is then three of them. The sums are of small integers, exact in f32 in any order.
    let mut columns = vec![0.0f32; w + 2];
    for y in 0..h {
        let sy = y0 + y;
        let rows = [sy.saturating_sub(1), sy, (sy + 1).min(ih - 1)];
        for c in 0..3 {
            for (i, column) in columns.iter_mut().enumerate() {
                let sx = (x0 + i).saturating_sub(1).min(iw - 1);
                *column = pixel(sx, rows[0], c) + pixel(sx, rows[1], c) + pixel(sx, rows[2], c);
            }
            let out = &mut out[(c * h + y) * w..][..w];
            for (x, o) in out.iter_mut().enumerate() {
                let i = if flip { w - 1 - x } else { x };
                let sum = columns[i] + columns[i + 1] + columns[i + 2];
                *o = (pixel(x0 + i, sy, c) - sum / 9.0) / 32.0;
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
        let inference = net.inference().unwrap();
        let got = inference.logit_map(&data, w, h);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
        // Whichever register width the dispatch picked (16 lanes where the CPU has
        // AVX-512), every sum adds the same taps in the same order as the 8-lane path.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has both features; checked just above.
            let eight_lanes = unsafe { inference.logit_map_avx2(&data, w, h) };
            assert_eq!(got, eight_lanes);
        }
    }

    /// The residual against its definition, pixel by pixel, edges and flips included.
    #[test]
    fn the_residual_is_each_pixel_less_its_clamped_3x3_mean() {
        let (iw, ih) = (23usize, 17usize);
        let image = RgbImage {
            width: iw as u32,
            height: ih as u32,
            pixels: (0..iw * ih * 3).map(|i| (i * 97 % 253) as u8).collect(),
        };
        let at = |x: isize, y: isize, c: usize| {
            let (x, y) = (x.clamp(0, iw as isize - 1), y.clamp(0, ih as isize - 1));
            f32::from(image.pixels[(y as usize * iw + x as usize) * 3 + c])
        };
        for ((x0, y0), (w, h), flip) in [
            ((0, 0), (iw, ih), false),
            ((0, 0), (iw, ih), true),
            ((3, 5), (16, 12), true),
            ((7, 0), (16, 17), false),
        ] {
            let got = residual(&image, (x0, y0), (w, h), flip);
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        let sx = if flip { x0 + w - 1 - x } else { x0 + x } as isize;
                        let sy = (y0 + y) as isize;
                        let mut sum = 0.0;
                        for dy in -1..=1 {
                            for dx in -1..=1 {
                                sum += at(sx + dx, sy + dy, c);
                            }
                        }
                        let expected = (at(sx, sy, c) - sum / 9.0) / 32.0;
                        assert_eq!(got[(c * h + y) * w + x], expected, "{c} {x} {y} {flip}");
                    }
                }
            }
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
