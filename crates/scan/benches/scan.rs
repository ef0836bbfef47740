//! Speed of `aqiqat scan`, end to end and by stage, on one thread, in multiples of real time.
//!
//!     cargo bench -p aqiqat-scan --bench scan [-- MINUTES] [-- --model PATH]
//!
//! Input: the shared smoke set's 48 clips (bonafide and spoof) decoded and laid end to end,
//! repeated to MINUTES minutes (default 3), written as a 16 kHz 16-bit WAV, and as an 8 kHz
//! G.711 µ-law WAV by ffmpeg when it is installed. The voice detector is the embedded one, or
//! the candidate at PATH (a run folder or a fused card, as `aqiqat eval --model` takes; cargo
//! runs benches in `crates/scan`, so give PATH absolute or relative to that folder).
//! Stages: decode + resample to the detector's rate; the analysis (speech found once, every
//! network's features and forward pass over the timeline's windows, fused); the recording
//! checks (`aqiqat_dsp::quality`: noise, music, two voices, on the first network's input, as a
//! scan runs them); and the whole scan (which also
//! hashes the file and runs provenance). The provenance column is provenance alone on the same
//! file (C2PA look-up, metadata markers), for its share of the whole. Under each input, one
//! line per network: its resampling when its rate is below the input's, its features (VAD +
//! LFCC + normalisation, and phase bands when its card has them, on its own input), its
//! forward pass, and the time building its feature extractor takes (FFT plans, filterbank:
//! paid once per detector, not per analysis). Then one live-call window: the detector judging
//! 4 s, as a call's stream does every second, in milliseconds.
//!
//! Then still images: a 1024×768 PNG, unlabelled and labelled (C2PA), scanned from memory —
//! decode, the image detector, credentials, markers, the watermark — in milliseconds per
//! picture; and a 12-megapixel camera-like JPEG by stage (decode, the image detector,
//! provenance) against the bar of 250 ms end to end, best and median of 15 scans (the
//! decode column is a decode into fresh memory; a scan recycles the thread's last picture's).
//! `-- images` runs the pictures only.

