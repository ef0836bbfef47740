//! The Rust port of Whisper base's front (stem + two blocks) against its reference
//! implementation: CTranslate2's `Whisper.encode` on the same converted weights, cut to the same
//! blocks, over the first 4 s of five clips of the CI smoke set. `tools/whisper/convert.py`
//! wrote both the weights and `tests/data/whisper-reference.safetensors`.

use aqiqat_dsp::whisper_mel::{self, N_MELS, WhisperMel};
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_models::whisper_encoder::{BASE_L2_WEIGHTS, WhisperEncoder, WhisperEncoderConfig};
use aqiqat_models::{cosine, max_abs_difference};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CLIPS: [&str; 5] = [
    "bonafide_103-1240-0000.flac",
    "bonafide_1235-135883-0000.flac",
    "bonafide_2002-139469-0000.flac",
    "spoof_t2_UK_20.flac",
    "spoof_t2_US_1.flac",
];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn smoke(clip: &str) -> PathBuf {
    crate_dir()
        .join("../../../shared/data/voice/smoke")
        .join(clip)
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        crate_dir().join("tests/data/whisper-reference.safetensors"),
        &Device::Cpu,
    )
    .expect("reference outputs (tools/whisper/convert.py)")
}

fn encoder() -> WhisperEncoder {
    let bytes = std::fs::read(crate_dir().join("weights").join(BASE_L2_WEIGHTS)).unwrap();
    WhisperEncoder::from_safetensors(WhisperEncoderConfig::base(2), bytes).unwrap()
}

fn first_four_seconds(clip: &str) -> Vec<f32> {
    let mut samples = AudioStream::open(&smoke(clip), whisper_mel::RATE, &Limits::default())
        .and_then(|s| s.read_to_end())
        .unwrap();
    samples.truncate(4 * whisper_mel::RATE as usize);
    samples
}

fn f32_of(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F32).unwrap()
}

#[test]
fn port_matches_the_reference_on_five_clips() {
    let reference = reference();
    let encoder = encoder();
    let mut mel = WhisperMel::new();
    for (i, clip) in CLIPS.iter().enumerate() {
        let expected_mel = f32_of(&reference[&format!("{i}.mel")]);
        let expected = f32_of(&reference[&format!("{i}.encoded")]);

        // The log-mel front end, from the decoded clip.
        let samples = first_four_seconds(clip);
        let frames = WhisperMel::n_frames(samples.len());
        let ours_mel =
            Tensor::from_vec(mel.compute(&samples), (N_MELS, frames), &Device::Cpu).unwrap();
        assert_eq!(ours_mel.dims(), expected_mel.dims(), "{clip}");
        let mel_error = max_abs_difference(&ours_mel, &expected_mel).unwrap();
        // The reference is stored in fp16: values near 1 carry about 5e-4 of rounding.
        assert!(mel_error < 2e-3, "{clip}: log-mel differs by {mel_error}");

        // The network, on the reference's own input and end to end from the clip.
        for (input, what) in [
            (&expected_mel, "reference log-mel"),
            (&ours_mel, "our log-mel"),
        ] {
            let out = encoder
                .forward(&input.unsqueeze(0).unwrap())
                .unwrap()
                .squeeze(0)
                .unwrap();
            assert_eq!(out.dims(), expected.dims(), "{clip}");
            let whole = cosine(&out, &expected).unwrap();
            assert!(whole >= 0.999, "{clip} from {what}: cosine {whole}");
            // Every 20 ms frame on its own, not just the whole.
            let mut worst = f32::INFINITY;
            for f in 0..out.dim(0).unwrap() {
                let c = cosine(&out.get(f).unwrap(), &expected.get(f).unwrap()).unwrap();
                assert!(c >= 0.999, "{clip} from {what}, frame {f}: cosine {c}");
                worst = worst.min(c);
            }
            eprintln!("{clip} from {what}: cosine {whole:.7}, worst frame {worst:.7}");
        }
    }
}

#[test]
fn the_converted_weights_are_the_pinned_ones_and_fit_the_budget() {
    let path = crate_dir().join("weights").join(BASE_L2_WEIGHTS);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= 50 * 1024 * 1024, "{size} bytes");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    // Stem, positions, two blocks of twelve tensors, final norm: nothing more.
    assert_eq!(tensors.len(), 4 + 1 + 2 * 12 + 2);
    assert!(tensors.keys().all(|k| !k.starts_with("blocks.2")));
}
