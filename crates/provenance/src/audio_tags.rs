//! Tags on audio: ID3v2 (MP3 and anything else that starts with one) and the iTunes-style
//! `moov/udta/meta/ilst` items of MP4/M4A. What matters for provenance is the software that
//! wrote the file (`TSSE`, `TENC`, `©too`), comments and user-defined text frames, where
//! voice generators and their front ends leave their names.

use crate::markers::{Marker, MarkerKind, MetadataFindings, be32, names_generator, text_marker};

pub(crate) fn id3(bytes: &[u8], findings: &mut MetadataFindings) {
    if bytes.len() < 10 {
        findings.problems.push("the ID3 header is cut short".into());
        return;
    }
    let version = bytes[3];
    let flags = bytes[5];
    let size = syncsafe(&bytes[6..10]);
    if !(3..=4).contains(&version) {
        findings.problems.push(format!(
            "ID3v2.{version} tags are not read (only 2.3 and 2.4)"
        ));
        return;
    }
    if flags & 0x80 != 0 {
        findings
            .problems
            .push("the ID3 tag is unsynchronised; its frames are not read".into());
        return;
    }
    let end = (10 + size).min(bytes.len());
    if 10 + size > bytes.len() {
        findings
            .problems
            .push("the ID3 tag runs past the end of the file".into());
    }
    let mut at = 10;
    if flags & 0x40 != 0 && at + 4 <= end {
        // Extended header: its size excludes itself in 2.3 and includes itself in 2.4.
        at += match version {
            3 => 4 + be32(&bytes[at..]),
            _ => syncsafe(&bytes[at..at + 4]),
        };
    }
    while at + 10 <= end {
        let id = &bytes[at..at + 4];
        if id[0] == 0 {
            break; // padding
        }
        let len = if version == 4 {
            syncsafe(&bytes[at + 4..at + 8])
        } else {
            be32(&bytes[at + 4..])
        };
        let Some(body) = bytes.get(at + 10..(at + 10).saturating_add(len).min(end)) else {
            break;
        };
        if body.len() < len {
            findings.problems.push(format!(
                "the ID3 frame {} runs past the end of the tag",
                String::from_utf8_lossy(id)
            ));
            break;
        }
        let name = String::from_utf8_lossy(id).into_owned();
        let location = format!("id3 {name}");
        match id {
            b"TSSE" | b"TENC" => push_software(findings, location, &id3_text(body)),
            b"TXXX" => {
                let text = id3_text(body);
                let mut parts = text.splitn(2, '\0');
                let key = parts.next().unwrap_or_default().to_owned();
                let value = parts.next().unwrap_or_default();
                let location = format!("id3 TXXX {key:?}");
                if let Some(m) = text_marker(location.clone(), &key, value) {
                    findings.markers.push(m);
                } else if let Some(g) = names_generator(value).or_else(|| names_generator(&key)) {
                    findings.markers.push(ai_software(location, value, g));
                }
            }
            b"COMM" if body.len() > 4 => {
                // encoding, 3-byte language, description NUL text
                let mut frame = vec![body[0]];
                frame.extend_from_slice(&body[4..]);
                let text = id3_text(&frame);
                let value = text.split('\0').next_back().unwrap_or_default();
                push_comment(findings, location, value);
            }
            _ => {}
        }
        at += 10 + len;
    }
}

fn push_software(findings: &mut MetadataFindings, location: String, value: &str) {
    if let Some(m) = text_marker(location, "software", value) {
        findings.markers.push(m);
    }
}

fn push_comment(findings: &mut MetadataFindings, location: String, value: &str) {
    if value.trim().is_empty() {
        return;
    }
    match names_generator(value) {
        Some(g) => findings.markers.push(ai_software(location, value, g)),
        None => {
            if let Some(m) = text_marker(location, "comment", value) {
                findings.markers.push(m);
            }
        }
    }
}

fn ai_software(location: String, value: &str, generator: &str) -> Marker {
    Marker {
        location,
        kind: MarkerKind::Comment,
        value: crate::markers::clip(value),
        meaning: format!("the text names an AI generator ({generator})"),
        declares_ai: true,
    }
}

/// An ID3 text frame's text (encoding byte first); several values are NUL-separated.
fn id3_text(body: &[u8]) -> String {
    let Some((&encoding, text)) = body.split_first() else {
        return String::new();
    };
    let decoded = match encoding {
        0 => text.iter().map(|&b| char::from(b)).collect(),
        1 | 2 => {
            let (big_endian, units) = match text {
                [0xFE, 0xFF, rest @ ..] => (true, rest),
                [0xFF, 0xFE, rest @ ..] => (false, rest),
                rest => (encoding == 2, rest),
            };
            let units: Vec<u16> = units
                .chunks_exact(2)
                .map(|c| {
                    if big_endian {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(text).into_owned(),
    };
    decoded.trim_end_matches('\0').to_owned()
}

fn syncsafe(b: &[u8]) -> usize {
    b[..4]
        .iter()
        .fold(0usize, |acc, &x| (acc << 7) | (x & 0x7F) as usize)
}

/// The boxes directly inside `data`: (type, body). Stops at the first box that does not fit.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at + 8 > data.len() {
            return None;
        }
        let size = be32(&data[at..]);
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().ok()?;
        let (header, size) = match size {
            1 if at + 16 <= data.len() => (
                16,
                u64::from_be_bytes(data[at + 8..at + 16].try_into().ok()?) as usize,
            ),
            0 => (8, data.len() - at),
            n => (8, n),
        };
        if size < header || at + size > data.len() {
            return None;
        }
        let body = &data[at + header..at + size];
        at += size;
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, body)| body)
}

pub(crate) fn mp4(bytes: &[u8], findings: &mut MetadataFindings) {
    let Some(moov) = child(bytes, b"moov") else {
        if bytes.len() > 16 {
            findings
                .problems
                .push("no complete moov box in the bytes read; MP4 tags not read".into());
        }
        return;
    };
    let Some(meta) = child(moov, b"udta").and_then(|udta| child(udta, b"meta")) else {
        return;
    };
    // `meta` is a full box: 4 bytes of version and flags come before its children.
    let Some(ilst) = meta.get(4..).and_then(|m| child(m, b"ilst")) else {
        return;
    };
    for (kind, item) in boxes(ilst) {
        let Some(data) = child(item, b"data") else {
            continue;
        };
        // data box: 4 bytes type, 4 bytes locale, then the value.
        let Some(value) = data.get(8..) else { continue };
        let value = String::from_utf8_lossy(value).into_owned();
        let name = String::from_utf8_lossy(&kind[1..]).into_owned();
        let location = format!("mp4 {}{name}", if kind[0] == 0xA9 { "©" } else { "" });
        match &kind {
            [0xA9, b't', b'o', b'o'] | [0xA9, b's', b'w', b'r'] | [0xA9, b'e', b'n', b'c'] => {
                push_software(findings, location, &value)
            }
            [0xA9, b'c', b'm', b't'] | [b'd', b'e', b's', b'c'] => {
                push_comment(findings, location, &value)
            }
            _ => {}
        }
    }
}
