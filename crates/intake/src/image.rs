//! Still images: recognised from their first bytes, hashed, measured and decoded to 8-bit RGB
//! by the `image` crate (PNG, JPEG, WebP, GIF), within bounds that hold whatever the file
//! declares. HEIF and AVIF are recognised and hashed but not decoded: no maintained pure-Rust
//! decoder exists, and their provenance (C2PA, metadata) is read from the bytes anyway.

use crate::{IntakeError, Problem};
use serde::Serialize;
use std::io::Cursor;
use std::path::Path;

/// Image containers intake recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
    Gif,
    /// HEIF (HEIC) and AVIF: recognised, not decoded.
    Heif,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Heif => "heif",
        }
    }

    /// The name people know it by, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Gif => "GIF",
            ImageFormat::Heif => "HEIF",
        }
    }

    /// The media type, as C2PA tools name it.
    pub fn media_type(self, head: &[u8]) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Heif if head.get(8..12) == Some(b"avif") => "image/avif",
            ImageFormat::Heif => "image/heic",
        }
    }
}

/// The image format `head` (the first bytes of a file) begins with, if any.
pub fn sniff_image(head: &[u8]) -> Option<ImageFormat> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some(ImageFormat::Webp)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if at(4, b"ftyp")
        && [&b"avif"[..], b"avis", b"heic", b"heix", b"mif1"]
            .iter()
            .any(|brand| at(8, brand))
    {
        Some(ImageFormat::Heif)
    } else {
        None
    }
}

/// What an image file is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageFacts {
    /// Always `image`: tells a reader of a scan result this is not audio.
    pub kind: &'static str,
    pub path: String,
    /// SHA-256 of the exact bytes, lowercase hex.
    pub sha256: String,
    pub size_bytes: u64,
    /// `png`, `jpeg`, `webp`, `gif` or `heif`.
    pub container: &'static str,
    pub media_type: &'static str,
    /// Pixel size, when the image was decoded.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Decoded pixels: 8-bit RGB, row-major, no padding.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Bounds for images; the decoder refuses before allocating beyond them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageLimits {
    /// Largest file accepted. Default: 256 MiB.
    pub max_bytes: u64,
    /// Largest width or height. Default: 16 384 pixels.
    pub max_side: u32,
    /// Most memory the decoder may allocate. Default: 512 MiB: a 100-megapixel photograph
    /// fits; several workers decoding hostile pictures at once cannot exhaust a server.
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_side: 16_384,
            max_alloc: 512 << 20,
        }
    }
}

