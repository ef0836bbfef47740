//! Decoded training audio, held as 16-bit integers whenever that loses nothing.
//!
//! The trainer keeps every clip of the corpus in memory for the whole run: corpus v5 at 16 kHz
//! is about 24 GB as `f32`, the whole of this machine's memory. A clip read at the corpus's own
//! rate from 16-bit PCM decodes to values `k / 32768` exactly, so it is kept as the `k`s and
//! turned back into the very same `f32`s (bit for bit) when a crop is cut. A clip that was
//! resampled, or came from a float file, stays `f32`: the check is made on the samples
//! themselves, never assumed from the file's header.

use std::ops::Range;

/// One clip's samples.
pub enum Samples {
    /// `k / 32768` for each stored `k`, exactly.
    Pcm16(Vec<i16>),
    Float(Vec<f32>),
}

/// `k` when `sample` is exactly `k / 32768` (and not `-0.0`), else `None`.
fn as_pcm16(sample: f32) -> Option<i16> {
    let scaled = sample * 32768.0;
    if !(-32768.0..=32767.0).contains(&scaled) {
        return None;
    }
    let k = scaled as i16;
    (pcm16_value(k).to_bits() == sample.to_bits()).then_some(k)
}

fn pcm16_value(k: i16) -> f32 {
    f32::from(k) / 32768.0
}

impl Samples {
    /// The compact form when every sample round-trips bit for bit, else a copy as `f32`.
    pub fn new(samples: &[f32]) -> Self {
        let pcm: Option<Vec<i16>> = samples.iter().map(|&s| as_pcm16(s)).collect();
        match pcm {
            Some(pcm) => Self::Pcm16(pcm),
            None => Self::Float(samples.to_vec()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Pcm16(v) => v.len(),
            Self::Float(v) => v.len(),
        }
    }

    /// The samples in `range` as the decoder gave them.
    pub fn to_f32(&self, range: Range<usize>) -> Vec<f32> {
        match self {
            Self::Pcm16(v) => v[range].iter().map(|&k| pcm16_value(k)).collect(),
            Self::Float(v) => v[range].to_vec(),
        }
    }

    /// Every sample as the decoder gave them.
    pub fn all(&self) -> Vec<f32> {
        self.to_f32(0..self.len())
    }

    /// Whether the samples are held in the compact 16-bit form.
    pub fn is_pcm16(&self) -> bool {
        matches!(self, Self::Pcm16(_))
    }

    /// The bytes the samples take on the heap.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Pcm16(v) => std::mem::size_of_val(v.as_slice()),
            Self::Float(v) => std::mem::size_of_val(v.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|s| s.to_bits()).collect()
    }

    #[test]
    fn sixteen_bit_audio_is_kept_compact_and_comes_back_bit_for_bit() {
        let decoded: Vec<f32> = (i16::MIN..=i16::MAX).map(|k| k as f32 / 32768.0).collect();
        let kept = Samples::new(&decoded);
        assert!(kept.is_pcm16());
        assert_eq!(kept.heap_bytes(), 2 * decoded.len());
        assert_eq!(bits(&kept.all()), bits(&decoded));
        assert_eq!(bits(&kept.to_f32(100..200)), bits(&decoded[100..200]));
    }

    #[test]
    fn audio_that_is_not_exactly_sixteen_bit_stays_float() {
        let pcm: Vec<f32> = (0..64).map(|k| k as f32 / 32768.0).collect();
        let odd = [
            0.5 / 32768.0, // between two codes: a resampled sample
            1.0,           // one past the largest code
            -0.0,          // its sign would be lost
            f32::NAN,
        ];
        for bad in odd {
            let mut clip = pcm.clone();
            clip[10] = bad;
            let kept = Samples::new(&clip);
            assert!(!kept.is_pcm16(), "{bad} kept as 16-bit");
            assert_eq!(kept.heap_bytes(), 4 * clip.len());
            assert_eq!(bits(&kept.all()), bits(&clip));
        }
        assert!(Samples::new(&pcm).is_pcm16());
    }
}
