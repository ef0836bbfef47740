//! Metadata markers read from real files made here: PNGs written by the `png` crate with the
//! text chunks generators write, JPEGs written by `jpeg-encoder` with EXIF (made by
//! kamadak-exif's writer) and XMP segments, and damaged or hostile variants of both.

use aqiqat_provenance::markers::{MarkerKind, read_markers};

const AI_XMP: &str = r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:CreatorTool="Adobe Firefly">
   <Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#;

fn png_with(texts: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 16, 16);
        encoder.set_color(png::ColorType::Rgb);
        for (kind, keyword, text) in texts {
            let (k, t) = (keyword.to_string(), text.to_string());
            match *kind {
                "tEXt" => encoder.add_text_chunk(k, t).unwrap(),
                "zTXt" => encoder.add_ztxt_chunk(k, t).unwrap(),
                _ => encoder.add_itxt_chunk(k, t).unwrap(),
            }
        }
        let mut writer = encoder.write_header().unwrap();
        let pixels: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8).collect();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

fn exif_block(fields: &[(exif::Tag, exif::Value)]) -> Vec<u8> {
    let fields: Vec<exif::Field> = fields
        .iter()
        .map(|(tag, value)| exif::Field {
            tag: *tag,
            ifd_num: exif::In::PRIMARY,
            value: value.clone(),
        })
        .collect();
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

fn jpeg_with(app1: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    for segment in app1 {
        encoder.add_app_segment(1, segment.clone()).unwrap();
    }
    let pixels: Vec<u8> = (0..32 * 32 * 3).map(|i| (i * 13 % 256) as u8).collect();
    encoder
        .encode(&pixels, 32, 32, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn ascii(text: &str) -> exif::Value {
    exif::Value::Ascii(vec![text.as_bytes().to_vec()])
}

#[test]
fn generator_records_in_png_text_chunks_declare_ai() {
    let a1111 = "a cat in a spacesuit\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, \
                 CFG scale: 7, Seed: 1, Size: 512x512, Model: sd_xl_base_1.0";
    let file = png_with(&[
        ("tEXt", "parameters", a1111),
        ("zTXt", "workflow", r#"{"nodes": [{"type": "KSampler"}]}"#),
        ("iTXt", "Software", "NovelAI"),
    ]);
    let found = read_markers(&file);
    assert_eq!(found.container, "png");
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert!(found.declares_ai);
    let kinds: Vec<_> = found
        .markers
        .iter()
        .map(|m| (m.kind, m.declares_ai))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (MarkerKind::GeneratorParameters, true),
            (MarkerKind::GeneratorWorkflow, true),
            (MarkerKind::Software, true),
        ]
    );
    assert!(found.markers[0].value.contains("Sampler: Euler a"));
    assert_eq!(found.markers[0].location, "png tEXt \"parameters\"");
    assert!(found.markers[2].meaning.contains("novelai"));
}

#[test]
fn an_iptc_digital_source_type_in_xmp_is_read_from_png_and_jpeg() {
    let png_file = png_with(&[("iTXt", "XML:com.adobe.xmp", AI_XMP)]);
    let mut xmp_segment = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp_segment.extend_from_slice(AI_XMP.as_bytes());
    let jpeg_file = jpeg_with(&[xmp_segment]);
    for (file, container) in [(png_file, "png"), (jpeg_file, "jpeg")] {
        let found = read_markers(&file);
        assert_eq!(found.container, container);
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        let dst = found
            .markers
            .iter()
            .find(|m| m.kind == MarkerKind::DigitalSourceType)
            .unwrap_or_else(|| panic!("{container}: {:?}", found.markers));
        assert!(dst.value.ends_with("/trainedAlgorithmicMedia"));
        assert!(dst.declares_ai);
        assert!(dst.meaning.contains("trained AI model"));
        let tool = found
            .markers
            .iter()
            .find(|m| m.kind == MarkerKind::Software)
            .unwrap();
        assert_eq!(tool.value, "Adobe Firefly");
        assert!(found.declares_ai);
    }
}

#[test]
fn exif_software_camera_and_a_web_ui_record_in_user_comment() {
    let mut comment = b"ASCII\0\0\0".to_vec();
    comment.extend_from_slice(b"portrait\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 5");
    let mut camera_exif = b"Exif\0\0".to_vec();
    camera_exif.extend(exif_block(&[
        (exif::Tag::Make, ascii("Canon")),
        (exif::Tag::Model, ascii("EOS R5")),
        (exif::Tag::Software, ascii("Adobe Lightroom 7.0")),
    ]));
    let photo = read_markers(&jpeg_with(&[camera_exif]));
    assert!(photo.problems.is_empty(), "{:?}", photo.problems);
    assert!(!photo.declares_ai, "{:?}", photo.markers);
    let camera = photo
        .markers
        .iter()
        .find(|m| m.kind == MarkerKind::Camera)
        .unwrap();
    assert_eq!(camera.value, "Canon EOS R5");
    assert!(camera.meaning.contains("anyone can write"));

    let mut generated_exif = b"Exif\0\0".to_vec();
    generated_exif.extend(exif_block(&[(
        exif::Tag::UserComment,
        exif::Value::Undefined(comment, 0),
    )]));
    let generated = read_markers(&jpeg_with(&[generated_exif]));
    assert!(generated.declares_ai, "{:?}", generated);
    assert_eq!(generated.markers[0].kind, MarkerKind::GeneratorParameters);
}

#[test]
fn files_without_markers_say_nothing_and_other_containers_are_not_guessed() {
    let plain = read_markers(&png_with(&[]));
    assert!(plain.markers.is_empty() && !plain.declares_ai && plain.problems.is_empty());
    let plain_jpeg = read_markers(&jpeg_with(&[]));
    assert!(plain_jpeg.markers.is_empty() && plain_jpeg.problems.is_empty());
    let wav = read_markers(b"RIFF\x24\0\0\0WAVEfmt ");
    assert_eq!(wav.container, "other");
    assert!(wav.markers.is_empty());
}

#[test]
fn damaged_and_hostile_metadata_is_reported_and_never_fatal() {
    // A PNG cut in the middle of its text chunk: what came before is kept, the damage named.
    let file = png_with(&[
        ("tEXt", "Software", "NovelAI"),
        ("tEXt", "parameters", &"x".repeat(500)),
    ]);
    let cut_at = file.windows(10).position(|w| w == b"parameters").unwrap() + 20;
    let cut = read_markers(&file[..cut_at]);
    assert_eq!(cut.markers.len(), 1);
    assert!(
        cut.problems[0].contains("runs past the end"),
        "{:?}",
        cut.problems
    );

    // A zTXt chunk that inflates to far more than any metadata needs is cut off, not
    // allowed to take the memory.
    let bomb = "A".repeat(64 << 20);
    let file = png_with(&[("zTXt", "parameters", &format!("Steps: 1, Sampler: x{bomb}"))]);
    let found = read_markers(&file);
    assert!(found.markers[0].value.chars().count() <= 2001);

    // XMP with a DTD (the entity-expansion attack) is refused as XML.
    let evil = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
    let found = read_markers(&png_with(&[("iTXt", "XML:com.adobe.xmp", evil)]));
    assert!(found.markers.is_empty());
    assert!(found.problems[0].contains("XMP"), "{:?}", found.problems);

    // A JPEG whose APP1 length points past the end; a JPEG with garbage after SOI.
    let mut xmp_segment = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp_segment.extend_from_slice(AI_XMP.as_bytes());
    let file = jpeg_with(&[xmp_segment]);
    let app1 = file.windows(2).position(|w| w == [0xFF, 0xE1]).unwrap();
    let truncated = read_markers(&file[..app1 + 40]);
    assert!(
        truncated.problems[0].contains("runs past the end"),
        "{:?}",
        truncated.problems
    );
    let garbage = read_markers(&[0xFF, 0xD8, 0x00, 0x11, 0x22, 0x33]);
    assert!(
        garbage.problems[0].contains("no marker"),
        "{:?}",
        garbage.problems
    );
    // A broken EXIF block.
    let broken = read_markers(&jpeg_with(&[b"Exif\0\0MM\0*garbage".to_vec()]));
    assert!(broken.problems[0].contains("EXIF"), "{:?}", broken.problems);
}

fn id3_frame(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(body);
    out
}

/// An ID3v2.3 tag with the given frames, then a few bytes standing in for MPEG audio.
fn mp3_with(frames: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = frames.concat();
    let size = body.len() as u32;
    let mut out = b"ID3\x03\x00\x00".to_vec();
    out.extend((0..4).rev().map(|i| ((size >> (7 * i)) & 0x7F) as u8));
    out.extend_from_slice(&body);
    out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0]);
    out
}

