//! `aqiqat voiceprint` and `aqiqat scan --claimed`: enrol a voice from known recordings, check
//! a new recording against it, and get the joint answer (issue 17's table) in the result and
//! in the signed record.

use crate::common;

use common::CliEnv as Env;
use sha2::{Digest, Sha256};
use std::f32::consts::TAU;
use std::path::PathBuf;

/// The smoke set's clips of one synthetic voice (`LJ-voice`) from one system: "the same
/// speaker" to a speaker encoder, and a clone to the synthetic-speech check. Longest first
/// (some hold little more than a second of speech).
fn lj_clips(system: &str) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let mut clips: Vec<PathBuf> = manifest
        .lines()
        .filter(|l| l.contains(&format!("\t{system}\tLJ-voice\t")))
        .map(|l| common::smoke_dir().join(l.split('\t').next().unwrap()))
        .collect();
    clips.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    clips
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn enrol_then_check_a_clone_a_stranger_and_delete() {
    let env = Env::new();
    let lj = lj_clips("openseq2seq-tacotron2-gst");
    assert!(lj.len() >= 5, "the smoke set has {} LJ clips", lj.len());
    let (enrol, rest) = lj.split_at(4);
    let mut args = vec![
        "voiceprint",
        "enrol",
        "LJ Speech",
        "--note",
        "demo voice",
        "--json",
    ];
    args.extend(enrol.iter().map(|p| s(p)));
    let summary = json(&env.ok(&args));
    let id = summary["id"].as_str().unwrap().to_owned();
    assert_eq!(summary["name"], "LJ Speech");
    assert_eq!(summary["files"].as_array().unwrap().len(), 4);
    assert!(summary["speech_s"].as_f64().unwrap() >= 10.0, "{summary}");
    assert!(summary.get("vector").is_none() && summary.get("voiceprint").is_none());

    let listed = json(&env.ok(&["voiceprint", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(env.ok(&["voiceprint", "list"]).contains("LJ Speech"));

    // Another clip of the voice, through the synthetic-speech check: a clone of the claimed
    // person. The record names the enrolment recordings by hash, never the voiceprint.
    let record = env.path("clone.json");
    let result = json(&env.ok(&[
        "scan",
        s(&rest[0]),
        "--claimed",
        "lj speech",
        "--json",
        "--record",
        s(&record),
    ]));
    assert_eq!(result["schema"], "aqiqat.scan/6");
    assert_eq!(result["speaker"]["decision"], "same_speaker", "{result}");
    assert_eq!(result["claim"]["verdict"], "clone_of_claimed", "{result}");
    assert!(
        result["claim"]["reason"]
            .as_str()
            .unwrap()
            .contains("LJ Speech")
    );
    assert!(
        result["analysers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "speaker-ge2e")
    );
    let envelope = json(&std::fs::read_to_string(&record).unwrap());
    let recorded = &envelope["record"]["result"]["speaker"]["claimed"];
    let hashes: Vec<&str> = recorded["enrolment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["sha256"].as_str().unwrap())
        .collect();
    for clip in enrol {
        let want = hex::encode(Sha256::digest(std::fs::read(clip).unwrap()));
        assert!(hashes.contains(&want.as_str()), "{want} not in {hashes:?}");
    }
    let text = serde_json::to_string(&envelope).unwrap();
    assert!(!text.contains("\"vector\"") && !text.contains("\"voiceprint\":["));
    env.ok(&["verify", s(&record)]);
    let html = env.path("clone.html");
    env.ok(&[
        "report",
        s(&record),
        "--lang",
        "en",
        "--format",
        "html",
        "--out",
        s(&html),
    ]);
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("data-claim=\"clone_of_claimed\""),
        "no claim section"
    );
    assert!(html.contains("CLONE of LJ Speech"));

    // A genuine stranger: not the claimed person, whatever the synthetic check says.
    let stranger = common::smoke_first("bonafide");
    let result = json(&env.ok(&["scan", s(&stranger), "--claimed", &id, "--json"]));
    assert_eq!(
        result["speaker"]["decision"], "different_speaker",
        "{result}"
    );
    assert_eq!(result["claim"]["verdict"], "not_claimed_person");
    assert!(result["speaker"]["similarity"].as_f64().unwrap() < 0.716);

    // Without --claimed the result has no speaker part at all.
    let plain = json(&env.ok(&["scan", s(&rest[0]), "--json"]));
    assert!(plain["speaker"].is_null() && plain["claim"].is_null());

    assert!(env.ok(&["voiceprint", "delete", "LJ Speech"]).contains(&id));
    assert_eq!(
        json(&env.ok(&["voiceprint", "list", "--json"])),
        serde_json::json!([])
    );
    let out = env.run(&["scan", s(&rest[0]), "--claimed", "LJ Speech"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no voiceprint \"LJ Speech\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn enrolment_refuses_what_carries_no_usable_voice_and_stores_nothing() {
    let env = Env::new();
    let lj = lj_clips("openseq2seq-centaur");
    let mut args = vec!["voiceprint", "enrol", "Kept"];
    args.extend(lj.iter().take(4).map(|p| s(p)));
    env.ok(&args);

    let text = env.path("notes.txt");
    std::fs::write(&text, "not a recording at all\n".repeat(20)).unwrap();
    let silence = env.path("silence.wav");
    common::write_wav_16k(&silence, std::iter::repeat_n(0i16, 16_000 * 12));
    let music = env.path("chords.wav");
    common::write_wav_16k(
        &music,
        chords(12.0).into_iter().map(|x| (x * 32_767.0) as i16),
    );
    let one_clip = common::smoke_first("bonafide");

    let cases: [(&str, Vec<&str>, &str); 5] = [
        ("text", vec![s(&text)], "notes.txt"),
        ("silence", vec![s(&silence)], "no speech"),
        ("music", vec![s(&music)], "music"),
        (
            "too little speech",
            vec![s(&one_clip)],
            "needs at least 10 s",
        ),
        (
            "the same clip twice",
            vec![s(&one_clip), s(&one_clip)],
            "needs at least 10 s",
        ),
    ];
    for (what, files, says) in cases {
        let mut args = vec!["voiceprint", "enrol", "Nobody"];
        args.extend(files);
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{what}: {err}");
        assert!(err.contains("nothing was enrolled"), "{what}: {err}");
    }
    // A name taken, and a name that is empty.
    let mut args = vec!["voiceprint", "enrol", "kept"];
    args.extend(lj.iter().take(4).map(|p| s(p)));
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
    let out = env.run(&["voiceprint", "delete", "Nobody"]);
    assert_eq!(out.status.code(), Some(2));

    let listed = json(&env.ok(&["voiceprint", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "Kept");

    // A recording too short to compare gets "cannot say", never a guess.
    let short = env.path("short.wav");
    let speech = common::decode_with_aqiqat(&one_clip, 16_000, env.dir.path());
    common::write_wav_16k(
        &short,
        speech[..16_000].iter().map(|x| (x * 32_767.0) as i16),
    );
    let result = json(&env.ok(&["scan", s(&short), "--claimed", "Kept", "--json"]));
    assert_eq!(result["speaker"]["decision"], "inconclusive", "{result}");
    assert_eq!(result["claim"]["verdict"], "inconclusive");
    assert!(result["speaker"]["similarity"].is_null());
}

/// Held organ-like triads, as music the quality check knows.
fn chords(seconds: f32) -> Vec<f32> {
    let rate = 16_000.0;
    let roots = [220.0f32, 174.6, 196.0, 261.6, 246.9];
    let per = (0.4 * rate) as usize;
    let total = (seconds * rate) as usize;
    (0..total)
        .map(|n| {
            let root = roots[(n / per) % roots.len()];
            let local = (n % per) as f32 / rate;
            let t = n as f32 / rate;
            let env = (local / 0.02).min(1.0) * (-local / 1.5).exp();
            let mut s = 0.0;
            for ratio in [1.0, 1.26, 1.5] {
                for k in 1..=6 {
                    s += (TAU * k as f32 * root * ratio * t).sin() / k as f32;
                }
            }
            0.1 * env * s
        })
        .collect()
}
