//! What a generator leaves in pixels, read patch by patch from what is left once the picture's
//! content is taken away.
//!
//! A camera's pixels come through a lens, a sensor's noise and demosaicing; a generator's
//! through a decoder that upsamples feature maps. Both leave traces in the high-pass residual
//! (the image minus a prediction from its neighbours): its spectrum (upsampling leaves energy
//! at regular frequencies, even after a rescale moves them), its distribution (sensor noise
//! is near Gaussian, synthesis residuals are not), the correlation of the three colours'
//! residuals (demosaicing ties them), and the relation of neighbouring pixels within and
//! across 2×2 blocks (what NPR reads). Each is measured per [`PATCH`]² patch; an image's
//! features are their mean and spread over its patches.

use aqiqat_intake::image::RgbImage;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// The side of a patch, in pixels.
pub const PATCH: usize = 64;

/// Radial bands of the residual's spectrum.
const BANDS: usize = 16;

/// Features of one patch.
pub const PATCH_FEATURES: usize = BANDS + 2 + 3 + 2 + 1;

/// Where the residual's spectrum sits among an image's [`FEATURES`] (its bands' mean, then
/// their spread): the frequency-only candidate reads these alone.
pub fn spectrum_features() -> impl Iterator<Item = usize> {
    (0..BANDS).chain(PATCH_FEATURES..PATCH_FEATURES + BANDS)
}

/// Features of an image: the patches' mean, then their standard deviation.
pub const FEATURES: usize = 2 * PATCH_FEATURES;

/// Patches read from one image at most, spread evenly over it (a 12-megapixel photo has
/// about 2,900): enough for the statistics, and bounded time.
pub const MAX_PATCHES: usize = 256;

/// One colour plane of a patch.
type Plane = Vec<f32>;

fn planes(image: &RgbImage, x0: usize, y0: usize) -> [Plane; 3] {
    let w = image.width as usize;
    let mut out = [
        vec![0.0; PATCH * PATCH],
        vec![0.0; PATCH * PATCH],
        vec![0.0; PATCH * PATCH],
    ];
    for y in 0..PATCH {
        let row = ((y0 + y) * w + x0) * 3;
        for x in 0..PATCH {
            for (c, plane) in out.iter_mut().enumerate() {
                plane[y * PATCH + x] = f32::from(image.pixels[row + 3 * x + c]);
            }
        }
    }
    out
}

/// The Laplacian residual inside the patch (the border row and column are zero).
fn laplacian(p: &[f32]) -> Plane {
    let mut r = vec![0.0; PATCH * PATCH];
    for y in 1..PATCH - 1 {
        for x in 1..PATCH - 1 {
            let i = y * PATCH + x;
            r[i] = 4.0 * p[i] - p[i - 1] - p[i + 1] - p[i - PATCH] - p[i + PATCH];
        }
    }
    r
}

fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f64;
    let (ma, mb) = (
        a.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
        b.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
    );
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += dx * dy;
        aa += dx * dx;
        bb += dy * dy;
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        (ab / (aa * bb).sqrt()) as f32
    }
}

