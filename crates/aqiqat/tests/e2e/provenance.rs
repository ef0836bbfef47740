//! Provenance as a user meets it: `aqiqat label` signs a file, `aqiqat scan` finds and
//! verifies the label, the verdict follows it, and the evidence record and report keep it.
//! Pictures are written here by the `png` crate; certificates are made here by rcgen.

use crate::common;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

use common::CliEnv as Env;

/// What these tests do with the binary, beyond running it.
trait Provenance {
    fn scan(&self, file: &str, extra: &[&str]) -> Value;
    fn label(&self, file: &str, out: &str, generator: &str) -> String;
    fn picture(&self, name: &str, seed: u8) -> String;
}

impl Provenance for Env {
    fn scan(&self, file: &str, extra: &[&str]) -> Value {
        let mut args = vec!["scan", file, "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    fn label(&self, file: &str, out: &str, generator: &str) -> String {
        self.ok(&["label", file, "--out", out, "--generator", generator])
    }

    fn picture(&self, name: &str, seed: u8) -> String {
        std::fs::write(self.path(name), common::png_picture(seed)).unwrap();
        name.to_owned()
    }
}

/// The text of the PDF report of `record`, read back by poppler.
fn pdf_text(env: &Env, record: &str) -> String {
    env.ok(&["report", record, "--format", "pdf", "--out", "report.pdf"]);
    let out = Command::new("pdftotext")
        .arg(env.path("report.pdf"))
        .arg("-")
        .output()
        .expect("pdftotext (Debian: poppler-utils) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same PNG with one pixel changed and every other chunk (the manifest too) kept.
fn change_one_pixel(png: &[u8]) -> Vec<u8> {
    let mut out = png[..8].to_vec();
    let mut idat = Vec::new();
    let mut at = 8;
    let mut chunks: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = png[at + 4..at + 8].to_vec();
        let data = png[at + 8..at + 8 + len].to_vec();
        if kind == b"IDAT" {
            if idat.is_empty() {
                chunks.push((kind, Vec::new()));
            }
            idat.extend_from_slice(&data);
        } else {
            chunks.push((kind, data));
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    raw[4] ^= 0x10;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    for (kind, data) in chunks {
        let data = if kind == b"IDAT" { idat.clone() } else { data };
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        crc.update(&data);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&kind);
        out.extend_from_slice(&data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

fn credentials(scan: &Value) -> &Value {
    &scan["provenance"]["content_credentials"]
}

#[test]
fn label_then_scan_reads_a_valid_ai_label_that_decides_the_verdict() {
    let env = Env::new();
    env.picture("picture.png", 1);
    let out = env.label("picture.png", "labelled.png", "Acme ImageGen 3");
    assert!(out.contains("trainedAlgorithmicMedia"), "{out}");
    // The installation's labelling identity was made, its key private.
    let key = env.path("data/keys/label/key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
            0
        );
    }

    let scan = env.scan("labelled.png", &[]);
    assert_eq!(scan["verdict"], "synthetic");
    assert_eq!(scan["verdict_basis"], "content_credentials");
    assert_eq!(
        scan["probability_synthetic"],
        Value::Null,
        "a label is not a score"
    );
    assert_eq!(scan["media"]["kind"], "image");
    assert_eq!(scan["media"]["width"], 96);
    let p = &scan["provenance"];
    assert_eq!(p["digital_source_type"], "trainedAlgorithmicMedia");
    let c = credentials(&scan);
    assert_eq!(c["status"], "found");
    assert_eq!(c["state"], "valid");
    assert_eq!(c["digital_source_type"], "trainedAlgorithmicMedia");
    assert_eq!(c["actions"][0]["action"], "c2pa.created");
    assert_eq!(c["actions"][0]["software_agent"], "Acme ImageGen 3");
    assert!(
        scan["analysers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "provenance")
    );

    // With the installation's CA as trust anchor the same label is trusted.
    let scan = env.scan(
        "labelled.png",
        &["--trust-anchors", "data/keys/label/ca.pem"],
    );
    assert_eq!(credentials(&scan)["state"], "trusted");

    // A second label reuses the identity rather than making a new one.
    let before = std::fs::read(&key).unwrap();
    env.label("picture.png", "again.png", "x");
    assert_eq!(std::fs::read(&key).unwrap(), before);

    // The unlabelled original: nothing declares AI, no image detector, so inconclusive.
    let scan = env.scan("picture.png", &[]);
    assert_eq!(scan["verdict"], "inconclusive");
    assert_eq!(scan["verdict_basis"], "nothing");
    assert_eq!(credentials(&scan)["status"], "absent");
    assert!(scan["reason"].as_str().unwrap().contains("proves nothing"));
}

#[test]
fn a_pixel_edited_after_labelling_breaks_the_binding_and_the_label_decides_nothing() {
    let env = Env::new();
    env.picture("picture.png", 2);
    env.label("picture.png", "labelled.png", "G");
    let edited = change_one_pixel(&std::fs::read(env.path("labelled.png")).unwrap());
    std::fs::write(env.path("edited.png"), edited).unwrap();

    let scan = env.scan("edited.png", &[]);
    let c = credentials(&scan);
    assert_eq!(c["state"], "invalid");
    let failures = c["failures"].as_array().unwrap();
    let binding = failures
        .iter()
        .find(|f| f["code"] == "assertion.dataHash.mismatch")
        .unwrap_or_else(|| panic!("{failures:?}"));
    assert!(
        binding["meaning"]
            .as_str()
            .unwrap()
            .contains("hard binding is broken")
    );
    assert_eq!(
        scan["verdict"], "inconclusive",
        "a broken label declares nothing"
    );
    assert_eq!(scan["provenance"]["digital_source_type"], Value::Null);

    let text = env.ok(&["scan", "edited.png"]);
    assert!(text.contains("INVALID"), "{text}");
    assert!(text.contains("hard binding is broken"), "{text}");
}

#[test]
fn a_provider_certificate_signs_and_a_sidecar_travels_beside_the_file() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let env = Env::new();
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Test Provider Root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let now = std::time::SystemTime::now();
    let year = std::time::Duration::from_secs(365 * 86_400);
    ca.not_before = now.into();
    ca.not_after = (now + year).into();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ee_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ee = CertificateParams::new(Vec::<String>::new()).unwrap();
    ee.distinguished_name
        .push(DnType::CommonName, "Test Provider Labels");
    ee.distinguished_name
        .push(DnType::OrganizationName, "Test Provider");
    ee.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ee.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    ee.use_authority_key_identifier_extension = true;
    ee.not_before = now.into();
    ee.not_after = (now + year).into();
    let ee_cert = ee.signed_by(&ee_key, &Issuer::new(ca, ca_key)).unwrap();
    std::fs::write(
        env.path("chain.pem"),
        format!("{}{}", ee_cert.pem(), ca_cert.pem()),
    )
    .unwrap();
    std::fs::write(env.path("key.pem"), ee_key.serialize_pem()).unwrap();
    std::fs::write(env.path("root.pem"), ca_cert.pem()).unwrap();

    env.picture("picture.png", 3);
    env.ok(&[
        "label",
        "picture.png",
        "--out",
        "out.png",
        "--generator",
        "Provider X",
        "--key",
        "key.pem",
        "--cert",
        "chain.pem",
        "--sidecar",
    ]);
    assert_eq!(
        std::fs::read(env.path("out.png")).unwrap(),
        std::fs::read(env.path("picture.png")).unwrap(),
        "a sidecar label leaves the file untouched"
    );
    assert!(env.path("out.c2pa").exists());
    assert!(
        !env.path("data/keys/label").exists(),
        "no installation identity is made when the provider's own signs"
    );

    let scan = env.scan("out.png", &["--trust-anchors", "root.pem"]);
    let c = credentials(&scan);
    assert_eq!(c["source"], "sidecar");
    assert_eq!(c["state"], "trusted");
    assert_eq!(c["signer"]["common_name"], "Test Provider Labels");
    assert_eq!(scan["verdict"], "synthetic");

    // --key without --cert is refused by the argument parser.
    let out = env.run(&[
        "label",
        "picture.png",
        "--out",
        "y.png",
        "--generator",
        "g",
        "--key",
        "key.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_inputs_to_label_and_image_scans_get_clear_errors() {
    let env = Env::new();
    std::fs::write(env.path("notes.txt"), "just some text\n").unwrap();
    let out = env.run(&["label", "notes.txt", "--out", "x.txt", "--generator", "g"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kind of file"));
    assert!(!env.path("x.txt").exists());

    // A PNG cut in half: the scan refuses it as corrupt, naming the format.
    let png = common::png_picture(4);
    std::fs::write(env.path("cut.png"), &png[..png.len() / 2]).unwrap();
    let out = env.run(&["scan", "cut.png"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("png"));

    // A picture whose header declares 100 000 × 100 000 pixels is refused before decoding.
    let mut huge = png.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    std::fs::write(env.path("huge.png"), &huge).unwrap();
    let out = env.run(&["scan", "huge.png"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too large"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A missing trust-anchor file is the user's error.
    env.picture("ok.png", 5);
    let out = env.run(&["scan", "ok.png", "--trust-anchors", "nowhere.pem"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_labelled_voice_is_synthetic_by_label_whatever_the_detector_says() {
    let env = Env::new();
    // A real human recording the detector calls human, as WAV (C2PA cannot be embedded in
    // FLAC).
    let manifest = std::fs::read_to_string(common::smoke_dir().join("smoke.tsv")).unwrap();
    let bonafide: Vec<PathBuf> = manifest
        .lines()
        .skip(1)
        .filter(|l| l.split('\t').nth(1) == Some("bonafide"))
        .map(|l| common::smoke_dir().join(l.split('\t').next().unwrap()))
        .collect();
    let plain = bonafide
        .iter()
        .find_map(|clip| {
            let samples = common::decode_with_aqiqat(clip, 16_000, env.dir.path());
            common::write_wav_16k(
                &env.path("voice.wav"),
                samples.iter().map(|&s| (s * 32767.0) as i16),
            );
            let scan = env.scan("voice.wav", &[]);
            (scan["verdict"] == "human").then_some(scan)
        })
        .expect("a bonafide smoke clip the detector calls human");
    assert_eq!(plain["verdict_basis"], "voice_detector");
    env.label("voice.wav", "labelled.wav", "Acme Voice");
    let scan = env.scan("labelled.wav", &[]);
    assert_eq!(credentials(&scan)["state"], "valid");
    assert_eq!(scan["verdict"], "synthetic");
    assert_eq!(scan["verdict_basis"], "content_credentials");
    // The detector still ran and its figures are kept beside the label's verdict.
    assert_eq!(
        scan["voice"]["model"]["name"],
        plain["voice"]["model"]["name"]
    );
    assert_eq!(
        scan["probability_synthetic"],
        plain["probability_synthetic"]
    );
    assert!(scan["reason"].as_str().unwrap().contains("outranks"));
}

#[test]
fn provenance_is_kept_in_the_evidence_record_and_shown_in_the_report() {
    let env = Env::new();
    env.picture("picture.png", 6);
    env.label("picture.png", "labelled.png", "Acme ImageGen 3");
    env.ok(&["scan", "labelled.png", "--record", "record.json"]);
    let record: Value =
        serde_json::from_slice(&std::fs::read(env.path("record.json")).unwrap()).unwrap();
    let text = record.to_string();
    assert!(text.contains("trainedAlgorithmicMedia"));
    assert!(text.contains("content_credentials"));
    env.ok(&["verify", "record.json", "--media", "labelled.png"]);

    for (lang, heading) in [
        ("en", "Provenance labels"),
        ("ru", "Метки происхождения"),
        ("kk", "Шығу тегі белгілері"),
    ] {
        let out = format!("report-{lang}.html");
        env.ok(&["report", "record.json", "--lang", lang, "--out", &out]);
        let html = std::fs::read_to_string(env.path(&out)).unwrap();
        assert!(html.contains(heading), "{lang}");
        assert!(html.contains("trainedAlgorithmicMedia"), "{lang}");
        assert!(html.contains("Acme ImageGen 3"), "{lang}");
        assert!(
            !html.contains("<svg"),
            "{lang}: a picture's report draws no timeline"
        );
    }
    // The PDF carries the same section.
    let text = pdf_text(&env, "record.json");
    assert!(text.contains("Provenance labels"), "{text}");
    assert!(text.contains("trainedAlgorithmicMedia"), "{text}");
}

#[test]
fn the_image_detectors_answer_and_heat_map_reach_the_record_and_every_report() {
    let env = Env::new();
    std::fs::write(env.path("photo.png"), common::photo_png(320, 240)).unwrap();
    let scan = env.scan("photo.png", &["--record", "record.json"]);
    let image = &scan["image"];
    // 320×240 is read as it is: 20×15 cells of 16 pixels.
    assert_eq!(image["heatmap"]["cols"], 20, "{image}");
    assert_eq!(image["heatmap"]["rows"], 15);
    assert_eq!(image["heatmap"]["logits"].as_array().unwrap().len(), 300);
    assert_ne!(scan["verdict"], "human", "a picture is never called real");
    let flagged = image["verdict"] == "synthetic";
    assert_eq!(
        scan["verdict_basis"],
        if flagged { "image_detector" } else { "nothing" }
    );
    // Every reader is named with its weights: the CLIP encoder, the head that decides, and
    // the network that draws the map.
    for name in [
        "clip-vit-b16-blocks-1-6",
        "image-clip-logistic",
        "image-residual-cnn",
    ] {
        assert!(
            scan["analysers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == name && a["weights_sha256"].is_string()),
            "{name}: {}",
            scan["analysers"]
        );
    }
    assert_eq!(image["model"]["name"], "image-clip-logistic");
    let record: Value =
        serde_json::from_slice(&std::fs::read(env.path("record.json")).unwrap()).unwrap();
    assert!(
        record.to_string().contains("\"heatmap\""),
        "the record keeps the map"
    );
    env.ok(&["verify", "record.json", "--media", "photo.png"]);

    for (lang, heading, words) in [
        ("en", "Image detector", "generator families"),
        ("ru", "Детектор изображений", "семейств генераторов"),
        ("kk", "Сурет детекторы", "генератор отбасын"),
    ] {
        let out = format!("report-{lang}.html");
        env.ok(&["report", "record.json", "--lang", lang, "--out", &out]);
        let html = std::fs::read_to_string(env.path(&out)).unwrap();
        assert!(html.contains(heading), "{lang}");
        assert!(
            flagged || html.contains(words),
            "{lang}: the inconclusive answer in words"
        );
        let map = &html[html.find("class=\"heatmap\"").expect("a heat map")..];
        let map = &map[..map.find("</svg>").unwrap()];
        assert_eq!(
            map.matches("<rect").count(),
            300,
            "{lang}: one square per cell"
        );
    }
    let text = pdf_text(&env, "record.json");
    assert!(text.contains("Image detector"), "{text}");
    assert!(text.contains("pixel-level network"), "{text}");
}

#[test]
fn every_labellable_format_round_trips_and_an_edited_video_is_caught() {
    let env = Env::new();
    std::fs::write(env.path("picture.png"), common::png_picture(7)).unwrap();
    let ffmpeg = |args: &[&str], out: &str| {
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(args)
            .arg(env.path(out))
            .status()
            .expect("ffmpeg (Debian's) is installed");
        assert!(status.success(), "ffmpeg making {out}");
    };
    let tone = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000",
        "-t",
        "2",
    ];
    ffmpeg(&tone, "voice.mp3");
    ffmpeg(&tone, "voice.m4a");
    ffmpeg(
        &[
            &["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"][..],
            &tone,
            &[
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
            ],
        ]
        .concat(),
        "clip.mp4",
    );
    let picture = env.path("picture.png");
    let picture = picture.to_str().unwrap();
    ffmpeg(&["-i", picture], "picture.jpg");
    ffmpeg(&["-i", picture], "picture.webp");
    ffmpeg(&["-i", picture], "picture.gif");
    ffmpeg(
        &["-i", picture, "-c:v", "libaom-av1", "-still-picture", "1"],
        "picture.avif",
    );

    for file in [
        "voice.mp3",
        "voice.m4a",
        "clip.mp4",
        "picture.jpg",
        "picture.webp",
        "picture.gif",
        "picture.avif",
    ] {
        let out = format!("labelled-{file}");
        env.label(file, &out, "Acme Studio");
        let scan = env.scan(&out, &[]);
        let c = credentials(&scan);
        assert_eq!(c["state"], "valid", "{file}: {c}");
        assert_eq!(
            c["digital_source_type"], "trainedAlgorithmicMedia",
            "{file}"
        );
        assert_eq!(scan["verdict_basis"], "content_credentials", "{file}");
    }

    // One byte of the video's media data changed after labelling.
    let mut video = std::fs::read(env.path("labelled-clip.mp4")).unwrap();
    let mdat = video
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    video[mdat + 64] ^= 0x01;
    std::fs::write(env.path("edited.mp4"), &video).unwrap();
    let scan = env.scan("edited.mp4", &[]);
    let c = credentials(&scan);
    assert_eq!(c["state"], "invalid", "{c}");
    assert!(
        c["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"].as_str().unwrap().ends_with("Hash.mismatch")),
        "{c}"
    );
}
