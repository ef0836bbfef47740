//! The image detector through `Scanner` on real files: every kind of picture a user may bring
//! gets a defined answer, the detector never calls a picture real, and its heat map covers the
//! picture it read.

use aqiqat_intake::Limits;
use aqiqat_scan::{ImageReason, ImageVerdict, ReaderRole, ScanResult, Scanner, VerdictBasis};
use aqiqat_voice::detector::Verdict;

fn scanner() -> Scanner {
    Scanner::embedded(Limits::default()).unwrap()
}

fn scan(name: &str, bytes: Vec<u8>) -> ScanResult {
    scanner().scan_bytes(name, bytes).unwrap()
}

/// A photo-like picture: smooth light with a sensor's noise on it (a seeded xorshift).
fn photo(width: u32, height: u32) -> image::RgbImage {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    image::RgbImage::from_fn(width, height, |x, y| {
        let mut channel = |base: f32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 17) as f32 - 8.0;
            (base + noise).clamp(0.0, 255.0) as u8
        };
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        image::Rgb([
            channel(70.0 + 120.0 * u),
            channel(60.0 + 110.0 * v),
            channel(140.0 - 60.0 * u * v),
        ])
    })
}

fn jpeg(image: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .unwrap();
    out
}

fn png(image: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// What every judged picture must satisfy, whatever the network's score.
fn assert_judged(r: &ScanResult, what: &str) {
    let image = r.image.as_ref().expect("an image finding");
    let score = image
        .score
        .unwrap_or_else(|| panic!("{what}: not judged: {}", image.reason));
    assert_ne!(
        r.verdict,
        Verdict::Human,
        "{what}: a picture is never called real"
    );
    match image.verdict {
        ImageVerdict::Synthetic => {
            assert!(score > image.threshold);
            assert_eq!(r.verdict_basis, VerdictBasis::ImageDetector);
            assert_eq!(r.verdict, Verdict::Synthetic);
        }
        ImageVerdict::Inconclusive => {
            assert!(score <= image.threshold);
            assert_eq!(image.reason_code, ImageReason::NoSignFound);
            assert_eq!(r.verdict, Verdict::Inconclusive, "{what}");
            let reason = r.reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains(&format!(
                    "seen {} generator families",
                    image.generators_seen.len()
                )) && reason.contains("not evidence the image is real"),
                "{what}: {reason}"
            );
        }
    }
    assert!(!image.generators_seen.is_empty());
    // The CLIP reader decides; the network draws the map against its own threshold; each is
    // named among the analysers with its weights.
    let role = |role: ReaderRole| {
        image
            .readers
            .iter()
            .find(|reader| reader.role == role)
            .unwrap_or_else(|| panic!("{what}: no {role:?} reader: {:?}", image.readers))
    };
    let verdict = role(ReaderRole::Verdict);
    assert_eq!(verdict.name, image.model.name);
    assert_eq!(verdict.name, "image-clip-logistic");
    assert_eq!(
        (verdict.score, verdict.threshold),
        (Some(score), Some(image.threshold))
    );
    assert!(role(ReaderRole::Features).name.starts_with("clip-vit-b16"));
    let map = role(ReaderRole::HeatMap);
    let heatmap = image.heatmap.as_ref().expect("a judged picture has a map");
    assert_eq!(map.threshold, Some(heatmap.threshold));
    assert_ne!(
        map.threshold,
        Some(image.threshold),
        "{what}: two thresholds"
    );
    for reader in &image.readers {
        assert!(
            r.analysers.iter().any(|a| a.name == reader.name
                && a.weights_sha256.as_deref() == Some(reader.weights_sha256.as_str())),
            "{what}: {} is named among the analysers",
            reader.name
        );
    }
}

fn assert_not_judged(r: &ScanResult, code: ImageReason, what: &str) {
    let image = r.image.as_ref().expect("an image finding");
    assert_eq!(image.reason_code, code, "{what}: {}", image.reason);
    assert_eq!(image.verdict, ImageVerdict::Inconclusive);
    assert!(image.score.is_none() && image.heatmap.is_none(), "{what}");
    assert_eq!(r.verdict, Verdict::Inconclusive, "{what}");
    assert_eq!(r.verdict_basis, VerdictBasis::Nothing, "{what}");
    assert!(
        r.reason
            .as_deref()
            .unwrap_or_default()
            .contains(&image.reason),
        "{what}: the verdict's reason says why: {:?}",
        r.reason
    );
}