/// Reads patches; holds the FFT plan and a Hann window between them.
pub struct Reader {
    fft: std::sync::Arc<dyn rustfft::Fft<f32>>,
    window: Vec<f32>,
    band_of: Vec<Option<usize>>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    pub fn new() -> Self {
        let fft = FftPlanner::new().plan_fft_forward(PATCH);
        let hann: Vec<f32> = (0..PATCH)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (PATCH - 1) as f32).cos())
            .collect();
        let window = (0..PATCH * PATCH)
            .map(|i| hann[i / PATCH] * hann[i % PATCH])
            .collect();
        let half = PATCH as f32 / 2.0;
        let band_of = (0..PATCH * PATCH)
            .map(|i| {
                let signed = |k: usize| {
                    if k < PATCH / 2 {
                        k as f32
                    } else {
                        k as f32 - PATCH as f32
                    }
                };
                let (u, v) = (signed(i / PATCH), signed(i % PATCH));
                let radius = (u * u + v * v).sqrt() / half;
                (radius > 0.0 && radius <= 1.0)
                    .then(|| ((radius * BANDS as f32).ceil() as usize).clamp(1, BANDS) - 1)
            })
            .collect();
        Self {
            fft,
            window,
            band_of,
        }
    }

    /// The log power of `residual` in each radial band, less their mean (the spectrum's
    /// shape, not its level).
    fn spectrum(&self, residual: &[f32]) -> [f32; BANDS] {
        let mut buf: Vec<Complex<f32>> = residual
            .iter()
            .zip(&self.window)
            .map(|(r, w)| Complex::new(r * w, 0.0))
            .collect();
        for row in buf.chunks_mut(PATCH) {
            self.fft.process(row);
        }
        let mut column = vec![Complex::new(0.0, 0.0); PATCH];
        for x in 0..PATCH {
            for y in 0..PATCH {
                column[y] = buf[y * PATCH + x];
            }
            self.fft.process(&mut column);
            for y in 0..PATCH {
                buf[y * PATCH + x] = column[y];
            }
        }
        let mut power = [0.0f64; BANDS];
        let mut count = [0usize; BANDS];
        for (c, band) in buf.iter().zip(&self.band_of) {
            if let Some(b) = band {
                power[*b] += f64::from(c.norm_sqr());
                count[*b] += 1;
            }
        }
        let mut out = [0.0f32; BANDS];
        for b in 0..BANDS {
            out[b] = ((power[b] / count[b].max(1) as f64) + 1e-6).ln() as f32;
        }
        let mean = out.iter().sum::<f32>() / BANDS as f32;
        out.map(|v| v - mean)
    }

    /// The [`PATCH_FEATURES`] of the patch whose top-left corner is at `(x0, y0)`.
    pub fn patch(&self, image: &RgbImage, x0: usize, y0: usize) -> [f32; PATCH_FEATURES] {
        let [r, g, b] = planes(image, x0, y0);
        let luma: Plane = (0..PATCH * PATCH)
            .map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i])
            .collect();
        let residual = laplacian(&luma);
        let mut out = [0.0f32; PATCH_FEATURES];
        out[..BANDS].copy_from_slice(&self.spectrum(&residual));
        // The residual's level and tails (interior only: the border is zero).
        let inner: Vec<f32> = residual
            .chunks(PATCH)
            .skip(1)
            .take(PATCH - 2)
            .flat_map(|row| row[1..PATCH - 1].iter().copied())
            .collect();
        let n = inner.len() as f64;
        let m2 = inner.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
        let m4 = inner.iter().map(|&v| f64::from(v).powi(4)).sum::<f64>() / n;
        out[BANDS] = (m2.sqrt() + 1e-3).ln() as f32;
        out[BANDS + 1] = if m2 > 1e-9 {
            (m4 / (m2 * m2)).ln() as f32
        } else {
            0.0
        };
        // How the colours' residuals move together (demosaicing ties them).
        let (rr, gr, br) = (laplacian(&r), laplacian(&g), laplacian(&b));
        out[BANDS + 2] = pearson(&rr, &gr);
        out[BANDS + 3] = pearson(&rr, &br);
        out[BANDS + 4] = pearson(&gr, &br);
        // Neighbouring pixels within a 2×2 block against across blocks, whichever phase the
        // blocks have: |ln(even steps / odd steps)|, across and down.
        let mut steps = [[0.0f64; 2]; 2];
        for y in 0..PATCH {
            for x in 0..PATCH - 1 {
                let i = y * PATCH + x;
                steps[0][x % 2] += f64::from((luma[i + 1] - luma[i]).abs());
            }
        }
        for y in 0..PATCH - 1 {
            for x in 0..PATCH {
                let i = y * PATCH + x;
                steps[1][y % 2] += f64::from((luma[i + PATCH] - luma[i]).abs());
            }
        }
        for (k, [even, odd]) in steps.iter().enumerate() {
            out[BANDS + 5 + k] = ((even + 1e-3) / (odd + 1e-3)).ln().abs() as f32;
        }
        let gradient = (steps[0][0] + steps[0][1] + steps[1][0] + steps[1][1])
            / (2 * PATCH * (PATCH - 1)) as f64;
        out[BANDS + 7] = (gradient + 1e-3).ln() as f32;
        out
    }
}

/// Where the patches read from an image start: a grid of whole patches, thinned evenly to
/// at most [`MAX_PATCHES`]. Empty when the image is smaller than a patch.
pub fn patch_corners(width: usize, height: usize) -> Vec<(usize, usize)> {
    let (cols, rows) = (width / PATCH, height / PATCH);
    let all = cols * rows;
    if all == 0 {
        return Vec::new();
    }
    let take = all.min(MAX_PATCHES);
    // Centre the grid: the margins left over are split between both sides.
    let (mx, my) = ((width - cols * PATCH) / 2, (height - rows * PATCH) / 2);
    (0..take)
        .map(|k| {
            let i = k * all / take;
            (mx + (i % cols) * PATCH, my + (i / cols) * PATCH)
        })
        .collect()
}

/// Every patch's features, with its corner.
pub fn patch_features(
    reader: &Reader,
    image: &RgbImage,
) -> Vec<((usize, usize), [f32; PATCH_FEATURES])> {
    patch_corners(image.width as usize, image.height as usize)
        .into_iter()
        .map(|(x, y)| ((x, y), reader.patch(image, x, y)))
        .collect()
}

