//! aqiqat as a user meets it: the real binary, real files, real servers on loopback, a real
//! browser. One test binary (each links every dependency); one module per part of the product.

mod bot_api;
mod common;

mod cli;
mod evidence;
mod long_input;
mod provenance;
mod queue;
mod scan;
mod serve;
mod stream;
mod telegram;
mod voiceprint;
mod web_page;
