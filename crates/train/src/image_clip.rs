//! The frozen CLIP encoder's features for the image candidates (`clip-logistic`): each corpus
//! image brought to the encoder's 224×224 square as the encoder was measured with (shortest side
//! to 224 with a bicubic filter, then the centre square), read by `aqiqat_visual::clip`.
//!
//! Six blocks cost a fraction of a second per image, so the features of a corpus are kept
//! beside it (`clip-features.f32`, with the weights' hash and the image count in its header)
//! and computed again only when either changes.

use std::path::Path;

use aqiqat_intake::image::RgbImage;
use aqiqat_visual::clip::{ClipEncoder, SIDE, WIDTH};

/// The converted encoder in this repository.
pub const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../visual/weights/clip-vit-b16-6.safetensors"
);

/// The encoder's input: the shortest side brought to 224 (Catmull-Rom, a bicubic filter that
/// widens its support when it shrinks, as PIL's bicubic does), then the centre 224×224.
pub fn square(image: &RgbImage) -> Result<Vec<u8>, String> {
    let buffer = image::RgbImage::from_raw(image.width, image.height, image.pixels.clone())
        .ok_or("pixels do not match the size")?;
    let short = image.width.min(image.height).max(1) as f64;
    let scaled = |side: u32| ((side as f64 * SIDE as f64 / short).round() as u32).max(SIDE as u32);
    let (w, h) = (scaled(image.width), scaled(image.height));
    let resized = image::imageops::resize(&buffer, w, h, image::imageops::FilterType::CatmullRom);
    let (left, top) = ((w - SIDE as u32) / 2, (h - SIDE as u32) / 2);
    Ok(
        image::imageops::crop_imm(&resized, left, top, SIDE as u32, SIDE as u32)
            .to_image()
            .into_raw(),
    )
}

/// Every image's 1,536 features (class token, mean patch token), from the cache beside the
/// corpus when it matches.
pub fn features(corpus: &Path, images: &[RgbImage]) -> Result<Vec<Vec<f64>>, String> {
    let bytes = std::fs::read(WEIGHTS).map_err(|e| format!("{WEIGHTS}: {e}"))?;
    let key = format!(
        "{} {}\n",
        aqiqat_intake::hash::sha256_bytes(&bytes),
        images.len()
    );
    let cache = corpus.join("clip-features.f32");
    let dims = 2 * WIDTH;
    if let Ok(stored) = std::fs::read(&cache)
        && stored.starts_with(key.as_bytes())
        && stored.len() == key.len() + images.len() * dims * 4
    {
        eprintln!("CLIP features from {}", cache.display());
        return Ok(stored[key.len()..]
            .chunks_exact(dims * 4)
            .map(|row| {
                row.chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect()
            })
            .collect());
    }
    let encoder = ClipEncoder::from_bytes(&bytes)?;
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(images.len());
    let mut raw = key.into_bytes();
    for (i, image) in images.iter().enumerate() {
        let f = encoder
            .features(&square(image)?)
            .map_err(|e| e.to_string())?;
        raw.extend(f.iter().flat_map(|v| v.to_le_bytes()));
        out.push(f.into_iter().map(f64::from).collect());
        if (i + 1) % 500 == 0 {
            eprintln!(
                "CLIP features: {}/{} ({:.0?})",
                i + 1,
                images.len(),
                started.elapsed()
            );
        }
    }
    std::fs::write(&cache, raw).map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_square_is_the_centre_of_the_image_at_224_on_its_short_side() {
        // Left third red, middle third green, right third blue, 600×300: at 448×224 the centre
        // square holds the green band whole and a quarter-width of red and blue on each side.
        let (w, h) = (600u32, 300u32);
        let mut pixels = Vec::with_capacity((w * h * 3) as usize);
        for _ in 0..h {
            for x in 0..w {
                pixels.extend(match x * 3 / w {
                    0 => [255, 0, 0],
                    1 => [0, 255, 0],
                    _ => [0, 0, 255],
                });
            }
        }
        let square = square(&RgbImage {
            width: w,
            height: h,
            pixels,
        })
        .unwrap();
        assert_eq!(square.len(), SIDE * SIDE * 3);
        let at = |x: usize, y: usize| &square[(y * SIDE + x) * 3..(y * SIDE + x) * 3 + 3];
        assert!(at(0, 100)[0] > 200, "left edge is red: {:?}", at(0, 100));
        assert!(at(112, 100)[1] > 200, "centre is green: {:?}", at(112, 100));
        assert!(
            at(223, 100)[2] > 200,
            "right edge is blue: {:?}",
            at(223, 100)
        );
    }
}
