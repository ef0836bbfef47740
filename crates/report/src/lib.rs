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

/// The two renderings every surface offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Pdf,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "html" => Ok(Format::Html),
            "pdf" => Ok(Format::Pdf),
            other => Err(format!("{other:?}: choose html or pdf")),
        }
    }
}

/// One record's report as bytes, stamped with `generated_at`.
pub fn render_record(
    view: &RecordView,
    lang: Lang,
    format: Format,
    generated_at: &str,
) -> Result<Vec<u8>, PdfError> {
    match format {
        Format::Html => Ok(record_html(view, lang, generated_at).into_bytes()),
        Format::Pdf => record_pdf(view, lang, generated_at),
    }
}

/// A case's report as bytes.
pub fn render_case(
    view: &CaseView,
    lang: Lang,
    format: Format,
    generated_at: &str,
) -> Result<Vec<u8>, PdfError> {
    match format {
        Format::Html => Ok(case_html(view, lang, generated_at).into_bytes()),
        Format::Pdf => case_pdf(view, lang, generated_at),
    }
}
