//! # aqiqat-link
//!
//! Scanning a social-media post by its link (issue 19) means fetching what a stranger's URL
//! points at, from inside a bank's or a newsroom's network. This crate decides where a link may
//! lead before anything connects: only `http` and `https`, and never to an address inside the
//! network (loopback, private ranges, link-local and the cloud metadata address, carrier-grade
//! NAT, multicast…), checked on the addresses DNS actually returns and again on every redirect,
//! unless the operator allows private addresses (tests, closed deployments).
//!
//! **Owns:** the address policy, fetching within limits (size, time, redirects), finding the
//! media a page declares, running yt-dlp for the posts that need it (behind a loopback proxy
//! that applies the same policy to every request it makes).
//! **Must not touch:** decoding, analysis, storage.

pub mod fetch;
pub mod page;
pub mod policy;
pub mod proxy;
pub mod resolve;
pub mod ytdlp;

pub use fetch::{FetchError, FetchLimits, Fetched, PREFIX_BYTES, PrefixCheck, fetch};
pub use policy::{AddressPolicy, Refusal, check_address, check_url};
pub use resolve::{Item, ResolveError, ResolveLimits, Resolved, ResolvedBy, resolve};
pub use ytdlp::YtDlp;
