//! Metadata markers: what an image file says about its own origin in its metadata, read from
//! PNG text chunks, JPEG APP1/COM segments and WebP RIFF chunks (EXIF and XMP inside them).
//!
//! Found and reported: IPTC `DigitalSourceType` in XMP (the standard "this is AI-generated"
//! label), EXIF and XMP software, camera make and model, and the generation records that
//! common tools write: Stable Diffusion web UIs' `parameters`, ComfyUI's `prompt` and
//! `workflow`, InvokeAI's metadata, NovelAI's software tag.
//!
//! What they prove: that someone, or some tool, wrote these words into the file. Metadata is
//! removed by almost every re-upload, and anyone can write any of it, so a marker that
//! declares AI generation is a strong hint when present, a camera make is no proof of a real
//! photograph, and the absence of markers proves nothing. Each [`Marker`] says so in its own
//! words; [`WHAT_METADATA_PROVES`] says it once for reports.

use serde::Serialize;
use std::io::Read;

/// The caveat that goes with every metadata finding.
pub const WHAT_METADATA_PROVES: &str = "Metadata is text any tool or person can write, change \
    or remove, and most platforms strip it on upload. A marker that declares AI generation is \
    a strong hint that the file came from such a tool; a camera name does not prove a real \
    photograph; no markers at all proves nothing.";

/// The longest value kept per marker (generation workflows can be megabytes of JSON).
const MAX_VALUE_CHARS: usize = 2000;
/// The most text one compressed chunk may inflate to: a hostile file cannot make us
/// allocate more than this per chunk.
const MAX_INFLATED_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// IPTC `DigitalSourceType`: how the content was made, in the standard's words.
    DigitalSourceType,
    /// A generation recipe (prompt, sampler, model…) written by an image generator.
    GeneratorParameters,
    /// A node graph written by ComfyUI.
    GeneratorWorkflow,
    Software,
    Camera,
    Comment,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    /// Where in the file: e.g. `png tEXt "parameters"`, `jpeg APP1 XMP`, `exif Software`.
    pub location: String,
    pub kind: MarkerKind,
    /// The value, cut to 2000 characters.
    pub value: String,
    /// What the marker says, in plain words.
    pub meaning: String,
    /// Whether the marker itself declares the content made or changed by AI.
    pub declares_ai: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataFindings {
    /// `png`, `jpeg`, `webp`, `id3` (MP3 and others with an ID3v2 tag), `mp4`, or a
    /// container this reader does not look into: `heif` (HEIC/AVIF) or `other`.
    pub container: &'static str,
    pub markers: Vec<Marker>,
    /// Any marker declares AI generation or AI editing.
    pub declares_ai: bool,
    /// Parts of the metadata that could not be read (damaged or hostile), in plain words.
    pub problems: Vec<String>,
}

/// Generators whose name in a software tag says the image came from them.
const GENERATORS: &[&str] = &[
    "stable diffusion",
    "novelai",
    "midjourney",
    "dall-e",
    "dall·e",
    "firefly",
    "comfyui",
    "automatic1111",
    "invokeai",
    "imagen",
    "flux",
    "leonardo.ai",
    "elevenlabs",
    "suno",
    "play.ht",
    "resemble.ai",
    "murf.ai",
    "speechify",
    "coqui",
    "xtts",
    "tortoise-tts",
];

pub(crate) fn names_generator(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    GENERATORS.iter().copied().find(|g| lower.contains(g))
}

pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What an IPTC digital source type (its code, the last part of the URI) means, and whether
/// it declares AI.
pub(crate) fn digital_source_meaning(code: &str) -> (String, bool) {
    let (words, ai) = match code {
        "trainedAlgorithmicMedia" => ("made by a trained AI model (generative AI)", true),
        "compositeWithTrainedAlgorithmicMedia" => {
            ("a composite that includes AI-generated elements", true)
        }
        "algorithmicallyEnhanced" => ("a capture enhanced or edited by algorithms", false),
        "algorithmicMedia" => (
            "made by an algorithm without a trained model (e.g. procedural graphics)",
            false,
        ),
        "dataDrivenMedia" => ("generated from data (e.g. a chart or a map)", false),
        "digitalCapture" | "digitalCreation" => {
            ("captured or created digitally by a person", false)
        }
        "negativeFilm" | "positiveFilm" | "print" => ("a scan of a physical original", false),
        "minorHumanEdits" => ("a capture with minor human edits", false),
        "compositeCapture" => ("a composite of captured images", false),
        "compositeSynthetic" => ("a composite including synthetic elements", false),
        "screenCapture" => ("a screen capture", false),
        "virtualRecording" => ("a recording of a virtual environment", false),
        "humanEdits" => ("a capture edited by a person", false),
        _ => {
            return (
                format!("a digital source type this reader does not know: {code}"),
                false,
            );
        }
    };
    (format!("the file declares it is {words}"), ai)
}

pub(crate) fn text_marker(location: String, keyword: &str, text: &str) -> Option<Marker> {
    let keyword_lower = keyword.to_ascii_lowercase();
    let (kind, meaning, declares_ai) = match keyword_lower.as_str() {
        "parameters" if text.contains("Steps:") || text.contains("Sampler:") => (
            MarkerKind::GeneratorParameters,
            "a Stable Diffusion web UI's generation record (prompt, sampler, steps, model)"
                .to_owned(),
            true,
        ),
        "prompt" | "workflow" if text.trim_start().starts_with('{') => (
            MarkerKind::GeneratorWorkflow,
            "a ComfyUI generation graph".to_owned(),
            true,
        ),
        "invokeai_metadata" | "sd-metadata" | "dream" => (
            MarkerKind::GeneratorParameters,
            "InvokeAI's generation record".to_owned(),
            true,
        ),
        "software" => match names_generator(text) {
            Some(g) => (
                MarkerKind::Software,
                format!("the software tag names an image generator ({g})"),
                true,
            ),
            None => (
                MarkerKind::Software,
                "the software that wrote the file".to_owned(),
                false,
            ),
        },
        "comment" | "description" | "title" | "author" | "source" => {
            (MarkerKind::Comment, format!("free text ({keyword})"), false)
        }
        _ => return None,
    };
    Some(Marker {
        location,
        kind,
        value: clip(text),
        meaning,
        declares_ai,
    })
}

/// Reads the metadata markers of an image file. Damaged metadata is reported in `problems`,
/// never fatal: whatever was read before the damage is kept.
pub fn read_markers(bytes: &[u8]) -> MetadataFindings {
    let mut findings = MetadataFindings {
        container: "other",
        markers: Vec::new(),
        declares_ai: false,
        problems: Vec::new(),
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        findings.container = "png";
        png(bytes, &mut findings);
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        findings.container = "jpeg";
        jpeg(bytes, &mut findings);
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        findings.container = "webp";
        webp(bytes, &mut findings);
    } else if bytes.starts_with(b"ID3") {
        findings.container = "id3";
        crate::audio_tags::id3(bytes, &mut findings);
    } else if bytes.get(4..8) == Some(b"ftyp") {
        let brand = bytes.get(8..12).unwrap_or_default();
        if [&b"avif"[..], b"avis", b"heic", b"heix", b"mif1"].contains(&brand) {
            // HEIF keeps EXIF and XMP as items of its `meta` box; this reader does not
            // look inside yet, and says so by the container name alone.
            findings.container = "heif";
        } else {
            findings.container = "mp4";
            crate::audio_tags::mp4(bytes, &mut findings);
        }
    }
    findings.declares_ai = findings.markers.iter().any(|m| m.declares_ai);
    findings
}

pub(crate) fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

