//! The Rust voiceprint against its reference implementation: Resemblyzer 0.1.4's own
//! `VoiceEncoder.embed_utterance` (PyTorch, librosa) on five genuine smoke clips of five
//! speakers, levelled as the package levels them. `tools/speaker/convert.py` wrote the weights
//! and `tests/data/ge2e-reference.safetensors`.

use aqiqat_intake::{AudioStream, Limits};
use aqiqat_models::{cosine, max_abs_difference};
use aqiqat_speaker::{
    Precision, RESEMBLYZER_PARTIALS_PER_SECOND, SAMPLE_RATE, SpeakerEncoder, THRESHOLDS,
    partial_starts, raise_level,
};
use candle_core::{Device, Tensor};
use std::path::Path;

const CLIPS: [&str; 5] = [
    "bonafide_103-1240-0000.flac",
    "bonafide_1235-135883-0000.flac",
    "bonafide_1502-122615-0000.flac",
    "bonafide_2002-139469-0000.flac",
    "bonafide_3168-173564-0000.flac",
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn decode(clip: &str) -> Vec<f32> {
    let path = crate_dir()
        .join("../../../shared/data/voice/smoke")
        .join(clip);
    AudioStream::open(&path, SAMPLE_RATE, &Limits::default())
        .and_then(|s| s.read_to_end())
        .unwrap()
}

fn vector(values: &[f32]) -> Tensor {
    Tensor::from_slice(values, values.len(), &Device::Cpu).unwrap()
}

#[test]
fn voiceprints_match_resemblyzer_on_five_speakers() {
    let reference = candle_core::safetensors::load(
        crate_dir().join("tests/data/ge2e-reference.safetensors"),
        &Device::Cpu,
    )
    .expect("reference outputs (tools/speaker/convert.py)");
    let encoder = SpeakerEncoder::embedded()
        .unwrap()
        .with_partials_per_second(RESEMBLYZER_PARTIALS_PER_SECOND);
    let mut prints = Vec::new();
    for (i, clip) in CLIPS.iter().enumerate() {
        let samples = decode(clip);
        let expected = &reference[&format!("{i}.embed")];
        let expected_partials = &reference[&format!("{i}.partials")];
        let expected_mel = &reference[&format!("{i}.mel")];

        // The front end: the same mel frames from the levelled, padded clip.
        let (starts, needed) = partial_starts(samples.len(), RESEMBLYZER_PARTIALS_PER_SECOND);
        assert_eq!(starts.len(), expected_partials.dim(0).unwrap(), "{clip}");
        let mut levelled = samples.clone();
        raise_level(&mut levelled);
        levelled.resize(needed.max(levelled.len()), 0.0);
        let mel = aqiqat_dsp::speaker_mel::SpeakerMel::new().compute(&levelled);
        let ours_mel = Tensor::from_vec(mel, expected_mel.dims(), &Device::Cpu).unwrap();
        let scale = expected_mel
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let error = max_abs_difference(&ours_mel, expected_mel).unwrap() / scale;
        assert!(error < 1e-4, "{clip}: mel differs by {error} of its peak");

        let (print, partials) = encoder.embed(&samples).unwrap();
        for (p, partial) in partials.iter().enumerate() {
            let c = cosine(&vector(&partial.0), &expected_partials.get(p).unwrap()).unwrap();
            assert!(c >= 0.999, "{clip}, partial {p}: cosine {c}");
        }
        let c = cosine(&vector(&print.0), expected).unwrap();
        eprintln!(
            "{clip}: {} partials, voiceprint cosine {c:.7}",
            partials.len()
        );
        assert!(c >= 0.999, "{clip}: cosine {c}");
        prints.push(print);
    }
    // Five speakers: no two voiceprints as close as a voice to itself.
    for a in 0..prints.len() {
        for b in a + 1..prints.len() {
            let s = prints[a].similarity(&prints[b]);
            assert!(s < 0.95, "{} and {}: {s}", CLIPS[a], CLIPS[b]);
        }
    }
}

/// The shipped 16-bit path against the f32 path it replaced, on every clip of the smoke set
/// (24 genuine speakers, 24 synthetic clips): each voiceprint within a cosine of 1e-4 of its
/// f32 twin, and every pair's similarity, the number a speaker check decides on, within 0.005
/// (a twelfth of the 0.06 between the `different` and `same` thresholds; measured 1.0e-3).
#[test]
fn the_16_bit_path_keeps_the_f32_voiceprints() {
    let shipped = SpeakerEncoder::embedded().unwrap();
    let f32_path = SpeakerEncoder::embedded()
        .unwrap()
        .with_precision(Precision::F32);
    let smoke = crate_dir().join("../../../shared/data/voice/smoke");
    let mut clips: Vec<String> = std::fs::read_dir(&smoke)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".flac"))
        .collect();
    clips.sort();
    assert_eq!(clips.len(), 48, "the smoke set");
    let mut prints = Vec::new();
    for clip in &clips {
        let samples = decode(clip);
        let (a, _) = shipped.embed(&samples).unwrap();
        let (b, _) = f32_path.embed(&samples).unwrap();
        let c = a.similarity(&b);
        assert!(c >= 0.9999, "{clip}: cosine {c}");
        prints.push((a, b));
    }
    let (mut largest, mut flips) = (0f64, 0);
    for i in 0..prints.len() {
        for j in i + 1..prints.len() {
            let ours = prints[i].0.similarity(&prints[j].0);
            let theirs = prints[i].1.similarity(&prints[j].1);
            largest = largest.max((ours - theirs).abs());
            flips += usize::from(THRESHOLDS.decide(ours) != THRESHOLDS.decide(theirs));
        }
    }
    eprintln!("largest similarity change {largest:.2e}; decisions changed: {flips}");
    assert!(largest <= 0.005, "a similarity moved by {largest}");
}
