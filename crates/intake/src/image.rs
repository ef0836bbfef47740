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
    let rgb = crate::decode::contain_panics(|| decode(bytes, format, limits))
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

fn decode(bytes: &[u8], format: ImageFormat, limits: &ImageLimits) -> Result<RgbImage, Problem> {
    let codec = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Heif => unreachable!("HEIF is not decoded"),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), codec);
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_alloc);
    reader.limits(bounds);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => Problem::Implausible(format!("image too large: {l}")),
        image::ImageError::Unsupported(u) => Problem::UnsupportedCodec(u.to_string()),
        other => Problem::CorruptImage {
            format: format.display_name(),
            detail: other.to_string(),
        },
    })?;
    // `into_rgb8` keeps an RGB decode's buffer (a 12-megapixel copy saved) and converts others.
    let rgb = decoded.into_rgb8();
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
}
