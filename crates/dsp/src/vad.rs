//! Where the speech is: frame energies against an adaptive floor, with hangover.
//!
//! Deliberately simple and deterministic. It only has to separate speech from silence and
//! steady background, so that a detector scores voices rather than pauses, and so that
//! silence-only input is answered "inconclusive" instead of guessed.

/// A stretch of speech, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
}

/// Which frames the loud level (the 95th percentile a frame must come within
/// `dynamic_range_db` of) is taken over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoudLevel {
    /// Every frame. Digital silence around a clip then counts as frames and lowers the
    /// percentile: padding a short clip with silence moves its threshold and its speech. The
    /// rule every model so far was trained with, so it stays the default.
    #[default]
    EveryFrame,
    /// Only frames at or above `floor_dbfs`: silence added around a clip, which is below the
    /// floor, no longer moves where its speech is found.
    AboveFloor,
}

#[derive(Debug, Clone, Copy)]
pub struct VadConfig {
    pub sample_rate: u32,
    /// Analysis frame (and hop) in seconds.
    pub frame_s: f32,
    /// Frames quieter than this below the loud (95th percentile) frames are not speech.
    pub dynamic_range_db: f32,
    /// Frames quieter than this absolute level (dBFS) are never speech.
    pub floor_dbfs: f32,
    /// Speech shorter than this is dropped.
    pub min_speech_s: f32,
    /// Gaps shorter than this inside speech are bridged.
    pub max_gap_s: f32,
    pub loud_level: LoudLevel,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            frame_s: 0.02,
            dynamic_range_db: 35.0,
            // Low enough that speech recorded quietly and then turned down 12 dB (16-bit) keeps
            // its quiet syllables: at -55 dBFS it lost them and scores moved by 0.2.
            floor_dbfs: -70.0,
            min_speech_s: 0.25,
            max_gap_s: 0.3,
            loud_level: LoudLevel::EveryFrame,
        }
    }
}

pub fn speech_segments(samples: &[f32], config: &VadConfig) -> Vec<Segment> {
    let frame = ((config.sample_rate as f32 * config.frame_s) as usize).max(1);
    let levels: Vec<f32> = samples
        .chunks(frame)
        .map(|c| {
            let ms = c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32;
            10.0 * (ms + 1e-12).log10()
        })
        .collect();
    if levels.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<f32> = match config.loud_level {
        LoudLevel::EveryFrame => levels.clone(),
        LoudLevel::AboveFloor => levels
            .iter()
            .copied()
            .filter(|&l| l >= config.floor_dbfs)
            .collect(),
    };
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_by(f32::total_cmp);
    let loud = sorted[(sorted.len() - 1) * 95 / 100];
    let threshold = (loud - config.dynamic_range_db).max(config.floor_dbfs);

    let mut segments: Vec<Segment> = Vec::new();
    let max_gap = (config.max_gap_s / config.frame_s) as usize * frame;
    for (i, &level) in levels.iter().enumerate() {
        if level < threshold {
            continue;
        }
        let (start, end) = (i * frame, ((i + 1) * frame).min(samples.len()));
        match segments.last_mut() {
            Some(last) if start <= last.end + max_gap => last.end = end,
            _ => segments.push(Segment { start, end }),
        }
    }
    let min_len = (config.min_speech_s * config.sample_rate as f32) as usize;
    segments.retain(|s| s.end - s.start >= min_len);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_burst_between_silences() {
        let mut x = vec![0.0f32; 16_000];
        x.extend((0..16_000).map(|i| (i as f32 * 0.2).sin() * 0.3));
        x.extend(vec![0.0f32; 16_000]);
        let segs = speech_segments(&x, &VadConfig::default());
        assert_eq!(segs.len(), 1);
        assert!(segs[0].start.abs_diff(16_000) <= 320 && segs[0].end.abs_diff(32_000) <= 320);
    }

    #[test]
    fn silence_and_faint_hiss_have_no_speech() {
        assert!(speech_segments(&vec![0.0; 48_000], &VadConfig::default()).is_empty());
        // About -80 dBFS: below the -70 dBFS floor however loud its own peaks are.
        let hiss: Vec<f32> = (0..48_000)
            .map(|i| ((i * 7919) % 13) as f32 * 1e-5)
            .collect();
        assert!(speech_segments(&hiss, &VadConfig::default()).is_empty());
        let above = VadConfig {
            loud_level: LoudLevel::AboveFloor,
            ..VadConfig::default()
        };
        assert!(speech_segments(&vec![0.0; 48_000], &above).is_empty());
        assert!(speech_segments(&hiss, &above).is_empty());
    }

    /// One loud second (-13.5 dBFS) then one faint one (about -55 dBFS: above the absolute floor,
    /// 41 dB under the loud second, so not speech beside it), inside 0.5 s of silence and
    /// `padding` more samples of it on each side.
    fn loud_then_faint(padding: usize) -> Vec<f32> {
        let tone = |amp: f32| (0..16_000).map(move |i| (i as f32 * 0.2).sin() * amp);
        let mut x = vec![0.0f32; 8_000 + padding];
        x.extend(tone(0.3).chain(tone(0.0025)));
        x.extend(vec![0.0f32; 8_000 + padding]);
        x
    }

    #[test]
    fn silence_added_around_a_clip_does_not_move_its_segments_above_the_floor() {
        let above = VadConfig {
            loud_level: LoudLevel::AboveFloor,
            ..VadConfig::default()
        };
        // 25 s each side: over 95 % of the frames are then silence.
        let padding = 25 * 16_000;
        let shifted = |segs: Vec<Segment>| -> Vec<Segment> {
            segs.into_iter()
                .map(|s| Segment {
                    start: s.start - padding,
                    end: s.end - padding,
                })
                .collect()
        };
        let plain = speech_segments(&loud_then_faint(0), &above);
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(plain[0].start.abs_diff(8_000) <= 320, "{plain:?}");
        assert!(plain[0].end.abs_diff(24_000) <= 320, "{plain:?}");
        assert_eq!(
            shifted(speech_segments(&loud_then_faint(padding), &above)),
            plain
        );
        // Over every frame the silence drags the 95th percentile down to itself, the threshold
        // falls to the absolute floor and the faint second becomes speech: what the option is
        // for.
        let every = VadConfig::default();
        assert_eq!(speech_segments(&loud_then_faint(0), &every), plain);
        let padded = shifted(speech_segments(&loud_then_faint(padding), &every));
        assert_eq!(padded.len(), 1, "{padded:?}");
        assert!(padded[0].end.abs_diff(40_000) <= 320, "{padded:?}");
    }
}
