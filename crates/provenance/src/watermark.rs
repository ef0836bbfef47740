//! The "DWT-DCT" invisible image watermark that Stable Diffusion's reference scripts embed
//! (through the `invisible-watermark` Python package, method `dwtDct`), written here from the
//! scheme and checked against that package's behaviour (see `examples/watermark_raw.rs`).
//!
//! The scheme, per colour channel it marks:
//! 1. one level of the 2-D Haar wavelet over the largest part of the image whose sides are
//!    multiples of 4; only the approximation band (LL, half the size each way) is used;
//! 2. LL is cut into 4×4 blocks, row by row, and each block gets one bit of the message, the
//!    message repeating over the blocks;
//! 3. the block's value of largest magnitude, leaving out its first (top-left) value, is
//!    quantised so that its magnitude modulo the step sits at ¼ step (bit 0) or ¾ step
//!    (bit 1);
//! 4. reading takes the same value and asks which half of the step its magnitude falls in;
//!    votes for each bit are averaged over every block and channel that carries it.
//!
//! Two facts of the reference encoder, learned by running it, decide compatibility: despite
//! the method's name, step 3 works on the LL values themselves, with no DCT; and although
//! its default steps are 0, 36, 36 for Y, U, V, its channel loop stops before V, so only U
//! (step 36) ever carries the mark. [`DEFAULT_SCALES`] says so.
//!
//! Only LL carries the mark, and an LL change of `d` is a change of `d / 2` to each of the
//! four pixels under it, so embedding needs no full inverse wavelet transform.
//!
//! What a detection proves: that someone ran this open scheme with this message over the
//! image (Stable Diffusion's scripts do so by default). Anyone can embed it, and resizing,
//! cropping or strong compression removes it: its absence proves nothing.

/// The message Stable Diffusion's reference scripts embed, as UTF-8 bytes.
pub const STABLE_DIFFUSION_MESSAGE: &[u8] = b"StableDiffusionV1";

/// The quantisation step per YUV channel that the reference encoder actually applies by
/// default: U only (see the module documentation).
pub const DEFAULT_SCALES: [f32; 3] = [0.0, 36.0, 0.0];

/// Bit agreement at or above which a known message counts as found. The scheme is fragile
/// (the reference encoder itself reads back only 75–90 % of its own bits on our test
/// pictures, since 8-bit rounding and clipping follow every step), so the bar is set by
/// chance instead: for 136 bits, 75 % agreement from an unmarked image voting like coin
/// flips has a probability of about 3 × 10⁻⁹.
pub const DETECTION_AGREEMENT: f64 = 0.75;

const BLOCK: usize = 4;

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatermarkError {
    #[error("the image is {0}×{1} pixels; the watermark needs at least 8×8")]
    TooSmall(usize, usize),
    #[error("the image's pixel buffer holds {got} bytes, not {want}")]
    BadBuffer { got: usize, want: usize },
    #[error("the image has {blocks} blocks, too few for a {bits}-bit message")]
    MessageTooLong { bits: usize, blocks: usize },
    #[error("an empty message cannot be embedded")]
    EmptyMessage,
}

/// What reading a known message found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// Share of the message's bits read back as expected (0.5 is chance).
    pub bit_agreement: f64,
    pub detected: bool,
    pub bits: usize,
    /// 4×4 blocks that voted, over all marked channels.
    pub blocks: usize,
}

impl RgbImage {
    fn check(&self) -> Result<(), WatermarkError> {
        let want = self.width * self.height * 3;
        if self.data.len() != want {
            return Err(WatermarkError::BadBuffer {
                got: self.data.len(),
                want,
            });
        }
        if self.width < 2 * BLOCK || self.height < 2 * BLOCK {
            return Err(WatermarkError::TooSmall(self.width, self.height));
        }
        Ok(())
    }

    /// The part the scheme covers: sides rounded down to multiples of 4.
    fn covered(&self) -> (usize, usize) {
        (self.width / 4 * 4, self.height / 4 * 4)
    }

