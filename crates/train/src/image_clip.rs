//! The frozen CLIP encoder's features for the image candidates (`clip-logistic`) and the
//! shipped head (`image-clip-head`): each corpus image brought to the encoder's 224×224 square
//! by `aqiqat_visual::clip::square`, as a scan brings it.
//!
//! Six blocks cost a fraction of a second per image, so the features of a corpus are kept
//! beside it (`clip-features.f32`, with the weights' hash and the image count in its header)
//! and computed again only when either changes.

use std::path::Path;

use aqiqat_intake::image::RgbImage;
use aqiqat_visual::clip::{ClipEncoder, WIDTH, square};

/// The converted encoder in this repository.
pub const WEIGHTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../visual/weights/clip-vit-b16-6.safetensors"
);

/// Every image's 1,536 features (class token, mean patch token), from the cache beside the
/// corpus when it matches.
pub fn features(corpus: &Path, images: &[RgbImage]) -> Result<Vec<Vec<f64>>, String> {
    let bytes = std::fs::read(WEIGHTS).map_err(|e| format!("{WEIGHTS}: {e}"))?;
    // The path's name is in the key: the cache holds what a scan computes (the 8-bit path).
    let key = format!(
        "{} {} {}\n",
        aqiqat_intake::hash::sha256_bytes(&bytes),
        images.len(),
        aqiqat_visual::clip::PATH_NAME
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
    // One image per thread at a time (each forward runs on one thread).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let slots = std::sync::Mutex::new(vec![None; images.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(image) = images.get(i) else { break };
                    let f: Result<Vec<f32>, String> = Ok(encoder.features(&square(image)));
                    slots.lock().expect("no panics")[i] = Some(f);
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(500) {
                        eprintln!(
                            "CLIP features: {n}/{} ({:.0?})",
                            images.len(),
                            started.elapsed()
                        );
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(images.len());
    let mut raw = key.into_bytes();
    for f in slots.into_inner().expect("no panics") {
        let f = f.expect("every image read")?;
        raw.extend(f.iter().flat_map(|v| v.to_le_bytes()));
        out.push(f.into_iter().map(f64::from).collect());
    }
    std::fs::write(&cache, raw).map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(out)
}
