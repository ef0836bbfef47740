//! From a link to every media item it carries. The link is fetched first, under the policy:
//! media comes back as it is; a page is read for the media it declares (preview tags,
//! `<video>`/`<audio>`), each fetched under the same policy; a page that declares none (or only
//! players, or that turns a plain client away) goes to yt-dlp, held to the same policy by a
//! proxy.

use crate::fetch::{FetchError, FetchLimits, Fetched, fetch};
use crate::page::{is_html, media_in_page};
use crate::ytdlp::YtDlp;
use sha2::{Digest, Sha256};
use std::time::Instant;

/// The most of a page that is parsed for media.
pub const MAX_PAGE_PARSED: usize = 4 << 20;

/// How far resolving a link may go.
#[derive(Debug, Clone)]
pub struct ResolveLimits {
    /// Each fetch's limits; `max_bytes` caps each item and all items together, `timeout` is
    /// the whole resolution's.
    pub fetch: FetchLimits,
    /// The most items taken from one post.
    pub max_items: usize,
    /// The longest item yt-dlp downloads (when the site states durations).
    pub max_duration_s: f64,
}

impl Default for ResolveLimits {
    fn default() -> Self {
        Self {
            fetch: FetchLimits::default(),
            max_items: 8,
            max_duration_s: 3.0 * 3600.0,
        }
    }
}

/// How the media was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedBy {
    /// The link was the media.
    Direct,
    /// The page declared it (preview tags or media elements).
    Page,
    /// yt-dlp, at this version.
    YtDlp(String),
}

impl ResolvedBy {
    /// How evidence names it: `direct`, `page` or `yt-dlp VERSION`.
    pub fn label(&self) -> String {
        match self {
            ResolvedBy::Direct => "direct".into(),
            ResolvedBy::Page => "page".into(),
            ResolvedBy::YtDlp(v) => format!("yt-dlp {v}"),
        }
    }
}

/// One media item of a link.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where its bytes came from: the media URL (the link itself when direct).
    pub media_url: String,
    /// URLs followed from `media_url` to the bytes.
    pub redirects: Vec<String>,
    pub content_type: Option<String>,
    /// Where the page declared it (`og:video`, `<video>`…); `None` for a direct link.
    pub found_in: Option<String>,
    /// The item's title, when yt-dlp read one.
    pub title: Option<String>,
    pub bytes: Vec<u8>,
}

/// Everything a link gave.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The link as given.
    pub url: String,
    /// URLs followed from it before the page or media answered.
    pub redirects: Vec<String>,
    pub resolved_by: ResolvedBy,
    /// SHA-256 of the page as it was served, when a page was read here.
    pub page_sha256: Option<String>,
    pub items: Vec<Item>,
    /// Media the page declared that was not taken, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: no media found in the page ({why})")]
    NoMedia { url: String, why: String },
    #[error("{url}: yt-dlp could not take the media: {why}")]
    YtDlp { url: String, why: String },
    #[error(
        "{url}: the page declares no media, and yt-dlp, which reads social sites' posts, is not installed (see the README)"
    )]
    NoYtDlp { url: String },
}

impl ResolveError {
    /// The link's fault (exit 2, HTTP 4xx) rather than aqiqat's.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ResolveError::Fetch(e) => e.is_bad_input(),
            ResolveError::NoYtDlp { .. } => false,
            _ => true,
        }
    }
}

/// The statuses a plain client gets from sites that want a browser or a login, which yt-dlp
/// knows how to get past.
fn turned_away(e: &FetchError) -> bool {
    matches!(e, FetchError::Status { status, .. } if [401, 403, 429].contains(status))
}

