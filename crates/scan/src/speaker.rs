//! The speaker check as a scan runs it: is the voice in this recording the voice of the person
//! the caller names? And enrolment: the voiceprint of known-genuine recordings.
//!
//! The arithmetic (encoder, similarity, thresholds) is `aqiqat_speaker`'s; this module decides
//! which audio it sees (the span the speech detector finds, at 16 kHz) and when the recording
//! is not fit to compare (the same conditions that stop the synthetic-speech detector).

use aqiqat_speaker::{
    CHECK_MIN_SPEECH_S, Decision, ENROL_SECONDS, SpeakerEncoder, THRESHOLDS, Thresholds, Voiceprint,
};
use aqiqat_voice::detector::{ModelId, ReasonCode, Verdict, VoiceFinding};
use serde::{Deserialize, Serialize};

/// One recording a voiceprint was enrolled from, as records name it: its hash, never its audio
/// or its voiceprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentFile {
    pub sha256: String,
    /// Seconds of speech found in it.
    pub speech_s: f64,
}

/// The voiceprint a scan is asked to compare the recording with.
#[derive(Debug, Clone)]
pub struct ClaimedVoice {
    /// The store's id for it.
    pub id: String,
    /// Who it is, as the person who enrolled it named them.
    pub name: String,
    pub voiceprint: Voiceprint,
    pub enrolment: Vec<EnrolmentFile>,
    /// SHA-256 of the encoder weights that made it: a voiceprint compares only with
    /// voiceprints of the same encoder.
    pub encoder_sha256: String,
}

/// The claimed voiceprint as a result names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimedRef {
    pub id: String,
    pub name: String,
    pub enrolment: Vec<EnrolmentFile>,
    pub enrolled_speech_s: f64,
}

/// The speaker check's part of a scan result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeakerFinding {
    pub claimed: ClaimedRef,
    /// `same_speaker`, `different_speaker` or `inconclusive`.
    pub decision: Decision,
    /// Cosine similarity of the recording's voiceprint and the claimed one; `null` when the
    /// recording was not compared.
    pub similarity: Option<f64>,
    pub thresholds: Thresholds,
    /// Seconds of speech compared.
    pub speech_s: f64,
    /// Why the check cannot say, in plain words; `null` when it can.
    pub reason: Option<String>,
    pub reason_code: Option<ReasonCode>,
    pub model: ModelId,
}

/// The speaker encoder as evidence records name it.
pub fn encoder_id() -> ModelId {
    ModelId {
        name: "speaker-ge2e".into(),
        version: "resemblyzer 0.1.4 GE2E, aqiqat port".into(),
        weights_sha256: aqiqat_intake::hash::sha256_bytes(aqiqat_speaker::EMBEDDED_WEIGHTS)
            .to_string(),
    }
}

/// Why a recording cannot be compared or enrolled, from what the synthetic-speech detector
/// already measured: the same conditions stop both checks.
fn unfit(voice: &VoiceFinding) -> Option<(ReasonCode, String)> {
    let code = voice.reason_code?;
    (code.is_condition() || code.is_too_little()).then(|| {
        (
            code,
            voice
                .reason
                .clone()
                .unwrap_or_else(|| code.as_str().replace('_', " ")),
        )
    })
}

pub(crate) struct SpeakerCheck {
    pub encoder: SpeakerEncoder,
    pub model: ModelId,
}

impl SpeakerCheck {
    pub fn embedded() -> Result<Self, aqiqat_speaker::SpeakerError> {
        Ok(Self {
            encoder: SpeakerEncoder::embedded()?,
            model: encoder_id(),
        })
    }

    /// The voiceprint of the speech in `samples` (16 kHz), and the seconds of speech; `None`
    /// when there is no speech.
    pub fn voiceprint(
        &self,
        samples: &[f32],
    ) -> Result<Option<(Voiceprint, f64)>, aqiqat_speaker::SpeakerError> {
        let Some((span, seconds)) = aqiqat_speaker::speech_span(samples) else {
            return Ok(None);
        };
        Ok(Some((self.encoder.embed(&samples[span])?.0, seconds)))
    }

