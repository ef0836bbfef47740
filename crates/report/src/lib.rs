//! # aqiqat-report
//!
//! Evidence for people: one record, or a whole case, rendered as HTML that prints well and as
//! PDF, in Kazakh, Russian or English. A report says the verdict in plain words, draws the
//! segment timeline, lists the hashes, the signature and the log position, states what the
//! scores mean and what they do not, and shows the result of verifying the record at the
//! moment the report was made.
//!
//! **Owns:** the report model ([`RecordView`], [`CaseView`]), the texts (Fluent resources in
//! `i18n/`, never inlined in code), the HTML and PDF layouts.
//! **Must not touch:** scores (it shows what the record holds, it computes nothing), storage,
//! signing.

mod chart;
mod html;
mod i18n;
mod pdf;
mod view;

pub use html::{case_html, record_html};
pub use i18n::Lang;
pub use pdf::{PdfError, case_pdf, record_pdf};
pub use view::{CaseView, RecordView, Segment};