fn inflate(data: &[u8]) -> Result<String, String> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_INFLATED_BYTES)
        .read_to_end(&mut out)
        .map_err(|e| format!("compressed text does not inflate: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn png(bytes: &[u8], findings: &mut MetadataFindings) {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = be32(&bytes[at..]);
        let kind = &bytes[at + 4..at + 8];
        let Some(data) = at
            .checked_add(8 + len)
            .filter(|&end| end + 4 <= bytes.len())
            .map(|end| &bytes[at + 8..end])
        else {
            findings.problems.push(format!(
                "the PNG chunk at byte {at} runs past the end of the file"
            ));
            return;
        };
        let name = String::from_utf8_lossy(kind).into_owned();
        match kind {
            b"tEXt" | b"zTXt" | b"iTXt" => match png_text(kind, data) {
                Ok((keyword, text)) => {
                    let location = format!("png {name} {keyword:?}");
                    if keyword == "XML:com.adobe.xmp" {
                        xmp(&text, &location, findings);
                    } else if let Some(m) = text_marker(location, &keyword, &text) {
                        findings.markers.push(m);
                    }
                }
                Err(e) => findings
                    .problems
                    .push(format!("PNG {name} chunk at byte {at}: {e}")),
            },
            b"eXIf" => exif(data, "png eXIf", findings),
            b"IEND" => return,
            _ => {}
        }
        at += 12 + len;
    }
}

/// A PNG text chunk's keyword and text.
fn png_text(kind: &[u8], data: &[u8]) -> Result<(String, String), String> {
    let nul = data
        .iter()
        .position(|&b| b == 0)
        .ok_or("no keyword terminator")?;
    let keyword = latin1(&data[..nul]);
    let rest = &data[nul + 1..];
    let text = match kind {
        b"tEXt" => latin1(rest),
        b"zTXt" => inflate(rest.get(1..).ok_or("no compression method")?)?,
        _ => {
            // iTXt: compression flag, method, language\0, translated keyword\0, text.
            let (&flag, rest) = rest.split_first().ok_or("truncated")?;
            let rest = rest.get(1..).ok_or("truncated")?;
            let lang_end = rest.iter().position(|&b| b == 0).ok_or("truncated")?;
            let rest = &rest[lang_end + 1..];
            let tk_end = rest.iter().position(|&b| b == 0).ok_or("truncated")?;
            let text = &rest[tk_end + 1..];
            if flag == 1 {
                inflate(text)?
            } else {
                String::from_utf8_lossy(text).into_owned()
            }
        }
    };
    Ok((keyword, text))
}

fn jpeg(bytes: &[u8], findings: &mut MetadataFindings) {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            findings.problems.push(format!(
                "JPEG: no marker at byte {at}; metadata after it was not read"
            ));
            return;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        // Markers without a length; the image data starts at SOS, after all metadata.
        if (0xD0..=0xD9).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        if marker == 0xDA {
            return;
        }
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(data) = bytes.get(at + 4..at + 2 + len).filter(|_| len >= 2) else {
            findings.problems.push(format!(
                "the JPEG segment at byte {at} runs past the end of the file"
            ));
            return;
        };
        match marker {
            0xE1 if data.starts_with(b"Exif\0\0") => exif(&data[6..], "jpeg APP1 Exif", findings),
            0xE1 if data.starts_with(b"http://ns.adobe.com/xap/1.0/\0") => {
                let xml = String::from_utf8_lossy(&data[29..]);
                xmp(&xml, "jpeg APP1 XMP", findings);
            }
            0xFE => {
                let text = String::from_utf8_lossy(data);
                if let Some(m) = text_marker("jpeg COM".into(), "comment", &text) {
                    findings.markers.push(m);
                }
            }
            _ => {}
        }
        at += 2 + len;
    }
}