    /// Y, U, V planes (the PAL analogue definition, chroma offset by 128 for 8-bit data).
    fn yuv(&self) -> [Vec<f32>; 3] {
        let n = self.width * self.height;
        let mut planes = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
        for (i, px) in self.data.chunks_exact(3).enumerate() {
            let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            planes[0][i] = y;
            planes[1][i] = (b - y) * 0.492 + 128.0;
            planes[2][i] = (r - y) * 0.877 + 128.0;
        }
        planes
    }

    /// Rows `first..first + out.len() / w2` of [`approximation`] of one of [`RgbImage::yuv`]'s
    /// planes, without making the plane.
    ///
    /// Each plane is a linear map of R, G and B plus an offset, so the sum of a 2×2 square
    /// of it is the same map of the square's R, G and B sums (exact integers) plus four
    /// offsets: one multiply-add per channel per square instead of three per pixel. The
    /// floats differ from the plane's own sums at rounding level (about 10⁻⁵ of the value).
    fn approximation_rows(&self, channel: usize, first: usize, w2: usize, out: &mut [f32]) {
        let [kr, kg, kb, offset] = match channel {
            0 => [0.299, 0.587, 0.114, 0.0],
            1 => [-0.299 * 0.492, -0.587 * 0.492, (1.0 - 0.114) * 0.492, 128.0],
            _ => [(1.0 - 0.299) * 0.877, -0.587 * 0.877, -0.114 * 0.877, 128.0],
        };
        let row_bytes = self.width * 3;
        // Two pixel rows summed byte by byte (contiguous, so it vectorises), then pixel pairs.
        let mut pair_rows = vec![0u16; 2 * w2 * 3];
        for (k, out) in out.chunks_exact_mut(w2).enumerate() {
            let y = first + k;
            let top = &self.data[2 * y * row_bytes..][..2 * w2 * 3];
            let bottom = &self.data[(2 * y + 1) * row_bytes..][..2 * w2 * 3];
            for ((sum, &t), &b) in pair_rows.iter_mut().zip(top).zip(bottom) {
                *sum = u16::from(t) + u16::from(b);
            }
            for (out, square) in out.iter_mut().zip(pair_rows.chunks_exact(6)) {
                let r = f32::from(square[0] + square[3]);
                let g = f32::from(square[1] + square[4]);
                let b = f32::from(square[2] + square[5]);
                *out = (kr * r + kg * g + kb * b + 4.0 * offset) / 2.0;
            }
        }
    }

    fn set_yuv(&mut self, planes: &[Vec<f32>; 3]) {
        for (i, px) in self.data.chunks_exact_mut(3).enumerate() {
            let y = planes[0][i];
            let u = planes[1][i] - 128.0;
            let v = planes[2][i] - 128.0;
            let r = y + v / 0.877;
            let b = y + u / 0.492;
            let g = (y - 0.299 * r - 0.114 * b) / 0.587;
            for (slot, value) in px.iter_mut().zip([r, g, b]) {
                *slot = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

type Block = [[f32; BLOCK]; BLOCK];

/// The value of largest magnitude after the first (the first such, in row-major order, on
/// ties).
fn strongest_after_first(c: &Block) -> (usize, usize) {
    let mut best = (0, 1);
    let mut magnitude = -1f32;
    for pos in 1..BLOCK * BLOCK {
        let (i, j) = (pos / BLOCK, pos % BLOCK);
        if c[i][j].abs() > magnitude {
            magnitude = c[i][j].abs();
            best = (i, j);
        }
    }
    best
}

/// `magnitude % step` for a non-negative f32 magnitude, computed in f64, where the quotient's
/// floor is exact (an f32 is never within 2⁻⁵³ of a multiple it is not), without a call to
/// `fmodf` per block.
fn remainder(magnitude: f32, step: f32) -> f32 {
    let (m, s) = (f64::from(magnitude), f64::from(step));
    (m - (m / s).floor() * s) as f32
}

/// The Haar approximation band of one plane's covered part: `(a + b + c + d) / 2` per 2×2.
fn approximation(plane: &[f32], width: usize, covered: (usize, usize)) -> Vec<f32> {
    let (w2, h2) = (covered.0 / 2, covered.1 / 2);
    let mut ll = vec![0f32; w2 * h2];
    for y in 0..h2 {
        for x in 0..w2 {
            let p = |dy: usize, dx: usize| plane[(2 * y + dy) * width + 2 * x + dx];
            ll[y * w2 + x] = (p(0, 0) + p(0, 1) + p(1, 0) + p(1, 1)) / 2.0;
        }
    }
    ll
}

fn blocks_in(covered: (usize, usize)) -> (usize, usize) {
    (covered.0 / 2 / BLOCK, covered.1 / 2 / BLOCK)
}

fn read_block(ll: &[f32], w2: usize, bx: usize, by: usize) -> Block {
    let mut b = [[0f32; BLOCK]; BLOCK];
    for (i, row) in b.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = ll[(by * BLOCK + i) * w2 + bx * BLOCK + j];
        }
    }
    b
}

/// Bits of `message`, most significant bit of each byte first (as the reference packs them).
pub fn message_bits(message: &[u8]) -> Vec<bool> {
    message
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |k| byte >> k & 1 == 1))
        .collect()
}