#[test]
fn a_photo_is_scored_cell_by_cell_and_never_called_real() {
    let r = scan("photo.jpg", jpeg(&photo(640, 480), 88));
    assert_judged(&r, "a 640×480 JPEG");
    let image = r.image.unwrap();
    // Read at its own size (short side 480 > 448: brought down to 448×597).
    assert_eq!(image.analysed, Some((597, 448)));
    let map = image.heatmap.unwrap();
    assert_eq!((map.cols, map.rows), (597 / 16, 448 / 16));
    assert_eq!(map.logits.len(), map.cols * map.rows);
    // The grid lies inside the picture, in its own pixels.
    assert!(map.left >= 0.0 && map.left + map.cols as f64 * map.cell <= 640.0 + 1e-6);
    assert!(map.top >= 0.0 && map.top + map.rows as f64 * map.cell <= 480.0 + 1e-6);
    // The network's score, shown beside the map, is the cells' mean.
    let mean = map.logits.iter().map(|&v| f64::from(v)).sum::<f64>() / map.logits.len() as f64;
    let network = image
        .readers
        .iter()
        .find(|r| r.role == ReaderRole::HeatMap)
        .unwrap();
    assert!(
        (mean - network.score.unwrap()).abs() < 0.01,
        "the network's score is the cells' mean"
    );
}

#[test]
fn a_twelve_megapixel_photo_is_read_at_the_training_scale() {
    let r = scan("camera.jpg", jpeg(&photo(4000, 3000), 90));
    assert_judged(&r, "a 12-megapixel JPEG");
    let image = r.image.unwrap();
    assert_eq!(image.analysed, Some((597, 448)));
    let map = image.heatmap.unwrap();
    // A cell covers 16 analysed pixels: about 107 of the original's.
    assert!(
        (map.cell - 16.0 * 3000.0 / 448.0).abs() < 1e-6,
        "{}",
        map.cell
    );
    assert!(map.left + map.cols as f64 * map.cell <= 4000.0 + 1e-6);
}

#[test]
fn sixteen_bit_and_cmyk_pictures_are_judged_like_any_other() {
    let deep = {
        let base = photo(320, 240);
        let wide = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(320, 240, |x, y| {
            let p = base.get_pixel(x, y);
            image::Rgb([p[0], p[1], p[2]].map(|v| u16::from(v) * 257))
        });
        let mut out = Vec::new();
        wide.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    };
    assert_judged(&scan("deep.png", deep), "a 16-bit PNG");

    let base = photo(320, 240);
    let cmyk_data: Vec<u8> = base
        .pixels()
        .flat_map(|p| {
            let k = 255 - p[0].max(p[1]).max(p[2]);
            let f = |c: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - c - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [f(p[0]), f(p[1]), f(p[2]), k]
        })
        .collect();
    let mut cmyk = Vec::new();
    jpeg_encoder::Encoder::new(&mut cmyk, 90)
        .encode(&cmyk_data, 320, 240, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    assert_judged(&scan("print.jpg", cmyk), "a CMYK JPEG");
}

#[test]
fn pictures_the_detector_cannot_read_get_inconclusive_with_the_reason() {
    // Tiny: a thumbnail or an avatar.
    let tiny = scan("avatar.png", png(&photo(120, 90)));
    assert_not_judged(&tiny, ImageReason::TooSmall, "a 120×90 picture");

    // An animated GIF: its palette erases the traces.
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for shift in [0u8, 40] {
            let frame = image::RgbaImage::from_fn(200, 160, |x, y| {
                image::Rgba([(x as u8).wrapping_add(shift), y as u8, 90, 255])
            });
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let animated = scan("moving.gif", gif);
    assert_not_judged(&animated, ImageReason::Palette, "an animated GIF");

    // Recompressed to death, as a chat forwarded many times does.
    let crushed = scan("forwarded.jpg", jpeg(&photo(640, 480), 25));
    assert_not_judged(
        &crushed,
        ImageReason::HeavilyCompressed,
        "a JPEG at quality 25",
    );

    // A screenshot: flat panels, a few lines of "text".
    let screenshot = image::RgbImage::from_fn(800, 500, |x, y| {
        if y < 60 {
            image::Rgb([30, 50, 90])
        } else if (y / 20) % 3 == 0 && (x / 6) % 5 != 0 && x > 40 && x < 600 {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([245, 245, 245])
        }
    });
    let shot = scan("screen.png", png(&screenshot));
    assert_not_judged(&shot, ImageReason::Flat, "a screenshot");

    // HEIF/AVIF: hashed and checked for labels, not decoded by this build.
    let avif = b"\0\0\0\x1cftypavif\0\0\0\0mif1avif".to_vec();
    let heif = scan("photo.avif", avif);
    assert_not_judged(&heif, ImageReason::NotDecoded, "an AVIF");
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_decoded() {
    // A valid PNG header that claims 60 000 × 60 000 pixels (10.8 GB of RGB).
    let mut bomb = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bomb, 60_000, 60_000);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        // One row of data, then the file ends.
        let _ = writer.write_image_data(&[]);
    }
    let err = scanner().scan_bytes("bomb.png", bomb).unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
}
