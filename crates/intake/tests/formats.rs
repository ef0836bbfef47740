//! Every format intake claims, made by ffmpeg from one known signal, must decode to that signal.

mod common;

use aqiqat_intake::{AudioStream, Limits, probe};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    file: &'static str,
    /// ffmpeg arguments after `-i source`; `None` input args mean a video is muxed in.
    args: &'static [&'static str],
    with_video: bool,
    container: &'static str,
    codec: &'static str,
    rate: u32,
    channels: usize,
}

const CASES: &[Case] = &[
    case(
        "s16.wav",
        &["-c:a", "pcm_s16le"],
        "wav",
        "pcm_s16le",
        44_100,
    ),
    case("u8.wav", &["-c:a", "pcm_u8"], "wav", "pcm_u8", 44_100),
    case(
        "s24.wav",
        &["-c:a", "pcm_s24le"],
        "wav",
        "pcm_s24le",
        44_100,
    ),
    case(
        "s32.wav",
        &["-c:a", "pcm_s32le"],
        "wav",
        "pcm_s32le",
        44_100,
    ),
    case(
        "f32.wav",
        &["-c:a", "pcm_f32le"],
        "wav",
        "pcm_f32le",
        44_100,
    ),
    case(
        "mulaw.wav",
        &["-ar", "8000", "-c:a", "pcm_mulaw"],
        "wav",
        "pcm_mulaw",
        8_000,
    ),
    case(
        "alaw.wav",
        &["-ar", "8000", "-c:a", "pcm_alaw"],
        "wav",
        "pcm_alaw",
        8_000,
    ),
    case(
        "a.aiff",
        &["-c:a", "pcm_s16be"],
        "aiff",
        "pcm_s16be",
        44_100,
    ),
    case("a.flac", &["-c:a", "flac"], "flac", "flac", 44_100),
    case(
        "a.mp3",
        &["-c:a", "libmp3lame", "-b:a", "128k"],
        "mp3",
        "mp3",
        44_100,
    ),
    case("a.ogg", &["-c:a", "libvorbis"], "ogg", "vorbis", 44_100),
    case(
        "voice.opus",
        &["-ar", "48000", "-c:a", "libopus", "-b:a", "32k"],
        "ogg",
        "opus",
        48_000,
    ),
    case(
        "memo.m4a",
        &["-ar", "48000", "-c:a", "aac", "-b:a", "96k"],
        "mp4",
        "aac",
        48_000,
    ),
    case(
        "a.aac",
        &["-c:a", "aac", "-f", "adts"],
        "adts",
        "aac",
        44_100,
    ),
    video(
        "clip.mp4",
        &["-c:v", "mpeg4", "-c:a", "aac"],
        "mp4",
        "aac",
        44_100,
    ),
    video(
        "clip.mov",
        &["-c:v", "mpeg4", "-c:a", "aac"],
        "mp4",
        "aac",
        44_100,
    ),
    video(
        "clip.webm",
        &["-c:v", "libvpx", "-c:a", "libopus"],
        "matroska",
        "opus",
        48_000,
    ),
    video(
        "clip.mkv",
        &["-c:v", "mpeg4", "-c:a", "flac"],
        "matroska",
        "flac",
        44_100,
    ),
];

const fn case(
    file: &'static str,
    args: &'static [&'static str],
    container: &'static str,
    codec: &'static str,
    rate: u32,
) -> Case {
    Case {
        file,
        args,
        with_video: false,
        container,
        codec,
        rate,
        channels: 2,
    }
}

const fn video(
    file: &'static str,
    args: &'static [&'static str],
    container: &'static str,
    codec: &'static str,
    rate: u32,
) -> Case {
    Case {
        with_video: true,
        ..case(file, args, container, codec, rate)
    }
}

fn make(case: &Case, source: &Path, dir: &Path) -> PathBuf {
    let out = dir.join(case.file);
    if !case.with_video {
        return ffmpeg(source, case.args, &out);
    }
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=64x48:rate=10")
        .arg("-i")
        .arg(source)
        .args(["-shortest", "-map", "0:v", "-map", "1:a"])
        .args(case.args)
        .arg(&out)
        .status()
        .expect("ffmpeg is required for the intake tests");
    assert!(status.success());
    out
}