/// Embeds `bits` into the image, in place, with the given per-channel steps.
pub fn embed(image: &mut RgbImage, bits: &[bool], scales: [f32; 3]) -> Result<(), WatermarkError> {
    image.check()?;
    if bits.is_empty() {
        return Err(WatermarkError::EmptyMessage);
    }
    let covered = image.covered();
    let (bw, bh) = blocks_in(covered);
    if bw * bh < bits.len() {
        return Err(WatermarkError::MessageTooLong {
            bits: bits.len(),
            blocks: bw * bh,
        });
    }
    let mut planes = image.yuv();
    let w2 = covered.0 / 2;
    for (plane, &scale) in planes.iter_mut().zip(&scales) {
        if scale <= 0.0 {
            continue;
        }
        let ll = approximation(plane, image.width, covered);
        let mut marked = ll.clone();
        for by in 0..bh {
            for bx in 0..bw {
                let bit = bits[(by * bw + bx) % bits.len()];
                let mut c = read_block(&ll, w2, bx, by);
                let (i, j) = strongest_after_first(&c);
                let magnitude = c[i][j].abs();
                let mut target =
                    ((magnitude / scale).floor() + if bit { 0.75 } else { 0.25 }) * scale;
                // The reference encoder stops here, and when the quantised value drops
                // below the block's runner-up a reader picks the wrong value (a tenth of
                // its own bits, on our test pictures). Going up whole steps until it stays
                // the largest carries the same bit and reads back with any reader.
                let runner_up = (1..BLOCK * BLOCK)
                    .filter(|&pos| (pos / BLOCK, pos % BLOCK) != (i, j))
                    .map(|pos| c[pos / BLOCK][pos % BLOCK].abs())
                    .fold(0f32, f32::max);
                while target <= runner_up + 1.0 {
                    target += scale;
                }
                c[i][j] = if c[i][j] >= 0.0 { target } else { -target };
                marked[(by * BLOCK + i) * w2 + bx * BLOCK + j] = c[i][j];
            }
        }
        // An LL change of d moves each of the four pixels under it by d / 2.
        for y in 0..covered.1 / 2 {
            for x in 0..w2 {
                let delta = (marked[y * w2 + x] - ll[y * w2 + x]) / 2.0;
                if delta != 0.0 {
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        plane[(2 * y + dy) * image.width + 2 * x + dx] += delta;
                    }
                }
            }
        }
    }
    image.set_yuv(&planes);
    Ok(())
}

/// Reads `n_bits` bits: for each, the share of blocks (over the marked channels) that voted 1.
pub fn extract(
    image: &RgbImage,
    n_bits: usize,
    scales: [f32; 3],
) -> Result<(Vec<f64>, usize), WatermarkError> {
    image.check()?;
    if n_bits == 0 {
        return Err(WatermarkError::EmptyMessage);
    }
    let covered = image.covered();
    let (bw, bh) = blocks_in(covered);
    let w2 = covered.0 / 2;
    let mut ones = vec![0usize; n_bits];
    let mut votes = vec![0usize; n_bits];
    let mut blocks = 0;
    for (channel, &scale) in scales.iter().enumerate() {
        if scale <= 0.0 {
            continue;
        }
        // Only the marked channels' approximations, straight from the pixels, one row of
        // blocks at a time: a 12-megapixel photo's three full YUV planes would be 144 MB
        // written and read again, and even one full approximation band is 12 MB.
        let mut band = vec![0f32; BLOCK * w2];
        for by in 0..bh {
            image.approximation_rows(channel, by * BLOCK, w2, &mut band);
            for bx in 0..bw {
                let slot = (by * bw + bx) % n_bits;
                let c = read_block(&band, w2, bx, 0);
                let (i, j) = strongest_after_first(&c);
                if remainder(c[i][j].abs(), scale) > 0.5 * scale {
                    ones[slot] += 1;
                }
                votes[slot] += 1;
                blocks += 1;
            }
        }
    }
    let shares = ones
        .iter()
        .zip(&votes)
        .map(|(&o, &v)| if v == 0 { 0.5 } else { o as f64 / v as f64 })
        .collect();
    Ok((shares, blocks))
}