/// An image's [`FEATURES`]: its patches' mean and standard deviation; `None` when the image
/// is smaller than one patch.
pub fn image_features(reader: &Reader, image: &RgbImage) -> Option<[f32; FEATURES]> {
    let patches = patch_features(reader, image);
    if patches.is_empty() {
        return None;
    }
    let n = patches.len() as f32;
    let mut out = [0.0f32; FEATURES];
    for (_, f) in &patches {
        for k in 0..PATCH_FEATURES {
            out[k] += f[k] / n;
        }
    }
    for (_, f) in &patches {
        for k in 0..PATCH_FEATURES {
            out[PATCH_FEATURES + k] += (f[k] - out[k]).powi(2) / n;
        }
    }
    for v in &mut out[PATCH_FEATURES..] {
        *v = v.sqrt();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                pixels.extend_from_slice(&f(x, y));
            }
        }
        RgbImage {
            width,
            height,
            pixels,
        }
    }

    /// Deterministic noise in 0..1.
    fn noise(x: u32, y: u32, salt: u32) -> f32 {
        let mut h = x
            .wrapping_mul(0x9E37_79B1)
            .wrapping_add(y.wrapping_mul(0x85EB_CA77))
            .wrapping_add(salt.wrapping_mul(0xC2B2_AE3D));
        h ^= h >> 16;
        h = h.wrapping_mul(0x85EB_CA6B);
        h ^= h >> 13;
        h = h.wrapping_mul(0xC2B2_AE35);
        h ^= h >> 16;
        (h & 0xffff) as f32 / 65535.0
    }

    #[test]
    fn patches_cover_the_image_evenly_and_within_bounds() {
        assert!(patch_corners(63, 500).is_empty());
        let corners = patch_corners(150, 140);
        assert_eq!(corners, vec![(11, 6), (75, 6), (11, 70), (75, 70)]);
        let big = patch_corners(4000, 3000);
        assert_eq!(big.len(), MAX_PATCHES);
        assert!(
            big.iter()
                .all(|&(x, y)| x + PATCH <= 4000 && y + PATCH <= 3000)
        );
        let rows: std::collections::BTreeSet<usize> = big.iter().map(|c| c.1).collect();
        assert!(rows.len() > 20, "spread over the rows: {}", rows.len());
    }

    #[test]
    fn the_features_see_what_they_claim() {
        let reader = Reader::new();
        // Independent noise per colour against noise shared by the colours.
        let separate = image(128, 128, |x, y| {
            [0, 1, 2].map(|c| (100.0 + 80.0 * noise(x, y, c)) as u8)
        });
        let shared = image(128, 128, |x, y| [(100.0 + 80.0 * noise(x, y, 9)) as u8; 3]);
        let f_sep = image_features(&reader, &separate).unwrap();
        let f_sha = image_features(&reader, &shared).unwrap();
        assert!(f_sep[BANDS + 2].abs() < 0.1, "{}", f_sep[BANDS + 2]);
        assert!(f_sha[BANDS + 2] > 0.99, "{}", f_sha[BANDS + 2]);
        // Noise upsampled 2× by pixel repetition: steps within blocks vanish.
        let blocky = image(128, 128, |x, y| {
            [(100.0 + 80.0 * noise(x / 2, y / 2, 3)) as u8; 3]
        });
        let f_blk = image_features(&reader, &blocky).unwrap();
        assert!(
            f_blk[BANDS + 5] > 2.0 && f_blk[BANDS + 6] > 2.0,
            "{:?}",
            &f_blk[BANDS + 5..BANDS + 7]
        );
        assert!(f_sha[BANDS + 5] < 0.1, "{}", f_sha[BANDS + 5]);
        // White noise has a flat residual spectrum rising to high frequency (the Laplacian);
        // a smooth image's residual has little there.
        let smooth = image(128, 128, |x, y| {
            let v = 128.0 + 60.0 * ((x as f32 / 9.0).sin() + (y as f32 / 13.0).cos());
            [v as u8; 3]
        });
        let f_smooth = image_features(&reader, &smooth).unwrap();
        assert!(f_sha[BANDS - 1] > f_sha[0]);
        assert!(
            f_smooth[BANDS] < f_sha[BANDS],
            "less residual in a smooth image"
        );
        assert!(f_sep.iter().chain(&f_smooth).all(|v| v.is_finite()));
        // Flat grey: no residual at all, and still finite features.
        let flat = image(64, 64, |_, _| [128; 3]);
        assert!(
            image_features(&reader, &flat)
                .unwrap()
                .iter()
                .all(|v| v.is_finite())
        );
        assert!(image_features(&reader, &image(63, 63, |_, _| [0; 3])).is_none());
    }
}
