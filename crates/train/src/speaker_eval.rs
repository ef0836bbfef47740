//! `aqiqat-train speaker-eval`: how well voiceprints tell people apart, and how often a clone
//! of a person passes as that person, measured on a corpus v2 build.
//!
//! Every genuine speaker with enough clean clips is enrolled from their first clips (sorted by
//! path) until at least [`ENROL_SECONDS`] of speech, as `aqiqat voiceprint enrol` requires, and
//! tested on their other clips (target trials) and on other enrolled speakers' clips
//! (non-target trials, [`IMPOSTORS`] per clip, drawn with a fixed seed). Speakers are split in
//! two by a hash of their name: the thresholds are set on one half and every figure is read on
//! the other, so no figure grades the thresholds on the trials that set them.
//!
//! - `same speaker` from the similarity at which at most 1 % of non-target trials pass;
//! - `different speaker` below the similarity under which at most 5 % of target trials fall;
//!   between the two, the check cannot say (when the two cross, both take the middle).
//!
//! Then, on the other half: the equal error rate, minDCF at P_target 0.01, the shares of target
//! and non-target trials per answer, per language and per channel (test clips through a phone
//! line, a messenger, noise… from manifest_aug.tsv, against clean enrolments, with their own
//! non-target trials), and clone trials: synthetic clips made in an enrolled speaker's voice
//! (voice conversion, zero-shot TTS, a TTS trained on them), scored against that speaker's
//! enrolment, by family; those that pass as the speaker then meet the synthetic-speech check,
//! and the shares it calls synthetic, inconclusive and human are what the joint verdict rests on.

use crate::rng::Rng;
use aqiqat_intake::{AudioStream, Limits};
use aqiqat_speaker::{ENROL_SECONDS, Precision, SAMPLE_RATE, SpeakerEncoder, Voiceprint};
use aqiqat_voice::manifest::{self, Entry};
use aqiqat_voice::metrics;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Non-target trials per test clip.
const IMPOSTORS: usize = 10;
/// Test clips per speaker, at most (the corpus has speakers with hundreds).
const TESTS_PER_SPEAKER: usize = 8;
/// Clone clips per speaker and family, at most.
const CLONES_PER_SPEAKER: usize = 20;

#[derive(clap::Args, Clone)]
pub struct SpeakerEvalArgs {
    /// Corpus folder (manifest.tsv, manifest_aug.tsv).
    #[arg(long)]
    data: PathBuf,
    /// Where the figures go (JSON).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 20_261_130)]
    seed: u64,
    /// Partial utterances per second in every voiceprint (the product's rate by default).
    #[arg(long, default_value_t = aqiqat_speaker::PARTIALS_PER_SECOND)]
    partials_per_second: f64,
    /// The encoder's arithmetic: `int16` (shipped) or `f32` (what it is measured against).
    #[arg(long, default_value = "int16", value_parser = ["int16", "f32"])]
    precision: String,
}

/// A clip's speech span at 16 kHz: what a scan would hand the speaker check.
fn speech(path: &std::path::Path) -> Option<(Vec<f32>, f64)> {
    let samples = AudioStream::open(path, SAMPLE_RATE, &Limits::default())
        .and_then(|s| s.read_to_end())
        .ok()?;
    let (span, seconds) = aqiqat_speaker::speech_span(&samples)?;
    Some((samples[span].to_vec(), seconds))
}

fn half_of(speaker: &str) -> bool {
    aqiqat_intake::hash::sha256_bytes(speaker.as_bytes()).as_bytes()[0].is_multiple_of(2)
}

#[derive(serde::Serialize, Default)]
struct Shares {
    trials: usize,
    same: f64,
    different: f64,
    cannot_say: f64,
}

fn shares(scores: &[f64], same: f64, different: f64) -> Shares {
    let n = scores.len().max(1) as f64;
    let s = scores.iter().filter(|&&v| v >= same).count() as f64 / n;
    let d = scores.iter().filter(|&&v| v < different).count() as f64 / n;
    Shares {
        trials: scores.len(),
        same: s,
        different: d,
        cannot_say: 1.0 - s - d,
    }
}