/// Asserts the decoded mono stream carries both source tones at half level, nothing else loud.
fn assert_tones(samples: &[f32], rate: u32, what: &str) {
    let body = &samples[samples.len() / 6..samples.len() * 5 / 6];
    let left = tone_power(body, rate, LEFT_HZ);
    let right = tone_power(body, rate, RIGHT_HZ);
    let absent = tone_power(body, rate, 2_500.0f32.min(rate as f32 * 0.45));
    // Each tone is 0.4 on one channel, so 0.2 after the down-mix: power 0.2² / 4 = 0.01.
    for (name, p) in [("440 Hz", left), ("1 kHz", right)] {
        assert!((0.006..0.014).contains(&p), "{what}: {name} power {p}");
    }
    assert!(
        absent < 0.000_5,
        "{what}: energy where there is none ({absent})"
    );
}

#[test]
fn every_format_decodes_to_the_source_signal() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    for case in CASES {
        let path = make(case, &source, dir.path());
        let facts =
            probe(&path, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(facts.container, case.container, "{}", case.file);
        assert_eq!(facts.codec, case.codec, "{}", case.file);
        assert_eq!(facts.sample_rate, case.rate, "{}", case.file);
        assert_eq!(facts.channels, case.channels, "{}", case.file);
        assert!(
            (facts.duration_s - f64::from(SOURCE_SECONDS)).abs() < 0.12,
            "{}: decoded {} s",
            case.file,
            facts.duration_s
        );
        assert_eq!(facts.sha256, sha256sum(&path), "{}", case.file);
        assert_eq!(facts.size_bytes, std::fs::metadata(&path).unwrap().len());
        assert!(facts.bitrate_bps > 8_000, "{}", case.file);
        assert_eq!(facts.decode_errors, 0, "{}", case.file);

        for rate in [16_000, 8_000] {
            let stream = AudioStream::open(&path, rate, &Limits::default()).unwrap();
            assert_eq!(stream.sample_rate(), rate);
            let samples = stream.read_to_end().unwrap();
            let expected = (facts.duration_s * f64::from(rate)).ceil() as usize;
            assert!(
                samples.len().abs_diff(expected) <= 1,
                "{} at {rate} Hz: {} samples, expected {expected}",
                case.file,
                samples.len()
            );
            assert_tones(&samples, rate, &format!("{} at {rate} Hz", case.file));
        }
    }
}

#[test]
fn pcm_decodes_bit_exactly_before_resampling() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let mut reader = hound::WavReader::open(&source).unwrap();
    let expected: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect::<Vec<_>>()
        .chunks_exact(2)
        .map(|lr| 0.5 * (lr[0] + lr[1]))
        .collect();
    let got = AudioStream::open_native(&source, &Limits::default())
        .unwrap()
        .read_to_end()
        .unwrap();
    assert_eq!(got.len(), expected.len());
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "largest difference {worst}");
}

#[test]
fn a_wav_streamed_through_a_pipe_has_no_length_and_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&source)
        .args(["-ar", "16000", "-f", "wav", "-"])
        .output()
        .unwrap();
    let piped = dir.path().join("piped.wav");
    std::fs::write(&piped, &out.stdout).unwrap();
    let facts = probe(&piped, &Limits::default()).unwrap();
    assert!((facts.duration_s - 3.0).abs() < 0.1, "{}", facts.duration_s);
}

#[test]
fn amr_nb_phone_recordings_decode() {
    let dir = tempfile::tempdir().unwrap();
    let pcm: Vec<i16> = (0..24_000)
        .map(|i| {
            ((i as f32 * 2.0 * std::f32::consts::PI * LEFT_HZ / 8_000.0).sin() * 9_000.0) as i16
        })
        .collect();
    let path = dir.path().join("call.amr");
    std::fs::write(&path, aqiqat_intake::decode::amr::encode_amr_nb(&pcm)).unwrap();
    let facts = probe(&path, &Limits::default()).unwrap();
    assert_eq!(
        (facts.container.as_str(), facts.codec.as_str()),
        ("amr", "amr_nb")
    );
    assert_eq!((facts.sample_rate, facts.channels), (8_000, 1));
    assert!((facts.duration_s - 3.0).abs() < 0.03);
    let samples = AudioStream::open(&path, 16_000, &Limits::default())
        .unwrap()
        .read_to_end()
        .unwrap();
    assert_eq!(samples.len(), 48_000);
    // Amplitude 9000/32768 = 0.275, power 0.275² / 4 ≈ 0.019; AMR-NB keeps most of it.
    let power = tone_power(&samples[8_000..40_000], 16_000, LEFT_HZ);
    assert!((0.012..0.025).contains(&power), "440 Hz power {power}");
}

