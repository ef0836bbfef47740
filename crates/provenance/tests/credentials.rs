//! C2PA Content Credentials, end to end through the real SDK: files made here (PNG by the
//! `png` crate, JPEG by `jpeg-encoder`, WAV by hand), labelled with a certificate authority
//! and signing certificate generated at test time, then read back whole, edited, tampered
//! with and cut short.

use aqiqat_provenance::credentials::{
    ContentCredentials, CredentialState, CredentialsOutcome, LabelRequest, LabelSigner,
    LocalIdentity, ManifestSource, TrustAnchors, label, read_credentials,
};
use std::io::{Read, Write};
use std::sync::OnceLock;

fn identity() -> &'static LocalIdentity {
    static IDENTITY: OnceLock<LocalIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| LocalIdentity::generate("aqiqat test suite").unwrap())
}

fn signer() -> LabelSigner {
    let id = identity();
    LabelSigner::from_pem(id.chain_pem.as_bytes(), id.key_pem.as_bytes(), None).unwrap()
}

fn png_image(seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 32, 24);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let pixels: Vec<u8> = (0..32 * 24 * 3)
            .map(|i| ((i * 13 + seed as usize * 31) % 251) as u8)
            .collect();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

fn jpeg_image() -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    let pixels: Vec<u8> = (0..64 * 48 * 3).map(|i| ((i * 7) % 256) as u8).collect();
    encoder
        .encode(&pixels, 64, 48, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn wav_tone() -> Vec<u8> {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..rate)
        .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn labelled(bytes: &[u8], media_type: &str) -> Vec<u8> {
    let request = LabelRequest {
        generator: "Acme ImageGen 3",
        title: Some("sunset.png"),
        media_type,
    };
    label(bytes, &request, &signer(), true).unwrap().asset
}

fn found(outcome: CredentialsOutcome) -> ContentCredentials {
    match outcome {
        CredentialsOutcome::Found(c) => *c,
        other => panic!("expected Content Credentials, got {other:?}"),
    }
}

fn read(bytes: &[u8], media_type: &str) -> CredentialsOutcome {
    read_credentials(bytes, media_type, None, &TrustAnchors::default())
}

fn assert_ai_label(c: &ContentCredentials) {
    assert_eq!(
        c.digital_source_type.as_deref(),
        Some("trainedAlgorithmicMedia")
    );
    assert!(c.declares_ai);
    let created = c
        .actions
        .iter()
        .find(|a| a.action == "c2pa.created")
        .expect("a c2pa.created action");
    assert_eq!(created.software_agent.as_deref(), Some("Acme ImageGen 3"));
    assert!(
        c.claim_generator.as_deref().unwrap().starts_with("aqiqat"),
        "{:?}",
        c.claim_generator
    );
    let signer = c.signer.as_ref().expect("signer");
    assert_eq!(
        signer.common_name.as_deref(),
        Some("aqiqat test suite content labels")
    );
}

#[test]
fn a_labelled_png_reads_back_valid_and_ai_generated() {
    let c = found(read(&labelled(&png_image(1), "image/png"), "image/png"));
    assert_eq!(c.state, CredentialState::Valid, "{c:#?}");
    assert!(c.holds());
    assert_eq!(c.source, ManifestSource::Embedded);
    assert_ai_label(&c);
    // No trust anchors were given, so the one failure is that the signer is not trusted.
    assert_eq!(
        c.failures
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>(),
        ["signingCredential.untrusted"]
    );
    assert!(
        c.certificate.contains("does not chain"),
        "{}",
        c.certificate
    );
}

#[test]
fn the_labelling_ca_as_trust_anchor_makes_the_label_trusted() {
    let bytes = labelled(&png_image(2), "image/png");
    let trust = TrustAnchors {
        pem: Some(identity().ca_pem.clone()),
    };
    let c = found(read_credentials(&bytes, "image/png", None, &trust));
    assert_eq!(c.state, CredentialState::Trusted, "{c:#?}");
    assert!(c.failures.is_empty(), "{:?}", c.failures);

    // Another CA's certificate as the only anchor does not make it trusted.
    let stranger = LocalIdentity::generate("someone else").unwrap();
    let trust = TrustAnchors {
        pem: Some(stranger.ca_pem),
    };
    let c = found(read_credentials(&bytes, "image/png", None, &trust));
    assert_eq!(c.state, CredentialState::Valid);
}

#[test]
fn a_labelled_jpeg_and_a_labelled_wav_read_back_valid() {
    let c = found(read(&labelled(&jpeg_image(), "image/jpeg"), "image/jpeg"));
    assert_eq!(c.state, CredentialState::Valid, "{c:#?}");
    assert_ai_label(&c);

    let c = found(read(&labelled(&wav_tone(), "audio/wav"), "audio/wav"));
    assert_eq!(c.state, CredentialState::Valid, "{c:#?}");
    assert_ai_label(&c);
}

/// Rewrites a PNG's image data with one pixel changed and every other chunk (the manifest
/// included) kept, as an editor that preserves metadata would.
fn png_with_one_pixel_changed(png: &[u8]) -> Vec<u8> {
    let mut chunks = Vec::new();
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let end = at + 12 + len;
        if kind == b"IDAT" {
            idat.extend_from_slice(&png[at + 8..at + 8 + len]);
            if chunks
                .last()
                .is_none_or(|c: &(Vec<u8>, Vec<u8>)| c.0 != b"IDAT")
            {
                chunks.push((b"IDAT".to_vec(), Vec::new()));
            }
        } else {
            chunks.push((kind.to_vec(), png[at + 8..at + 8 + len].to_vec()));
        }
        at = end;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    raw[1] ^= 0x40; // first pixel's red channel, after the row's filter byte
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).unwrap();
    let new_idat = encoder.finish().unwrap();

    let mut out = png[..8].to_vec();
    for (kind, data) in chunks {
        let data = if kind == b"IDAT" {
            new_idat.clone()
        } else {
            data
        };
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        crc.update(&data);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

#[test]
fn editing_a_pixel_after_labelling_breaks_the_hard_binding() {
    let bytes = labelled(&png_image(3), "image/png");
    let edited = png_with_one_pixel_changed(&bytes);
    assert_ne!(edited, bytes);
    let c = found(read(&edited, "image/png"));
    assert_eq!(c.state, CredentialState::Invalid, "{c:#?}");
    assert!(!c.holds());
    let binding = c
        .failures
        .iter()
        .find(|f| f.code == "assertion.dataHash.mismatch")
        .unwrap_or_else(|| panic!("no binding failure in {:?}", c.failures));
    assert!(binding.meaning.contains("hard binding is broken"));
    // What the manifest claims is still reported: the reader is told what was claimed and
    // that it no longer holds.
    assert_eq!(
        c.digital_source_type.as_deref(),
        Some("trainedAlgorithmicMedia")
    );
}

#[test]
fn editing_jpeg_image_data_breaks_the_hard_binding() {
    let mut bytes = labelled(&jpeg_image(), "image/jpeg");
    // The entropy-coded data ends just before the final EOI marker.
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    let c = found(read(&bytes, "image/jpeg"));
    assert_eq!(c.state, CredentialState::Invalid);
    assert!(
        c.failures
            .iter()
            .any(|f| f.code == "assertion.dataHash.mismatch"),
        "{:?}",
        c.failures
    );
}

#[test]
fn a_manifest_altered_after_signing_is_reported_invalid() {
    let bytes = labelled(&png_image(4), "image/png");
    // Rename the generator inside the signed manifest, keeping every length.
    let needle = b"Acme ImageGen 3";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("generator name in the manifest");
    let mut tampered = bytes.clone();
    tampered[at..at + needle.len()].copy_from_slice(b"Acme ImageGen 4");
    let c = found(read(&tampered, "image/png"));
    assert_eq!(c.state, CredentialState::Invalid, "{c:#?}");
    assert!(
        c.failures.iter().any(|f| f.code.contains("mismatch")),
        "{:?}",
        c.failures
    );
    assert!(c.failures.iter().all(|f| !f.meaning.is_empty()));
}

#[test]
fn a_sidecar_manifest_validates_against_the_untouched_file() {
    let original = png_image(5);
    let request = LabelRequest {
        generator: "Acme ImageGen 3",
        title: Some("sidecar.png"),
        media_type: "image/png",
    };
    let out = label(&original, &request, &signer(), false).unwrap();
    assert_eq!(
        out.asset, original,
        "a sidecar label leaves the file as it was"
    );
    assert!(matches!(
        read(&original, "image/png"),
        CredentialsOutcome::Absent
    ));

    let c = found(read_credentials(
        &original,
        "image/png",
        Some(&out.manifest_store),
        &TrustAnchors::default(),
    ));
    assert_eq!(c.source, ManifestSource::Sidecar);
    assert_eq!(c.state, CredentialState::Valid, "{c:#?}");
    assert_ai_label(&c);

    // The same sidecar beside a different picture does not hold.
    let c = found(read_credentials(
        &png_image(6),
        "image/png",
        Some(&out.manifest_store),
        &TrustAnchors::default(),
    ));
    assert_eq!(c.state, CredentialState::Invalid);
}

#[test]
fn files_without_credentials_and_unsupported_types_are_said_so() {
    assert!(matches!(
        read(&png_image(7), "image/png"),
        CredentialsOutcome::Absent
    ));
    assert!(matches!(
        read(&wav_tone(), "audio/wav"),
        CredentialsOutcome::Absent
    ));
    assert!(matches!(
        read(b"plain text", "text/plain"),
        CredentialsOutcome::Unsupported { .. }
    ));
}

/// The byte range of a PNG's `caBX` chunk (the embedded manifest store).
fn manifest_chunk(png: &[u8]) -> std::ops::Range<usize> {
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        if &png[at + 4..at + 8] == b"caBX" {
            return at..at + 12 + len;
        }
        at += 12 + len;
    }
    panic!("no caBX chunk")
}

#[test]
fn a_labelled_file_cut_short_or_garbled_never_panics_and_never_holds() {
    let bytes = labelled(&png_image(8), "image/png");
    for cut in (0..bytes.len()).step_by(bytes.len() / 40 + 1) {
        if let CredentialsOutcome::Found(c) = read(&bytes[..cut], "image/png") {
            assert!(!c.holds(), "cut at {cut} of {}: {c:#?}", bytes.len());
        }
    }
    // Bits flipped anywhere outside the manifest store change bound content.
    let store = manifest_chunk(&bytes);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut flipped = 0;
    while flipped < 40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = 8 + (seed as usize) % (bytes.len() - 8);
        if store.contains(&i) {
            continue;
        }
        flipped += 1;
        let mut garbled = bytes.clone();
        garbled[i] ^= 1 << ((seed >> 60) % 8);
        if let CredentialsOutcome::Found(c) = read(&garbled, "image/png") {
            assert!(!c.holds(), "bit flipped at {i}: {c:#?}");
        }
    }
}

