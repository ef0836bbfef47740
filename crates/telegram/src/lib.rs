//! # aqiqat-telegram
//!
//! The path with the least friction for someone who has just received a voice message asking
//! for money: forward it to a Telegram bot and read the answer a few seconds later, in Kazakh,
//! Russian or English, with the signed evidence record behind it (issue 20).
//!
//! **Owns:** the Bot API client (`api`), the bot's state (update offset, outbox, users'
//! languages, which records are whose: `store`), turning a message into answers (`bot`),
//! worded as the web page words verdicts, and the two ways updates arrive: long polling
//! (`Bot::run`) and a webhook (`webhook`).
//! **Must not touch:** analysis (it calls `aqiqat-scan`), signing and the log's format
//! (`aqiqat-evidence`), report layout (`aqiqat-report`).

pub mod api;
pub mod bot;
pub mod store;
pub mod webhook;

pub use api::{ApiError, BotApi, TELEGRAM_API};
pub use bot::{Bot, Settings};
pub use store::BotStore;
pub use webhook::Webhook;
