use crate::Problem;

/// Bounds that hold whatever a file declares about itself.
///
/// Headers lie — by accident (streamed WAVs declare 4 GiB) or on purpose — so every bound is
/// checked against what was actually read and decoded, never against what was announced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Longest audio accepted, in seconds of decoded audio. Default: 4 hours.
    pub max_duration_s: f64,
    /// Largest input accepted, in bytes. Default: 4 GiB (four hours of 48 kHz stereo PCM fits).
    pub max_input_bytes: u64,
    /// Highest channel count accepted. Default: 16.
    pub max_channels: usize,
    /// Accepted source sample rates, inclusive. Default: 4 kHz ..= 384 kHz.
    pub sample_rate_range: (u32, u32),
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_duration_s: 4.0 * 3600.0,
            max_input_bytes: 4 << 30,
            max_channels: 16,
            sample_rate_range: (4_000, 384_000),
        }
    }
}

impl Limits {
    /// Refuses a sample rate or channel count no recording has, whether a header declares it
    /// or a decoder reports it.
    pub fn check_layout(&self, sample_rate: u32, channels: usize) -> Result<(), Problem> {
        let (lo, hi) = self.sample_rate_range;
        if !(lo..=hi).contains(&sample_rate) {
            return Err(Problem::Implausible(format!(
                "sample rate {sample_rate} Hz is outside {lo}..={hi} Hz"
            )));
        }
        if channels == 0 || channels > self.max_channels {
            return Err(Problem::Implausible(format!(
                "{channels} channels (accepted: 1..={})",
                self.max_channels
            )));
        }
        Ok(())
    }
}