/// Resolves `url` to its media within `limits`; `ytdlp` is used when the page itself does not
/// declare its media.
pub fn resolve(
    url: &str,
    limits: &ResolveLimits,
    ytdlp: Option<&YtDlp>,
) -> Result<Resolved, ResolveError> {
    let deadline = Instant::now() + limits.fetch.timeout;
    let url = url.trim().to_owned();
    let first = match fetch(&url, &limits.fetch) {
        Ok(f) => f,
        Err(e) if turned_away(&e) && ytdlp.is_some() => {
            return by_ytdlp(
                &url,
                Vec::new(),
                None,
                limits,
                ytdlp,
                deadline,
                e.to_string(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    if !is_html(first.content_type.as_deref(), &first.bytes) {
        let Fetched {
            url,
            redirects,
            content_type,
            bytes,
        } = first;
        return Ok(Resolved {
            url: url.clone(),
            redirects: Vec::new(),
            resolved_by: ResolvedBy::Direct,
            page_sha256: None,
            items: vec![Item {
                media_url: url,
                redirects,
                content_type,
                found_in: None,
                title: None,
                bytes,
            }],
            skipped: Vec::new(),
        });
    }
    let page_sha256 = hex::encode(Sha256::digest(&first.bytes));
    // A page is parsed into a tree many times its size: only its head part is read (media
    // tags sit in the head, players near the top).
    let html = String::from_utf8_lossy(&first.bytes[..first.bytes.len().min(MAX_PAGE_PARSED)]);
    let declared = media_in_page(&html, first.final_url());
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut budget = limits.fetch.max_bytes;
    for found in declared {
        if items.len() == limits.max_items {
            skipped.push(format!("{}: beyond {} items", found.url, limits.max_items));
            continue;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            skipped.push(format!("{}: out of time", found.url));
            continue;
        };
        let item_limits = FetchLimits {
            max_bytes: budget,
            timeout: left,
            ..limits.fetch.clone()
        };
        match fetch(&found.url, &item_limits) {
            Ok(f) if is_html(f.content_type.as_deref(), &f.bytes) => {
                skipped.push(format!(
                    "{} ({}): a player page, not media",
                    found.url, found.found_in
                ));
            }
            Ok(f) => {
                budget -= f.bytes.len() as u64;
                items.push(Item {
                    media_url: found.url,
                    redirects: f.redirects,
                    content_type: f.content_type,
                    found_in: Some(found.found_in.to_owned()),
                    title: None,
                    bytes: f.bytes,
                });
            }
            // A refusal or a cap is the post's answer, not a reason to try elsewhere.
            Err(
                e @ (FetchError::Refused(_) | FetchError::TooLarge(..) | FetchError::Rejected(..)),
            ) => {
                return Err(e.into());
            }
            Err(e) => skipped.push(format!("{} ({}): {e}", found.url, found.found_in)),
        }
    }
    if !items.is_empty() {
        return Ok(Resolved {
            url,
            redirects: first.redirects,
            resolved_by: ResolvedBy::Page,
            page_sha256: Some(page_sha256),
            items,
            skipped,
        });
    }
    let why = if skipped.is_empty() {
        "it declares no video or audio".to_owned()
    } else {
        skipped.join("; ")
    };
    by_ytdlp(
        &url,
        first.redirects,
        Some(page_sha256),
        limits,
        ytdlp,
        deadline,
        why,
    )
}

/// The last resort: yt-dlp on the link, through the policy proxy.
fn by_ytdlp(
    url: &str,
    redirects: Vec<String>,
    page_sha256: Option<String>,
    limits: &ResolveLimits,
    ytdlp: Option<&YtDlp>,
    deadline: Instant,
    why_not_here: String,
) -> Result<Resolved, ResolveError> {
    let Some(ytdlp) = ytdlp else {
        return Err(if page_sha256.is_some() {
            ResolveError::NoMedia {
                url: url.to_owned(),
                why: format!("{why_not_here}; yt-dlp is not installed to look further"),
            }
        } else {
            ResolveError::NoYtDlp {
                url: url.to_owned(),
            }
        });
    };
    let downloaded = ytdlp
        .download(
            url,
            &limits.fetch,
            limits.max_items,
            limits.max_duration_s,
            deadline,
        )
        .map_err(|why| {
            if page_sha256.is_some() && why == "it found no media" {
                ResolveError::NoMedia {
                    url: url.to_owned(),
                    why: why_not_here.clone(),
                }
            } else {
                ResolveError::YtDlp {
                    url: url.to_owned(),
                    why: format!("{why} (read directly: {why_not_here})"),
                }
            }
        })?;
    let total: u64 = downloaded.iter().map(|d| d.bytes.len() as u64).sum();
    if total > limits.fetch.max_bytes {
        return Err(FetchError::TooLarge(url.to_owned(), limits.fetch.max_bytes).into());
    }
    Ok(Resolved {
        url: url.to_owned(),
        redirects,
        resolved_by: ResolvedBy::YtDlp(ytdlp.version.clone()),
        page_sha256,
        items: downloaded
            .into_iter()
            .map(|d| Item {
                media_url: d.media_url,
                redirects: Vec::new(),
                content_type: None,
                found_in: Some("yt-dlp".into()),
                title: d.title,
                bytes: d.bytes,
            })
            .collect(),
        skipped: Vec::new(),
    })
}