fn latin1_text(text: &str) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(text.as_bytes());
    body
}

#[test]
fn id3_software_and_comments_are_read_and_ai_generators_named() {
    let mut utf16 = vec![1u8, 0xFF, 0xFE];
    for unit in "ElevenLabs Multilingual v2".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let bytes = mp3_with(&[
        id3_frame(b"TIT2", &latin1_text("voice message")),
        id3_frame(b"TSSE", &utf16),
        id3_frame(
            b"COMM",
            &[b"\x00eng\x00".as_slice(), b"recorded at home"].concat(),
        ),
    ]);
    let f = read_markers(&bytes);
    assert_eq!(f.container, "id3");
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    let software = f.markers.iter().find(|m| m.location == "id3 TSSE").unwrap();
    assert_eq!(software.value, "ElevenLabs Multilingual v2");
    assert!(software.declares_ai);
    let comment = f.markers.iter().find(|m| m.location == "id3 COMM").unwrap();
    assert_eq!(comment.value, "recorded at home");
    assert!(!comment.declares_ai);
    assert!(f.declares_ai);

    let plain = read_markers(&mp3_with(&[id3_frame(
        b"TSSE",
        &latin1_text("Lavf60.16.100"),
    )]));
    assert_eq!(plain.markers.len(), 1);
    assert!(
        !plain.declares_ai,
        "an ordinary encoder is not an AI declaration"
    );
}