/// Mono 16-bit PCM at `rate`: silence with one click at `click_s`.
fn click_wav(dir: &Path, rate: u32, seconds: f32, click_s: f32) -> PathBuf {
    let path = dir.join(format!("click-{rate}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    let click = (click_s * rate as f32) as usize;
    for i in 0..(seconds * rate as f32) as usize {
        let s: i16 = if (click..click + 4).contains(&i) {
            20_000
        } else {
            0
        };
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    path
}

/// What ffmpeg decodes `path` to, as f32 samples (`before`: options for the input, such as a
/// decoder; `after`: for the output).
fn ffmpeg_samples(before: &[&str], path: &Path, after: &[&str]) -> Vec<f32> {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(before)
        .arg("-i")
        .arg(path)
        .args(after)
        .args(["-f", "f32le", "-"])
        .output()
        .unwrap()
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn loudest(samples: &[f32]) -> usize {
    samples
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(i, _)| i)
        .unwrap()
}

/// Opus's pre-skip (the encoder's look-ahead, 6.5 ms at 48 kHz) is dropped, so the decoded
/// audio lines up with the source sample for sample and has its length, as ffmpeg decodes it:
/// a timeline's seconds must be the recording's seconds.
#[test]
fn opus_decodes_in_step_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let source = click_wav(dir.path(), 48_000, 2.0, 1.0);
    let ogg = ffmpeg(
        &source,
        &["-c:a", "libopus", "-b:a", "64k"],
        &dir.path().join("click.ogg"),
    );
    for rate in [48_000u32, 16_000] {
        let got = AudioStream::open(&ogg, rate, &Limits::default())
            .unwrap()
            .read_to_end()
            .unwrap();
        let reference = ffmpeg_samples(&[], &ogg, &["-ac", "1", "-ar", &rate.to_string()]);
        assert_eq!(got.len(), 2 * rate as usize, "{rate} Hz");
        assert_eq!(got.len(), reference.len(), "{rate} Hz: ffmpeg's length");
        let at = loudest(&got) as i64;
        assert!(
            (at - rate as i64).abs() <= (rate / 1000) as i64,
            "{rate} Hz: click at {at}"
        );
        assert!(
            (at - loudest(&reference) as i64).abs() <= 2,
            "{rate} Hz: ffmpeg puts it elsewhere"
        );
    }
}

/// The pure-Rust AMR-NB decoder against ffmpeg's own (independent, floating-point) one on the
/// same speech-like file: the same length, in step, and the same signal within the codec's
/// precision. (Checked once by hand against opencore, the reference library: identical
/// samples on speech at 4.75, 7.4 and 12.2 kbit/s.)
#[test]
fn amr_nb_decodes_as_ffmpeg_decodes() {
    let dir = tempfile::tempdir().unwrap();
    // A voiced, vowel-like signal: harmonics of 140 Hz under a slow envelope.
    let pcm: Vec<i16> = (0..16_000)
        .map(|i| {
            let t = i as f32 / 8_000.0;
            let env = 0.5 + 0.5 * (t * 3.0 * std::f32::consts::TAU).sin();
            let voice: f32 = (1..20)
                .map(|k| (t * 140.0 * k as f32 * std::f32::consts::TAU).sin() / k as f32)
                .sum();
            (voice * env * 4_000.0) as i16
        })
        .collect();
    let path = dir.path().join("voice.amr");
    std::fs::write(&path, aqiqat_intake::decode::amr::encode_amr_nb(&pcm)).unwrap();
    let ours = AudioStream::open(&path, 8_000, &Limits::default())
        .unwrap()
        .read_to_end()
        .unwrap();
    let theirs = ffmpeg_samples(&["-c:a", "amrnb"], &path, &[]);
    assert_eq!(ours.len(), 16_000);
    assert_eq!(ours.len(), theirs.len());
    let signal: f32 = theirs[800..].iter().map(|x| x * x).sum();
    let error: f32 = ours[800..]
        .iter()
        .zip(&theirs[800..])
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let snr = 10.0 * (signal / error).log10();
    assert!(snr > 20.0, "ours and ffmpeg's differ: SNR {snr:.1} dB");
}

#[test]
fn bytes_in_memory_and_files_give_the_same_facts() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_wav(dir.path());
    let path = ffmpeg(&source, &["-c:a", "libopus"], &dir.path().join("note.ogg"));
    let from_file = probe(&path, &Limits::default()).unwrap();
    let label = path.to_str().unwrap();
    let from_bytes =
        aqiqat_intake::probe_bytes(label, std::fs::read(&path).unwrap(), &Limits::default())
            .unwrap();
    assert_eq!(from_file, from_bytes);
}

/// The pixel at (x, y) of a decoded picture.
fn pixel(rgb: &aqiqat_intake::image::RgbImage, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * rgb.width + x) * 3) as usize;
    [rgb.pixels[i], rgb.pixels[i + 1], rgb.pixels[i + 2]]
}

