//! `aqiqat report` and the reports inside case bundles.

use crate::Outcome;
use crate::evidence::{fail, open_log, pretty, write_atomic};
use aqiqat_evidence::Log;
use aqiqat_report::{CaseView, Lang, RecordView};
use std::path::Path;

pub use aqiqat_report::Format;

fn view_from_log(log: &mut Log, index: u64) -> Result<RecordView, Outcome> {
    let envelope = log.envelope(index).map_err(fail)?;
    RecordView::from_envelope_text(&pretty(&envelope)).map_err(|e| {
        eprintln!("internal error: record {index}: {e}");
        Outcome::Internal
    })
}

fn case_view(log: &mut Log, id: &str) -> Result<CaseView, Outcome> {
    let case = log.case(id).map_err(fail)?;
    let head = log.tree_head().map_err(fail)?;
    let mut records = Vec::new();
    for e in &case.records {
        let envelope = log.envelope_at(e.index, &head).map_err(fail)?;
        records.push(
            RecordView::from_envelope_text(&pretty(&envelope)).map_err(|err| {
                eprintln!("internal error: record {}: {err}", e.index);
                Outcome::Internal
            })?,
        );
    }
    Ok(CaseView {
        id: case.id,
        title: case.title,
        note: case.note,
        created_at: case.created_at,
        records,
    })
}

fn render_record(view: &RecordView, lang: Lang, format: Format) -> Result<Vec<u8>, Outcome> {
    aqiqat_report::render_record(view, lang, format, &aqiqat_evidence::utc_now()).map_err(|e| {
        eprintln!("error: {e}");
        if e.is_bad_input() {
            Outcome::BadInput
        } else {
            Outcome::Internal
        }
    })
}

fn render_case(view: &CaseView, lang: Lang, format: Format) -> Result<Vec<u8>, Outcome> {
    aqiqat_report::render_case(view, lang, format, &aqiqat_evidence::utc_now()).map_err(|e| {
        eprintln!("error: {e}");
        if e.is_bad_input() {
            Outcome::BadInput
        } else {
            Outcome::Internal
        }
    })
}

pub struct ReportArgs<'a> {
    pub record: Option<&'a str>,
    pub case: Option<&'a str>,
    pub lang: Lang,
    pub format: Format,
    pub out: Option<&'a Path>,
    pub data_dir: Option<&'a Path>,
}

pub fn report(args: ReportArgs) -> Outcome {
    let bytes = (|| -> Result<Vec<u8>, Outcome> {
        if let Some(case) = args.case {
            let dir = crate::evidence::data_dir(args.data_dir)?;
            let mut log = open_log(&dir)?;
            let view = case_view(&mut log, case)?;
            return render_case(&view, args.lang, args.format);
        }
        let spec = args.record.expect("clap requires a record or --case");
        let view = if Path::new(spec).is_file() {
            // An envelope file renders without any store: whoever holds it can.
            let text = std::fs::read_to_string(spec).map_err(|e| {
                eprintln!("error: {spec}: {e}");
                Outcome::BadInput
            })?;
            RecordView::from_envelope_text(&text).map_err(|e| {
                eprintln!("error: {spec}: {e}");
                Outcome::BadInput
            })?
        } else {
            let dir = crate::evidence::data_dir(args.data_dir)?;
            let mut log = open_log(&dir)?;
            let index = crate::evidence::resolve_record(&log, spec)?;
            view_from_log(&mut log, index)?
        };
        render_record(&view, args.lang, args.format)
    })();
    let bytes = match bytes {
        Ok(b) => b,
        Err(o) => return o,
    };
    match args.out {
        Some(path) => match write_atomic(path, &bytes) {
            Ok(()) => {
                eprintln!("report written to {}", path.display());
                Outcome::Ok
            }
            Err(o) => o,
        },
        None if args.format == Format::Pdf => {
            eprintln!("error: a PDF needs --out FILE");
            Outcome::BadInput
        }
        None => {
            print!("{}", String::from_utf8_lossy(&bytes));
            Outcome::Ok
        }
    }
}

/// HTML and PDF case reports in the three languages, for a bundle.
pub fn write_case_reports(log: &mut Log, case: &str, dir: &Path) -> Result<(), Outcome> {
    let view = case_view(log, case)?;
    std::fs::create_dir_all(dir).map_err(|e| {
        eprintln!("error: {}: {e}", dir.display());
        Outcome::Internal
    })?;
    for lang in Lang::ALL {
        for (format, ext) in [(Format::Html, "html"), (Format::Pdf, "pdf")] {
            let bytes = render_case(&view, lang, format)?;
            write_atomic(&dir.join(format!("case.{}.{ext}", lang.code())), &bytes)?;
        }
    }
    Ok(())
}
