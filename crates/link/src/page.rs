//! Finding the media a web page declares: the OpenGraph and Twitter card tags that social
//! sites and news pages put in their heads for previews, and HTML5 `<video>`/`<audio>`
//! elements. Many pages of the sites where deepfakes spread need more than this (scripts,
//! logins); those go to yt-dlp ([`crate::ytdlp`]).

use scraper::{Html, Selector};

/// A media link found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Absolute `http(s)` URL.
    pub url: String,
    /// Where it was found: `og:video`, `og:audio`, `twitter:player:stream`, `<video>`,
    /// `<audio>`.
    pub found_in: &'static str,
}

/// Whether a response is a web page rather than media: by its declared type, or, when the
/// server declares none or a generic one, by how it starts.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let declared = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if declared == "text/html" || declared == "application/xhtml+xml" {
        return true;
    }
    if !(declared.is_empty()
        || declared == "application/octet-stream"
        || declared.starts_with("text/"))
    {
        return false;
    }
    let head: Vec<u8> = body
        .iter()
        .take(1024)
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf)
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    [
        &b"<!doctype html"[..],
        b"<html",
        b"<head",
        b"<meta",
        b"<!--",
    ]
    .iter()
    .any(|p| head.starts_with(p))
}

/// The tags a page's preview names its media with, best first.
const META_TAGS: [(&str, &str); 7] = [
    ("og:video:secure_url", "og:video"),
    ("og:video:url", "og:video"),
    ("og:video", "og:video"),
    ("og:audio:secure_url", "og:audio"),
    ("og:audio:url", "og:audio"),
    ("og:audio", "og:audio"),
    ("twitter:player:stream", "twitter:player:stream"),
];

/// The media a page declares, resolved against `base` (where the page came from), without
/// repeats, in the order: preview tags, then `<video>` and `<audio>` elements in page order.
pub fn media_in_page(html: &str, base: &str) -> Vec<MediaRef> {
    let doc = Html::parse_document(html);
    // A page may name its own base for relative links.
    let base = Selector::parse("base[href]")
        .ok()
        .and_then(|s| doc.select(&s).next())
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| crate::fetch::join(base, href))
        .unwrap_or_else(|| base.to_owned());
    let mut found: Vec<MediaRef> = Vec::new();
    let mut push = |raw: &str, found_in: &'static str| {
        let Some(url) = crate::fetch::join(&base, raw) else {
            return;
        };
        let web = url.starts_with("http://") || url.starts_with("https://");
        if web && !found.iter().any(|f| f.url == url) {
            found.push(MediaRef { url, found_in });
        }
    };
    let meta = Selector::parse("meta[content]").expect("a valid selector");
    for (tag, found_in) in META_TAGS {
        for m in doc.select(&meta) {
            let name = m
                .value()
                .attr("property")
                .or_else(|| m.value().attr("name"))
                .unwrap_or_default();
            if name.eq_ignore_ascii_case(tag) {
                push(m.value().attr("content").unwrap_or_default(), found_in);
            }
        }
    }
    let elements = Selector::parse("video[src], audio[src], video source[src], audio source[src]")
        .expect("a valid selector");
    for e in doc.select(&elements) {
        let in_video = e.value().name() == "video"
            || e.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|el| el.name() == "video")
            });
        push(
            e.value().attr("src").unwrap_or_default(),
            if in_video { "<video>" } else { "<audio>" },
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_tags_and_elements_are_found_once_each_in_order() {
        let html = r#"<!DOCTYPE html><html><head>
            <meta property="og:title" content="A minister endorses a fund">
            <meta property="og:video" content="/media/clip.mp4?sig=a&amp;t=1">
            <meta property="og:video:secure_url" content="https://cdn.example.org/clip.mp4">
            <meta name="twitter:player:stream" content="https://cdn.example.org/clip.mp4">
            <meta property="og:audio" content="voice.ogg">
            </head><body>
            <video controls><source src="/media/clip.webm" type="video/webm"></video>
            <audio src="//cdn.example.org/note.m4a"></audio>
            <video src="javascript:alert(1)"></video>
            </body></html>"#;
        let found = media_in_page(html, "https://news.example.org/posts/42");
        let got: Vec<(&str, &str)> = found.iter().map(|f| (f.url.as_str(), f.found_in)).collect();
        assert_eq!(
            got,
            vec![
                ("https://cdn.example.org/clip.mp4", "og:video"),
                (
                    "https://news.example.org/media/clip.mp4?sig=a&t=1",
                    "og:video"
                ),
                ("https://news.example.org/posts/voice.ogg", "og:audio"),
                ("https://news.example.org/media/clip.webm", "<video>"),
                ("https://cdn.example.org/note.m4a", "<audio>"),
            ]
        );
    }

    #[test]
    fn a_page_without_media_declares_none() {
        let html = "<html><head><title>x</title><meta property=\"og:image\" \
                    content=\"/a.jpg\"></head><body><p>text</p></body></html>";
        assert!(media_in_page(html, "http://example.org/").is_empty());
    }

    #[test]
    fn pages_are_told_from_media() {
        assert!(is_html(Some("text/html; charset=utf-8"), b""));
        assert!(is_html(None, b"\n  <!DOCTYPE html><html>"));
        assert!(is_html(Some("application/octet-stream"), b"<html><body>"));
        assert!(!is_html(Some("video/mp4"), b"<html>"));
        assert!(!is_html(None, b"RIFF\x24\x00\x00\x00WAVEfmt "));
        assert!(!is_html(Some("audio/mpeg"), b"ID3"));
    }
}