impl ImageLimits {
    /// Refuses a file larger than `max_bytes`, before it is read.
    pub fn check_size(&self, size: u64) -> Result<(), Problem> {
        if size > self.max_bytes {
            return Err(Problem::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

/// Hashes, measures and decodes an image already in memory; `label` names it in messages.
/// HEIF/AVIF come back without pixels.
pub fn load_image(
    label: &str,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<(ImageFacts, Option<RgbImage>), IntakeError> {
    load_image_into(label, bytes, limits, Vec::new())
}

/// [`load_image`], decoding 8-bit RGB pictures into `buffer`'s memory (grown if it is too
/// small) instead of fresh memory. A caller that scans picture after picture hands back the
/// last one's pixels: a 12-megapixel photo's 36 MB is above the size the system allocator
/// recycles, so fresh memory costs some 9,000 page faults per picture (about a tenth of a
/// scan, measured in `docs/model-card-image.md`). Other colour types are converted into new
/// memory, as [`load_image`] does.
pub fn load_image_into(
    label: &str,
    bytes: &[u8],
    limits: &ImageLimits,
    buffer: Vec<u8>,
) -> Result<(ImageFacts, Option<RgbImage>), IntakeError> {
    let fail = |problem| IntakeError::new(Path::new(label), problem);
    if bytes.is_empty() {
        return Err(fail(Problem::Empty));
    }
    limits.check_size(bytes.len() as u64).map_err(fail)?;
    let format = sniff_image(bytes).ok_or_else(|| fail(Problem::UnrecognisedFormat))?;
    let mut facts = ImageFacts {
        kind: "image",
        path: label.to_owned(),
        sha256: crate::hash::sha256_bytes(bytes),
        size_bytes: bytes.len() as u64,
        container: format.name(),
        media_type: format.media_type(bytes),
        width: None,
        height: None,
    };
    if format == ImageFormat::Heif {
        return Ok((facts, None));
    }
    let rgb = crate::decode::contain_panics(|| decode(bytes, format, limits, buffer))
        .map_err(|problem| match problem {
            // A panic inside the decoder is reported as what it is: a corrupt picture.
            Problem::CorruptStream { detail } => Problem::CorruptImage {
                format: format.display_name(),
                detail,
            },
            other => other,
        })
        .map_err(fail)?;
    facts.width = Some(rgb.width);
    facts.height = Some(rgb.height);
    Ok((facts, Some(rgb)))
}

fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &ImageLimits,
    mut buffer: Vec<u8>,
) -> Result<RgbImage, Problem> {
    use image::ImageDecoder;
    let codec = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Heif => unreachable!("HEIF is not decoded"),
    };
    let problem = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => Problem::Implausible(format!("image too large: {l}")),
        image::ImageError::Unsupported(u) => Problem::UnsupportedCodec(u.to_string()),
        other => Problem::CorruptImage {
            format: format.display_name(),
            detail: other.to_string(),
        },
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), codec);
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_alloc);
    reader.limits(bounds);
    // The decoder refuses sides above the bounds; the pixel buffer is checked here, before
    // anything is allocated for it.
    let decoder = reader.into_decoder().map_err(problem)?;
    let (width, height) = decoder.dimensions();
    let size = decoder.total_bytes();
    if size > limits.max_alloc {
        return Err(Problem::Implausible(format!(
            "image too large: {width}×{height} pixels need {size} bytes, above the limit of {}",
            limits.max_alloc
        )));
    }
    if decoder.color_type() == image::ColorType::Rgb8 {
        // Zeroed as fresh memory would be: a decoder that stops early on a damaged file may
        // leave the rest unwritten, and the last picture's pixels must never show through.
        // On memory already mapped that costs a few milliseconds, not the page faults.
        buffer.clear();
        buffer.resize(size as usize, 0);
        decoder.read_image(&mut buffer).map_err(problem)?;
        return Ok(RgbImage {
            width,
            height,
            pixels: buffer,
        });
    }
    let rgb = image::DynamicImage::from_decoder(decoder)
        .map_err(problem)?
        .into_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        pixels: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_their_first_bytes() {
        assert_eq!(
            sniff_image(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff_image(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff_image(b"GIF89a"), Some(ImageFormat::Gif));
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0";
        assert_eq!(sniff_image(avif), Some(ImageFormat::Heif));
        assert_eq!(ImageFormat::Heif.media_type(avif), "image/avif");
        // An MP4 video is not an image.
        assert_eq!(sniff_image(b"\0\0\0\x1cftypisom\0\0\0\0"), None);
    }

    #[test]
    fn heif_is_hashed_without_pixels_and_bad_input_is_refused() {
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0mif1avif";
        let (facts, pixels) = load_image("x.avif", avif, &ImageLimits::default()).unwrap();
        assert!(pixels.is_none());
        assert_eq!(facts.container, "heif");
        assert_eq!(facts.sha256.len(), 64);

        let limits = ImageLimits::default();
        assert_eq!(
            load_image("e.png", b"", &limits)
                .unwrap_err()
                .problem
                .code(),
            "empty"
        );
        let cut = load_image("c.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", &limits).unwrap_err();
        assert_eq!(cut.problem.code(), "corrupt_image");
        assert!(cut.to_string().contains("PNG"), "{cut}");
        let small = ImageLimits {
            max_bytes: 4,
            ..limits
        };
        assert_eq!(
            load_image("b.png", b"\x89PNG\r\n\x1a\n", &small)
                .unwrap_err()
                .problem
                .code(),
            "too_large"
        );
    }

    /// A seeded photo-like JPEG, `width`×`height`, quality 90.
    fn jpeg(width: u16, height: u16, seed: u32) -> Vec<u8> {
        let mut x = seed;
        let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height) * 3)
            .map(|i| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((i / 3 % usize::from(width)) as u32 / 2 + (x >> 28)) as u8
            })
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn a_recycled_buffer_decodes_what_fresh_memory_decodes() {
        let limits = ImageLimits::default();
        let (first, second) = (jpeg(300, 200, 1), jpeg(320, 240, 2));
        let fresh = load_image("a.jpg", &first, &limits).unwrap().1.unwrap();

        let other = load_image("b.jpg", &second, &limits).unwrap().1.unwrap();
        let (at, capacity) = (other.pixels.as_ptr(), other.pixels.capacity());
        let recycled = load_image_into("a.jpg", &first, &limits, other.pixels)
            .unwrap()
            .1
            .unwrap();
        assert_eq!(recycled, fresh);
        // The smaller picture went into the larger one's memory.
        assert!(capacity >= recycled.pixels.len());
        assert_eq!(recycled.pixels.as_ptr(), at);

        // A file cut short decodes (or fails) the same way into either, with none of the
        // previous picture's pixels showing through.
        let cut = &first[..first.len() / 2];
        let fresh = load_image("cut.jpg", cut, &limits).map(|(_, p)| p);
        let previous = load_image("b.jpg", &second, &limits).unwrap().1.unwrap();
        let recycled = load_image_into("cut.jpg", cut, &limits, previous.pixels).map(|(_, p)| p);
        match (fresh, recycled) {
            (Ok(fresh), Ok(recycled)) => assert_eq!(fresh, recycled),
            (Err(fresh), Err(recycled)) => {
                assert_eq!(fresh.problem.code(), recycled.problem.code())
            }
            (fresh, recycled) => panic!("{fresh:?} against {recycled:?}"),
        }
    }

    #[test]
    fn a_picture_whose_pixels_exceed_the_memory_bound_is_refused_before_decoding() {
        // 9 000 × 9 000 RGB is 243 MB: within the side limit, above a 100 MB bound.
        let mut header = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut header, 9_000, 9_000);
            encoder.set_color(png::ColorType::Rgb);
            let mut writer = encoder.write_header().unwrap();
            // The first rows' data, then the file ends.
            let mut stream = writer.stream_writer().unwrap();
            std::io::Write::write_all(&mut stream, &vec![0u8; 4 * 9_000 * 3]).unwrap();
            std::io::Write::flush(&mut stream).unwrap();
            std::mem::forget(stream);
        }
        let limits = ImageLimits {
            max_alloc: 100 << 20,
            ..ImageLimits::default()
        };
        let err = load_image("big.png", &header, &limits).unwrap_err();
        assert_eq!(err.problem.code(), "implausible_parameters", "{err}");
        assert!(err.to_string().contains("too large"), "{err}");
    }
}