use aqiqat_dsp::quality::QualityConfig;
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_provenance::credentials::{
    LabelRequest, LabelSigner, LocalIdentity, TrustAnchors, label,
};
use aqiqat_provenance::{Input, examine};
use aqiqat_scan::Scanner;
use aqiqat_voice::analysis;
use aqiqat_voice::detector::{VoiceDetector, resampled};
use aqiqat_voice::features::FeatureExtractor;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn input(dir: &Path, minutes: f64) -> (PathBuf, f64) {
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice");
    let manifest = std::fs::read_to_string(smoke.join("smoke.tsv")).expect("the shared smoke set");
    let mut one_pass = Vec::new();
    for line in manifest.lines().skip(1) {
        let path = smoke.join(line.split('\t').next().unwrap());
        one_pass.extend(
            AudioStream::open(&path, 16_000, &Limits::default())
                .unwrap()
                .read_to_end()
                .unwrap(),
        );
    }
    let target = (minutes * 60.0 * 16_000.0) as usize;
    let path = dir.join("long.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &s in one_pass.iter().cycle().take(target) {
        w.write_sample((s * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    (path, target as f64 / 16_000.0)
}

fn main() {
    // One thread for the network too: candle sizes its pool from this variable at first use.
    // SAFETY: set before any other thread exists.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    if std::env::args().any(|a| a == "images") {
        let scanner = Scanner::embedded(Limits::default()).unwrap();
        images(&scanner);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let minutes: f64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(3.0);
    let model = args
        .iter()
        .position(|a| a == "--model")
        .map(|i| PathBuf::from(args.get(i + 1).expect("--model needs a path")));
    let dir = tempfile::tempdir().unwrap();
    let (wav, seconds) = input(dir.path(), minutes);
    let mut inputs = vec![("16 kHz s16 WAV", wav.clone())];
    let mulaw = dir.path().join("call.wav");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-ar", "8000", "-c:a", "pcm_mulaw"])
        .arg(&mulaw)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        inputs.push(("8 kHz µ-law WAV", mulaw));
    }
    let mut scanner = Scanner::embedded(Limits::default()).unwrap();
    if let Some(path) = &model {
        let candidate =
            VoiceDetector::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        scanner = scanner.with_voice(candidate);
    }
    let detector = scanner.voice();
    let rate = detector.sample_rate();
    println!(
        "scan speed, one thread, {seconds:.0} s of speech; × real time (higher is faster); \
         voice detector {} ({} network(s), input at {rate} Hz)",
        detector.id().name,
        detector.networks().count()
    );
    println!(
        "{:18} {:>10} {:>10} {:>10} {:>11} {:>12}",
        "input", "decode", "analysis", "quality", "provenance", "end to end"
    );
    for (name, path) in &inputs {
        let runs = 3;
        let decode = best_of(runs, || {
            AudioStream::open(path, rate, &Limits::default())
                .unwrap()
                .read_to_end()
                .unwrap()
        });
        let samples = AudioStream::open(path, rate, &Limits::default())
            .unwrap()
            .read_to_end()
            .unwrap();
        let analysis = best_of(runs, || detector.analyse(&samples).unwrap());
        // The recording checks read the first (lowest-rate) network's input, as a scan does.
        let first = detector
            .networks()
            .next()
            .unwrap()
            .0
            .features
            .lfcc()
            .unwrap();
        let reference = resampled(&samples, rate, first.sample_rate).unwrap();
        let segs = FeatureExtractor::new(first).speech_segments(&reference);
        let quality = best_of(runs, || {
            let config = QualityConfig {
                sample_rate: first.sample_rate,
                ..QualityConfig::default()
            };
            aqiqat_dsp::quality::assess(&reference, &segs, &config)
        });
        let provenance = best_of(runs, || {
            let bytes = std::fs::read(path).unwrap();
            examine(
                Input {
                    stream: std::io::Cursor::new(&bytes[..]),
                    head: &bytes,
                    media_type: "audio/wav",
                    sidecar: None,
                    pixels: None,
                },
                &TrustAnchors::default(),
            )
        });
        let total = best_of(runs, || scanner.scan_file(path).unwrap());
        println!(
            "{name:18} {:>9.0}× {:>9.0}× {:>9.0}× {:>10.0}× {:>11.0}×",
            seconds / decode,
            seconds / analysis,
            seconds / quality,
            seconds / provenance,
            seconds / total
        );
        for (card, network) in detector.networks() {
            let lfcc = card.features.lfcc().unwrap();
            let own = resampled(&samples, rate, lfcc.sample_rate).unwrap();
            let resampling = (lfcc.sample_rate != rate).then(|| {
                best_of(runs, || {
                    resampled(&samples, rate, lfcc.sample_rate).unwrap()
                })
            });
            let phase_bands = card.features.phase_bands;
            let build = best_of(10 * runs, || {
                FeatureExtractor::with_phase_bands(lfcc, phase_bands).unwrap()
            });
            let mut fx = FeatureExtractor::with_phase_bands(lfcc, phase_bands).unwrap();
            let features = best_of(runs, || {
                let segs = fx.speech_segments(&own);
                fx.compute(&own, &segs)
            });
            let segs = fx.speech_segments(&own);
            let frames = fx.compute(&own, &segs);
            let (starts, len) = analysis::windows(&frames, None);
            let forward = best_of(runs, || {
                analysis::window_logits(network, &frames, &starts, len).unwrap()
            });
            println!(
                "  {:30} resample {:>8} features {:>7.0}× network {:>7.0}× \
                 building its extractor {:>6.0} µs",
                format!("{} at {} Hz", card.model, lfcc.sample_rate),
                resampling.map_or("—".to_owned(), |t| format!("{:.0}×", seconds / t)),
                seconds / features,
                seconds / forward,
                build * 1e6
            );
        }
        // A live call judges its last 4 s once a second: there the fixed costs of an analysis
        // (building extractors, resamplers) weigh as much as the audio does.
        let window = &samples[..(4 * rate) as usize];
        let per_window = best_of(20 * runs, || detector.scan(window).unwrap());
        println!(
            "  one live-call window (4 s, as the stream judges each second): {:.2} ms",
            per_window * 1e3
        );
    }
    images(&scanner);
}

fn images(scanner: &Scanner) {
    let (w, h) = (1024u32, 768u32);
    let pixels: Vec<u8> = (0..(w * h) as usize)
        .flat_map(|i| {
            let (x, y) = (i % w as usize, i / w as usize);
            [(x / 4) as u8, (y / 3) as u8, ((x ^ y) & 0xFF) as u8]
        })
        .collect();
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, w, h);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    let identity = LocalIdentity::generate("bench").unwrap();
    let signer = LabelSigner::from_pem(
        identity.chain_pem.as_bytes(),
        identity.key_pem.as_bytes(),
        None,
    )
    .unwrap();
    let request = LabelRequest {
        generator: "bench",
        title: None,
        media_type: "image/png",
    };
    let labelled = label(&png, &request, &signer, true).unwrap().asset;
    let runs = 5;
    println!(
        "\nimages, one thread: 1024×768 PNG scanned from memory, ms per picture (lower is faster)"
    );
    for (name, bytes) in [("unlabelled", &png), ("C2PA-labelled", &labelled)] {
        let total = best_of(runs, || {
            scanner.scan_bytes("bench.png", bytes.clone()).unwrap()
        });
        println!("{name:18} {:>9.1} ms", total * 1000.0);
    }
    let signing = best_of(runs, || label(&png, &request, &signer, true).unwrap());
    println!("{:18} {:>9.1} ms", "labelling (sign)", signing * 1000.0);
    // The host's noise is larger than the margin under the bar: more tries for the photo.
    camera_jpeg(scanner, 3 * runs);
}

/// A 4000×3000 JPEG (quality 90) with a photo's texture: smooth light and sensor noise.
fn camera_jpeg(scanner: &Scanner, runs: usize) {
    let (w, h) = (4000u32, 3000u32);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let photo = image::RgbImage::from_fn(w, h, |x, y| {
        let mut channel = |base: f32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (base + (state % 13) as f32 - 6.0).clamp(0.0, 255.0) as u8
        };
        let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
        image::Rgb([
            channel(60.0 + 130.0 * u),
            channel(50.0 + 120.0 * v),
            channel(150.0 - 70.0 * u * v),
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&photo)
        .unwrap();
    let limits = aqiqat_intake::image::ImageLimits::default();
    // Decoding into fresh memory against decoding into the last picture's, as a scan does,
    // taken in turns so that the host's noise falls on both alike.
    let (mut decode, mut recycled, mut buffer) = (f64::INFINITY, f64::INFINITY, Vec::new());
    for _ in 0..runs {
        decode = decode.min(best_of(1, || {
            aqiqat_intake::image::load_image("camera.jpg", &jpeg, &limits).unwrap()
        }));
        let t = Instant::now();
        let (_, pixels) = aqiqat_intake::image::load_image_into(
            "camera.jpg",
            &jpeg,
            &limits,
            std::mem::take(&mut buffer),
        )
        .unwrap();
        recycled = recycled.min(t.elapsed().as_secs_f64());
        buffer = pixels.unwrap().pixels;
    }
    let (_, pixels) = aqiqat_intake::image::load_image("camera.jpg", &jpeg, &limits).unwrap();
    let pixels = pixels.unwrap();
    let detector = aqiqat_visual::detector::ImageDetector::embedded().unwrap();
    let detect = best_of(runs, || {
        detector
            .scan(&pixels, aqiqat_visual::detector::ImageInput::default())
            .unwrap()
    });
    let rgb = aqiqat_provenance::watermark::RgbImage {
        width: w as usize,
        height: h as usize,
        data: pixels.pixels.clone(),
    };
    let provenance = best_of(runs, || {
        examine(
            Input {
                stream: std::io::Cursor::new(&jpeg[..]),
                head: &jpeg,
                media_type: "image/jpeg",
                sidecar: None,
                pixels: Some(&rgb),
            },
            &TrustAnchors::default(),
        )
    });
    let mut totals: Vec<f64> = (0..runs)
        .map(|_| {
            best_of(1, || {
                scanner.scan_bytes("camera.jpg", jpeg.clone()).unwrap()
            })
        })
        .collect();
    totals.sort_by(f64::total_cmp);
    let (total, median) = (totals[0], totals[runs / 2]);
    println!(
        "\n12-megapixel JPEG ({:.1} MB), one thread, ms (lower is faster); bar: 250 ms end to end",
        jpeg.len() as f64 / 1e6
    );
    println!(
        "{:>10} {:>15} {:>11} {:>11} {:>8}",
        "decode", "image detector", "provenance", "end to end", "median"
    );
    println!(
        "{:>10.0} {:>15.0} {:>11.0} {:>11.0} {:>8.0}",
        decode * 1000.0,
        detect * 1000.0,
        provenance * 1000.0,
        total * 1000.0,
        median * 1000.0
    );

    println!(
        "decode into fresh memory {:.0} ms, into the last picture's memory {:.0} ms ({:.2}× faster)",
        decode * 1000.0,
        recycled * 1000.0,
        decode / recycled
    );

    // The CLIP reader's encoder on one 224×224 square, which is all it reads of any picture:
    // the 8-bit path a scan runs, against the f32 path as the baseline.
    let clip = aqiqat_visual::clip::ClipEncoder::from_bytes(aqiqat_visual::clip::EMBEDDED_ENCODER)
        .unwrap();
    let side = aqiqat_visual::clip::SIDE;
    let square: Vec<u8> = (0..side)
        .flat_map(|y| pixels.pixels[y * w as usize * 3..][..side * 3].to_vec())
        .collect();
    let precise = best_of(runs, || clip.features_precise(&square));
    let fast = best_of(runs, || clip.features(&square));
    println!(
        "CLIP encoder (six blocks), one 224×224 square, one thread: f32 {:.0} ms, 8-bit {:.0} ms ({:.1}× faster)",
        precise * 1000.0,
        fast * 1000.0,
        precise / fast
    );
}
