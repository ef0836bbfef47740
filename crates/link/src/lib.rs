//! # aqiqat-link
//!
//! Scanning a social-media post by its link (issue 19) means fetching what a stranger's URL
//! points at, from inside a bank's or a newsroom's network. This crate decides where a link may
//! lead before anything connects: only `http` and `https`, and never to an address inside the
//! network (loopback, private ranges, link-local and the cloud metadata address, carrier-grade
//! NAT, multicast…), checked on the addresses DNS actually returns and again on every redirect,
//! unless the operator allows private addresses (tests, closed deployments).
//!
//! **Owns:** the address policy and fetching a direct link within limits (size, time,
//! redirects). Resolving a post to its media (yt-dlp) comes next (issue 19).
//! **Must not touch:** decoding, analysis, storage.

pub mod fetch;
pub mod policy;

pub use fetch::{FetchError, FetchLimits, Fetched, fetch};
pub use policy::{Refusal, check_address, check_url, resolve};
