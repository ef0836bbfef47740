//! What the benchmarks read from their environment and feed the system.

use crate::common::{decode_with_aqiqat, smoke_dir};

/// A knob from the environment, or its default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Speech to send: the smoke set's clips, decoded by aqiqat, joined until `seconds` long.
pub fn speech(rate: u32, seconds: f64, scratch: &std::path::Path) -> Vec<f32> {
    let dir = smoke_dir();
    let manifest = std::fs::read_to_string(dir.join("smoke.tsv")).unwrap();
    let mut out = Vec::new();
    let want = (seconds * f64::from(rate)) as usize;
    for line in manifest.lines().skip(1).cycle() {
        if out.len() >= want {
            break;
        }
        let path = dir.join(line.split('\t').next().unwrap());
        out.extend(decode_with_aqiqat(&path, rate, scratch));
    }
    out.truncate(want);
    out
}

/// [`speech`] as 16-bit samples (for WAV files).
#[allow(dead_code)] // not every benchmark writes files
pub fn speech_i16(rate: u32, seconds: f64, scratch: &std::path::Path) -> Vec<i16> {
    speech(rate, seconds, scratch)
        .iter()
        .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0) as i16)
        .collect()
}