#[test]
fn a_cut_or_lying_id3_tag_is_reported_not_fatal() {
    let bytes = mp3_with(&[id3_frame(b"TSSE", &latin1_text("Lavf60.16.100"))]);
    for cut in 0..bytes.len() {
        let _ = read_markers(&bytes[..cut]);
    }
    let cut = read_markers(&bytes[..20]);
    assert!(!cut.problems.is_empty());
    // A frame declaring more bytes than the tag holds.
    let mut lying = bytes.clone();
    lying[10 + 4..10 + 8].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    let f = read_markers(&lying);
    assert!(f.markers.is_empty());
    assert!(!f.problems.is_empty());
}

fn mp4_box(kind: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn mp4_item(kind: &[u8], value: &str) -> Vec<u8> {
    let data = [&[0, 0, 0, 1, 0, 0, 0, 0][..], value.as_bytes()].concat();
    mp4_box(kind, &mp4_box(b"data", &data))
}

#[test]
fn mp4_encoder_and_comment_items_are_read() {
    let ilst = mp4_box(
        b"ilst",
        &[
            mp4_item(b"\xA9too", "Suno v4 export"),
            mp4_item(b"\xA9cmt", "made for a test"),
        ]
        .concat(),
    );
    let meta = mp4_box(b"meta", &[&[0u8, 0, 0, 0][..], &ilst].concat());
    let moov = mp4_box(b"moov", &mp4_box(b"udta", &meta));
    let bytes = [
        mp4_box(b"ftyp", b"M4A \0\0\0\0"),
        mp4_box(b"mdat", &[0; 64]),
        moov,
    ]
    .concat();
    let f = read_markers(&bytes);
    assert_eq!(f.container, "mp4");
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    let tool = f.markers.iter().find(|m| m.location == "mp4 ©too").unwrap();
    assert_eq!(tool.value, "Suno v4 export");
    assert!(tool.declares_ai);
    assert!(
        f.markers
            .iter()
            .any(|m| m.location == "mp4 ©cmt" && !m.declares_ai)
    );

    // Without its moov box (cut short), the reader says it could not look.
    let f = read_markers(&bytes[..bytes.len() - 10]);
    assert!(f.markers.is_empty());
    assert_eq!(f.problems.len(), 1);
}