fn webp(bytes: &[u8], findings: &mut MetadataFindings) {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let kind = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let Some(data) = bytes.get(at + 8..at.saturating_add(8).saturating_add(len)) else {
            findings.problems.push(format!(
                "the WebP chunk at byte {at} runs past the end of the file"
            ));
            return;
        };
        match kind {
            b"EXIF" => {
                // Some writers keep JPEG's "Exif\0\0" prefix here.
                let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
                exif(tiff, "webp EXIF", findings);
            }
            b"XMP " => xmp(&String::from_utf8_lossy(data), "webp XMP", findings),
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
}

fn exif(tiff: &[u8], location: &str, findings: &mut MetadataFindings) {
    let parsed = match exif::Reader::new().read_raw(tiff.to_vec()) {
        Ok(p) => p,
        Err(e) => {
            findings
                .problems
                .push(format!("{location}: the EXIF block does not parse: {e}"));
            return;
        }
    };
    let text_of = |tag: exif::Tag| {
        parsed
            .get_field(tag, exif::In::PRIMARY)
            .map(|f| match &f.value {
                exif::Value::Ascii(parts) => parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).trim_end_matches('\0').to_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                exif::Value::Undefined(raw, _) => {
                    // UserComment: an 8-byte character-code header, then the text.
                    let body = raw.get(8..).unwrap_or_default();
                    if raw.starts_with(b"UNICODE\0") {
                        let units: Vec<u16> = body
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    } else {
                        String::from_utf8_lossy(body).into_owned()
                    }
                }
                other => other.display_as(tag).to_string(),
            })
            .map(|t| t.trim_matches(char::from(0)).trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    if let Some(software) = text_of(exif::Tag::Software)
        && let Some(m) = text_marker(format!("{location} Software"), "software", &software)
    {
        findings.markers.push(m);
    }
    let camera = [exif::Tag::Make, exif::Tag::Model]
        .into_iter()
        .filter_map(text_of)
        .collect::<Vec<_>>();
    if !camera.is_empty() {
        findings.markers.push(Marker {
            location: format!("{location} Make/Model"),
            kind: MarkerKind::Camera,
            value: clip(&camera.join(" ")),
            meaning: "the camera the file says took it (anyone can write this)".into(),
            declares_ai: false,
        });
    }
    for (tag, name) in [
        (exif::Tag::UserComment, "UserComment"),
        (exif::Tag::ImageDescription, "ImageDescription"),
    ] {
        if let Some(text) = text_of(tag) {
            // Stable Diffusion web UIs put their generation record here in JPEG and WebP.
            let keyword = if text.contains("Steps:") && text.contains("Sampler:") {
                "parameters"
            } else {
                "comment"
            };
            if let Some(m) = text_marker(format!("{location} {name}"), keyword, &text) {
                findings.markers.push(m);
            }
        }
    }
}

const IPTC_EXT: &str = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/";
const XMP_BASIC: &str = "http://ns.adobe.com/xap/1.0/";

fn xmp(xml: &str, location: &str, findings: &mut MetadataFindings) {
    // XMP packets may carry padding and a trailing processing instruction.
    let xml = xml.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = match roxmltree::Document::parse_with_options(xml, options) {
        Ok(d) => d,
        Err(e) => {
            findings.problems.push(format!(
                "{location}: the XMP packet is not well-formed XML: {e}"
            ));
            return;
        }
    };
    let mut push_dst = |value: &str| {
        let value = value.trim();
        let code = value.rsplit('/').next().unwrap_or(value);
        let (meaning, declares_ai) = digital_source_meaning(code);
        findings.markers.push(Marker {
            location: format!("{location} Iptc4xmpExt:DigitalSourceType"),
            kind: MarkerKind::DigitalSourceType,
            value: clip(value),
            meaning,
            declares_ai,
        });
    };
    let mut tools = Vec::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attr in node.attributes() {
            match (attr.namespace(), attr.name()) {
                (Some(IPTC_EXT), "DigitalSourceType") => push_dst(attr.value()),
                (Some(XMP_BASIC), "CreatorTool") => tools.push(attr.value().to_owned()),
                _ => {}
            }
        }
        let name = node.tag_name();
        let text: String = node
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        match (name.namespace(), name.name()) {
            (Some(IPTC_EXT), "DigitalSourceType") if !text.trim().is_empty() => push_dst(&text),
            (Some(XMP_BASIC), "CreatorTool") if !text.trim().is_empty() => {
                tools.push(text.trim().to_owned());
            }
            _ => {}
        }
    }
    for tool in tools {
        if let Some(m) = text_marker(format!("{location} xmp:CreatorTool"), "software", &tool) {
            findings.markers.push(m);
        }
    }
}