    /// Compares `samples` (16 kHz; `None` for an input without audio) with `claimed`; `voice`,
    /// the synthetic-speech detector's finding on the same audio, says whether the recording
    /// is fit to compare (`None`: not measured).
    pub fn check(
        &self,
        samples: Option<&[f32]>,
        voice: Option<&VoiceFinding>,
        claimed: &ClaimedVoice,
    ) -> Result<SpeakerFinding, aqiqat_speaker::SpeakerError> {
        let mut finding = SpeakerFinding {
            claimed: ClaimedRef {
                id: claimed.id.clone(),
                name: claimed.name.clone(),
                enrolled_speech_s: claimed.enrolment.iter().map(|f| f.speech_s).sum(),
                enrolment: claimed.enrolment.clone(),
            },
            decision: Decision::Inconclusive,
            similarity: None,
            thresholds: THRESHOLDS,
            speech_s: 0.0,
            reason: None,
            reason_code: None,
            model: self.model.clone(),
        };
        let cannot_say = |mut finding: SpeakerFinding, code: ReasonCode, why: String| {
            finding.reason_code = Some(code);
            finding.reason = Some(why);
            Ok(finding)
        };
        if claimed.encoder_sha256 != self.model.weights_sha256 {
            // Never compare across encoders: their similarities mean different things.
            return cannot_say(
                finding,
                ReasonCode::BetweenThresholds,
                "the voiceprint was made by another version of the speaker encoder; enrol the \
                 person again"
                    .into(),
            );
        }
        let Some(samples) = samples else {
            return cannot_say(
                finding,
                ReasonCode::NoSpeech,
                "the input is not audio: there is no voice to compare".into(),
            );
        };
        if let Some((code, why)) = voice.and_then(unfit) {
            return cannot_say(
                finding,
                code,
                format!("the recording is not fit to compare voices: {why}"),
            );
        }
        let Some((print, seconds)) = self.voiceprint(samples)? else {
            return cannot_say(finding, ReasonCode::NoSpeech, "no speech was found".into());
        };
        finding.speech_s = seconds;
        if seconds < CHECK_MIN_SPEECH_S {
            return cannot_say(
                finding,
                ReasonCode::TooLittleSpeech,
                format!(
                    "{seconds:.1} s of speech is too little to compare voices (needs \
                     {CHECK_MIN_SPEECH_S:.0} s)"
                ),
            );
        }
        let similarity = print.similarity(&claimed.voiceprint);
        finding.similarity = Some(similarity);
        finding.decision = THRESHOLDS.decide(similarity);
        if finding.decision == Decision::Inconclusive {
            finding.reason_code = Some(ReasonCode::BetweenThresholds);
            finding.reason = Some(format!(
                "the similarity {similarity:.3} lies between {:.3} (different speaker below) \
                 and {:.3} (same speaker from)",
                THRESHOLDS.different_speaker, THRESHOLDS.same_speaker
            ));
        }
        Ok(finding)
    }
}

/// One known-genuine recording's share of an enrolment.
#[derive(Debug, Clone)]
pub struct EnrolmentSample {
    /// How the recording was named (a path or an upload's file name), for messages.
    pub label: String,
    pub file: EnrolmentFile,
    pub voiceprint: Voiceprint,
    /// What the synthetic-speech check says of it: a "known-genuine" recording that sounds
    /// synthetic deserves a warning.
    pub synthetic_check: Verdict,
}

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Scan(#[from] crate::ScanError),
    /// A recording that cannot contribute a voice.
    #[error("{label}: {reason}")]
    Unfit {
        label: String,
        code: ReasonCode,
        reason: String,
    },
    #[error(
        "{found:.1} s of speech in all the recordings; an enrolment needs at least {needed:.0} s \
         (give more recordings of the same person)"
    )]
    TooLittleSpeech { found: f64, needed: f64 },
    #[error("no recordings to enrol from")]
    Nothing,
}

impl EnrolError {
    pub fn is_bad_input(&self) -> bool {
        match self {
            EnrolError::Scan(e) => e.is_bad_input(),
            _ => true,
        }
    }
}

