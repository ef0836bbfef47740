//! Speed of a voiceprint end to end on one thread: the level raised, the 40-band mel, every
//! 1.6 s partial through GE2E, the mean. In multiples of real time, on the shipped 16-bit path
//! and on the f32 path in the same run (the ratio is the figure to compare across machines).
//!
//!     cargo bench -p aqiqat-speaker --bench embed [-- SECONDS]
//!
//! Input: SECONDS (default 60) of genuine speech, the shared smoke set's bonafide clips one
//! after another (decoded once, before timing).

use aqiqat_intake::{AudioStream, Limits};
use aqiqat_speaker::{Precision, SAMPLE_RATE, SpeakerEncoder};
use std::path::Path;
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

fn speech(seconds: f64) -> Vec<f32> {
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/voice/smoke");
    let mut clips: Vec<_> = std::fs::read_dir(&smoke)
        .expect("the shared smoke set")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("bonafide_"))
        })
        .collect();
    clips.sort();
    let wanted = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let mut samples = Vec::with_capacity(wanted);
    for clip in clips.iter().cycle() {
        if samples.len() >= wanted {
            break;
        }
        let decoded = AudioStream::open(clip, SAMPLE_RATE, &Limits::default())
            .and_then(|s| s.read_to_end())
            .expect("a smoke clip decodes");
        samples.extend(decoded);
    }
    samples.truncate(wanted);
    samples
}

fn main() {
    // SAFETY: set before candle starts its thread pool; nothing else runs yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    let seconds: f64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(60.0);
    let samples = speech(seconds);
    let runs = 5;
    let int16 = SpeakerEncoder::embedded().unwrap();
    let f32_path = SpeakerEncoder::embedded()
        .unwrap()
        .with_precision(Precision::F32);
    let shipped = best_of(runs, || int16.embed(&samples).unwrap());
    let reference = best_of(runs, || f32_path.embed(&samples).unwrap());
    println!("voiceprint of {seconds:.0} s of speech, one thread, best of {runs}");
    println!(
        "16-bit products (shipped) {:>8.1} ms {:>7.1}× real time",
        shipped * 1e3,
        seconds / shipped
    );
    println!(
        "f32 products              {:>8.1} ms {:>7.1}× real time",
        reference * 1e3,
        seconds / reference
    );
    println!(
        "the shipped path: {:.2}× the f32 path's speed",
        reference / shipped
    );
}