fn close(got: [u8; 3], want: [u8; 3], tolerance: i16) -> bool {
    got.iter()
        .zip(want)
        .all(|(&g, w)| (i16::from(g) - i16::from(w)).abs() <= tolerance)
}

#[test]
fn unusual_pictures_decode_to_8_bit_rgb() {
    use aqiqat_intake::image::{ImageLimits, load_image};
    let limits = ImageLimits::default();
    let decode = |name: &str, bytes: &[u8]| {
        let (facts, rgb) = load_image(name, bytes, &limits).unwrap();
        let rgb = rgb.expect("pixels");
        assert_eq!(
            (facts.width, facts.height),
            (Some(rgb.width), Some(rgb.height))
        );
        assert_eq!(rgb.pixels.len(), (rgb.width * rgb.height * 3) as usize);
        rgb
    };

    // 16 bits per channel: scaled to 8 (v / 257, rounded).
    let mut png16 = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png16, 4, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = (0..8)
            .flat_map(|i| [0xC8u8, 0x11, 0x32, 0x22, (i * 30) as u8, 0x00])
            .collect();
        writer.write_image_data(&data).unwrap();
    }
    let rgb = decode("deep.png", &png16);
    assert!(
        close(pixel(&rgb, 0, 0), [199, 50, 0], 1),
        "{:?}",
        pixel(&rgb, 0, 0)
    );
    assert!(
        close(pixel(&rgb, 3, 1), [199, 50, 209], 1),
        "{:?}",
        pixel(&rgb, 3, 1)
    );

    // Grey with alpha: grey in every channel, alpha dropped.
    let mut grey = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut grey, 2, 2);
        encoder.set_color(png::ColorType::GrayscaleAlpha);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&[90, 0, 90, 255, 200, 128, 200, 255])
            .unwrap();
    }
    let rgb = decode("grey.png", &grey);
    assert_eq!(pixel(&rgb, 0, 1), [200, 200, 200]);

    // A CMYK JPEG (as print workflows and some scanners write them): colours come back as
    // RGB, not inverted.
    let mut cmyk = Vec::new();
    let (w, h) = (32u16, 16u16);
    let data: Vec<u8> = (0..u32::from(w) * u32::from(h))
        .flat_map(|i| {
            if i % u32::from(w) < 16 {
                [0u8, 255, 255, 0] // red: no cyan, full magenta and yellow
            } else {
                [255u8, 0, 255, 0] // green: full cyan and yellow
            }
        })
        .collect();
    jpeg_encoder::Encoder::new(&mut cmyk, 95)
        .encode(&data, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let rgb = decode("print.jpg", &cmyk);
    assert!(
        close(pixel(&rgb, 4, 8), [255, 0, 0], 40),
        "{:?}",
        pixel(&rgb, 4, 8)
    );
    assert!(
        close(pixel(&rgb, 28, 8), [0, 255, 0], 40),
        "{:?}",
        pixel(&rgb, 28, 8)
    );

    // An animated GIF: its first frame.
    let mut gif = Vec::new();
    {
        use image::codecs::gif::GifEncoder;
        let mut encoder = GifEncoder::new(&mut gif);
        for colour in [[0u8, 0, 255, 255], [255, 255, 0, 255]] {
            let frame = image::RgbaImage::from_pixel(8, 8, image::Rgba(colour));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let rgb = decode("moving.gif", &gif);
    assert!(
        close(pixel(&rgb, 3, 3), [0, 0, 255], 8),
        "{:?}",
        pixel(&rgb, 3, 3)
    );
}