impl From<aqiqat_speaker::SpeakerError> for EnrolError {
    fn from(e: aqiqat_speaker::SpeakerError) -> Self {
        EnrolError::Scan(crate::ScanError::Speaker(e))
    }
}

/// Refuses a recording that cannot contribute a voice (no speech, music, several voices, too
/// noisy); the short ones count what they have.
pub(crate) fn refuse_unfit(label: &str, voice: &VoiceFinding) -> Result<(), EnrolError> {
    match unfit(voice) {
        Some((ReasonCode::TooLittleSpeech, _)) | None => Ok(()),
        Some((code, why)) => Err(EnrolError::Unfit {
            label: label.to_owned(),
            code,
            reason: format!("cannot enrol from it: {why}"),
        }),
    }
}

/// One voiceprint from several recordings of one person: the renormalised mean of each
/// recording's voiceprint (as `aqiqat-train speaker-eval` measured it). A recording given twice
/// counts once. Refused below [`ENROL_SECONDS`] of speech in all.
pub fn combine(
    samples: Vec<EnrolmentSample>,
) -> Result<(Voiceprint, Vec<EnrolmentFile>), EnrolError> {
    let mut seen = std::collections::HashSet::new();
    let samples: Vec<EnrolmentSample> = samples
        .into_iter()
        .filter(|s| seen.insert(s.file.sha256.clone()))
        .collect();
    if samples.is_empty() {
        return Err(EnrolError::Nothing);
    }
    let found: f64 = samples.iter().map(|s| s.file.speech_s).sum();
    if found < ENROL_SECONDS {
        return Err(EnrolError::TooLittleSpeech {
            found,
            needed: ENROL_SECONDS,
        });
    }
    let prints: Vec<Voiceprint> = samples.iter().map(|s| s.voiceprint.clone()).collect();
    let print = Voiceprint::mean(&prints).ok_or(EnrolError::Nothing)?;
    Ok((print, samples.into_iter().map(|s| s.file).collect()))
}

/// What the caller hears about the claimed person: the joint answer of issue 17's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimVerdict {
    /// Same speaker, and no sign of synthesis.
    ConsistentWithClaimed,
    /// Same speaker, and synthetic: the typical fraud.
    CloneOfClaimed,
    /// A different speaker, whatever made the voice.
    NotClaimedPerson,
    /// The speaker check cannot say, or it matched but whether the voice is synthetic could
    /// not be judged.
    Inconclusive,
}

/// The joint answer and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub verdict: ClaimVerdict,
    pub reason: String,
}

