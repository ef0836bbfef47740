//! `aqiqat voiceprint enrol|list|delete`: the voices a scan can be asked to compare with.

use crate::Outcome;
use aqiqat_intake::Limits;
use aqiqat_scan::{EnrolError, Scanner};
use aqiqat_voice::detector::Verdict;
use aqiqat_voiceprints::{Owner, Summary, VoiceprintError, VoiceprintStore};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum VoiceprintCommand {
    /// Enrol a person's voice from recordings known to be genuine (their older voice messages,
    /// a call you made yourself): at least 10 s of speech in all. The voiceprint is stored
    /// encrypted under the data directory; the recordings are not kept.
    Enrol {
        /// Who it is: the name `scan --claimed` will use.
        name: String,
        /// Recordings of that person alone (audio or video files).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Free text kept with the voiceprint (how you know the recordings are genuine).
        #[arg(long)]
        note: Option<String>,
        /// Print the stored voiceprint's summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List enrolled voiceprints (never the voiceprints themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a voiceprint for good: no copy stays in the database files.
    Delete {
        /// Its name or its id (`vp_…`).
        name: String,
    },
}

fn open(data_dir: Option<&Path>) -> Result<VoiceprintStore, Outcome> {
    let dir = crate::evidence::data_dir(data_dir)?;
    VoiceprintStore::open(&dir, crate::evidence::database()).map_err(fail)
}

fn fail(e: VoiceprintError) -> Outcome {
    eprintln!("error: {e}");
    if e.is_bad_input() {
        Outcome::BadInput
    } else {
        Outcome::Internal
    }
}

/// The voiceprint `name` (or id), ready for a scan.
pub fn claimed(data_dir: Option<&Path>, name: &str) -> Result<aqiqat_scan::ClaimedVoice, Outcome> {
    let mut store = open(data_dir)?;
    let found = store.get(&Owner::Local, name).map_err(fail)?;
    Ok(aqiqat_server::claimed_voice(found))
}

pub fn run(data_dir: Option<&Path>, cmd: VoiceprintCommand, limits: Limits) -> Outcome {
    match cmd {
        VoiceprintCommand::Enrol {
            name,
            files,
            note,
            json,
        } => enrol(data_dir, &name, &files, note.as_deref(), json, limits),
        VoiceprintCommand::List { json } => list(data_dir, json),
        VoiceprintCommand::Delete { name } => {
            let mut store = match open(data_dir) {
                Ok(s) => s,
                Err(o) => return o,
            };
            match store.delete(&Owner::Local, &name) {
                Ok(gone) => {
                    println!("deleted {} ({})", gone.name, gone.id);
                    Outcome::Ok
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn enrol(
    data_dir: Option<&Path>,
    name: &str,
    files: &[PathBuf],
    note: Option<&str>,
    json: bool,
    limits: Limits,
) -> Outcome {
    // The store first: a bad name or an unusable data directory fails before minutes of work.
    let store = match open(data_dir) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let scanner = match Scanner::embedded(limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("internal error: the built-in analysers cannot be loaded: {e}");
            return Outcome::Internal;
        }
    };
    let store = std::sync::Mutex::new(store);
    let recordings = files
        .iter()
        .map(|p| aqiqat_server::Recording::File(p.clone()))
        .collect();
    let enrolled = aqiqat_server::enrol(
        &scanner,
        &store,
        &Owner::Local,
        name,
        note,
        recordings,
        |sample| {
            eprintln!("{}: {:.1} s of speech", sample.label, sample.file.speech_s);
            if sample.synthetic_check == Verdict::Synthetic {
                eprintln!(
                    "warning: {}: the synthetic-speech check calls this recording synthetic; \
                     enrol only recordings you know to be genuine",
                    sample.label
                );
            }
        },
    );
    match enrolled {
        Ok(enrolled) => {
            let summary = enrolled.summary;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&summary).expect("summaries serialise")
                );
            } else {
                println!(
                    "enrolled {} ({}) from {} recording(s), {:.1} s of speech",
                    summary.name,
                    summary.id,
                    summary.files.len(),
                    summary.speech_s
                );
            }
            Outcome::Ok
        }
        Err(aqiqat_server::EnrolFailure::Recording(e)) => enrol_failed(e),
        Err(aqiqat_server::EnrolFailure::Store(e)) => fail(e),
    }
}

fn enrol_failed(e: EnrolError) -> Outcome {
    eprintln!("error: {e}; nothing was enrolled");
    if e.is_bad_input() {
        Outcome::BadInput
    } else {
        Outcome::Internal
    }
}

fn list(data_dir: Option<&Path>, json: bool) -> Outcome {
    let mut store = match open(data_dir) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let all: Vec<Summary> = match store.list(&Owner::Local) {
        Ok(all) => all,
        Err(e) => return fail(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(&all).expect("summaries serialise")
        );
        return Outcome::Ok;
    }
    if all.is_empty() {
        println!("no voiceprints enrolled (aqiqat voiceprint enrol NAME FILE...)");
    }
    for v in &all {
        println!(
            "{}  {}  enrolled {}  {} recording(s), {:.1} s of speech{}{}",
            v.id,
            v.name,
            v.enrolled_at,
            v.files.len(),
            v.speech_s,
            v.owner
                .as_deref()
                .map(|o| format!("  (API key {o})"))
                .unwrap_or_default(),
            v.note
                .as_deref()
                .map(|n| format!("  — {n}"))
                .unwrap_or_default()
        );
    }
    Outcome::Ok
}