#[test]
fn a_self_signed_certificate_is_refused_or_reported() {
    // C2PA forbids self-signed claim signers; the SDK refuses to sign or the reader says so.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["self.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Self");
    let cert = params.self_signed(&key).unwrap();
    let signer =
        LabelSigner::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None).unwrap();
    let request = LabelRequest {
        generator: "x",
        title: None,
        media_type: "image/png",
    };
    match label(&png_image(9), &request, &signer, true) {
        Err(_) => {}
        Ok(out) => {
            let c = found(read(&out.asset, "image/png"));
            assert_eq!(c.state, CredentialState::Invalid, "{c:#?}");
            assert!(
                c.failures
                    .iter()
                    .any(|f| f.code == "signingCredential.invalid"),
                "{:?}",
                c.failures
            );
        }
    }
}

#[test]
fn a_signing_certificate_without_an_organization_is_refused_before_signing() {
    // C2PA validators reject such signers; the SDK would only say "claim signature not
    // valid" after the fact.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ee_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ee = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ee.distinguished_name
        .push(rcgen::DnType::CommonName, "no organization");
    let ee_cert = ee
        .signed_by(&ee_key, &rcgen::Issuer::new(ca, ca_key))
        .unwrap();
    let chain = format!("{}{}", ee_cert.pem(), ca_cert.pem());
    let err = LabelSigner::from_pem(chain.as_bytes(), ee_key.serialize_pem().as_bytes(), None)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("organization"), "{err}");
}