/// The claim policy (step 6 of [`crate::decide`]): the speaker check never clears a call on its
/// own, because a clone is made to pass it.
pub fn claim(speaker: &SpeakerFinding, synthetic: Verdict, why: Option<&str>) -> Claim {
    let name = &speaker.claimed.name;
    let similarity = speaker.similarity.unwrap_or(f64::NAN);
    let (verdict, reason) = match (speaker.decision, synthetic) {
        (Decision::Inconclusive, _) => (
            ClaimVerdict::Inconclusive,
            format!(
                "cannot say whether this is {name}: {}",
                speaker
                    .reason
                    .as_deref()
                    .unwrap_or("the speaker check could not judge")
            ),
        ),
        (Decision::DifferentSpeaker, _) => (
            ClaimVerdict::NotClaimedPerson,
            format!(
                "the voice does not match {name}'s voiceprint (similarity {similarity:.3}; \
                 below {:.3} is a different speaker), whether it is synthetic or not",
                speaker.thresholds.different_speaker
            ),
        ),
        (Decision::SameSpeaker, Verdict::Synthetic) => (
            ClaimVerdict::CloneOfClaimed,
            format!(
                "the voice matches {name}'s voiceprint (similarity {similarity:.2}) and it is \
                 synthetic: most likely a clone of {name}'s voice, the typical fraud"
            ),
        ),
        (Decision::SameSpeaker, Verdict::Human) => (
            ClaimVerdict::ConsistentWithClaimed,
            format!(
                "the voice matches {name}'s voiceprint (similarity {similarity:.2}) and no sign \
                 of synthesis was found; this is consistent with {name}, not proof: a clone is \
                 made to match, and the synthetic-speech check has not heard every generator"
            ),
        ),
        (Decision::SameSpeaker, Verdict::Inconclusive) => (
            ClaimVerdict::Inconclusive,
            format!(
                "the voice matches {name}'s voiceprint (similarity {similarity:.2}), but whether \
                 it is synthetic could not be judged ({}); a clone is made to match, so the match \
                 alone clears nothing",
                why.unwrap_or("no reason given")
            ),
        ),
    };
    Claim { verdict, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(decision: Decision, similarity: Option<f64>) -> SpeakerFinding {
        SpeakerFinding {
            claimed: ClaimedRef {
                id: "vp_1".into(),
                name: "Arman".into(),
                enrolment: Vec::new(),
                enrolled_speech_s: 12.0,
            },
            decision,
            similarity,
            thresholds: THRESHOLDS,
            speech_s: 5.0,
            reason: (decision == Decision::Inconclusive).then(|| "too little speech".into()),
            reason_code: None,
            model: encoder_id(),
        }
    }

    #[test]
    fn the_joint_answer_follows_the_table() {
        use ClaimVerdict::{CloneOfClaimed, ConsistentWithClaimed, NotClaimedPerson};
        use Decision::{DifferentSpeaker, SameSpeaker};
        let table = [
            (SameSpeaker, Verdict::Human, ConsistentWithClaimed),
            (SameSpeaker, Verdict::Synthetic, CloneOfClaimed),
            (
                SameSpeaker,
                Verdict::Inconclusive,
                ClaimVerdict::Inconclusive,
            ),
            (DifferentSpeaker, Verdict::Human, NotClaimedPerson),
            (DifferentSpeaker, Verdict::Synthetic, NotClaimedPerson),
            (DifferentSpeaker, Verdict::Inconclusive, NotClaimedPerson),
            (
                Decision::Inconclusive,
                Verdict::Human,
                ClaimVerdict::Inconclusive,
            ),
            (
                Decision::Inconclusive,
                Verdict::Synthetic,
                ClaimVerdict::Inconclusive,
            ),
            (
                Decision::Inconclusive,
                Verdict::Inconclusive,
                ClaimVerdict::Inconclusive,
            ),
        ];
        for (decision, synthetic, want) in table {
            let similarity = (decision != Decision::Inconclusive).then_some(0.8);
            let c = claim(&finding(decision, similarity), synthetic, Some("music"));
            assert_eq!(c.verdict, want, "{decision:?} + {synthetic:?}");
            assert!(c.reason.contains("Arman"), "{}", c.reason);
        }
        // A match never reads as proof, and an unjudged match says why it clears nothing.
        let consistent = claim(&finding(SameSpeaker, Some(0.9)), Verdict::Human, None);
        assert!(consistent.reason.contains("not proof"));
        let unjudged = claim(
            &finding(SameSpeaker, Some(0.9)),
            Verdict::Inconclusive,
            Some("music"),
        );
        assert!(unjudged.reason.contains("music") && unjudged.reason.contains("clears nothing"));
    }

    fn sample(hash: &str, speech_s: f64, v: [f32; 2]) -> EnrolmentSample {
        EnrolmentSample {
            label: hash.into(),
            file: EnrolmentFile {
                sha256: hash.into(),
                speech_s,
            },
            voiceprint: Voiceprint(v.to_vec()),
            synthetic_check: Verdict::Human,
        }
    }

    #[test]
    fn an_enrolment_needs_ten_seconds_and_counts_a_recording_once() {
        let twice = vec![sample("a", 6.0, [1.0, 0.0]), sample("a", 6.0, [1.0, 0.0])];
        match combine(twice) {
            Err(EnrolError::TooLittleSpeech { found, .. }) => assert_eq!(found, 6.0),
            other => panic!("{other:?}"),
        }
        let (print, files) = combine(vec![
            sample("a", 6.0, [1.0, 0.0]),
            sample("b", 5.0, [0.0, 1.0]),
        ])
        .unwrap();
        assert_eq!(files.len(), 2);
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((print.0[0] - half).abs() < 1e-6 && (print.0[1] - half).abs() < 1e-6);
        assert!(matches!(combine(Vec::new()), Err(EnrolError::Nothing)));
    }
}
