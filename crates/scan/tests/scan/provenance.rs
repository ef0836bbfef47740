//! The verdict policy with each kind of label, through `Scanner` on real files: pictures
//! written by the `png` crate (one carrying the Stable Diffusion watermark embedded here, one
//! a web UI's generation record), and an MP3 encoded by ffmpeg with an AI tool's name in its
//! tags.

use aqiqat_intake::Limits;
use aqiqat_provenance::watermark::{self, RgbImage, STABLE_DIFFUSION_MESSAGE};
use aqiqat_scan::{Scanner, VerdictBasis};
use aqiqat_voice::detector::Verdict;
use std::path::PathBuf;

fn scanner() -> Scanner {
    Scanner::embedded(Limits::default()).unwrap()
}

fn png(width: u32, height: u32, rgb: &[u8], texts: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        for (k, v) in texts {
            encoder
                .add_text_chunk(k.to_string(), v.to_string())
                .unwrap();
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(rgb).unwrap();
    }
    out
}

/// A smooth, photo-like gradient with some texture.
fn picture(width: usize, height: usize) -> RgbImage {
    let mut data = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let t = ((x * 7 + y * 3) % 23) as f32;
            data.push((60.0 + 120.0 * x as f32 / width as f32 + t) as u8);
            data.push((40.0 + 150.0 * y as f32 / height as f32 + t) as u8);
            data.push((90.0 + 60.0 * ((x + y) % 64) as f32 / 64.0) as u8);
        }
    }
    RgbImage {
        width,
        height,
        data,
    }
}

#[test]
fn the_stable_diffusion_watermark_decides_synthetic() {
    let mut image = picture(256, 192);
    let plain = png(256, 192, &image.data, &[]);
    watermark::embed(
        &mut image,
        &watermark::message_bits(STABLE_DIFFUSION_MESSAGE),
        watermark::DEFAULT_SCALES,
    )
    .unwrap();
    let marked = png(256, 192, &image.data, &[]);

    let r = scanner().scan_bytes("marked.png", marked).unwrap();
    assert_eq!(r.verdict, Verdict::Synthetic);
    assert_eq!(r.verdict_basis, VerdictBasis::Watermark);
    assert!(r.reason.as_deref().unwrap().contains("watermark"));

    // Without the watermark no label decides: the verdict is the image detector's own (this
    // drawn pattern's periodic texture may well look generated to it), never `human`.
    let r = scanner().scan_bytes("plain.png", plain).unwrap();
    assert!(r.provenance.declares_ai.is_none());
    let image = r.image.as_ref().unwrap();
    match image.verdict {
        aqiqat_scan::ImageVerdict::Synthetic => {
            assert_eq!(r.verdict, Verdict::Synthetic);
            assert_eq!(r.verdict_basis, VerdictBasis::ImageDetector);
        }
        aqiqat_scan::ImageVerdict::Inconclusive => {
            assert_eq!(r.verdict, Verdict::Inconclusive);
            assert_eq!(r.verdict_basis, VerdictBasis::Nothing);
        }
    }
}

#[test]
fn a_generator_record_in_metadata_decides_only_where_no_detector_can() {
    let image = picture(64, 48);
    let bytes = png(
        64,
        48,
        &image.data,
        &[(
            "parameters",
            "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: sd15",
        )],
    );
    let r = scanner().scan_bytes("cat.png", bytes).unwrap();
    assert_eq!(r.verdict, Verdict::Synthetic);
    assert_eq!(r.verdict_basis, VerdictBasis::Metadata);
    assert!(r.reason.as_deref().unwrap().contains("forged"));
}

fn smoke_bonafide() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice");
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let row = manifest
        .lines()
        .skip(1)
        .find(|l| l.split('\t').nth(1) == Some("bonafide"))
        .unwrap();
    dir.join(row.split('\t').next().unwrap())
}

#[test]
fn an_ai_tool_named_in_audio_tags_never_overrules_the_detector() {
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("voice.mp3");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(smoke_bonafide())
        .args(["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "3"])
        .args(["-metadata", "encoded_by=ElevenLabs Multilingual v2"])
        .arg(&mp3)
        .status()
        .expect("ffmpeg (Debian's) is installed");
    assert!(status.success());
    let r = scanner().scan_file(&mp3).unwrap();
    let declared = r.provenance.declares_ai.as_ref().expect("the tag is read");
    assert!(declared.says.contains("elevenlabs"), "{}", declared.says);
    let voice = r.voice.as_ref().unwrap();
    if voice.verdict == Verdict::Inconclusive {
        assert_eq!(r.verdict_basis, VerdictBasis::Metadata);
        assert_eq!(r.verdict, Verdict::Synthetic);
    } else {
        assert_eq!(r.verdict_basis, VerdictBasis::VoiceDetector);
        assert_eq!(r.verdict, voice.verdict);
    }
}