/// (different-below, same-from): the rule described in the module documentation.
fn thresholds(target: &[f64], non_target: &[f64]) -> (f64, f64) {
    let mut t = target.to_vec();
    t.sort_by(f64::total_cmp);
    let k = (0.05 * t.len() as f64).floor() as usize;
    let different = if k == 0 {
        t[0]
    } else {
        (t[k - 1] + t[k]) / 2.0
    };
    let mut n = non_target.to_vec();
    n.sort_by(|a, b| b.total_cmp(a));
    let k = (0.01 * n.len() as f64).floor() as usize;
    let same = if k == 0 {
        n[0].next_up()
    } else {
        (n[k - 1] + n[k]) / 2.0
    };
    if different > same {
        let middle = (different + same) / 2.0;
        return (middle, middle);
    }
    (different, same)
}

/// The cost of errors at a prior of one target in a hundred trials (NIST SRE's usual point).
const P_TARGET: f64 = 0.01;

/// EER and minDCF of a set of target and non-target trials, with the shares per answer.
fn trial_figures(
    target: &[f64],
    non_target: &[f64],
    same: f64,
    different: f64,
) -> serde_json::Value {
    let both = !target.is_empty() && !non_target.is_empty();
    serde_json::json!({
        "eer": both.then(|| metrics::eer(non_target, target).eer),
        "min_dcf_p001": both.then(|| metrics::min_dcf(non_target, target, P_TARGET)),
        "target": shares(target, same, different),
        "non_target": shares(non_target, same, different),
    })
}