/// Looks for a known message (by default Stable Diffusion's) with the default steps.
pub fn detect(image: &RgbImage, message: &[u8]) -> Result<Detection, WatermarkError> {
    let expected = message_bits(message);
    let (shares, blocks) = extract(image, expected.len(), DEFAULT_SCALES)?;
    let agree = shares
        .iter()
        .zip(&expected)
        .filter(|&(&share, &bit)| (share > 0.5) == bit)
        .count();
    let bit_agreement = agree as f64 / expected.len() as f64;
    Ok(Detection {
        bit_agreement,
        detected: bit_agreement >= DETECTION_AGREEMENT,
        bits: expected.len(),
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_straight_from_the_pixels_are_the_plane_approximated() {
        let image = picture(37, 22, 5);
        let covered = image.covered();
        let w2 = covered.0 / 2;
        let planes = image.yuv();
        for (channel, plane) in planes.iter().enumerate() {
            let reference = approximation(plane, image.width, covered);
            // The whole band, and a band of rows from the middle.
            for (first, rows) in [(0, covered.1 / 2), (3, 4)] {
                let mut fast = vec![0f32; w2 * rows];
                image.approximation_rows(channel, first, w2, &mut fast);
                for (a, b) in fast.iter().zip(&reference[first * w2..]) {
                    assert!((a - b).abs() <= 1e-3, "channel {channel}: {a} against {b}");
                }
            }
        }
    }

    #[test]
    fn the_remainder_is_fmod() {
        for m in [
            0.0f32, 17.999, 18.0, 35.99999, 36.0, 36.00001, 71.5, 1234.567, 4e6,
        ] {
            assert_eq!(remainder(m, 36.0), m % 36.0, "{m}");
        }
    }

    /// `extract` as the scheme reads: whole YUV planes, the whole band, `%`.
    fn extract_from_planes(image: &RgbImage, n_bits: usize) -> Vec<f64> {
        let covered = image.covered();
        let (bw, bh) = blocks_in(covered);
        let w2 = covered.0 / 2;
        let (mut ones, mut votes) = (vec![0usize; n_bits], vec![0usize; n_bits]);
        let planes = image.yuv();
        for (plane, &scale) in planes.iter().zip(&DEFAULT_SCALES) {
            if scale <= 0.0 {
                continue;
            }
            let ll = approximation(plane, image.width, covered);
            for by in 0..bh {
                for bx in 0..bw {
                    let c = read_block(&ll, w2, bx, by);
                    let (i, j) = strongest_after_first(&c);
                    let slot = (by * bw + bx) % n_bits;
                    ones[slot] += usize::from(c[i][j].abs() % scale > 0.5 * scale);
                    votes[slot] += 1;
                }
            }
        }
        ones.iter()
            .zip(&votes)
            .map(|(&o, &v)| o as f64 / v as f64)
            .collect()
    }

    #[test]
    fn the_banded_reader_reads_what_the_plane_reader_reads() {
        let bits = message_bits(STABLE_DIFFUSION_MESSAGE);
        let mut marked = picture(333, 250, 4);
        let plain = marked.clone();
        embed(&mut marked, &bits, DEFAULT_SCALES).unwrap();
        for image in [&plain, &marked] {
            let (shares, blocks) = extract(image, bits.len(), DEFAULT_SCALES).unwrap();
            assert_eq!(blocks, 41 * 31, "4×4 blocks of the 166×124 band");
            assert_eq!(shares, extract_from_planes(image, bits.len()));
        }
    }

    /// A photo-like test image: smooth colour gradients, edges and seeded noise.
    fn picture(width: usize, height: usize, seed: u32) -> RgbImage {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut data = Vec::with_capacity(width * height * 3);
        for row in 0..height {
            for col in 0..width {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (x >> 24) as f32 / 255.0 * 24.0 - 12.0;
                let edge = if (col / 37 + row / 23) % 2 == 0 {
                    40.0
                } else {
                    0.0
                };
                let r = 60.0 + 120.0 * col as f32 / width as f32 + edge + noise;
                let g = 90.0 + 80.0 * row as f32 / height as f32 + noise;
                let b = 140.0 + 50.0 * ((col + row) as f32 / 40.0).sin() + noise;
                data.extend([r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8));
            }
        }
        RgbImage {
            width,
            height,
            data,
        }
    }

    #[test]
    fn message_bits_are_most_significant_first() {
        assert_eq!(
            message_bits(b"S"),
            [false, true, false, true, false, false, true, true]
        );
        assert_eq!(message_bits(STABLE_DIFFUSION_MESSAGE).len(), 136);
    }

    #[test]
    fn an_embedded_mark_reads_back_and_an_unmarked_image_does_not() {
        for (w, h, seed) in [(512, 512, 1), (333, 250, 2), (640, 360, 3)] {
            let original = picture(w, h, seed);
            let before = detect(&original, STABLE_DIFFUSION_MESSAGE).unwrap();
            assert!(!before.detected, "{w}×{h}: {before:?}");
            assert!(before.bit_agreement < 0.8, "{w}×{h}: {before:?}");

            let mut marked = original.clone();
            embed(
                &mut marked,
                &message_bits(STABLE_DIFFUSION_MESSAGE),
                DEFAULT_SCALES,
            )
            .unwrap();
            let after = detect(&marked, STABLE_DIFFUSION_MESSAGE).unwrap();
            assert!(after.detected, "{w}×{h}: {after:?}");
            assert!(after.bit_agreement > 0.99, "{w}×{h}: {after:?}");
            // Another message is not found in the same mark.
            let other = detect(&marked, b"SomeOtherModel!!!").unwrap();
            assert!(!other.detected, "{other:?}");

            // Invisible: the mean absolute change per channel stays small.
            let change: f64 = original
                .data
                .iter()
                .zip(&marked.data)
                .map(|(&a, &b)| f64::from(a.abs_diff(b)))
                .sum::<f64>()
                / original.data.len() as f64;
            assert!(change < 6.0, "mean change {change}");
        }
    }

    #[test]
    fn the_mark_survives_mild_noise() {
        let mut marked = picture(512, 512, 7);
        embed(
            &mut marked,
            &message_bits(STABLE_DIFFUSION_MESSAGE),
            DEFAULT_SCALES,
        )
        .unwrap();
        let mut x = 99u32;
        for v in &mut marked.data {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = (x >> 30) as i16 - 2; // -2..=1
            *v = (i16::from(*v) + n).clamp(0, 255) as u8;
        }
        let found = detect(&marked, STABLE_DIFFUSION_MESSAGE).unwrap();
        assert!(found.detected, "{found:?}");
    }

    #[test]
    fn bad_images_and_messages_are_refused() {
        let tiny = picture(6, 6, 1);
        assert!(matches!(
            detect(&tiny, STABLE_DIFFUSION_MESSAGE),
            Err(WatermarkError::TooSmall(6, 6))
        ));
        let mut broken = picture(16, 16, 1);
        broken.data.pop();
        assert!(matches!(
            detect(&broken, b"x"),
            Err(WatermarkError::BadBuffer { .. })
        ));
        let mut small = picture(32, 32, 1);
        assert!(matches!(
            embed(
                &mut small,
                &message_bits(STABLE_DIFFUSION_MESSAGE),
                DEFAULT_SCALES
            ),
            Err(WatermarkError::MessageTooLong { .. })
        ));
        assert_eq!(
            embed(&mut small, &[], DEFAULT_SCALES),
            Err(WatermarkError::EmptyMessage)
        );
    }
}