#[test]
fn an_edit_of_labelled_ai_content_carries_the_ai_ingredient_forward() {
    let ai_png = labelled(&png_image(10), "image/png");
    // An editor's manifest over the labelled picture: the SDK takes the labelled file as the
    // parent ingredient, with its own manifest inside.
    let id = identity();
    let signer = c2pa::create_signer::from_keys(
        id.chain_pem.as_bytes(),
        id.key_pem.as_bytes(),
        c2pa::SigningAlg::Es256,
        None,
    )
    .unwrap();
    let context = c2pa::Context::new()
        .with_settings(serde_json::json!({"builder": {"thumbnail": {"enabled": false}}}))
        .unwrap();
    let mut builder = c2pa::Builder::from_context(context)
        .with_definition(serde_json::json!({"title": "edited.png"}))
        .unwrap();
    builder.set_intent(c2pa::BuilderIntent::Edit);
    let mut source = std::io::Cursor::new(&ai_png[..]);
    let mut edited = std::io::Cursor::new(Vec::new());
    builder
        .sign(signer.as_ref(), "image/png", &mut source, &mut edited)
        .unwrap();

    let c = found(read(edited.get_ref(), "image/png"));
    assert_eq!(c.state, CredentialState::Valid, "{c:#?}");
    assert_eq!(c.manifests, 2);
    assert!(
        c.actions.iter().any(|a| a.action == "c2pa.opened"),
        "{:?}",
        c.actions
    );
    let parent = c.ingredients.first().expect("the parent ingredient");
    assert_eq!(parent.relationship, "parentOf");
    assert!(parent.has_credentials);
    assert_eq!(
        parent.digital_source_type.as_deref(),
        Some("trainedAlgorithmicMedia")
    );
    assert!(c.declares_ai);
    assert!(c.ai_ingredient.is_some());
}
