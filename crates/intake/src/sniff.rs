//! What a file really is, from its first bytes. File names and extensions are never consulted.

/// Containers intake can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Aiff,
    Flac,
    /// MPEG audio elementary stream (MP3, MP2), with or without ID3v2.
    Mpa,
    /// AAC in ADTS framing (`.aac`).
    Adts,
    Ogg,
    /// ISO base media: MP4, M4A, MOV, 3GP.
    Mp4,
    /// Matroska and WebM.
    Matroska,
    Caf,
    /// AMR-NB storage format (RFC 4867 §5), as phone call recorders write it.
    AmrNb,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Aiff => "aiff",
            Container::Flac => "flac",
            Container::Mpa => "mp3",
            Container::Adts => "adts",
            Container::Ogg => "ogg",
            Container::Mp4 => "mp4",
            Container::Matroska => "matroska",
            Container::Caf => "caf",
            Container::AmrNb => "amr",
        }
    }
}

/// The verdict of sniffing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Media(Container),
    /// Recognised, but a kind intake does not decode; the text names it for the user.
    Unsupported(&'static str),
    /// Recognised as something that is not audio or video at all.
    NotMedia(&'static str),
    Unknown,
}

/// Number of leading bytes [`sniff`] looks at; give it at least this many when the file has them.
pub const SNIFF_LEN: usize = 512;

pub fn sniff(head: &[u8]) -> Sniffed {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);

    if at(0, b"RIFF") || at(0, b"RIFX") {
        return if at(8, b"WAVE") {
            Sniffed::Media(Container::Wav)
        } else if at(8, b"WEBP") {
            Sniffed::NotMedia("a WebP image")
        } else if at(8, b"AVI ") {
            Sniffed::Unsupported("an AVI video (AVI containers are not supported)")
        } else {
            Sniffed::Unknown
        };
    }
    if at(0, b"RF64") || at(0, b"BW64") {
        return Sniffed::Unsupported("an RF64/BW64 wave file (not supported)");
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Sniffed::Media(Container::Aiff);
    }
    if at(0, b"fLaC") {
        return Sniffed::Media(Container::Flac);
    }
    if at(0, b"OggS") {
        return Sniffed::Media(Container::Ogg);
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Sniffed::Media(Container::Matroska);
    }
    if at(4, b"ftyp") || at(4, b"moov") || at(4, b"mdat") || at(4, b"wide") || at(4, b"free") {
        if at(8, b"avif") || at(8, b"avis") || at(8, b"heic") || at(8, b"heix") || at(8, b"mif1") {
            return Sniffed::NotMedia("a HEIF/AVIF image");
        }
        return Sniffed::Media(Container::Mp4);
    }
    if at(0, b"caff") {
        return Sniffed::Media(Container::Caf);
    }
    if at(0, b"#!AMR-WB\n") {
        return Sniffed::Unsupported("AMR-WB audio (only AMR-NB is supported)");
    }
    if at(0, b"#!AMR\n") {
        return Sniffed::Media(Container::AmrNb);
    }
    if at(0, b"ID3") {
        return Sniffed::Media(Container::Mpa);
    }
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 {
        // The 11-bit frame sync is shared by MPEG audio and ADTS; the layer bits tell them apart
        // (ADTS always writes layer 00, MPEG audio never does).
        let layer = (head[1] >> 1) & 0b11;
        if layer == 0 && head[1] & 0xF6 == 0xF0 {
            return Sniffed::Media(Container::Adts);
        }
        if layer != 0 {
            return Sniffed::Media(Container::Mpa);
        }
    }

    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Sniffed::NotMedia("a PNG image");
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Sniffed::NotMedia("a JPEG image");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Sniffed::NotMedia("a GIF image");
    }
    if at(0, b"\x7fELF") {
        return Sniffed::NotMedia("an ELF executable");
    }
    if at(0, b"MZ") {
        return Sniffed::NotMedia("a Windows executable");
    }
    if at(0, b"%PDF") {
        return Sniffed::NotMedia("a PDF document");
    }
    if at(0, b"PK\x03\x04") {
        return Sniffed::NotMedia("a ZIP archive");
    }
    if at(0, &[0x1F, 0x8B]) {
        return Sniffed::NotMedia("a gzip archive");
    }
    if looks_like_text(head) {
        return Sniffed::NotMedia("a text file");
    }
    Sniffed::Unknown
}

/// Channel count, sample rate and bits per sample from a WAV `fmt ` chunk, when the chunk lies
/// within `head`. Lets intake refuse absurd values before any parser multiplies with them.
pub fn wav_format(head: &[u8]) -> Option<(u16, u32, u16)> {
    let mut at = 12;
    while at + 8 <= head.len() {
        let id = &head[at..at + 4];
        let len = u32::from_le_bytes(head[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " {
            let fmt = head.get(body..body + 16)?;
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
            return Some((channels, rate, bits));
        }
        at = body.checked_add(len)?.checked_add(len & 1)?;
    }
    None
}

fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    // A UTF-8 sequence may be cut at the end of the sniffed window.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_magic() {
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WAVEfmt "),
            Sniffed::Media(Container::Wav)
        );
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Sniffed::Media(Container::Flac));
        assert_eq!(sniff(b"OggS\0\x02"), Sniffed::Media(Container::Ogg));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Sniffed::Media(Container::Mp4));
        assert_eq!(
            sniff(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]),
            Sniffed::Media(Container::Matroska)
        );
        assert_eq!(sniff(b"ID3\x04\0"), Sniffed::Media(Container::Mpa));
        assert_eq!(
            sniff(&[0xFF, 0xFB, 0x90, 0x64]),
            Sniffed::Media(Container::Mpa)
        );
        assert_eq!(
            sniff(&[0xFF, 0xF1, 0x50, 0x80]),
            Sniffed::Media(Container::Adts)
        );
        assert_eq!(sniff(b"#!AMR\n\x3c"), Sniffed::Media(Container::AmrNb));
    }

    #[test]
    fn impostors_are_named() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
            Sniffed::NotMedia("a PNG image")
        );
        assert_eq!(
            sniff(b"\x7fELF\x02\x01\x01"),
            Sniffed::NotMedia("an ELF executable")
        );
        assert_eq!(
            sniff("привет, hello\n".as_bytes()),
            Sniffed::NotMedia("a text file")
        );
        assert_eq!(sniff(&[0x00, 0x01, 0x02, 0x03]), Sniffed::Unknown);
        assert!(matches!(sniff(b"#!AMR-WB\n"), Sniffed::Unsupported(_)));
    }

    #[test]
    fn wav_format_is_read_from_the_head() {
        let mut head = b"RIFF\0\0\0\0WAVELIST\x04\0\0\0INFOfmt \x10\0\0\0\x01\0".to_vec();
        head.extend_from_slice(&2u16.to_le_bytes());
        head.extend_from_slice(&44_100u32.to_le_bytes());
        head.extend_from_slice(&[0; 6]);
        head.extend_from_slice(&16u16.to_le_bytes());
        assert_eq!(wav_format(&head), Some((2, 44_100, 16)));
        assert_eq!(wav_format(&head[..30]), None);
    }
}