pub fn run(args: &SpeakerEvalArgs) -> Result<(), Box<dyn std::error::Error>> {
    let clean = manifest::read(&args.data.join("manifest.tsv"))?;
    let variants = manifest::read(&args.data.join("manifest_aug.tsv")).unwrap_or_default();
    let precision = match args.precision.as_str() {
        "f32" => Precision::F32,
        _ => Precision::Int16,
    };
    let encoder = SpeakerEncoder::embedded()?
        .with_partials_per_second(args.partials_per_second)
        .with_precision(precision);
    let print_of = |e: &Entry| -> Option<(Voiceprint, f64)> {
        let (samples, seconds) = speech(&e.path)?;
        Some((encoder.embed(&samples).ok()?.0, seconds))
    };

    // Genuine clean clips by speaker.
    let mut by_speaker: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in clean.iter().filter(|e| !e.label.is_spoof()) {
        if let Some(s) = e.get("speaker").filter(|s| !s.is_empty()) {
            by_speaker.entry(s.to_owned()).or_default().push(e);
        }
    }
    struct Speaker {
        enrolled: Voiceprint,
        tests: Vec<(Voiceprint, String)>,
        half: bool,
        test_paths: Vec<String>,
    }
    let mut speakers: BTreeMap<String, Speaker> = BTreeMap::new();
    let mut seconds_total = 0.0;
    for (name, mut clips) in by_speaker {
        clips.sort_by(|a, b| a.path.cmp(&b.path));
        let mut enrol = Vec::new();
        let mut enrolled_s = 0.0;
        let mut rest = clips.iter();
        for e in rest.by_ref() {
            if enrolled_s >= ENROL_SECONDS {
                break;
            }
            if let Some((p, s)) = print_of(e) {
                enrol.push(p);
                enrolled_s += s;
            }
        }
        if enrolled_s < ENROL_SECONDS {
            continue;
        }
        let tests: Vec<(Voiceprint, String, String)> = rest
            .filter_map(|e| {
                let (p, _) = print_of(e)?;
                Some((
                    p,
                    e.path.display().to_string(),
                    e.get("language")?.to_owned(),
                ))
            })
            .take(TESTS_PER_SPEAKER)
            .collect();
        if tests.is_empty() {
            continue;
        }
        seconds_total += enrolled_s;
        speakers.insert(
            name.clone(),
            Speaker {
                enrolled: Voiceprint::mean(&enrol).expect("enrolled"),
                test_paths: tests.iter().map(|t| t.1.clone()).collect(),
                tests: tests.into_iter().map(|(p, _, l)| (p, l)).collect(),
                half: half_of(&name),
            },
        );
        if speakers.len().is_multiple_of(50) {
            eprintln!("{} speakers enrolled", speakers.len());
        }
    }
    let names: Vec<&String> = speakers.keys().collect();
    let mut rng = Rng::new(args.seed);
    // (half, language, target?, score)
    let mut trials: Vec<(bool, String, bool, f64)> = Vec::new();
    for (name, s) in &speakers {
        for (p, language) in &s.tests {
            trials.push((s.half, language.clone(), true, p.similarity(&s.enrolled)));
            let same_half: Vec<&&String> = names
                .iter()
                .filter(|n| **n != name && speakers[**n].half == s.half)
                .collect();
            for _ in 0..IMPOSTORS.min(same_half.len()) {
                let other = &speakers[*same_half[rng.below(same_half.len())]];
                trials.push((
                    s.half,
                    language.clone(),
                    false,
                    p.similarity(&other.enrolled),
                ));
            }
        }
    }
    let pick = |half: bool, target: bool| -> Vec<f64> {
        trials
            .iter()
            .filter(|t| t.0 == half && t.2 == target)
            .map(|t| t.3)
            .collect()
    };
    let (different, same) = thresholds(&pick(true, true), &pick(true, false));
    let (target, non_target) = (pick(false, true), pick(false, false));
    let eer = metrics::eer(&non_target, &target).eer;
    let min_dcf = metrics::min_dcf(&non_target, &target, P_TARGET);
    eprintln!(
        "{} speakers ({:.0} s enrolled); thresholds different < {different:.4}, same ≥ {same:.4}; \
         EER on the other half {:.2} %, minDCF(0.01) {min_dcf:.3}",
        speakers.len(),
        seconds_total,
        eer * 100.0
    );

    // The core figures first: the channel and clone passes decode thousands more clips, and a
    // run stopped during them should still leave its thresholds behind.
    let mut figures = serde_json::json!({
        "command": crate::command_line(),
        "speakers": speakers.len(),
        "speakers_for_thresholds": speakers.values().filter(|s| s.half).count(),
        "enrol_seconds": ENROL_SECONDS,
        "thresholds": {"different_below": different, "same_from": same},
        "eer": eer,
        "min_dcf_p001": min_dcf,
        "trials": {"target": target.len(), "non_target": non_target.len()},
        "target": shares(&target, same, different),
        "non_target": shares(&non_target, same, different),
        "complete": false,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&figures)? + "\n")?;

    let mut per_language = BTreeMap::new();
    let languages: std::collections::BTreeSet<&String> =
        trials.iter().filter(|t| !t.0).map(|t| &t.1).collect();
    for language in languages {
        let of = |target: bool| -> Vec<f64> {
            trials
                .iter()
                .filter(|t| !t.0 && t.2 == target && &t.1 == language)
                .map(|t| t.3)
                .collect()
        };
        per_language.insert(
            language.clone(),
            trial_figures(&of(true), &of(false), same, different),
        );
    }

    // The evaluation half's test clips through channels, against their clean enrolment (target)
    // and against other speakers' clean enrolments (non-target): the suspicious call is
    // narrowband, the known messages are not.
    let eval_names: Vec<&String> = speakers
        .iter()
        .filter(|(_, s)| !s.half)
        .map(|(n, _)| n)
        .collect();
    let mut per_channel: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let test_paths: BTreeMap<String, &str> = speakers
        .iter()
        .filter(|(_, s)| !s.half)
        .flat_map(|(n, s)| s.test_paths.iter().map(move |p| (p.clone(), n.as_str())))
        .collect();
    for v in &variants {
        let Some(parent) = v.get("parent") else {
            continue;
        };
        let parent = args.data.join(parent).display().to_string();
        let Some(speaker) = test_paths.get(&parent) else {
            continue;
        };
        if let Some((p, _)) = print_of(v) {
            let (targets, others) = per_channel
                .entry(v.get("channel").unwrap_or("?").to_owned())
                .or_default();
            targets.push(p.similarity(&speakers[*speaker].enrolled));
            let candidates: Vec<&&String> = eval_names.iter().filter(|n| **n != speaker).collect();
            for _ in 0..IMPOSTORS.min(candidates.len()) {
                let other = &speakers[*candidates[rng.below(candidates.len())]];
                others.push(p.similarity(&other.enrolled));
            }
        }
    }

    // Clones: synthetic clips in an enrolled speaker's voice. Those that pass as the speaker
    // then meet the synthetic-speech check, as a scan with a claimed voiceprint would.
    let detector = aqiqat_voice::detector::VoiceDetector::embedded()?;
    let mut clones: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // family → (passed as the speaker, then synthetic / inconclusive / human)
    let mut caught: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut taken: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in clean.iter().filter(|e| e.label.is_spoof()) {
        let (Some(name), Some(family)) = (e.get("speaker"), e.get("family")) else {
            continue;
        };
        let Some(s) = speakers.get(name).filter(|s| !s.half) else {
            continue;
        };
        let n = taken
            .entry((name.to_owned(), family.to_owned()))
            .or_default();
        if *n >= CLONES_PER_SPEAKER {
            continue;
        }
        if let Some((p, _)) = print_of(e) {
            *n += 1;
            let similarity = p.similarity(&s.enrolled);
            clones
                .entry(family.to_owned())
                .or_default()
                .push(similarity);
            if similarity >= same {
                let counts = caught.entry(family.to_owned()).or_default();
                counts[0] += 1;
                let verdict =
                    AudioStream::open(&e.path, detector.sample_rate(), &Limits::default())
                        .and_then(|s| s.read_to_end())
                        .ok()
                        .and_then(|samples| detector.scan(&samples).ok())
                        .map(|f| f.verdict);
                match verdict {
                    Some(aqiqat_voice::detector::Verdict::Synthetic) => counts[1] += 1,
                    Some(aqiqat_voice::detector::Verdict::Human) => counts[3] += 1,
                    _ => counts[2] += 1,
                }
            }
        }
    }
    let caught_json = |c: &[usize; 4]| {
        let n = c[0].max(1) as f64;
        serde_json::json!({
            "passed_as_speaker": c[0],
            "then_synthetic": c[1] as f64 / n,
            "then_inconclusive": c[2] as f64 / n,
            "then_human": c[3] as f64 / n,
        })
    };
    let mut caught_all = [0usize; 4];
    for c in caught.values() {
        for (a, b) in caught_all.iter_mut().zip(c) {
            *a += b;
        }
    }

    let more = serde_json::json!({
        "per_language": per_language,
        "per_channel": per_channel.iter().map(|(c, (t, n))| (c.clone(), trial_figures(t, n, same, different))).collect::<BTreeMap<_, _>>(),
        "clones_by_family": clones.iter().map(|(f, v)| (f.clone(), shares(v, same, different))).collect::<BTreeMap<_, _>>(),
        "clones_all": shares(&clones.values().flatten().copied().collect::<Vec<_>>(), same, different),
        "clones_passing_then_synthetic_check_by_family": caught.iter().map(|(f, c)| (f.clone(), caught_json(c))).collect::<BTreeMap<_, _>>(),
        "clones_passing_then_synthetic_check": caught_json(&caught_all),
        "complete": true,
    });
    if let (Some(all), serde_json::Value::Object(more)) = (figures.as_object_mut(), more) {
        all.extend(more);
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&figures)? + "\n")?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
